package gateway_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/gateway"
	"github.com/callfleet/callfleet/internal/sim"
)

// TestStreamEndToEnd follows one call through everything the gateway does
// on a live socket: the start frame, audio both ways, mark, barge-in,
// pause/resume, announcements, a bot-requested handoff kept for monitoring,
// and a hangup from the Call, checking the sim's records and the Call's
// status at each step.
func TestStreamEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := &voicev1alpha1.AgentPool{
		ObjectMeta: metav1.ObjectMeta{Name: "humans", Namespace: ns},
		Spec: voicev1alpha1.AgentPoolSpec{
			Agents:             []voicev1alpha1.Agent{{Name: "alice", Number: agentNum}},
			RingTimeoutSeconds: 25,
		},
	}
	if err := k8s.Create(ctx, pool); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), pool) })
	c := newCall(t, "e2e-main", func(c *voicev1alpha1.Call) {
		c.Spec.Handoff = &voicev1alpha1.CallHandoff{AgentPoolRef: voicev1alpha1.LocalRef{Name: pool.Name}, KeepStreaming: true}
	})
	id := dial(t, c, streamURL(t, gw.url, ns, c.Name, 1, time.Now().Add(10*time.Minute)))
	bot := bots.wait(t, c.Name)

	want := gateway.StartMessage{
		Type: "start", Call: c.Name, Namespace: ns, Attempt: 1, CMIUUID: "cmi-" + c.Name,
		From: callerID, To: c.Spec.To, Variables: map[string]string{"customer": "Asha"},
		SampleRate: 8000, ListenMode: "both",
	}
	if got := bot.start; got.Type != want.Type || got.Call != want.Call || got.Namespace != want.Namespace ||
		got.Attempt != want.Attempt || got.CMIUUID != want.CMIUUID || got.From != want.From || got.To != want.To ||
		got.Variables["customer"] != "Asha" || got.SampleRate != want.SampleRate || got.ListenMode != want.ListenMode {
		t.Errorf("start frame %+v, want %+v", got, want)
	}
	cur := waitStatus(t, c.Name, "status.stream Connected", func(c *voicev1alpha1.Call) bool {
		return streamState(c) == voicev1alpha1.StreamPhaseConnected
	})
	if st := cur.Status.Stream; st.Pod != podName || st.ConnectedTime == nil || st.DisconnectedTime != nil {
		t.Errorf("connect report %+v", st)
	}

	// Platform → bot: the sim's L16 frames arrive as binary, unchanged.
	eventually(t, "50 platform frames at the bot", func() bool { f, _, _, _ := bot.stats(); return f >= 50 })
	frames, _, nonSilent, sizes := bot.stats()
	if len(sizes) != 1 || sizes[320] != frames || nonSilent == 0 {
		t.Errorf("bot got frame sizes %v (want only 320 bytes, 20 ms at 8 kHz), %d with sound", sizes, nonSilent)
	}

	// Bot → platform: 1 s of audio in 20 ms messages, then 20 ms split
	// mid-sample, all played by the sim as raw L16 at the call's rate.
	bot.sendAudio(t, 8000, 1000, 320)
	bot.sendAudio(t, 8000, 20, 161)
	sc := waitSim(t, id, "1.02 s of bot audio played", func(_ sim.CallRecord, s sim.StreamRecord) bool { return s.Audio.PlayedMs >= 1020 })
	if s := sc.Streams[0]; !slices.Equal(s.Audio.SampleRates, []int{8000}) || s.Audio.BytesByType["raw"] != 16320 || len(s.Rejected) != 0 {
		t.Errorf("sim audio %+v, rejected %v", s.Audio, s.Rejected)
	}

	// mark comes back once the audio before it is sent; clear is a break.
	bot.send(t, map[string]any{"type": "mark", "name": "greeting-done"})
	eventually(t, "mark echoed", func() bool {
		m := bot.events("mark")
		return len(m) == 1 && m[0]["name"] == "greeting-done"
	})
	bot.send(t, map[string]any{"type": "clear"})
	waitSim(t, id, "break", func(_ sim.CallRecord, s sim.StreamRecord) bool { return len(s.Breaks) == 1 })

	// Pause and resume from spec.stream.state.
	editSpec(t, c.Name, func(c *voicev1alpha1.Call) { c.Spec.Stream.State = voicev1alpha1.StreamPaused })
	waitSim(t, id, "paused", func(_ sim.CallRecord, s sim.StreamRecord) bool { return len(s.Pauses) == 1 })
	waitStatus(t, c.Name, "status Paused", func(c *voicev1alpha1.Call) bool { return streamState(c) == voicev1alpha1.StreamPhasePaused })
	eventually(t, "bot told paused", func() bool { return len(bot.events("paused")) == 1 })
	editSpec(t, c.Name, func(c *voicev1alpha1.Call) { c.Spec.Stream.State = voicev1alpha1.StreamActive })
	waitSim(t, id, "resumed", func(_ sim.CallRecord, s sim.StreamRecord) bool {
		return len(s.Pauses) == 1 && s.Pauses[0].ResumedAt != nil
	})
	waitStatus(t, c.Name, "status Connected again", func(c *voicev1alpha1.Call) bool { return streamState(c) == voicev1alpha1.StreamPhaseConnected })
	eventually(t, "bot told resumed", func() bool { return len(bot.events("resumed")) == 1 })

	// Announcements: each played once, by URL or by uploaded file.
	editSpec(t, c.Name, func(c *voicev1alpha1.Call) {
		c.Spec.Announcements = []voicev1alpha1.Announcement{{Name: "disclaimer", URL: "https://audio.example.com/disclaimer.mp3"}}
	})
	waitStatus(t, c.Name, "disclaimer recorded", func(c *voicev1alpha1.Call) bool {
		return slices.Equal(c.Status.Stream.AnnouncementsPlayed, []string{"disclaimer"})
	})
	editSpec(t, c.Name, func(c *voicev1alpha1.Call) {
		c.Spec.Announcements = append(c.Spec.Announcements, voicev1alpha1.Announcement{Name: "welcome", FileName: "welcome.wav"})
	})
	waitStatus(t, c.Name, "welcome recorded", func(c *voicev1alpha1.Call) bool {
		return slices.Equal(c.Status.Stream.AnnouncementsPlayed, []string{"disclaimer", "welcome"})
	})
	sc = simCall(t, id)
	if p := socketPlays(sc); len(p) != 2 || p[0].FileURL != "https://audio.example.com/disclaimer.mp3" || p[1].FileName != "welcome.wav" {
		t.Errorf("sim plays %+v", p)
	}

	// The bot asks for a human: the gateway records the request for the
	// controller.
	bot.send(t, map[string]any{"type": "handoff", "reason": "caller asked for a human"})
	cur = waitStatus(t, c.Name, "handoff Requested", func(c *voicev1alpha1.Call) bool {
		return c.Status.Handoff != nil && c.Status.Handoff.Phase == voicev1alpha1.HandoffRequested
	})
	if h := cur.Status.Handoff; h.Source != "Bot" || h.Reason != "caller asked for a human" || h.RequestedTime == nil {
		t.Errorf("handoff request %+v", h)
	}
	// The controller (this test) reserves alice; the gateway bridges.
	setHandoff(t, c.Name, func(h *voicev1alpha1.CallHandoffStatus) {
		h.Phase, h.Agent, h.Number, h.AgentAssignedTime = voicev1alpha1.HandoffRinging, "alice", agentNum, ptrTime(metav1.Now())
	})
	sc = waitSim(t, id, "agent answered the bridge", func(c sim.CallRecord, _ sim.StreamRecord) bool {
		return len(c.Bridges) == 1 && c.Bridges[0].Answered
	})
	if b := sc.Bridges[0]; b.Source != "socket" || !slices.Equal(b.Targets, []string{agentNum}) || b.From != callerID || b.TimeoutSeconds != 25 {
		t.Errorf("bridge %+v: want from %s to %s ringing 25 s (the pool's timeout)", b, callerID, agentNum)
	}
	waitStatus(t, c.Name, "bridgeSentTime", func(c *voicev1alpha1.Call) bool { return c.Status.Handoff.BridgeSentTime != nil })
	setHandoff(t, c.Name, func(h *voicev1alpha1.CallHandoffStatus) {
		h.Phase, h.BridgedTime = voicev1alpha1.HandoffBridged, ptrTime(metav1.Now())
	})
	cur = waitStatus(t, c.Name, "monitoring", func(c *voicev1alpha1.Call) bool { return c.Status.Stream.Monitoring })
	if st := cur.Status.Stream; st.State != voicev1alpha1.StreamPhaseConnected || !strings.Contains(st.Reason, "monitoring") {
		t.Errorf("kept stream %+v", st)
	}
	eventually(t, "bot told bridged", func() bool {
		h := bot.events("handoff")
		return len(h) == 1 && h[0]["phase"] == "Bridged" && h[0]["agent"] == "alice"
	})
	// keepStreaming: audio still flows to the bot after the bridge.
	f0, _, _, _ := bot.stats()
	eventually(t, "audio after the bridge", func() bool { f, _, _, _ := bot.stats(); return f >= f0+25 })

	// Hang up from the Call.
	editSpec(t, c.Name, func(c *voicev1alpha1.Call) { c.Spec.Hangup = true })
	sc = waitSim(t, id, "call ended by the PCMO hangup", func(c sim.CallRecord, s sim.StreamRecord) bool {
		return c.State == "ended" && s.DisconnectedAt != nil
	})
	if sc.HangupCause != "pcmo" {
		t.Errorf("hangup cause %q, want pcmo", sc.HangupCause)
	}
	cur = waitStatus(t, c.Name, "status Disconnected", func(c *voicev1alpha1.Call) bool {
		return streamState(c) == voicev1alpha1.StreamPhaseDisconnected
	})
	// Piopiy, as documented, drops the socket at the call's end (1006).
	if st := cur.Status.Stream; !st.HangupSent || st.CloseCode != 1006 || st.Reason != "platform dropped the socket after the hangup" || st.DisconnectedTime == nil || st.Monitoring ||
		!slices.Equal(st.AnnouncementsPlayed, []string{"disclaimer", "welcome"}) || st.Pod != podName {
		t.Errorf("final report %+v", st)
	}
	if err := bot.waitClosed(t); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("bot socket closed with %v, want 1000", err)
	}
	if s := bot.events("stop"); len(s) != 1 {
		t.Errorf("bot stop events %v", s)
	}
	if p := socketPlays(simCall(t, id)); len(p) != 3 || p[2].Action != "hangup" {
		t.Errorf("announcements replayed or hangup missing: %+v", p)
	}

	for _, tc := range []struct {
		name   string
		labels map[string]string
	}{
		{"callfleet_gateway_frames_total", map[string]string{"direction": "from_platform"}},
		{"callfleet_gateway_frames_total", map[string]string{"direction": "to_bot"}},
		{"callfleet_gateway_frames_total", map[string]string{"direction": "from_bot"}},
		{"callfleet_gateway_frames_total", map[string]string{"direction": "to_platform"}},
		{"callfleet_gateway_relay_latency_seconds", map[string]string{"direction": "platform_to_bot"}},
		{"callfleet_gateway_relay_latency_seconds", map[string]string{"direction": "bot_to_platform"}},
		{"callfleet_gateway_control_frames_total", map[string]string{"action": "pause"}},
		{"callfleet_gateway_control_frames_total", map[string]string{"action": "resume"}},
		{"callfleet_gateway_control_frames_total", map[string]string{"action": "break"}},
		{"callfleet_gateway_control_frames_total", map[string]string{"action": "play"}},
		{"callfleet_gateway_control_frames_total", map[string]string{"action": "bridge"}},
		{"callfleet_gateway_control_frames_total", map[string]string{"action": "hangup"}},
		{"callfleet_gateway_streams_total", nil},
	} {
		if v := gw.counter(t, tc.name, tc.labels); v < 1 {
			t.Errorf("%s%v = %v, want > 0", tc.name, tc.labels, v)
		}
	}
}

