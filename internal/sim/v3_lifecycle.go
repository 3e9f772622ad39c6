package sim

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	piopiyv3 "github.com/callfleet/callfleet/pkg/piopiy/v3"
)

// Why a v3 call ended (EndReason in V3CallRecord).
const (
	V3EndCompleted   = "completed"    // answered, then someone hung up
	V3EndBusy        = "busy"         // the person was busy
	V3EndNoAnswer    = "no_answer"    // rang out
	V3EndRejected    = "rejected"     // the person declined
	V3EndHangupAPI   = "hangup_api"   // a hangup action
	V3EndMaxDuration = "max_duration" // options.max_duration_sec reached
)

// v3TransferTTL is how long Piopiy keeps a transfer's status.
const v3TransferTTL = 15 * time.Minute

// defaultV3MaxDuration applies when a create sets no max_duration_sec.
const defaultV3MaxDuration = time.Hour

// v3Call is one call placed through the v3 API.
type v3Call struct {
	sim                      *Sim
	id, kind, app, from, to  string
	agentID                  string
	body                     json.RawMessage
	variables                map[string]any
	ringTimeout, maxDuration time.Duration
	behaviour                Behaviour
	ctx                      context.Context
	cancel                   context.CancelCauseFunc
	done                     chan struct{}
	bridged                  chan time.Duration // a warm transfer connected an agent who talks this long (0 = until the end)

	mu        sync.Mutex
	status    string // queued, ringing, answered; "" once ended
	endReason string
	created   time.Time
	answered  time.Time
	endedAt   time.Time
	current   *v3Transfer // the transfer under way, if any
	transfers []*v3Transfer
}

// v3Transfer is one transfer of a live call.
type v3Transfer struct {
	id, callID, kind, target string
	body                     json.RawMessage
	created                  time.Time

	mu       sync.Mutex
	status   string
	reason   string
	finished time.Time
}

func (s *Sim) v3Place(kind, app string, req v3CreateBody, body []byte) (*v3Call, error) {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, errors.New("shutting down")
	}
	ring := time.Duration(req.Options.RingTimeoutSec) * time.Second
	b := s.currentScenario().behaviour(req.To)
	if ring == 0 {
		ring = b.RingTimeout
	}
	if ring == 0 {
		ring = DefaultRingTimeout
	}
	maxDur := time.Duration(req.Options.MaxDurationSec) * time.Second
	if maxDur == 0 {
		maxDur = defaultV3MaxDuration
	}
	ctx, cancel := context.WithCancelCause(s.ctx)
	c := &v3Call{
		sim: s, id: newCMIUUID(), kind: kind, app: app, from: req.CallerID, to: req.To, agentID: req.AgentID,
		body: compactJSON(body), variables: req.Variables, ringTimeout: ring, maxDuration: maxDur, behaviour: b,
		ctx: ctx, cancel: cancel, done: make(chan struct{}), bridged: make(chan time.Duration, 1),
		status: piopiyv3.CallQueued, created: time.Now(),
	}
	if kind == "pcmo" {
		c.agentID = pipelineAgent(req.Pipeline)
	}
	s.v3.mu.Lock()
	s.v3.calls[c.id] = c
	s.v3.order = append(s.v3.order, c)
	s.v3.mu.Unlock()
	s.callWG.Add(1)
	go func() {
		defer s.callWG.Done()
		defer close(c.done)
		c.run()
	}()
	return c, nil
}

func (c *v3Call) ended() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status == ""
}

func (c *v3Call) setStatus(st string) {
	c.mu.Lock()
	c.status = st
	if st == piopiyv3.CallAnswered {
		c.answered = time.Now()
	}
	c.mu.Unlock()
}

// hangup ends the call from the API.
func (c *v3Call) hangup(reason string) { c.cancel(hangupCause(reason)) }

