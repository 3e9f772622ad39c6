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

// hangup asks Piopiy to end the call's leg a, at most every hangupRetry,
// for a handoff that ended without an agent under onNoAgent Hangup; the
// leg's hangup webhook then ends the Call.
func (r *Reconciler) hangup(ctx context.Context, c *voicev1alpha1.Call) (ctrl.Result, error) {
	a := callstate.Current(&c.Status)
	if a == nil || a.CMIUUID == "" {
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
	if r.Accounts == nil || r.Piopiy == nil {
		r.event(c, "Warning", "HangupUnavailable", "onNoAgent is Hangup but this manager has no Piopiy client; the bot keeps the call")
		return ctrl.Result{}, nil
	}
	acct, err := r.Accounts.Resolve(ctx, c)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("hanging up after the handoff: %w", err)
	}
	api, err := r.Piopiy.For(acct.Credentials)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("hanging up after the handoff: %w", err)
	}
	if r.Limiter != nil {
		if err := r.Limiter.Wait(ctx); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := api.CallAction(ctx, a.CMIUUID, piopiy.ActionHangup); err != nil && !errors.Is(err, piopiy.ErrNotFound) {
		return ctrl.Result{}, fmt.Errorf("hanging up after the handoff: %w", err)
	}
	r.event(c, "Normal", "HangupRequested", "attempt %d: hung up because no agent took the call (onNoAgent: Hangup)", a.Number)
	return ctrl.Result{RequeueAfter: hangupRetry}, nil
}
