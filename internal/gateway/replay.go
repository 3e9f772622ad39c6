package gateway

import (
	"net/http"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// Rejection reasons of a ws_url used more than once or too late.
const (
	rejectAttemptEnded = "attempt_ended" // the attempt's call is over
	rejectReplayed     = "replayed"      // the attempt's stream already connected once
)

// checkSingleUse refuses a token that is signed and unexpired but no longer
// good: its attempt has ended, or a socket for it connected already (a
// ws_url replayed by someone who saw it). Piopiy opens one socket per
// attempt, so a second one is never the platform's.
func checkSingleUse(call *voicev1alpha1.Call, attempt int32) *rejection {
	for i := range call.Status.Attempts {
		a := &call.Status.Attempts[i]
		if a.Number != attempt {
			continue
		}
		if a.State == voicev1alpha1.AttemptEnded || a.EndTime != nil || a.Outcome != "" {
			return reject(http.StatusForbidden, rejectAttemptEnded)
		}
	}
	if st := call.Status.Stream; st != nil && st.Attempt == attempt && st.ConnectedTime != nil {
		return reject(http.StatusForbidden, rejectReplayed)
	}
	return nil
}
