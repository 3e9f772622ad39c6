package agentpool

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/internal/controller/call"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// Sources of a handoff (status.handoff.source).
const (
	SourceSpec = "Spec"
	SourceBot  = "Bot"
)

// onNoAgent values.
const (
	OnNoAgentReturnToBot = "ReturnToBot"
	OnNoAgentHangup      = "Hangup"
)

// ConditionHandoffMonitoring is set on a Call whose handoff keeps the stream:
// False when listenMode cannot carry the agent's voice.
const ConditionHandoffMonitoring = "HandoffMonitoring"

// hangingUp ends the reason of a handoff whose onNoAgent hangs the call up;
// while the call lives, the controller keeps asking Piopiy to end it.
const hangingUp = "; hanging up the call (onNoAgent: Hangup)"

// Defaults of HandoffReconciler.
const (
	DefaultRingSlack  = 10 * time.Second
	DefaultBridgeWait = 30 * time.Second
	DefaultWorkers    = 4
	hangupRetry       = 10 * time.Second
	maxTries          = 8
)

// PiopiyClients gives the Piopiy client of an account; the Call controller's
// *call.ClientCache is one.
type PiopiyClients interface {
	For(piopiy.Credentials) (call.PiopiyAPI, error)
}

// HandoffReconciler hands live Calls to agents of their AgentPool. It
// writes status.handoff of Calls and the reservations of AgentPools.
type HandoffReconciler struct {
	client.Client
	// APIReader reads past the cache around a reservation.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Accounts and Piopiy hang a call up when its handoff ends without an
	// agent and spec.handoff.onNoAgent is Hangup (Piopiy's call action on the
	// leg-a cmiuuid). Without them such calls stay with the bot.
	Accounts *account.Resolver
	Piopiy   PiopiyClients
	// V3 carries out the handoffs of spec.agent Calls as Piopiy v3 warm
	// transfers (nil: those handoffs fail, saying why).
	V3 V3Clients
	// Limiter paces Piopiy requests (shared with the Call controller).
	Limiter *rate.Limiter
	// Workers is the number of Calls reconciled in parallel.
	Workers int
	// RingSlack is added to the pool's ringTimeoutSeconds after the bridge
	// was sent before an agent whose leg sent no word counts as not
	// answering (Piopiy's own bridge timeout normally ends the ring first).
	RingSlack time.Duration
	// BridgeWait is how long an assigned agent waits for the gateway to send
	// the bridge before the handoff fails.
	BridgeWait time.Duration
	Now        func() time.Time

	mu    sync.Mutex
	seen  map[types.NamespacedName]*seenHandoff
	locks map[string]*sync.Mutex // per pool: one batch at a time in this process
}

// seenHandoff remembers what was counted and announced for one handoff.
type seenHandoff struct {
	id         string // requestedTime + source: a new request resets
	counted    bool
	requested  bool
	bridged    bool
	ended      bool
	lastNumber string
	lastAt     time.Time // last assignment, to never reassign a number within one second
	hangupAt   time.Time
}

// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=calls,verbs=get;list;watch
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=calls/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=agentpools,verbs=get;list;watch
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=agentpools/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves one Call's handoff forward.
func (r *HandoffReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c := &voicev1alpha1.Call{}
	if err := r.Get(ctx, req.NamespacedName, c); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	h := c.Status.Handoff
	if h == nil || h.Phase == "" {
		if !specRequested(c) || !answered(c) {
			return ctrl.Result{}, nil // the answer (a status change) wakes us
		}
		return r.seek(ctx, c)
	}
	r.observe(c)
	switch h.Phase {
	case voicev1alpha1.HandoffRequested, voicev1alpha1.HandoffQueued:
		return r.seek(ctx, c)
	case voicev1alpha1.HandoffRinging:
		return r.ringing(ctx, c)
	case voicev1alpha1.HandoffBridged:
		return r.bridged(ctx, c)
	default:
		return r.finished(ctx, c)
	}
}

func specRequested(c *voicev1alpha1.Call) bool {
	return c.Spec.Handoff != nil && c.Spec.Handoff.Requested && c.DeletionTimestamp == nil
}

// seeking reports whether the Call wants an agent now.
func seeking(c *voicev1alpha1.Call) bool {
	if !answered(c) || c.Spec.Handoff == nil {
		return false
	}
	h := c.Status.Handoff
	if h == nil || h.Phase == "" {
		return specRequested(c)
	}
	return h.Phase == voicev1alpha1.HandoffRequested || h.Phase == voicev1alpha1.HandoffQueued
}

