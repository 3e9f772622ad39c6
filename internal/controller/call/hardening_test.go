package call_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/test/harness"
)

// TestSimStateLossLeavesAnsweredCallsCompleted is issue #20 item 9: Piopiy
// loses its state while answered calls are live (no hangup event, no CDR
// webhook, no CDR to look up). The Calls must end Completed with what is
// known, flagged unsettled, and nobody may be rung again.
//
// Not parallel: the sim's Reset ends every call it holds.
func TestSimStateLossLeavesAnsweredCallsCompleted(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	const n = 5
	numbers := make([]string, n)
	behaviours := map[string]sim.Behaviour{}
	for i := range numbers {
		numbers[i] = newNumber()
		behaviours[numbers[i]] = sim.Behaviour{Outcome: sim.OutcomeAnswer, AnswerDelay: 50 * time.Millisecond} // never hangs up
	}
	setBehaviour(behaviours, nil)
	for i, to := range numbers {
		if err := k8s.Create(ctx, newCall(ns, fmt.Sprintf("lost%d", i), to, func(c *voicev1alpha1.Call) {
			c.Spec.MaxDurationSeconds = 10
			c.Spec.Retry = voicev1alpha1.RetryPolicy{MaxAttempts: 3, BackoffSeconds: 1, MaxBackoffSeconds: 1,
				Outcomes: []voicev1alpha1.CallOutcome{voicev1alpha1.OutcomeFailed, voicev1alpha1.OutcomeNoAnswer, voicev1alpha1.OutcomeBusy}}
		})); err != nil {
			t.Fatal(err)
		}
	}
	for i := range numbers {
		waitForPhase(t, ns, fmt.Sprintf("lost%d", i), 30*time.Second, voicev1alpha1.CallInProgress)
	}
	if err := piopiySim.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	for i, to := range numbers {
		c := waitForPhase(t, ns, fmt.Sprintf("lost%d", i), 2*time.Minute, voicev1alpha1.CallCompleted, voicev1alpha1.CallFailed)
		a := callstate.Current(&c.Status)
		if c.Status.Phase != voicev1alpha1.CallCompleted || len(c.Status.Attempts) != 1 || a.Outcome != voicev1alpha1.OutcomeAnswered ||
			a.SettledBy != callstate.SettledByTimeout || a.AnswerTime == nil {
			t.Fatalf("want Completed after one attempt, Answered, settled by Timeout: %s", describe(c))
		}
		if len(simCalls(to)) != 0 {
			t.Fatalf("%s was rung again after the state loss: %+v", to, simCalls(to))
		}
	}
}

// TestWrongSecretStalls is issue #20's 420 case: Piopiy refuses the
// account, so provably nothing was placed. The Call must not fail or use up
// attempts: it stalls with a clear reason and dials once the Secret is fixed.
func TestWrongSecretStalls(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	to := newNumber()
	setBehaviour(map[string]sim.Behaviour{to: {Outcome: sim.OutcomeAnswer, AnswerDelay: 50 * time.Millisecond, HangupAfter: 200 * time.Millisecond}}, nil)
	bad := accountSecret(ns, "wrong")
	bad.StringData[account.KeySecret] = "not-the-secret"
	if err := k8s.Create(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, newCall(ns, "wrong", to, func(c *voicev1alpha1.Call) {
		c.Spec.AccountRef = &voicev1alpha1.SecretRef{Name: "wrong"}
		c.Spec.Retry = voicev1alpha1.RetryPolicy{MaxAttempts: 1, Outcomes: []voicev1alpha1.CallOutcome{voicev1alpha1.OutcomeFailed}}
	})); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "Stalled with AuthenticationFailed", 30*time.Second, func() (bool, string) {
		c := getCall(t, ns, "wrong")
		stalled, acct := condition(c, voicev1alpha1.ConditionStalled), condition(c, "AccountResolved")
		return stalled != nil && stalled.Status == metav1.ConditionTrue && stalled.Reason == "AuthenticationFailed" &&
			acct != nil && acct.Status == metav1.ConditionFalse, describe(c)
	})
	c := getCall(t, ns, "wrong")
	if c.Status.Phase == voicev1alpha1.CallFailed || len(c.Status.Attempts) != 0 || len(simCalls(to)) != 0 {
		t.Fatalf("a refused account cost an attempt or failed the Call: %s", describe(c))
	}
	// The fix: the right secret. The Call dials once and completes.
	fixed := getSecret(t, ns, "wrong")
	fixed.Data[account.KeySecret] = []byte(harness.AppSecret)
	if err := k8s.Update(ctx, fixed); err != nil {
		t.Fatal(err)
	}
	c = waitForPhase(t, ns, "wrong", 90*time.Second, voicev1alpha1.CallCompleted, voicev1alpha1.CallFailed)
	if c.Status.Phase != voicev1alpha1.CallCompleted || len(c.Status.Attempts) != 1 || len(simCalls(to)) != 1 {
		t.Fatalf("want one dial and Completed after the fix: %s", describe(c))
	}
}

func getSecret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := k8s.Get(context.Background(), clientKey(ns, name), &s); err != nil {
		t.Fatal(err)
	}
	return &s
}
