package callstate

import (
	"testing"
	"time"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// TestAgentLegAnsweredAfterItsHangupStillBridges: Piopiy's webhooks come
// out of order (a failed delivery is retried minutes later), so the agent
// leg's hangup may land before its out_bridged. The hangup alone reads as a
// missed agent; the late word that the leg answered gives the Call back to
// that agent, whatever the handoff did meanwhile.
func TestAgentLegAnsweredAfterItsHangupStillBridges(t *testing.T) {
	const num = "919000000001"
	answeredCDR := func() *piopiy.Webhook {
		wh := cdr(piopiy.CDRAnswered, 10*time.Second, 12*time.Second, 30*time.Second)
		wh.CDR.Leg, wh.CDR.CMIUUID, wh.CDR.To = piopiy.LegB, "leg-b", piopiy.Number(num)
		return wh
	}
	for _, tc := range []struct {
		name      string
		late      *piopiy.Webhook
		meanwhile func(h *voicev1alpha1.CallHandoffStatus)
		want      voicev1alpha1.HandoffPhase
	}{
		{"late out_bridged", legB(piopiy.StatusOutBridged, num, 12*time.Second), nil, voicev1alpha1.HandoffBridged},
		{"the leg's answered CDR", answeredCDR(), nil, voicev1alpha1.HandoffEnded},
		{"after the handoff was failed as the call ended", legB(piopiy.StatusOutBridged, num, 12*time.Second), func(h *voicev1alpha1.CallHandoffStatus) {
			h.Phase, h.Outcome, h.Reason = voicev1alpha1.HandoffFailed, voicev1alpha1.HandoffOutcomeAbandoned, "the call ended before an agent answered"
		}, voicev1alpha1.HandoffBridged},
		{"while the next agent rings", legB(piopiy.StatusOutBridged, num, 12*time.Second), func(h *voicev1alpha1.CallHandoffStatus) {
			h.Phase, h.Agent, h.Number, h.Assignment = voicev1alpha1.HandoffRinging, "ravi", "919000000002", h.Assignment+1
		}, voicev1alpha1.HandoffBridged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCall()
			ringing(c, "asha", num, 10*time.Second)
			c.Status.Handoff.Assignment = 1
			if got := Apply(c, legB(piopiy.StatusHangup, num, 30*time.Second)); got != Applied {
				t.Fatalf("hangup: %s", got)
			}
			h := c.Status.Handoff
			if h.Phase != voicev1alpha1.HandoffRequested || h.Missed == nil || h.Missed.Agent != "asha" || h.Missed.Assignment != 1 {
				t.Fatalf("after the hangup: %+v", h)
			}
			if tc.meanwhile != nil {
				tc.meanwhile(h)
			}
			if got := Apply(c, tc.late); got != Applied {
				t.Fatalf("late answer: %s", got)
			}
			if h.Phase != tc.want || h.Agent != "asha" || h.Number != num || h.BridgedTime == nil || len(h.TriedAgents) != 0 || h.Missed != nil || h.Reason != "" {
				t.Fatalf("after the late answer: %+v, want %s with asha", h, tc.want)
			}
			if tc.want == voicev1alpha1.HandoffEnded && h.EndedTime == nil {
				t.Fatalf("the answered CDR says when the leg ended: %+v", h)
			}
			if again := Apply(c, tc.late); again != Duplicate {
				t.Fatalf("repeat: %s", again)
			}
		})
	}
}
