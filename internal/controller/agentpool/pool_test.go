package agentpool

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

var t0 = time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)

func testPool(strategy string, agents ...voicev1alpha1.Agent) *voicev1alpha1.AgentPool {
	p := &voicev1alpha1.AgentPool{}
	p.Name, p.Namespace = "pool", "ns"
	p.Spec.Strategy = strategy
	p.Spec.Agents = agents
	p.Spec.Queue.MaxSize = 10
	normalize(p)
	return p
}

func agent(name string, mut ...func(*voicev1alpha1.Agent)) voicev1alpha1.Agent {
	a := voicev1alpha1.Agent{Name: name, Number: "9190000" + name, MaxConcurrentCalls: 1}
	for _, m := range mut {
		m(&a)
	}
	return a
}

func liveCall(name, rv string) *voicev1alpha1.Call {
	c := &voicev1alpha1.Call{}
	c.Name, c.Namespace, c.ResourceVersion = name, "ns", rv
	at := metav1.NewTime(t0)
	c.Status.Phase = voicev1alpha1.CallInProgress
	c.Status.Attempts = []voicev1alpha1.CallAttempt{{Number: 1, State: voicev1alpha1.AttemptDialed, AnswerTime: &at}}
	c.Spec.Handoff = &voicev1alpha1.CallHandoff{AgentPoolRef: voicev1alpha1.LocalRef{Name: "pool"}}
	c.Status.Handoff = &voicev1alpha1.CallHandoffStatus{Phase: voicev1alpha1.HandoffRequested, Source: voicev1alpha1.HandoffSourceBot, RequestedTime: &at}
	return c
}

// reserveAll books calls one after another and returns the agents chosen.
func reserveAll(t *testing.T, p *voicev1alpha1.AgentPool, n int, skills []string) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		c := liveCall("c"+string(rune('a'+i)), "1")
		res := planReservation(p, c, skills, nil, t0.Add(time.Duration(i)*time.Second))
		if res.agent == nil {
			out = append(out, "-")
			continue
		}
		out = append(out, res.agent.Name)
	}
	return out
}

func TestStrategies(t *testing.T) {
	two := func(a *voicev1alpha1.Agent) { a.MaxConcurrentCalls = 2 }
	cases := []struct {
		name   string
		pool   *voicev1alpha1.AgentPool
		skills []string
		n      int
		want   []string
	}{
		{"round robin goes around", testPool(StrategyRoundRobin, agent("a", two), agent("b", two), agent("c", two)), nil, 7,
			[]string{"a", "b", "c", "a", "b", "c", "-"}},
		{"least recently used", testPool(StrategyLeastRecentlyUsed, agent("a", two), agent("b", two)), nil, 4,
			[]string{"a", "b", "a", "b"}},
		{"priority, highest first, then least recently used", testPool(StrategyPriority,
			agent("a", func(a *voicev1alpha1.Agent) { a.Priority = 1 }),
			agent("b", func(a *voicev1alpha1.Agent) { a.Priority = 5; a.MaxConcurrentCalls = 2 }),
			agent("c", func(a *voicev1alpha1.Agent) { a.Priority = 5 })), nil, 5,
			[]string{"b", "c", "b", "a", "-"}},
		{"skills must all match; paused agents get none", testPool(StrategyRoundRobin,
			agent("a", func(a *voicev1alpha1.Agent) { a.Skills = []string{"billing"} }),
			agent("b", func(a *voicev1alpha1.Agent) { a.Skills = []string{"billing", "hindi"}; a.Paused = true }),
			agent("c", func(a *voicev1alpha1.Agent) { a.Skills = []string{"billing", "hindi"} })), []string{"hindi", "billing"}, 2,
			[]string{"c", "-"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := reserveAll(t, tc.pool, tc.n, tc.skills); !slices.Equal(got, tc.want) {
				t.Fatalf("agents %v, want %v", got, tc.want)
			}
			for i, a := range tc.pool.Spec.Agents {
				if n := len(tc.pool.Status.Agents[i].Reservations); n > capacity(&a) {
					t.Fatalf("agent %s booked %d times, capacity %d", a.Name, n, capacity(&a))
				}
			}
		})
	}
}

func TestTriedAgentsAreSkippedUntilAllWereTried(t *testing.T) {
	p := testPool(StrategyRoundRobin, agent("a"), agent("b"))
	pl := newPlanner(p)
	if i := pl.pick(nil, []string{"a"}); i != 1 {
		t.Fatalf("picked %d, want b (a was tried)", i)
	}
	pl.used[1] = 1 // b busy: a is not rung again while b may still answer
	if i := pl.pick(nil, []string{"a"}); i != -1 {
		t.Fatalf("picked %d, want none while the untried b is busy", i)
	}
	if i := pl.pick(nil, []string{"a", "b"}); i != 0 {
		t.Fatalf("picked %d, want a: a new round once everyone was tried", i)
	}
}

