package callstate

import (
	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// IndexCMIUUID indexes Calls by the leg ids (cmiuuid) their attempts have
// recorded from Piopiy's events.
//
// TeleCMI documents stream_connected and STREAM_DISCONNECTED as thin
// events: leg "b", from, cmiuuid and ws_status, with no request_id,
// conversation_uuid, to or extra_params (pkg/piopiy/testdata/documented).
// The only identity they can share with the call's earlier events is the
// cmiuuid, and the documentation does not say whose it is: the call's leg-a
// id (which the started, ringing and answered events carry, and which the
// attempt records) or an id of the stream's own that no earlier event
// shows. Under the first reading this index finds the Call; under the
// second nothing can, honestly, and the gateway's own report of the socket
// (status.stream) and the stream connect timeout cover the stream instead.
// piopiy-sim plays either reading (Shapes.StreamCMIUUID).
const IndexCMIUUID = "status.attempts.cmiuuid"

// CMIUUIDs returns the index values of IndexCMIUUID.
func CMIUUIDs(call *voicev1alpha1.Call) []string {
	var out []string
	for _, a := range call.Status.Attempts {
		if a.CMIUUID != "" {
			out = append(out, a.CMIUUID)
		}
	}
	return out
}

// FindAttemptByLeg returns the attempt whose recorded leg id is cmiuuid.
func FindAttemptByLeg(st *voicev1alpha1.CallStatus, cmiuuid string) *voicev1alpha1.CallAttempt {
	if cmiuuid == "" {
		return nil
	}
	for i := range st.Attempts {
		if st.Attempts[i].CMIUUID == cmiuuid {
			return &st.Attempts[i]
		}
	}
	return nil
}

// NamesOnlyLeg reports whether an event identifies its call by the leg id
// alone, as the documented stream events do.
func NamesOnlyLeg(ev *piopiy.Event) bool {
	return ev != nil && ev.RequestID == "" && ev.ExtraParams[ExtraAttempt] == "" && ev.CMIUUID != ""
}

// isStreamEvent: stream events are about the socket whatever leg they name
// (the documented ones say "b"), never about a bridged agent.
func isStreamEvent(s piopiy.EventStatus) bool {
	return s == piopiy.StatusStreamConnected || s == piopiy.StatusStreamDisconnected
}

// boundedRate keeps a CDR's rate within what status.attempts[].callRate
// accepts; a longer one is not a rate.
func boundedRate(r string) string {
	if len(r) > 32 {
		return ""
	}
	return r
}
