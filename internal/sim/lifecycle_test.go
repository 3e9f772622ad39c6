package sim

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLifecycleOutcomes(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	numbers := map[string]Behaviour{
		"911000000001": {Outcome: OutcomeAnswer, RingDelay: 10 * ms, AnswerDelay: 20 * ms, HangupAfter: 50 * ms},
		"911000000002": {Outcome: OutcomeBusy, AnswerDelay: 10 * ms},
		"911000000003": {Outcome: OutcomeNoAnswer, RingTimeout: 50 * ms},
		"911000000004": {Outcome: OutcomeReject, AnswerDelay: 20 * ms},
		"911000000005": {Outcome: OutcomeVoicemail, AnswerDelay: 10 * ms, HangupAfter: 50 * ms},
	}
	h := newHarness(t, func(c *Config) { c.Scenario = Scenario{Numbers: numbers} })
	peer := newWSPeer(t)
	cases := []struct {
		to      int64
		outcome string
		cause   string
		events  []string
		cdr     string
	}{
		{911000000001, "answered", "callee", []string{"started", "ringing", "out_answered", "stream_connected", "STREAM_DISCONNECTED", "hangup", "cdr:a"}, "answered"},
		{911000000002, "busy", "busy", []string{"started", "hangup", "cdr:a"}, "missed"},
		{911000000003, "noanswer", "noanswer", []string{"started", "ringing", "hangup", "cdr:a"}, "missed"},
		{911000000004, "rejected", "rejected", []string{"started", "ringing", "hangup", "cdr:a"}, "missed"},
		{911000000005, "voicemail", "callee", []string{"started", "ringing", "out_answered", "stream_connected", "STREAM_DISCONNECTED", "hangup", "cdr:a"}, "answered"},
	}
	for _, tc := range cases {
		t.Run(tc.outcome, func(t *testing.T) {
			id := h.dial(tc.to, streamPCMO(peer.url, nil))
			if tc.cdr == "answered" {
				pc := peer.accept(t)
				_ = pc.waitClosed(t) // how it closed is not what this test checks
			}
			c := h.waitEnded(id)
			if c.Outcome != tc.outcome || c.HangupCause != tc.cause {
				t.Errorf("outcome %q cause %q, want %q %q", c.Outcome, c.HangupCause, tc.outcome, tc.cause)
			}
			if got := eventStatuses(c); !slices.Equal(got, tc.events) {
				t.Errorf("events %v, want %v", got, tc.events)
			}
			if got := h.hooks.statuses(id); !slices.Equal(got, tc.events) {
				t.Errorf("delivered %v, want %v", got, tc.events)
			}
			evs := h.hooks.events(id)
			cdr := evs[len(evs)-1]
			if cdr["status"] != tc.cdr {
				t.Errorf("cdr status %v", cdr["status"])
			}
			// Every call is dialled exactly once.
			if n := len(h.hooks.events(id)); n != len(tc.events) {
				t.Errorf("%d deliveries", n)
			}
		})
	}
}

func TestDurationIsEnforced(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.Scenario = Scenario{Default: Behaviour{Outcome: OutcomeAnswer}} })
	b := callBody(919876543210, streamPCMO("ws://127.0.0.1:1/x", nil))
	b["duration"] = 1
	code, m := h.post("/v2/global_pcmo_make_call", b)
	if code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	c := h.waitEnded(m["request_id"].(string))
	if c.HangupCause != "duration" {
		t.Fatalf("cause %q", c.HangupCause)
	}
}

func TestPCMOHangupAndParam(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	id := h.dial(919876543210, []any{
		map[string]any{"action": "param", "text": "customer=42"},
		map[string]any{"action": "play", "file_url": "https://example.com/a.mp3"},
		map[string]any{"action": "record"},
		map[string]any{"action": "hangup"},
		map[string]any{"action": "speak", "text": "never"},
	})
	c := h.waitEnded(id)
	if c.HangupCause != "pcmo" {
		t.Errorf("cause %q", c.HangupCause)
	}
	var acts []string
	for _, p := range c.Plays {
		acts = append(acts, p.Action)
	}
	if strings.Join(acts, ",") != "param,play,record,hangup" {
		t.Errorf("plays %v", acts)
	}
	// param's text becomes extra_params of later webhooks.
	evs := h.hooks.events(id)
	if evs[0]["extra_params"] != `{"attempt":"a-1","call":"demo"}` || evs[len(evs)-1]["extra_params"] != "customer=42" {
		t.Errorf("extra_params %v → %v", evs[0]["extra_params"], evs[len(evs)-1]["extra_params"])
	}
}

