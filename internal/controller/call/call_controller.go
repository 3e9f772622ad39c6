package call

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"golang.org/x/time/rate"
	ctrl "sigs.k8s.io/controller-runtime"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// Finalizer lets the controller hang up a live call when its Call is deleted.
const Finalizer = voicev1alpha1.HangupFinalizer

// Reconciler reconciles Calls.
type Reconciler struct {
	client.Client
	// APIReader reads past the cache where a stale read could cost a dial.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Accounts  *account.Resolver
	Piopiy    interface {
		For(piopiy.Credentials) (PiopiyAPI, error)
	}
	// Recent is shared with the webhook receiver of this process: the
	// versions of Calls their writes replaced, so neither works from a
	// cache that lags them (nil: the controller's own).
	Recent *callstate.Recent
	// V3 is the Piopiy v3 backend of spec.agent Calls (nil: none).
	V3 *V3Backend
	// Limiter paces every request to Piopiy (--piopiy-qps).
	Limiter *rate.Limiter
	// TokenKey is the root of the ws_url token keys: each token is signed
	// with the key derived for its StreamEndpoint (streamtoken.DeriveKey),
	// which is all that endpoint's gateway holds.
	TokenKey []byte
	// SettleTimeout is how long an attempt whose create was ambiguous waits
	// for Piopiy to show it before it is ended as Failed (never redialled).
	// Piopiy redelivers webhooks up to 30 minutes after a call.
	SettleTimeout time.Duration
	// CDRGrace is how long after a hangup the controller waits for the CDR
	// webhook before it looks the CDR up itself.
	CDRGrace time.Duration
	// DialTimeout bounds one make-call request.
	DialTimeout time.Duration
	// Workers is the number of Calls reconciled in parallel; a dial holds a
	// worker for the length of Piopiy's reply.
	Workers int
	Now     func() time.Time

	// unrecorded holds dial results (by attempt id) this process got from
	// Piopiy but could not write to status yet.
	unrecorded sync.Map
	// probed holds the attempts (by id) whose CDR lookup's 404 was already
	// checked for refused credentials (see lookupRefusal).
	probed sync.Map
	// answeredSeen holds, by attempt id, when a v3 poll first saw the call
	// answered. v3 tells the answer only to a poll that catches the call
	// live, so a pass whose status write is lost to a conflict must not
	// lose it: the next pass may find the call already gone (404).
	answeredSeen sync.Map
}

// nextPass is the wait before a pass that follows at once from this one
// (an attempt just ended: decide the retry or finish). conflictRetry is the
// wait after a status write lost to another writer, whose change the watch
// brings back anyway.
const (
	nextPass      = 10 * time.Millisecond
	conflictRetry = 100 * time.Millisecond
)

// Defaults for the Reconciler's tunables.
const (
	DefaultSettleTimeout = 35 * time.Minute
	DefaultCDRGrace      = 20 * time.Second
	DefaultDialTimeout   = 15 * time.Second
)

// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=calls,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=calls/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=calls/finalizers,verbs=update
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=streamendpoints,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves one Call towards its spec: wait for the endpoint, dial,
// follow the attempt, retry or finish.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	call := &voicev1alpha1.Call{}
	if err := r.Get(ctx, req.NamespacedName, call); err != nil {
		if apierrors.IsNotFound(err) {
			r.Recent.Forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if newer := r.Recent.Fresher(call); newer != nil {
		// The cache has not shown this process's last write yet: a pass from
		// it would take the intent just written, without the create's
		// result, for one a crash left behind, and its write would be
		// refused anyway.
		call = newer
	}
	if !call.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, call)
	}
	// The finalizer goes on before any dial, so a Call deleted mid-call is
	// always hung up. A Campaign creates its Calls with it, and removes it
	// from those that are Completed or Failed: nothing is live to hang up
	// then, and it is not put back.
	if orig := call.DeepCopy(); !terminal(call.Status.Phase) && controllerutil.AddFinalizer(call, Finalizer) {
		// A patch, not an update: an update sends the spec back as the Go
		// types see it and drops what they omit (handoff.requested: false),
		// bumping the generation and showing as drift in GitOps tools. Go
		// on in the same pass: the patch returns the new version, so the
		// dial does not wait for the watch to bring it back.
		if err := r.Patch(ctx, call, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, err
		}
		r.Recent.Wrote(orig.ResourceVersion, call)
	}

	written := &writtenStatus{st: call.Status.DeepCopy()}
	res, err := r.reconcileNormal(withWritten(ctx, written), call)
	r.summarize(call, err)
	// Compared with what is stored: the dial writes status itself on the
	// way, and a rewrite of the same status costs an apiserver request (and
	// a conflict when a webhook wrote in between) for nothing.
	if !equality.Semantic.DeepEqual(written.st, &call.Status) {
		// Update, not patch: the resourceVersion makes a write from a stale
		// view fail instead of erasing what a webhook recorded meanwhile.
		if uerr := r.updateStatus(ctx, call); uerr != nil {
			if apierrors.IsConflict(uerr) {
				// A webhook wrote first; the watch brings the Call back.
				return ctrl.Result{RequeueAfter: conflictRetry}, err
			}
			return ctrl.Result{}, errors.Join(err, uerr)
		}
	}
	// A stalled Call is reported in its conditions and looked at again when
	// something it waits for changes or after its RequeueAfter; returning
	// the error would turn that interval into exponential backoff.
	var stalled *errStalled
	if errors.As(err, &stalled) {
		return res, nil
	}
	return res, err
}

