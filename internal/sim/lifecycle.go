package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// hangupCause is the cancel cause of a call (or leg) context; it says who ended it.
type hangupCause string

func (h hangupCause) Error() string { return string(h) }

const (
	causeCallee    = hangupCause("callee")       // the destination hung up (scenario hangupAfter)
	causeDuration  = hangupCause("duration")     // the make-call (or bridge) duration was reached
	causeAPI       = hangupCause("api")          // POST /v1/call/action hangup
	causePCMO      = hangupCause("pcmo")         // a PCMO hangup action
	causePCMOEnd   = hangupCause("pcmo_end")     // the PCMO ran out and no stream keeps the call
	causeBridgeEnd = hangupCause("bridge_ended") // a connected bridge ended and nothing followed
	causeAgent     = hangupCause("agent")        // the agent hung up (agent talkFor)
	causeBusy      = hangupCause("busy")
	causeNoAnswer  = hangupCause("noanswer")
	causeRejected  = hangupCause("rejected")
	causeCanceled  = hangupCause("canceled") // a ringing leg that lost a group ring or was stopped
	errReset       = hangupCause("reset")
)

// call is one placed call: leg a (the destination) plus bridge legs.
type call struct {
	s      *Sim
	id     string // request_id
	appID  int64
	route  string
	from   int64
	to     int64
	fromS  string
	toS    string
	beh    Behaviour
	maxDur time.Duration
	pcmo   []action
	legA   string // cmiuuid of leg a

	ctx    context.Context
	cancel context.CancelCauseFunc
	bg     sync.WaitGroup // streams, bridges and PCMO runners; Add only under mu while !closing
	done   chan struct{}  // closed when the lifecycle has fully ended
	dead   atomic.Bool    // reset: deliver nothing more

	// Read by stream senders on every frame, so atomics rather than mu.
	answered    atomic.Bool
	held        atomic.Bool
	activeAgent atomic.Pointer[agentLeg]

	q *eventQueue

	mu           sync.Mutex // guards everything below
	rec          CallRecord // scalar fields; slices are built at snapshot time
	extra        string     // extra_params as sent in events (a param action replaces it)
	recording    string     // the file a record action is recording to (recording.go)
	streams      []*stream
	bridges      []*bridge
	activeBridge *bridge
	plays        []PlayRecord
	actions      []ActionRecord
	events       []*eventRec
	cdrs         []cdrEntry
	closing      bool
	qClosed      bool
}

type cdrEntry struct {
	cmiuuid string
	payload json.RawMessage // as posted to the webhook
	lookup  json.RawMessage // as the documented CDR lookups answer
}

func (s *Sim) placeCall(mc *makeCall, route string) (*call, error) {
	sc := s.currentScenario()
	toS := strconv.FormatInt(mc.To, 10)
	ctx, cancel := context.WithCancelCause(s.ctx)
	now := time.Now()
	c := &call{
		s: s, id: newRequestID(), appID: mc.AppID, route: route,
		from: mc.From, to: mc.To, fromS: strconv.FormatInt(mc.From, 10), toS: toS,
		beh: sc.behaviour(toS), maxDur: time.Duration(mc.Duration) * time.Second,
		pcmo: mc.PCMO, legA: newCMIUUID(),
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
		q:     newEventQueue(),
		extra: string(mc.ExtraParams),
	}
	c.rec = CallRecord{
		RequestID: c.id, AppID: c.appID, Route: route, From: c.fromS, To: toS,
		ExtraParams: mc.ExtraParams, Duration: mc.Duration, PCMO: compactJSON(mc.RawPCMO),
		CMIUUID: c.legA, State: "dialing", DialedAt: now,
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel(errShutdown)
		return nil, errors.New("sim is shutting down")
	}
	s.calls[c.id] = c
	s.order = append(s.order, c)
	s.legs[c.legA] = legRef{c: c}
	s.callWG.Add(1)
	s.hooks.start(c) // under s.mu so Close cannot be waiting on the workers yet
	s.mu.Unlock()
	s.log.Info("call placed", "request_id", c.id, "from", c.fromS, "to", toS, "route", route, "outcome", c.beh.Outcome)
	go c.run()
	return c, nil
}

func compactJSON(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return json.RawMessage(b)
	}
	return buf.Bytes()
}

