package campaign

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// setCondition sets a condition at the Campaign's generation.
func setCondition(c *voicev1alpha1.Campaign, typ string, ok bool, reason, msg string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: c.Generation,
	})
}

// done reports whether every contact has been dealt with: the cursor is
// past the last one and no Call is in flight or waiting to be counted.
func (s *scope) done() bool {
	return s.listed && s.contacts != nil && s.c.Status.Cursor >= s.contacts.total && s.inflight+s.created == 0
}

// summarize computes status from the pass: counts, times and every
// condition. It is the one place conditions are set.
func (r *Reconciler) summarize(s *scope, err error) {
	c := s.c
	st := &c.Status
	if s.contacts != nil {
		st.Total = s.contacts.total
		st.InvalidContacts = s.contacts.invalid()
	}
	st.Pending = max(st.Total-st.Cursor, 0)
	if s.listed {
		st.Active = int64(s.inflight + s.created)
	}
	done := s.done()
	switch {
	case done && st.CompletionTime == nil:
		st.CompletionTime = ptr.To(metav1.NewTime(s.now))
	case !done && s.contacts != nil:
		st.CompletionTime = nil
	}

	if c.Spec.Suspend {
		setCondition(c, ConditionSuspended, true, "Suspended", "spec.suspend is true: no new Calls start; Calls in flight go on")
	} else {
		setCondition(c, ConditionSuspended, false, "NotSuspended", "")
	}
	switch w := s.window; {
	case w != nil && w.open:
		st.NextWindowTime = nil
		setCondition(c, ConditionInWindow, true, "InWindow", fmt.Sprintf("contact %d may be called now (%s)", w.index, w.zone))
	case w != nil:
		msg := fmt.Sprintf("contact %d is outside its calling window in %s; the cursor waits for it", w.index, w.zone)
		st.NextWindowTime = nil
		if !w.next.IsZero() {
			st.NextWindowTime = ptr.To(metav1.NewTime(w.next))
			msg += "; it opens at " + w.next.UTC().Format("2006-01-02T15:04:05Z")
		}
		setCondition(c, ConditionInWindow, false, "OutsideWindow", msg)
	case done:
		st.NextWindowTime = nil
	}

	var stalled *errStalled
	_, onlyStalled := stalledOnly(err)
	errors.As(err, &stalled)
	tally := fmt.Sprintf("%d succeeded, %d failed, %d skipped of %d", st.Succeeded, st.Failed, st.Skipped, st.Total)
	switch {
	case stalled != nil:
		setCondition(c, voicev1alpha1.ConditionReady, false, stalled.reason, stalled.Error())
		setCondition(c, voicev1alpha1.ConditionReconciling, false, stalled.reason, "")
		setCondition(c, voicev1alpha1.ConditionStalled, true, stalled.reason, stalled.Error())
	case err != nil:
		setCondition(c, voicev1alpha1.ConditionReady, false, "ReconcileError", err.Error())
		setCondition(c, voicev1alpha1.ConditionReconciling, true, "RetryingAfterError", err.Error())
		setCondition(c, voicev1alpha1.ConditionStalled, false, "RetryingAfterError", "")
	case done:
		setCondition(c, voicev1alpha1.ConditionReady, true, "Completed", "every contact is done: "+tally)
		setCondition(c, voicev1alpha1.ConditionReconciling, false, "Completed", "")
		setCondition(c, voicev1alpha1.ConditionStalled, false, "Completed", "")
	case c.Spec.Suspend:
		setCondition(c, voicev1alpha1.ConditionReady, false, "Suspended", "suspended: "+tally)
		setCondition(c, voicev1alpha1.ConditionReconciling, false, "Suspended", "")
		setCondition(c, voicev1alpha1.ConditionStalled, false, "Suspended", "")
	default:
		reason, msg := "Progressing", tally
		if s.waitReason != "" {
			reason, msg = s.waitReason, s.waitMessage+"; "+tally
		}
		setCondition(c, voicev1alpha1.ConditionReady, false, reason, msg)
		setCondition(c, voicev1alpha1.ConditionReconciling, true, reason, msg)
		setCondition(c, voicev1alpha1.ConditionStalled, false, reason, "")
	}
	if err == nil || onlyStalled {
		st.ObservedGeneration = c.Generation
	}
}

// written emits the Events and metrics of a pass whose status is stored.
func (r *Reconciler) written(s *scope, before *voicev1alpha1.CampaignStatus) {
	c := s.c
	st := &c.Status
	for reason, n := range s.skipped {
		contactsSkipped.WithLabelValues(reason).Add(float64(n))
	}
	callsFinished.WithLabelValues("succeeded").Add(float64(s.succeeded))
	callsFinished.WithLabelValues("failed").Add(float64(s.failed))

	if before.StartTime == nil && st.StartTime != nil {
		r.event(c, corev1.EventTypeNormal, "Started", "first Call started; %d contacts", st.Total)
	}
	was := meta.FindStatusCondition(before.Conditions, ConditionSuspended)
	wasSuspended := was != nil && was.Status == metav1.ConditionTrue
	switch {
	case c.Spec.Suspend && !wasSuspended:
		r.event(c, corev1.EventTypeNormal, "Suspended", "suspended at contact %d: no new Calls; %d in flight go on", st.Cursor, st.Active)
	case !c.Spec.Suspend && wasSuspended:
		r.event(c, corev1.EventTypeNormal, "Resumed", "resumed at contact %d", st.Cursor)
	}
	if changedTo(before, st, ConditionInWindow, metav1.ConditionFalse) {
		cond := meta.FindStatusCondition(st.Conditions, ConditionInWindow)
		r.event(c, corev1.EventTypeNormal, "WaitingForWindow", "%s", cond.Message)
	}
	if changedTo(before, st, voicev1alpha1.ConditionReady, metav1.ConditionTrue) {
		r.event(c, corev1.EventTypeNormal, "Completed", "%d succeeded, %d failed, %d skipped of %d contacts", st.Succeeded, st.Failed, st.Skipped, st.Total)
	}
	if cond := meta.FindStatusCondition(st.Conditions, voicev1alpha1.ConditionStalled); cond != nil && cond.Status == metav1.ConditionTrue {
		old := meta.FindStatusCondition(before.Conditions, voicev1alpha1.ConditionStalled)
		if old == nil || old.Status != cond.Status || old.Reason != cond.Reason {
			r.event(c, corev1.EventTypeWarning, cond.Reason, "%s", cond.Message)
		}
	}
}

// changedTo reports whether condition typ has just moved to status.
func changedTo(before, after *voicev1alpha1.CampaignStatus, typ string, status metav1.ConditionStatus) bool {
	n := meta.FindStatusCondition(after.Conditions, typ)
	if n == nil || n.Status != status {
		return false
	}
	o := meta.FindStatusCondition(before.Conditions, typ)
	return o == nil || o.Status != status
}
