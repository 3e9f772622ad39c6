package sim

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// liveCall places a call that stays up (answered, nobody hangs up) with a
// stream to a fresh peer, and returns its id and the accepted socket.
func liveCall(t *testing.T, h *harness, stream map[string]any, more ...any) (string, *peerConn) {
	t.Helper()
	peer := newWSPeer(t)
	pcmo := append(streamPCMO(peer.url+"?call=c1", stream), more...)
	id := h.dial(919876543210, pcmo)
	return id, peer.accept(t)
}

func answerForever(c *Config) { c.Scenario = Scenario{Default: Behaviour{Outcome: OutcomeAnswer}} }

func (h *harness) hangup(id string) {
	h.t.Helper()
	if code, m := h.post("/v1/call/action", map[string]any{"appid": testApp, "secret": testSecret, "cmiuuid": h.call(id).CMIUUID, "action": "hangup"}); code != 200 {
		h.t.Fatalf("hangup: %d %v", code, m)
	}
}

func TestStreamFramesPerVoiceQuality(t *testing.T) {
	t.Parallel()
	h := newHarness(t, answerForever)
	for _, tc := range []struct {
		vq    any
		rate  int
		bytes int
	}{{"8000", 8000, 320}, {16000, 16000, 640}, {"32000", 32000, 1280}} {
		t.Run(fmt.Sprint(tc.vq), func(t *testing.T) {
			id, pc := liveCall(t, h, map[string]any{"voice_quality": tc.vq})
			wantPath := "/ws" // the open question's strict reading: the query is dropped
			if h.sim.CurrentShapes().WSURLQuery == WSURLQueryKept {
				wantPath = "/ws?call=c1"
			}
			if pc.path != wantPath {
				t.Errorf("dialled %q, want %q", pc.path, wantPath)
			}
			pc.waitFrames(t, 55)
			frames := pc.framesFrom(0)
			for _, f := range frames {
				if len(f) != tc.bytes {
					t.Fatalf("frame of %d bytes, want %d", len(f), tc.bytes)
				}
			}
			// One second of caller audio: the caller's tone, not the agent's.
			cal, ag := toneEnergy(frames[:50], tc.rate, CallerToneHz), toneEnergy(frames[:50], tc.rate, AgentToneHz)
			if cal < 100*ag || cal == 0 {
				t.Errorf("caller tone %g vs agent tone %g", cal, ag)
			}
			h.hangup(id)
			endCode := h.checkCallEndClose(pc.waitClosed(t))
			c := h.waitEnded(id)
			st := c.Streams[0]
			if st.SampleRate != tc.rate || st.ClosedBy != "sim" || st.CloseCode != endCode || st.FramesSent < 55 || st.BytesSent != st.FramesSent*int64(tc.bytes) {
				t.Errorf("stream record %+v", st)
			}
		})
	}
}

