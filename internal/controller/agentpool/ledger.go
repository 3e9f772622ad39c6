package agentpool

import (
	"errors"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// ErrQueueFull is returned by Ledger.Enqueue when spec.queue.maxSize Calls
// already wait.
var ErrQueueFull = errors.New("the queue is full")

// Ledger is an AgentPool's bookings, the reservations of its agents and its
// queue, as one working copy of its status. It is pure: the caller reads the
// pool, changes the ledger and writes Pool() back with an Update carrying the
// resourceVersion it read, so two writers can never both take the last slot
// of an agent or of the queue (one gets a conflict, reads again and decides
// again).
//
// A reservation is made against a Call's resourceVersion and bound by a
// status write of the Call conditional on that version (Ringing with the
// agent). So a reservation the Call does not show may still bind only while
// the Call is unchanged; Release, given the Call as read after the pool,
// drops what can no longer bind.
type Ledger struct {
	pool    *voicev1alpha1.AgentPool
	changed bool
}

// NewLedger returns the ledger of a deep copy of pool, aligned with its spec.
func NewLedger(pool *voicev1alpha1.AgentPool) *Ledger {
	p := pool.DeepCopy()
	normalize(p)
	return &Ledger{pool: p}
}

// Pool is the pool with the ledger's changes, to write back.
func (l *Ledger) Pool() *voicev1alpha1.AgentPool { return l.pool }

// Changed reports whether the ledger differs from the pool it was made of
// (beyond alignment with the spec).
func (l *Ledger) Changed() bool { return l.changed }

// Booked is an agent the ledger booked for a Call.
type Booked struct {
	Agent voicev1alpha1.Agent
	// Adopted: an earlier writer's reservation on this very Call version.
	Adopted bool
}

// Reserve books an agent for a live Call wanting one (call as read after the
// pool): its dead reservations go, one made against this very version of
// the Call is adopted, else the strategy picks among the agents with the
// skills, skipping those tried. The Call leaves the queue when it gets an
// agent. It returns nil when no agent is free.
func (l *Ledger) Reserve(call *voicev1alpha1.Call, now time.Time) *Booked {
	skills, tried := wants(call)
	res := planReservation(l.pool, call, skills, tried, now)
	if res.changed {
		l.changed = true
	}
	if res.agent == nil {
		return nil
	}
	l.dequeue(call.Name)
	return &Booked{Agent: *res.agent, Adopted: res.adopted}
}

// Adoptable returns the agent booked for the Call at its current version
// (by a batch, or by a writer that stopped before binding), which the Call
// may bind without changing the pool.
func (l *Ledger) Adoptable(call *voicev1alpha1.Call) *voicev1alpha1.Agent {
	if a := pendingFor(l.pool, call); a != nil {
		out := *a
		return &out
	}
	return nil
}

// Holds reports whether the ledger books anything for the named Call: a
// reservation or a place in the queue.
func (l *Ledger) Holds(call string) bool {
	return hasReservations(l.pool, call) || l.queued(call)
}

// HasReservation reports whether an agent is booked for the named Call.
func (l *Ledger) HasReservation(call string) bool { return hasReservations(l.pool, call) }

// Enqueue puts a Call that got no agent in the queue, unless it is there.
// It fails with ErrQueueFull when spec.queue.maxSize Calls wait already.
func (l *Ledger) Enqueue(call string, now time.Time) error {
	if l.queued(call) {
		return nil
	}
	if len(l.pool.Status.Queue) >= int(l.pool.Spec.Queue.MaxSize) {
		return ErrQueueFull
	}
	l.pool.Status.Queue = append(l.pool.Status.Queue, voicev1alpha1.QueuedCall{Call: call, Since: metav1.NewTime(now)})
	l.changed = true
	normalize(l.pool)
	return nil
}

// Freed is what Release dropped.
type Freed struct {
	// Agents whose reservation of the Call was dropped.
	Agents []string
	// Dequeued: the Call's place in the queue was dropped.
	Dequeued bool
	// Abandoned: the call had ended before an agent answered; the pool's
	// status.abandoned counted it.
	Abandoned bool
}

// Any reports whether anything was released.
func (r Freed) Any() bool { return len(r.Agents) > 0 || r.Dequeued }

// Release drops the named Call's bookings that no longer hold. call must
// have been read after the pool version the ledger was made of (nil when the
// Call is gone): a reservation another writer may still bind is kept, and so
// is the place in the queue of a Call still waiting. A caller who hung up
// while waiting is counted in status.abandoned, once, in the same write that
// drops its bookings.
func (l *Ledger) Release(name string, call *voicev1alpha1.Call) Freed {
	var out Freed
	out.Agents = removeDead(l.pool, name, call)
	if l.queued(name) && !waiting(call) {
		l.dequeue(name)
		out.Dequeued = true
	}
	if !out.Any() {
		return out
	}
	l.changed = true
	if call != nil && CallEnded(call) && !everBridged(call) {
		l.pool.Status.Abandoned++
		out.Abandoned = true
	}
	normalize(l.pool)
	return out
}

// waiting reports whether the Call still wants an agent of its pool.
func waiting(call *voicev1alpha1.Call) bool {
	if call == nil || CallEnded(call) || call.Spec.Handoff == nil {
		return false
	}
	h := call.Status.Handoff
	if h == nil || h.Phase == "" {
		return call.Spec.Handoff.Requested
	}
	return h.Phase == voicev1alpha1.HandoffRequested || h.Phase == voicev1alpha1.HandoffQueued
}

func everBridged(call *voicev1alpha1.Call) bool {
	h := call.Status.Handoff
	return h != nil && (h.BridgedTime != nil || h.Outcome == voicev1alpha1.HandoffOutcomeBridged)
}

func (l *Ledger) queued(call string) bool {
	return slices.ContainsFunc(l.pool.Status.Queue, func(q voicev1alpha1.QueuedCall) bool { return q.Call == call })
}

func (l *Ledger) dequeue(call string) {
	n := len(l.pool.Status.Queue)
	l.pool.Status.Queue = slices.DeleteFunc(l.pool.Status.Queue, func(q voicev1alpha1.QueuedCall) bool { return q.Call == call })
	if len(l.pool.Status.Queue) != n {
		l.changed = true
		normalize(l.pool)
	}
}

// Waiter is a Call waiting for an agent, as the queue orders it.
type Waiter struct {
	Name      string
	Requested time.Time
	Skills    []string
	Tried     []string
	// ResourceVersion of the Call as read; a batch books against it.
	ResourceVersion string
}

// WaiterOf describes a Call waiting for an agent; a spec request not yet
// recorded asks now.
func WaiterOf(c *voicev1alpha1.Call, now time.Time) Waiter {
	skills, tried := wants(c)
	return Waiter{Name: c.Name, Requested: RequestedAt(c, now), Skills: skills, Tried: tried, ResourceVersion: c.ResourceVersion}
}

func wants(c *voicev1alpha1.Call) (skills, tried []string) {
	if c.Spec.Handoff != nil {
		skills = c.Spec.Handoff.Skills
	}
	if h := c.Status.Handoff; h != nil {
		tried = h.TriedAgents
	}
	return skills, tried
}

// RequestedAt is when the Call asked for an agent; a spec request not yet
// recorded asks now.
func RequestedAt(c *voicev1alpha1.Call, now time.Time) time.Time {
	if h := c.Status.Handoff; h != nil && h.RequestedTime != nil && h.Phase != "" {
		return h.RequestedTime.Time
	}
	return now
}

// Plan is one round of the queue: waiting Calls, in order of request, take
// the free agents, each as the strategy picks among the agents it may have,
// so a Call waiting for a skill nobody free has does not hold up the Calls
// behind it. Calls already holding a reservation are left out.
type Plan struct {
	// Served are the Calls that get an agent this round, with the agent.
	Served map[string]voicev1alpha1.Agent
	// Order is every waiter, in order of request.
	Order []Waiter
}

// PlanRound plans a round of the queue over the ledger's free agents.
func (l *Ledger) PlanRound(waiters []Waiter, now time.Time) Plan {
	ws := slices.Clone(waiters)
	sortWaiters(ws)
	p := newPlanner(l.pool)
	plan := Plan{Served: map[string]voicev1alpha1.Agent{}, Order: ws}
	for _, w := range ws {
		if hasReservations(l.pool, w.Name) {
			continue
		}
		if i := p.pick(w.Skills, w.Tried); i >= 0 {
			p.take(i, now)
			plan.Served[w.Name] = p.agents[i]
		}
	}
	return plan
}

// ReserveRound books, in the ledger, an agent for every Call the round
// serves, each against the version of the Call given, and queues the others
// (in order, up to maxSize): a burst of requests then costs one pool write
// per round, not one per Call plus the conflicts of all the others. A
// reservation made against a stale version cannot bind; its Call books
// again the careful way (Reserve).
func (l *Ledger) ReserveRound(waiters []Waiter, now time.Time) Plan {
	plan := l.PlanRound(waiters, now)
	p := newPlanner(l.pool)
	t := metav1.NewTime(now)
	for _, w := range plan.Order {
		a, ok := plan.Served[w.Name]
		if !ok {
			if !hasReservations(l.pool, w.Name) {
				_ = l.Enqueue(w.Name, now) // a full queue fails the Call in its own pass
			}
			continue
		}
		i := p.index(a.Name)
		p.take(i, now)
		s := agentStatus(&l.pool.Status, a.Name)
		s.Reservations = append(s.Reservations, voicev1alpha1.AgentReservation{Call: w.Name, Since: t, CallResourceVersion: w.ResourceVersion})
		s.LastAssignedTime = &t
		l.pool.Status.RoundRobinNext = int32(p.rrNext)
		l.dequeue(w.Name)
		l.changed = true
	}
	normalize(l.pool)
	return plan
}

// CanServe reports whether some agent could take a Call wanting skills now.
func (l *Ledger) CanServe(skills []string) bool { return newPlanner(l.pool).free(skills, nil) }

// AnyHasSkills reports whether some agent in spec could ever take a Call
// wanting these skills.
func AnyHasSkills(pool *voicev1alpha1.AgentPool, skills []string) bool {
	return anyHasSkills(pool, skills)
}

// ReservedCalls lists the Calls with a reservation in the pool.
func ReservedCalls(pool *voicev1alpha1.AgentPool) []string { return reservedCalls(pool) }

// BookedCalls lists the Calls with a reservation in the pool, then those in
// its queue.
func BookedCalls(pool *voicev1alpha1.AgentPool) []string {
	out := reservedCalls(pool)
	for _, q := range pool.Status.Queue {
		if !slices.Contains(out, q.Call) {
			out = append(out, q.Call)
		}
	}
	return out
}
