package handoff

import (
	"context"
	"errors"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// hangup asks Piopiy to end the call, at most every hangupRetry, for a
// handoff that ended without an agent under onNoAgent Hangup: on v2 the
// call action on leg a's cmiuuid (its hangup webhook then ends the Call),
// on v3 the hangup action on the call id (the Call controller's polling
// then sees it end).
func (r *Reconciler) hangup(ctx context.Context, c *voicev1alpha1.Call) (ctrl.Result, error) {
	a := callstate.Current(&c.Status)
	if a == nil || (!isV3(c) && a.CMIUUID == "") || (isV3(c) && a.CallID == "") {
		return ctrl.Result{}, nil
	}
	key := client.ObjectKeyFromObject(c)
	r.mu.Lock()
	wait := r.hangups[key].Add(hangupRetry).Sub(r.Now())
	if wait <= 0 {
		if r.hangups == nil {
			r.hangups = map[client.ObjectKey]time.Time{}
		}
		r.hangups[key] = r.Now()
	}
	r.mu.Unlock()
	if wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	var err error
	if isV3(c) {
		err = r.hangupV3(ctx, c, a)
	} else {
		err = r.hangupV2(ctx, c, a)
	}
	if un := (*UnavailableError)(nil); errors.As(err, &un) {
		r.event(c, "Warning", "HangupUnavailable", "onNoAgent is Hangup but %s; the bot keeps the call", un.Reason)
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("hanging up after the handoff: %w", err)
	}
	r.event(c, "Normal", "HangupRequested", "attempt %d: hung up because no agent took the call (onNoAgent: Hangup)", a.Number)
	return ctrl.Result{RequeueAfter: hangupRetry}, nil
}

// hangupV2 ends leg a with Piopiy's call action. ErrNotFound means the
// call has already ended.
func (r *Reconciler) hangupV2(ctx context.Context, c *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt) error {
	if r.Accounts == nil || r.Piopiy == nil {
		return &UnavailableError{Reason: "this manager has no Piopiy client"}
	}
	acct, err := r.Accounts.Resolve(ctx, c)
	if err != nil {
		return err
	}
	api, err := r.Piopiy.For(acct.Credentials)
	if err != nil {
		return err
	}
	if r.Limiter != nil {
		if err := r.Limiter.Wait(ctx); err != nil {
			return err
		}
	}
	if err := api.CallAction(ctx, a.CMIUUID, piopiy.ActionHangup); err != nil && !errors.Is(err, piopiy.ErrNotFound) {
		return err
	}
	return nil
}
