package callstate

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/metrics"
)

// Contradicted is the result of a webhook that denies a stronger fact
// already recorded (a missed CDR for an attempt seen answered). It is not
// applied: a forged or misrouted CDR must not end a live call's attempt and
// have the person rung again.
const Contradicted Result = "contradicted"

// clockSkew is how far Piopiy's clock may be from the manager's before a
// time in a webhook is not believed. Piopiy's CDR times have one-second
// resolution; a minute is far above any honest skew and far below the
// attack it stops (timestamps moved back to 1970 by "earliest wins").
const clockSkew = time.Minute

// saneTime returns t when it falls inside the attempt's own lifetime, else
// nil: the time is ignored and counted, and the event's facts are kept with
// the time of receipt where a time is needed. The lifetime runs from the
// attempt's intent to the latest Piopiy can end the call (ring timeout plus
// maxDurationSeconds), widened by clockSkew and lifetimeSlack; it is
// measured from the attempt, not the wall clock, so it holds on any clock.
func saneTime(call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt, t time.Time) *metav1.Time {
	if t.IsZero() || a.IntentTime.IsZero() {
		return timeOrNil(t)
	}
	start := a.IntentTime.Add(-clockSkew)
	end := a.IntentTime.Add(time.Duration(call.Spec.RingTimeoutSeconds+call.Spec.MaxDurationSeconds)*time.Second + lifetimeSlack)
	if t.Before(start) || t.After(end) {
		metrics.WebhookTimesIgnored.Inc()
		return nil
	}
	return timeOrNil(t)
}

// lifetimeSlack covers what follows a call's end inside its record: the
// CDR's own timestamp, a hangup sent late, clock skew.
const lifetimeSlack = 5 * time.Minute
