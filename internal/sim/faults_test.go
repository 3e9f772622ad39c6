package sim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"
)

// rawPost posts a make-call and returns the status, or -1 on a transport error.
func rawPost(t *testing.T, client *http.Client, url string, to int64) int {
	t.Helper()
	b, _ := json.Marshal(callBody(to, speakPCMO()))
	resp, err := client.Post(url+"/v2/ind_pcmo_make_call", "application/json", bytes.NewReader(b))
	if err != nil {
		return -1
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestRESTFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		faults RESTFaults
		status int // -1: transport error
		placed bool
	}{
		{"5xx", RESTFaults{ServerErrProb: 1}, 503, false},
		{"5xx custom code", RESTFaults{ServerErrProb: 1, ServerErrCode: 502}, 502, false},
		{"429", RESTFaults{TooManyProb: 1}, 429, false},
		{"connection reset", RESTFaults{ResetProb: 1}, -1, false},
		{"ambiguous: reply lost", RESTFaults{AmbiguousProb: 1}, -1, true},
		{"ambiguous: 5xx after placing", RESTFaults{AmbiguousProb: 1, AmbiguousMode: Ambiguous5xx}, 503, true},
		{"ambiguous: hang until client gives up", RESTFaults{AmbiguousProb: 1, AmbiguousMode: AmbiguousHang}, -1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *Config) { c.Faults = Faults{REST: tc.faults} })
			client := &http.Client{Timeout: 20 * time.Second}
			if tc.faults.AmbiguousMode == AmbiguousHang {
				client.Timeout = 300 * time.Millisecond
			}
			if got := rawPost(t, client, h.url, 919876543210); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
			calls := h.sim.Calls()
			if placed := len(calls) == 1; placed != tc.placed {
				t.Fatalf("placed=%v, want %v", placed, tc.placed)
			}
			if tc.placed {
				// The person is rung; the webhooks carry extra_params so the
				// operator can settle the attempt.
				c := h.waitEnded(calls[0].RequestID)
				if c.Events[0].Status != "started" {
					t.Errorf("events %v", eventStatuses(c))
				}
			}
		})
	}
}

func TestRESTFaultsPerNumberAndLatency(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.Faults = Faults{RESTNumbers: map[string]RESTFaults{
			"919000000009": {ServerErrProb: 1},
			"919000000008": {Latency: 200 * time.Millisecond},
		}}
	})
	if got := rawPost(t, httpClient, h.url, 919000000009); got != 503 {
		t.Errorf("faulty number: %d", got)
	}
	if got := rawPost(t, httpClient, h.url, 919876543210); got != 200 {
		t.Errorf("other number: %d", got)
	}
	start := time.Now()
	if got := rawPost(t, httpClient, h.url, 919000000008); got != 200 {
		t.Errorf("slow number: %d", got)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("latency fault not applied: %v", d)
	}
	// Faults on the other host's endpoints use the global REST faults.
	h.sim.SetFaults(Faults{REST: RESTFaults{TooManyProb: 1}})
	if code, _ := h.post("/v1/piopiy/requestid_cdr", map[string]any{"appid": testApp, "secret": testSecret, "request_id": "x"}); code != 429 {
		t.Errorf("cdr lookup under 429 fault: %d", code)
	}
}

func TestRESTFaultProbabilityIsSeeded(t *testing.T) {
	t.Parallel()
	run := func() []int {
		h := newHarness(t, func(c *Config) {
			c.Seed = 42
			c.Scenario = Scenario{Default: Behaviour{Outcome: OutcomeBusy}}
			c.Faults = Faults{REST: RESTFaults{ServerErrProb: 0.5}}
		})
		var got []int
		for i := range 30 {
			got = append(got, rawPost(t, httpClient, h.url, 919876543210+int64(i)))
		}
		ok := 0
		for _, c := range got {
			if c == 200 {
				ok++
			}
		}
		if ok == 0 || ok == 30 {
			t.Errorf("p=0.5 gave %d/30 successes", ok)
		}
		if n := len(h.sim.Calls()); n != ok {
			t.Errorf("%d calls placed for %d successes", n, ok)
		}
		return got
	}
	if a, b := run(), run(); !slices.Equal(a, b) {
		t.Errorf("same seed, different rolls:\n%v\n%v", a, b)
	}
}

