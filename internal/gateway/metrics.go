package gateway

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Directions of the frame counters and latency histogram.
const (
	dirFromPlatform = "from_platform"
	dirToBot        = "to_bot"
	dirFromBot      = "from_bot"
	dirToPlatform   = "to_platform"

	latPlatformToBot = "platform_to_bot"
	latBotToPlatform = "bot_to_platform"
)

// metrics of one Gateway. The per-frame counters are resolved once so the
// audio path does no label lookups.
type metrics struct {
	active      prometheus.Gauge
	streams     *prometheus.CounterVec
	frames      *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	rejections  *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	control     *prometheus.CounterVec
	botEvents   *prometheus.CounterVec
	statusWrite *prometheus.CounterVec
	truncated   *prometheus.CounterVec

	fromPlatform, toBot, fromBot, toPlatform prometheus.Counter
	droppedToBot                             prometheus.Counter
	latP2B, latB2P                           prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "callfleet_gateway_active_streams",
			Help: "Piopiy stream sockets open on this gateway.",
		}),
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callfleet_gateway_streams_total",
			Help: "Stream sockets accepted and ended, by how they ended (platform, bot, shutdown, timeout).",
		}, []string{"ended_by"}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callfleet_gateway_frames_total",
			Help: "Audio frames relayed, by direction: from_platform, to_bot, from_bot, to_platform.",
		}, []string{"direction"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callfleet_gateway_dropped_frames_total",
			Help: "Audio frames dropped (oldest first) because the receiver fell behind the bounded buffer.",
		}, []string{"direction"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callfleet_gateway_stream_rejections_total",
			Help: "Stream requests refused before the WebSocket upgrade, by reason.",
		}, []string{"reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "callfleet_gateway_relay_latency_seconds",
			Help: "Time from a frame's arrival on one socket to its write on the other, by direction.",
			// 25µs to ~100ms: the gateway should add well under a millisecond.
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 13),
		}, []string{"direction"}),
		control: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callfleet_gateway_control_frames_total",
			Help: "Control frames sent to Piopiy, by action (pause, resume, stop, break, play, hangup, bridge).",
		}, []string{"action"}),
		botEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callfleet_gateway_bot_messages_total",
			Help: "JSON messages received from bots, by type (unknown for anything else; mark_dropped: an echo refused for a bot that does not read; handoff_ignored: a handoff while one is being recorded).",
		}, []string{"type"}),
		statusWrite: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callfleet_gateway_status_writes_total",
			Help: "Call status patches, by result (ok, error).",
		}, []string{"result"}),
		truncated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callfleet_gateway_bot_result_truncated_total",
			Help: "Bot result reports cut to the bounds of status.result, by field (disposition, summary, data).",
		}, []string{"field"}),
	}
	for _, c := range []prometheus.Collector{m.active, m.streams, m.frames, m.dropped, m.rejections, m.latency, m.control, m.botEvents, m.statusWrite, m.truncated} {
		if err := reg.Register(c); err != nil {
			if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) {
				return nil, fmt.Errorf("registering gateway metrics: %w (one Gateway per registry)", err)
			}
			return nil, fmt.Errorf("registering gateway metrics: %w", err)
		}
	}
	m.fromPlatform = m.frames.WithLabelValues(dirFromPlatform)
	m.toBot = m.frames.WithLabelValues(dirToBot)
	m.fromBot = m.frames.WithLabelValues(dirFromBot)
	m.toPlatform = m.frames.WithLabelValues(dirToPlatform)
	m.droppedToBot = m.dropped.WithLabelValues(dirToBot)
	m.latP2B = m.latency.WithLabelValues(latPlatformToBot)
	m.latB2P = m.latency.WithLabelValues(latBotToPlatform)
	return m, nil
}
