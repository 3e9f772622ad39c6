package agentpool_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/controller/agentpool"
	"github.com/callfleet/callfleet/internal/controller/handoff"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/test/harness/handofftest"
)

// TestHandoffKeepsStreaming hands a call to an agent with keepStreaming:
// the stream stays up after the bridge and carries both parties, status
// says it is monitoring, and the agent is released when they hang up.
func TestHandoffKeepsStreaming(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := env.NewPool("keep", 1)
	agentNum := pool.Spec.Agents[0].Number
	env.SetScenario(nil, map[string]sim.AgentBehaviour{agentNum: {AnswerDelay: 300 * time.Millisecond, TalkFor: 6 * time.Second}})
	create(t, pool)
	bridgedBefore := metric(t, "callfleet_handoffs_total", map[string]string{"outcome": handoff.OutcomeBridged})
	answersBefore := metric(t, "callfleet_handoff_time_to_answer_seconds", nil)

	c := env.NewCall("keep-1", pool.Name, func(c *voicev1alpha1.Call) { c.Spec.Handoff.KeepStreaming = true })
	env.Bot.Record(c.Name)
	bc := connected(t, c)
	if err := env.UpdateSpec(ctx, c.Name, func(c *voicev1alpha1.Call) { c.Spec.Handoff.Requested = true }); err != nil {
		t.Fatal(err)
	}
	cur := waitCall(t, c.Name, "handoff Bridged and monitoring", func(c *voicev1alpha1.Call) bool {
		return phase(c) == voicev1alpha1.HandoffBridged && c.Status.Stream != nil && c.Status.Stream.Monitoring
	})
	h := cur.Status.Handoff
	if h.Source != voicev1alpha1.HandoffSourceSpec || h.Agent != "agent-0" || h.Number != agentNum || h.RequestedTime == nil ||
		h.AgentAssignedTime == nil || h.BridgeSentTime == nil || h.BridgedTime == nil || len(h.TriedAgents) != 0 {
		t.Errorf("handoff status %+v", h)
	}
	if cur.Status.Phase != voicev1alpha1.CallHandedOff || streamState(cur) != voicev1alpha1.StreamPhaseConnected {
		t.Errorf("call phase %s, stream %s; want HandedOff with the stream Connected", cur.Status.Phase, streamState(cur))
	}
	if cond := condition(cur.Status.Conditions, voicev1alpha1.ConditionHandoffMonitoring); cond == nil || cond.Status != metav1.ConditionTrue {
		t.Errorf("HandoffMonitoring condition %+v, want True (listenMode both)", cond)
	}
	waitPool(t, pool.Name, "the agent busy", func(p *voicev1alpha1.AgentPool) bool {
		return p.Status.Busy == 1 && p.Status.Available == 0 && len(p.Status.Agents[0].Reservations) == 1 &&
			p.Status.Agents[0].Reservations[0].Call == c.Name
	})

	// The sim: the bridge rang the agent once and connected; the stream was
	// never stopped and goes on carrying both voices.
	rec := waitSim(t, c.Spec.To, "the bridge answered", func(r sim.CallRecord) bool {
		return len(r.Bridges) == 1 && r.Bridges[0].Answered && r.Bridges[0].AnsweredAt != nil
	})
	if b := rec.Bridges[0]; b.Agent != agentNum || b.Source != "socket" || !slices.Equal(b.Targets, []string{agentNum}) || b.TimeoutSeconds != int64(pool.Spec.RingTimeoutSeconds) {
		t.Errorf("bridge %+v", b)
	}
	answered := *rec.Bridges[0].AnsweredAt
	// Frames generated before the answer may still be in flight: skip 200ms.
	from, to := answered.Add(200*time.Millisecond), answered.Add(1400*time.Millisecond)
	if err := handofftest.Eventually(deadline, func() error {
		if bc.Frames() > 0 && len(bc.AudioBetween(to, answered.Add(time.Hour))) > 0 {
			return nil
		}
		return context.DeadlineExceeded
	}); err != nil {
		t.Fatal("the bot got no audio 1.4s after the bridge: the stream did not stay up")
	}
	after := bc.AudioBetween(from, to)
	before := bc.AudioBetween(answered.Add(-1400*time.Millisecond), answered.Add(-200*time.Millisecond))
	callerAfter, agentAfter := handofftest.ToneLevel(after, 8000, sim.CallerToneHz), handofftest.ToneLevel(after, 8000, sim.AgentToneHz)
	callerBefore, agentBefore := handofftest.ToneLevel(before, 8000, sim.CallerToneHz), handofftest.ToneLevel(before, 8000, sim.AgentToneHz)
	t.Logf("tone levels before the bridge: caller %.4f agent %.4f; after: caller %.4f agent %.4f", callerBefore, agentBefore, callerAfter, agentAfter)
	if callerAfter < 0.01 || agentAfter < 0.01 {
		t.Errorf("after the bridge the stream should carry both parties: caller %.4f, agent %.4f", callerAfter, agentAfter)
	}
	if callerBefore < 0.01 || agentBefore > callerBefore/20 {
		t.Errorf("before the bridge the stream should carry the caller only: caller %.4f, agent %.4f", callerBefore, agentBefore)
	}
	if rec, _ := env.SimCall(c.Spec.To); rec.Streams[0].StoppedAt != nil || rec.Streams[0].DisconnectedAt != nil {
		t.Errorf("the sim's stream was stopped or closed while the agent talks: %+v", rec.Streams[0])
	}
	if ev := bc.Events("handoff"); len(ev) == 0 || ev[len(ev)-1]["phase"] != string(voicev1alpha1.HandoffBridged) {
		t.Errorf("the bot was not told of the bridge: %v", ev)
	}

	// The agent hangs up: the bridge (and here the call) ends, the agent is free.
	cur = waitCall(t, c.Name, "handoff Ended", func(c *voicev1alpha1.Call) bool {
		return phase(c) == voicev1alpha1.HandoffEnded && ended(c)
	})
	if cur.Status.Handoff.EndedTime == nil || cur.Status.Phase != voicev1alpha1.CallCompleted {
		t.Errorf("after the agent hung up: %s", describe(cur))
	}
	waitPool(t, pool.Name, "the agent free", func(p *voicev1alpha1.AgentPool) bool {
		return reservations(p) == 0 && p.Status.Busy == 0 && p.Status.Available == 1
	})
	if got := metric(t, "callfleet_handoffs_total", map[string]string{"outcome": handoff.OutcomeBridged}); got < bridgedBefore+1 {
		t.Errorf("handoffs_total{bridged} %v, want at least %v", got, bridgedBefore+1)
	}
	if got := metric(t, "callfleet_handoff_time_to_answer_seconds", nil); got < answersBefore+1 {
		t.Errorf("time_to_answer observations %v, want at least %v", got, answersBefore+1)
	}
}

