package main

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/callfleet/callfleet/internal/controller/streamendpoint"
)

// setupOtherControllers registers the controllers besides Call's.
func setupOtherControllers(_ context.Context, mgr ctrl.Manager, o options) error {
	endpoints := &streamendpoint.Reconciler{
		Client:       mgr.GetClient(),
		Scheme:       mgr.GetScheme(),
		GatewayImage: o.gatewayImage,
	}
	if err := endpoints.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up StreamEndpoint controller: %w", err)
	}
	return nil
}