func TestDeliveryFaults(t *testing.T) {
	t.Parallel()
	base := []string{"started", "ringing", "out_answered", "hangup", "cdr:a"}
	cases := []struct {
		name   string
		faults DeliveryFaults
		fail   int64 // receiver answers 500 to the first N posts
		check  func(t *testing.T, c CallRecord, got []string)
	}{
		{"duplicate", DeliveryFaults{DuplicateProb: 1}, 0, func(t *testing.T, c CallRecord, got []string) {
			var want []string
			for _, s := range base {
				want = append(want, s, s)
			}
			if !slices.Equal(got, want) {
				t.Errorf("received %v", got)
			}
		}},
		{"drop hangup then redeliver", DeliveryFaults{DropProb: 1, Events: []string{"hangup"}}, 0, func(t *testing.T, c CallRecord, got []string) {
			// Arrival order depends on the redelivery timer; the set must be complete and single.
			if !sameSet(got, base) {
				t.Errorf("received %v", got)
			}
			hu := c.Events[3]
			if hu.Status != "hangup" || len(hu.Attempts) != 2 || !hu.Attempts[0].Dropped || !hu.Attempts[1].Redelivery || !slices.Contains(hu.Faults, "dropped") {
				t.Errorf("hangup record %+v", hu)
			}
		}},
		{"reorder ringing", DeliveryFaults{ReorderProb: 1, Events: []string{"ringing"}}, 0, func(t *testing.T, c CallRecord, got []string) {
			if !slices.Equal(got, []string{"started", "out_answered", "ringing", "hangup", "cdr:a"}) {
				t.Errorf("received %v", got)
			}
		}},
		{"delay", DeliveryFaults{Delay: 50 * time.Millisecond}, 0, func(t *testing.T, c CallRecord, got []string) {
			if !slices.Equal(got, base) {
				t.Errorf("received %v", got)
			}
			for _, e := range c.Events {
				if !slices.Contains(e.Faults, "delayed") {
					t.Errorf("%s not delayed", e.Status)
				}
			}
		}},
		{"receiver 500 triggers redelivery", DeliveryFaults{}, 1, func(t *testing.T, c CallRecord, got []string) {
			// started failed first and was redelivered: received once in the end.
			if !sameSet(got, base) {
				t.Errorf("received %v", got)
			}
			st := c.Events[0]
			if len(st.Attempts) != 2 || st.Attempts[0].HTTPStatus != 500 || !st.Attempts[1].Redelivery || st.Attempts[1].HTTPStatus != 200 {
				t.Errorf("started attempts %+v", st.Attempts)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *Config) {
				c.Scenario = Scenario{Default: Behaviour{Outcome: OutcomeAnswer, HangupAfter: 50 * time.Millisecond}}
				c.Faults = Faults{Delivery: tc.faults}
				// Redelivery is slower than the whole call so order is deterministic.
				c.RedeliveryScale = 0.002 // 5 min → 600 ms
			})
			h.hooks.fail.Store(tc.fail)
			id := h.dial(919876543210, streamPCMO("ws://127.0.0.1:1/x", nil))
			c := h.waitCall(id, "delivered", func(c CallRecord) bool {
				if c.State != "ended" {
					return false
				}
				for _, e := range c.Events {
					if !e.Delivered {
						return false
					}
					if slices.Contains(e.Faults, "duplicated") && !slices.ContainsFunc(e.Attempts, func(a AttemptRecord) bool { return a.Duplicate }) {
						return false
					}
				}
				return true
			})
			// drop the stream events: the ws_url is unreachable on purpose here.
			var got []string
			for _, s := range h.hooks.statuses(id) {
				if s != "STREAM_DISCONNECTED" {
					got = append(got, s)
				}
			}
			var evs []EventRecord
			for _, e := range c.Events {
				if e.Status != "STREAM_DISCONNECTED" {
					evs = append(evs, e)
				}
			}
			c.Events = evs
			tc.check(t, c, got)
		})
	}
}

func TestDeliveryGivesUpAfterThreeRetries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.Scenario = Scenario{Default: Behaviour{Outcome: OutcomeBusy}} })
	h.hooks.fail.Store(1 << 40)
	id := h.dial(919876543210, speakPCMO())
	c := h.waitCall(id, "gave up", func(c CallRecord) bool {
		for _, e := range c.Events {
			if !e.GaveUp {
				return false
			}
		}
		return c.State == "ended"
	})
	for _, e := range c.Events {
		if len(e.Attempts) != 4 || e.Delivered {
			t.Errorf("%s: %d attempts, delivered %v", e.Status, len(e.Attempts), e.Delivered)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
