package call_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/test/harness"
)

const hostedAgent = "bdd32bcb-767c-40a5-be4a-5f45eeb348a6"

// newV3Call is a Call to a hosted agent on the namespace's v3 account.
func newV3Call(t *testing.T, ns, name, to string, mutate ...func(*voicev1alpha1.Call)) *voicev1alpha1.Call {
	t.Helper()
	c := &voicev1alpha1.Call{}
	c.Namespace, c.Name = ns, name
	c.Spec.To = to
	c.Spec.AccountRef = &voicev1alpha1.SecretRef{Name: "piopiy-v3"}
	c.Spec.Agent = &voicev1alpha1.CallAgent{ID: hostedAgent}
	c.Spec.RingTimeoutSeconds = 5
	c.Spec.MaxDurationSeconds = 60
	for _, m := range mutate {
		m(c)
	}
	return c
}

func v3Namespace(t *testing.T) string {
	t.Helper()
	ns := newNamespace(t)
	if err := k8s.Create(context.Background(), harness.V3AccountSecret(ns, "piopiy-v3")); err != nil {
		t.Fatal(err)
	}
	return ns
}

func simV3Calls(to string) []sim.V3CallRecord {
	var out []sim.V3CallRecord
	for _, r := range piopiySim.V3Calls() {
		if r.To == to {
			out = append(out, r)
		}
	}
	return out
}

// TestV3CallToHostedAgentCompletes: a spec.agent Call on a v3 account is
// placed once as an AI call to the hosted agent, followed by polling to its
// end, and completes Answered.
func TestV3CallToHostedAgentCompletes(t *testing.T) {
	ns := v3Namespace(t)
	to := newNumber()
	setBehaviour(map[string]sim.Behaviour{to: {Outcome: sim.OutcomeAnswer, RingDelay: 200 * time.Millisecond, AnswerDelay: 500 * time.Millisecond, HangupAfter: 2 * time.Second}}, nil)
	if err := k8s.Create(context.Background(), newV3Call(t, ns, "agent", to, func(c *voicev1alpha1.Call) {
		c.Spec.Variables = map[string]string{"customer": "Asha"}
		c.Spec.Record = true
	})); err != nil {
		t.Fatal(err)
	}
	c := waitForPhase(t, ns, "agent", 60*time.Second, voicev1alpha1.CallCompleted, voicev1alpha1.CallFailed)
	if c.Status.Phase != voicev1alpha1.CallCompleted || len(c.Status.Attempts) != 1 {
		t.Fatalf("want Completed after one attempt: %s", describe(c))
	}
	a := c.Status.Attempts[0]
	if a.Outcome != voicev1alpha1.OutcomeAnswered || a.SettledBy != "Poll" || a.CallID == "" || a.AnswerTime == nil || a.EndTime == nil {
		t.Fatalf("attempt not settled by polling as Answered: %+v", a)
	}
	recs := simV3Calls(to)
	if len(recs) != 1 {
		t.Fatalf("sim saw %d v3 calls to %s, want 1", len(recs), to)
	}
	r := recs[0]
	if r.Kind != "ai" || r.AgentID != hostedAgent || r.CallID != a.CallID || r.EndReason != sim.V3EndCompleted {
		t.Fatalf("sim record: %+v", r)
	}
	if r.Variables["callfleet_attempt"] != a.ID || r.Variables["customer"] != "Asha" {
		t.Fatalf("variables %v do not carry the attempt id %s", r.Variables, a.ID)
	}
	var body map[string]any
	_ = json.Unmarshal(r.Body, &body)
	opts, _ := body["options"].(map[string]any)
	if opts["ring_timeout_sec"] != float64(5) || opts["max_duration_sec"] != float64(60) || opts["record"] != true {
		t.Fatalf("options sent: %v", opts)
	}
	if cond := condition(c, voicev1alpha1.ConditionReady); cond == nil || cond.Status != "True" {
		t.Fatalf("Ready: %+v", cond)
	}
}

