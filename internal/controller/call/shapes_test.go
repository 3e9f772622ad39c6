package call_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/test/harness"
)

// The sim sends the documented thin stream events (leg b, no request id):
// only the receiver's leg-id lookup can bring them to status.stream, since
// the stream sink here is not the gateway and reports nothing.
func TestDocumentedStreamEventsMoveStatusStream(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	to := newNumber()
	setBehaviour(map[string]sim.Behaviour{to: {Outcome: sim.OutcomeAnswer, AnswerDelay: 100 * time.Millisecond, HangupAfter: 2 * time.Second}}, nil)
	if err := k8s.Create(context.Background(), newCall(ns, "thin", to)); err != nil {
		t.Fatal(err)
	}
	var c *voicev1alpha1.Call
	harness.WaitFor(t, "stream connected, then dropped at the call's end", 60*time.Second, func() (bool, string) {
		c = getCall(t, ns, "thin")
		s := c.Status.Stream
		return s != nil && s.ConnectedTime != nil && s.State == voicev1alpha1.StreamPhaseDisconnected, describe(c)
	})
	if s := c.Status.Stream; s.CloseCode != 1006 || s.Reason != "Abnormal closure" {
		t.Fatalf("status.stream %+v, want Piopiy's documented 1006", s)
	}
	recs := simCalls(to)
	if len(recs) != 1 || len(recs[0].Streams) != 1 || recs[0].Streams[0].CMIUUID != c.Status.Attempts[0].CMIUUID {
		t.Fatalf("sim records %+v", recs)
	}
	for _, e := range recs[0].Events {
		if e.Status == "stream_connected" && e.Leg != "b" {
			t.Fatalf("the sim sent a %s on leg %s; the documented event is on leg b", e.Status, e.Leg)
		}
	}
}

// A stream Piopiy cannot open leaves the person in silence: after
// connectTimeoutSeconds from the answer callfleet hangs up and says why.
func TestStreamThatNeverConnectsIsHungUp(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	to := newNumber()
	// Answers and would stay on the line for ever.
	setBehaviour(map[string]sim.Behaviour{to: {Outcome: sim.OutcomeAnswer, AnswerDelay: 100 * time.Millisecond}}, nil)
	call := newCall(ns, "silent", to, func(c *voicev1alpha1.Call) {
		c.Spec.Stream.URL = "ws://127.0.0.1:1/nobody-listens"
		c.Spec.Stream.ConnectTimeoutSeconds = 1
	})
	if err := k8s.Create(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	c := waitForPhase(t, ns, "silent", 60*time.Second, voicev1alpha1.CallCompleted, voicev1alpha1.CallFailed)
	a := c.Status.Attempts[0]
	if a.HangupRequestedTime == nil || a.AnswerTime == nil {
		t.Fatalf("attempt %+v", a)
	}
	cond := condition(c, voicev1alpha1.ConditionStreamConnected)
	if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != voicev1alpha1.ReasonStreamConnectTimeout || !contains(cond.Message, "connectTimeoutSeconds (1s)") {
		t.Fatalf("condition %+v", cond)
	}
	// Piopiy's STREAM_DISCONNECTED for the failed dial reached status.stream
	// too, without a connectedTime.
	if s := c.Status.Stream; s == nil || s.ConnectedTime != nil || s.CloseCode != 1006 {
		t.Fatalf("status.stream %+v", s)
	}
	harness.WaitFor(t, "the sim saw callfleet's hangup", 30*time.Second, func() (bool, string) {
		recs := simCalls(to)
		return len(recs) == 1 && recs[0].HangupCause == "api" && len(recs[0].Actions) == 1 && recs[0].Actions[0].Action == "hangup", fmt.Sprintf("%+v", recs)
	})
}