// TestHandoffStopsStreaming: without keepStreaming the stream ends when the
// agent answers, while the caller and the agent talk on.
func TestHandoffStopsStreaming(t *testing.T) {
	t.Parallel()
	pool := env.NewPool("stop", 1)
	agentNum := pool.Spec.Agents[0].Number
	env.SetScenario(nil, map[string]sim.AgentBehaviour{agentNum: {AnswerDelay: 300 * time.Millisecond, TalkFor: 4 * time.Second}})
	create(t, pool)
	c := env.NewCall("stop-1", pool.Name, func(c *voicev1alpha1.Call) { c.Spec.Stream.ListenMode = voicev1alpha1.ListenCaller })
	bc := connected(t, c)
	if err := env.UpdateSpec(context.Background(), c.Name, func(c *voicev1alpha1.Call) { c.Spec.Handoff.Requested = true }); err != nil {
		t.Fatal(err)
	}
	cur := waitCall(t, c.Name, "handoff Bridged, stream Stopped", func(c *voicev1alpha1.Call) bool {
		return phase(c) == voicev1alpha1.HandoffBridged && streamState(c) == voicev1alpha1.StreamPhaseStopped
	})
	if cur.Status.Stream.Monitoring || cur.Status.Phase != voicev1alpha1.CallHandedOff {
		t.Errorf("status after the bridge: %s", describe(cur))
	}
	if cond := condition(cur.Status.Conditions, voicev1alpha1.ConditionHandoffMonitoring); cond != nil {
		t.Errorf("HandoffMonitoring set without keepStreaming: %+v", cond)
	}
	rec := waitSim(t, c.Spec.To, "the stream closed after the bridge", func(r sim.CallRecord) bool {
		return len(r.Bridges) == 1 && r.Bridges[0].AnsweredAt != nil && len(r.Streams) == 1 && r.Streams[0].DisconnectedAt != nil
	})
	b, s := rec.Bridges[0], rec.Streams[0]
	if s.StoppedAt == nil || s.StoppedAt.Before(*b.AnsweredAt) {
		t.Errorf("stream stop %v, bridge answered %v: want a stop at the answer", s.StoppedAt, b.AnsweredAt)
	}
	if b.EndedAt != nil && b.EndedAt.Before(*s.DisconnectedAt) {
		t.Errorf("the stream closed at %v, after the bridge ended at %v: want it closed while the agent talks", s.DisconnectedAt, b.EndedAt)
	}
	if ev := bc.Events("stop"); len(ev) == 0 {
		t.Error("the bot got no stop event")
	}
	waitCall(t, c.Name, "handoff Ended", func(c *voicev1alpha1.Call) bool { return phase(c) == voicev1alpha1.HandoffEnded && ended(c) })
	waitPool(t, pool.Name, "the agent free", func(p *voicev1alpha1.AgentPool) bool { return reservations(p) == 0 })
}

