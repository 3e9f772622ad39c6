package handoff

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/controller/agentpool"
)

// The pool writes of a pass. Each is an Update of the AgentPool's status on
// the version read (agentpool.Ledger), so racing writers never double-book.

// reserveRound books, in one pool write, an agent for every waiting Call
// the queue serves now (the scope's Call among them) and queues the rest,
// each against the version of the Call in the cache. Each Call binds its
// own reservation in its own pass (the pool's change wakes them). It returns
// the scope's Call's agent, or nil when the write did not land.
func (r *Reconciler) reserveRound(ctx context.Context, s *scope, pool *voicev1alpha1.AgentPool, waiters []agentpool.Waiter) *voicev1alpha1.Agent {
	mu := r.roundLock(pool.Namespace + "/" + pool.Name)
	mu.Lock()
	defer mu.Unlock()
	l := agentpool.NewLedger(pool)
	a, ok := l.ReserveRound(waiters, s.now).Served[s.call.Name]
	if !ok {
		return nil
	}
	if err := r.Status().Update(ctx, l.Pool()); err != nil {
		if !apierrors.IsConflict(err) {
			log.FromContext(ctx).Error(err, "Booking agents for the queue")
		}
		return nil
	}
	return &a
}

func (r *Reconciler) roundLock(key string) *sync.Mutex {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rounds == nil {
		r.rounds = map[string]*sync.Mutex{}
	}
	mu := r.rounds[key]
	if mu == nil {
		mu = &sync.Mutex{}
		r.rounds[key] = mu
	}
	return mu
}

// reserve books an agent the careful way: the pool and the Call are read
// past the cache, the pool first; the Call's dead reservations go, one of
// this very version is adopted, else one is made, and the pass binds the
// Call (as read) to it. With no agent free the Call queues.
func (r *Reconciler) reserve(ctx context.Context, s *scope, deadline time.Time) (ctrl.Result, error) {
	key := client.ObjectKeyFromObject(s.call)
	poolKey := types.NamespacedName{Namespace: key.Namespace, Name: agentpool.PoolOf(s.call)}
	for try := 0; try < maxTries; try++ {
		pool := &voicev1alpha1.AgentPool{}
		if err := r.APIReader.Get(ctx, poolKey, pool); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		fresh := &voicev1alpha1.Call{}
		if err := r.APIReader.Get(ctx, key, fresh); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		if !seeking(fresh) || agentpool.PoolOf(fresh) != pool.Name {
			return ctrl.Result{RequeueAfter: time.Millisecond}, nil // moved on meanwhile: start over
		}
		l := agentpool.NewLedger(pool)
		booked := l.Reserve(fresh, r.Now())
		if l.Changed() {
			if err := r.Status().Update(ctx, l.Pool()); err != nil {
				if apierrors.IsConflict(err) {
					continue
				}
				return ctrl.Result{}, err
			}
		}
		s.rebase(fresh)
		if booked == nil {
			return r.queue(ctx, s, l, deadline)
		}
		log.FromContext(ctx).V(1).Info("Agent booked", "agent", booked.Agent.Name, "adopted", booked.Adopted, "tries", try+1)
		s.assign(booked.Agent)
		return ctrl.Result{RequeueAfter: r.BridgeWait}, nil
	}
	return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
}

// enqueue puts the Call in its pool's queue. It returns the pool when the
// queue is full.
func (r *Reconciler) enqueue(ctx context.Context, c *voicev1alpha1.Call) (full *voicev1alpha1.AgentPool, err error) {
	key := types.NamespacedName{Namespace: c.Namespace, Name: agentpool.PoolOf(c)}
	for try := 0; try < maxTries; try++ {
		pool := &voicev1alpha1.AgentPool{}
		if err := r.APIReader.Get(ctx, key, pool); err != nil {
			return nil, err
		}
		l := agentpool.NewLedger(pool)
		if err := l.Enqueue(c.Name, r.Now()); errors.Is(err, agentpool.ErrQueueFull) {
			return pool, nil
		}
		if !l.Changed() {
			return nil, nil
		}
		err := r.Status().Update(ctx, l.Pool())
		if !apierrors.IsConflict(err) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("queueing Call %s in AgentPool %s: the pool kept changing", c.Name, key.Name)
}

// releaseStale releases, after the write, the Call's reservations other
// than its bound agent, when the cached pool shows any.
func (r *Reconciler) releaseStale(s *scope, pool *voicev1alpha1.AgentPool) {
	for _, a := range pool.Status.Agents {
		for _, res := range a.Reservations {
			if res.Call == s.call.Name && (a.Name != s.call.Status.Handoff.Agent || s.call.Status.Handoff.Phase == voicev1alpha1.HandoffRequested) {
				s.release = true
				return
			}
		}
	}
}

// releaseAnnounced releases the Call's bookings, counting an abandonment
// and announcing the end of a bridge when that is what the release did.
func (r *Reconciler) releaseAnnounced(ctx context.Context, s *scope) error {
	rel, err := r.releaseOf(ctx, s.call.Namespace, agentpool.PoolOf(s.call), s.call.Name)
	if err != nil {
		return err
	}
	if rel.Abandoned {
		agentpool.Abandoned.WithLabelValues(s.call.Namespace, agentpool.PoolOf(s.call)).Inc()
	}
	if h := s.call.Status.Handoff; h != nil && h.Phase == voicev1alpha1.HandoffEnded && len(rel.Agents) > 0 {
		// The receiver usually writes Ended; freeing the agent is the one
		// write of this controller that follows it, exactly once.
		r.event(s.call, "Normal", "HandoffEnded", "the call with agent %s ended; the agent is free", h.Agent)
	}
	return nil
}

func (r *Reconciler) release(ctx context.Context, c *voicev1alpha1.Call) error {
	_, err := r.releaseOf(ctx, c.Namespace, agentpool.PoolOf(c), c.Name)
	return err
}

// releaseOf drops the Call's bookings that can no longer hold: the pool is
// read first and the Call past the cache second, so a reservation made by
// another writer that may still bind is kept.
func (r *Reconciler) releaseOf(ctx context.Context, ns, poolName, callName string) (agentpool.Freed, error) {
	if poolName == "" {
		return agentpool.Freed{}, nil
	}
	for try := 0; try < maxTries; try++ {
		pool := &voicev1alpha1.AgentPool{}
		var err error
		if try == 0 {
			err = r.Get(ctx, types.NamespacedName{Namespace: ns, Name: poolName}, pool)
		} else {
			err = r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: poolName}, pool)
		}
		if err != nil {
			return agentpool.Freed{}, client.IgnoreNotFound(err)
		}
		l := agentpool.NewLedger(pool)
		if !l.Holds(callName) {
			return agentpool.Freed{}, nil
		}
		fresh := &voicev1alpha1.Call{}
		switch err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: callName}, fresh); {
		case apierrors.IsNotFound(err):
			fresh = nil
		case err != nil:
			return agentpool.Freed{}, err
		}
		rel := l.Release(callName, fresh)
		if !rel.Any() {
			return rel, nil
		}
		err = r.Status().Update(ctx, l.Pool())
		if err == nil {
			log.FromContext(ctx).V(1).Info("Released", "agents", strings.Join(rel.Agents, ","), "dequeued", rel.Dequeued)
			return rel, nil
		}
		if !apierrors.IsConflict(err) {
			return agentpool.Freed{}, err
		}
	}
	return agentpool.Freed{}, fmt.Errorf("releasing Call %s's bookings in AgentPool %s: the pool kept changing", callName, poolName)
}