// run plays the person's Behaviour: ring, then answer, busy, no answer or
// reject; an answered call lasts until the person (or, after a warm
// transfer, the agent) hangs up, a hangup action, or max_duration_sec.
func (c *v3Call) run() {
	b := c.behaviour
	reason := V3EndCompleted
	defer func() { c.finish(reason) }()
	if !sleepCtx(c.ctx, b.RingDelay) {
		reason = c.cause()
		return
	}
	switch b.Outcome {
	case OutcomeBusy:
		if sleepCtx(c.ctx, b.AnswerDelay) {
			reason = V3EndBusy
		} else {
			reason = c.cause()
		}
		return
	}
	c.setStatus(piopiyv3.CallRinging)
	switch b.Outcome {
	case OutcomeNoAnswer:
		reason = V3EndNoAnswer
		if !sleepCtx(c.ctx, c.ringTimeout) {
			reason = c.cause()
		}
		return
	case OutcomeReject:
		reason = V3EndRejected
		if !sleepCtx(c.ctx, min(b.AnswerDelay, c.ringTimeout)) {
			reason = c.cause()
		}
		return
	}
	if b.AnswerDelay >= c.ringTimeout {
		reason = V3EndNoAnswer
		if !sleepCtx(c.ctx, c.ringTimeout) {
			reason = c.cause()
		}
		return
	}
	if !sleepCtx(c.ctx, b.AnswerDelay) {
		reason = c.cause()
		return
	}
	c.setStatus(piopiyv3.CallAnswered)
	maxT := time.NewTimer(c.maxDuration)
	defer maxT.Stop()
	var hang <-chan time.Time
	if b.HangupAfter > 0 {
		t := time.NewTimer(b.HangupAfter)
		defer t.Stop()
		hang = t.C
	}
	for {
		select {
		case <-c.ctx.Done():
			reason = c.cause()
			return
		case <-maxT.C:
			reason = V3EndMaxDuration
			return
		case <-hang:
			return
		case talk := <-c.bridged:
			// The person now talks to the agent: the agent decides when
			// the call ends.
			hang = nil
			if talk > 0 {
				t := time.NewTimer(talk)
				defer t.Stop()
				hang = t.C
			}
		}
	}
}

func (c *v3Call) cause() string {
	var hc hangupCause
	if errors.As(context.Cause(c.ctx), &hc) {
		return string(hc)
	}
	return V3EndHangupAPI
}

func (c *v3Call) finish(reason string) {
	c.mu.Lock()
	c.status, c.endReason, c.endedAt = "", reason, time.Now()
	cur := c.current
	c.mu.Unlock()
	c.cancel(hangupCause(reason))
	if cur != nil {
		// The person left while the target was being reached.
		cur.fail(piopiyv3.ReasonNoAnswer + piopiyv3.SuffixCallEnded)
	}
}

// startTransfer begins a transfer unless one is under way (returned as busy).
func (c *v3Call) startTransfer(s *Sim, kind, target string, timeout time.Duration, body []byte) (t, busy *v3Transfer) {
	c.mu.Lock()
	if c.current != nil {
		busy = c.current
		c.mu.Unlock()
		return nil, busy
	}
	t = &v3Transfer{id: newRequestID(), callID: c.id, kind: kind, target: target, body: compactJSON(body), created: time.Now(), status: piopiyv3.TransferQueued}
	c.current = t
	c.transfers = append(c.transfers, t)
	c.mu.Unlock()
	s.v3.mu.Lock()
	s.v3.transfers[t.id] = t
	s.v3.mu.Unlock()
	go c.runTransfer(t, s.currentScenario().agent(target), timeout)
	return t, nil
}

