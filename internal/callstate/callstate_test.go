package callstate

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

var t0 = time.Unix(1_800_000_000, 0)

func newCall() *voicev1alpha1.Call {
	c := &voicev1alpha1.Call{}
	c.UID = "uid"
	c.Spec.RingTimeoutSeconds = 30
	c.Status.Phase = voicev1alpha1.CallDialing
	c.Status.Attempts = []voicev1alpha1.CallAttempt{{Number: 1, ID: "uid.1", State: voicev1alpha1.AttemptDialed, RequestID: "req1", IntentTime: metav1.NewTime(t0)}}
	return c
}

func event(status piopiy.EventStatus, at time.Duration) *piopiy.Webhook {
	return &piopiy.Webhook{Kind: piopiy.KindEvent, Event: &piopiy.Event{Status: status, Leg: piopiy.LegA, RequestID: "req1", CMIUUID: "leg-a", Time: t0.Add(at)}}
}

func cdr(status piopiy.CDRStatus, start, answer, end time.Duration) *piopiy.Webhook {
	c := &piopiy.CDR{Status: status, Leg: piopiy.LegA, RequestID: "req1", CMIUUID: "leg-a", StartTime: t0.Add(start), EndTime: t0.Add(end)}
	if answer > 0 {
		c.AnswerTime = t0.Add(answer)
	}
	return &piopiy.Webhook{Kind: piopiy.KindCDR, CDR: c}
}

func TestApplyIsIdempotentAndNeverMovesBackwards(t *testing.T) {
	c := newCall()
	steps := []struct {
		name      string
		wh        *piopiy.Webhook
		want      Result
		wantPhase voicev1alpha1.CallPhase
	}{
		{"started", event(piopiy.StatusStarted, 0), Applied, voicev1alpha1.CallDialing},
		{"ringing", event(piopiy.StatusRinging, time.Second), Applied, voicev1alpha1.CallRinging},
		{"answered", event(piopiy.StatusOutAnswered, 3*time.Second), Applied, voicev1alpha1.CallInProgress},
		{"answered again (duplicate)", event(piopiy.StatusOutAnswered, 3*time.Second), Duplicate, voicev1alpha1.CallInProgress},
		{"late ringing (reordered)", event(piopiy.StatusRinging, time.Second), Duplicate, voicev1alpha1.CallInProgress},
		{"hangup", event(piopiy.StatusHangup, 9*time.Second), Applied, voicev1alpha1.CallInProgress},
		{"cdr", cdr(piopiy.CDRAnswered, 0, 3*time.Second, 9*time.Second), Applied, voicev1alpha1.CallInProgress},
		{"cdr again", cdr(piopiy.CDRAnswered, 0, 3*time.Second, 9*time.Second), Duplicate, voicev1alpha1.CallInProgress},
		{"missed cdr after answered one", cdr(piopiy.CDRMissed, 0, 0, 9*time.Second), Duplicate, voicev1alpha1.CallInProgress},
	}
	for _, s := range steps {
		if got := Apply(c, s.wh); got != s.want {
			t.Fatalf("%s: result %s, want %s", s.name, got, s.want)
		}
		if c.Status.Phase != s.wantPhase {
			t.Fatalf("%s: phase %s, want %s", s.name, c.Status.Phase, s.wantPhase)
		}
	}
	a := c.Status.Attempts[0]
	if a.State != voicev1alpha1.AttemptEnded || a.Outcome != voicev1alpha1.OutcomeAnswered || a.SettledBy != SettledByWebhook {
		t.Fatalf("attempt not ended as answered: %+v", a)
	}
}

func TestApplySettlesAmbiguousAttemptByAttemptID(t *testing.T) {
	c := newCall()
	c.Status.Attempts[0].State = voicev1alpha1.AttemptUnknown
	c.Status.Attempts[0].RequestID = ""
	wh := event(piopiy.StatusRinging, time.Second)
	wh.Event.RequestID = "req-from-piopiy"
	wh.Event.ExtraParams = map[string]string{ExtraAttempt: "uid.1"}
	if got := Apply(c, wh); got != Applied {
		t.Fatalf("result %s", got)
	}
	a := c.Status.Attempts[0]
	if a.State != voicev1alpha1.AttemptDialed || a.RequestID != "req-from-piopiy" || a.RingTime == nil {
		t.Fatalf("ambiguous attempt not settled as placed: %+v", a)
	}
}