// TestV3PipelineCallRetriesNoAnswer: a pipeline Call is placed as a PCMO
// call with the account's app id; an unanswered attempt is NoAnswer (as
// inferred from polling) and retried once.
func TestV3PipelineCallRetriesNoAnswer(t *testing.T) {
	ns := v3Namespace(t)
	to := newNumber()
	setBehaviour(map[string]sim.Behaviour{to: {Outcome: sim.OutcomeNoAnswer}}, nil)
	pipeline := []runtime.RawExtension{{Raw: []byte(`{"action":"play","file_name":"offer.mp3"}`)}, {Raw: []byte(`{"action":"hangup"}`)}}
	if err := k8s.Create(context.Background(), newV3Call(t, ns, "pipe", to, func(c *voicev1alpha1.Call) {
		c.Spec.Agent = &voicev1alpha1.CallAgent{Pipeline: pipeline}
		c.Spec.Retry = voicev1alpha1.RetryPolicy{MaxAttempts: 2, BackoffSeconds: 1, MaxBackoffSeconds: 1, Outcomes: []voicev1alpha1.CallOutcome{voicev1alpha1.OutcomeNoAnswer}}
	})); err != nil {
		t.Fatal(err)
	}
	c := waitForPhase(t, ns, "pipe", 90*time.Second, voicev1alpha1.CallCompleted, voicev1alpha1.CallFailed)
	if c.Status.Phase != voicev1alpha1.CallFailed || len(c.Status.Attempts) != 2 {
		t.Fatalf("want Failed after two attempts: %s", describe(c))
	}
	for _, a := range c.Status.Attempts {
		if a.Outcome != voicev1alpha1.OutcomeNoAnswer || a.SettledBy != "Poll" {
			t.Fatalf("attempt %+v", a)
		}
	}
	recs := simV3Calls(to)
	if len(recs) != 2 || recs[0].Kind != "pcmo" || recs[0].AppID != harness.V3AppID {
		t.Fatalf("sim records: %+v", recs)
	}
}

// TestV3AmbiguousCreateNeverRedialled: a create Piopiy placed but whose
// reply was lost is never dialed again, even with retries allowed; it ends
// Failed after the settle timeout because v3 offers no way to find it.
func TestV3AmbiguousCreateNeverRedialled(t *testing.T) {
	ns := v3Namespace(t)
	to := newNumber()
	setBehaviour(map[string]sim.Behaviour{to: {Outcome: sim.OutcomeAnswer, AnswerDelay: 100 * time.Millisecond, HangupAfter: time.Second}}, nil)
	piopiySim.SetFaults(sim.Faults{RESTNumbers: map[string]sim.RESTFaults{to: {AmbiguousProb: 1, AmbiguousMode: sim.AmbiguousClose}}})
	defer piopiySim.SetFaults(sim.Faults{})
	if err := k8s.Create(context.Background(), newV3Call(t, ns, "amb", to, func(c *voicev1alpha1.Call) {
		c.Spec.Retry = voicev1alpha1.RetryPolicy{MaxAttempts: 3, BackoffSeconds: 1, MaxBackoffSeconds: 1,
			Outcomes: []voicev1alpha1.CallOutcome{voicev1alpha1.OutcomeFailed, voicev1alpha1.OutcomeNoAnswer}}
	})); err != nil {
		t.Fatal(err)
	}
	c := waitForPhase(t, ns, "amb", settleTimeout+60*time.Second, voicev1alpha1.CallCompleted, voicev1alpha1.CallFailed)
	if c.Status.Phase != voicev1alpha1.CallFailed || len(c.Status.Attempts) != 1 {
		t.Fatalf("want Failed after one attempt: %s", describe(c))
	}
	if a := c.Status.Attempts[0]; a.SettledBy != "Timeout" || a.CallID != "" {
		t.Fatalf("attempt %+v", a)
	}
	if n := len(simV3Calls(to)); n != 1 {
		t.Fatalf("the person was dialed %d times, want 1", n)
	}
}

// TestV3CallOnV2AccountStalls: spec.agent on a v2 account is refused with
// a reason, and nothing is dialed.
func TestV3CallOnV2AccountStalls(t *testing.T) {
	ns := newNamespace(t)
	to := newNumber()
	if err := k8s.Create(context.Background(), newV3Call(t, ns, "v2acct", to, func(c *voicev1alpha1.Call) { c.Spec.AccountRef = nil })); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "Stalled NeedsV3Account", 30*time.Second, func() (bool, string) {
		c := getCall(t, ns, "v2acct")
		cond := condition(c, voicev1alpha1.ConditionStalled)
		return cond != nil && cond.Status == "True" && cond.Reason == "NeedsV3Account", describe(c)
	})
	if n := len(simV3Calls(to)) + len(simCalls(to)); n != 0 {
		t.Fatalf("%d calls dialed", n)
	}
}
