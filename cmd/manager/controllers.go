package main

import (
	"context"
	"fmt"

	"golang.org/x/time/rate"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/controller/agentpool"
	"github.com/callfleet/callfleet/internal/controller/call"
	"github.com/callfleet/callfleet/internal/controller/campaign"
	"github.com/callfleet/callfleet/internal/controller/handoff"
	"github.com/callfleet/callfleet/internal/controller/streamendpoint"
)

// piopiyDeps is what every controller calling Piopiy shares.
type piopiyDeps struct {
	accounts *account.Resolver
	clients  *call.ClientCache
	v3       *call.V3Backend
	limiter  *rate.Limiter
}

// setupOtherControllers registers the controllers besides Call's.
func setupOtherControllers(ctx context.Context, mgr ctrl.Manager, o options, pio piopiyDeps) error {
	endpoints := &streamendpoint.Reconciler{
		Client:           mgr.GetClient(),
		APIReader:        mgr.GetAPIReader(),
		Scheme:           mgr.GetScheme(),
		GatewayImage:     o.gatewayImage,
		StreamTokenKeys:  o.streamKeys,
		MonitorTokenKeys: o.monitorKeys,
	}
	if err := endpoints.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up StreamEndpoint controller: %w", err)
	}

	pools := &agentpool.PoolReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("callfleet-agentpool"),
	}
	if err := pools.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up AgentPool controller: %w", err)
	}
	// The handoff controller hangs up calls whose onNoAgent is Hangup, and
	// carries out the handoffs of v3 Calls as warm transfers.
	handoffs := &handoff.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("callfleet-handoff"),
		Accounts:  pio.accounts,
		Piopiy:    pio.clients,
		V3:        pio.v3,
		Limiter:   pio.limiter,
	}
	if err := handoffs.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up handoff controller: %w", err)
	}

	// No Client: the Campaign controller makes its own, with its own
	// client-side rate limit, so a suspend is not queued behind Call writes.
	campaigns := &campaign.Reconciler{
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("callfleet-campaign"),
	}
	if err := campaigns.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up Campaign controller: %w", err)
	}
	return nil
}