// runTransfer reaches the target by its AgentBehaviour. A blind transfer
// (a pipeline) hands the call over at once.
func (c *v3Call) runTransfer(t *v3Transfer, ab AgentBehaviour, timeout time.Duration) {
	if t.kind == "pipeline" {
		c.transferDone(t, "", 0)
		return
	}
	wait, reason := ab.AnswerDelay, ""
	switch {
	case ab.NoAnswer || ab.AnswerDelay >= timeout:
		wait, reason = timeout, piopiyv3.ReasonNoAnswer
	case ab.Busy:
		reason = piopiyv3.ReasonBusy
	}
	if !sleepCtx(c.ctx, wait) {
		return // finish fails the transfer
	}
	c.transferDone(t, reason, ab.TalkFor)
}

func (c *v3Call) transferDone(t *v3Transfer, reason string, talk time.Duration) {
	c.mu.Lock()
	if c.current != t {
		c.mu.Unlock()
		return
	}
	c.current = nil
	c.mu.Unlock()
	if reason != "" {
		t.fail(reason)
		return
	}
	t.mu.Lock()
	t.status, t.finished = piopiyv3.TransferCompleted, time.Now()
	t.mu.Unlock()
	select {
	case c.bridged <- talk:
	default:
	}
}

func (t *v3Transfer) fail(reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status != piopiyv3.TransferQueued {
		return
	}
	t.status, t.reason, t.finished = piopiyv3.TransferFailed, reason, time.Now()
}

func (t *v3Transfer) expired(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.finished.IsZero() && now.Sub(t.finished) > v3TransferTTL
}

func (t *v3Transfer) view() map[string]any {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]any{"request_id": t.id, "call_id": t.callID, "status": t.status}
	if t.reason != "" {
		out["reason"] = t.reason
	}
	return out
}

// V3CallRecord is what the sim saw of one v3 call, for tests.
type V3CallRecord struct {
	CallID    string             `json:"callID"`
	Kind      string             `json:"kind"` // ai | pcmo
	AppID     string             `json:"appID,omitempty"`
	From      string             `json:"from"`
	To        string             `json:"to"`
	AgentID   string             `json:"agentID,omitempty"`
	Body      json.RawMessage    `json:"body"`
	Variables map[string]any     `json:"variables,omitempty"`
	Status    string             `json:"status,omitempty"` // "" once ended
	EndReason string             `json:"endReason,omitempty"`
	Created   time.Time          `json:"created"`
	Answered  *time.Time         `json:"answered,omitempty"`
	Ended     *time.Time         `json:"ended,omitempty"`
	Transfers []V3TransferRecord `json:"transfers,omitempty"`
}

// V3TransferRecord is one transfer of a V3CallRecord.
type V3TransferRecord struct {
	RequestID string          `json:"requestID"`
	Kind      string          `json:"kind"` // pstn | sip | pipeline
	Target    string          `json:"target,omitempty"`
	Body      json.RawMessage `json:"body"`
	Status    string          `json:"status"`
	Reason    string          `json:"reason,omitempty"`
}

// V3Calls lists every v3 call in the order placed.
func (s *Sim) V3Calls() []V3CallRecord {
	s.v3.mu.Lock()
	calls := append([]*v3Call(nil), s.v3.order...)
	s.v3.mu.Unlock()
	out := make([]V3CallRecord, 0, len(calls))
	for _, c := range calls {
		c.mu.Lock()
		r := V3CallRecord{CallID: c.id, Kind: c.kind, AppID: c.app, From: c.from, To: c.to, AgentID: c.agentID, Body: c.body,
			Variables: c.variables, Status: c.status, EndReason: c.endReason, Created: c.created}
		if !c.answered.IsZero() {
			a := c.answered
			r.Answered = &a
		}
		if !c.endedAt.IsZero() {
			e := c.endedAt
			r.Ended = &e
		}
		ts := append([]*v3Transfer(nil), c.transfers...)
		c.mu.Unlock()
		for _, t := range ts {
			t.mu.Lock()
			r.Transfers = append(r.Transfers, V3TransferRecord{RequestID: t.id, Kind: t.kind, Target: t.target, Body: t.body, Status: t.status, Reason: t.reason})
			t.mu.Unlock()
		}
		out = append(out, r)
	}
	return out
}