// requestedAt is when the Call asked; a spec request not yet recorded asks now.
func requestedAt(c *voicev1alpha1.Call, now time.Time) time.Time {
	if h := c.Status.Handoff; h != nil && h.RequestedTime != nil && h.Phase != "" {
		return h.RequestedTime.Time
	}
	return now
}

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

// seek reserves an agent for a Call that wants one, or queues it.
func (r *HandoffReconciler) seek(ctx context.Context, c *voicev1alpha1.Call) (ctrl.Result, error) {
	now := r.Now()
	switch {
	case callEnded(c):
		return r.finish(ctx, c, voicev1alpha1.HandoffFailed, "the call ended before an agent answered", false)
	case c.Spec.Handoff == nil:
		return r.finish(ctx, c, voicev1alpha1.HandoffFailed, "spec.handoff was removed", false)
	case !answered(c):
		return ctrl.Result{}, nil
	}
	pool := &voicev1alpha1.AgentPool{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: poolOf(c)}, pool); err != nil {
		if apierrors.IsNotFound(err) {
			return r.finish(ctx, c, voicev1alpha1.HandoffFailed, fmt.Sprintf("AgentPool %s does not exist", poolOf(c)), true)
		}
		return ctrl.Result{}, err
	}
	deadline := requestedAt(c, now).Add(queueWait(pool))
	if !now.Before(deadline) {
		return r.finish(ctx, c, voicev1alpha1.HandoffTimedOut,
			fmt.Sprintf("no agent answered within the queue's maxWaitSeconds (%s)", queueWait(pool)), true)
	}
	skills := c.Spec.Handoff.Skills
	if !anyHasSkills(pool, skills) {
		return r.finish(ctx, c, voicev1alpha1.HandoffFailed,
			fmt.Sprintf("no agent of AgentPool %s has all the skills %v", pool.Name, skills), true)
	}
	if wait := r.sameSecond(c, now); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}

	normalize(pool)
	if hasReservations(pool, c.Name) {
		// Booked for this very version of the Call (by a batch, or by a
		// writer that stopped before binding): bind it. Anything else goes
		// the careful way, which drops what can no longer bind.
		if a := pendingFor(pool, c); a != nil {
			if res, done, err := r.bind(ctx, c, a, pool.Name); done {
				return res, err
			}
		}
		return r.reserve(ctx, c, pool, deadline)
	}
	waiters, queued, err := r.waiters(ctx, c, pool, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !servedNow(newPlanner(pool), waiters, c.Name, now) {
		return r.queue(ctx, c, pool, queued, deadline)
	}
	if a := r.reserveBatch(ctx, c, pool, waiters, now); a != nil {
		if res, done, err := r.bind(ctx, c, a, pool.Name); done {
			return res, err
		}
	}
	return r.reserve(ctx, c, pool, deadline)
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

// reserveBatch books, in one pool write, an agent for every waiting Call
// the queue serves now (c among them), each against the version of the Call
// in the cache: a burst of requests then costs one pool write per round, not
// one per Call plus the conflicts of all the others. Each Call binds its own
// reservation in its own reconcile (the pool's change wakes them); one made
// against a stale version cannot bind and is remade the careful way. It
// returns c's agent, or nil when the batch did not land.
func (r *HandoffReconciler) reserveBatch(ctx context.Context, c *voicev1alpha1.Call, pool *voicev1alpha1.AgentPool, waiters []waiter, now time.Time) *voicev1alpha1.Agent {
	mu := r.poolLock(c.Namespace + "/" + pool.Name)
	mu.Lock()
	defer mu.Unlock()
	p := pool.DeepCopy()
	pl := newPlanner(p)
	t := metav1.NewTime(now)
	var mine *voicev1alpha1.Agent
	for _, w := range waiters {
		if w.reserved {
			continue
		}
		i := pl.pick(w.skills, w.tried)
		if i < 0 {
			continue
		}
		pl.take(i, now)
		s := agentStatus(&p.Status, p.Spec.Agents[i].Name)
		s.Reservations = append(s.Reservations, voicev1alpha1.AgentReservation{Call: w.name, Since: t, CallResourceVersion: w.rv})
		s.LastAssignedTime = &t
		if w.name == c.Name {
			a := p.Spec.Agents[i]
			mine = &a
		}
	}
	if mine == nil {
		return nil
	}
	p.Status.RoundRobinNext = int32(pl.rrNext)
	normalize(p)
	if err := r.Status().Update(ctx, p); err != nil {
		if !apierrors.IsConflict(err) {
			log.FromContext(ctx).Error(err, "Booking agents for the queue")
		}
		return nil
	}
	return mine
}

func (r *HandoffReconciler) poolLock(key string) *sync.Mutex {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.locks == nil {
		r.locks = map[string]*sync.Mutex{}
	}
	mu := r.locks[key]
	if mu == nil {
		mu = &sync.Mutex{}
		r.locks[key] = mu
	}
	return mu
}

// bind writes the Call's handoff Ringing with the agent booked for it,
// conditional on the version the booking was made against. done is false
// when that version is gone (a conflict): the caller books the careful way.
func (r *HandoffReconciler) bind(ctx context.Context, c *voicev1alpha1.Call, a *voicev1alpha1.Agent, pool string) (ctrl.Result, bool, error) {
	now := r.Now()
	upd := c.DeepCopy()
	h, fresh := r.started(upd, now)
	t := metav1.NewTime(now)
	h.Phase = voicev1alpha1.HandoffRinging
	h.Agent, h.Number = a.Name, a.Number
	h.AgentAssignedTime = &t
	h.BridgeSentTime, h.BridgedTime, h.EndedTime = nil, nil, nil
	if err := r.Status().Update(ctx, upd); err != nil {
		if apierrors.IsConflict(err) {
			return ctrl.Result{}, false, nil
		}
		return ctrl.Result{}, true, client.IgnoreNotFound(err)
	}
	r.announceStart(upd, fresh)
	r.assigned(client.ObjectKeyFromObject(c), a.Number, now)
	r.event(upd, "Normal", "AgentAssigned", "ringing agent %s (%s) of %s", a.Name, a.Number, pool)
	return ctrl.Result{RequeueAfter: r.BridgeWait}, true, nil
}

// waiters lists the pool's Calls waiting for an agent (c as given), in
// order of request, and how many of the others are Queued.
func (r *HandoffReconciler) waiters(ctx context.Context, c *voicev1alpha1.Call, pool *voicev1alpha1.AgentPool, now time.Time) ([]waiter, int, error) {
	calls, err := callsOfPool(ctx, r, c.Namespace, pool.Name)
	if err != nil {
		return nil, 0, err
	}
	ws := []waiter{waiterOf(c, now)}
	queued := 0
	for i := range calls {
		o := &calls[i]
		if o.Name == c.Name || !seeking(o) {
			continue
		}
		if o.Status.Handoff != nil && o.Status.Handoff.Phase == voicev1alpha1.HandoffQueued {
			queued++
		}
		w := waiterOf(o, now)
		w.reserved = hasReservations(pool, o.Name)
		ws = append(ws, w)
	}
	sortWaiters(ws)
	return ws, queued, nil
}

func waiterOf(c *voicev1alpha1.Call, now time.Time) waiter {
	w := waiter{name: c.Name, requested: requestedAt(c, now), rv: c.ResourceVersion}
	if c.Spec.Handoff != nil {
		w.skills = c.Spec.Handoff.Skills
	}
	if h := c.Status.Handoff; h != nil {
		w.tried = h.TriedAgents
	}
	return w
}

// queue puts a Call that got no agent in the queue, bounded by maxSize.
func (r *HandoffReconciler) queue(ctx context.Context, c *voicev1alpha1.Call, pool *voicev1alpha1.AgentPool, queued int, deadline time.Time) (ctrl.Result, error) {
	now := r.Now()
	// An agent freeing up changes the pool, which wakes the Calls first in
	// line; otherwise the deadline is the only timer. While some agent this
	// Call could have is free (the queue gave it to a Call ahead, whose
	// reconcile may be late or fail), look again soon.
	after := deadline.Sub(now)
	if newPlanner(pool).free(c.Spec.Handoff.Skills, nil) {
		after = min(after, 2*time.Second)
	}
	if h := c.Status.Handoff; h != nil && h.Phase == voicev1alpha1.HandoffQueued {
		return ctrl.Result{RequeueAfter: after}, nil
	}
	if queued >= int(pool.Spec.Queue.MaxSize) {
		return r.finish(ctx, c, voicev1alpha1.HandoffFailed,
			fmt.Sprintf("every agent is busy and the queue of AgentPool %s is full (maxSize %d)", pool.Name, pool.Spec.Queue.MaxSize), true)
	}
	upd := c.DeepCopy()
	h, fresh := r.started(upd, now)
	h.Phase = voicev1alpha1.HandoffQueued
	if err := r.Status().Update(ctx, upd); err != nil {
		return conflictRequeue(err)
	}
	r.announceStart(upd, fresh)
	r.event(upd, "Normal", "HandoffQueued", "every agent of %s is busy; queued for up to %s", pool.Name, deadline.Sub(now).Round(time.Second))
	return ctrl.Result{RequeueAfter: after}, nil
}

// started returns the Call's status.handoff, recording a spec request
// (fresh reports it: announce it once the write lands).
func (r *HandoffReconciler) started(c *voicev1alpha1.Call, now time.Time) (h *voicev1alpha1.CallHandoffStatus, fresh bool) {
	h = c.Status.Handoff
	if h == nil {
		h = &voicev1alpha1.CallHandoffStatus{}
		c.Status.Handoff = h
	}
	if h.Phase == "" {
		t := metav1.NewTime(now)
		*h = voicev1alpha1.CallHandoffStatus{Source: SourceSpec, RequestedTime: &t}
		fresh = true
	}
	if h.RequestedTime == nil {
		t := metav1.NewTime(now)
		h.RequestedTime = &t
	}
	r.checkMonitoring(c)
	return h, fresh
}

// announceStart emits HandoffRequested for a spec request just recorded.
func (r *HandoffReconciler) announceStart(c *voicev1alpha1.Call, fresh bool) {
	if fresh {
		r.event(c, "Normal", "HandoffRequested", "spec.handoff.requested: looking for an agent of %s", poolOf(c))
	}
}

// checkMonitoring sets HandoffMonitoring when the stream is kept after the
// bridge: only listenMode both carries the agent's voice.
func (r *HandoffReconciler) checkMonitoring(c *voicev1alpha1.Call) {
	if c.Spec.Handoff == nil || !c.Spec.Handoff.KeepStreaming {
		meta.RemoveStatusCondition(&c.Status.Conditions, ConditionHandoffMonitoring)
		return
	}
	cond := metav1.Condition{Type: ConditionHandoffMonitoring, Status: metav1.ConditionTrue, Reason: "ListenModeBoth",
		Message: "the stream stays up after the bridge carrying the caller and the agent", ObservedGeneration: c.Generation}
	switch c.Spec.Stream.ListenMode {
	case voicev1alpha1.ListenBoth:
	case voicev1alpha1.ListenCallee:
		cond.Status, cond.Reason = metav1.ConditionFalse, "ListenModeCallee"
		cond.Message = "keepStreaming is set but stream.listenMode is callee: after the bridge the stream carries the agent only, not the caller; use listenMode both"
	default:
		cond.Status, cond.Reason = metav1.ConditionFalse, "ListenModeCaller"
		cond.Message = "keepStreaming is set but stream.listenMode is caller: after the bridge the stream carries the caller only, not the agent; use listenMode both"
	}
	if old := meta.FindStatusCondition(c.Status.Conditions, ConditionHandoffMonitoring); cond.Status == metav1.ConditionFalse && (old == nil || old.Reason != cond.Reason) {
		r.event(c, "Warning", cond.Reason, "%s", cond.Message)
	}
	meta.SetStatusCondition(&c.Status.Conditions, cond)
}

// reserve books an agent in the pool's status, then binds the Call to it
// (Ringing). Both writes are optimistic; on a conflict everything is read
// again, the pool before the Call.
func (r *HandoffReconciler) reserve(ctx context.Context, c *voicev1alpha1.Call, pool *voicev1alpha1.AgentPool, deadline time.Time) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	key := client.ObjectKeyFromObject(c)
	for try := 0; try < maxTries; try++ {
		if try > 0 {
			pool = &voicev1alpha1.AgentPool{}
			if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: poolOf(c)}, pool); err != nil {
				return ctrl.Result{}, client.IgnoreNotFound(err)
			}
			normalize(pool)
		}
		fresh := &voicev1alpha1.Call{}
		if err := r.APIReader.Get(ctx, key, fresh); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		if !seeking(fresh) || poolOf(fresh) != pool.Name {
			return ctrl.Result{Requeue: true}, nil // moved on meanwhile: start over
		}
		now := r.Now()
		var tried []string
		if fresh.Status.Handoff != nil {
			tried = fresh.Status.Handoff.TriedAgents
		}
		plan := planReservation(pool, fresh, fresh.Spec.Handoff.Skills, tried, now)
		if plan.changed {
			if err := r.Status().Update(ctx, pool); err != nil {
				if apierrors.IsConflict(err) {
					continue
				}
				return ctrl.Result{}, err
			}
		}
		if plan.agent == nil {
			return r.queue(ctx, fresh, pool, r.queuedOthers(ctx, fresh), deadline)
		}
		res, done, err := r.bind(ctx, fresh, plan.agent, pool.Name)
		if !done {
			// The reservation can no longer bind: the next try drops or
			// remakes it.
			continue
		}
		if err != nil {
			// The Call write failed for good: release the reservation.
			return ctrl.Result{}, errors.Join(err, r.release(ctx, c.Namespace, pool.Name, c.Name))
		}
		logger.V(1).Info("Agent assigned", "agent", plan.agent.Name, "adopted", plan.adopted, "tries", try+1)
		return res, nil
	}
	if err := r.release(ctx, c.Namespace, pool.Name, c.Name); err != nil {
		logger.Error(err, "Releasing a reservation that did not bind")
	}
	return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
}

