package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// redeliveryGaps is Piopiy's schedule after a failed first attempt: up to
// three retries 5, 10 and 15 minutes apart (gaps, so +5m, +15m, +30m),
// multiplied by Config.RedeliveryScale.
var redeliveryGaps = []time.Duration{5 * time.Minute, 10 * time.Minute, 15 * time.Minute}

// eventRec is one live event or CDR of a call and its delivery history.
type eventRec struct {
	EventRecord // under call.mu
}

// emit records an event and queues it for delivery. Common fields are added
// here; fields carries the per-event ones.
func (c *call) emit(status, leg, cmiuuid string, fields map[string]any) {
	c.record(status, leg, cmiuuid, c.commonFields(leg, cmiuuid), fields, nil)
}

// emitThin records an event that carries only the fields given, as the
// documented stream events do.
func (c *call) emitThin(status, leg, cmiuuid string, fields map[string]any) {
	c.record(status, leg, cmiuuid, fields, nil, nil)
}

func (c *call) commonFields(leg, cmiuuid string) map[string]any {
	return map[string]any{
		"appid":             c.appID,
		"leg":               leg,
		"direction":         "outbound",
		"cmiuuid":           cmiuuid,
		"conversation_uuid": c.id,
		"request_id":        c.id,
		"callerid":          c.fromS,
		"vn":                c.fromS,
		"extra_params":      c.extra,
	}
}

// record merges fields into p, records the event (a CDR with the record the
// lookups answer for it) and queues it.
func (c *call) record(status, leg, cmiuuid string, p, fields map[string]any, lookup json.RawMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.qClosed || c.dead.Load() {
		return
	}
	if cause := context.Cause(c.ctx); cause == errShutdown || cause == errReset {
		return // the platform went away: nothing more is said about this call
	}
	for k, v := range fields {
		p[k] = v
	}
	body, err := json.Marshal(p)
	if err != nil {
		c.s.log.Error("marshal event", "err", err)
		return
	}
	ev := &eventRec{EventRecord{Seq: len(c.events) + 1, Status: status, Leg: leg, CMIUUID: cmiuuid, CreatedAt: time.Now(), Payload: body}}
	c.events = append(c.events, ev)
	if status == "cdr" {
		c.cdrs = append(c.cdrs, cdrEntry{cmiuuid: cmiuuid, payload: body, lookup: lookup})
	}
	c.q.push(ev)
}

// emitA sends a leg-a live event. Leg a events carry from/to as JSON numbers;
// leg b, stream events and CDRs carry them as strings: receivers must accept both.
func (c *call) emitA(status string) {
	c.emit(status, "a", c.legA, map[string]any{
		"status": status, "from": c.from, "to": c.to, "time": time.Now().UnixMilli(),
	})
}

func (c *call) emitB(leg *agentLeg, status string) {
	c.emit(status, "b", leg.cmiuuid, map[string]any{
		"status": status, "from": leg.from, "to": leg.number, "time": time.Now().UnixMilli(),
	})
}

// emitStream sends stream_connected / STREAM_DISCONNECTED with ws_status as
// a JSON *string*, the way Piopiy does. The documented events are thin: leg
// b, from, cmiuuid and ws_status, nothing that names the request.
func (c *call) emitStream(st *stream, status, wsStatus string, code int, reason string) {
	sh := c.s.CurrentShapes()
	ws := sh.wsStatus(wsStatus, code, reason)
	if sh.Rich {
		c.emit(status, "a", c.legA, map[string]any{
			"status": status, "from": c.fromS, "to": c.toS, "time": time.Now().UnixMilli(), "ws_status": ws,
		})
		return
	}
	c.emitThin(status, "b", st.cmiuuid, map[string]any{
		"appid": c.appID, "direction": "outbound", "from": c.from, "leg": "b", "status": status,
		"time": time.Now().UnixMilli(), "cmiuuid": st.cmiuuid, "ws_status": ws,
	})
}

// callRate is what every simulated minute costs, in the account currency.
const callRate = 0.60

