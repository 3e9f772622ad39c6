package agentpool

import (
	"slices"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/callstate"
)

// Strategies of AgentPoolSpec.Strategy.
const (
	StrategyRoundRobin        = "RoundRobin"
	StrategyLeastRecentlyUsed = "LeastRecentlyUsed"
	StrategyPriority          = "Priority"
)

// capacity is how many calls an agent takes at once.
func capacity(a *voicev1alpha1.Agent) int {
	return max(int(a.MaxConcurrentCalls), 1)
}

// hasSkills reports whether the agent has every skill wanted.
func hasSkills(a *voicev1alpha1.Agent, want []string) bool {
	for _, s := range want {
		if !slices.Contains(a.Skills, s) {
			return false
		}
	}
	return true
}

// anyHasSkills reports whether some agent in spec could ever take a call
// wanting these skills.
func anyHasSkills(pool *voicev1alpha1.AgentPool, want []string) bool {
	for i := range pool.Spec.Agents {
		if hasSkills(&pool.Spec.Agents[i], want) {
			return true
		}
	}
	return false
}

// normalize aligns status.agents with spec (spec order; an agent removed
// from spec stays, after them, while it has reservations) and recomputes
// Total, Available, Busy and Queued. Conditions and observedGeneration are
// the PoolReconciler's.
func normalize(pool *voicev1alpha1.AgentPool) {
	st := &pool.Status
	old := map[string]voicev1alpha1.AgentStatus{}
	for _, a := range st.Agents {
		old[a.Name] = a
	}
	out := make([]voicev1alpha1.AgentStatus, 0, len(pool.Spec.Agents))
	inSpec := map[string]bool{}
	for _, a := range pool.Spec.Agents {
		inSpec[a.Name] = true
		s, ok := old[a.Name]
		if !ok {
			s = voicev1alpha1.AgentStatus{Name: a.Name}
		}
		out = append(out, s)
	}
	var gone []voicev1alpha1.AgentStatus
	for _, a := range st.Agents {
		if !inSpec[a.Name] && len(a.Reservations) > 0 {
			gone = append(gone, a)
		}
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i].Name < gone[j].Name })
	st.Agents = append(out, gone...)

	st.Queued = int32(len(st.Queue))
	st.Total, st.Available, st.Busy = int32(len(pool.Spec.Agents)), 0, 0
	for i := range pool.Spec.Agents {
		a := &pool.Spec.Agents[i]
		n := len(st.Agents[i].Reservations)
		if n > 0 {
			st.Busy++
		}
		if !a.Paused && n < capacity(a) {
			st.Available++
		}
	}
	if n := int32(len(pool.Spec.Agents)); n > 0 {
		st.RoundRobinNext = ((st.RoundRobinNext % n) + n) % n
	} else {
		st.RoundRobinNext = 0
	}
}

// agentStatus returns the status entry of the named agent, or nil.
func agentStatus(st *voicev1alpha1.AgentPoolStatus, name string) *voicev1alpha1.AgentStatus {
	for i := range st.Agents {
		if st.Agents[i].Name == name {
			return &st.Agents[i]
		}
	}
	return nil
}

// hasReservations reports whether any agent is booked for the named Call.
func hasReservations(pool *voicev1alpha1.AgentPool, call string) bool {
	for _, a := range pool.Status.Agents {
		for _, r := range a.Reservations {
			if r.Call == call {
				return true
			}
		}
	}
	return false
}

// reservedCalls lists the Calls with a reservation in the pool.
func reservedCalls(pool *voicev1alpha1.AgentPool) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range pool.Status.Agents {
		for _, r := range a.Reservations {
			if !seen[r.Call] {
				seen[r.Call] = true
				out = append(out, r.Call)
			}
		}
	}
	return out
}

// CallEnded reports whether the Call's current attempt is over (or the Call
// is finished), so no handoff can start or go on.
func CallEnded(call *voicev1alpha1.Call) bool {
	switch call.Status.Phase {
	case voicev1alpha1.CallCompleted, voicev1alpha1.CallFailed, voicev1alpha1.CallRetrying:
		return true
	}
	a := callstate.Current(&call.Status)
	return a == nil || a.EndTime != nil || a.State == voicev1alpha1.AttemptEnded || call.DeletionTimestamp != nil
}