// queuedOthers counts the pool's other Queued Calls (cache).
func (r *HandoffReconciler) queuedOthers(ctx context.Context, c *voicev1alpha1.Call) int {
	calls, err := callsOfPool(ctx, r, c.Namespace, poolOf(c))
	if err != nil {
		return 0
	}
	n := 0
	for i := range calls {
		if o := &calls[i]; o.Name != c.Name && seeking(o) && o.Status.Handoff != nil && o.Status.Handoff.Phase == voicev1alpha1.HandoffQueued {
			n++
		}
	}
	return n
}

// ringing follows an assigned agent until the bridge connects or the ring
// runs out.
func (r *HandoffReconciler) ringing(ctx context.Context, c *voicev1alpha1.Call) (ctrl.Result, error) {
	h := c.Status.Handoff
	if callEnded(c) {
		return r.finish(ctx, c, voicev1alpha1.HandoffFailed, fmt.Sprintf("the call ended while agent %s was ringing", h.Agent), false)
	}
	pool := &voicev1alpha1.AgentPool{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: poolOf(c)}, pool); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	r.releaseStale(ctx, c, pool)
	if c.Spec.Agent != nil {
		return r.ringingV3(ctx, c, pool)
	}
	now := r.Now()
	if h.BridgeSentTime != nil {
		due := h.BridgeSentTime.Add(ringTimeout(pool) + r.RingSlack)
		if now.Before(due) {
			return ctrl.Result{RequeueAfter: due.Sub(now)}, nil
		}
		// Piopiy said nothing of the agent's leg: take it as no answer.
		upd := c.DeepCopy()
		uh := upd.Status.Handoff
		uh.TriedAgents = append(uh.TriedAgents, uh.Agent)
		if n := len(uh.TriedAgents); n > callstate.MaxTriedAgents {
			uh.TriedAgents = append([]string(nil), uh.TriedAgents[n-callstate.MaxTriedAgents:]...)
		}
		uh.Phase = voicev1alpha1.HandoffRequested
		uh.Agent, uh.Number = "", ""
		uh.AgentAssignedTime, uh.BridgeSentTime, uh.BridgedTime = nil, nil, nil
		if err := r.Status().Update(ctx, upd); err != nil {
			return conflictRequeue(err)
		}
		r.event(upd, "Normal", "AgentNoAnswer", "agent %s did not answer within %s; trying the next agent", h.Agent, ringTimeout(pool))
		return ctrl.Result{Requeue: true}, r.release(ctx, c.Namespace, pool.Name, c.Name)
	}
	if s := c.Status.Stream; s != nil && (s.State == voicev1alpha1.StreamPhaseStopped || s.State == voicev1alpha1.StreamPhaseDisconnected) {
		return r.finish(ctx, c, voicev1alpha1.HandoffFailed,
			fmt.Sprintf("no live stream to send the bridge to agent %s on (stream %s)", h.Agent, s.State), false)
	}
	assigned := now
	if h.AgentAssignedTime != nil {
		assigned = h.AgentAssignedTime.Time
	}
	due := assigned.Add(r.BridgeWait)
	if now.Before(due) {
		return ctrl.Result{RequeueAfter: due.Sub(now)}, nil
	}
	return r.finish(ctx, c, voicev1alpha1.HandoffFailed,
		fmt.Sprintf("the stream gateway did not send the bridge to agent %s within %s (is the Call streaming through a callfleet gateway?)", h.Agent, r.BridgeWait), false)
}

