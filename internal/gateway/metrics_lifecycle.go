package gateway

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// lifecycleMetrics are about the gateway's capacity, drain, keys and bot
// reconnects (apart from the per-frame metrics of metrics.go).
type lifecycleMetrics struct {
	maxStreams    prometheus.Gauge
	draining      prometheus.Gauge
	drainHangups  prometheus.Counter
	tokenKeys     prometheus.Gauge
	keyReloads    *prometheus.CounterVec
	botReconnects *prometheus.CounterVec
}

func newLifecycleMetrics(reg prometheus.Registerer, maxStreams int) (*lifecycleMetrics, error) {
	m := &lifecycleMetrics{
		maxStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "callfleet_gateway_max_streams",
			Help: "Streams this gateway takes at once (0: no limit); one more is refused with reason at_capacity.",
		}),
		draining: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "callfleet_gateway_draining",
			Help: "1 while the gateway is stopping and lets its live calls end.",
		}),
		drainHangups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callfleet_gateway_drain_hangups_total",
			Help: "Calls still up at the end of a drain that got the goodbye and a hangup.",
		}),
		tokenKeys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "callfleet_gateway_token_keys",
			Help: "Stream token keys accepted now (2 during a rotation's overlap).",
		}),
		keyReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callfleet_gateway_token_key_reloads_total",
			Help: "Rereads of the mounted stream token key that changed the keys (changed) or failed (error).",
		}, []string{"result"}),
		botReconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callfleet_gateway_bot_reconnects_total",
			Help: "Bot sockets lost mid-call, by outcome: ok (reopened) or gave_up.",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.maxStreams, m.draining, m.drainHangups, m.tokenKeys, m.keyReloads, m.botReconnects} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering gateway metrics: %w", err)
		}
	}
	m.maxStreams.Set(float64(maxStreams))
	return m, nil
}
