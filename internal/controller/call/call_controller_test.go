package call_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/callfleet/callfleet/test/harness"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/sim"
)

func TestCallOutcomes(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	retry3 := func(c *voicev1alpha1.Call) {
		c.Spec.Retry = voicev1alpha1.RetryPolicy{MaxAttempts: 3, BackoffSeconds: 1, MaxBackoffSeconds: 2,
			Outcomes: []voicev1alpha1.CallOutcome{voicev1alpha1.OutcomeBusy, voicev1alpha1.OutcomeNoAnswer}}
	}
	cases := []struct {
		name         string
		behaviour    sim.Behaviour
		mutate       func(*voicev1alpha1.Call)
		wantPhase    voicev1alpha1.CallPhase
		wantOutcome  voicev1alpha1.CallOutcome
		wantAttempts int
	}{
		{"answered then hung up", sim.Behaviour{Outcome: sim.OutcomeAnswer, AnswerDelay: 100 * time.Millisecond, HangupAfter: 500 * time.Millisecond}, nil, voicev1alpha1.CallCompleted, voicev1alpha1.OutcomeAnswered, 1},
		{"busy", sim.Behaviour{Outcome: sim.OutcomeBusy, AnswerDelay: 100 * time.Millisecond}, nil, voicev1alpha1.CallFailed, voicev1alpha1.OutcomeBusy, 1},
		{"busy with retries", sim.Behaviour{Outcome: sim.OutcomeBusy, AnswerDelay: 100 * time.Millisecond}, retry3, voicev1alpha1.CallFailed, voicev1alpha1.OutcomeBusy, 3},
		{"no answer: Piopiy gives up at the ring timeout", sim.Behaviour{Outcome: sim.OutcomeNoAnswer, RingTimeout: 5 * time.Second}, nil, voicev1alpha1.CallFailed, voicev1alpha1.OutcomeNoAnswer, 1},
		{"no answer: callfleet hangs up at ringTimeoutSeconds", sim.Behaviour{Outcome: sim.OutcomeNoAnswer, RingTimeout: 2 * time.Minute}, nil, voicev1alpha1.CallFailed, voicev1alpha1.OutcomeNoAnswer, 1},
		{"no answer with retries", sim.Behaviour{Outcome: sim.OutcomeNoAnswer, RingTimeout: 5 * time.Second}, func(c *voicev1alpha1.Call) {
			retry3(c)
			c.Spec.Retry.MaxAttempts = 2
		}, voicev1alpha1.CallFailed, voicev1alpha1.OutcomeNoAnswer, 2},
		{"rejected", sim.Behaviour{Outcome: sim.OutcomeReject, AnswerDelay: 300 * time.Millisecond}, nil, voicev1alpha1.CallFailed, voicev1alpha1.OutcomeRejected, 1},
		{"rejected is not retried by default policy", sim.Behaviour{Outcome: sim.OutcomeReject, AnswerDelay: 300 * time.Millisecond}, retry3, voicev1alpha1.CallFailed, voicev1alpha1.OutcomeRejected, 1},
		// Piopiy reports a voicemail box as an answered call; the bot's
		// report (status.stream.voicemailTime, written by the gateway,
		// played here by reportVoicemail) makes it Voicemail.
		{"voicemail", sim.Behaviour{Outcome: sim.OutcomeVoicemail, AnswerDelay: 100 * time.Millisecond}, nil, voicev1alpha1.CallCompleted, voicev1alpha1.OutcomeVoicemail, 1},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			to := newNumber()
			setBehaviour(map[string]sim.Behaviour{to: tc.behaviour}, nil)
			name := fmt.Sprintf("c%d", i)
			var mut []func(*voicev1alpha1.Call)
			if tc.mutate != nil {
				mut = append(mut, tc.mutate)
			}
			if err := k8s.Create(context.Background(), newCall(ns, name, to, mut...)); err != nil {
				t.Fatal(err)
			}
			if tc.behaviour.Outcome == sim.OutcomeVoicemail {
				reportVoicemail(t, ns, name)
			}
			c := waitForPhase(t, ns, name, 90*time.Second, voicev1alpha1.CallCompleted, voicev1alpha1.CallFailed)
			if c.Status.Phase != tc.wantPhase {
				t.Fatalf("phase = %s, want %s; status %s", c.Status.Phase, tc.wantPhase, describe(c))
			}
			if len(c.Status.Attempts) != tc.wantAttempts {
				t.Fatalf("attempts = %d, want %d; status %s", len(c.Status.Attempts), tc.wantAttempts, describe(c))
			}
			last := c.Status.Attempts[len(c.Status.Attempts)-1]
			if last.Outcome != tc.wantOutcome {
				t.Fatalf("outcome = %s, want %s; status %s", last.Outcome, tc.wantOutcome, describe(c))
			}
			// The sim dialed once per attempt, each with the attempt's own id.
			recs := simCalls(to)
			if len(recs) != tc.wantAttempts {
				t.Fatalf("sim dialed %s %d times, want %d", to, len(recs), tc.wantAttempts)
			}
			seen := map[string]bool{}
			for _, r := range recs {
				id := attemptOf(r)
				if seen[id] {
					t.Fatalf("attempt %s dialed twice", id)
				}
				seen[id] = true
			}
			for _, a := range c.Status.Attempts {
				if !seen[a.ID] || a.RequestID == "" || a.State != voicev1alpha1.AttemptEnded {
					t.Fatalf("attempt %+v not matched to a sim call", a)
				}
			}
			ready := condition(c, voicev1alpha1.ConditionReady)
			if ready == nil || ready.ObservedGeneration != c.Generation {
				t.Fatalf("Ready condition missing or stale: %+v", ready)
			}
			if (tc.wantPhase == voicev1alpha1.CallCompleted) != (ready.Status == metav1.ConditionTrue) {
				t.Fatalf("Ready = %s for phase %s", ready.Status, c.Status.Phase)
			}
		})
	}
}

