// Package metrics holds the manager's Prometheus metrics, registered on
// controller-runtime's registry so they are served with its own at /metrics.
package metrics

// /metrics is served behind controller-runtime's authn/authz filter
// (--metrics-secure), which asks the apiserver who a scraper is and whether
// it may get the /metrics URL.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// Dials counts make-call requests by result: placed, ambiguous, rejected
	// (Piopiy refused: nothing was placed) or not_sent.
	Dials = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callfleet_piopiy_dials_total",
		Help: "Make-call requests sent to Piopiy, by result.",
	}, []string{"result"})

	// AmbiguousCreates counts creates whose result was unknown; each is settled
	// from webhooks or a CDR lookup, never redialled.
	AmbiguousCreates = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "callfleet_piopiy_ambiguous_creates_total",
		Help: "Make-call requests that may or may not have placed a call (timeout, 5xx, lost reply).",
	})

	// AmbiguousSettled counts how ambiguous attempts were settled.
	AmbiguousSettled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callfleet_piopiy_ambiguous_settled_total",
		Help: "Ambiguous attempts settled, by how: webhook, cdr_lookup or timeout.",
	}, []string{"how"})

	// Attempts counts ended attempts by outcome.
	Attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callfleet_call_attempts_total",
		Help: "Call attempts ended, by outcome.",
	}, []string{"outcome"})

	// ApplyToDial is the time from a Call's creation to Piopiy accepting its
	// first attempt.
	ApplyToDial = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "callfleet_call_apply_to_dial_seconds",
		Help:    "Seconds from Call creation to Piopiy accepting its first attempt.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	})

	// WebhookEvents counts received Piopiy webhooks by status and result.
	WebhookEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callfleet_webhook_events_total",
		Help: "Piopiy webhooks received, by event status (documented statuses, cdr, or other) and result (applied, duplicate, contradicted, ignored, refused, unauthorized, malformed, busy, error).",
	}, []string{"status", "result"})

	// WebhookTimesIgnored counts times in webhooks outside the lifetime of
	// the attempt they name (forged, or a clock far off): the time is not
	// recorded, the event's facts are.
	WebhookTimesIgnored = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "callfleet_webhook_times_ignored_total",
		Help: "Times in Piopiy webhooks ignored because they fall outside the attempt's lifetime.",
	})

	// PiopiyRequestWait is the time a request waited for the client-side rate limit.
	PiopiyRequestWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "callfleet_piopiy_rate_limit_wait_seconds",
		Help:    "Seconds a Piopiy request waited for the client-side rate limit.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(Dials, AmbiguousCreates, AmbiguousSettled, Attempts, ApplyToDial, WebhookEvents, WebhookTimesIgnored, PiopiyRequestWait)
}
