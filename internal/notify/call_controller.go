package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// CallReconciler delivers each finished Call's call.completed event.
//
// What is owed is read from the Call itself: finished, with a sink, and
// without AnnotationDelivered. The Finalizer, added once the Call's first
// dial is on record (so never in the dialing path's writes), keeps a Call
// that is deleted as soon as it finishes until its event is out.
type CallReconciler struct {
	Options
	retries pending
}

// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=calls,verbs=get;list;watch;patch;update
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=calls/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// Reconcile moves one Call's event towards delivery.
func (r *CallReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	call := &voicev1alpha1.Call{}
	if err := r.Client.Get(ctx, req.NamespacedName, call); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := logf.FromContext(ctx)
	campaign, sink, sinkErr := r.sinkOf(ctx, call)
	done := call.Annotations[AnnotationDelivered] != ""
	at, finished := Finished(call)

	switch {
	case done || (sink == nil && sinkErr == nil):
		// Nothing (more) to send.
		return ctrl.Result{}, r.release(ctx, call, "")
	case !finished:
		if call.DeletionTimestamp != nil {
			return ctrl.Result{}, r.release(ctx, call, "") // deleted before it finished: there is no outcome to tell
		}
		if dialed(call) && !controllerutil.ContainsFinalizer(call, Finalizer) {
			orig := call.DeepCopy()
			controllerutil.AddFinalizer(call, Finalizer)
			return ctrl.Result{}, r.Client.Patch(ctx, call, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
		}
		return ctrl.Result{}, nil
	}

	ev, err := CallCompleted(call, campaign)
	if err != nil {
		return ctrl.Result{}, r.giveUp(ctx, call, TypeCallCompleted, "invalid", err)
	}
	if r.Now().Sub(at) > r.GiveUpAfter {
		return ctrl.Result{}, r.giveUp(ctx, call, TypeCallCompleted, "expired", fmt.Errorf("undelivered for longer than %s", r.GiveUpAfter))
	}
	if sinkErr != nil {
		// The Campaign's NotifyReady condition says why; try again later.
		log.V(1).Info("Sink not usable; call.completed waits", "error", sinkErr.Error())
		return ctrl.Result{RequeueAfter: r.backoff(r.retries.failed(ev.ID()))}, nil
	}
	err = r.Sender.Send(ctx, *sink, ev)
	switch {
	case err == nil:
		r.retries.done(ev.ID())
		eventsDelivered.WithLabelValues(TypeCallCompleted).Inc()
		log.V(1).Info("Event delivered", "id", ev.ID(), "type", ev.Type())
		return ctrl.Result{}, r.release(ctx, call, ev.ID())
	case IsRejected(err):
		r.event(call, "Warning", "EventRejected", "call.completed %s: %v; not retried", ev.ID(), err)
		return ctrl.Result{}, r.giveUp(ctx, call, TypeCallCompleted, "rejected", err)
	default:
		sendErrors.WithLabelValues(TypeCallCompleted).Inc()
		n := r.retries.failed(ev.ID())
		log.Info("Event not delivered; will retry", "id", ev.ID(), "try", n, "error", err.Error())
		return ctrl.Result{RequeueAfter: r.backoff(n)}, nil
	}
}

// sinkOf resolves the Call's sink: its Campaign's, else the default. A
// Campaign that is gone leaves the default.
func (r *CallReconciler) sinkOf(ctx context.Context, call *voicev1alpha1.Call) (string, *Sink, error) {
	owner := metav1.GetControllerOf(call)
	var campaign *voicev1alpha1.Campaign
	name := ""
	if owner != nil && owner.Kind == "Campaign" && strings.HasPrefix(owner.APIVersion, voicev1alpha1.GroupVersion.Group+"/") {
		name = owner.Name
		c := &voicev1alpha1.Campaign{}
		err := r.Client.Get(ctx, types.NamespacedName{Namespace: call.Namespace, Name: owner.Name}, c)
		switch {
		case err == nil:
			campaign = c
		case !apierrors.IsNotFound(err):
			return name, nil, err
		}
	}
	sink, err := r.Sinks.ForCampaign(ctx, campaign)
	return name, sink, err
}

// dialed: the Call's first dial result is written, so the dialing path's
// writes are behind it and adding the finalizer cannot delay a dial.
func dialed(call *voicev1alpha1.Call) bool {
	n := len(call.Status.Attempts)
	return n > 0 && call.Status.Attempts[n-1].State != voicev1alpha1.AttemptIntent
}

// release records the outcome (an event id, or "failed: ...") and drops
// the finalizer, in one write.
func (r *CallReconciler) release(ctx context.Context, call *voicev1alpha1.Call, mark string) error {
	has := controllerutil.ContainsFinalizer(call, Finalizer)
	if !has && (mark == "" || call.Annotations[AnnotationDelivered] == mark) {
		return nil
	}
	orig := call.DeepCopy()
	controllerutil.RemoveFinalizer(call, Finalizer)
	if mark != "" {
		if call.Annotations == nil {
			call.Annotations = map[string]string{}
		}
		call.Annotations[AnnotationDelivered] = mark
	}
	err := r.Client.Patch(ctx, call, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func (r *CallReconciler) giveUp(ctx context.Context, call *voicev1alpha1.Call, typ, reason string, cause error) error {
	eventsFailed.WithLabelValues(typ, reason).Inc()
	logf.FromContext(ctx).Info("Giving up on event", "call", klog.KObj(call), "reason", reason, "error", cause.Error())
	r.retries.done(string(call.UID) + ".completed")
	mark := "failed: " + reason
	return r.release(ctx, call, mark)
}

func (r *CallReconciler) event(obj client.Object, kind, reason, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, kind, reason, "Notify", note, args...)
	}
}

// SetupWithManager registers the controller.
func (r *CallReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.defaults()
	if r.Sinks == nil {
		return errors.New("notify: CallReconciler needs Sinks")
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("notify-call").
		For(&voicev1alpha1.Call{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
}