// Answered reports whether the current attempt was answered and is live.
func Answered(call *voicev1alpha1.Call) bool {
	a := callstate.Current(&call.Status)
	return a != nil && a.AnswerTime != nil && !CallEnded(call)
}

// bound reports whether the Call shows the agent as its live assignment.
func bound(call *voicev1alpha1.Call, agent string) bool {
	h := call.Status.Handoff
	return h != nil && h.Agent == agent && (h.Phase == voicev1alpha1.HandoffRinging || h.Phase == voicev1alpha1.HandoffBridged) && !CallEnded(call)
}

// pendingFor returns the agent booked for the Call at its current version,
// when it may still take it.
func pendingFor(pool *voicev1alpha1.AgentPool, c *voicev1alpha1.Call) *voicev1alpha1.Agent {
	for i := range pool.Spec.Agents {
		a := &pool.Spec.Agents[i]
		s := agentStatus(&pool.Status, a.Name)
		if a.Paused || s == nil {
			continue
		}
		for _, res := range s.Reservations {
			if res.Call == c.Name && res.CallResourceVersion == c.ResourceVersion {
				return a
			}
		}
	}
	return nil
}

// removeDead drops the Call's reservations that can never bind or no longer
// hold: call must have been read after the pool version being changed (nil
// when the Call is gone). A reservation the Call does not show survives only
// while the Call is still at the version it was made against: its maker may
// be about to bind it. It reports the agents released.
func removeDead(pool *voicev1alpha1.AgentPool, name string, call *voicev1alpha1.Call) []string {
	var released []string
	for i := range pool.Status.Agents {
		a := &pool.Status.Agents[i]
		kept := a.Reservations[:0:0]
		for _, r := range a.Reservations {
			if r.Call != name || !dead(r, a.Name, call) {
				kept = append(kept, r)
				continue
			}
			released = append(released, a.Name)
		}
		if len(kept) != len(a.Reservations) {
			if len(kept) == 0 {
				kept = nil
			}
			a.Reservations = kept
		}
	}
	return released
}

func dead(r voicev1alpha1.AgentReservation, agent string, call *voicev1alpha1.Call) bool {
	switch {
	case call == nil:
		return true
	case bound(call, agent):
		return false
	case r.CallResourceVersion != "" && r.CallResourceVersion == call.ResourceVersion && !CallEnded(call):
		return false // its maker may still bind it
	}
	return true
}

// planner chooses agents by the pool's strategy from a snapshot of its
// status; take books a slot in the snapshot only.
type planner struct {
	agents   []voicev1alpha1.Agent
	used     []int
	last     []time.Time // zero: never assigned
	strategy string
	rrNext   int
}

func newPlanner(pool *voicev1alpha1.AgentPool) *planner {
	p := &planner{agents: pool.Spec.Agents, strategy: pool.Spec.Strategy, rrNext: int(pool.Status.RoundRobinNext)}
	p.used = make([]int, len(p.agents))
	p.last = make([]time.Time, len(p.agents))
	for i := range p.agents {
		if s := agentStatus(&pool.Status, p.agents[i].Name); s != nil {
			p.used[i] = len(s.Reservations)
			if s.LastAssignedTime != nil {
				p.last[i] = s.LastAssignedTime.Time
			}
		}
	}
	return p
}