func TestApplyIgnoresOtherCalls(t *testing.T) {
	c := newCall()
	wh := event(piopiy.StatusRinging, 0)
	wh.Event.RequestID = "someone-else"
	if got := Apply(c, wh); got != Unmatched {
		t.Fatalf("result %s, want %s", got, Unmatched)
	}
}

func TestLateEventOfOldAttemptLeavesPhase(t *testing.T) {
	c := newCall()
	c.Status.Attempts[0].State = voicev1alpha1.AttemptEnded
	c.Status.Attempts = append(c.Status.Attempts, voicev1alpha1.CallAttempt{Number: 2, ID: "uid.2", State: voicev1alpha1.AttemptDialed, RequestID: "req2"})
	c.Status.Phase = voicev1alpha1.CallDialing
	Apply(c, event(piopiy.StatusOutAnswered, time.Second)) // for req1
	if c.Status.Phase != voicev1alpha1.CallDialing {
		t.Fatalf("old attempt's event moved the phase to %s", c.Status.Phase)
	}
	if c.Status.Attempts[0].AnswerTime == nil {
		t.Fatal("old attempt's record not filled in")
	}
}

func TestMissedOutcomes(t *testing.T) {
	cases := []struct {
		name   string
		ringAt time.Duration // <0: never rang
		end    time.Duration
		hangup bool // callfleet hung up for the ring timeout
		spec   bool // spec.hangup set
		want   voicev1alpha1.CallOutcome
	}{
		{"never rang", -1, 2 * time.Second, false, false, voicev1alpha1.OutcomeBusy},
		{"rang until the ring timeout", time.Second, 31 * time.Second, false, false, voicev1alpha1.OutcomeNoAnswer},
		{"rang briefly", time.Second, 5 * time.Second, false, false, voicev1alpha1.OutcomeRejected},
		{"callfleet hung up at ring timeout", time.Second, 36 * time.Second, true, false, voicev1alpha1.OutcomeNoAnswer},
		{"user hung up while ringing", time.Second, 5 * time.Second, true, true, voicev1alpha1.OutcomeCanceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCall()
			c.Spec.Hangup = tc.spec
			if tc.ringAt >= 0 {
				Apply(c, event(piopiy.StatusRinging, tc.ringAt))
			}
			if tc.hangup {
				now := metav1.NewTime(t0.Add(tc.end - time.Second))
				c.Status.Attempts[0].HangupRequestedTime = &now
			}
			Apply(c, cdr(piopiy.CDRMissed, 0, 0, tc.end))
			if got := c.Status.Attempts[0].Outcome; got != tc.want {
				t.Fatalf("outcome %s, want %s", got, tc.want)
			}
		})
	}
}

func TestStreamEventsOnlyFillGaps(t *testing.T) {
	c := newCall()
	c.Status.Stream = &voicev1alpha1.CallStreamStatus{State: voicev1alpha1.StreamPhasePaused}
	Apply(c, event(piopiy.StatusStreamConnected, time.Second))
	if c.Status.Stream.State != voicev1alpha1.StreamPhasePaused {
		t.Fatalf("Piopiy's stream_connected overwrote the gateway's Paused: %s", c.Status.Stream.State)
	}
	wh := event(piopiy.StatusStreamDisconnected, 5*time.Second)
	wh.Event.WSStatus = &piopiy.WSStatus{Status: "disconnected", Code: 1006, Reason: "Abnormal closure"}
	Apply(c, wh)
	s := c.Status.Stream
	if s.State != voicev1alpha1.StreamPhaseDisconnected || s.CloseCode != 1006 || s.Reason != "Abnormal closure" {
		t.Fatalf("disconnect not recorded: %+v", s)
	}
}

