package sim

import (
	"slices"
	"testing"
	"time"
)

func bridgeAction(timeout int, group bool, agents ...int64) map[string]any {
	var eps []any
	for _, a := range agents {
		eps = append(eps, map[string]any{"type": "pstn", "number": a})
	}
	m := map[string]any{"action": "bridge", "from": testFrom, "connect": eps, "timeout": timeout}
	if group {
		m["ring_type"] = "group"
	}
	return m
}

func TestBridgeOutcomes(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	h := newHarness(t, func(c *Config) {
		c.Scenario = Scenario{
			Default: Behaviour{Outcome: OutcomeAnswer},
			Agents: map[string]AgentBehaviour{
				"912000000001": {AnswerDelay: 20 * ms, TalkFor: 100 * ms},
				"912000000002": {NoAnswer: true},
				"912000000003": {Busy: true, AnswerDelay: 10 * ms},
				"912000000004": {AnswerDelay: 50 * ms, TalkFor: 100 * ms},
				"912000000005": {AnswerDelay: 2 * time.Second}, // slower than a 1 s bridge timeout
			},
		}
	})
	cases := []struct {
		name     string
		bridge   map[string]any
		answered bool
		agent    string
		outcomes []string
		cause    string
	}{
		{"answers then hangs up", bridgeAction(5, false, 912000000001), true, "912000000001", []string{"answered"}, "bridge_ended"},
		{"busy then next answers", bridgeAction(5, false, 912000000003, 912000000001), true, "912000000001", []string{"busy", "answered"}, "bridge_ended"},
		{"group: first to answer wins", bridgeAction(5, true, 912000000004, 912000000001), true, "912000000001", []string{"answered", "canceled"}, "bridge_ended"},
		{"nobody answers within timeout", bridgeAction(1, false, 912000000002, 912000000005), false, "", []string{"noanswer", "noanswer"}, "pcmo_end"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := h.dial(919876543210, []any{tc.bridge})
			c := h.waitEnded(id)
			if len(c.Bridges) != 1 {
				t.Fatalf("bridges %+v", c.Bridges)
			}
			br := c.Bridges[0]
			if br.Answered != tc.answered || br.Agent != tc.agent {
				t.Errorf("answered %v agent %q", br.Answered, br.Agent)
			}
			var outs []string
			for _, a := range br.Attempts {
				outs = append(outs, a.Outcome)
			}
			slices.Sort(outs)
			want := slices.Clone(tc.outcomes)
			slices.Sort(want)
			if !slices.Equal(outs, want) {
				t.Errorf("attempt outcomes %v, want %v", outs, want)
			}
			if c.HangupCause != tc.cause {
				t.Errorf("cause %q, want %q", c.HangupCause, tc.cause)
			}
			// Leg b events carry leg "b", their own cmiuuid and string numbers.
			legB := map[string][]string{}
			for _, e := range h.hooks.events(id) {
				if e["leg"] == "b" {
					st := e["status"].(string)
					if e["type"] == "cdr" {
						st = "cdr:" + st
					}
					legB[e["cmiuuid"].(string)] = append(legB[e["cmiuuid"].(string)], st)
					if _, ok := e["to"].(string); !ok {
						t.Errorf("leg b to %#v", e["to"])
					}
				}
			}
			for _, a := range br.Attempts {
				got := legB[a.CMIUUID]
				want := []string{"out_started", "ringing", "hangup", "cdr:missed"}
				if a.Outcome == "answered" {
					want = []string{"out_started", "ringing", "out_bridged", "hangup", "cdr:answered"}
				}
				if !slices.Equal(got, want) {
					t.Errorf("leg b %s (%s) events %v, want %v", a.Agent, a.Outcome, got, want)
				}
			}
		})
	}
}

func TestBridgeLegHangupByAPI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.Scenario = Scenario{Default: Behaviour{Outcome: OutcomeAnswer}} })
	id := h.dial(919876543210, []any{bridgeAction(5, false, 912000000001), map[string]any{"action": "speak", "text": "bye"}})
	c := h.waitCall(id, "bridged", func(c CallRecord) bool { return len(c.Bridges) == 1 && c.Bridges[0].Answered })
	code, m := h.post("/v1/call/action", map[string]any{"appid": testApp, "secret": testSecret, "cmiuuid": c.Bridges[0].AgentCMIUUID, "action": "hangup"})
	if code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	c = h.waitEnded(id)
	// The bridge ended by API; the PCMO went on to speak and then ran out.
	if c.Bridges[0].EndCause != "api" || c.HangupCause != "pcmo_end" || len(c.Plays) != 1 {
		t.Errorf("bridge end %q, call cause %q, plays %v", c.Bridges[0].EndCause, c.HangupCause, c.Plays)
	}
}

// An agent rung by many concurrent calls shows up in /sim/agents with every
// leg, and overlapping answered legs are counted.
func TestAgentsTimeline(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.Scenario = Scenario{
			Default:      Behaviour{Outcome: OutcomeAnswer},
			DefaultAgent: AgentBehaviour{AnswerDelay: time.Millisecond, TalkFor: 50 * time.Millisecond},
			Agents:       map[string]AgentBehaviour{"912000000002": {AnswerDelay: time.Millisecond}}, // talks until hung up
		}
	})
	// Sequential use of agent 1: never on two calls at once.
	for i := range 2 {
		id := h.dial(919876543210+int64(i), []any{bridgeAction(5, false, 912000000001)})
		h.waitEnded(id)
	}
	// Concurrent use of agent 2: double-booked, which the timeline must show.
	ids := make([]string, 2)
	for i := range 2 {
		ids[i] = h.dial(919876543220+int64(i), []any{bridgeAction(5, false, 912000000002)})
	}
	// Both bridged at the same time, then both hung up: no timing involved.
	for _, id := range ids {
		h.waitCall(id, "bridged", func(c CallRecord) bool { return len(c.Bridges) == 1 && c.Bridges[0].Answered })
	}
	for _, id := range ids {
		h.post("/v1/call/action", map[string]any{"appid": testApp, "secret": testSecret, "cmiuuid": h.call(id).CMIUUID, "action": "hangup"})
	}
	for _, id := range ids {
		h.waitEnded(id)
	}
	ag := map[string]AgentRecord{}
	for _, a := range h.sim.Agents() {
		ag[a.Number] = a
	}
	if a := ag["912000000001"]; len(a.Legs) != 2 || a.MaxConcurrent != 1 {
		t.Errorf("agent 1: %+v", a)
	}
	if a := ag["912000000002"]; len(a.Legs) != 2 || a.MaxConcurrent != 2 {
		t.Errorf("agent 2: %+v", a)
	}
}
