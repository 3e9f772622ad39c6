package agentpool

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// DefaultResync is how often a pool holding reservations is checked with no
// other event, so a reservation nobody released is reclaimed.
const DefaultResync = time.Minute

// PoolReconciler keeps AgentPool status true and reclaims reservations
// whose Call is gone, ended or moved on.
type PoolReconciler struct {
	client.Client
	// APIReader reads Calls past the cache before a reservation is released.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Resync is how often a pool with reservations is re-checked
	// (DefaultResync).
	Resync time.Duration
}

// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=agentpools,verbs=get;list;watch
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=agentpools/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=calls,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile aligns one AgentPool's status with its spec and its Calls.
func (r *PoolReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pool := &voicev1alpha1.AgentPool{}
	if err := r.Get(ctx, req.NamespacedName, pool); err != nil {
		if apierrors.IsNotFound(err) {
			Utilisation.DeleteLabelValues(req.Namespace, req.Name)
			Queued.DeleteLabelValues(req.Namespace, req.Name)
			Abandoned.DeleteLabelValues(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !pool.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	before := pool.Status.DeepCopy()
	l := NewLedger(pool)
	released, again, err := r.reclaim(ctx, l)
	if err != nil {
		return ctrl.Result{}, err
	}
	pool = l.Pool()
	r.summarize(pool)

	if !equality.Semantic.DeepEqual(before, &pool.Status) {
		// Update, not patch: bookings change only on the version read.
		if err := r.Status().Update(ctx, pool); err != nil {
			// A conflict means a newer pool, whose event reconciles again.
			return ctrl.Result{}, client.IgnoreNotFound(ignoreConflict(err))
		}
		for _, rel := range released {
			Released.Add(float64(len(rel.Agents)))
			if rel.Abandoned {
				Abandoned.WithLabelValues(pool.Namespace, pool.Name).Inc()
			}
			r.event(pool, "Normal", "ReservationReleased", "%s", rel.msg)
		}
	}
	st := &pool.Status
	ratio := 0.0
	if st.Total > 0 {
		ratio = float64(st.Busy) / float64(st.Total)
	}
	Utilisation.WithLabelValues(pool.Namespace, pool.Name).Set(ratio)
	Queued.WithLabelValues(pool.Namespace, pool.Name).Set(float64(st.Queued))

	switch {
	case again:
		return ctrl.Result{RequeueAfter: ReclaimGrace}, nil
	case len(BookedCalls(pool)) > 0:
		return ctrl.Result{RequeueAfter: r.Resync}, nil
	}
	return ctrl.Result{}, nil
}

// reclaimed is what reclaim released for one Call.
type reclaimed struct {
	Freed
	msg string
}

// reclaim drops bookings whose Call is gone, has ended or has moved on
// without binding them. The cache picks candidates; each is confirmed by a
// read past the cache made after the pool version being updated, so a
// reservation its maker is still binding is never taken away.
func (r *PoolReconciler) reclaim(ctx context.Context, l *Ledger) (out []reclaimed, retry bool, err error) {
	pool := l.Pool()
	for _, name := range BookedCalls(pool) {
		cached := &voicev1alpha1.Call{}
		err := r.Get(ctx, types.NamespacedName{Namespace: pool.Namespace, Name: name}, cached)
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, false, err
		}
		if err == nil && !deadIn(pool, name, cached) && (!l.queued(name) || waiting(cached)) {
			continue
		}
		if err == nil && !CallEnded(cached) && r.young(pool, name) {
			// Its maker is likely retrying right now and will drop or
			// remake it; reclaiming it under its feet only adds conflicts.
			retry = true
			continue
		}
		fresh := &voicev1alpha1.Call{}
		switch err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: pool.Namespace, Name: name}, fresh); {
		case apierrors.IsNotFound(err):
			fresh = nil
		case err != nil:
			return nil, false, err
		}
		why := "the Call is gone"
		if fresh != nil {
			why = "the Call moved on without it"
			if CallEnded(fresh) {
				why = "the call has ended"
			}
		}
		rel := l.Release(name, fresh)
		if !rel.Any() {
			continue
		}
		what := "its place in the queue"
		if len(rel.Agents) > 0 {
			what = "agent " + strings.Join(rel.Agents, ", ")
		}
		out = append(out, reclaimed{Freed: rel, msg: fmt.Sprintf("released %s from Call %s: %s", what, name, why)})
	}
	return out, retry, nil
}

// ReclaimGrace is how old a reservation of a live Call must be before the
// safety net reclaims it for having been left behind.
const ReclaimGrace = 5 * time.Second

// young reports whether the Call has a reservation younger than ReclaimGrace.
func (r *PoolReconciler) young(pool *voicev1alpha1.AgentPool, name string) bool {
	for _, a := range pool.Status.Agents {
		for _, res := range a.Reservations {
			if res.Call == name && time.Since(res.Since.Time) < ReclaimGrace {
				return true
			}
		}
	}
	return false
}

// deadIn reports whether, by the cached Call, any of its reservations
// looks dead.
func deadIn(pool *voicev1alpha1.AgentPool, name string, call *voicev1alpha1.Call) bool {
	for _, a := range pool.Status.Agents {
		for _, res := range a.Reservations {
			if res.Call == name && dead(res, a.Name, call) {
				return true
			}
		}
	}
	return false
}

// summarize sets Ready and observedGeneration.
func (r *PoolReconciler) summarize(pool *voicev1alpha1.AgentPool) {
	st := &pool.Status
	paused := 0
	for _, a := range pool.Spec.Agents {
		if a.Paused {
			paused++
		}
	}
	cond := metav1.Condition{
		Type: voicev1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: voicev1alpha1.ReasonAgentsListed, ObservedGeneration: pool.Generation,
		Message: fmt.Sprintf("%d of %d agents available, %d busy, %d calls queued", st.Available, st.Total, st.Busy, st.Queued),
	}
	if paused == len(pool.Spec.Agents) {
		cond.Status, cond.Reason = metav1.ConditionFalse, voicev1alpha1.ReasonAllAgentsPaused
		cond.Message = "every agent is paused: handoffs queue until one is resumed"
	}
	var removed []string
	for _, a := range st.Agents[len(pool.Spec.Agents):] {
		removed = append(removed, a.Name)
	}
	if len(removed) > 0 {
		cond.Message += fmt.Sprintf("; removed agents still on calls: %s", strings.Join(removed, ", "))
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	st.ObservedGeneration = pool.Generation
}

func ignoreConflict(err error) error {
	if apierrors.IsConflict(err) {
		return nil
	}
	return err
}

func (r *PoolReconciler) event(pool *voicev1alpha1.AgentPool, kind, reason, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(pool, nil, kind, reason, "Reconcile", note, args...)
	}
}

// SetupWithManager registers the AgentPool controller and the Call index
// it shares with the handoff controller.
func (r *PoolReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Resync <= 0 {
		r.Resync = DefaultResync
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if err := RegisterIndex(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&voicev1alpha1.AgentPool{}).
		Watches(&voicev1alpha1.Call{},
			handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
				if p := PoolOf(o.(*voicev1alpha1.Call)); p != "" {
					return []reconcile.Request{request(o.GetNamespace(), p)}
				}
				return nil
			}),
			builder.WithPredicates(CallPredicate())).
		Named("agentpool").
		Complete(r)
}
