package sim

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestShapesValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want string // "" = valid
	}{
		{"empty is documented", ``, ""},
		{"every switch", "rich: true\nwsURLQuery: kept\nlistenMode: table\nstreamCMIUUID: own\ncdrRedelivery: always\n", ""},
		{"bad query", "wsURLQuery: maybe\n", `wsURLQuery "maybe": want stripped or kept`},
		{"bad reading", "listenMode: caller\n", `listenMode "caller"`},
		{"bad cmiuuid", "streamCMIUUID: b\n", `streamCMIUUID "b"`},
		{"bad redelivery", "cdrRedelivery: never\n", `cdrRedelivery "never"`},
		{"typo", "wsUrlQuery: kept\n", `unknown field "wsUrlQuery"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.yaml
			if src == "" {
				src = "{}"
			}
			_, err := ParseShapes([]byte(src))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestShapesDialURL(t *testing.T) {
	const u = "wss://gw.example/stream/s/TOKEN?call=ns/c&attempt=1&token=TOKEN"
	for _, tc := range []struct {
		sh   Shapes
		want string
	}{
		{Shapes{}, "wss://gw.example/stream/s/TOKEN"},
		{Shapes{WSURLQuery: WSURLQueryStripped}, "wss://gw.example/stream/s/TOKEN"},
		{Shapes{WSURLQuery: WSURLQueryKept}, u},
		{Shapes{Rich: true}, "wss://gw.example/stream/s/TOKEN"}, // the query switch is its own
	} {
		if got := tc.sh.dialURL(u); got != tc.want {
			t.Errorf("%+v: dialed %q, want %q", tc.sh, got, tc.want)
		}
	}
}

func TestShapesListenModeReadings(t *testing.T) {
	for _, tc := range []struct {
		reading, mode   string
		person, bridged bool
	}{
		{ListenModeExamples, "caller", true, false},
		{ListenModeExamples, "callee", false, true},
		{ListenModeExamples, "both", true, true},
		{"", "caller", true, false}, // examples is the default
		{ListenModeTable, "caller", false, true},
		{ListenModeTable, "callee", true, false},
		{ListenModeTable, "both", true, true},
	} {
		p, b := Shapes{ListenMode: tc.reading}.hears(tc.mode)
		if p != tc.person || b != tc.bridged {
			t.Errorf("reading %q, listen_mode %q: person %v bridged %v, want %v %v", tc.reading, tc.mode, p, b, tc.person, tc.bridged)
		}
	}
}

// With the "own" reading a stream's events carry an id no earlier event of
// the call did; leg a's id stays the call's.
func TestStreamCMIUUIDOwn(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.Scenario = Scenario{Default: Behaviour{Outcome: OutcomeAnswer, HangupAfter: 100 * time.Millisecond}}
		c.Shapes.StreamCMIUUID = StreamCMIUUIDOwn
	})
	peer := newWSPeer(t)
	id := h.dial(919876543210, streamPCMO(peer.url, nil))
	_ = peer.accept(t).waitClosed(t) // how it closed is not what this test checks
	c := h.waitEnded(id)
	st := c.Streams[0]
	if st.CMIUUID == "" || st.CMIUUID == c.CMIUUID {
		t.Fatalf("stream cmiuuid %q, leg a %q: want a fresh one", st.CMIUUID, c.CMIUUID)
	}
	n := 0
	for _, e := range h.hooks.events(id) {
		switch e["status"] {
		case "stream_connected", "STREAM_DISCONNECTED":
			n++
			if e["cmiuuid"] != st.CMIUUID {
				t.Errorf("%v carries %v, want the stream's %s", e["status"], e["cmiuuid"], st.CMIUUID)
			}
		case "started", "out_answered":
			if e["cmiuuid"] != c.CMIUUID {
				t.Errorf("%v carries %v, want leg a's %s", e["status"], e["cmiuuid"], c.CMIUUID)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d stream events, want 2", n)
	}
}

// With "always", a CDR delivered at once is still sent on the 5/10/15-minute
// schedule (scaled), four times in all; live events are sent once.
func TestCDRRedeliveryAlways(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.Shapes.CDRRedelivery = CDRRedeliveryAlways
	})
	id := h.dial(919876543210, speakPCMO())
	h.waitEnded(id)
	count := func(status string) int {
		n := 0
		for _, s := range h.hooks.statuses(id) {
			if s == status {
				n++
			}
		}
		return n
	}
	eventually(t, "the CDR sent four times", func() bool { return count("cdr:a") == 4 })
	if n := count("hangup"); n != 1 {
		t.Errorf("hangup event delivered %d times, want 1", n)
	}
	for _, e := range h.call(id).Events {
		if e.Status == "cdr" && (e.GaveUp || !e.Delivered) {
			t.Errorf("cdr record %+v: delivered, so not given up", e)
		}
	}
}

func TestPutShapes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	req, _ := http.NewRequest(http.MethodPut, h.url+"/sim/shapes", strings.NewReader(`{"wsURLQuery":"kept","rich":true}`))
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !h.sim.CurrentShapes().Rich || h.sim.CurrentShapes().WSURLQuery != WSURLQueryKept {
		t.Fatalf("PUT: %d, shapes now %+v", resp.StatusCode, h.sim.CurrentShapes())
	}
	req, _ = http.NewRequest(http.MethodPut, h.url+"/sim/shapes", strings.NewReader(`{"wsURLQuery":"sometimes"}`))
	if resp, err = httpClient.Do(req); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 400 || h.sim.CurrentShapes().WSURLQuery != WSURLQueryKept {
		t.Fatalf("bad PUT: %d, shapes now %+v", resp.StatusCode, h.sim.CurrentShapes())
	}
}
