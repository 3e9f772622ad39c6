package agentpool_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"k8s.io/client-go/util/retry"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/controller/agentpool"
	"github.com/callfleet/callfleet/internal/controller/agentpool/handofftest"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/test/harness"
)

// TestV3HandoffTriesNextAgentOnNoAnswer hands a spec.agent (Piopiy v3) Call
// to an AgentPool: the reservation is carried out as a warm transfer with
// the agent's number, the pool's ring timeout and hold audio and the Call's
// result summary; the first agent does not answer (transfer failed
// no_answer), so the next one is tried, answers, and the call completes.
func TestV3HandoffTriesNextAgentOnNoAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secret := harness.V3AccountSecret(env.Namespace, "piopiy-v3-handoff")
	create(t, secret)
	pool := env.NewPool("v3-next", 2, func(p *voicev1alpha1.AgentPool) {
		p.Spec.Strategy = agentpool.StrategyPriority
		p.Spec.Agents[0].Priority = 10
		p.Spec.Queue.HoldAudioURL = "https://example.com/hold.mp3"
	})
	first, second := pool.Spec.Agents[0].Number, pool.Spec.Agents[1].Number
	to := handofftest.Number("9174")
	env.SetScenario(map[string]sim.Behaviour{to: {Outcome: sim.OutcomeAnswer, AnswerDelay: 100 * time.Millisecond}},
		map[string]sim.AgentBehaviour{first: {NoAnswer: true}, second: {AnswerDelay: 300 * time.Millisecond, TalkFor: 2 * time.Second}})
	create(t, pool)

	c := env.NewCall("v3-next-1", pool.Name, func(c *voicev1alpha1.Call) {
		c.Spec.To = to
		c.Spec.StreamEndpointRef = nil
		c.Spec.Stream = voicev1alpha1.CallStream{}
		c.Spec.AccountRef = &voicev1alpha1.SecretRef{Name: secret.Name}
		c.Spec.Agent = &voicev1alpha1.CallAgent{ID: "bdd32bcb-767c-40a5-be4a-5f45eeb348a6"}
		c.Spec.RingTimeoutSeconds = 20
	})
	create(t, c)
	waitCall(t, c.Name, "answered", func(c *voicev1alpha1.Call) bool { return c.Status.Phase == voicev1alpha1.CallInProgress })
	// What the results work records: the summary the agent is read.
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur, err := env.Call(ctx, c.Name)
		if err != nil {
			return err
		}
		cur.Status.Result = &voicev1alpha1.CallResult{Disposition: "Interested", Summary: "wants the annual plan"}
		return env.K8s.Status().Update(ctx, cur)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.UpdateSpec(ctx, c.Name, func(c *voicev1alpha1.Call) { c.Spec.Handoff.Requested = true }); err != nil {
		t.Fatal(err)
	}
	cur := waitCall(t, c.Name, "handoff Bridged to the second agent", func(c *voicev1alpha1.Call) bool {
		return phase(c) == voicev1alpha1.HandoffBridged
	})
	h := cur.Status.Handoff
	if h.Agent != "agent-1" || h.Number != second || len(h.TriedAgents) != 1 || h.TriedAgents[0] != "agent-0" || h.TransferRequestID == "" || h.BridgedTime == nil {
		t.Fatalf("handoff status %+v", h)
	}
	var rec sim.V3CallRecord
	for _, r := range env.Sim.V3Calls() {
		if r.To == to {
			rec = r
		}
	}
	if len(rec.Transfers) != 2 {
		t.Fatalf("sim saw transfers %+v, want two", rec.Transfers)
	}
	if tr := rec.Transfers[0]; tr.Target != first || tr.Status != "failed" || tr.Reason != "no_answer" {
		t.Errorf("first transfer %+v, want failed no_answer to %s", tr, first)
	}
	tr := rec.Transfers[1]
	if tr.Target != second || tr.Status != "completed" || tr.RequestID != h.TransferRequestID {
		t.Errorf("second transfer %+v, want completed to %s", tr, second)
	}
	var body map[string]any
	_ = json.Unmarshal(tr.Body, &body)
	if body["timeout_sec"] != float64(5) || body["hold_audio"] != "https://example.com/hold.mp3" ||
		body["transfer_summary"] != "wants the annual plan" || body["caller_id"] != harness.CallerID {
		t.Errorf("transfer body %s", tr.Body)
	}

	// The agent hangs up after 2s; the call ends Completed, the handoff
	// Ended, and both agents are free again.
	done := waitCall(t, c.Name, "call Completed and handoff Ended", func(c *voicev1alpha1.Call) bool {
		return c.Status.Phase == voicev1alpha1.CallCompleted && phase(c) == voicev1alpha1.HandoffEnded
	})
	if a := done.Status.Attempts[0]; a.Outcome != voicev1alpha1.OutcomeAnswered || len(done.Status.Attempts) != 1 {
		t.Errorf("attempts %+v", done.Status.Attempts)
	}
	waitPool(t, pool.Name, "agents released", func(p *voicev1alpha1.AgentPool) bool { return reservations(p) == 0 })
}
