package agentpool_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"k8s.io/client-go/util/retry"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/controller/agentpool"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/test/harness"
	"github.com/callfleet/callfleet/test/harness/handofftest"
)

// Handoffs of spec.agent (Piopiy v3) Calls: no gateway, no bridge PCMO and
// no webhooks; the handoff controller carries the reservation out as a
// warm transfer of the live call and follows it at /transfers/{id}.

// v3Call returns a spec.agent Call on the v3 account Secret, handing off
// to pool: no stream target, the stream controls v3 refuses left unset.
func v3Call(name, pool, to, secret string, mut ...func(*voicev1alpha1.Call)) *voicev1alpha1.Call {
	c := env.NewCall(name, pool, func(c *voicev1alpha1.Call) {
		c.Spec.To = to
		c.Spec.StreamEndpointRef = nil
		c.Spec.Stream = voicev1alpha1.CallStream{}
		c.Spec.AccountRef = &voicev1alpha1.SecretRef{Name: secret}
		c.Spec.Agent = &voicev1alpha1.CallAgent{ID: "bdd32bcb-767c-40a5-be4a-5f45eeb348a6"}
		c.Spec.RingTimeoutSeconds = 20
	})
	for _, m := range mut {
		m(c)
	}
	return c
}

// v3SimCall is the sim's record of the v3 call to number.
func v3SimCall(to string) (sim.V3CallRecord, bool) {
	var rec sim.V3CallRecord
	found := false
	for _, r := range env.Sim.V3Calls() {
		if r.To == to {
			rec, found = r, true
		}
	}
	return rec, found
}

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

	c := v3Call("v3-next-1", pool.Name, to, secret.Name)
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
	// Bridged (or already Ended: the agent talks only 2s, and a loaded box
	// may poll late); the outcome is written with the Bridged phase.
	cur := waitCall(t, c.Name, "handoff Bridged to the second agent", func(c *voicev1alpha1.Call) bool {
		return c.Status.Handoff != nil && c.Status.Handoff.Outcome == voicev1alpha1.HandoffOutcomeBridged
	})
	h := cur.Status.Handoff
	if h.Agent != "agent-1" || h.Number != second || len(h.TriedAgents) != 1 || h.TriedAgents[0] != "agent-0" ||
		h.TransferRequestID == "" || h.BridgeSentTime == nil || h.BridgedTime == nil || h.Outcome != voicev1alpha1.HandoffOutcomeBridged || h.Assignment != 2 {
		t.Fatalf("handoff status %+v", h)
	}
	rec, _ := v3SimCall(to)
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
	if vars, _ := body["variables"].(map[string]any); vars["callfleet_call"] != env.Namespace+"/"+c.Name || vars["callfleet_agent"] != "agent-1" {
		t.Errorf("transfer variables %v", body["variables"])
	}

	// The agent hangs up after 2s; the call ends Completed, the handoff
	// Ended, and both agents are free again.
	done := waitCall(t, c.Name, "call Completed and handoff Ended", func(c *voicev1alpha1.Call) bool {
		return c.Status.Phase == voicev1alpha1.CallCompleted && phase(c) == voicev1alpha1.HandoffEnded
	})
	if a := done.Status.Attempts[0]; a.Outcome != voicev1alpha1.OutcomeAnswered || len(done.Status.Attempts) != 1 {
		t.Errorf("attempts %+v", done.Status.Attempts)
	}
	if h := done.Status.Handoff; h.Outcome != voicev1alpha1.HandoffOutcomeBridged || h.EndedTime == nil {
		t.Errorf("ended handoff %+v", h)
	}
	waitPool(t, pool.Name, "agents released", func(p *voicev1alpha1.AgentPool) bool { return reservations(p) == 0 })
}

