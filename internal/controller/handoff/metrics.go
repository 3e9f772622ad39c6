package handoff

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Handoff outcomes, the values of the outcome label.
const (
	OutcomeBridged   = "bridged"
	OutcomeTimedOut  = "timed_out"
	OutcomeAbandoned = "abandoned"
	OutcomeFailed    = "failed"
)

var (
	// Handoffs counts finished handoffs by outcome: bridged (an agent
	// answered), timed_out (the queue's maxWaitSeconds passed), abandoned
	// (the caller hung up while waiting) or failed.
	Handoffs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callfleet_handoffs_total",
		Help: "Handoffs to a human agent by outcome: bridged, timed_out, abandoned or failed.",
	}, []string{"outcome"})

	// TimeToAnswer is the time from the handoff request to the agent
	// answering (requestedTime → bridgedTime).
	TimeToAnswer = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "callfleet_handoff_time_to_answer_seconds",
		Help:    "Seconds from a handoff request to the agent answering the bridge.",
		Buckets: []float64{.5, 1, 2, 3, 5, 8, 13, 20, 30, 45, 60, 90, 120, 180, 300, 600},
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(Handoffs, TimeToAnswer)
	for _, o := range []string{OutcomeBridged, OutcomeTimedOut, OutcomeAbandoned, OutcomeFailed} {
		Handoffs.WithLabelValues(o)
	}
}