// pick returns the index of the agent the strategy gives a call wanting
// skills, or -1 when none is free. Agents in tried are skipped while some
// unpaused agent with the skills has not been tried; once all have, a new
// round rings them again.
func (p *planner) pick(skills, tried []string) int {
	ok := p.eligible(skills, tried)
	n := len(p.agents)
	best := -1
	switch p.strategy {
	case StrategyLeastRecentlyUsed:
		for i := 0; i < n; i++ {
			if ok(i) && (best < 0 || p.last[i].Before(p.last[best])) {
				best = i
			}
		}
	case StrategyPriority:
		for i := 0; i < n; i++ {
			if !ok(i) {
				continue
			}
			if best < 0 || p.agents[i].Priority > p.agents[best].Priority ||
				(p.agents[i].Priority == p.agents[best].Priority && p.last[i].Before(p.last[best])) {
				best = i
			}
		}
	default: // RoundRobin
		for k := 0; k < n; k++ {
			if i := (p.rrNext + k) % n; ok(i) {
				best = i
				break
			}
		}
	}
	return best
}

// eligible returns whether agent i may take a call wanting skills now.
func (p *planner) eligible(skills, tried []string) func(i int) bool {
	untried := false
	for i := range p.agents {
		a := &p.agents[i]
		if !a.Paused && hasSkills(a, skills) && !slices.Contains(tried, a.Name) {
			untried = true
			break
		}
	}
	return func(i int) bool {
		a := &p.agents[i]
		return !a.Paused && hasSkills(a, skills) && p.used[i] < capacity(a) && (!untried || !slices.Contains(tried, a.Name))
	}
}

// index returns the position of the named agent in spec, or -1.
func (p *planner) index(name string) int {
	for i := range p.agents {
		if p.agents[i].Name == name {
			return i
		}
	}
	return -1
}

// free reports whether some agent could take a call wanting skills now.
func (p *planner) free(skills, tried []string) bool { return p.pick(skills, tried) >= 0 }

func (p *planner) take(i int, now time.Time) {
	p.used[i]++
	p.last[i] = now
	if n := len(p.agents); n > 0 {
		p.rrNext = (i + 1) % n
	}
}

func sortWaiters(ws []Waiter) {
	sort.SliceStable(ws, func(i, j int) bool {
		if !ws[i].Requested.Equal(ws[j].Requested) {
			return ws[i].Requested.Before(ws[j].Requested)
		}
		return ws[i].Name < ws[j].Name
	})
}

// reservation is what planReservation decided.
type reservation struct {
	agent   *voicev1alpha1.Agent // nil: no agent free
	adopted bool                 // an earlier writer's reservation on this Call version
	changed bool                 // pool status changed (dead reservations dropped, one added)
}

// planReservation books an agent for the Call in pool's status (normalized),
// as read after the pool: the Call's dead reservations go, a reservation
// made against this very Call version is adopted, else the strategy picks.
func planReservation(pool *voicev1alpha1.AgentPool, call *voicev1alpha1.Call, skills, tried []string, now time.Time) reservation {
	var res reservation
	released := removeDead(pool, call.Name, call)
	if len(released) > 0 {
		res.changed = true
		normalize(pool)
	}
	for i := range pool.Spec.Agents {
		a := &pool.Spec.Agents[i]
		s := agentStatus(&pool.Status, a.Name)
		if a.Paused || s == nil {
			continue
		}
		for _, r := range s.Reservations {
			if r.Call == call.Name && r.CallResourceVersion == call.ResourceVersion {
				res.agent, res.adopted = a, true
				return res
			}
		}
	}
	p := newPlanner(pool)
	i := -1
	// A reservation of this Call that could not bind (the Call changed
	// meanwhile) is made again for the same agent when it may still have
	// the call: the strategy's choice does not drift with retries.
	ok := p.eligible(skills, tried)
	for _, name := range released {
		if j := p.index(name); j >= 0 && ok(j) {
			i = j
			break
		}
	}
	if i < 0 {
		i = p.pick(skills, tried)
	}
	if i < 0 {
		return res
	}
	a := &pool.Spec.Agents[i]
	s := agentStatus(&pool.Status, a.Name)
	t := metav1.NewTime(now)
	s.Reservations = append(s.Reservations, voicev1alpha1.AgentReservation{Call: call.Name, Since: t, CallResourceVersion: call.ResourceVersion})
	s.LastAssignedTime = &t
	p.take(i, now)
	pool.Status.RoundRobinNext = int32(p.rrNext)
	normalize(pool)
	res.agent, res.changed = a, true
	return res
}
