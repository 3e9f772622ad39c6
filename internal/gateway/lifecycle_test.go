package gateway_test

import (
	"net"
	"testing"
	"time"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/sim"
)

// TestBotUnavailable: with no bot listening, Piopiy gets a 503 before the
// upgrade and the Call says why.
func TestBotUnavailable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadBot := "ws://" + ln.Addr().String() + "/"
	_ = ln.Close()
	g, err := startGateway(deadBot, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.stop() }()
	c := newCall(t, "e2e-no-bot", nil)
	id := dial(t, c, streamURL(t, g.url, ns, c.Name, 1, time.Now().Add(10*time.Minute)))
	waitSim(t, id, "stream refused", func(_ sim.CallRecord, s sim.StreamRecord) bool { return s.DialError != "" })
	waitStatus(t, c.Name, "Disconnected: bot unavailable", func(c *voicev1alpha1.Call) bool {
		return streamState(c) == voicev1alpha1.StreamPhaseDisconnected && c.Status.Stream.Reason == "bot unavailable"
	})
	if v := g.counter(t, "callfleet_gateway_stream_rejections_total", map[string]string{"reason": "bot_unavailable"}); v != 1 {
		t.Errorf("bot_unavailable rejections %v", v)
	}
}
