package handoff

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/internal/controller/agentpool"
)

func queueWait(pool *voicev1alpha1.AgentPool) time.Duration {
	s := pool.Spec.Queue.MaxWaitSeconds
	if s <= 0 {
		s = 120
	}
	return time.Duration(s) * time.Second
}

func ringTimeout(pool *voicev1alpha1.AgentPool) time.Duration {
	s := pool.Spec.RingTimeoutSeconds
	if s <= 0 {
		s = 20
	}
	return time.Duration(s) * time.Second
}

// getPool reads the Call's AgentPool from the cache; nil when it does not
// exist.
func (r *Reconciler) getPool(ctx context.Context, c *voicev1alpha1.Call) (*voicev1alpha1.AgentPool, error) {
	pool := &voicev1alpha1.AgentPool{}
	err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: agentpool.PoolOf(c)}, pool)
	if apierrors.IsNotFound(err) || (err == nil && agentpool.PoolOf(c) == "") {
		return nil, nil
	}
	return pool, err
}

// seek books an agent for a Call that wants one, or queues it.
func (r *Reconciler) seek(ctx context.Context, s *scope) (ctrl.Result, error) {
	c := s.call
	switch {
	case agentpool.CallEnded(c):
		if h := c.Status.Handoff; h != nil && h.Missed != nil {
			if wait := r.legWordDue(c, s.now); wait > 0 {
				return ctrl.Result{RequeueAfter: wait}, nil
			}
		}
		s.end(voicev1alpha1.HandoffOutcomeAbandoned, "the call ended before an agent answered", false)
		return ctrl.Result{}, nil
	case c.Spec.Handoff == nil:
		s.end(voicev1alpha1.HandoffOutcomeFailed, "spec.handoff was removed", false)
		return ctrl.Result{}, nil
	case !agentpool.Answered(c):
		return ctrl.Result{}, nil
	}
	pool, err := r.getPool(ctx, c)
	if err != nil || pool == nil {
		if pool == nil && err == nil {
			s.end(voicev1alpha1.HandoffOutcomeFailed, fmt.Sprintf("AgentPool %s does not exist", agentpool.PoolOf(c)), true)
		}
		return ctrl.Result{}, err
	}
	deadline := agentpool.RequestedAt(c, s.now).Add(queueWait(pool))
	if !s.now.Before(deadline) {
		s.end(voicev1alpha1.HandoffOutcomeTimedOut, fmt.Sprintf("no agent answered within the queue's maxWaitSeconds (%s)", queueWait(pool)), true)
		return ctrl.Result{}, nil
	}
	if skills := c.Spec.Handoff.Skills; !agentpool.AnyHasSkills(pool, skills) {
		s.end(voicev1alpha1.HandoffOutcomeFailed, fmt.Sprintf("no agent of AgentPool %s has all the skills %v", pool.Name, skills), true)
		return ctrl.Result{}, nil
	}

	if wait := afterMissed(c, s.now); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	l := agentpool.NewLedger(pool)
	if l.HasReservation(c.Name) {
		// Booked for this very version of the Call (by a round, or by a
		// writer that stopped before binding): bind it. Anything else goes
		// the careful way, which drops what can no longer bind.
		if a := l.Adoptable(c); a != nil {
			s.assign(*a)
			return ctrl.Result{RequeueAfter: r.BridgeWait}, nil
		}
		return r.reserve(ctx, s, deadline)
	}
	waiters, err := r.waiters(ctx, c, s.now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if _, served := l.PlanRound(waiters, s.now).Served[c.Name]; !served {
		return r.queue(ctx, s, l, deadline)
	}
	if a := r.reserveRound(ctx, s, pool, waiters); a != nil {
		s.assign(*a)
		return ctrl.Result{RequeueAfter: r.BridgeWait}, nil
	}
	return r.reserve(ctx, s, deadline)
}

// waiters lists the pool's Calls waiting for an agent, c as given.
func (r *Reconciler) waiters(ctx context.Context, c *voicev1alpha1.Call, now time.Time) ([]agentpool.Waiter, error) {
	calls, err := agentpool.CallsOfPool(ctx, r, c.Namespace, agentpool.PoolOf(c))
	if err != nil {
		return nil, err
	}
	ws := []agentpool.Waiter{agentpool.WaiterOf(c, now)}
	for i := range calls {
		if o := &calls[i]; o.Name != c.Name && seeking(o) {
			ws = append(ws, agentpool.WaiterOf(o, now))
		}
	}
	return ws, nil
}

// queue keeps a Call that got no agent in the pool's queue, bounded by
// maxSize as the pool's ledger counts it.
func (r *Reconciler) queue(ctx context.Context, s *scope, l *agentpool.Ledger, deadline time.Time) (ctrl.Result, error) {
	c := s.call
	// An agent freeing up changes the pool, which wakes the Calls first in
	// line; otherwise the deadline is the only timer. While some agent this
	// Call could have is free (the queue gave it to a Call ahead, whose
	// reconcile may be late or fail), look again soon.
	after := deadline.Sub(s.now)
	if l.CanServe(c.Spec.Handoff.Skills) {
		after = min(after, 2*time.Second)
	}
	if !l.Holds(c.Name) {
		full, err := r.enqueue(ctx, c)
		if err != nil {
			return ctrl.Result{}, err
		}
		if full != nil {
			s.end(voicev1alpha1.HandoffOutcomeFailed, fmt.Sprintf("every agent is busy and the queue of AgentPool %s is full (maxSize %d)",
				full.Name, full.Spec.Queue.MaxSize), true)
			return ctrl.Result{}, nil
		}
	}
	if phaseOf(c) != voicev1alpha1.HandoffQueued {
		s.queued()
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

// ringing follows an assigned agent until the bridge connects or the ring
// runs out.
func (r *Reconciler) ringing(ctx context.Context, s *scope) (ctrl.Result, error) {
	c := s.call
	if isV3(c) {
		// No gateway bridges a v3 call and no webhook tells of the agent's
		// leg: the Reconciler transfers the call and follows the transfer.
		return r.ringingV3(ctx, s)
	}
	h := c.Status.Handoff
	if agentpool.CallEnded(c) {
		if wait := r.legWordDue(c, s.now); (h.BridgeSentTime != nil || h.Missed != nil) && wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		s.end(voicev1alpha1.HandoffOutcomeAbandoned, fmt.Sprintf("the call ended while agent %s was ringing", h.Agent), false)
		return ctrl.Result{}, nil
	}
	pool, err := r.getPool(ctx, c)
	if err != nil {
		return ctrl.Result{}, err
	}
	if pool == nil {
		pool = &voicev1alpha1.AgentPool{}
	}
	r.releaseStale(s, pool)
	if h.BridgeSentTime == nil {
		bs, err := r.Bridger.Bridge(ctx, c, pool, s.now)
		switch {
		case err != nil:
			return ctrl.Result{}, err
		case bs.Failed != "":
			s.end(voicev1alpha1.HandoffOutcomeFailed, bs.Failed, false)
			return ctrl.Result{}, nil
		case h.BridgeSentTime == nil:
			return ctrl.Result{RequeueAfter: bs.CheckAfter}, nil
		}
	}
	due := h.BridgeSentTime.Add(ringTimeout(pool) + r.RingSlack)
	if s.now.Before(due) {
		return ctrl.Result{RequeueAfter: due.Sub(s.now)}, nil
	}
	// Piopiy said nothing of the agent's leg: take it as no answer.
	s.noAnswer()
	return ctrl.Result{RequeueAfter: time.Millisecond}, nil
}

// legWordDue is how long, after the call ended, the agent's leg may still
// be heard of: webhooks come late and out of order, so when a bridge went
// out (or the leg was taken as missed on its hangup alone), word that the
// agent answered may still be on its way. RingSlack bounds the wait.
func (r *Reconciler) legWordDue(c *voicev1alpha1.Call, now time.Time) time.Duration {
	a := callstate.Current(&c.Status)
	if a == nil || a.EndTime == nil {
		return 0
	}
	return a.EndTime.Add(r.RingSlack).Sub(now)
}

// afterMissed is how long the next assignment waits after an agent's leg
// was taken as missed: status times have one-second resolution and the
// webhook receiver tells a leg's events from a later assignment's by time,
// so a new assignment (maybe of the same agent) falls in a later second
// than the missed leg's end.
func afterMissed(c *voicev1alpha1.Call, now time.Time) time.Duration {
	h := c.Status.Handoff
	if h == nil || h.Missed == nil || h.Missed.EndedTime == nil || h.Missed.Assignment != h.Assignment {
		return 0
	}
	return h.Missed.EndedTime.Truncate(time.Second).Add(time.Second).Sub(now)
}

// bridged follows a connected agent until the bridge or the call ends.
func (r *Reconciler) bridged(ctx context.Context, s *scope) (ctrl.Result, error) {
	ended := agentpool.CallEnded(s.call)
	s.bridgedOutcome(ended)
	if !ended {
		pool, err := r.getPool(ctx, s.call)
		if err == nil && pool != nil {
			r.releaseStale(s, pool)
		}
	}
	return ctrl.Result{}, nil
}

// finished releases what a finished handoff still holds and, for onNoAgent
// Hangup, makes sure the call ends.
func (r *Reconciler) finished(ctx context.Context, s *scope) (ctrl.Result, error) {
	h := s.call.Status.Handoff
	if h.Phase == voicev1alpha1.HandoffEnded && h.Outcome == "" {
		s.bridgedOutcome(true) // the receiver ended it before this controller saw it bridged
	}
	if pool, err := r.getPool(ctx, s.call); err == nil && pool != nil && agentpool.NewLedger(pool).Holds(s.call.Name) {
		s.release = true
	}
	if h.OnNoAgent == voicev1alpha1.OnNoAgentHangup && !agentpool.CallEnded(s.call) {
		s.hangup = true
	}
	return ctrl.Result{}, nil
}
