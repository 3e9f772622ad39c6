package handoff

import (
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

var t0 = time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)

func liveCall(onNoAgent string) *voicev1alpha1.Call {
	c := &voicev1alpha1.Call{}
	c.Name, c.Namespace = "c", "ns"
	at := metav1.NewTime(t0)
	c.Status.Attempts = []voicev1alpha1.CallAttempt{{Number: 1, State: voicev1alpha1.AttemptDialed, AnswerTime: &at, CMIUUID: "leg-a"}}
	c.Spec.Handoff = &voicev1alpha1.CallHandoff{AgentPoolRef: voicev1alpha1.LocalRef{Name: "pool"}, Requested: true, OnNoAgent: onNoAgent}
	return c
}

// TestEndRecordsTheOutcome: how a handoff ends is explicit state (phase,
// outcome, onNoAgent), and only outcomes where the pool had no agent for
// the Call follow spec.handoff.onNoAgent.
func TestEndRecordsTheOutcome(t *testing.T) {
	cases := []struct {
		name      string
		onNoAgent string
		outcome   voicev1alpha1.HandoffOutcome
		noAgent   bool
		phase     voicev1alpha1.HandoffPhase
		applied   string
		hangup    bool
	}{
		{"queue timed out, back to the bot", voicev1alpha1.OnNoAgentReturnToBot, voicev1alpha1.HandoffOutcomeTimedOut, true, voicev1alpha1.HandoffTimedOut, voicev1alpha1.OnNoAgentReturnToBot, false},
		{"queue timed out, hang up", voicev1alpha1.OnNoAgentHangup, voicev1alpha1.HandoffOutcomeTimedOut, true, voicev1alpha1.HandoffTimedOut, voicev1alpha1.OnNoAgentHangup, true},
		{"queue full, hang up", voicev1alpha1.OnNoAgentHangup, voicev1alpha1.HandoffOutcomeFailed, true, voicev1alpha1.HandoffFailed, voicev1alpha1.OnNoAgentHangup, true},
		{"caller hung up while queued", voicev1alpha1.OnNoAgentHangup, voicev1alpha1.HandoffOutcomeAbandoned, false, voicev1alpha1.HandoffFailed, "", false},
		{"no bridge sent", voicev1alpha1.OnNoAgentHangup, voicev1alpha1.HandoffOutcomeFailed, false, voicev1alpha1.HandoffFailed, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newScope(liveCall(tc.onNoAgent), t0)
			s.assign(voicev1alpha1.Agent{Name: "a", Number: "919000000001"})
			s.end(tc.outcome, "why", tc.noAgent)
			h := s.call.Status.Handoff
			if h.Phase != tc.phase || h.Outcome != tc.outcome || h.OnNoAgent != tc.applied || s.hangup != tc.hangup || !s.release {
				t.Fatalf("handoff %+v hangup %v release %v", h, s.hangup, s.release)
			}
			if !strings.HasPrefix(h.Reason, "why") {
				t.Fatalf("reason %q", h.Reason)
			}
			if tc.outcome == voicev1alpha1.HandoffOutcomeTimedOut && (h.Agent != "" || h.AgentAssignedTime != nil) {
				t.Fatalf("a timed-out handoff keeps no agent: %+v", h)
			}
		})
	}
}

// TestAssignmentCounts: each agent assignment counts, across handoffs of
// the Call, so the gateway tells bridges apart by the counter.
func TestAssignmentCounts(t *testing.T) {
	s := newScope(liveCall(""), t0)
	s.assign(voicev1alpha1.Agent{Name: "a", Number: "919000000001"})
	s.noAnswer()
	s.assign(voicev1alpha1.Agent{Name: "a", Number: "919000000001"}) // the same agent, in the same second
	if h := s.call.Status.Handoff; h.Assignment != 2 || h.Phase != voicev1alpha1.HandoffRinging || len(h.TriedAgents) != 1 {
		t.Fatalf("handoff %+v", h)
	}
	s.call.Status.Handoff.Phase = "" // a new handoff of the same Call
	s = newScope(s.call, t0.Add(time.Minute))
	s.assign(voicev1alpha1.Agent{Name: "b", Number: "919000000002"})
	if h := s.call.Status.Handoff; h.Assignment != 3 || len(h.TriedAgents) != 0 || h.Source != voicev1alpha1.HandoffSourceSpec {
		t.Fatalf("new handoff %+v", h)
	}
}

// TestWrittenDerivesEventsAndMetrics: Events and the outcome metric come
// from comparing the status before and after a pass's write, once each.
func TestWrittenDerivesEventsAndMetrics(t *testing.T) {
	rec := events.NewFakeRecorder(20)
	r := &Reconciler{Recorder: rec}
	abandoned := counted(t, OutcomeAbandoned)

	s := newScope(liveCall(""), t0) // first pass: requested and queued
	s.queued()
	r.written(s)
	s = newScope(s.call, t0.Add(time.Second)) // next pass: an agent
	s.assign(voicev1alpha1.Agent{Name: "a", Number: "919000000001"})
	r.written(s)
	s = newScope(s.call, t0.Add(2*time.Second)) // the caller hangs up
	s.end(voicev1alpha1.HandoffOutcomeAbandoned, "the call ended while agent a was ringing", false)
	r.written(s)
	s = newScope(s.call, t0.Add(3*time.Second)) // a pass that changes nothing
	r.written(s)

	var got []string
	for len(rec.Events) > 0 {
		e := <-rec.Events
		got = append(got, strings.Fields(e)[1])
	}
	want := []string{"HandoffRequested", "HandoffQueued", "AgentAssigned", "HandoffAbandoned"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", got, want)
	}
	if d := counted(t, OutcomeAbandoned) - abandoned; d != 1 {
		t.Fatalf("abandoned counted %v times, want 1", d)
	}
}

// TestGatewayBridge: the v2 bridge is the gateway's; the controller fails
// the handoff only when no stream can carry it or none was sent in time.
func TestGatewayBridge(t *testing.T) {
	g := GatewayBridge{Wait: 30 * time.Second}
	c := liveCall("")
	s := newScope(c, t0)
	s.assign(voicev1alpha1.Agent{Name: "a", Number: "919000000001"})
	c = s.call
	if p, _ := g.Bridge(t.Context(), c, nil, t0.Add(10*time.Second)); p.Failed != "" || p.CheckAfter != 20*time.Second {
		t.Fatalf("waiting: %+v", p)
	}
	if p, _ := g.Bridge(t.Context(), c, nil, t0.Add(31*time.Second)); !strings.Contains(p.Failed, "did not send the bridge") {
		t.Fatalf("late: %+v", p)
	}
	c.Status.Stream = &voicev1alpha1.CallStreamStatus{State: voicev1alpha1.StreamPhaseStopped}
	if p, _ := g.Bridge(t.Context(), c, nil, t0); !strings.Contains(p.Failed, "no live stream") {
		t.Fatalf("stopped stream: %+v", p)
	}
}

func counted(t *testing.T, outcome string) float64 {
	t.Helper()
	var m dto.Metric
	if err := Handoffs.WithLabelValues(outcome).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