// bridged follows a connected agent until the bridge or the call ends.
func (r *HandoffReconciler) bridged(ctx context.Context, c *voicev1alpha1.Call) (ctrl.Result, error) {
	if !callEnded(c) {
		pool := &voicev1alpha1.AgentPool{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: poolOf(c)}, pool); err == nil {
			r.releaseStale(ctx, c, pool)
		}
		return ctrl.Result{}, nil
	}
	upd := c.DeepCopy()
	h := upd.Status.Handoff
	h.Phase = voicev1alpha1.HandoffEnded
	if h.EndedTime == nil {
		end := metav1.NewTime(r.Now())
		if a := callstate.Current(&upd.Status); a != nil && a.EndTime != nil {
			end = *a.EndTime
		}
		h.EndedTime = &end
	}
	if err := r.Status().Update(ctx, upd); err != nil {
		return conflictRequeue(err)
	}
	r.observe(upd)
	return ctrl.Result{}, r.release(ctx, c.Namespace, poolOf(c), c.Name)
}

// finished releases what a finished handoff still holds and, for onNoAgent
// Hangup, makes sure the call ends.
func (r *HandoffReconciler) finished(ctx context.Context, c *voicev1alpha1.Call) (ctrl.Result, error) {
	pool := &voicev1alpha1.AgentPool{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: poolOf(c)}, pool); err == nil && hasReservations(pool, c.Name) {
		if err := r.release(ctx, c.Namespace, pool.Name, c.Name); err != nil {
			return ctrl.Result{}, err
		}
	}
	h := c.Status.Handoff
	if strings.HasSuffix(h.Reason, hangingUp) && !callEnded(c) {
		return r.hangup(ctx, c)
	}
	return ctrl.Result{}, nil
}