// TestNoAnswerTriesTheNextAgent: an agent who does not answer within the
// ring timeout is released and the next one is rung.
func TestNoAnswerTriesTheNextAgent(t *testing.T) {
	t.Parallel()
	// Priority makes the order of agents certain (round robin would move on
	// when a reservation is remade after a conflict).
	pool := env.NewPool("noanswer", 3, func(p *voicev1alpha1.AgentPool) {
		p.Spec.Strategy = agentpool.StrategyPriority
		for i := range p.Spec.Agents {
			p.Spec.Agents[i].Priority = int32(10 - i)
		}
	})
	first, second, third := pool.Spec.Agents[0].Number, pool.Spec.Agents[1].Number, pool.Spec.Agents[2].Number
	env.SetScenario(nil, map[string]sim.AgentBehaviour{
		first:  {NoAnswer: true},
		second: {Busy: true, AnswerDelay: 500 * time.Millisecond},
		third:  {AnswerDelay: 300 * time.Millisecond, TalkFor: 2 * time.Second},
	})
	create(t, pool)
	c := env.NewCall("noanswer-1", pool.Name, func(c *voicev1alpha1.Call) { c.Spec.Handoff.Requested = true })
	connected(t, c)
	cur := waitCall(t, c.Name, "bridged to the third agent", func(c *voicev1alpha1.Call) bool {
		return phase(c) == voicev1alpha1.HandoffBridged || phase(c) == voicev1alpha1.HandoffEnded
	})
	h := cur.Status.Handoff
	if h.Agent != "agent-2" || !slices.Equal(h.TriedAgents, []string{"agent-0", "agent-1"}) {
		logEvents(t, c.Name)
		t.Errorf("agent %s, tried %v; want agent-2 after agent-0 (no answer) and agent-1 (busy)", h.Agent, h.TriedAgents)
	}
	rec := waitSim(t, c.Spec.To, "three bridges", func(r sim.CallRecord) bool { return len(r.Bridges) == 3 })
	for i, want := range []struct{ number, outcome string }{{first, "noanswer"}, {second, "busy"}, {third, "answered"}} {
		b := rec.Bridges[i]
		if len(b.Attempts) != 1 || b.Attempts[0].Agent != want.number || b.Attempts[0].Outcome != want.outcome {
			t.Errorf("bridge %d: %+v, want %s %s", i, b.Attempts, want.number, want.outcome)
		}
	}
	waitCall(t, c.Name, "handoff Ended", func(c *voicev1alpha1.Call) bool { return phase(c) == voicev1alpha1.HandoffEnded })
	waitPool(t, pool.Name, "every agent free", func(p *voicev1alpha1.AgentPool) bool { return reservations(p) == 0 })
}

