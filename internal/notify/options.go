package notify

import (
	"time"

	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// Annotations and finalizer the notifier keeps on the objects it reports.
const (
	// AnnotationDelivered on a Call holds the id of its delivered
	// call.completed event, or "failed: <why>" once given up on.
	AnnotationDelivered = "notify.callfleet.dev/delivered"
	// AnnotationLedger on a Campaign lists its campaign.* events and
	// whether each was delivered (JSON, bounded).
	AnnotationLedger = "notify.callfleet.dev/ledger"
	// Finalizer keeps a finished Call until its event is delivered.
	Finalizer = voicev1alpha1.NotifyFinalizer
)

// Defaults of Options.
const (
	DefaultRetryBase   = 2 * time.Second
	DefaultRetryMax    = 5 * time.Minute
	DefaultGiveUpAfter = 24 * time.Hour
	DefaultWorkers     = 4
)

// Options are shared by both notifier controllers.
type Options struct {
	Client   client.Client
	Recorder events.EventRecorder
	Sinks    *Resolver
	Sender   *Sender
	// RetryBase doubles per failed try of an event up to RetryMax.
	RetryBase, RetryMax time.Duration
	// GiveUpAfter drops an event still undelivered this long after it
	// happened (counted as failed), so a sink gone for good does not hold
	// Calls forever.
	GiveUpAfter time.Duration
	Workers     int
	Now         func() time.Time
}

func (o *Options) defaults() {
	if o.RetryBase <= 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.RetryMax <= 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.GiveUpAfter <= 0 {
		o.GiveUpAfter = DefaultGiveUpAfter
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sender == nil {
		o.Sender = &Sender{}
	}
}

// backoff is the wait after the n-th failed try.
func (o *Options) backoff(n int) time.Duration {
	d := o.RetryBase
	for i := 1; i < n && d < o.RetryMax; i++ {
		d *= 2
	}
	return min(d, o.RetryMax)
}