// finish ends a handoff without a (further) agent. noAgent outcomes follow
// spec.handoff.onNoAgent.
func (r *HandoffReconciler) finish(ctx context.Context, c *voicev1alpha1.Call, phase voicev1alpha1.HandoffPhase, reason string, noAgent bool) (ctrl.Result, error) {
	now := r.Now()
	upd := c.DeepCopy()
	h, fresh := r.started(upd, now)
	hangup := noAgent && c.Spec.Handoff != nil && c.Spec.Handoff.OnNoAgent == OnNoAgentHangup && !callEnded(c)
	if hangup {
		reason += hangingUp
	} else if noAgent {
		reason += "; the bot keeps the call"
	}
	h.Phase, h.Reason = phase, reason
	if h.Phase == voicev1alpha1.HandoffTimedOut {
		h.Agent, h.Number, h.AgentAssignedTime, h.BridgeSentTime = "", "", nil, nil
	}
	if err := r.Status().Update(ctx, upd); err != nil {
		return conflictRequeue(err)
	}
	r.announceStart(upd, fresh)
	outcome := OutcomeFailed
	if phase == voicev1alpha1.HandoffTimedOut {
		outcome = OutcomeTimedOut
	}
	r.count(upd, outcome)
	r.event(upd, "Warning", "Handoff"+string(phase), "%s", reason)
	var errs []error
	if p := poolOf(c); p != "" {
		errs = append(errs, r.release(ctx, c.Namespace, p, c.Name))
	}
	if hangup {
		res, err := r.hangup(ctx, upd)
		return res, errors.Join(append(errs, err)...)
	}
	return ctrl.Result{}, errors.Join(errs...)
}

