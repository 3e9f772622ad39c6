package gateway_test

import (
	"net"
	"testing"
	"time"

	"github.com/coder/websocket"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/sim"
)

// TestShutdownGoingAway: on SIGTERM (ctx cancel) the gateway closes the
// platform socket with 1001, tells the bot, and reports the close before it
// exits. The shared gateway watches the same Call but holds no socket for
// it, so it must do nothing.
func TestShutdownGoingAway(t *testing.T) {
	t.Parallel()
	g, err := startGateway(bots.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.stop()
	c := newCall(t, "e2e-shutdown", nil)
	id := dial(t, c, streamURL(t, g.url, ns, c.Name, 1, time.Now().Add(10*time.Minute)))
	bot := bots.wait(t, c.Name)
	waitStatus(t, c.Name, "Connected", func(c *voicev1alpha1.Call) bool { return streamState(c) == voicev1alpha1.StreamPhaseConnected })
	if err := g.stop(); err != nil {
		t.Fatalf("gateway stop: %v", err)
	}
	sc := waitSim(t, id, "socket closed", func(_ sim.CallRecord, s sim.StreamRecord) bool { return s.DisconnectedAt != nil })
	if s := sc.Streams[0]; s.CloseCode != int(websocket.StatusGoingAway) || s.ClosedBy != "peer" {
		t.Errorf("sim saw close %d by %s, want 1001 by the peer", s.CloseCode, s.ClosedBy)
	}
	// Run returned only after the final report was written.
	st := getCall(t, c.Name).Status.Stream
	if st.State != voicev1alpha1.StreamPhaseDisconnected || st.CloseCode != 1001 || st.Reason != "gateway shutting down" {
		t.Errorf("report %+v", st)
	}
	if err := bot.waitClosed(t); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("bot closed with %v, want 1001", err)
	}
	if s := bot.events("stop"); len(s) != 1 {
		t.Errorf("bot stop events %v", s)
	}
}

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
	defer g.stop()
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
