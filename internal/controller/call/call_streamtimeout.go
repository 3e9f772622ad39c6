package call

import (
	"fmt"
	"time"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// defaultConnectTimeout applies when spec.stream.connectTimeoutSeconds is
// unset (Calls created before the field existed).
const defaultConnectTimeout = 10 * time.Second

// streamConnectDeadline is when an answered attempt whose stream has not
// connected is hung up; ok is false when no deadline applies: not answered
// yet, already ending, the stream connected once (what happens to it later
// is the gateway's and bot's business), or a handoff under way (a human,
// not the bot, is the person's company then).
//
// The policy is to hang up, not to keep the call without the AI: nothing
// else talks to the person, so a call without its stream is silence.
func streamConnectDeadline(call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt) (time.Time, bool) {
	if a == nil || a.AnswerTime == nil || a.EndTime != nil || a.HangupRequestedTime != nil || call.Status.Handoff != nil {
		return time.Time{}, false
	}
	if s := call.Status.Stream; s != nil && s.ConnectedTime != nil {
		return time.Time{}, false
	}
	return a.AnswerTime.Add(connectTimeout(call)), true
}

func connectTimeout(call *voicev1alpha1.Call) time.Duration {
	if s := call.Spec.Stream.ConnectTimeoutSeconds; s > 0 {
		return time.Duration(s) * time.Second
	}
	return defaultConnectTimeout
}

// streamTimedOut reports whether the attempt's stream is past its connect
// deadline at now, and says so in words.
func streamTimedOut(call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt, now time.Time) (string, bool) {
	due, ok := streamConnectDeadline(call, a)
	if !ok || now.Before(due) {
		return "", false
	}
	return fmt.Sprintf("the stream did not connect within connectTimeoutSeconds (%s) of the answer, so the person would hear only silence", connectTimeout(call)), true
}

// markStreamTimeout records the hangup's reason on the Call.
func (r *Reconciler) markStreamTimeout(call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt, why string) {
	r.setCondition(call, voicev1alpha1.ConditionStreamConnected, false, voicev1alpha1.ReasonStreamConnectTimeout,
		fmt.Sprintf("attempt %d: %s; callfleet hung up", a.Number, why))
}
