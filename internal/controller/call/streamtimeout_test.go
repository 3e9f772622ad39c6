package call

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

func TestStreamConnectTimeout(t *testing.T) {
	answered := t0.Add(2 * time.Second)
	cases := []struct {
		name   string
		edit   func(*voicev1alpha1.Call)
		at     time.Time
		hangup bool
	}{
		{"before the timeout", nil, answered.Add(9 * time.Second), false},
		{"at the timeout", nil, answered.Add(10 * time.Second), true},
		{"long after, never connected", nil, answered.Add(time.Minute), true},
		{"the default timeout (10s) when unset", func(c *voicev1alpha1.Call) { c.Spec.Stream.ConnectTimeoutSeconds = 0 }, answered.Add(10 * time.Second), true},
		{"a longer timeout", func(c *voicev1alpha1.Call) { c.Spec.Stream.ConnectTimeoutSeconds = 30 }, answered.Add(20 * time.Second), false},
		{"connected once", func(c *voicev1alpha1.Call) {
			at := metav1.NewTime(answered.Add(time.Second))
			c.Status.Stream = &voicev1alpha1.CallStreamStatus{State: voicev1alpha1.StreamPhaseDisconnected, ConnectedTime: &at}
		}, answered.Add(time.Minute), false},
		{"failed to connect (Piopiy's 1006, no connectedTime)", func(c *voicev1alpha1.Call) {
			c.Status.Stream = &voicev1alpha1.CallStreamStatus{State: voicev1alpha1.StreamPhaseDisconnected, CloseCode: 1006, Reason: "Abnormal closure"}
		}, answered.Add(10 * time.Second), true},
		{"a handoff under way", func(c *voicev1alpha1.Call) {
			c.Status.Handoff = &voicev1alpha1.CallHandoffStatus{Phase: voicev1alpha1.HandoffRinging}
		}, answered.Add(time.Minute), false},
		{"not answered", func(c *voicev1alpha1.Call) { c.Status.Attempts[0].AnswerTime = nil }, answered.Add(10 * time.Second), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			call := answeredCall()
			if tc.edit != nil {
				tc.edit(call)
			}
			f := newFixture(t, call, tc.at)
			res, got := f.reconcile(t)
			sent := f.api.sent()
			cond := meta.FindStatusCondition(got.Status.Conditions, voicev1alpha1.ConditionStreamConnected)
			if !tc.hangup {
				if len(sent) != 0 || got.Status.Attempts[0].HangupRequestedTime != nil || cond != nil {
					t.Fatalf("hung up: actions %v, attempt %+v, condition %+v", sent, got.Status.Attempts[0], cond)
				}
				if due, ok := streamConnectDeadline(got, &got.Status.Attempts[0]); ok && res.RequeueAfter > due.Sub(tc.at)+time.Second {
					t.Fatalf("requeue in %s, past the connect deadline %s", res.RequeueAfter, due)
				}
				return
			}
			if len(sent) != 1 || sent[0] != "hangup leg-a" {
				t.Fatalf("actions %v, want one hangup of leg a", sent)
			}
			if h := got.Status.Attempts[0].HangupRequestedTime; h == nil || !h.Time.Equal(tc.at) {
				t.Fatalf("hangupRequestedTime %v, want %v", h, tc.at)
			}
			if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != voicev1alpha1.ReasonStreamConnectTimeout ||
				!strings.Contains(cond.Message, "did not connect within connectTimeoutSeconds") || cond.ObservedGeneration != 1 {
				t.Fatalf("condition %+v", cond)
			}
			evs := strings.Join(f.events(), "\n")
			if !strings.Contains(evs, voicev1alpha1.ReasonStreamConnectTimeout) {
				t.Fatalf("events %q", evs)
			}
			// The next pass does not hang up again.
			f.now = f.now.Add(5 * time.Second)
			f.reconcile(t)
			if n := len(f.api.sent()); n != 1 {
				t.Fatalf("%d hangups after a second pass", n)
			}
		})
	}
}
