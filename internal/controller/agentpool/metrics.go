package agentpool

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// Abandoned counts, per pool, the callers who hung up while waiting for
	// an agent: the same count as the AgentPool's status.abandoned.
	Abandoned = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callfleet_agentpool_abandoned_calls_total",
		Help: "Callers who hung up while waiting for an agent of the AgentPool (queued or ringing).",
	}, []string{"namespace", "pool"})

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
	ctrlmetrics.Registry.MustRegister(Abandoned, Utilisation, Queued, Released)
}
