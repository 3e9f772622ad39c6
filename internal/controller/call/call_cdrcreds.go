package call

import (
	"context"
	"errors"
	"fmt"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// Piopiy's documented CDR lookups answer 404 for bad credentials as well as
// for "no CDR (yet)", so a 404 alone cannot tell a rotated or wrong secret
// from a CDR that is late. Waiting out the settle timeout on a refused
// account only hides the real problem for half an hour.
//
// The call action endpoint does tell them apart (420 for bad credentials,
// 404 for an unknown leg), so after a lookup's 404 callfleet asks it once
// per attempt to hang up the attempt's leg. That is harmless by the time a
// lookup runs: the call has ended, or it is past its ring timeout (and was
// hung up already) or its maxDurationSeconds.

// lookupRefusal returns Piopiy's refusal of the account when that is why a
// CDR lookup failed with err, probing with a hangup when the lookup said
// only "not found"; nil when the account is not known to be refused.
func (r *Reconciler) lookupRefusal(ctx context.Context, api PiopiyAPI, a *voicev1alpha1.CallAttempt, err error) error {
	if errors.Is(err, piopiy.ErrAuthentication) {
		return err
	}
	if !errors.Is(err, piopiy.ErrNotFound) || a.CMIUUID == "" {
		return nil
	}
	if _, done := r.probed.LoadOrStore(a.ID, true); done {
		return nil
	}
	if perr := api.CallAction(ctx, a.CMIUUID, piopiy.ActionHangup); errors.Is(perr, piopiy.ErrAuthentication) {
		return perr
	}
	return nil
}

// endRefusedLookup ends an attempt whose CDR cannot be looked up because
// Piopiy refuses the account, and says so on the Call.
func (r *Reconciler) endRefusedLookup(call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt, err error) {
	msg := fmt.Sprintf("Piopiy refused the account's credentials (%v) while callfleet looked up the CDR of request %s, so its \"not found\" says nothing about the call; fix the account Secret", err, a.RequestID)
	r.setCondition(call, voicev1alpha1.ConditionCDRLookup, false, voicev1alpha1.ReasonAccountRefused, msg)
	r.endUnsettled(call, a, "the outcome is unknown and was not waited for: "+msg+" (not redialled: the person may have been rung)")
}