func TestListenModes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.Scenario = Scenario{Default: Behaviour{Outcome: OutcomeAnswer}, DefaultAgent: AgentBehaviour{}}
	})
	bridge := bridgeAction(30, false, 912000000001)
	for _, tc := range []struct {
		mode           string
		caller, agent  bool
		silentUnbridge bool
	}{{"caller", true, false, false}, {"callee", false, true, true}, {"both", true, true, false}} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			// Before any bridge: what does this mode hear?
			id0, pc0 := liveCall(t, h, map[string]any{"listen_mode": tc.mode})
			pc0.waitFrames(t, 50)
			if got := allSilent(pc0.framesFrom(0)[:50]); got != tc.silentUnbridge {
				t.Errorf("unbridged all-silent=%v, want %v", got, tc.silentUnbridge)
			}
			h.hangup(id0)

			id, pc := liveCall(t, h, map[string]any{"listen_mode": tc.mode}, bridge)
			c := h.waitCall(id, "bridged", func(c CallRecord) bool { return len(c.Bridges) == 1 && c.Bridges[0].Answered })
			// Peer frame i is sim frame i; the sim's own counter (not the peer's,
			// which may lag) says which frames follow the bridge. One may be in flight.
			from := int(c.Streams[0].FramesSent) + 1
			pc.waitFrames(t, from+50)
			frames := pc.framesFrom(from)[:50]
			cal, ag := toneEnergy(frames, 8000, CallerToneHz), toneEnergy(frames, 8000, AgentToneHz)
			loud := func(x, other float64) bool { return x > 0 && x > other/100 }
			if loud(cal, ag) != tc.caller || loud(ag, cal) != tc.agent {
				t.Errorf("after bridge: caller tone %g, agent tone %g; want caller=%v agent=%v", cal, ag, tc.caller, tc.agent)
			}
			h.hangup(id)
			c = h.waitEnded(id)
			if c.Bridges[0].EndCause != "api" {
				t.Errorf("bridge end %q", c.Bridges[0].EndCause)
			}
		})
	}
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	h := newHarness(t, answerForever)
	id, pc := liveCall(t, h, nil)
	pc.waitFrames(t, 5)
	pc.sendText(t, map[string]any{"action": "pause"})
	c := h.waitCall(id, "paused", func(c CallRecord) bool { return len(c.Streams[0].Pauses) == 1 })
	n := c.Streams[0].FramesSent
	time.Sleep(300 * time.Millisecond)
	// At most a frame in flight when the pause landed: slowness only means fewer frames.
	if got := h.call(id).Streams[0].FramesSent; got > n+1 {
		t.Errorf("%d frames sent while paused", got-n)
	}
	pc.sendText(t, map[string]any{"action": "resume"})
	pc.waitFrames(t, int(n)+10)
	c = h.call(id)
	if p := c.Streams[0].Pauses[0]; p.ResumedAt == nil || c.State != "answered" {
		t.Errorf("pause %+v, call %s", p, c.State)
	}
	h.hangup(id)
	h.waitEnded(id)
}

func TestStopClosesSocketCallGoesOn(t *testing.T) {
	t.Parallel()
	h := newHarness(t, answerForever)
	id, pc := liveCall(t, h, nil)
	pc.waitFrames(t, 3)
	pc.sendText(t, `{"action":"stop"}`)
	if err := pc.waitClosed(t); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("close: %v", err)
	}
	c := h.waitCall(id, "disconnect recorded", func(c CallRecord) bool { return c.Streams[0].DisconnectedAt != nil })
	if c.State != "answered" || c.Streams[0].StoppedAt == nil || c.Streams[0].ClosedBy != "sim" {
		t.Errorf("after stop: state %s stream %+v", c.State, c.Streams[0])
	}
	h.hangup(id)
	c = h.waitEnded(id)
	got := eventStatuses(c)
	want := []string{"started", "ringing", "out_answered", "stream_connected", "STREAM_DISCONNECTED", "hangup", "cdr:a"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events %v", got)
	}
}

func TestPeerCloseIsReported(t *testing.T) {
	t.Parallel()
	h := newHarness(t, answerForever)
	id, pc := liveCall(t, h, nil)
	pc.waitFrames(t, 3)
	_ = pc.c.Close(4001, "bot restarting")
	c := h.waitCall(id, "disconnect recorded", func(c CallRecord) bool { return c.Streams[0].DisconnectedAt != nil })
	if st := c.Streams[0]; st.CloseCode != 4001 || st.CloseReason != "bot restarting" || st.ClosedBy != "peer" || c.State != "answered" {
		t.Errorf("stream %+v, call %s", st, c.State)
	}
	h.waitCall(id, "event delivered", func(c CallRecord) bool {
		return len(h.hooks.events(id)) >= 5
	})
	e := h.hooks.events(id)[4]
	if e["status"] != "STREAM_DISCONNECTED" || !strings.Contains(e["ws_status"].(string), `"code":4001`) {
		t.Errorf("event %v", e)
	}
	h.hangup(id)
	h.waitEnded(id)
}