// hangup asks Piopiy to end the call's leg a, at most every hangupRetry;
// the leg's hangup webhook then ends the Call.
func (r *HandoffReconciler) hangup(ctx context.Context, c *voicev1alpha1.Call) (ctrl.Result, error) {
	a := callstate.Current(&c.Status)
	if c.Spec.Agent != nil {
		return r.hangupV3(ctx, c, a)
	}
	if a == nil || a.CMIUUID == "" {
		return ctrl.Result{}, nil
	}
	key := client.ObjectKeyFromObject(c)
	r.mu.Lock()
	s := r.seenOf(key, c)
	wait := s.hangupAt.Add(hangupRetry).Sub(r.Now())
	if wait <= 0 {
		s.hangupAt = r.Now()
	}
	r.mu.Unlock()
	if wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	if r.Accounts == nil || r.Piopiy == nil {
		r.event(c, "Warning", "HangupUnavailable", "onNoAgent is Hangup but this manager has no Piopiy client; the bot keeps the call")
		return ctrl.Result{}, nil
	}
	acct, err := r.Accounts.Resolve(ctx, c)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("hanging up after the handoff: %w", err)
	}
	api, err := r.Piopiy.For(acct.Credentials)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("hanging up after the handoff: %w", err)
	}
	if r.Limiter != nil {
		if err := r.Limiter.Wait(ctx); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := api.CallAction(ctx, a.CMIUUID, piopiy.ActionHangup); err != nil && !errors.Is(err, piopiy.ErrNotFound) {
		return ctrl.Result{}, fmt.Errorf("hanging up after the handoff: %w", err)
	}
	r.event(c, "Normal", "HangupRequested", "attempt %d: hung up because no agent took the call (onNoAgent: Hangup)", a.Number)
	return ctrl.Result{RequeueAfter: hangupRetry}, nil
}

