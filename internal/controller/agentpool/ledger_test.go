package agentpool

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// TestLedgerReserveBindAdoptRelease walks one Call through the ledger:
// reserve against its version, adopt that reservation while the version
// holds, and release it only once it can no longer bind.
func TestLedgerReserveBindAdoptRelease(t *testing.T) {
	ringing := func(c *voicev1alpha1.Call, agent, rv string) *voicev1alpha1.Call {
		c = c.DeepCopy()
		c.ResourceVersion = rv
		c.Status.Handoff.Phase, c.Status.Handoff.Agent = voicev1alpha1.HandoffRinging, agent
		return c
	}
	ended := func(c *voicev1alpha1.Call) *voicev1alpha1.Call {
		c = c.DeepCopy()
		end := metav1.NewTime(t0.Add(time.Minute))
		c.Status.Attempts[0].EndTime = &end
		return c
	}
	c := liveCall("x", "10")
	cases := []struct {
		name      string
		call      *voicev1alpha1.Call // as read after the pool; nil: gone
		kept      bool
		abandoned bool
	}{
		{"same version, not bound yet: its maker may still bind it", c, true, false},
		{"bound: Ringing with the agent", ringing(c, "a", "11"), true, false},
		{"moved on without binding it", liveCall("x", "11"), false, false},
		{"bound to another agent", ringing(c, "b", "11"), false, false},
		{"the caller hung up before the agent answered", ended(ringing(c, "a", "11")), false, true},
		{"the Call is gone", nil, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLedger(testPool(StrategyRoundRobin, agent("a"), agent("b")))
			b := l.Reserve(c, t0)
			if b == nil || b.Agent.Name != "a" || b.Adopted || !l.Changed() {
				t.Fatalf("reserve: %+v changed %v, want a booked", b, l.Changed())
			}
			if a := l.Adoptable(c); a == nil || a.Name != "a" {
				t.Fatalf("adoptable %+v, want a for the version booked", a)
			}
			if again := NewLedger(l.Pool()).Reserve(c, t0); again == nil || again.Agent.Name != "a" || !again.Adopted {
				t.Fatalf("reserve again: %+v, want a adopted", again)
			}
			rel := l.Release("x", tc.call)
			if got := l.HasReservation("x"); got != tc.kept {
				t.Fatalf("kept %v, want %v (released %+v)", got, tc.kept, rel)
			}
			if rel.Abandoned != tc.abandoned || l.Pool().Status.Abandoned != map[bool]int64{true: 1}[tc.abandoned] {
				t.Fatalf("abandoned %v (status %d), want %v", rel.Abandoned, l.Pool().Status.Abandoned, tc.abandoned)
			}
			if tc.kept && l.Pool().Status.Busy != 1 || !tc.kept && l.Pool().Status.Busy != 0 {
				t.Fatalf("busy %d", l.Pool().Status.Busy)
			}
		})
	}
}

// TestLedgerQueueHoldsMaxSize: a burst of Calls asking at once gets the
// free agents in order of request and at most maxSize places in the queue;
// a queued caller who hangs up leaves the queue and is counted abandoned.
func TestLedgerQueueHoldsMaxSize(t *testing.T) {
	cases := []struct {
		agents, maxSize, burst int
		served, queued         int
	}{
		{agents: 2, maxSize: 3, burst: 10, served: 2, queued: 3},
		{agents: 2, maxSize: 0, burst: 5, served: 2, queued: 0},
		{agents: 3, maxSize: 100, burst: 3, served: 3, queued: 0},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d agents, maxSize %d, %d at once", tc.agents, tc.maxSize, tc.burst), func(t *testing.T) {
			var agents []voicev1alpha1.Agent
			for i := 0; i < tc.agents; i++ {
				agents = append(agents, agent(string(rune('a'+i))))
			}
			p := testPool(StrategyRoundRobin, agents...)
			p.Spec.Queue.MaxSize = int32(tc.maxSize)
			var ws []Waiter
			for i := 0; i < tc.burst; i++ {
				ws = append(ws, Waiter{Name: fmt.Sprintf("c%02d", i), Requested: t0.Add(time.Duration(i) * time.Millisecond), ResourceVersion: "1"})
			}
			slices.Reverse(ws) // the order given does not matter, the request times do
			l := NewLedger(p)
			plan := l.ReserveRound(ws, t0)
			st := l.Pool().Status
			if len(plan.Served) != tc.served || int(st.Queued) != tc.queued || len(st.Queue) != tc.queued {
				t.Fatalf("served %d queued %d (%d entries), want %d and %d", len(plan.Served), st.Queued, len(st.Queue), tc.served, tc.queued)
			}
			for i := 0; i < tc.served; i++ {
				if _, ok := plan.Served[fmt.Sprintf("c%02d", i)]; !ok {
					t.Fatalf("c%02d not served: the first to ask are served first (%v)", i, plan.Served)
				}
			}
			// Every later request is refused while the queue is full.
			for i := tc.burst; i < tc.burst+3; i++ {
				err := l.Enqueue(fmt.Sprintf("c%02d", i), t0)
				if full := tc.queued >= tc.maxSize; full != errors.Is(err, ErrQueueFull) {
					t.Fatalf("enqueue with %d of %d queued: %v", len(l.Pool().Status.Queue), tc.maxSize, err)
				}
				if err == nil {
					tc.queued++
				}
			}
			if tc.queued == 0 {
				return
			}
			// The first queued caller hangs up: out of the queue, counted once.
			name := l.Pool().Status.Queue[0].Call
			gone := liveCall(name, "2")
			end := metav1.NewTime(t0.Add(time.Minute))
			gone.Status.Attempts[0].EndTime = &end
			if rel := l.Release(name, gone); !rel.Dequeued || !rel.Abandoned {
				t.Fatalf("release %+v, want dequeued and abandoned", rel)
			}
			if rel := l.Release(name, gone); rel.Any() || l.Pool().Status.Abandoned != 1 {
				t.Fatalf("second release %+v abandoned %d, want nothing more", rel, l.Pool().Status.Abandoned)
			}
			// A Call still waiting keeps its place.
			if len(l.Pool().Status.Queue) > 0 {
				next := l.Pool().Status.Queue[0].Call
				if rel := l.Release(next, liveCall(next, "2")); rel.Any() {
					t.Fatalf("released a waiting Call: %+v", rel)
				}
			}
		})
	}
}
