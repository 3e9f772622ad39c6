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
	piopiyv3 "github.com/callfleet/callfleet/pkg/piopiy/v3"
)

// SettledByPoll marks a v3 attempt whose end was learnt by polling.
const SettledByPoll = "Poll"

// reconcileInFlightV3 follows the current attempt of a v3 Call by polling
// GET /calls/{id}; there are no webhooks, so each pass requeues itself.
func (r *Reconciler) reconcileInFlightV3(ctx context.Context, call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt) (ctrl.Result, error) {
	now := r.Now()
	switch a.State {
	case voicev1alpha1.AttemptIntent, voicev1alpha1.AttemptUnknown:
		// v3 offers no way to find a call by our attempt id, so an
		// ambiguous create is waited out: the person may have been rung.
		return r.settleCreate(ctx, call, a, now, unsettledCreate{
			record:    r.recordV3DialResult,
			after:     r.afterDialV3,
			message:   "create was ambiguous: the manager stopped while dialing",
			event:     "attempt %d: the manager stopped while dialing; not redialling",
			unsettled: fmt.Sprintf("the create was ambiguous and Piopiy v3 offers no lookup by attempt id; ended after %s without redialling because the person may have been rung", r.SettleTimeout),
		})
	}
	if err := r.hangupV3IfAsked(ctx, call, a, now); err != nil {
		return ctrl.Result{}, err
	}
	a = callstate.Current(&call.Status)
	api, err := r.v3APIFor(ctx, call)
	if err != nil {
		return ctrl.Result{}, err
	}
	info, err := api.GetCall(ctx, a.CallID)
	if a.AnswerTime == nil {
		if v, ok := r.answeredSeen.Load(a.ID); ok {
			at := v.(time.Time)
			a.AnswerTime = metaTime(at)
			if a.RingTime == nil {
				a.RingTime = metaTime(at)
			}
		}
	}
	switch {
	case errors.Is(err, piopiyv3.ErrNotFound):
		r.endPolled(ctx, call, a)
		return ctrl.Result{}, nil
	case err != nil:
		var pe *piopiyv3.Error
		if errors.As(err, &pe) && pe.RetryAfter > 0 {
			return ctrl.Result{RequeueAfter: pe.RetryAfter}, nil
		}
		return ctrl.Result{}, fmt.Errorf("polling v3 call %s: %w", a.CallID, err)
	}
	applyPolled(a, info, now)
	if a.AnswerTime != nil {
		r.answeredSeen.LoadOrStore(a.ID, a.AnswerTime.Time)
	}
	if next := callstate.LivePhase(&call.Status); rank(next) > rank(call.Status.Phase) || call.Status.Phase == voicev1alpha1.CallRetrying {
		call.Status.Phase = next
	}
	// Not watched: Piopiy v3 tells nothing unless asked.
	return ctrl.Result{RequeueAfter: r.V3.pollEvery(a)}, nil
}

// applyPolled records what a poll showed; times only ever fill in.
func applyPolled(a *voicev1alpha1.CallAttempt, info *piopiyv3.CallInfo, now time.Time) {
	switch info.Status {
	case piopiyv3.CallRinging:
		if a.RingTime == nil {
			a.RingTime = metaTime(now)
		}
	case piopiyv3.CallAnswered:
		if a.RingTime == nil {
			a.RingTime = metaTime(now)
		}
		if a.AnswerTime == nil {
			a.AnswerTime = metaTime(now)
		}
	}
}

// endPolled ends an attempt Piopiy no longer knows (404 once ended), with
// the outcome inferred as the package comment in v3.go explains.
func (r *Reconciler) endPolled(ctx context.Context, call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt) {
	now := r.Now()
	a.State = voicev1alpha1.AttemptEnded
	a.SettledBy = SettledByPoll
	if a.EndTime == nil {
		a.EndTime = metaTime(now)
	}
	switch {
	case a.AnswerTime != nil:
		a.Outcome = voicev1alpha1.OutcomeAnswered
		a.DurationSeconds = int32(max(a.EndTime.Sub(a.AnswerTime.Time), 0) / time.Second)
	case a.HangupRequestedTime != nil && call.Spec.Hangup:
		a.Outcome = voicev1alpha1.OutcomeCanceled
		a.Message = "hung up before it was seen answered, because spec.hangup is true"
	default:
		a.Outcome = voicev1alpha1.OutcomeNoAnswer
		a.Message = "ended before it was seen answered (inferred NoAnswer: Piopiy v3 reports no end reason, so busy and rejected calls look the same)"
	}
	metrics.Attempts.WithLabelValues(string(a.Outcome)).Inc()
	log.FromContext(ctx).Info("Attempt ended", "attempt", a.Number, "outcome", a.Outcome, "settledBy", SettledByPoll)
	r.event(call, "Normal", "AttemptEnded", "attempt %d ended %s (Piopiy v3 forgot the call; outcome from polling)", a.Number, a.Outcome)
}