// writtenStatus is, during one pass, the Call's status as last stored: read
// at the start, then each status write of the pass.
type writtenStatus struct{ st *voicev1alpha1.CallStatus }

type writtenKey struct{}

func withWritten(ctx context.Context, w *writtenStatus) context.Context {
	return context.WithValue(ctx, writtenKey{}, w)
}

// updateStatus writes the Call's status and notes it as stored for the pass.
func (r *Reconciler) updateStatus(ctx context.Context, call *voicev1alpha1.Call) error {
	from := call.ResourceVersion
	if err := r.Status().Update(ctx, call); err != nil {
		return err
	}
	r.Recent.Wrote(from, call)
	if w, ok := ctx.Value(writtenKey{}).(*writtenStatus); ok {
		w.st = call.Status.DeepCopy()
	}
	return nil
}

func terminal(p voicev1alpha1.CallPhase) bool {
	return p == voicev1alpha1.CallCompleted || p == voicev1alpha1.CallFailed
}

func (r *Reconciler) reconcileNormal(ctx context.Context, call *voicev1alpha1.Call) (ctrl.Result, error) {
	st := &call.Status
	if st.Phase == voicev1alpha1.CallCompleted || st.Phase == voicev1alpha1.CallFailed {
		return ctrl.Result{}, nil
	}
	if st.Phase == "" {
		st.Phase = voicev1alpha1.CallPending
	}
	if cur := callstate.Current(st); cur != nil && cur.State != voicev1alpha1.AttemptEnded {
		if isV3(call) {
			return r.reconcileInFlightV3(ctx, call, cur)
		}
		return r.reconcileInFlight(ctx, call, cur)
	}
	switch step, wait := r.nextStep(call); step {
	case stepComplete:
		r.forgetSeen(call)
		r.finish(call, voicev1alpha1.CallCompleted)
	case stepFail:
		r.forgetSeen(call)
		r.finish(call, voicev1alpha1.CallFailed)
	case stepWait:
		if st.Phase != voicev1alpha1.CallRetrying {
			r.event(call, "Normal", "Retrying", "attempt %d ended %s; next attempt in %s", len(st.Attempts), callstate.Current(st).Outcome, wait.Round(time.Second))
		}
		st.Phase = voicev1alpha1.CallRetrying
		// Nothing watched changes when the backoff ends.
		return ctrl.Result{RequeueAfter: wait}, nil
	case stepDial:
		if isV3(call) {
			return r.dialV3(ctx, call)
		}
		return r.dial(ctx, call)
	}
	return ctrl.Result{}, nil
}

type step int

const (
	stepDial step = iota
	stepWait
	stepComplete
	stepFail
)

// nextStep decides what follows when no attempt is in flight.
func (r *Reconciler) nextStep(call *voicev1alpha1.Call) (step, time.Duration) {
	cur := callstate.Current(&call.Status)
	if cur == nil {
		if call.Spec.Hangup {
			return stepFail, 0
		}
		return stepDial, 0
	}
	for _, a := range call.Status.Attempts {
		// A voicemail box was reached and dealt with as spec.voicemail says:
		// the Call is done; a Campaign decides whether that is a success.
		if a.Outcome == voicev1alpha1.OutcomeAnswered || a.Outcome == voicev1alpha1.OutcomeVoicemail {
			return stepComplete, 0
		}
	}
	if call.Spec.Hangup || cur.Outcome == voicev1alpha1.OutcomeCanceled {
		return stepFail, 0
	}
	// An attempt nobody could settle may have rung the person: never retried.
	if cur.SettledBy == callstate.SettledByTimeout || !retryable(call, cur.Outcome) {
		return stepFail, 0
	}
	if int32(len(call.Status.Attempts)) >= call.Spec.Retry.MaxAttempts {
		return stepFail, 0
	}
	end := cur.IntentTime.Time
	if cur.EndTime != nil {
		end = cur.EndTime.Time
	}
	next := end.Add(backoff(call.Spec.Retry, len(call.Status.Attempts)))
	call.Status.NextAttemptTime = metaTime(next)
	if wait := next.Sub(r.Now()); wait > 0 {
		return stepWait, wait
	}
	return stepDial, 0
}

