package sim

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// bridge is one bridge/connect action: ringing agents, then the connected leg b.
type bridge struct {
	rec      BridgeRecord    // under call.mu; Attempts is filled at snapshot
	attempts []*AgentAttempt // under call.mu
}

// agentLeg is one leg b: an agent number being rung or talking.
type agentLeg struct {
	number  string
	cmiuuid string
	from    string
	ctx     context.Context
	cancel  context.CancelCauseFunc
	held    atomic.Bool
	attempt *AgentAttempt // lives in bridge.attempts; under call.mu
	rangAt  time.Time
}

// runBridge rings the bridge's targets (in turn, or all at once for
// ring_type group, up to loop rounds) and holds the connected agent until
// someone hangs up. It reports whether an agent answered.
func (c *call) runBridge(bs *bridgeSpec, source string) bool {
	from := c.fromS
	if bs.From != 0 {
		from = strconv.FormatInt(bs.From, 10)
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	br := &bridge{rec: BridgeRecord{
		Source: source, Kind: "bridge", From: from, Targets: bs.Targets, Group: bs.Group,
		TimeoutSeconds: bs.Timeout, Loop: bs.Loop, DurationSeconds: bs.Duration, StartedAt: time.Now(),
	}}
	if bs.SIP {
		br.rec.Kind = "connect"
	}
	c.bridges = append(c.bridges, br)
	if c.activeBridge != nil {
		// One bridge at a time: a second one while the first runs is refused.
		now := time.Now()
		br.rec.EndedAt, br.rec.EndCause = &now, "refused: another bridge is active"
		c.mu.Unlock()
		return false
	}
	c.activeBridge = br
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.activeBridge = nil
		c.mu.Unlock()
	}()

	ctx, cancel := context.WithCancelCause(c.ctx)
	defer cancel(nil)
	var winner *agentLeg
	for round := int64(0); round < bs.Loop && winner == nil && ctx.Err() == nil; round++ {
		if bs.Group {
			winner = c.ringGroup(ctx, bs, br, from)
			continue
		}
		for _, t := range bs.Targets {
			if winner = c.ringAgent(ctx, bs, br, t, from, nil, nil); winner != nil || ctx.Err() != nil {
				break
			}
		}
	}
	if winner == nil {
		now := time.Now()
		c.mu.Lock()
		br.rec.EndedAt, br.rec.EndCause = &now, "unanswered"
		if err := context.Cause(ctx); err != nil {
			br.rec.EndCause = err.Error()
		}
		c.mu.Unlock()
		return false
	}

	// Audio first, record second: whoever sees the bridge answered in the
	// record also gets the agent's voice in the frames that follow.
	c.activeAgent.Store(winner)
	now := time.Now()
	c.mu.Lock()
	br.rec.Answered, br.rec.Agent, br.rec.AgentCMIUUID, br.rec.AnsweredAt = true, winner.number, winner.cmiuuid, &now
	c.mu.Unlock()
	c.emitB(winner, "out_bridged")

	beh := c.s.currentScenario().agent(winner.number)
	var timers []*time.Timer
	if beh.TalkFor > 0 {
		timers = append(timers, time.AfterFunc(beh.TalkFor, func() { winner.cancel(causeAgent) }))
	}
	timers = append(timers, time.AfterFunc(time.Duration(bs.Duration)*time.Second, func() { winner.cancel(causeDuration) }))
	<-winner.ctx.Done()
	for _, t := range timers {
		t.Stop()
	}
	c.activeAgent.Store(nil)
	cause := context.Cause(winner.ctx)
	c.endAgentLeg(winner, cause)
	end := time.Now()
	c.mu.Lock()
	br.rec.EndedAt, br.rec.EndCause = &end, cause.Error()
	c.mu.Unlock()
	return true
}

// ringGroup rings every target at once; the first to answer wins and the
// others stop ringing.
func (c *call) ringGroup(ctx context.Context, bs *bridgeSpec, br *bridge, from string) *agentLeg {
	var (
		mu     sync.Mutex
		winner *agentLeg
		wg     sync.WaitGroup
		stop   = make(chan struct{})
	)
	claim := func(l *agentLeg) bool {
		mu.Lock()
		defer mu.Unlock()
		if winner != nil {
			return false
		}
		winner = l
		close(stop)
		return true
	}
	for _, t := range bs.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.ringAgent(ctx, bs, br, t, from, stop, claim)
		}()
	}
	wg.Wait()
	return winner
}

// ringAgent rings one agent number as the scenario says. It returns the
// answered leg (still up) or nil after ending the leg. stop ends ringing
// early (another agent of a group answered); claim, when set, must agree
// before an answer counts.
func (c *call) ringAgent(ctx context.Context, bs *bridgeSpec, br *bridge, number, from string, stop <-chan struct{}, claim func(*agentLeg) bool) *agentLeg {
	lctx, lcancel := context.WithCancelCause(ctx)
	leg := &agentLeg{number: number, cmiuuid: newCMIUUID(), from: from, ctx: lctx, cancel: lcancel, rangAt: time.Now()}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		lcancel(causeCanceled)
		return nil
	}
	leg.attempt = &AgentAttempt{Agent: number, CMIUUID: leg.cmiuuid, RangAt: leg.rangAt}
	br.attempts = append(br.attempts, leg.attempt)
	c.mu.Unlock()
	c.s.mu.Lock()
	c.s.legs[leg.cmiuuid] = legRef{c: c, agent: leg}
	c.s.mu.Unlock()

	c.emitB(leg, "out_started")
	c.emitB(leg, "ringing")

	beh := c.s.currentScenario().agent(number)
	timeout := time.Duration(bs.Timeout) * time.Second
	wait, outcome := beh.AnswerDelay, "answered"
	switch {
	case beh.Busy:
		wait, outcome = min(beh.AnswerDelay, timeout), "busy"
	case beh.NoAnswer || beh.AnswerDelay >= timeout:
		wait, outcome = timeout, "noanswer"
	}
	t := time.NewTimer(wait)
	select {
	case <-t.C:
	case <-lctx.Done():
		outcome = context.Cause(lctx).Error()
	case <-stop:
		outcome = causeCanceled.Error()
	}
	t.Stop()
	if outcome == "answered" && claim != nil && !claim(leg) {
		outcome = causeCanceled.Error()
	}
	c.mu.Lock()
	leg.attempt.Outcome = outcome
	if outcome == "answered" {
		now := time.Now()
		leg.attempt.AnsweredAt = &now
	}
	c.mu.Unlock()
	if outcome == "answered" {
		return leg
	}
	c.endAgentLeg(leg, hangupCause(outcome))
	return nil
}

// endAgentLeg emits leg b's hangup and CDR.
func (c *call) endAgentLeg(leg *agentLeg, cause error) {
	leg.cancel(cause)
	end := time.Now()
	c.mu.Lock()
	leg.attempt.EndedAt = &end
	answeredAt := time.Time{}
	if leg.attempt.AnsweredAt != nil {
		answeredAt = *leg.attempt.AnsweredAt
	}
	c.mu.Unlock()
	c.emitB(leg, "hangup")
	c.emitCDR("b", leg.cmiuuid, leg.from, leg.number, leg.rangAt, answeredAt, end)
}
