package main

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
)

// setupOtherControllers registers the controllers besides Call's.
func setupOtherControllers(ctx context.Context, mgr ctrl.Manager) error {
	return nil
}
