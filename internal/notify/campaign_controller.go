package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// CampaignReconciler derives campaign.* events from a Campaign's status and
// delivers them, and owns the Campaign's NotifyReady condition.
//
// Each event is written to the Campaign's ledger annotation as soon as it
// is seen and before it is sent, so a transition that is undone before the
// sink is back (suspended, then resumed) is still told, and a restarted
// manager still owes what the ledger says.
type CampaignReconciler struct {
	Options
	retries pending
}

// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=campaigns,verbs=get;list;watch;patch;update
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=campaigns/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves one Campaign's events towards delivery.
func (r *CampaignReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c := &voicev1alpha1.Campaign{}
	if err := r.Client.Get(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	sink, sinkErr := r.Sinks.ForCampaign(ctx, c)
	if err := r.setReady(ctx, c, sink, sinkErr); err != nil {
		return ctrl.Result{}, err
	}
	if sink == nil && sinkErr == nil {
		return ctrl.Result{}, nil
	}

	led := readLedger(c)
	if led.derive(c) {
		if err := r.writeLedger(ctx, c, led); err != nil {
			return ctrl.Result{}, err
		}
	}
	if sinkErr != nil {
		return ctrl.Result{RequeueAfter: r.RetryMax}, nil // NotifyReady says why; the watch brings a fix sooner
	}

	var wait time.Duration
	changed := false
	for i := range led {
		e := &led[i]
		if e.State != statePending {
			continue
		}
		if r.Now().Sub(e.Time.Time) > r.GiveUpAfter {
			e.State, changed = stateExpired, true
			eventsFailed.WithLabelValues(e.Type, "expired").Inc()
			r.retries.done(e.ID)
			continue
		}
		ev, err := campaignEvent(c, *e)
		if err == nil {
			err = r.Sender.Send(ctx, *sink, ev)
		}
		switch {
		case err == nil:
			e.State, changed = stateDelivered, true
			eventsDelivered.WithLabelValues(e.Type).Inc()
			r.retries.done(e.ID)
		case IsRejected(err):
			e.State, changed = stateRejected, true
			eventsFailed.WithLabelValues(e.Type, "rejected").Inc()
			r.retries.done(e.ID)
			r.event(c, "Warning", "EventRejected", "%s %s: %v; not retried", e.Type, e.ID, err)
		default:
			sendErrors.WithLabelValues(e.Type).Inc()
			n := r.retries.failed(e.ID)
			logf.FromContext(ctx).Info("Event not delivered; will retry", "id", e.ID, "try", n, "error", err.Error())
			if d := r.backoff(n); wait == 0 || d < wait {
				wait = d
			}
		}
	}
	if changed {
		if err := r.writeLedger(ctx, c, led); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{RequeueAfter: wait}, nil
}

// setReady writes NotifyReady when it changed (an Event too when it turns
// bad). Only this controller writes that condition.
func (r *CampaignReconciler) setReady(ctx context.Context, c *voicev1alpha1.Campaign, sink *Sink, sinkErr error) error {
	cond := metav1.Condition{Type: voicev1alpha1.ConditionNotifyReady, ObservedGeneration: c.Generation}
	var se *SinkError
	switch {
	case sinkErr != nil && errors.As(sinkErr, &se):
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, se.Reason, se.Msg
	case sinkErr != nil:
		return sinkErr // a read failed: retried with backoff
	case sink == nil:
		if meta.FindStatusCondition(c.Status.Conditions, cond.Type) == nil {
			return nil // never configured: no condition to show
		}
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, voicev1alpha1.ReasonNoSink, "no spec.notify and no manager default sink"
	default:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, voicev1alpha1.ReasonSinkReady, "events go to "+sink.URL
	}
	old := meta.FindStatusCondition(c.Status.Conditions, cond.Type)
	if old != nil && old.Status == cond.Status && old.Reason == cond.Reason && old.Message == cond.Message && old.ObservedGeneration == cond.ObservedGeneration {
		return nil
	}
	orig := c.DeepCopy()
	meta.SetStatusCondition(&c.Status.Conditions, cond)
	// The optimistic lock keeps the other writers' conditions: a merge patch
	// carries the whole list.
	if err := r.Client.Status().Patch(ctx, c, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("writing NotifyReady: %w", err)
	}
	if cond.Status == metav1.ConditionFalse && cond.Reason != voicev1alpha1.ReasonNoSink {
		r.event(c, "Warning", cond.Reason, "%s", cond.Message)
	}
	return nil
}

func (r *CampaignReconciler) writeLedger(ctx context.Context, c *voicev1alpha1.Campaign, led ledger) error {
	b, err := json.Marshal(led.trim())
	if err != nil {
		return err
	}
	orig := c.DeepCopy()
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[AnnotationLedger] = string(b)
	err = r.Client.Patch(ctx, c, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func (r *CampaignReconciler) event(obj client.Object, kind, reason, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, kind, reason, "Notify", note, args...)
	}
}

// SetupWithManager registers the controller.
func (r *CampaignReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.defaults()
	if r.Sinks == nil {
		return errors.New("notify: CampaignReconciler needs Sinks")
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("notify-campaign").
		For(&voicev1alpha1.Campaign{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
}