func (c *call) emitCDR(leg, cmiuuid, from, to string, start, answered, end time.Time) {
	status, answerTime := "missed", int64(0)
	if !answered.IsZero() {
		status, answerTime = "answered", answered.Unix()
	}
	dur := billSeconds(answered, end)
	c.s.mu.Lock()
	if status == "answered" {
		c.s.balance[c.appID] -= callRate * math.Ceil(float64(dur)/60)
	}
	bal := c.s.balance[c.appID]
	c.s.mu.Unlock()
	rate, balance := strconv.FormatFloat(callRate, 'f', 2, 64), strconv.FormatFloat(bal, 'f', 2, 64)
	fields := map[string]any{
		"type": "cdr", "status": status, "from": from, "to": to,
		"duration": dur, "time": start.UnixMilli(),
		"start_time": start.Unix(), "answer_time": answerTime, "end_time": end.Unix(),
		"call_rate": rate, "balance": balance,
	}
	if !c.s.CurrentShapes().Rich {
		// Value types as TeleCMI's CDR samples show them.
		fields["out"], fields["api_init"] = true, true
		if status == "missed" {
			fields["call_rate"] = 0
		}
	}
	if leg == "a" && status == "answered" {
		addRecording(c, fields)
	}
	lookup := lookupCDR(leg, status, from, to, dur, start.UnixMilli(), rate, balance)
	c.record("cdr", leg, cmiuuid, c.commonFields(leg, cmiuuid), fields, lookup)
}

// cdrFor is the lookup record of a leg: the minimal documented one, or with
// rich shapes the webhook CDR.
func (c *call) cdrFor(cmiuuid string, rich bool) json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.cdrs {
		if e.cmiuuid == cmiuuid {
			return e.record(rich)
		}
	}
	return nil
}

func (c *call) allCDRs(rich bool) []json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]json.RawMessage, 0, len(c.cdrs))
	for _, e := range c.cdrs {
		out = append(out, e.record(rich))
	}
	return out
}

func (e cdrEntry) record(rich bool) json.RawMessage {
	if rich || e.lookup == nil {
		return e.payload
	}
	return e.lookup
}

// eventQueue is an unbounded FIFO so a slow receiver never stalls a call's lifecycle.
type eventQueue struct {
	mu     sync.Mutex
	items  []*eventRec
	closed bool
	wake   chan struct{}
}

func newEventQueue() *eventQueue { return &eventQueue{wake: make(chan struct{}, 1)} }

func (q *eventQueue) push(e *eventRec) {
	q.mu.Lock()
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop blocks for the next event; false once closed and drained.
func (q *eventQueue) pop() (*eventRec, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			e := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			q.mu.Unlock()
			return e, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, false
		}
		<-q.wake
	}
}

// deliverer POSTs events: one worker per call keeps a call's first attempts
// in order; redeliveries run from timers, out of order as Piopiy's do.
type deliverer struct {
	s       *Sim
	client  *http.Client
	ctx     context.Context // cancelled when Close gives up flushing
	cancel  context.CancelFunc
	workers sync.WaitGroup
	mu      sync.Mutex
	timers  map[*time.Timer]struct{}
	closed  bool
}

func newDeliverer(s *Sim) *deliverer {
	tr := &http.Transport{
		Proxy:               nil, // the receiver is local in every use of the sim
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &deliverer{s: s, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}, ctx: ctx, cancel: cancel, timers: map[*time.Timer]struct{}{}}
}

func (d *deliverer) start(c *call) {
	d.workers.Add(1)
	go d.worker(c)
}

func (d *deliverer) worker(c *call) {
	defer d.workers.Done()
	var held *eventRec // reorder fault: delivered after the next event
	for {
		ev, ok := c.q.pop()
		if !ok {
			break
		}
		f := d.s.deliveryFaultsFor(c.toS)
		if held == nil && f.appliesTo(ev.Status) && d.s.dice.roll(f.ReorderProb) {
			c.mu.Lock()
			ev.Faults = append(ev.Faults, "reordered")
			c.mu.Unlock()
			held = ev
			continue
		}
		d.first(c, ev, f)
		if held != nil {
			d.first(c, held, d.s.deliveryFaultsFor(c.toS))
			held = nil
		}
	}
	if held != nil {
		d.first(c, held, d.s.deliveryFaultsFor(c.toS))
	}
}

// first makes the first delivery attempt of an event, with delivery faults.
func (d *deliverer) first(c *call, ev *eventRec, f DeliveryFaults) {
	if c.dead.Load() {
		return
	}
	applies := f.appliesTo(ev.Status)
	if applies && f.Delay > 0 && (f.DelayProb == 0 || d.s.dice.roll(f.DelayProb)) {
		d.note(c, ev, "delayed")
		if !sleepCtx(d.ctx, f.Delay) {
			return
		}
	}
	if applies && d.s.dice.roll(f.DropProb) {
		d.note(c, ev, "dropped")
		c.mu.Lock()
		ev.Attempts = append(ev.Attempts, AttemptRecord{At: time.Now(), Dropped: true})
		c.mu.Unlock()
		d.scheduleRetry(c, ev, 0)
		return
	}
	if !d.post(c, ev, false) {
		d.scheduleRetry(c, ev, 0)
		return
	}
	if ev.Status == "cdr" && d.s.CurrentShapes().CDRRedelivery == CDRRedeliveryAlways {
		d.scheduleRetry(c, ev, 0)
	}
	if applies && d.s.dice.roll(f.DuplicateProb) {
		d.note(c, ev, "duplicated")
		d.post(c, ev, true)
	}
}

