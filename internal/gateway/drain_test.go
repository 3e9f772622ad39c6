package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/gateway"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/internal/streamtoken"
)

// hangupAtSim ends a call from the callee's side, as a person putting the
// phone down does.
func hangupAtSim(t *testing.T, id string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"appid": appID, "secret": secret, "cmiuuid": simCall(t, id).CMIUUID, "action": "hangup"})
	resp, err := http.Post(simURL+"/v1/call/action", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("hangup: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("hangup: HTTP %d", resp.StatusCode)
	}
}

func httpURL(g *runningGateway) string { return "http" + strings.TrimPrefix(g.url, "ws") }

func readyz(t *testing.T, g *runningGateway) int {
	t.Helper()
	resp, err := http.Get(httpURL(g) + "/readyz")
	if err != nil {
		t.Fatalf("readyz: %v", err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func (g *runningGateway) exited() bool {
	select {
	case err := <-g.done:
		g.done <- err
		return true
	default:
		return false
	}
}

func connected(c *voicev1alpha1.Call) bool {
	return streamState(c) == voicev1alpha1.StreamPhaseConnected
}

func live(_ sim.CallRecord, s sim.StreamRecord) bool {
	return s.ConnectedAt != nil && s.DisconnectedAt == nil
}

// TestDrainKeepsLiveCallsUntilTheyEnd: SIGTERM to a gateway holding 5 live
// calls. It turns unready at once and refuses a new stream, while the 5 go
// on; they end when the callees hang up, at the sim (the documented 1006 by the
// sim, not a 1001 from the gateway), and only then does Run return.
func TestDrainKeepsLiveCallsUntilTheyEnd(t *testing.T) {
	t.Parallel()
	g, err := startGateway(bots.url, func(o *gateway.RunOptions) {
		o.PodName = "gw-drain-0"
		// Longer than the test: the calls must end on their own.
		o.ShutdownDrain = 10 * time.Minute
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.stop() }()
	var ids []string
	var calls []*voicev1alpha1.Call
	for i := range 5 {
		c := newCall(t, fmt.Sprintf("e2e-drain-%d", i), nil)
		ids = append(ids, dial(t, c, streamURL(t, g.url, ns, c.Name, 1, time.Now().Add(10*time.Minute))))
		calls = append(calls, c)
		bots.wait(t, c.Name)
	}
	for _, c := range calls {
		waitStatus(t, c.Name, "Connected", connected)
	}

	g.cancel() // SIGTERM
	eventually(t, "readyz fails", func() bool { return readyz(t, g) == http.StatusServiceUnavailable })

	late := newCall(t, "e2e-drain-late", nil)
	lateID := dial(t, late, streamURL(t, g.url, ns, late.Name, 1, time.Now().Add(10*time.Minute)))
	sc := waitSim(t, lateID, "late stream refused", func(_ sim.CallRecord, s sim.StreamRecord) bool { return s.DialError != "" })
	if !strings.Contains(sc.Streams[0].DialError, "503") {
		t.Errorf("late stream: %q, want a 503", sc.Streams[0].DialError)
	}
	if v := g.counter(t, "callfleet_gateway_stream_rejections_total", map[string]string{"reason": "draining"}); v != 1 {
		t.Errorf("draining rejections %v, want 1", v)
	}
	if v := g.counter(t, "callfleet_gateway_draining", nil); v != 1 {
		t.Errorf("draining gauge %v", v)
	}
	// The live calls are untouched by the drain.
	for _, id := range ids {
		if c := simCall(t, id); len(c.Streams) != 1 || !live(c, c.Streams[0]) {
			t.Fatalf("call %s after SIGTERM: %+v", id, c.Streams)
		}
	}
	if g.exited() {
		t.Fatal("gateway exited with live calls")
	}

	for _, id := range ids {
		hangupAtSim(t, id)
	}
	if err := g.stop(); err != nil {
		t.Fatalf("gateway: %v", err)
	}
	for i, id := range ids {
		s := simCall(t, id).Streams[0]
		// The call ended at the sim, which drops the socket as Piopiy is
		// documented to (1006), not cut by the draining gateway (1001).
		if s.CloseCode != int(websocket.StatusAbnormalClosure) || s.ClosedBy != "sim" {
			t.Errorf("call %s: close %d by %s, want the documented 1006 by the sim", id, s.CloseCode, s.ClosedBy)
		}
		st := getCall(t, calls[i].Name).Status.Stream
		if st.State != voicev1alpha1.StreamPhaseDisconnected || st.CloseCode != 1006 || st.HangupSent {
			t.Errorf("call %s status.stream %+v", calls[i].Name, st)
		}
	}
	if v := g.counter(t, "callfleet_gateway_streams_total", map[string]string{"ended_by": "shutdown"}); v != 0 {
		t.Errorf("%v streams cut at shutdown", v)
	}
	if v := g.counter(t, "callfleet_gateway_drain_hangups_total", nil); v != 0 {
		t.Errorf("%v drain hangups, want none", v)
	}
}

// TestDrainGoodbyeAndHangup: a call longer than the grace period hears the
// goodbye and is hung up (the sim ends the call and closes the socket
// normally), rather than being cut with 1001.
func TestDrainGoodbyeAndHangup(t *testing.T) {
	t.Parallel()
	const goodbye = "https://audio.example.com/goodbye.wav"
	g, err := startGateway(bots.url, func(o *gateway.RunOptions) {
		o.PodName = "gw-goodbye-0"
		o.ShutdownDrain = 2 * time.Second
		o.GoodbyeLead = time.Second
		o.GoodbyeURL = goodbye
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.stop() }()
	c := newCall(t, "e2e-goodbye", nil)
	id := dial(t, c, streamURL(t, g.url, ns, c.Name, 1, time.Now().Add(10*time.Minute)))
	bot := bots.wait(t, c.Name)
	waitStatus(t, c.Name, "Connected", connected)

	if err := g.stop(); err != nil { // SIGTERM, and the call never ends by itself
		t.Fatalf("gateway: %v", err)
	}
	rec := waitSim(t, id, "socket closed", func(_ sim.CallRecord, s sim.StreamRecord) bool { return s.DisconnectedAt != nil })
	if s := rec.Streams[0]; s.CloseCode != int(websocket.StatusAbnormalClosure) || s.ClosedBy != "sim" {
		t.Errorf("sim saw close %d by %s, want the documented 1006 by the sim (the call ended)", s.CloseCode, s.ClosedBy)
	}
	if rec.HangupCause != "pcmo" {
		t.Errorf("hangup cause %q, want pcmo (the gateway's hangup)", rec.HangupCause)
	}
	var played []string
	for _, p := range rec.Plays {
		if p.Source == "socket" {
			played = append(played, p.Action+":"+p.FileURL)
		}
	}
	if want := []string{"play:" + goodbye, "hangup:"}; strings.Join(played, ",") != strings.Join(want, ",") {
		t.Errorf("socket PCMO actions %v, want %v", played, want)
	}
	st := getCall(t, c.Name).Status.Stream
	if st.State != voicev1alpha1.StreamPhaseDisconnected || !st.HangupSent || st.CloseCode != 1006 {
		t.Errorf("status.stream %+v", st)
	}
	if err := bot.waitClosed(t); err == nil {
		t.Error("bot socket still open")
	}
	if s := bot.events("stop"); len(s) != 1 {
		t.Errorf("bot stop events %v", s)
	}
	if v := g.counter(t, "callfleet_gateway_streams_total", map[string]string{"ended_by": "drain"}); v != 1 {
		t.Errorf("streams ended by the drain: %v", v)
	}
	if v := g.counter(t, "callfleet_gateway_streams_total", map[string]string{"ended_by": "shutdown"}); v != 0 {
		t.Errorf("%v streams cut with 1001", v)
	}
}

// TestMaxStreamsPerPod: two gateways (two pods) of one endpoint take at
// most MaxStreams each. One more on a full pod is refused before the
// upgrade with at_capacity and the Call says so; the other pod still takes
// calls, and the full one takes a call again once one of its calls ended.
func TestMaxStreamsPerPod(t *testing.T) {
	t.Parallel()
	start := func(pod string) *runningGateway {
		g, err := startGateway(bots.url, func(o *gateway.RunOptions) {
			o.PodName = pod
			o.MaxStreams = 2
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = g.stop() })
		return g
	}
	a, b := start("gw-cap-a"), start("gw-cap-b")
	place := func(g *runningGateway, name string) (*voicev1alpha1.Call, string) {
		c := newCall(t, name, nil)
		return c, dial(t, c, streamURL(t, g.url, ns, c.Name, 1, time.Now().Add(10*time.Minute)))
	}
	onPod := func(name, pod string) {
		t.Helper()
		bots.wait(t, name)
		waitStatus(t, name, "Connected on "+pod, func(c *voicev1alpha1.Call) bool {
			return connected(c) && c.Status.Stream.Pod == pod
		})
	}
	_, a1 := place(a, "e2e-cap-a1")
	onPod("e2e-cap-a1", "gw-cap-a")
	place(a, "e2e-cap-a2")
	onPod("e2e-cap-a2", "gw-cap-a")

	_, full := place(a, "e2e-cap-a3")
	sc := waitSim(t, full, "third stream refused", func(_ sim.CallRecord, s sim.StreamRecord) bool { return s.DialError != "" })
	if !strings.Contains(sc.Streams[0].DialError, "503") {
		t.Errorf("third stream on a: %q, want a 503", sc.Streams[0].DialError)
	}
	waitStatus(t, "e2e-cap-a3", "refused at capacity", func(c *voicev1alpha1.Call) bool {
		return streamState(c) == voicev1alpha1.StreamPhaseDisconnected && c.Status.Stream.Reason == "gateway at capacity"
	})
	if v := a.counter(t, "callfleet_gateway_stream_rejections_total", map[string]string{"reason": "at_capacity"}); v != 1 {
		t.Errorf("a at_capacity rejections %v", v)
	}
	if v := a.counter(t, "callfleet_gateway_max_streams", nil); v != 2 {
		t.Errorf("max_streams gauge %v", v)
	}

	// The other pod has its own slots.
	place(b, "e2e-cap-b1")
	onPod("e2e-cap-b1", "gw-cap-b")
	place(b, "e2e-cap-b2")
	onPod("e2e-cap-b2", "gw-cap-b")
	if v := b.counter(t, "callfleet_gateway_stream_rejections_total", map[string]string{"reason": "at_capacity"}); v != 0 {
		t.Errorf("b at_capacity rejections %v", v)
	}

	// A slot frees on a when one of its calls ends.
	hangupAtSim(t, a1)
	waitStatus(t, "e2e-cap-a1", "a1 ended", func(c *voicev1alpha1.Call) bool {
		return streamState(c) == voicev1alpha1.StreamPhaseDisconnected
	})
	eventually(t, "a holds one stream", func() bool { return a.counter(t, "callfleet_gateway_active_streams", nil) == 1 })
	place(a, "e2e-cap-a4")
	onPod("e2e-cap-a4", "gw-cap-a")
}

// TestBotKilledAndRestartedMidCall: the bot process dies mid-call and comes
// back on its address; the gateway reopens the bot socket (start frame
// marked resumed) and the call goes on: the sim hears bot audio again.
func TestBotKilledAndRestartedMidCall(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	bot1 := newTestBotOn(ln)
	g, err := startGateway(bot1.url, func(o *gateway.RunOptions) {
		o.PodName = "gw-reconnect-0"
		o.BotReconnect = 2 * time.Minute // longer than the test: the bot comes back first
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.stop() }()
	c := newCall(t, "e2e-bot-restart", nil)
	id := dial(t, c, streamURL(t, g.url, ns, c.Name, 1, time.Now().Add(10*time.Minute)))
	first := bot1.wait(t, c.Name)
	if first.start.Resumed {
		t.Error("first start frame marked resumed")
	}
	waitStatus(t, c.Name, "Connected", connected)
	first.sendAudio(t, 8000, 200, 320)
	before := waitSim(t, id, "bot audio played", func(_ sim.CallRecord, s sim.StreamRecord) bool { return s.Audio.Frames > 0 }).Streams[0].Audio.Frames

	bot1.kill()
	eventually(t, "the bot is down", func() bool { return first.closedNow() })
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("bot restart on %s: %v", addr, err)
	}
	bot2 := newTestBotOn(ln2)
	defer bot2.srv.Close()
	second := bot2.wait(t, c.Name)
	if !second.start.Resumed || second.start.Call != c.Name || second.start.Attempt != 1 {
		t.Errorf("start after restart %+v, want resumed for attempt 1", second.start)
	}
	second.sendAudio(t, 8000, 200, 320)
	rec := waitSim(t, id, "bot audio resumed", func(_ sim.CallRecord, s sim.StreamRecord) bool { return s.Audio.Frames > before })
	if s := rec.Streams[0]; !live(rec, s) || len(rec.Streams) != 1 {
		t.Errorf("the call's stream did not go on: %+v", rec.Streams)
	}
	if !connected(getCall(t, c.Name)) {
		t.Errorf("status.stream %+v", getCall(t, c.Name).Status.Stream)
	}
	// The caller's audio reaches the new bot.
	eventually(t, "caller audio to the new bot", func() bool { f, _, _, _ := second.stats(); return f > 0 })
	if v := g.counter(t, "callfleet_gateway_bot_reconnects_total", map[string]string{"result": "ok"}); v != 1 {
		t.Errorf("bot reconnects %v", v)
	}
	hangupAtSim(t, id)
	waitStatus(t, c.Name, "Disconnected", func(c *voicev1alpha1.Call) bool { return streamState(c) == voicev1alpha1.StreamPhaseDisconnected })
}

// TestBotGoneForGoodEndsTheCall: without a bot coming back, the call ends
// once BotReconnect has passed, as before.
func TestBotGoneForGoodEndsTheCall(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBotOn(ln)
	g, err := startGateway(b.url, func(o *gateway.RunOptions) {
		o.PodName = "gw-reconnect-1"
		o.BotReconnect = time.Second
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.stop() }()
	c := newCall(t, "e2e-bot-gone", nil)
	id := dial(t, c, streamURL(t, g.url, ns, c.Name, 1, time.Now().Add(10*time.Minute)))
	b.wait(t, c.Name)
	waitStatus(t, c.Name, "Connected", connected)
	b.kill()
	rec := waitSim(t, id, "socket closed", func(_ sim.CallRecord, s sim.StreamRecord) bool { return s.DisconnectedAt != nil })
	if s := rec.Streams[0]; s.ClosedBy != "peer" || s.CloseCode != int(websocket.StatusInternalError) {
		t.Errorf("close %d by %s, want 1011 by the gateway", s.CloseCode, s.ClosedBy)
	}
	if v := g.counter(t, "callfleet_gateway_bot_reconnects_total", map[string]string{"result": "gave_up"}); v != 1 {
		t.Errorf("gave_up %v", v)
	}
}

// TestKeyRotationMidCall: the mounted key Secret changes under a running
// gateway. Live calls are unaffected; during the overlap both the new and
// the old key verify; after it (previous removed) an old token is refused.
func TestKeyRotationMidCall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeKey := func(name string, k []byte) {
		t.Helper()
		// As the kubelet does: the new content appears at once, whole.
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, append(k, '\n'), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	newKey := func() []byte {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		return []byte(fmt.Sprintf("%x", k))
	}
	oldK, newK := newKey(), newKey()
	writeKey("key", oldK)
	g, err := startGateway(bots.url, func(o *gateway.RunOptions) {
		o.PodName = "gw-rotate-0"
		o.TokenKey = nil
		o.TokenKeyFile = filepath.Join(dir, "key")
		o.KeyReloadInterval = 50 * time.Millisecond
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.stop() }()
	later := time.Now().Add(10 * time.Minute)
	connect := func(name string, k []byte) (string, *botConn) {
		c := newCall(t, name, nil)
		id := dial(t, c, signedURL(t, k, g.url, ns, c.Name, 1, later))
		bc := bots.wait(t, c.Name)
		waitStatus(t, c.Name, "Connected", connected)
		return id, bc
	}
	liveID, liveBot := connect("e2e-rotate-live", oldK)

	writeKey("key", newK)
	writeKey("previous", oldK)
	eventually(t, "two keys loaded", func() bool { return g.counter(t, "callfleet_gateway_token_keys", nil) == 2 })
	connect("e2e-rotate-new", newK)
	connect("e2e-rotate-old-in-overlap", oldK)

	if err := os.Remove(filepath.Join(dir, "previous")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "one key loaded", func() bool { return g.counter(t, "callfleet_gateway_token_keys", nil) == 1 })
	stale := newCall(t, "e2e-rotate-old-after", nil)
	staleID := dial(t, stale, signedURL(t, oldK, g.url, ns, stale.Name, 1, later))
	sc := waitSim(t, staleID, "old token refused", func(_ sim.CallRecord, s sim.StreamRecord) bool { return s.DialError != "" })
	if !strings.Contains(sc.Streams[0].DialError, "401") {
		t.Errorf("old token after the overlap: %q, want a 401", sc.Streams[0].DialError)
	}
	if v := g.counter(t, "callfleet_gateway_stream_rejections_total", map[string]string{"reason": "bad_signature"}); v != 1 {
		t.Errorf("bad_signature rejections %v", v)
	}

	// The call that began under the old key never noticed.
	before := simCall(t, liveID).Streams[0].Audio.Frames
	liveBot.sendAudio(t, 8000, 200, 320)
	rec := waitSim(t, liveID, "audio after rotation", func(_ sim.CallRecord, s sim.StreamRecord) bool { return s.Audio.Frames > before })
	if !live(rec, rec.Streams[0]) {
		t.Errorf("live call after rotation: %+v", rec.Streams[0])
	}
	if v := g.counter(t, "callfleet_gateway_token_key_reloads_total", map[string]string{"result": "changed"}); v != 2 {
		t.Errorf("key reloads %v, want 2", v)
	}
}

// TestReplayedStreamURLRefused: a ws_url is good for one socket. Replayed
// after its stream ended, it is refused although signed and unexpired; so
// is one whose attempt has ended.
func TestReplayedStreamURLRefused(t *testing.T) {
	t.Parallel()
	c := newCall(t, "e2e-replay", nil)
	u := streamURL(t, gw.url, ns, c.Name, 1, time.Now().Add(10*time.Minute))
	id := dial(t, c, u)
	bots.wait(t, c.Name)
	waitStatus(t, c.Name, "Connected", connected)
	hangupAtSim(t, id)
	waitStatus(t, c.Name, "Disconnected", func(c *voicev1alpha1.Call) bool {
		return streamState(c) == voicev1alpha1.StreamPhaseDisconnected
	})

	refused := func(reason string) {
		t.Helper()
		before := gw.counter(t, "callfleet_gateway_stream_rejections_total", map[string]string{"reason": reason})
		conn, resp, err := websocket.Dial(context.Background(), u, nil)
		if err == nil {
			_ = conn.CloseNow()
			t.Fatalf("replayed ws_url upgraded (want %s)", reason)
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("replay: %v (%v), want 403", resp, err)
		}
		if after := gw.counter(t, "callfleet_gateway_stream_rejections_total", map[string]string{"reason": reason}); after != before+1 {
			t.Errorf("rejections{%s} %v → %v", reason, before, after)
		}
	}
	refused("replayed")
	if st := getCall(t, c.Name).Status.Stream; st.Attempt != 1 || st.State != voicev1alpha1.StreamPhaseDisconnected {
		t.Errorf("the replay touched status.stream: %+v", st)
	}

	// The Call controller records the attempt's end.
	cur := getCall(t, c.Name)
	base := cur.DeepCopy()
	cur.Status.Attempts[0].State = voicev1alpha1.AttemptEnded
	cur.Status.Attempts[0].EndTime = &metav1.Time{Time: time.Now()}
	cur.Status.Attempts[0].Outcome = voicev1alpha1.OutcomeAnswered
	if err := k8s.Status().Patch(context.Background(), cur, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the gateway's cache sees the end", func() bool {
		conn, resp, err := websocket.Dial(context.Background(), u, nil)
		if err == nil {
			_ = conn.CloseNow()
			t.Fatal("replayed ws_url upgraded")
		}
		return resp != nil && gw.counter(t, "callfleet_gateway_stream_rejections_total", map[string]string{"reason": "attempt_ended"}) > 0
	})
}

// TestDrainLeavesBridgedCallsUp: a call handed off to a human (the AI
// kept listening) is not hung up by the drain: its stream stops, and the
// person goes on talking to the agent.
func TestDrainLeavesBridgedCallsUp(t *testing.T) {
	t.Parallel()
	g, err := startGateway(bots.url, func(o *gateway.RunOptions) {
		o.PodName = "gw-drain-handoff"
		o.ShutdownDrain = 2 * time.Second
		o.GoodbyeLead = time.Second
		o.GoodbyeURL = "https://audio.example.com/goodbye.wav"
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.stop() }()
	c := newCall(t, "e2e-drain-bridged", func(c *voicev1alpha1.Call) {
		c.Spec.Handoff = &voicev1alpha1.CallHandoff{AgentPoolRef: voicev1alpha1.LocalRef{Name: "no-such-pool"}, Requested: true, KeepStreaming: true}
	})
	id := dial(t, c, streamURL(t, g.url, ns, c.Name, 1, time.Now().Add(10*time.Minute)))
	bots.wait(t, c.Name)
	waitStatus(t, c.Name, "Connected", connected)
	setHandoff(t, c.Name, func(h *voicev1alpha1.CallHandoffStatus) {
		h.Phase, h.Source, h.Agent, h.Number = voicev1alpha1.HandoffRinging, "Spec", "bob", agentNum
	})
	waitSim(t, id, "bridged", func(c sim.CallRecord, _ sim.StreamRecord) bool { return len(c.Bridges) == 1 && c.Bridges[0].Answered })
	waitStatus(t, c.Name, "bridgeSentTime", func(c *voicev1alpha1.Call) bool { return c.Status.Handoff.BridgeSentTime != nil })
	setHandoff(t, c.Name, func(h *voicev1alpha1.CallHandoffStatus) { h.Phase = voicev1alpha1.HandoffBridged })
	waitStatus(t, c.Name, "monitoring", func(c *voicev1alpha1.Call) bool { return c.Status.Stream.Monitoring })

	if err := g.stop(); err != nil {
		t.Fatalf("gateway: %v", err)
	}
	rec := waitSim(t, id, "stream stopped", func(_ sim.CallRecord, s sim.StreamRecord) bool { return s.StoppedAt != nil && s.DisconnectedAt != nil })
	if rec.State == "ended" {
		t.Errorf("the drain ended a bridged call (cause %q)", rec.HangupCause)
	}
	for _, p := range rec.Plays {
		if p.Source == "socket" {
			t.Errorf("the drain sent %s to a bridged call", p.Action)
		}
	}
	if st := getCall(t, c.Name).Status.Stream; st.State != voicev1alpha1.StreamPhaseStopped || st.HangupSent {
		t.Errorf("status.stream %+v", st)
	}
	hangupAtSim(t, id)
}

// TestTokenFromAnotherNamespaceRefused: gateways hold only their own
// endpoint's derived key, so a tenant of another namespace, holding its own
// key, cannot mint a ws_url for a Call here, even naming it correctly.
func TestTokenFromAnotherNamespaceRefused(t *testing.T) {
	t.Parallel()
	root := make([]byte, 32)
	_, _ = rand.Read(root)
	g, err := startGateway(bots.url, func(o *gateway.RunOptions) {
		o.PodName = "gw-derived-0"
		o.TokenKey = nil
		o.TokenRootKey = root // the gateway derives (ns, endpoint)'s key
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.stop() }()
	c := newCall(t, "e2e-cross-tenant", nil)
	later := time.Now().Add(10 * time.Minute)
	attackerKey, err := streamtoken.DeriveKey(root, "tenant-a", endpoint)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string][]byte{"namespace A's key": attackerKey, "the root itself": root} {
		conn, resp, err := websocket.Dial(context.Background(), signedURL(t, k, g.url, ns, c.Name, 1, later), nil)
		if err == nil {
			_ = conn.CloseNow()
			t.Fatalf("%s: upgraded", name)
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %v (%v), want 401", name, resp, err)
		}
	}
	if v := g.counter(t, "callfleet_gateway_stream_rejections_total", map[string]string{"reason": "bad_signature"}); v != 2 {
		t.Errorf("bad_signature rejections %v, want 2", v)
	}
	// The Call controller's token (signed with this endpoint's key) works.
	own, err := streamtoken.DeriveKey(root, ns, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	id := dial(t, c, signedURL(t, own, g.url, ns, c.Name, 1, later))
	bots.wait(t, c.Name)
	waitStatus(t, c.Name, "Connected", connected)
	hangupAtSim(t, id)
}