func TestWebhookFieldShapes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.Scenario = Scenario{Default: Behaviour{Outcome: OutcomeAnswer, AnswerDelay: 10 * time.Millisecond, HangupAfter: 100 * time.Millisecond}}
	})
	peer := newWSPeer(t)
	id := h.dial(919876543210, streamPCMO(peer.url, nil))
	pc := peer.accept(t)
	_ = pc.waitClosed(t) // how it closed is not what this test checks
	c := h.waitEnded(id)
	now := time.Now()
	rich := h.sim.CurrentShapes().Rich
	streamEvents := 0
	for _, e := range h.hooks.events(id) {
		st := e["status"]
		if e["type"] == "cdr" {
			st = "cdr"
		}
		if st == "stream_connected" || st == "STREAM_DISCONNECTED" {
			streamEvents++
			wantCode := 1006 // the documented disconnect: the call's end drops the socket
			if rich {
				wantCode = 1000
			}
			checkWSStatus(t, st.(string), e["ws_status"], wantCode)
			if !rich {
				// Key for key and type for type what TeleCMI documents.
				sample := map[string]string{"stream_connected": "stream_connected.json", "STREAM_DISCONNECTED": "stream_disconnected.json"}[st.(string)]
				sameShape(t, st.(string), e, readDocumented(t, sample))
				if e["cmiuuid"] != c.CMIUUID || e["from"] != json.Number("918035000000") {
					t.Errorf("%v: cmiuuid %v from %v, want leg a's %s and the caller id", st, e["cmiuuid"], e["from"], c.CMIUUID)
				}
				continue
			}
		}
		for _, k := range []string{"appid", "leg", "direction", "from", "to", "time", "cmiuuid", "conversation_uuid", "request_id", "callerid", "vn", "extra_params", "status"} {
			if _, ok := e[k]; !ok {
				t.Errorf("%v: no %s", st, k)
			}
		}
		if e["conversation_uuid"] != id || e["cmiuuid"] != c.CMIUUID || e["appid"] != json.Number("1111111") || e["direction"] != "outbound" {
			t.Errorf("%v: ids %v", st, e)
		}
		// extra_params is a JSON *string* holding the make-call object.
		var extra map[string]any
		if s, ok := e["extra_params"].(string); !ok || json.Unmarshal([]byte(s), &extra) != nil || extra["attempt"] != "a-1" {
			t.Errorf("%v: extra_params %#v", st, e["extra_params"])
		}
		ms, _ := e["time"].(json.Number).Int64()
		if d := now.Sub(time.UnixMilli(ms)); d < 0 || d > time.Minute {
			t.Errorf("%v: time %d is not epoch ms", st, ms)
		}
		_, fromNum := e["from"].(json.Number)
		_, toNum := e["to"].(json.Number)
		switch st {
		case "started", "ringing", "out_answered", "hangup":
			if !fromNum || !toNum {
				t.Errorf("%v: from/to should be numbers: %#v %#v", st, e["from"], e["to"])
			}
		default:
			if fromNum || toNum || e["to"] != "919876543210" {
				t.Errorf("%v: from/to should be strings: %#v %#v", st, e["from"], e["to"])
			}
		}
		switch st {
		case "cdr":
			for _, k := range []string{"duration", "start_time", "answer_time", "end_time"} {
				if _, ok := e[k].(json.Number); !ok {
					t.Errorf("cdr %s %#v", k, e[k])
				}
			}
			start, _ := e["start_time"].(json.Number).Int64()
			if d := now.Sub(time.Unix(start, 0)); d < 0 || d > time.Minute {
				t.Errorf("cdr start_time %d is not epoch seconds", start)
			}
			for _, k := range []string{"call_rate", "balance"} {
				if _, ok := e[k].(string); !ok {
					t.Errorf("cdr %s must be a string: %#v", k, e[k])
				}
			}
			if e["status"] != "answered" || e["leg"] != "a" {
				t.Errorf("cdr %v", e)
			}
			if !rich && (e["out"] != true || e["api_init"] != true) {
				t.Errorf("cdr out %v api_init %v, want true as in TeleCMI's samples", e["out"], e["api_init"])
			}
		}
	}
	if streamEvents != 2 {
		t.Errorf("%d stream events delivered, want stream_connected and STREAM_DISCONNECTED", streamEvents)
	}
}

// checkWSStatus checks ws_status is a JSON string; a disconnect carries code.
func checkWSStatus(t *testing.T, st string, v any, code int) {
	t.Helper()
	var ws struct {
		Status  string `json:"status"`
		Message *struct {
			Code   int    `json:"code"`
			Reason string `json:"reason"`
		} `json:"message"`
	}
	s, ok := v.(string)
	if !ok || json.Unmarshal([]byte(s), &ws) != nil {
		t.Errorf("%v: ws_status must be a JSON string, got %#v", st, v)
		return
	}
	if st == "STREAM_DISCONNECTED" && (ws.Status != "disconnected" || ws.Message == nil || ws.Message.Code != code) {
		t.Errorf("%s ws_status %s, want disconnected with code %d", st, s, code)
	}
	if st == "stream_connected" && ws.Status != "connected" {
		t.Errorf("%s ws_status %s", st, s)
	}
}
