package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	"github.com/callfleet/callfleet/internal/monitortoken"
)

// MonitorPath is where monitor sockets are served:
// GET /monitor/{namespace}/{call}?token=<monitortoken>.
const MonitorPath = "/monitor/"

// monitorSendBuffer is the kernel send buffer of a monitor socket (Linux
// doubles it). Left to autotuning, loopback and fast links buffer megabytes
// (a minute of audio) before a stalled listener's writes block; bounded, a
// listener that stops reading is noticed within a few seconds and costs
// little memory until then.
const monitorSendBuffer = 32 << 10

type connKey struct{}

// ConnContext is the gateway server's http.Server.ConnContext: it keeps the
// connection in the request context so a monitor socket can bound its send
// buffer. Run sets it; a server of its own around Handler should too.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

func boundSendBuffer(r *http.Request) {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetWriteBuffer(monitorSendBuffer)
	}
}

// MonitorKeyEnv holds the monitor token key when no key file is given.
const MonitorKeyEnv = "CALLFLEET_MONITOR_TOKEN_KEY"

// DefaultMonitorLines is how many assist and transcript lines a call keeps
// for listeners that join late.
const DefaultMonitorLines = 200

// Monitor refusal reasons (the reason label of monitor_rejections_total).
const (
	monRejectOff      = "off"
	monRejectToken    = "bad_token"
	monRejectExpired  = "expired"
	monRejectMismatch = "wrong_call" // the token is for another call (or namespace)
	monRejectNoStream = "no_stream"  // no live stream of the call on this pod
)

type monitorMetrics struct {
	listeners  prometheus.Gauge
	dropped    prometheus.Counter
	rejections *prometheus.CounterVec
}

func newMonitorMetrics(reg prometheus.Registerer) (*monitorMetrics, error) {
	m := &monitorMetrics{
		listeners: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "callfleet_gateway_monitor_listeners",
			Help: "Monitor sockets (console listen-in) open on this gateway.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callfleet_gateway_monitor_dropped_total",
			Help: "Monitor listeners cut off because they fell behind the call.",
		}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callfleet_gateway_monitor_rejections_total",
			Help: "Monitor socket requests refused, by reason.",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.listeners, m.dropped, m.rejections} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering monitor metrics: %w", err)
		}
	}
	return m, nil
}

// LoadMonitorKey reads the monitor token key like LoadTokenKey does the
// stream token key: from file (whitespace trimmed), else from
// CALLFLEET_MONITOR_TOKEN_KEY. No key at all is not an error: monitoring is
// then off (nil key).
func LoadMonitorKey(file string) ([]byte, error) {
	var key []byte
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading monitor key: %w", err)
		}
		key = []byte(strings.TrimSpace(string(b)))
	} else {
		key = []byte(os.Getenv(MonitorKeyEnv))
		if len(key) == 0 {
			return nil, nil
		}
	}
	if len(key) < monitortoken.MinKeyLen {
		return nil, fmt.Errorf("monitor token key is %d bytes, want at least %d", len(key), monitortoken.MinKeyLen)
	}
	return key, nil
}

// checkMonitorKey validates Options.MonitorKey (nil: monitoring off),
// deriving it first from MonitorRootKey when that is set.
func checkMonitorKey(o *Options) error {
	if o.MonitorLines <= 0 {
		o.MonitorLines = DefaultMonitorLines
	}
	if len(o.MonitorRootKey) > 0 {
		if o.Endpoint == "" {
			return errors.New("gateway: a root monitor key needs the endpoint name to derive the endpoint's key")
		}
		k, err := monitortoken.DeriveKey(o.MonitorRootKey, o.Namespace, o.Endpoint)
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		o.MonitorKey, o.MonitorRootKey = k, nil
	}
	// A key file is checked when it is read (streamtoken.LoadKeyFile); the
	// keys callfleet mounts are derived for another purpose than the stream
	// token key, so they cannot equal it.
	if o.MonitorKey == nil || o.MonitorKeyFile != "" {
		return nil
	}
	if len(o.MonitorKey) < monitortoken.MinKeyLen {
		return fmt.Errorf("gateway: monitor token key is %d bytes, want at least %d", len(o.MonitorKey), monitortoken.MinKeyLen)
	}
	if bytes.Equal(o.MonitorKey, o.TokenKey) {
		return errors.New("gateway: the monitor token key must differ from the stream token key")
	}
	return nil
}

func (g *Gateway) refuseMonitor(w http.ResponseWriter, status int, reason string) {
	g.mon.rejections.WithLabelValues(reason).Inc()
	http.Error(w, http.StatusText(status)+": "+reason, status)
}

// serveMonitor opens a monitor socket on the live stream of the Call the
// path names, for a token the console signed for exactly that Call.
// Missing, forged and expired tokens are 401; a valid token for another
// call is 403; a call with no live stream on this pod is 404.
func (g *Gateway) serveMonitor(w http.ResponseWriter, r *http.Request) {
	keys := g.monitorKeys()
	if keys == nil {
		g.refuseMonitor(w, http.StatusNotFound, monRejectOff)
		return
	}
	nn := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("call")}
	c, err := monitortoken.VerifyAny(keys, r.URL.Query().Get(monitortoken.ParamToken), g.opts.Now())
	switch {
	case errors.Is(err, monitortoken.ErrExpired):
		g.refuseMonitor(w, http.StatusUnauthorized, monRejectExpired)
		return
	case err != nil:
		g.refuseMonitor(w, http.StatusUnauthorized, monRejectToken)
		return
	}
	if c.Namespace != nn.Namespace || c.Call != nn.Name || c.Namespace != g.opts.Namespace {
		g.refuseMonitor(w, http.StatusForbidden, monRejectMismatch)
		return
	}
	var s *session
	for _, cand := range g.reg.forCall(nn) {
		if s == nil || cand.key.Attempt > s.key.Attempt {
			s = cand
		}
	}
	if s == nil {
		g.refuseMonitor(w, http.StatusNotFound, monRejectNoStream)
		return
	}
	hello, _ := json.Marshal(MonitorMessage{
		Type: MonitorHello, Call: nn.Name, Namespace: nn.Namespace, Attempt: s.key.Attempt,
		SampleRate: s.rate, ListenMode: s.mon.listenMode,
	})
	l := s.mon.join(hello)
	if l == nil {
		g.refuseMonitor(w, http.StatusNotFound, monRejectNoStream)
		return
	}
	boundSendBuffer(r)
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// The console's page is on another origin. The token in the URL,
		// not an ambient cookie, authenticates, so a cross-site page gains
		// nothing from the browser's credentials.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		s.mon.leave(l)
		return
	}
	log := s.log.WithValues("monitor", c.User)
	log.Info("monitor listener joined")
	g.mon.listeners.Inc()
	defer g.mon.listeners.Dec()
	s.mon.serve(conn, l, log)
	log.Info("monitor listener left")
}