func socketPlays(c sim.CallRecord) []sim.PlayRecord {
	var out []sim.PlayRecord
	for _, p := range c.Plays {
		if p.Source == "socket" {
			out = append(out, p)
		}
	}
	return out
}

func ptrTime(t metav1.Time) *metav1.Time { return &t }

// TestStopAfterHandoff: without keepStreaming the stream stops once the
// agent is bridged, and status says why. The pool cannot be read, so the
// bridge rings for the default 20 s.
func TestStopAfterHandoff(t *testing.T) {
	t.Parallel()
	c := newCall(t, "e2e-handoff-stop", func(c *voicev1alpha1.Call) {
		c.Spec.Handoff = &voicev1alpha1.CallHandoff{AgentPoolRef: voicev1alpha1.LocalRef{Name: "no-such-pool"}, Requested: true}
	})
	id := dial(t, c, streamURL(t, gw.url, ns, c.Name, 1, time.Now().Add(10*time.Minute)))
	bot := bots.wait(t, c.Name)
	waitStatus(t, c.Name, "Connected", func(c *voicev1alpha1.Call) bool { return streamState(c) == voicev1alpha1.StreamPhaseConnected })

	setHandoff(t, c.Name, func(h *voicev1alpha1.CallHandoffStatus) {
		h.Phase, h.Source, h.Agent, h.Number = voicev1alpha1.HandoffRinging, "Spec", "bob", agentNum
	})
	sc := waitSim(t, id, "bridged", func(c sim.CallRecord, _ sim.StreamRecord) bool { return len(c.Bridges) == 1 && c.Bridges[0].Answered })
	if b := sc.Bridges[0]; b.TimeoutSeconds != gateway.DefaultBridgeTimeoutSeconds || b.From != callerID {
		t.Errorf("bridge %+v", b)
	}
	waitStatus(t, c.Name, "bridgeSentTime", func(c *voicev1alpha1.Call) bool { return c.Status.Handoff.BridgeSentTime != nil })
	setHandoff(t, c.Name, func(h *voicev1alpha1.CallHandoffStatus) { h.Phase = voicev1alpha1.HandoffBridged })

	waitSim(t, id, "stream stopped", func(_ sim.CallRecord, s sim.StreamRecord) bool { return s.StoppedAt != nil && s.DisconnectedAt != nil })
	cur := waitStatus(t, c.Name, "status Stopped with a close code", func(c *voicev1alpha1.Call) bool {
		return streamState(c) == voicev1alpha1.StreamPhaseStopped && c.Status.Stream.DisconnectedTime != nil
	})
	if st := cur.Status.Stream; st.Reason != "stopped after handoff to bob" || st.Monitoring || st.CloseCode != 1000 {
		t.Errorf("report %+v", st)
	}
	if h := bot.events("handoff"); len(h) != 1 || h[0]["phase"] != "Bridged" {
		t.Errorf("bot handoff events %v", h)
	}
	_ = bot.waitClosed(t) // the stop event below says how it ended
	if s := bot.events("stop"); len(s) != 1 || s[0]["reason"] != "stopped after handoff to bob" {
		t.Errorf("bot stop events %v", s)
	}
	if simCall(t, id).State == "ended" {
		t.Error("the call ended; only the stream should have")
	}
}