// TestQueueTimeout: with every agent busy the Call queues, then after
// maxWaitSeconds its onNoAgent outcome applies.
func TestQueueTimeout(t *testing.T) {
	t.Parallel()
	for _, onNoAgent := range []string{voicev1alpha1.OnNoAgentReturnToBot, voicev1alpha1.OnNoAgentHangup} {
		t.Run(onNoAgent, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			// The only agent is paused: nobody takes the call.
			pool := env.NewPool("timeout-"+strings.ToLower(onNoAgent), 1, func(p *voicev1alpha1.AgentPool) {
				p.Spec.Agents[0].Paused = true
				p.Spec.Queue.MaxWaitSeconds = 3
			})
			create(t, pool)
			timedOutBefore := metric(t, "callfleet_handoffs_total", map[string]string{"outcome": handoff.OutcomeTimedOut})
			c := env.NewCall("timeout-"+strings.ToLower(onNoAgent), pool.Name, func(c *voicev1alpha1.Call) { c.Spec.Handoff.OnNoAgent = onNoAgent })
			bc := connected(t, c)
			if err := env.UpdateSpec(ctx, c.Name, func(c *voicev1alpha1.Call) { c.Spec.Handoff.Requested = true }); err != nil {
				t.Fatal(err)
			}
			waitCall(t, c.Name, "Queued", func(c *voicev1alpha1.Call) bool {
				return phase(c) == voicev1alpha1.HandoffQueued || phase(c) == voicev1alpha1.HandoffTimedOut
			})
			cur := waitCall(t, c.Name, "TimedOut", func(c *voicev1alpha1.Call) bool { return phase(c) == voicev1alpha1.HandoffTimedOut })
			if h := cur.Status.Handoff; h.Agent != "" || !strings.Contains(h.Reason, "maxWaitSeconds") {
				t.Errorf("timed out handoff %+v", h)
			}
			// Counted right after the write that landed: the test may read first.
			if err := handofftest.Eventually(deadline, func() error {
				if got := metric(t, "callfleet_handoffs_total", map[string]string{"outcome": handoff.OutcomeTimedOut}); got < timedOutBefore+1 {
					return fmt.Errorf("handoffs_total{timed_out} %v, want at least %v", got, timedOutBefore+1)
				}
				return nil
			}); err != nil {
				t.Error(err)
			}
			if err := handofftest.Eventually(deadline, func() error {
				for _, e := range bc.Events("handoff") {
					if e["phase"] == string(voicev1alpha1.HandoffTimedOut) {
						return nil
					}
				}
				return context.DeadlineExceeded
			}); err != nil {
				t.Errorf("the bot was not told the handoff timed out: %v", bc.Events("handoff"))
			}
			switch onNoAgent {
			case voicev1alpha1.OnNoAgentReturnToBot:
				// The AI keeps the call: still live and streaming.
				time.Sleep(time.Second)
				cur, _ = env.Call(ctx, c.Name)
				if cur.Status.Phase != voicev1alpha1.CallInProgress || streamState(cur) != voicev1alpha1.StreamPhaseConnected || bc.Closed() {
					t.Errorf("ReturnToBot: the call should stay with the bot: %s", describe(cur))
				}
				hangUp(t, c.Name)
			case voicev1alpha1.OnNoAgentHangup:
				cur = waitCall(t, c.Name, "the call hung up", ended)
				if cur.Status.Phase != voicev1alpha1.CallCompleted {
					t.Errorf("Hangup: call %s", describe(cur))
				}
				rec, _ := env.SimCall(c.Spec.To)
				if rec.HangupCause != "api" || len(rec.Actions) == 0 {
					t.Errorf("the sim's call ended by %q with actions %+v, want a hangup call action", rec.HangupCause, rec.Actions)
				}
			}
		})
	}
}