func (d *deliverer) note(c *call, ev *eventRec, fault string) {
	c.mu.Lock()
	ev.Faults = append(ev.Faults, fault)
	c.mu.Unlock()
}

// scheduleRetry arms redelivery number n+1 (0-based n), or gives up after
// the third. With CDRRedeliveryAlways a CDR goes through all three anyway.
func (d *deliverer) scheduleRetry(c *call, ev *eventRec, n int) {
	if n >= len(redeliveryGaps) {
		c.mu.Lock()
		gaveUp := !ev.Delivered
		ev.GaveUp = gaveUp
		c.mu.Unlock()
		if gaveUp {
			d.s.log.Info("webhook: giving up", "request_id", c.id, "status", ev.Status, "seq", ev.Seq)
		}
		return
	}
	gap := time.Duration(float64(redeliveryGaps[n]) * d.s.scale)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		d.s.log.Warn("webhook: dropping redelivery at shutdown", "request_id", c.id, "status", ev.Status)
		return
	}
	var t *time.Timer
	t = time.AfterFunc(gap, func() {
		d.mu.Lock()
		if _, ok := d.timers[t]; !ok { // stopped by close
			d.mu.Unlock()
			return
		}
		delete(d.timers, t)
		d.workers.Add(1)
		d.mu.Unlock()
		defer d.workers.Done()
		if c.dead.Load() {
			return
		}
		if !d.post(c, ev, false) || (ev.Status == "cdr" && d.s.CurrentShapes().CDRRedelivery == CDRRedeliveryAlways) {
			d.scheduleRetry(c, ev, n+1)
		}
	})
	d.timers[t] = struct{}{}
}

// post makes one HTTP attempt; true on a 2xx reply.
func (d *deliverer) post(c *call, ev *eventRec, duplicate bool) bool {
	url := d.s.currentWebhookURL()
	c.mu.Lock()
	body := ev.Payload
	retry := 0
	for _, a := range ev.Attempts {
		if !a.Duplicate {
			retry++
		}
	}
	c.mu.Unlock()
	att := AttemptRecord{At: time.Now(), Duplicate: duplicate, Redelivery: retry > 0 && !duplicate}
	ok := false
	if url == "" {
		att.Error = "no webhook url configured"
	} else {
		ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("User-Agent", "piopiy-sim")
			var resp *http.Response
			if resp, err = d.client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				_ = resp.Body.Close()
				att.HTTPStatus = resp.StatusCode
				ok = resp.StatusCode/100 == 2
				if !ok {
					att.Error = fmt.Sprintf("receiver replied %d", resp.StatusCode)
				}
			}
		}
		cancel()
		if err != nil {
			att.Error = err.Error()
		}
	}
	c.mu.Lock()
	ev.Attempts = append(ev.Attempts, att)
	if ok && ev.DeliveredAt == nil {
		t := att.At
		ev.Delivered, ev.DeliveredAt = true, &t
	}
	c.mu.Unlock()
	if !ok {
		d.s.log.Debug("webhook attempt failed", "request_id", c.id, "status", ev.Status, "err", att.Error)
	}
	return ok
}

// close flushes queued first attempts until ctx ends, then drops scheduled
// redeliveries with a log line.
func (d *deliverer) close(ctx context.Context) error {
	d.mu.Lock()
	d.closed = true
	n := len(d.timers)
	for t := range d.timers {
		t.Stop()
	}
	d.timers = map[*time.Timer]struct{}{}
	d.mu.Unlock()
	if n > 0 {
		d.s.log.Warn("webhook: dropping scheduled redeliveries at shutdown", "count", n)
	}
	done := make(chan struct{})
	go func() { d.workers.Wait(); close(done) }()
	select {
	case <-done:
		d.cancel()
		return nil
	case <-ctx.Done():
		d.cancel()
		d.s.log.Warn("webhook: shutdown deadline reached, dropping undelivered events")
		return fmt.Errorf("sim: webhook flush: %w", ctx.Err())
	}
}