func retryable(call *voicev1alpha1.Call, o voicev1alpha1.CallOutcome) bool {
	for _, want := range call.Spec.Retry.Outcomes {
		if want == o {
			return true
		}
	}
	return false
}

// backoff is the wait after attempt n (1-based): backoffSeconds doubling,
// capped at maxBackoffSeconds.
func backoff(p voicev1alpha1.RetryPolicy, n int) time.Duration {
	d := time.Duration(max(p.BackoffSeconds, 1)) * time.Second
	limit := time.Duration(max(p.MaxBackoffSeconds, p.BackoffSeconds)) * time.Second
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

func (r *Reconciler) finish(call *voicev1alpha1.Call, phase voicev1alpha1.CallPhase) {
	st := &call.Status
	st.Phase = phase
	st.NextAttemptTime = nil
	outcome := "Canceled"
	if cur := callstate.Current(st); cur != nil {
		outcome = string(cur.Outcome)
	}
	kind := "Normal"
	if phase == voicev1alpha1.CallFailed {
		kind = "Warning"
	}
	r.event(call, kind, string(phase), "call %s after %d attempt(s); last outcome %s", phase, len(st.Attempts), outcome)
}

// event records an Event about the Call. A Call a Campaign made gets
// Warnings only: at thousands of Calls an Event per routine transition
// is an apiserver write each that nobody reads; the Campaign's status,
// Events and results record tell its story, and each Call's status its own.
func (r *Reconciler) event(call *voicev1alpha1.Call, kind, reason, note string, args ...any) {
	if kind == "Normal" && ownedByCampaign(call) {
		return
	}
	if r.Recorder != nil {
		r.Recorder.Eventf(call, nil, kind, reason, "Reconcile", note, args...)
	}
}

// SetupWithManager registers the controller and its indexes.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.SettleTimeout == 0 {
		r.SettleTimeout = DefaultSettleTimeout
	}
	if r.CDRGrace == 0 {
		r.CDRGrace = DefaultCDRGrace
	}
	if r.DialTimeout == 0 {
		r.DialTimeout = DefaultDialTimeout
	}
	if r.Limiter == nil {
		r.Limiter = rate.NewLimiter(rate.Inf, 0)
	}
	if r.Recent == nil {
		r.Recent = &callstate.Recent{}
	}
	if err := callstate.RegisterIndexes(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&voicev1alpha1.Call{}).
		Watches(&voicev1alpha1.StreamEndpoint{},
			handler.EnqueueRequestsFromMapFunc(r.callsWaitingFor),
			builder.WithPredicates(predicate.ResourceVersionChangedPredicate{})).
		Named("call").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Workers, 1)}).
		Complete(r)
}

// callsWaitingFor maps a StreamEndpoint to the Calls that have not dialed yet.
func (r *Reconciler) callsWaitingFor(ctx context.Context, o client.Object) []reconcile.Request {
	var calls voicev1alpha1.CallList
	if err := r.List(ctx, &calls, client.InNamespace(o.GetNamespace()), client.MatchingFields{callstate.IndexEndpoint: o.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "Listing Calls of endpoint", "streamEndpoint", klog.KObj(o))
		return nil
	}
	var out []reconcile.Request
	for i := range calls.Items {
		c := &calls.Items[i]
		if len(c.Status.Attempts) == 0 || c.Status.Phase == voicev1alpha1.CallRetrying {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: c.Namespace, Name: c.Name}})
		}
	}
	return out
}

func ownedByCampaign(call *voicev1alpha1.Call) bool {
	owner := metav1.GetControllerOf(call)
	return owner != nil && owner.Kind == "Campaign" && strings.HasPrefix(owner.APIVersion, voicev1alpha1.GroupVersion.Group+"/")
}