// TestBotRequestsHandoff: the bot asks through the gateway; the handoff
// records it came from the bot and connects.
func TestBotRequestsHandoff(t *testing.T) {
	t.Parallel()
	pool := env.NewPool("bot", 2, func(p *voicev1alpha1.AgentPool) {
		p.Spec.Strategy = agentpool.StrategyPriority
		p.Spec.Agents[1].Priority = 9
	})
	env.SetScenario(nil, map[string]sim.AgentBehaviour{pool.Spec.Agents[1].Number: {AnswerDelay: 200 * time.Millisecond, TalkFor: 2 * time.Second}})
	create(t, pool)
	// keepStreaming with the default listenMode caller: the agent's voice
	// would not be on the stream, which the Call's condition says.
	c := env.NewCall("bot-1", pool.Name, func(c *voicev1alpha1.Call) {
		c.Spec.Handoff.KeepStreaming = true
		c.Spec.Stream.ListenMode = voicev1alpha1.ListenCaller
	})
	bc := connected(t, c)
	if err := bc.Send(map[string]any{"type": "handoff", "reason": "the customer asked for a human"}); err != nil {
		t.Fatal(err)
	}
	cur := waitCall(t, c.Name, "bridged", func(c *voicev1alpha1.Call) bool {
		return phase(c) == voicev1alpha1.HandoffBridged || phase(c) == voicev1alpha1.HandoffEnded
	})
	h := cur.Status.Handoff
	if h.Source != voicev1alpha1.HandoffSourceBot || h.Reason != "the customer asked for a human" || h.Agent != "agent-1" || h.BridgedTime == nil {
		t.Errorf("bot handoff %+v; want source Bot, its reason, the priority agent", h)
	}
	if cond := condition(cur.Status.Conditions, voicev1alpha1.ConditionHandoffMonitoring); cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != "ListenModeCaller" {
		t.Errorf("HandoffMonitoring %+v, want False ListenModeCaller", cond)
	}
	waitCall(t, c.Name, "handoff Ended", func(c *voicev1alpha1.Call) bool { return phase(c) == voicev1alpha1.HandoffEnded && ended(c) })
	waitPool(t, pool.Name, "every agent free", func(p *voicev1alpha1.AgentPool) bool { return reservations(p) == 0 })
}