// TestPausedAtConnectThenStopped: control set before the socket opens is
// applied on connect (in the same status write); Stopped ends the stream
// for good while the call goes on. A second socket for the same attempt is
// refused while the first is open.
func TestPausedAtConnectThenStopped(t *testing.T) {
	t.Parallel()
	c := newCall(t, "e2e-stop", func(c *voicev1alpha1.Call) { c.Spec.Stream.State = voicev1alpha1.StreamPaused })
	u := streamURL(t, gw.url, ns, c.Name, 1, time.Now().Add(10*time.Minute))
	id := dial(t, c, u)
	bot := bots.wait(t, c.Name)
	waitSim(t, id, "paused on connect", func(_ sim.CallRecord, s sim.StreamRecord) bool { return len(s.Pauses) == 1 })
	waitStatus(t, c.Name, "status Paused", func(c *voicev1alpha1.Call) bool { return streamState(c) == voicev1alpha1.StreamPhasePaused })
	eventually(t, "bot told paused", func() bool { return len(bot.events("paused")) == 1 })

	_, resp, err := websocket.Dial(context.Background(), u, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusConflict {
		t.Errorf("second socket for the attempt: %v %v, want 409", err, resp)
	}

	editSpec(t, c.Name, func(c *voicev1alpha1.Call) { c.Spec.Stream.State = voicev1alpha1.StreamStopped })
	waitSim(t, id, "stopped", func(_ sim.CallRecord, s sim.StreamRecord) bool { return s.StoppedAt != nil && s.DisconnectedAt != nil })
	cur := waitStatus(t, c.Name, "status Stopped and closed", func(c *voicev1alpha1.Call) bool {
		return streamState(c) == voicev1alpha1.StreamPhaseStopped && c.Status.Stream.DisconnectedTime != nil
	})
	if st := cur.Status.Stream; st.Reason != "stopped by spec.stream.state" || st.CloseCode != 1000 {
		t.Errorf("report %+v", st)
	}
	_ = bot.waitClosed(t) // the stop event below says how it ended
	if s := bot.events("stop"); len(s) != 1 {
		t.Errorf("bot stop events %v", s)
	}
	if simCall(t, id).State == "ended" {
		t.Error("the call ended; only the stream should have")
	}
}

// TestBotHangupAndRefusedHandoff: a Call without spec.handoff cannot be
// handed off (the bot hears why); the bot's hangup ends the call.
func TestBotHangupAndRefusedHandoff(t *testing.T) {
	t.Parallel()
	c := newCall(t, "e2e-bot-hangup", nil)
	id := dial(t, c, streamURL(t, gw.url, ns, c.Name, 1, time.Now().Add(10*time.Minute)))
	bot := bots.wait(t, c.Name)
	bot.send(t, map[string]any{"type": "handoff", "reason": "wants a human"})
	eventually(t, "handoff refused", func() bool {
		h := bot.events("handoff")
		return len(h) == 1 && h[0]["phase"] == "Failed"
	})
	if getCall(t, c.Name).Status.Handoff != nil {
		t.Error("status.handoff written for a Call without spec.handoff")
	}
	bot.send(t, map[string]any{"type": "hangup"})
	sc := waitSim(t, id, "call ended", func(c sim.CallRecord, _ sim.StreamRecord) bool { return c.State == "ended" })
	if sc.HangupCause != "pcmo" {
		t.Errorf("hangup cause %q", sc.HangupCause)
	}
	waitStatus(t, c.Name, "hangupSent and Disconnected", func(c *voicev1alpha1.Call) bool {
		return c.Status.Stream.HangupSent && streamState(c) == voicev1alpha1.StreamPhaseDisconnected
	})
}

// TestRefusedBeforeUpgrade: every bad or inapplicable token gets a plain
// HTTP error, never a socket, and is counted by reason.
func TestRefusedBeforeUpgrade(t *testing.T) {
	t.Parallel()
	good := newCall(t, "e2e-auth", nil)
	other := newCall(t, "e2e-auth-other-endpoint", func(c *voicev1alpha1.Call) {
		c.Spec.StreamEndpointRef.Name = "other-bots"
	})
	later := time.Now().Add(10 * time.Minute)
	otherKey := []byte("another-key-another-key-another-key!")
	for _, tc := range []struct {
		name   string
		url    func() string
		status int
		reason string
	}{
		{"no token", func() string { return gw.url + "/stream?call=" + ns + "/" + good.Name + "&attempt=1" }, 401, "missing_token"},
		{"garbage token", func() string { return gw.url + "/stream?token=not-a-token" }, 401, "malformed"},
		{"other key", func() string { return signedURL(t, otherKey, gw.url, ns, good.Name, 1, later) }, 401, "bad_signature"},
		{"expired", func() string { return streamURL(t, gw.url, ns, good.Name, 1, time.Now().Add(-time.Second)) }, 403, "expired"},
		{"call in clear differs", func() string {
			return strings.Replace(streamURL(t, gw.url, ns, good.Name, 1, later), "e2e-auth&", "e2e-main&", 1)
		}, 403, "mismatch"},
		{"other namespace", func() string { return streamURL(t, gw.url, "default", good.Name, 1, later) }, 403, "wrong_namespace"},
		{"no such call", func() string { return streamURL(t, gw.url, ns, "e2e-nobody", 1, later) }, 404, "unknown_call"},
		{"not the current attempt", func() string { return streamURL(t, gw.url, ns, good.Name, 2, later) }, 403, "stale_attempt"},
		{"another endpoint's call", func() string { return streamURL(t, gw.url, ns, other.Name, 1, later) }, 403, "wrong_endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := gw.counter(t, "callfleet_gateway_stream_rejections_total", map[string]string{"reason": tc.reason})
			conn, resp, err := websocket.Dial(context.Background(), tc.url(), nil)
			if err == nil {
				_ = conn.CloseNow()
				t.Fatal("upgraded")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("got %v (%v), want HTTP %d", resp, err, tc.status)
			}
			if after := gw.counter(t, "callfleet_gateway_stream_rejections_total", map[string]string{"reason": tc.reason}); after != before+1 {
				t.Errorf("rejections{reason=%s} went %v → %v", tc.reason, before, after)
			}
		})
	}

	// Through the platform: the sim's socket fails and no bot is dialled.
	id := dial(t, good, streamURL(t, gw.url, ns, good.Name, 1, time.Now().Add(-time.Minute)))
	sc := waitSim(t, id, "stream dial failed", func(_ sim.CallRecord, s sim.StreamRecord) bool { return s.DialError != "" })
	if !strings.Contains(sc.Streams[0].DialError, "403") {
		t.Errorf("sim dial error %q, want a 403", sc.Streams[0].DialError)
	}
	if st := getCall(t, good.Name).Status.Stream; st == nil || st.State != voicev1alpha1.StreamPhasePending {
		t.Errorf("status.stream %+v written for a refused socket", st)
	}
}
