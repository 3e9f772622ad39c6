package campaign

import (
	"errors"
	"fmt"
	"slices"
	"time"

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

// done reports whether the Campaign is over: nothing in flight, nobody
// waiting for a retry, every finished contact recorded, and either no
// contact left to call or no attempt allowed again (stopped, past the
// deadline).
func (s *scope) done() bool {
	return s.listed && s.contacts != nil && s.rec != nil && s.inflight()+s.created == 0 && s.unrecorded == 0 &&
		(s.ended || len(s.waiters) == 0 && len(s.pending) == 0)
}

// maxDispositions bounds status.dispositions; the rest count as "other".
const maxDispositions = 50

// summarize computes status from the pass: counts, times and every
// condition. It (through the steps it calls) is the one place conditions
// are set.
func (r *Reconciler) summarize(s *scope, err error) {
	c := s.c
	st := &c.Status
	if s.contacts != nil {
		st.Total = s.contacts.total
		st.InvalidContacts = s.contacts.invalid
		st.Sources = s.contacts.counts
		st.Duplicates = s.contacts.duplicates()
		st.Skipped = s.contacts.dropped() + s.dncNow
	}
	if s.rec != nil {
		summarizeResults(s)
	}
	if s.listed && s.contacts != nil {
		st.Active = int64(s.inflight() + s.created)
		st.Pending = max(int64(len(s.pending)-s.createdFresh), 0)
		st.Waiting = int64(len(s.waiters) - (s.created - s.createdFresh))
		st.WaitingForWindow = s.outsideWindow
		st.NextAttemptTime = timeOrNil(s.nextAttempt)
		st.NextWindowTime = timeOrNil(s.nextWindow)
	}
	done := s.done()
	switch {
	case done && st.CompletionTime == nil:
		st.CompletionTime = ptr.To(metav1.NewTime(s.now))
	case !done && s.contacts != nil && s.rec != nil:
		st.CompletionTime = nil
	}
	setSpecConditions(s)
	setReadiness(s, err, done)
	// The spec was read and acted on even when a request failed (the
	// failure is in Reconciling): suspend and stop are observed at once.
	if _, onlyStalled := stalledOnly(err); s.contacts != nil || onlyStalled {
		st.ObservedGeneration = c.Generation
	}
}

// summarizeResults counts the recorded results: succeeded and failed,
// outcomes, dispositions (at most maxDispositions, the rest "other") and
// where they are recorded.
func summarizeResults(s *scope) {
	c := s.c
	st := &c.Status
	st.Succeeded, st.Failed = 0, 0
	outcomes := map[string]int64{}
	dispositions := map[string]int64{}
	for _, row := range s.rec.rows {
		if successful(c, row.outcome) {
			st.Succeeded++
		} else {
			st.Failed++
		}
		outcomes[string(row.outcome)]++
		if d := row.disposition; d != "" {
			if _, ok := dispositions[d]; !ok && len(dispositions) >= maxDispositions {
				d = "other"
			}
			dispositions[d]++
		}
	}
	st.Outcomes, st.Dispositions = nil, nil
	if len(outcomes) > 0 {
		st.Outcomes = outcomes
	}
	if len(dispositions) > 0 {
		st.Dispositions = dispositions
	}
	names := make([]string, len(s.rec.shards))
	for i, sh := range s.rec.shards {
		names[i] = sh.name
	}
	st.Results = &voicev1alpha1.CampaignResults{ConfigMaps: names, Recorded: int64(len(s.rec.rows))}
}

// setSpecConditions sets Suspended, Stopped and InWindow.
func setSpecConditions(s *scope) {
	c := s.c
	if c.Spec.Suspend {
		setCondition(c, ConditionSuspended, true, "Suspended", "spec.suspend is true: no new Calls and no retries; Calls in flight go on")
	} else {
		setCondition(c, ConditionSuspended, false, "NotSuspended", "")
	}
	switch {
	case c.Spec.Stop:
		setCondition(c, ConditionStopped, true, "Stopped", "spec.stop is true: no new Calls and no further attempts; stopMode "+string(stopMode(c)))
	case s.endReason == "DeadlinePassed":
		setCondition(c, ConditionStopped, true, "DeadlinePassed", "schedule.deadline "+s.sched.deadline.UTC().Format(time.RFC3339)+" has passed: no further attempts")
	default:
		setCondition(c, ConditionStopped, false, "NotStopped", "")
	}
	switch {
	case s.outsideWindow > 0 && !s.anyOpen:
		msg := fmt.Sprintf("%d due contact(s) are outside their calling window", s.outsideWindow)
		if !s.nextWindow.IsZero() {
			msg += "; the first opens at " + s.nextWindow.UTC().Format(time.RFC3339)
		}
		setCondition(c, ConditionInWindow, false, "OutsideWindow", msg)
	case s.outsideWindow > 0:
		setCondition(c, ConditionInWindow, true, "PartlyInWindow", fmt.Sprintf("%d due contact(s) wait for their window; others are being called", s.outsideWindow))
	case s.listed && s.contacts != nil:
		setCondition(c, ConditionInWindow, true, "InWindow", "")
	}
}

// setReadiness sets Ready, Reconciling and Stalled from the pass's error
// and where the Campaign is.
func setReadiness(s *scope, err error, done bool) {
	c := s.c
	st := &c.Status
	var stalled *errStalled
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
		reason := "Completed"
		if s.ended {
			reason = s.endReason
		}
		setCondition(c, voicev1alpha1.ConditionReady, true, reason, "done: "+tally)
		setCondition(c, voicev1alpha1.ConditionReconciling, false, reason, "")
		setCondition(c, voicev1alpha1.ConditionStalled, false, reason, "")
	case s.ended:
		msg := fmt.Sprintf("%s: %d Calls in flight finish; %s", s.endReason, s.inflight(), tally)
		setCondition(c, voicev1alpha1.ConditionReady, false, s.endReason, msg)
		setCondition(c, voicev1alpha1.ConditionReconciling, true, s.endReason, msg)
		setCondition(c, voicev1alpha1.ConditionStalled, false, s.endReason, "")
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
}

func stopMode(c *voicev1alpha1.Campaign) voicev1alpha1.StopMode {
	if c.Spec.StopMode == "" {
		return voicev1alpha1.StopFinish
	}
	return c.Spec.StopMode
}

func timeOrNil(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return ptr.To(metav1.NewTime(t))
}

func successful(c *voicev1alpha1.Campaign, o voicev1alpha1.CallOutcome) bool {
	if len(c.Spec.SuccessOutcomes) == 0 {
		return o == voicev1alpha1.OutcomeAnswered
	}
	return slices.Contains(c.Spec.SuccessOutcomes, o)
}

// written emits the Events and metrics of a pass whose status is stored.
func (r *Reconciler) written(s *scope, before *voicev1alpha1.CampaignStatus) {
	c := s.c
	st := &c.Status

	if before.StartTime == nil && st.StartTime != nil {
		r.event(c, corev1.EventTypeNormal, "Started", "first Call started; %d contacts", st.Total)
	}
	was := meta.FindStatusCondition(before.Conditions, ConditionSuspended)
	wasSuspended := was != nil && was.Status == metav1.ConditionTrue
	switch {
	case c.Spec.Suspend && !wasSuspended:
		r.event(c, corev1.EventTypeNormal, "Suspended", "suspended: no new Calls or retries; %d in flight go on", st.Active)
	case !c.Spec.Suspend && wasSuspended:
		r.event(c, corev1.EventTypeNormal, "Resumed", "resumed with %d pending and %d waiting", st.Pending, st.Waiting)
	}
	if changedTo(before, st, ConditionStopped, metav1.ConditionTrue) {
		cond := meta.FindStatusCondition(st.Conditions, ConditionStopped)
		r.event(c, corev1.EventTypeNormal, cond.Reason, "%s", cond.Message)
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