func TestHangupTrueEndsLiveCall(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	to := newNumber()
	setBehaviour(map[string]sim.Behaviour{to: {Outcome: sim.OutcomeAnswer, AnswerDelay: 100 * time.Millisecond}}, nil)
	if err := k8s.Create(context.Background(), newCall(ns, "live", to)); err != nil {
		t.Fatal(err)
	}
	waitForPhase(t, ns, "live", 30*time.Second, voicev1alpha1.CallInProgress)
	updateSpec(t, ns, "live", func(c *voicev1alpha1.Call) { c.Spec.Hangup = true })
	c := waitForPhase(t, ns, "live", 30*time.Second, voicev1alpha1.CallCompleted)
	if c.Status.Attempts[0].HangupRequestedTime == nil {
		t.Fatalf("no hangup recorded: %s", describe(c))
	}
	recs := simCalls(to)
	if len(recs) != 1 || len(recs[0].Actions) != 1 || recs[0].Actions[0].Action != "hangup" || recs[0].HangupCause != "api" {
		t.Fatalf("sim did not see exactly one API hangup: %+v", recs)
	}
}

func TestDeleteDuringLiveCallHangsUp(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	to := newNumber()
	setBehaviour(map[string]sim.Behaviour{to: {Outcome: sim.OutcomeAnswer, AnswerDelay: 100 * time.Millisecond}}, nil)
	ctx := context.Background()
	if err := k8s.Create(ctx, newCall(ns, "bye", to)); err != nil {
		t.Fatal(err)
	}
	c := waitForPhase(t, ns, "bye", 30*time.Second, voicev1alpha1.CallInProgress)
	if err := k8s.Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "Call deleted", 30*time.Second, func() (bool, string) {
		err := k8s.Get(ctx, clientKey(ns, "bye"), &voicev1alpha1.Call{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	harness.WaitFor(t, "sim call ended by API hangup", 10*time.Second, func() (bool, string) {
		recs := simCalls(to)
		return len(recs) == 1 && recs[0].State == "ended" && recs[0].HangupCause == "api", fmt.Sprintf("%+v", recs)
	})
}

func TestCallWaitsForStreamEndpoint(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	to := newNumber()
	setBehaviour(map[string]sim.Behaviour{to: {Outcome: sim.OutcomeAnswer, AnswerDelay: 100 * time.Millisecond, HangupAfter: 300 * time.Millisecond}}, nil)
	if err := k8s.Create(ctx, newCall(ns, "waiting", to, func(c *voicev1alpha1.Call) {
		c.Spec.Stream.URL = ""
		c.Spec.StreamEndpointRef = &voicev1alpha1.LocalRef{Name: "bots"}
	})); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "EndpointReady=False EndpointNotFound", 20*time.Second, func() (bool, string) {
		c := getCall(t, ns, "waiting")
		cond := condition(c, "EndpointReady")
		return cond != nil && cond.Reason == "EndpointNotFound", describe(c)
	})
	ep := &voicev1alpha1.StreamEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bots"}}
	ep.Spec.External = &voicev1alpha1.ExternalEndpoint{HealthURL: "http://127.0.0.1:1/healthz"}
	ep.Spec.PublicURL = streamSink
	if err := k8s.Create(ctx, ep); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "EndpointReady=False EndpointNotReady", 20*time.Second, func() (bool, string) {
		c := getCall(t, ns, "waiting")
		cond := condition(c, "EndpointReady")
		return cond != nil && cond.Reason == "EndpointNotReady", describe(c)
	})
	if n := len(simCalls(to)); n != 0 {
		t.Fatalf("dialed %d times while the endpoint was not Ready", n)
	}
	// Play the StreamEndpoint controller's part: mark it Ready.
	ep.Status.URL = streamSink
	ep.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Healthy", LastTransitionTime: metav1.Now()}}
	if err := k8s.Status().Update(ctx, ep); err != nil {
		t.Fatal(err)
	}
	c := waitForPhase(t, ns, "waiting", 30*time.Second, voicev1alpha1.CallCompleted)
	if c.Status.StreamURL == "" || len(simCalls(to)) != 1 {
		t.Fatalf("want one dial with a stream URL: %s", describe(c))
	}
	ws := simCalls(to)[0].Streams
	if len(ws) == 0 || !containsAll(ws[0].WSURL, "/s/", "token=", "call="+ns+"%2Fwaiting", "attempt=1") {
		t.Fatalf("ws_url lacks the Call's identity and token: %+v", ws)
	}
}

func TestMissingAccountSecretStallsWithoutDialing(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	to := newNumber()
	if err := k8s.Create(ctx, newCall(ns, "noacct", to, func(c *voicev1alpha1.Call) {
		c.Spec.AccountRef = &voicev1alpha1.SecretRef{Name: "missing"}
	})); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "Stalled with SecretNotFound", 20*time.Second, func() (bool, string) {
		c := getCall(t, ns, "noacct")
		acct, stalled := condition(c, "AccountResolved"), condition(c, voicev1alpha1.ConditionStalled)
		return acct != nil && acct.Reason == "SecretNotFound" && stalled != nil && stalled.Status == metav1.ConditionTrue, describe(c)
	})
	if n := len(simCalls(to)); n != 0 {
		t.Fatalf("dialed %d times without an account", n)
	}
	// Fixing the Secret lets the Call go on.
	setBehaviour(map[string]sim.Behaviour{to: {Outcome: sim.OutcomeAnswer, AnswerDelay: 50 * time.Millisecond, HangupAfter: 200 * time.Millisecond}}, nil)
	if err := k8s.Create(ctx, accountSecret(ns, "missing")); err != nil {
		t.Fatal(err)
	}
	waitForPhase(t, ns, "noacct", 60*time.Second, voicev1alpha1.CallCompleted)
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !contains(s, sub) {
			return false
		}
	}
	return true
}
