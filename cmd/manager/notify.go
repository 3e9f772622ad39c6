package main

import (
	"flag"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/callfleet/callfleet/internal/notify"
)

// notifyFlags configure the CloudEvents notifier (docs/results.md).
type notifyFlags struct {
	url, secret, key string
}

func bindNotifyFlags(fs *flag.FlagSet) *notifyFlags {
	f := &notifyFlags{}
	fs.StringVar(&f.url, "notify-url", "", "Default sink for CloudEvents (Campaigns without spec.notify, Calls of no Campaign); empty: none.")
	fs.StringVar(&f.secret, "notify-secret", "", "namespace/name of the Secret holding the default sink's HMAC key.")
	fs.StringVar(&f.key, "notify-secret-key", notify.DefaultKey, "Key of the HMAC key in --notify-secret.")
	return f
}

// setupNotify registers the notifier's controllers. They always run: a
// Campaign's spec.notify needs no manager flag.
func setupNotify(mgr ctrl.Manager, f *notifyFlags) error {
	sinks := &notify.Resolver{Reader: mgr.GetAPIReader()}
	if f != nil && f.url != "" {
		ns, name, ok := strings.Cut(f.secret, "/")
		if !ok || ns == "" || name == "" {
			return fmt.Errorf("--notify-url needs --notify-secret as namespace/name, got %q", f.secret)
		}
		sinks.Default = &notify.Default{URL: f.url, Secret: types.NamespacedName{Namespace: ns, Name: name}, Key: f.key}
	}
	o := notify.Options{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("callfleet-notify"), Sinks: sinks}
	if err := (&notify.CallReconciler{Options: o}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the Call notifier: %w", err)
	}
	if err := (&notify.CampaignReconciler{Options: o}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the Campaign notifier: %w", err)
	}
	return nil
}