func ringing(c *voicev1alpha1.Call, agent, number string, assignedAt time.Duration) {
	at := metav1.NewTime(t0.Add(assignedAt))
	c.Status.Phase = voicev1alpha1.CallInProgress
	c.Status.Attempts[0].AnswerTime = &at
	c.Status.Handoff = &voicev1alpha1.CallHandoffStatus{
		Phase: voicev1alpha1.HandoffRinging, Agent: agent, Number: number, Source: "Bot",
		AgentAssignedTime: &at, BridgeSentTime: &at,
	}
}

func legB(status piopiy.EventStatus, number string, at time.Duration) *piopiy.Webhook {
	wh := event(status, at)
	wh.Event.Leg = piopiy.LegB
	wh.Event.CMIUUID = "leg-b"
	wh.Event.To = piopiy.Number(number)
	return wh
}

func TestAgentLegBridgesAndEnds(t *testing.T) {
	c := newCall()
	ringing(c, "asha", "919000000001", 10*time.Second)
	if got := Apply(c, legB(piopiy.StatusOutBridged, "919000000001", 12*time.Second)); got != Applied {
		t.Fatalf("out_bridged: %s", got)
	}
	h := c.Status.Handoff
	if h.Phase != voicev1alpha1.HandoffBridged || h.BridgedTime == nil || c.Status.Phase != voicev1alpha1.CallHandedOff {
		t.Fatalf("not bridged: %+v, call %s", h, c.Status.Phase)
	}
	if got := Apply(c, legB(piopiy.StatusOutBridged, "919000000001", 12*time.Second)); got != Duplicate {
		t.Fatalf("repeated out_bridged: %s", got)
	}
	Apply(c, legB(piopiy.StatusHangup, "919000000001", 40*time.Second))
	if h.Phase != voicev1alpha1.HandoffEnded || h.EndedTime == nil || len(h.TriedAgents) != 0 {
		t.Fatalf("not ended: %+v", h)
	}
}

func TestAgentLegEndingWhileRingingIsANoAnswer(t *testing.T) {
	for _, tc := range []struct {
		name string
		wh   func() *piopiy.Webhook
	}{
		{"hangup event", func() *piopiy.Webhook { return legB(piopiy.StatusHangup, "919000000001", 30*time.Second) }},
		{"missed CDR", func() *piopiy.Webhook {
			wh := cdr(piopiy.CDRMissed, 10*time.Second, 0, 30*time.Second)
			wh.CDR.Leg, wh.CDR.CMIUUID, wh.CDR.To = piopiy.LegB, "leg-b", piopiy.Number("919000000001")
			return wh
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCall()
			ringing(c, "asha", "919000000001", 10*time.Second)
			if got := Apply(c, tc.wh()); got != Applied {
				t.Fatalf("result %s", got)
			}
			h := c.Status.Handoff
			if h.Phase != voicev1alpha1.HandoffRequested || h.Agent != "" || h.Number != "" || h.AgentAssignedTime != nil ||
				h.BridgeSentTime != nil || len(h.TriedAgents) != 1 || h.TriedAgents[0] != "asha" || h.Source != "Bot" {
				t.Fatalf("handoff after the agent's miss: %+v", h)
			}
			if c.Status.Phase != voicev1alpha1.CallInProgress {
				t.Fatalf("call phase %s", c.Status.Phase)
			}
			// Repeats find no agent ringing: nothing more changes.
			if got := Apply(c, tc.wh()); got != Duplicate {
				t.Fatalf("repeat: %s", got)
			}
		})
	}
}

func TestAgentLegEventsOfAnEarlierAssignmentAreIgnored(t *testing.T) {
	c := newCall()
	ringing(c, "asha", "919000000001", 60*time.Second)
	for _, wh := range []*piopiy.Webhook{
		legB(piopiy.StatusHangup, "919000000001", 30*time.Second),     // before this assignment
		legB(piopiy.StatusOutBridged, "919000000001", 20*time.Second), // idem
		legB(piopiy.StatusHangup, "919000000002", 70*time.Second),     // another agent's leg
	} {
		Apply(c, wh)
	}
	if h := c.Status.Handoff; h.Phase != voicev1alpha1.HandoffRinging || h.Agent != "asha" || len(h.TriedAgents) != 0 {
		t.Fatalf("stale leg-b events moved the handoff: %+v", h)
	}
}