// releaseStale releases the Call's reservations other than its bound agent,
// when the cached pool shows any.
func (r *HandoffReconciler) releaseStale(ctx context.Context, c *voicev1alpha1.Call, pool *voicev1alpha1.AgentPool) {
	if pool.Name == "" {
		return
	}
	for _, a := range pool.Status.Agents {
		for _, res := range a.Reservations {
			if res.Call == c.Name && !bound(c, a.Name) {
				if err := r.release(ctx, c.Namespace, pool.Name, c.Name); err != nil {
					log.FromContext(ctx).Error(err, "Releasing stale reservations")
				}
				return
			}
		}
	}
}

// release drops the Call's reservations that can no longer hold: the pool
// is read first and the Call past the cache second, so a reservation made
// by another writer that may still bind is kept.
func (r *HandoffReconciler) release(ctx context.Context, ns, poolName, callName string) error {
	if poolName == "" {
		return nil
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
			return client.IgnoreNotFound(err)
		}
		if !hasReservations(pool, callName) {
			return nil
		}
		fresh := &voicev1alpha1.Call{}
		switch err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: callName}, fresh); {
		case apierrors.IsNotFound(err):
			fresh = nil
		case err != nil:
			return err
		}
		if len(removeDead(pool, callName, fresh)) == 0 {
			return nil
		}
		normalize(pool)
		err = r.Status().Update(ctx, pool)
		if err == nil || !apierrors.IsConflict(err) {
			return err
		}
	}
	return fmt.Errorf("releasing Call %s's agent in AgentPool %s: the pool kept changing", callName, poolName)
}

// observe counts and announces what others wrote (Bridged and Ended come
// from Piopiy's webhooks), once per handoff.
func (r *HandoffReconciler) observe(c *voicev1alpha1.Call) {
	h := c.Status.Handoff
	if h == nil {
		return
	}
	r.mu.Lock()
	s := r.seenOf(client.ObjectKeyFromObject(c), c)
	// After a restart, only what happened lately is counted again.
	recent := func(t *metav1.Time) bool { return t != nil && r.Now().Sub(t.Time) < 10*time.Minute }
	var requestedNow, bridgedNow, endedNow bool
	if h.Source == SourceBot && !s.requested && recent(h.RequestedTime) {
		s.requested, requestedNow = true, true
	}
	if h.BridgedTime != nil && !s.bridged && recent(h.BridgedTime) {
		s.bridged, bridgedNow = true, true
		if !s.counted {
			s.counted = true
			Handoffs.WithLabelValues(OutcomeBridged).Inc()
			if h.RequestedTime != nil {
				TimeToAnswer.Observe(h.BridgedTime.Sub(h.RequestedTime.Time).Seconds())
			}
		}
	}
	if h.Phase == voicev1alpha1.HandoffEnded && !s.ended && recent(h.EndedTime) {
		s.ended, endedNow = true, true
	}
	r.mu.Unlock()
	if requestedNow {
		why := ""
		if h.Reason != "" {
			why = ": " + h.Reason
		}
		r.event(c, "Normal", "HandoffRequested", "the bot asked for an agent of %s%s", poolOf(c), why)
	}
	if bridgedNow {
		wait := ""
		if h.RequestedTime != nil {
			wait = fmt.Sprintf(" %s after the request", h.BridgedTime.Sub(h.RequestedTime.Time).Round(time.Second))
		}
		r.event(c, "Normal", "HandoffBridged", "agent %s answered%s", h.Agent, wait)
	}
	if endedNow {
		r.event(c, "Normal", "HandoffEnded", "the call with agent %s ended", h.Agent)
	}
}

// count counts a handoff's outcome once.
func (r *HandoffReconciler) count(c *voicev1alpha1.Call, outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.seenOf(client.ObjectKeyFromObject(c), c)
	if !s.counted {
		s.counted = true
		Handoffs.WithLabelValues(outcome).Inc()
	}
}

