package callstate

import (
	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// VoicemailReported reports whether the bot said a voicemail box answered
// attempt a: the gateway's status.stream.voicemailTime, written during a's
// stream (status.stream is always that of the current attempt).
func VoicemailReported(st *voicev1alpha1.CallStatus, a *voicev1alpha1.CallAttempt) bool {
	if a != Current(st) || st.Stream == nil || st.Stream.VoicemailTime == nil {
		return false
	}
	return !st.Stream.VoicemailTime.Before(&a.IntentTime)
}

func voicemailOutcome(call *voicev1alpha1.Call) (voicev1alpha1.CallOutcome, string) {
	if v := call.Spec.Voicemail; v != nil && v.Action == voicev1alpha1.VoicemailLeaveMessage {
		return voicev1alpha1.OutcomeVoicemail, "the bot reported a voicemail box; the gateway left the message and hung up"
	}
	return voicev1alpha1.OutcomeVoicemail, "the bot reported a voicemail box; the gateway hung up"
}
