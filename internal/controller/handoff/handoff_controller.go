package handoff

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	"github.com/callfleet/callfleet/internal/controller/agentpool"
	"github.com/callfleet/callfleet/internal/controller/call"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// Defaults of the Reconciler.
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

// Reconciler hands live Calls to agents of their AgentPool. It writes
// status.handoff of Calls and the bookings of AgentPools.
type Reconciler struct {
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
	// transfers, and hangs them up for onNoAgent (nil: such handoffs fail,
	// saying why).
	V3 V3Clients
	// Limiter paces Piopiy requests (shared with the Call controller).
	Limiter *rate.Limiter
	// Bridger carries out the bridge to the assigned agent (GatewayBridge
	// when nil).
	Bridger Bridger
	// Workers is the number of Calls reconciled in parallel.
	Workers int
	// RingSlack is added to the pool's ringTimeoutSeconds after the bridge
	// was sent before an agent whose leg sent no word counts as not
	// answering (Piopiy's own bridge timeout normally ends the ring first).
	RingSlack time.Duration
	// BridgeWait is how long an assigned agent waits for the bridge to be
	// sent before the handoff fails.
	BridgeWait time.Duration
	Now        func() time.Time

	mu      sync.Mutex
	hangups map[types.NamespacedName]time.Time // last onNoAgent hangup asked of Piopiy
	rounds  map[string]*sync.Mutex             // per pool: one batch at a time in this process
}

// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=calls,verbs=get;list;watch
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=calls/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=agentpools,verbs=get;list;watch
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=agentpools/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves one Call's handoff forward.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	c := &voicev1alpha1.Call{}
	if err := r.Get(ctx, req.NamespacedName, c); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if h := c.Status.Handoff; (h == nil || h.Phase == "") && (!specRequested(c) || !agentpool.Answered(c)) {
		return ctrl.Result{}, nil // the answer (a status change) wakes us
	}
	s := newScope(c, r.Now())
	defer func() {
		res, err = r.finishPass(ctx, s, res, err)
	}()
	setMonitoring(s.call)
	switch phaseOf(s.call) {
	case "", voicev1alpha1.HandoffRequested, voicev1alpha1.HandoffQueued:
		return r.seek(ctx, s)
	case voicev1alpha1.HandoffRinging:
		return r.ringing(ctx, s)
	case voicev1alpha1.HandoffBridged:
		return r.bridged(ctx, s)
	default:
		return r.finished(ctx, s)
	}
}

// finishPass writes the Call's status once, if the pass changed it, then
// acts on what the write made true: bookings released, onNoAgent hangup,
// Events and metrics. A conflict means the Call changed meanwhile; its
// next pass books again: a reservation made against the version read can
// no longer bind.
func (r *Reconciler) finishPass(ctx context.Context, s *scope, res ctrl.Result, err error) (ctrl.Result, error) {
	if !equality.Semantic.DeepEqual(s.before, &s.call.Status) {
		if werr := r.Status().Update(ctx, s.call); werr != nil {
			if s.assigned {
				err = errors.Join(err, r.release(ctx, s.call))
			}
			if s.transfer != "" {
				err = errors.Join(err, r.recordTransfer(ctx, s))
			}
			if apierrors.IsConflict(werr) {
				// Not every change of a Call passes the predicate (the
				// gateway's stream reports do not): look again soon.
				return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, err
			}
			return ctrl.Result{}, errors.Join(err, client.IgnoreNotFound(werr))
		}
		r.written(s)
	}
	if s.release {
		err = errors.Join(err, r.releaseAnnounced(ctx, s))
	}
	if s.hangup {
		hres, herr := r.hangup(ctx, s.call)
		err = errors.Join(err, herr)
		res = earliest(res, hres)
	}
	return res, err
}

// earliest merges two results into the sooner requeue.
func earliest(a, b ctrl.Result) ctrl.Result {
	if a.RequeueAfter == 0 || (b.RequeueAfter > 0 && b.RequeueAfter < a.RequeueAfter) {
		a.RequeueAfter = b.RequeueAfter
	}
	return a
}

func specRequested(c *voicev1alpha1.Call) bool {
	return c.Spec.Handoff != nil && c.Spec.Handoff.Requested && c.DeletionTimestamp == nil
}

func phaseOf(c *voicev1alpha1.Call) voicev1alpha1.HandoffPhase {
	if c.Status.Handoff == nil {
		return ""
	}
	return c.Status.Handoff.Phase
}

// seeking reports whether the Call wants an agent now.
func seeking(c *voicev1alpha1.Call) bool {
	if !agentpool.Answered(c) || c.Spec.Handoff == nil {
		return false
	}
	switch phaseOf(c) {
	case "":
		return specRequested(c)
	case voicev1alpha1.HandoffRequested, voicev1alpha1.HandoffQueued:
		return true
	}
	return false
}

func (r *Reconciler) forget(key types.NamespacedName) {
	r.mu.Lock()
	delete(r.hangups, key)
	r.mu.Unlock()
}

// SetupWithManager registers the handoff controller: Calls with a handoff,
// woken by their AgentPool's changes.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
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
	if r.Bridger == nil {
		r.Bridger = GatewayBridge{Wait: r.BridgeWait}
	}
	if r.Workers <= 0 {
		r.Workers = DefaultWorkers
	}
	if err := agentpool.RegisterIndex(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&voicev1alpha1.Call{}, builder.WithPredicates(agentpool.CallPredicate())).
		Watches(&voicev1alpha1.AgentPool{}, handler.EnqueueRequestsFromMapFunc(r.callsOf),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
				// Counts and conditions do not move a handoff; agents, their
				// reservations and the queue do.
				o, ok1 := e.ObjectOld.(*voicev1alpha1.AgentPool)
				n, ok2 := e.ObjectNew.(*voicev1alpha1.AgentPool)
				return !ok1 || !ok2 || o.Generation != n.Generation ||
					!equality.Semantic.DeepEqual(o.Status.Agents, n.Status.Agents) ||
					!equality.Semantic.DeepEqual(o.Status.Queue, n.Status.Queue)
			}})).
		Named("handoff").
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
}

// callsOf maps an AgentPool to the Calls its change may move: those it
// books, and those the queue serves next. The rest of the queue waits for
// its turn (or its own timer) rather than waking on every change.
func (r *Reconciler) callsOf(ctx context.Context, o client.Object) []reconcile.Request {
	pool := o.(*voicev1alpha1.AgentPool)
	var out []reconcile.Request
	seen := map[string]bool{}
	for _, name := range agentpool.ReservedCalls(pool) {
		if !seen[name] {
			seen[name] = true
			out = append(out, request(pool.Namespace, name))
		}
	}
	calls, err := agentpool.CallsOfPool(ctx, r, pool.Namespace, pool.Name)
	if err != nil {
		log.FromContext(ctx).Error(err, "Listing the Calls of an AgentPool")
		return out
	}
	now := r.Now()
	var ws []agentpool.Waiter
	for i := range calls {
		if c := &calls[i]; seeking(c) {
			ws = append(ws, agentpool.WaiterOf(c, now))
		}
	}
	for name := range agentpool.NewLedger(pool).PlanRound(ws, now).Served {
		if !seen[name] {
			seen[name] = true
			out = append(out, request(pool.Namespace, name))
		}
	}
	return out
}

func request(ns, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}
