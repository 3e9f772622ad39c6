package agentpool

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Handoff outcomes, the values of the outcome label.
const (
	OutcomeBridged  = "bridged"
	OutcomeTimedOut = "timed_out"
	OutcomeFailed   = "failed"
)

var (
	// Handoffs counts finished handoffs by outcome: bridged (an agent
	// answered), timed_out (the queue's maxWaitSeconds passed) or failed.
	Handoffs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callfleet_handoffs_total",
		Help: "Handoffs to a human agent by outcome: bridged, timed_out or failed.",
	}, []string{"outcome"})

	// TimeToAnswer is the time from the handoff request to the agent
	// answering (requestedTime → bridgedTime).
	TimeToAnswer = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "callfleet_handoff_time_to_answer_seconds",
		Help:    "Seconds from a handoff request to the agent answering the bridge.",
		Buckets: []float64{.5, 1, 2, 3, 5, 8, 13, 20, 30, 45, 60, 90, 120, 180, 300, 600},
	})

	// Utilisation is each pool's busy agents over its agents.
	Utilisation = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "callfleet_agentpool_utilisation_ratio",
		Help: "Busy agents (at least one call) over agents in spec, per AgentPool.",
	}, []string{"namespace", "pool"})

	// Queued is each pool's Calls waiting for an agent.
	Queued = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "callfleet_agentpool_queued_calls",
		Help: "Calls queued for an agent, per AgentPool.",
	}, []string{"namespace", "pool"})

	// Released counts reservations the AgentPool safety net released
	// (normally the handoff controller releases them itself).
	Released = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "callfleet_agentpool_reservations_reclaimed_total",
		Help: "Agent reservations released by the AgentPool safety net because their Call was gone, ended or had moved on.",
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(Handoffs, TimeToAnswer, Utilisation, Queued, Released)
	for _, o := range []string{OutcomeBridged, OutcomeTimedOut, OutcomeFailed} {
		Handoffs.WithLabelValues(o)
	}
}