// TestCallerHangsUpWhileQueued: a queued caller hears the pool's hold audio
// (a PCMO play on the live socket, seen at the sim); when they hang up
// before an agent is free, the handoff's outcome is Abandoned, and the pool
// counts it once (status and metric) and drops the Call from its queue.
func TestCallerHangsUpWhileQueued(t *testing.T) {
	t.Parallel()
	const hold = "https://audio.example.com/hold.mp3"
	pool := env.NewPool("abandon", 1, func(p *voicev1alpha1.AgentPool) {
		p.Spec.Agents[0].Paused = true
		p.Spec.Queue.MaxWaitSeconds = 600
		p.Spec.Queue.HoldAudioURL = hold
	})
	create(t, pool)
	labels := map[string]string{"namespace": env.Namespace, "pool": pool.Name}
	abandonedBefore := metric(t, "callfleet_handoffs_total", map[string]string{"outcome": handoff.OutcomeAbandoned})
	c := env.NewCall("abandon-1", pool.Name, func(c *voicev1alpha1.Call) { c.Spec.Handoff.Requested = true })
	connected(t, c)
	waitCall(t, c.Name, "Queued", func(c *voicev1alpha1.Call) bool { return phase(c) == voicev1alpha1.HandoffQueued })
	waitPool(t, pool.Name, "the Call in the queue", func(p *voicev1alpha1.AgentPool) bool {
		return p.Status.Queued == 1 && len(p.Status.Queue) == 1 && p.Status.Queue[0].Call == c.Name
	})
	waitSim(t, c.Spec.To, "the hold audio played", func(r sim.CallRecord) bool {
		for _, p := range r.Plays {
			if p.Action == "play" && p.FileURL == hold {
				return true
			}
		}
		return false
	})

	hangUp(t, c.Name)
	cur := waitCall(t, c.Name, "Abandoned", func(c *voicev1alpha1.Call) bool {
		return c.Status.Handoff != nil && c.Status.Handoff.Outcome != ""
	})
	if h := cur.Status.Handoff; h.Outcome != voicev1alpha1.HandoffOutcomeAbandoned || h.Phase != voicev1alpha1.HandoffFailed || h.OnNoAgent != "" {
		t.Errorf("handoff %+v, want Failed with outcome Abandoned", h)
	}
	p := waitPool(t, pool.Name, "the abandonment counted", func(p *voicev1alpha1.AgentPool) bool { return p.Status.Abandoned > 0 })
	if p.Status.Abandoned != 1 || p.Status.Queued != 0 || len(p.Status.Queue) != 0 {
		t.Errorf("pool status %+v, want abandoned 1 and an empty queue", p.Status)
	}
	if got := metric(t, "callfleet_agentpool_abandoned_calls_total", labels); got != 1 {
		t.Errorf("abandoned_calls_total %v, want 1", got)
	}
	if got := metric(t, "callfleet_handoffs_total", map[string]string{"outcome": handoff.OutcomeAbandoned}); got < abandonedBefore+1 {
		t.Errorf("handoffs_total{abandoned} %v, want at least %v", got, abandonedBefore+1)
	}
}

// TestQueueMaxSizeHoldsUnderABurst: Calls asking at once past a full pool
// get at most queue.maxSize places in its queue, counted in the pool's own
// status (two managers race for them); the rest fail at once, the bot
// keeping the call.
func TestQueueMaxSizeHoldsUnderABurst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n, maxSize = 8, 3
	pool := env.NewPool("burst", 1, func(p *voicev1alpha1.AgentPool) {
		p.Spec.Agents[0].Paused = true
		p.Spec.Queue = voicev1alpha1.QueueSpec{MaxSize: maxSize, MaxWaitSeconds: 600}
	})
	create(t, pool)
	names, err := env.LiveCalls(ctx, "burst", pool.Name, n, 10, 2*time.Minute, func(c *voicev1alpha1.Call) {
		c.Spec.Stream.State = voicev1alpha1.StreamPaused
	})
	t.Cleanup(func() { _ = env.DeleteCalls(context.Background(), "burst") })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.RequestAll(ctx, names); err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, name := range names {
		c := waitCall(t, name, "Queued or Failed", func(c *voicev1alpha1.Call) bool {
			return phase(c) == voicev1alpha1.HandoffQueued || phase(c) == voicev1alpha1.HandoffFailed
		})
		h := c.Status.Handoff
		outcomes[string(h.Phase)]++
		if h.Phase == voicev1alpha1.HandoffFailed && (h.Outcome != voicev1alpha1.HandoffOutcomeFailed || !strings.Contains(h.Reason, "queue") ||
			h.OnNoAgent != voicev1alpha1.OnNoAgentReturnToBot) {
			t.Errorf("%s: %+v, want Failed for a full queue, back to the bot", name, h)
		}
	}
	if outcomes[string(voicev1alpha1.HandoffQueued)] != maxSize || outcomes[string(voicev1alpha1.HandoffFailed)] != n-maxSize {
		t.Errorf("handoffs %v, want %d Queued and %d Failed", outcomes, maxSize, n-maxSize)
	}
	p := waitPool(t, pool.Name, "the queue counted", func(p *voicev1alpha1.AgentPool) bool { return p.Status.Queued == maxSize })
	if len(p.Status.Queue) != maxSize {
		t.Errorf("queue %+v, want %d entries", p.Status.Queue, maxSize)
	}
	// Queued and Failed are final for this test only: the calls end now.
	for _, name := range names {
		hangUp(t, name)
	}
}