func TestAdoptAndRemoveDead(t *testing.T) {
	p := testPool(StrategyRoundRobin, agent("a"), agent("b"))
	c := liveCall("x", "10")
	// Another writer reserved a for this very version of the Call: adopt it.
	p.Status.Agents[0].Reservations = []voicev1alpha1.AgentReservation{{Call: "x", Since: metav1.NewTime(t0), CallResourceVersion: "10"}}
	normalize(p)
	res := planReservation(p, c, nil, nil, t0)
	if res.agent == nil || res.agent.Name != "a" || !res.adopted || res.changed {
		t.Fatalf("plan %+v, want a adopted", res)
	}
	// The Call moved on (version 11) without binding a: that reservation is
	// dead, and a is booked again for the new version (the strategy's
	// choice does not drift with retries).
	c.ResourceVersion = "11"
	res = planReservation(p, c, nil, nil, t0)
	if res.agent == nil || res.agent.Name != "a" || res.adopted || !res.changed {
		t.Fatalf("plan %+v, want a booked again", res)
	}
	// Once a was tried, its dead reservation is not made again: b is.
	c.ResourceVersion = "12"
	res = planReservation(p, c, nil, []string{"a"}, t0)
	if res.agent == nil || res.agent.Name != "b" {
		t.Fatalf("plan %+v, want b", res)
	}
	total := 0
	for _, a := range p.Status.Agents {
		for _, r := range a.Reservations {
			if r.Call == "x" {
				total++
				if r.CallResourceVersion != "12" {
					t.Fatalf("stale reservation kept: %+v", r)
				}
			}
		}
	}
	if total != 1 {
		t.Fatalf("%d reservations for x, want 1", total)
	}
}

func TestDead(t *testing.T) {
	res := voicev1alpha1.AgentReservation{Call: "x", CallResourceVersion: "5"}
	ringing := func(rv, agent string) *voicev1alpha1.Call {
		c := liveCall("x", rv)
		c.Status.Handoff.Phase, c.Status.Handoff.Agent = voicev1alpha1.HandoffRinging, agent
		return c
	}
	ended := ringing("9", "a")
	end := metav1.NewTime(t0.Add(time.Minute))
	ended.Status.Attempts[0].EndTime = &end
	cases := []struct {
		name string
		call *voicev1alpha1.Call
		want bool
	}{
		{"call gone", nil, true},
		{"bound to the agent", ringing("9", "a"), false},
		{"same version, not bound yet: its maker may bind it", liveCall("x", "5"), false},
		{"moved on without it", liveCall("x", "6"), true},
		{"bound to another agent", ringing("9", "b"), true},
		{"call ended", ended, true},
	}
	for _, tc := range cases {
		if got := dead(res, "a", tc.call); got != tc.want {
			t.Errorf("%s: dead = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNormalizeKeepsRemovedAgentsWithCalls(t *testing.T) {
	p := testPool(StrategyRoundRobin, agent("a"), agent("b"), agent("c"))
	p.Status.Agents[1].Reservations = []voicev1alpha1.AgentReservation{{Call: "x"}}
	p.Status.RoundRobinNext = 2
	p.Spec.Agents = []voicev1alpha1.Agent{agent("c"), agent("a", func(a *voicev1alpha1.Agent) { a.Paused = true })}
	normalize(p)
	var names []string
	for _, a := range p.Status.Agents {
		names = append(names, a.Name)
	}
	if !slices.Equal(names, []string{"c", "a", "b"}) {
		t.Fatalf("status agents %v, want spec order then the removed agent still on a call", names)
	}
	st := p.Status
	if st.Total != 2 || st.Busy != 0 || st.Available != 1 || st.RoundRobinNext != 0 {
		t.Fatalf("counts total %d busy %d available %d next %d", st.Total, st.Busy, st.Available, st.RoundRobinNext)
	}
	// The removed agent is never chosen.
	if got := reserveAll(t, p, 2, nil); !slices.Equal(got, []string{"c", "-"}) {
		t.Fatalf("agents %v", got)
	}
	// Once its call is released it leaves status.
	removeDead(p, "x", nil)
	normalize(p)
	if len(p.Status.Agents) != 2 {
		t.Fatalf("removed agent still listed: %+v", p.Status.Agents)
	}
}

func TestQueueServesInOrderOfRequest(t *testing.T) {
	p := testPool(StrategyRoundRobin,
		agent("a", func(a *voicev1alpha1.Agent) { a.Skills = []string{"hindi"} }),
		agent("b"))
	ws := []Waiter{
		{Name: "late", Requested: t0.Add(2 * time.Second)},
		{Name: "first", Requested: t0},
		{Name: "tamil", Requested: t0.Add(time.Second), Skills: []string{"tamil"}},
		{Name: "second", Requested: t0.Add(time.Second)},
	}
	served := NewLedger(p).PlanRound(ws, t0).Served
	want := map[string]bool{"first": true, "second": true, "tamil": false, "late": false}
	for name, w := range want {
		if _, got := served[name]; got != w {
			t.Errorf("%s served = %v, want %v", name, got, w)
		}
	}
}