// sleepCtx waits d or until ctx ends; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// run is the lifecycle of leg a, from dial to CDR.
func (c *call) run() {
	defer c.s.callWG.Done()
	defer close(c.done)
	c.emitA("started")

	// stream_on_answer false: the socket is dialled at once, before anyone answers.
	early := map[int]bool{}
	for i, a := range c.pcmo {
		if a.Stream != nil && !a.Stream.OnAnswer {
			early[i] = true
			c.startStream(a.Stream, "make-call")
		}
	}

	if sleepCtx(c.ctx, c.beh.RingDelay) {
		switch c.beh.Outcome {
		case OutcomeBusy:
			if sleepCtx(c.ctx, c.beh.AnswerDelay) {
				c.cancel(causeBusy)
			}
		case OutcomeReject:
			c.ringing()
			if sleepCtx(c.ctx, c.beh.AnswerDelay) {
				c.cancel(causeRejected)
			}
		case OutcomeNoAnswer:
			c.ringing()
			rt := c.beh.RingTimeout
			if rt == 0 {
				rt = DefaultRingTimeout
			}
			if sleepCtx(c.ctx, rt) {
				c.cancel(causeNoAnswer)
			}
		default:
			c.ringing()
			if sleepCtx(c.ctx, c.beh.AnswerDelay) {
				c.answer(early)
			}
		}
	}
	<-c.ctx.Done()
	c.finish()
}

func (c *call) ringing() {
	now := time.Now()
	c.mu.Lock()
	c.rec.State, c.rec.RingingAt = "ringing", &now
	c.mu.Unlock()
	c.emitA("ringing")
}

func (c *call) answer(early map[int]bool) {
	now := time.Now()
	c.mu.Lock()
	c.rec.State, c.rec.AnsweredAt = "answered", &now
	c.rec.Outcome = "answered"
	if c.beh.Outcome == OutcomeVoicemail {
		c.rec.Outcome = "voicemail"
	}
	c.mu.Unlock()
	c.answered.Store(true)
	c.emitA("out_answered")

	var timers []*time.Timer
	if c.beh.HangupAfter > 0 {
		timers = append(timers, time.AfterFunc(c.beh.HangupAfter, func() { c.cancel(causeCallee) }))
	}
	timers = append(timers, time.AfterFunc(c.maxDur, func() { c.cancel(causeDuration) }))
	context.AfterFunc(c.ctx, func() {
		for _, t := range timers {
			t.Stop()
		}
	})
	c.runPCMOAsync(c.pcmo, "make-call", early)
}

// runPCMOAsync runs a PCMO beside the lifecycle, unless the call is ending.
func (c *call) runPCMOAsync(acts []action, source string, skip map[int]bool) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.bg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.bg.Done()
		c.runPCMO(acts, source, skip)
	}()
}

// runPCMO runs actions in order. stream starts a socket and goes on; bridge
// blocks until the bridge is over; hangup ends the call. When the actions run
// out the call goes on only while a stream is up (the bot drives it from
// there); after a connected bridge that was the last action it ends, as a
// transfer does.
func (c *call) runPCMO(acts []action, source string, skip map[int]bool) {
	bridgedLast := false
	for i, a := range acts {
		if c.ctx.Err() != nil {
			return
		}
		bridgedLast = false
		switch a.Name {
		case "stream":
			if !skip[i] {
				c.startStream(a.Stream, source)
			}
		case "hangup":
			c.recordPlay(a, source, "")
			c.cancel(causePCMO)
			return
		case "bridge", "connect":
			bridgedLast = c.runBridge(a.Bridge, source)
		case "input", "play_get_input":
			c.recordPlay(a, source, "")
			if next := c.runInput(a.Input); next != nil {
				// The action_url reply replaces the rest of the PCMO, as an IVR does.
				c.runPCMO(next, "action_url", nil)
				return
			}
		default: // play, speak, param, record
			c.recordPlay(a, source, "")
		}
	}
	if c.ctx.Err() != nil {
		return
	}
	switch {
	case bridgedLast:
		c.cancel(causeBridgeEnd)
	case !c.hasLiveStream():
		c.cancel(causePCMOEnd)
	}
}

