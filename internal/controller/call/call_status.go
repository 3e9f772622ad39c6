package call

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/callstate"
)

// setCondition sets a condition at the Call's generation and reports whether
// its status or reason changed (so callers emit one Event per transition).
func (r *Reconciler) setCondition(call *voicev1alpha1.Call, typ string, ok bool, reason, msg string) bool {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	old := meta.FindStatusCondition(call.Status.Conditions, typ)
	changed := old == nil || old.Status != status || old.Reason != reason
	meta.SetStatusCondition(&call.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: call.Generation,
	})
	return changed
}

// summarize computes the kstatus conditions (Ready, Reconciling, Stalled)
// from the phase and the error of this pass. It is the one place they are set.
func (r *Reconciler) summarize(call *voicev1alpha1.Call, err error) {
	st := &call.Status
	var stalled *errStalled
	last := callstate.Current(st)
	switch {
	case st.Phase == voicev1alpha1.CallCompleted:
		r.setCondition(call, voicev1alpha1.ConditionReady, true, "Completed", "the call was answered and has ended")
		r.setCondition(call, voicev1alpha1.ConditionReconciling, false, "Completed", "")
		r.setCondition(call, voicev1alpha1.ConditionStalled, false, "Completed", "")
	case st.Phase == voicev1alpha1.CallFailed:
		reason, msg := "Canceled", "spec.hangup was set before the call was answered"
		if last != nil && last.Outcome != "" && last.Outcome != voicev1alpha1.OutcomeCanceled && !call.Spec.Hangup {
			reason, msg = string(last.Outcome), last.Message
			if msg == "" {
				msg = "the last attempt ended " + string(last.Outcome)
			}
		}
		r.setCondition(call, voicev1alpha1.ConditionReady, false, reason, msg)
		r.setCondition(call, voicev1alpha1.ConditionReconciling, false, reason, "")
		r.setCondition(call, voicev1alpha1.ConditionStalled, true, reason, msg)
	case errors.As(err, &stalled):
		r.setCondition(call, voicev1alpha1.ConditionReady, false, stalled.reason, stalled.Error())
		r.setCondition(call, voicev1alpha1.ConditionReconciling, false, stalled.reason, "")
		r.setCondition(call, voicev1alpha1.ConditionStalled, true, stalled.reason, stalled.Error())
	default:
		// While an attempt is in flight the webhooks move the phase
		// (Ringing, InProgress); the conditions stay put so that each webhook
		// costs one status write, not two. status.phase has the detail.
		reason, msg := string(st.Phase), "waiting to dial"
		if a := callstate.Current(st); a != nil && a.State != voicev1alpha1.AttemptEnded {
			reason, msg = "AttemptInFlight", fmt.Sprintf("attempt %d is in flight; status.phase has its progress", a.Number)
		}
		if c := meta.FindStatusCondition(st.Conditions, ConditionEndpointReady); c != nil && c.Status == metav1.ConditionFalse {
			reason, msg = c.Reason, c.Message
		} else if st.Phase == voicev1alpha1.CallRetrying && st.NextAttemptTime != nil {
			msg = "next attempt at " + st.NextAttemptTime.UTC().Format("15:04:05Z")
		}
		r.setCondition(call, voicev1alpha1.ConditionReady, false, reason, msg)
		r.setCondition(call, voicev1alpha1.ConditionReconciling, true, reason, msg)
		r.setCondition(call, voicev1alpha1.ConditionStalled, false, reason, "")
	}
	if err == nil || stalled != nil {
		st.ObservedGeneration = call.Generation
	}
}
