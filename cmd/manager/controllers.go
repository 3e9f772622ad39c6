package main

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/controller/agentpool"
	"github.com/callfleet/callfleet/internal/controller/call"
	"github.com/callfleet/callfleet/internal/controller/campaign"
	"github.com/callfleet/callfleet/internal/controller/streamendpoint"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// setupOtherControllers registers the controllers besides Call's.
func setupOtherControllers(ctx context.Context, mgr ctrl.Manager, o options) error {
	endpoints := &streamendpoint.Reconciler{
		Client:       mgr.GetClient(),
		Scheme:       mgr.GetScheme(),
		GatewayImage: o.gatewayImage,
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
	// The handoff controller hangs up calls whose onNoAgent is Hangup, with
	// the same account resolution and Piopiy endpoints as the Call
	// controller (main validated --default-account already).
	var defaultAccount types.NamespacedName
	if ns, name, ok := strings.Cut(o.defaultAccount, "/"); ok {
		defaultAccount = types.NamespacedName{Namespace: ns, Name: name}
	}
	handoffs := &agentpool.HandoffReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("callfleet-handoff"),
		Accounts:  &account.Resolver{Reader: mgr.GetAPIReader(), Default: defaultAccount},
		Piopiy:    &call.ClientCache{Options: []piopiy.Option{piopiy.WithRESTBaseURL(o.restURL), piopiy.WithActionBaseURL(o.actionURL)}},
		// Its own limiter: hangups for onNoAgent are rare next to dials.
		Limiter: rate.NewLimiter(rate.Limit(o.piopiyQPS), o.piopiyBurst),
	}
	if err := handoffs.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up handoff controller: %w", err)
	}

	campaigns := &campaign.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("callfleet-campaign"),
	}
	if err := campaigns.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up Campaign controller: %w", err)
	}
	return nil
}