func audioMsg(typ string, rate any, pcm []byte) map[string]any {
	return map[string]any{"type": "streamAudio", "data": map[string]any{"audioDataType": typ, "sampleRate": rate, "audioData": base64.StdEncoding.EncodeToString(pcm)}}
}

func TestStreamAudioBreakAndIgnored(t *testing.T) {
	t.Parallel()
	h := newHarness(t, answerForever)
	id, pc := liveCall(t, h, nil)
	// 60 s of raw audio queued: a break a moment later must cut most of it.
	pc.sendText(t, audioMsg("raw", 8000, make([]byte, 60*16000)))
	pc.sendText(t, audioMsg("mp3", 8000, []byte("ID3fake-mp3")))
	wav := make([]byte, 44+8000)
	copy(wav, "RIFF")
	copy(wav[8:], "WAVE")
	binary.LittleEndian.PutUint32(wav[28:], 16000) // byte rate: 0.5 s of data
	pc.sendText(t, audioMsg("wav", 16000, wav))
	pc.sendText(t, `{"action":"break"}`)
	// Rejected: wrong rate for an 8 kHz stream, odd length, bad base64, string rate, unknown type.
	pc.sendText(t, audioMsg("raw", 16000, make([]byte, 640)))
	pc.sendText(t, audioMsg("raw", 8000, make([]byte, 321)))
	pc.sendText(t, `{"type":"streamAudio","data":{"audioDataType":"raw","sampleRate":8000,"audioData":"!!"}}`)
	pc.sendText(t, audioMsg("raw", "8000", make([]byte, 320)))
	pc.sendText(t, audioMsg("flac", 8000, make([]byte, 320)))
	// Ignored: anything else.
	pc.sendText(t, `{"event":"media"}`)
	pc.sendText(t, `hello`)
	pc.sendText(t, `{"action":"dance"}`)
	_ = pc.c.Write(context.Background(), websocket.MessageBinary, []byte{1, 2})
	c := h.waitCall(id, "all frames handled", func(c CallRecord) bool { return c.Streams[0].FramesReceived == 13 })
	st := c.Streams[0]
	if st.Audio.Frames != 3 || st.Audio.Bytes != 60*16000+11+int64(len(wav)) || st.Audio.BytesByType["mp3"] != 11 {
		t.Errorf("audio %+v", st.Audio)
	}
	if st.Audio.PlayedMs != 60000+500 || fmt.Sprint(st.Audio.SampleRates) != "[8000 16000]" {
		t.Errorf("played %d ms at %v", st.Audio.PlayedMs, st.Audio.SampleRates)
	}
	if len(st.Breaks) != 1 || st.Breaks[0].CutMs <= 0 || st.Breaks[0].CutMs > 60500 {
		t.Errorf("breaks %+v", st.Breaks)
	}
	if len(st.Rejected) != 5 || st.IgnoredCount != 4 {
		t.Errorf("rejected %+v ignored %+v", st.Rejected, st.Ignored)
	}
	h.hangup(id)
	h.waitEnded(id)
}