// TestAgentAnswerOvertakenByItsHangup: the first delivery of the agent
// leg's out_bridged is lost (Piopiy retries it later), so its hangup, its
// CDR and the call's own hangup arrive first, as happens when the receiver
// is slow under load. The call was handed off all the same, and its status
// must say so: Ended, bridged, outcome Bridged.
func TestAgentAnswerOvertakenByItsHangup(t *testing.T) {
	t.Parallel()
	pool := env.NewPool("overtaken", 1)
	env.SetScenario(nil, map[string]sim.AgentBehaviour{pool.Spec.Agents[0].Number: {AnswerDelay: 100 * time.Millisecond, TalkFor: 700 * time.Millisecond}})
	create(t, pool)
	c := env.NewCall("overtaken-1", pool.Name, func(c *voicev1alpha1.Call) {
		c.Spec.Handoff.OnNoAgent = voicev1alpha1.OnNoAgentHangup
		c.Spec.Handoff.Requested = true
	})
	env.Sim.SetFaults(sim.Faults{DeliveryNumbers: map[string]sim.DeliveryFaults{c.Spec.To: {DropProb: 1, Events: []string{"out_bridged"}}}})
	t.Cleanup(func() { env.Sim.SetFaults(sim.Faults{}) })
	connected(t, c)
	// Every word of Piopiy is in once the late out_bridged was accepted.
	rec := waitSim(t, c.Spec.To, "out_bridged redelivered", func(r sim.CallRecord) bool {
		for _, e := range r.Events {
			if e.Status == "out_bridged" && e.Delivered && len(e.Attempts) > 1 && e.Attempts[0].Dropped {
				return true
			}
		}
		return false
	})
	waitSim(t, c.Spec.To, "the call over", func(r sim.CallRecord) bool { return r.State == "ended" })
	cur := waitCall(t, c.Name, "the call over with the handoff concluded", func(c *voicev1alpha1.Call) bool {
		return ended(c) && c.Status.Handoff != nil && c.Status.Handoff.Outcome != "" &&
			(phase(c) == voicev1alpha1.HandoffEnded || phase(c) == voicev1alpha1.HandoffTimedOut ||
				(phase(c) == voicev1alpha1.HandoffFailed && c.Status.Handoff.Missed == nil))
	})
	h := cur.Status.Handoff
	if h.Phase != voicev1alpha1.HandoffEnded || h.BridgedTime == nil || h.Outcome != voicev1alpha1.HandoffOutcomeBridged ||
		h.Agent != "agent-0" || cur.Status.Phase != voicev1alpha1.CallCompleted {
		for _, e := range rec.Events {
			t.Logf("sim event %d %s leg %s created %s attempts %+v", e.Seq, e.Status, e.Leg, e.CreatedAt.Format("15:04:05.000"), e.Attempts)
		}
		logEvents(t, c.Name)
		t.Errorf("the handed-off call reads %s", describe(cur))
	}
	waitPool(t, pool.Name, "the agent free", func(p *voicev1alpha1.AgentPool) bool { return reservations(p) == 0 })
}