// hangupV3IfAsked hangs up for spec.hangup, or an unanswered call well past
// its ring timeout (Piopiy enforces ring_timeout_sec itself; this is the
// backstop), once per attempt.
func (r *Reconciler) hangupV3IfAsked(ctx context.Context, call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt, now time.Time) error {
	if a.HangupRequestedTime != nil || a.EndTime != nil {
		return nil
	}
	why := ""
	switch {
	case call.Spec.Hangup:
		why = "spec.hangup is true"
	case a.AnswerTime == nil && a.DialTime != nil && now.After(a.DialTime.Add(ringTimeout(call)+ringSlack+r.V3.pollEvery(a))):
		why = fmt.Sprintf("not answered within ringTimeoutSeconds (%ds)", call.Spec.RingTimeoutSeconds)
	default:
		return nil
	}
	if err := r.hangupV3(ctx, call, a, why); err != nil {
		return err
	}
	r.event(call, "Normal", "HangupRequested", "attempt %d: hung up because %s", a.Number, why)
	return r.updateAttempt(ctx, call, a.ID, func(a *voicev1alpha1.CallAttempt, _ bool) {
		if a.HangupRequestedTime == nil {
			a.HangupRequestedTime = metaTime(now)
		}
	})
}

func (r *Reconciler) hangupV3(ctx context.Context, call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt, why string) error {
	api, err := r.v3APIFor(ctx, call)
	if err != nil {
		return err
	}
	_, err = api.Hangup(ctx, a.CallID, piopiyv3.HangupRequest{Reason: truncate(why, 256)})
	if errors.Is(err, piopiyv3.ErrNotFound) {
		return nil // already ended; the next poll settles it
	}
	return err
}

// reconcileDeleteV3 hangs up a live v3 call, then lets the Call go.
func (r *Reconciler) reconcileDeleteV3(ctx context.Context, call *voicev1alpha1.Call) (ctrl.Result, error) {
	if a := callstate.Current(&call.Status); a != nil && a.State != voicev1alpha1.AttemptEnded && a.EndTime == nil {
		if a.CallID != "" {
			if err := r.hangupV3(ctx, call, a, "the Call was deleted"); err != nil {
				return ctrl.Result{}, fmt.Errorf("hanging up deleted Call: %w", err)
			}
			r.event(call, "Normal", "HangupRequested", "attempt %d: hung up because the Call was deleted", a.Number)
		} else {
			r.event(call, "Warning", "HangupImpossible", "attempt %d: Piopiy's reply with the call id was lost, so it cannot be hung up", a.Number)
		}
	}
	r.forgetSeen(call)
	controllerutil.RemoveFinalizer(call, Finalizer)
	return ctrl.Result{}, r.Update(ctx, call)
}

// forgetSeen drops what polls saw of a Call whose attempts are all written
// as ended (or that is going away).
func (r *Reconciler) forgetSeen(call *voicev1alpha1.Call) {
	for i := range call.Status.Attempts {
		r.answeredSeen.Delete(call.Status.Attempts[i].ID)
	}
}

// v3APIFor returns the v3 client of the Call's account once the shared rate
// limit lets a request through.
func (r *Reconciler) v3APIFor(ctx context.Context, call *voicev1alpha1.Call) (V3API, error) {
	acct, err := r.Accounts.Resolve(ctx, call)
	if err != nil {
		return nil, err
	}
	api, err := r.V3.For(acct.V3.Token)
	if err != nil {
		return nil, err
	}
	if err := r.Limiter.Wait(ctx); err != nil {
		return nil, err
	}
	return api, nil
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}
