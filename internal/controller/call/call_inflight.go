package call

import (
	"context"
	"errors"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/internal/metrics"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// ringSlack is added to ringTimeoutSeconds before callfleet hangs up an
// unanswered call itself, so Piopiy's own timeout wins when they agree.
const ringSlack = 5 * time.Second

// reconcileInFlight follows the current attempt until its outcome is known.
// Webhooks do most of the work (the receiver writes them into status, which
// wakes this reconciler); this covers what webhooks cannot: hanging up,
// settling a lost reply, and fetching a CDR that never came.
func (r *Reconciler) reconcileInFlight(ctx context.Context, call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt) (ctrl.Result, error) {
	now := r.Now()
	if next := callstate.LivePhase(&call.Status); rank(next) > rank(call.Status.Phase) || call.Status.Phase == voicev1alpha1.CallRetrying {
		call.Status.Phase = next
	}
	switch a.State {
	case voicev1alpha1.AttemptIntent, voicev1alpha1.AttemptUnknown:
		// Webhooks settle an ambiguous create, and wake us when they come.
		return r.settleCreate(ctx, call, a, now, unsettledCreate{
			record:    r.recordDialResult,
			after:     r.afterDial,
			message:   "create was ambiguous: the manager stopped while dialing; settling from Piopiy's webhooks",
			event:     "attempt %d: the manager stopped while dialing; waiting for Piopiy's webhooks, not redialling",
			unsettled: fmt.Sprintf("the create was ambiguous and Piopiy showed no call within %s; not redialled because the person may have been rung", r.SettleTimeout),
		})
	}

	// Dialed: Piopiy placed the call.
	if a.EndTime == nil {
		if err := r.hangupIfAsked(ctx, call, a, now); err != nil {
			return ctrl.Result{}, err
		}
		// hangupIfAsked may have re-read the Call.
		a = callstate.Current(&call.Status)
		if a.State == voicev1alpha1.AttemptEnded {
			return ctrl.Result{RequeueAfter: nextPass}, nil
		}
	}
	if due := r.cdrLookupDue(call, a); !now.Before(due) {
		if err := r.lookupCDR(ctx, call, a); err != nil {
			return ctrl.Result{}, err
		}
		if a.State == voicev1alpha1.AttemptEnded {
			return ctrl.Result{RequeueAfter: nextPass}, nil
		}
		giveUp := r.cdrGiveUp(call, a)
		if !now.Before(giveUp) {
			r.endUnsettled(call, a, fmt.Sprintf("Piopiy sent no outcome and had no CDR for request %s within %s", a.RequestID, r.SettleTimeout))
			return ctrl.Result{}, nil
		}
		// Not watched: ask again later, until Piopiy has had every chance.
		return ctrl.Result{RequeueAfter: min(max(r.CDRGrace*3, time.Second), giveUp.Sub(now))}, nil
	}
	return ctrl.Result{RequeueAfter: r.followUpIn(call)}, nil
}

// unsettledCreate is how one API's in-flight pass settles an attempt whose
// create may not have been recorded.
type unsettledCreate struct {
	record    func(context.Context, *voicev1alpha1.Call, string, dialResult) error
	after     func(*voicev1alpha1.Call, dialResult) (ctrl.Result, error)
	message   string // the attempt's message once the create is known ambiguous
	event     string // the DialAmbiguous event's format, given the attempt number
	unsettled string // why it ends unsettled after SettleTimeout
}

// settleCreate follows an attempt in Intent or Unknown. A dial result this
// process got but could not write is recorded. Otherwise an Intent at the
// start of a reconcile means the process that wrote it stopped before
// recording the POST's result: it becomes Unknown, and it ends unsettled,
// never redialled (the person may have been rung), after SettleTimeout.
func (r *Reconciler) settleCreate(ctx context.Context, call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt, now time.Time, how unsettledCreate) (ctrl.Result, error) {
	if v, ok := r.unrecorded.LoadAndDelete(a.ID); ok && a.State == voicev1alpha1.AttemptIntent {
		res := v.(dialResult)
		if err := how.record(ctx, call, a.ID, res); err != nil {
			r.unrecorded.Store(a.ID, res)
			return ctrl.Result{}, err
		}
		return how.after(call, res)
	}
	if a.State == voicev1alpha1.AttemptIntent {
		a.State = voicev1alpha1.AttemptUnknown
		a.Message = how.message
		metrics.AmbiguousCreates.Inc()
		r.event(call, "Warning", "DialAmbiguous", how.event, a.Number)
	}
	deadline := a.IntentTime.Add(r.SettleTimeout)
	if now.Before(deadline) {
		// The deadline is not watched.
		return ctrl.Result{RequeueAfter: deadline.Sub(now)}, nil
	}
	r.endUnsettled(call, a, how.unsettled)
	return ctrl.Result{}, nil
}

// hangupIfAsked sends Piopiy a hangup for spec.hangup or an unanswered call
// past its ring timeout, once per attempt.
func (r *Reconciler) hangupIfAsked(ctx context.Context, call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt, now time.Time) error {
	if a.HangupRequestedTime != nil || a.CMIUUID == "" {
		// Without the leg id there is nothing to hang up yet; the started
		// event brings it and wakes us.
		return nil
	}
	why, streamTimeout := "", false
	switch {
	case call.Spec.Hangup:
		why = "spec.hangup is true"
	case a.AnswerTime == nil && a.DialTime != nil && now.After(a.DialTime.Add(ringTimeout(call)+ringSlack)):
		why = fmt.Sprintf("not answered within ringTimeoutSeconds (%ds)", call.Spec.RingTimeoutSeconds)
	default:
		if why, streamTimeout = streamTimedOut(call, a, now); !streamTimeout {
			return nil
		}
	}
	if err := r.hangup(ctx, call, a); err != nil {
		return err
	}
	reason := "HangupRequested"
	if streamTimeout {
		reason = voicev1alpha1.ReasonStreamConnectTimeout
	}
	r.event(call, "Normal", reason, "attempt %d: hung up because %s", a.Number, why)
	// Written at once, so a conflicting write later in this pass cannot make
	// the next pass send it again.
	return r.updateAttempt(ctx, call, a.ID, func(a *voicev1alpha1.CallAttempt, _ bool) {
		if a.HangupRequestedTime == nil {
			a.HangupRequestedTime = metaTime(now)
		}
		if streamTimeout {
			r.markStreamTimeout(call, a, why)
		}
	})
}

func (r *Reconciler) hangup(ctx context.Context, call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt) error {
	api, err := r.apiFor(ctx, call)
	if err != nil {
		return err
	}
	err = api.CallAction(ctx, a.CMIUUID, piopiy.ActionHangup)
	if errors.Is(err, piopiy.ErrNotFound) {
		return nil // the leg already ended
	}
	return err
}

// cdrLookupDue is when the controller stops waiting for webhooks and asks
// Piopiy's request-id CDR lookup itself: a grace period after the hangup; or,
// when no answer was seen, just after the ring timeout (the events may have
// been lost); else after the latest the call could last.
func (r *Reconciler) cdrLookupDue(call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt) time.Time {
	if a.EndTime != nil {
		return a.EndTime.Add(r.CDRGrace)
	}
	start := attemptStart(a)
	if a.AnswerTime == nil {
		return start.Add(ringTimeout(call) + ringSlack + r.CDRGrace)
	}
	return latestEnd(call, a).Add(r.CDRGrace)
}

// cdrGiveUp is when an attempt Piopiy has no CDR for is ended as unsettled.
func (r *Reconciler) cdrGiveUp(call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt) time.Time {
	end := latestEnd(call, a)
	if a.EndTime != nil {
		end = a.EndTime.Time
	}
	return end.Add(r.CDRGrace + r.SettleTimeout)
}

func attemptStart(a *voicev1alpha1.CallAttempt) time.Time {
	if a.DialTime != nil {
		return a.DialTime.Time
	}
	return a.IntentTime.Time
}

// latestEnd is the latest a placed call can end: Piopiy ends it at
// maxDurationSeconds.
func latestEnd(call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt) time.Time {
	return attemptStart(a).Add(ringTimeout(call) + ringSlack + time.Duration(call.Spec.MaxDurationSeconds)*time.Second)
}

// lookupCDR settles the attempt from Piopiy's request-id CDR lookup.
func (r *Reconciler) lookupCDR(ctx context.Context, call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt) error {
	api, err := r.apiFor(ctx, call)
	if err != nil {
		return err
	}
	cdrs, err := api.CDRsByRequestID(ctx, a.RequestID)
	if refusal := r.lookupRefusal(ctx, api, a, err); refusal != nil {
		r.endRefusedLookup(call, a, refusal)
		return nil
	}
	if errors.Is(err, piopiy.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up CDRs of request %s: %w", a.RequestID, err)
	}
	wasAmbiguous := a.Message != ""
	for i := range cdrs {
		if cdrs[i].RequestID == "" {
			cdrs[i].RequestID = a.RequestID
		}
		callstate.ApplyCDR(call, &cdrs[i], callstate.SettledByCDRLookup)
	}
	if a.State == voicev1alpha1.AttemptEnded {
		metrics.Attempts.WithLabelValues(string(a.Outcome)).Inc()
		if wasAmbiguous {
			metrics.AmbiguousSettled.WithLabelValues("cdr_lookup").Inc()
		}
		log.FromContext(ctx).Info("Attempt settled from CDR lookup", "attempt", a.Number, "outcome", a.Outcome)
		r.event(call, "Normal", "AttemptEnded", "attempt %d ended %s (from Piopiy's CDR lookup)", a.Number, a.Outcome)
	}
	return nil
}

// endUnsettled ends an attempt Piopiy never accounted for. It is marked
// Timeout so nextStep never retries it: the person may have been rung. An
// attempt seen answered ends Answered, what is known, flagged by that
// SettledBy: a lost CDR (Piopiy losing its state) does not turn a
// conversation into a failure.
func (r *Reconciler) endUnsettled(call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt, msg string) {
	a.State = voicev1alpha1.AttemptEnded
	a.Outcome = voicev1alpha1.OutcomeFailed
	if a.AnswerTime != nil {
		a.Outcome = voicev1alpha1.OutcomeAnswered
		msg = "answered at " + a.AnswerTime.UTC().Format(time.RFC3339) + "; " + msg + "; its real end and duration are unknown (endTime is when callfleet stopped waiting)"
	}
	a.SettledBy = callstate.SettledByTimeout
	a.Message = msg
	if a.EndTime == nil {
		a.EndTime = metaTime(r.Now())
	}
	metrics.Attempts.WithLabelValues(string(a.Outcome)).Inc()
	metrics.AmbiguousSettled.WithLabelValues("timeout").Inc()
	r.event(call, "Warning", "AttemptUnsettled", "attempt %d: %s", a.Number, msg)
}

// followUpIn is when an in-flight attempt needs the controller without a
// webhook: its ring timeout, or the CDR lookup.
func (r *Reconciler) followUpIn(call *voicev1alpha1.Call) time.Duration {
	a := callstate.Current(&call.Status)
	if a == nil {
		return 0
	}
	now := r.Now()
	next := r.cdrLookupDue(call, a)
	if a.AnswerTime == nil && a.HangupRequestedTime == nil {
		if t := attemptStart(a).Add(ringTimeout(call) + ringSlack + time.Second); t.Before(next) {
			next = t
		}
	}
	if t, ok := streamConnectDeadline(call, a); ok && t.Before(next) {
		next = t // the gateway's connected report, if it comes first, wakes us too
	}
	return max(next.Sub(now), time.Second)
}

func ringTimeout(call *voicev1alpha1.Call) time.Duration {
	return time.Duration(call.Spec.RingTimeoutSeconds) * time.Second
}

// reconcileDelete hangs up a live call, then lets the Call go.
func (r *Reconciler) reconcileDelete(ctx context.Context, call *voicev1alpha1.Call) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(call, Finalizer) {
		return ctrl.Result{}, nil
	}
	if isV3(call) {
		return r.reconcileDeleteV3(ctx, call)
	}
	if a := callstate.Current(&call.Status); a != nil && a.State != voicev1alpha1.AttemptEnded && a.EndTime == nil {
		if a.CMIUUID == "" && r.Now().Before(a.IntentTime.Add(time.Minute)) {
			// The call may be ringing and its leg id is on its way in the
			// started event; the receiver's status write wakes us.
			return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
		}
		if a.CMIUUID != "" {
			if err := r.hangup(ctx, call, a); err != nil {
				return ctrl.Result{}, fmt.Errorf("hanging up deleted Call: %w", err)
			}
			r.event(call, "Normal", "HangupRequested", "attempt %d: hung up because the Call was deleted", a.Number)
		} else {
			r.event(call, "Warning", "HangupImpossible", "attempt %d: Piopiy never sent the call's leg id, so it cannot be hung up", a.Number)
		}
	}
	controllerutil.RemoveFinalizer(call, Finalizer)
	return ctrl.Result{}, r.Update(ctx, call)
}

func rank(p voicev1alpha1.CallPhase) int {
	switch p {
	case voicev1alpha1.CallDialing:
		return 1
	case voicev1alpha1.CallRinging:
		return 2
	case voicev1alpha1.CallInProgress:
		return 3
	case voicev1alpha1.CallHandedOff:
		return 4
	case voicev1alpha1.CallCompleted, voicev1alpha1.CallFailed:
		return 9
	}
	return 0
}

// apiFor returns the Piopiy client of the Call's account once the shared
// rate limit lets a request through.
func (r *Reconciler) apiFor(ctx context.Context, call *voicev1alpha1.Call) (PiopiyAPI, error) {
	acct, err := r.Accounts.Resolve(ctx, call)
	if err != nil {
		return nil, err
	}
	api, err := r.Piopiy.For(acct.Credentials)
	if err != nil {
		return nil, err
	}
	if err := r.Limiter.Wait(ctx); err != nil {
		return nil, err
	}
	return api, nil
}