func (c *call) recordPlay(a action, source, result string) {
	p := PlayRecord{At: time.Now(), Action: a.Name, Source: source, Text: a.Text, Result: result}
	if a.Play != nil {
		p.FileName, p.FileURL = a.Play.FileName, a.Play.FileURL
	}
	if a.Input != nil && a.Input.Play != nil {
		p.FileName, p.FileURL = a.Input.Play.FileName, a.Input.Play.FileURL
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.plays = append(c.plays, p)
	if a.Name == "record" && c.recording == "" {
		c.recording = recordingName(c.appID)
	}
	if a.Name == "param" {
		// param's text is echoed to later webhooks as extra_params.
		c.extra = a.Text
	}
}

func (c *call) hasLiveStream() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.streams {
		if !st.closed {
			return true
		}
	}
	return false
}

// runInput waits for the scenario's DTMF (or the input timeout), POSTs the
// digits to action_url and returns the PCMO of its reply, if any.
func (c *call) runInput(in *inputSpec) []action {
	if c.beh.DTMF == "" {
		sleepCtx(c.ctx, time.Duration(in.Timeout)*time.Second)
		return nil
	}
	digits := c.beh.DTMF
	if int64(len(digits)) > in.MaxDigit {
		digits = digits[:in.MaxDigit]
	}
	body, _ := json.Marshal(map[string]any{"from": c.from, "to": c.to, "dtmf": digits, "cmiuuid": c.legA})
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.ActionURL, bytes.NewReader(body))
	if err != nil {
		return nil
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.s.hooks.client.Do(req)
	if err != nil {
		c.s.log.Info("action_url failed", "request_id", c.id, "err", err)
		return nil
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil || resp.StatusCode/100 != 2 {
		return nil
	}
	acts, aerr := c.s.parsePCMO(raw)
	if aerr != nil {
		c.s.log.Info("action_url reply is not a PCMO", "request_id", c.id, "err", aerr.Message)
		return nil
	}
	return acts
}

// callAction applies POST /v1/call/action to leg a (ag == nil) or a bridge leg.
func (c *call) callAction(ag *agentLeg, cmiuuid, act string) *apiError {
	c.mu.Lock()
	if c.closing || (ag != nil && ag.ctx.Err() != nil) {
		c.mu.Unlock()
		return errf(codeNotFound, "call not active")
	}
	leg := "a"
	if ag != nil {
		leg = "b"
	}
	c.actions = append(c.actions, ActionRecord{At: time.Now(), CMIUUID: cmiuuid, Leg: leg, Action: act})
	c.mu.Unlock()
	held := &c.held
	if ag != nil {
		held = &ag.held
	}
	switch act {
	case "hangup":
		if ag == nil {
			c.cancel(causeAPI)
		} else {
			ag.cancel(causeAPI)
		}
	case "hold":
		held.Store(true)
	case "unhold":
		held.Store(false)
	case "holdToggle":
		held.Store(!held.Load())
	}
	return nil
}

// finish ends leg a once its context is done: it waits for streams, bridges
// and PCMO runners to wind down (they emit their own events), then emits the
// hangup and the CDR and closes the event queue.
func (c *call) finish() {
	cause := context.Cause(c.ctx)
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.bg.Wait()

	end := time.Now()
	c.mu.Lock()
	c.rec.State, c.rec.EndedAt = "ended", &end
	c.rec.HangupCause = cause.Error()
	if c.rec.Outcome == "" {
		switch cause {
		case causeBusy, causeNoAnswer, causeRejected:
			c.rec.Outcome = cause.Error()
		default:
			c.rec.Outcome = "canceled" // ended before anyone answered
		}
	}
	rec := c.rec
	c.mu.Unlock()
	c.s.log.Info("call ended", "request_id", c.id, "outcome", rec.Outcome, "cause", rec.HangupCause)

	c.emitA("hangup")
	answeredAt := time.Time{}
	if rec.AnsweredAt != nil {
		answeredAt = *rec.AnsweredAt
	}
	c.emitCDR("a", c.legA, c.fromS, c.toS, rec.DialedAt, answeredAt, end)

	c.mu.Lock()
	c.qClosed = true
	c.mu.Unlock()
	c.q.close()
}

// billSeconds rounds a talk time to whole seconds the way CDRs carry it.
func billSeconds(answered, end time.Time) int64 {
	if answered.IsZero() {
		return 0
	}
	return int64(math.Round(end.Sub(answered).Seconds()))
}
