package notify

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	eventsDelivered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callfleet_notify_events_delivered_total",
		Help: "CloudEvents a sink accepted (2xx), by type. Redeliveries count again.",
	}, []string{"type"})
	eventsFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callfleet_notify_events_failed_total",
		Help: "CloudEvents given up on, by type and reason (rejected: a 4xx; expired: undelivered past --notify-give-up-after).",
	}, []string{"type", "reason"})
	sendErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callfleet_notify_send_errors_total",
		Help: "Delivery attempts that failed and will be retried, by type.",
	}, []string{"type"})
	eventsPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "callfleet_notify_events_pending",
		Help: "Events owed to a sink whose last delivery attempt failed (waiting for a retry).",
	})
)

func init() {
	metrics.Registry.MustRegister(eventsDelivered, eventsFailed, sendErrors, eventsPending)
}

// pending tracks retries of undelivered events by id. It only paces
// retries: what is owed is always read back from the cluster.
type pending struct {
	mu    sync.Mutex
	tries map[string]int
}

// failed records a failed try of id and returns how many there were.
func (p *pending) failed(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tries == nil {
		p.tries = map[string]int{}
	}
	p.tries[id]++
	eventsPending.Set(float64(len(p.tries)))
	return p.tries[id]
}

func (p *pending) done(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.tries, id)
	eventsPending.Set(float64(len(p.tries)))
}