// TestV3HandoffBridged: the agent answers the first transfer, so the
// handoff is Bridged with one transfer (a second replica's pass adopts it,
// never doubles it) and the agent stays booked while they talk; hanging up
// ends the handoff and frees the agent.
func TestV3HandoffBridged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secret := harness.V3AccountSecret(env.Namespace, "piopiy-v3-bridged")
	create(t, secret)
	pool := env.NewPool("v3-bridged", 1)
	agent := pool.Spec.Agents[0].Number
	to := handofftest.Number("9174")
	env.SetScenario(map[string]sim.Behaviour{to: {Outcome: sim.OutcomeAnswer, AnswerDelay: 100 * time.Millisecond}},
		map[string]sim.AgentBehaviour{agent: {AnswerDelay: 200 * time.Millisecond}}) // talks until hung up
	create(t, pool)

	c := v3Call("v3-bridged-1", pool.Name, to, secret.Name)
	create(t, c)
	waitCall(t, c.Name, "answered", func(c *voicev1alpha1.Call) bool { return c.Status.Phase == voicev1alpha1.CallInProgress })
	if err := env.UpdateSpec(ctx, c.Name, func(c *voicev1alpha1.Call) { c.Spec.Handoff.Requested = true }); err != nil {
		t.Fatal(err)
	}
	cur := waitCall(t, c.Name, "handoff Bridged", func(c *voicev1alpha1.Call) bool { return phase(c) == voicev1alpha1.HandoffBridged })
	h := cur.Status.Handoff
	if h.Agent != "agent-0" || h.Number != agent || h.Outcome != voicev1alpha1.HandoffOutcomeBridged || len(h.TriedAgents) != 0 ||
		h.TransferRequestID == "" || h.BridgedTime == nil || h.Assignment != 1 {
		t.Fatalf("handoff status %+v", h)
	}
	rec, _ := v3SimCall(to)
	if len(rec.Transfers) != 1 || rec.Transfers[0].Target != agent || rec.Transfers[0].Status != "completed" || rec.Transfers[0].RequestID != h.TransferRequestID {
		t.Fatalf("sim saw transfers %+v, want one completed to %s", rec.Transfers, agent)
	}
	p, err := env.Pool(ctx, pool.Name)
	if err != nil {
		t.Fatal(err)
	}
	if reservations(p) != 1 {
		t.Fatalf("pool while bridged: %+v, want the agent booked", p.Status.Agents)
	}

	if err := env.UpdateSpec(ctx, c.Name, func(c *voicev1alpha1.Call) { c.Spec.Hangup = true }); err != nil {
		t.Fatal(err)
	}
	done := waitCall(t, c.Name, "call Completed and handoff Ended", func(c *voicev1alpha1.Call) bool {
		return c.Status.Phase == voicev1alpha1.CallCompleted && phase(c) == voicev1alpha1.HandoffEnded
	})
	if h := done.Status.Handoff; h.Outcome != voicev1alpha1.HandoffOutcomeBridged || h.EndedTime == nil || h.Agent != "agent-0" {
		t.Errorf("ended handoff %+v", h)
	}
	waitPool(t, pool.Name, "agent released", func(p *voicev1alpha1.AgentPool) bool { return reservations(p) == 0 })
	if rec, _ := v3SimCall(to); len(rec.Transfers) != 1 {
		t.Errorf("sim saw %d transfers, want one", len(rec.Transfers))
	}
}

// TestV3HandoffOnNoAgentHangup: a v3 Call whose pool cannot serve it and
// whose onNoAgent is Hangup is hung up with v3's hangup action.
func TestV3HandoffOnNoAgentHangup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secret := harness.V3AccountSecret(env.Namespace, "piopiy-v3-noagent")
	create(t, secret)
	pool := env.NewPool("v3-noagent", 1)
	to := handofftest.Number("9174")
	env.SetScenario(map[string]sim.Behaviour{to: {Outcome: sim.OutcomeAnswer, AnswerDelay: 100 * time.Millisecond}}, nil)
	create(t, pool)

	c := v3Call("v3-noagent-1", pool.Name, to, secret.Name, func(c *voicev1alpha1.Call) {
		c.Spec.Handoff.OnNoAgent = voicev1alpha1.OnNoAgentHangup
		c.Spec.Handoff.Skills = []string{"klingon"}
	})
	create(t, c)
	waitCall(t, c.Name, "answered", func(c *voicev1alpha1.Call) bool { return c.Status.Phase == voicev1alpha1.CallInProgress })
	if err := env.UpdateSpec(ctx, c.Name, func(c *voicev1alpha1.Call) { c.Spec.Handoff.Requested = true }); err != nil {
		t.Fatal(err)
	}
	done := waitCall(t, c.Name, "handoff Failed and the call ended", func(c *voicev1alpha1.Call) bool {
		return phase(c) == voicev1alpha1.HandoffFailed && ended(c)
	})
	if h := done.Status.Handoff; h.Outcome != voicev1alpha1.HandoffOutcomeFailed || h.OnNoAgent != voicev1alpha1.OnNoAgentHangup {
		t.Errorf("handoff %+v", h)
	}
	if rec, _ := v3SimCall(to); rec.EndReason != sim.V3EndHangupAPI || len(rec.Transfers) != 0 {
		t.Errorf("sim record %+v, want ended by the hangup action with no transfer", rec)
	}
}