// seenOf returns the memory of the Call's current handoff; r.mu is held.
func (r *HandoffReconciler) seenOf(key types.NamespacedName, c *voicev1alpha1.Call) *seenHandoff {
	id := ""
	if h := c.Status.Handoff; h != nil && h.RequestedTime != nil {
		id = h.RequestedTime.UTC().Format(time.RFC3339) + "/" + h.Source
	}
	if r.seen == nil {
		r.seen = map[types.NamespacedName]*seenHandoff{}
	}
	s := r.seen[key]
	if s == nil {
		s = &seenHandoff{id: id}
		r.seen[key] = s
	}
	if s.id != id {
		*s = seenHandoff{id: id, lastNumber: s.lastNumber, lastAt: s.lastAt, hangupAt: s.hangupAt}
	}
	return s
}

func (r *HandoffReconciler) forget(key types.NamespacedName) {
	r.mu.Lock()
	delete(r.seen, key)
	r.mu.Unlock()
}

// assigned remembers the last assignment of a Call.
func (r *HandoffReconciler) assigned(key types.NamespacedName, number string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[types.NamespacedName]*seenHandoff{}
	}
	s := r.seen[key]
	if s == nil {
		s = &seenHandoff{}
		r.seen[key] = s
	}
	s.lastNumber, s.lastAt = number, at
}

// sameSecond is how long to wait so that a new assignment of the Call does
// not fall in the same second as its last one: the gateway tells bridges
// apart by number and agentAssignedTime, which has one-second resolution.
func (r *HandoffReconciler) sameSecond(c *voicev1alpha1.Call, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.seen[client.ObjectKeyFromObject(c)]
	if s == nil || s.lastAt.IsZero() || !now.Truncate(time.Second).Equal(s.lastAt.Truncate(time.Second)) {
		return 0
	}
	return now.Truncate(time.Second).Add(time.Second).Sub(now) + 10*time.Millisecond
}

func (r *HandoffReconciler) event(c *voicev1alpha1.Call, kind, reason, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(c, nil, kind, reason, "Handoff", note, args...)
	}
}

func conflictRequeue(err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{Requeue: true}, nil
	}
	return ctrl.Result{}, client.IgnoreNotFound(err)
}

// SetupWithManager registers the handoff controller: Calls with a handoff,
// woken by their AgentPool's changes.
func (r *HandoffReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if r.RingSlack <= 0 {
		r.RingSlack = DefaultRingSlack
	}
	if r.BridgeWait <= 0 {
		r.BridgeWait = DefaultBridgeWait
	}
	if r.Workers <= 0 {
		r.Workers = DefaultWorkers
	}
	if err := registerIndex(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&voicev1alpha1.Call{}, builder.WithPredicates(callPredicate())).
		Watches(&voicev1alpha1.AgentPool{}, handler.EnqueueRequestsFromMapFunc(r.callsOf),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
				// Counts and conditions do not move a handoff; agents and
				// their reservations do.
				o, ok1 := e.ObjectOld.(*voicev1alpha1.AgentPool)
				n, ok2 := e.ObjectNew.(*voicev1alpha1.AgentPool)
				return !ok1 || !ok2 || o.Generation != n.Generation || !equality.Semantic.DeepEqual(o.Status.Agents, n.Status.Agents)
			}})).
		Named("handoff").
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
}

// callsOf maps an AgentPool to the Calls its change may move: those
// holding an agent, and those the queue serves next. The rest of the queue
// waits for its turn (or its own timer) rather than waking on every change.
func (r *HandoffReconciler) callsOf(ctx context.Context, o client.Object) []reconcile.Request {
	pool := o.(*voicev1alpha1.AgentPool).DeepCopy()
	var out []reconcile.Request
	seen := map[string]bool{}
	for _, name := range reservedCalls(pool) {
		seen[name] = true
		out = append(out, request(pool.Namespace, name))
	}
	calls, err := callsOfPool(ctx, r, pool.Namespace, pool.Name)
	if err != nil {
		log.FromContext(ctx).Error(err, "Listing the Calls of an AgentPool")
		return out
	}
	now := r.Now()
	var ws []waiter
	for i := range calls {
		if c := &calls[i]; !seen[c.Name] && seeking(c) {
			ws = append(ws, waiterOf(c, now))
		}
	}
	sortWaiters(ws)
	normalize(pool)
	p := newPlanner(pool)
	for _, w := range ws {
		i := p.pick(w.skills, w.tried)
		if i >= 0 {
			p.take(i, now)
			out = append(out, request(pool.Namespace, w.name))
		}
	}
	return out
}