func TestMidCallPCMO(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.Scenario = Scenario{Default: Behaviour{Outcome: OutcomeAnswer}, DefaultAgent: AgentBehaviour{AnswerDelay: time.Millisecond}}
	})
	id, pc := liveCall(t, h, map[string]any{"listen_mode": "both"})
	pc.waitFrames(t, 3)
	pc.sendText(t, `[{"action":"dance"}]`)
	pc.sendText(t, `[{"action":"play","file_url":"https://example.com/hold.mp3"}]`)
	b, _ := json.Marshal([]any{bridgeAction(30, false, 912000000007)})
	pc.sendText(t, string(b))
	c := h.waitCall(id, "bridged from the socket", func(c CallRecord) bool { return len(c.Bridges) == 1 && c.Bridges[0].Answered })
	if c.Bridges[0].Source != "socket" || len(c.Plays) != 1 || c.Plays[0].FileURL == "" || len(c.Streams[0].Rejected) != 1 {
		t.Errorf("bridge %+v plays %+v rejected %+v", c.Bridges, c.Plays, c.Streams[0].Rejected)
	}
	// A second bridge while one is up is refused.
	pc.sendText(t, string(b))
	h.waitCall(id, "second bridge refused", func(c CallRecord) bool {
		return len(c.Bridges) == 2 && strings.HasPrefix(c.Bridges[1].EndCause, "refused")
	})
	// The stream goes on after the bridge, carrying both parties.
	from := int(h.call(id).Streams[0].FramesSent) + 1
	pc.waitFrames(t, from+50)
	frames := pc.framesFrom(from)[:50]
	if cal, ag := toneEnergy(frames, 8000, CallerToneHz), toneEnergy(frames, 8000, AgentToneHz); cal == 0 || ag == 0 {
		t.Errorf("mixed audio: caller %g agent %g", cal, ag)
	}
	pc.sendText(t, `[{"action":"hangup"}]`)
	h.checkCallEndClose(pc.waitClosed(t))
	c = h.waitEnded(id)
	if c.HangupCause != "pcmo" || c.Bridges[0].EndCause != "pcmo" {
		t.Errorf("cause %q bridge %q", c.HangupCause, c.Bridges[0].EndCause)
	}
}

func TestStreamBeforeAnswer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.Scenario = Scenario{Numbers: map[string]Behaviour{
			"919876543210": {Outcome: OutcomeNoAnswer, RingTimeout: time.Hour},
			"919876543211": {Outcome: OutcomeBusy},
		}}
	})
	peer := newWSPeer(t)
	// stream_on_answer false: dialled while the phone rings; only silence.
	id := h.dial(919876543210, streamPCMO(peer.url, map[string]any{"stream_on_answer": false}))
	pc := peer.accept(t)
	pc.waitFrames(t, 10)
	c := h.call(id)
	if c.State != "ringing" || !allSilent(pc.framesFrom(0)) {
		t.Errorf("state %s, silent %v", c.State, allSilent(pc.framesFrom(0)))
	}
	h.hangup(id)
	h.waitEnded(id)
	// stream_on_answer true and never answered: never dialled.
	id = h.dial(919876543211, streamPCMO(peer.url, nil))
	if c := h.waitEnded(id); len(c.Streams) != 0 {
		t.Errorf("streams %+v", c.Streams)
	}
}

func TestStreamDialFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.Scenario = Scenario{Default: Behaviour{Outcome: OutcomeAnswer, HangupAfter: 50 * time.Millisecond}}
	})
	id := h.dial(919876543210, streamPCMO("ws://127.0.0.1:1/nobody", nil))
	c := h.waitEnded(id)
	if st := c.Streams[0]; st.DialError == "" || st.ConnectedAt != nil || st.CloseCode != 1006 {
		t.Errorf("stream %+v", st)
	}
	var ws string
	for _, e := range h.hooks.events(id) {
		if e["status"] == "STREAM_DISCONNECTED" {
			ws, _ = e["ws_status"].(string)
		}
	}
	if !strings.Contains(ws, `"code":1006`) || !strings.Contains(ws, "Abnormal closure") {
		t.Errorf("ws_status %q", ws)
	}
}

func TestCloseEndsStreams(t *testing.T) {
	t.Parallel()
	hooks := newHookRecv(t)
	s, err := New(Config{Apps: []App{{testApp, testSecret}}, WebhookURL: hooks.srv.URL, Scenario: Scenario{Default: Behaviour{Outcome: OutcomeAnswer}}})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, sim: s, url: u, hooks: hooks}
	_, pc := liveCall(t, h, nil)
	pc.waitFrames(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_ = pc.waitClosed(t) // how it closed is not what this test checks
	if c := s.Calls()[0]; c.State != "ended" || c.HangupCause != "shutdown" {
		t.Errorf("after Close: %s %s", c.State, c.HangupCause)
	}
}
