package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/sim"
)

// printer writes timestamped lines, one writer at a time.
type printer struct {
	mu     sync.Mutex
	out    io.Writer
	closed bool
}

// close drops every later line: the watchers may still be mid-event when
// the demo starts stopping.
func (p *printer) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
}

func (p *printer) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	sayf(p.out, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (p *printer) raw(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	sayf(p.out, "%s", s)
}

const callRow = "%-20s %-14s %-11s %-13s %-16s %-18s %s"

func callHeader() string {
	return fmt.Sprintf("%-8s  "+callRow+"\n", "TIME", "CALL", "TO", "PHASE", "ATTEMPTS", "STREAM", "AGENT (HANDOFF)", "DISPOSITION")
}

func renderCall(c *voicev1alpha1.Call) string {
	attempts := "0"
	if n := len(c.Status.Attempts); n > 0 {
		attempts = fmt.Sprintf("%d/%d", c.Status.Attempts[n-1].Number, max(c.Spec.Retry.MaxAttempts, 1))
		if o := c.Status.Attempts[n-1].Outcome; o != "" {
			attempts += " " + string(o)
		}
	}
	stream := "-"
	if st := c.Status.Stream; st != nil && st.State != "" {
		stream = string(st.State)
		if st.Monitoring {
			stream += " (mon)"
		}
	}
	agent := "-"
	if h := c.Status.Handoff; h != nil && h.Phase != "" {
		agent = fmt.Sprintf("%s (%s)", orDash(h.Agent), h.Phase)
	} else if c.Spec.Handoff != nil && c.Spec.Handoff.Requested {
		agent = "- (requested)"
	}
	phase := orDash(string(c.Status.Phase))
	disposition := "-"
	if r := c.Status.Result; r != nil && r.Disposition != "" {
		disposition = r.Disposition + " (" + string(r.ReportedBy) + ")"
	}
	return fmt.Sprintf(callRow, c.Name, c.Spec.To, phase, attempts, stream, agent, disposition)
}

func renderEndpoint(e *voicev1alpha1.StreamEndpoint) string {
	ready := "Ready=Unknown"
	if c := findCondition(e.Status.Conditions, "Ready"); c != nil {
		ready = fmt.Sprintf("Ready=%s (%s)", c.Status, c.Reason)
	}
	return fmt.Sprintf("streamendpoint/%s  %s  streams %d/%d  %s", e.Name, ready, e.Status.ActiveStreams, e.Status.Capacity, orDash(e.Status.URL))
}

func renderPool(p *voicev1alpha1.AgentPool) string {
	var busy []string
	for _, a := range p.Status.Agents {
		for _, r := range a.Reservations {
			busy = append(busy, a.Name+"→"+r.Call)
		}
	}
	s := fmt.Sprintf("agentpool/%s  agents %d, available %d, busy %d, queued %d", p.Name, p.Status.Total, p.Status.Available, p.Status.Busy, p.Status.Queued)
	if len(busy) > 0 {
		s += "  [" + strings.Join(busy, ", ") + "]"
	}
	return s
}

func renderCampaign(c *voicev1alpha1.Campaign) string {
	ready := "-"
	if cond := findCondition(c.Status.Conditions, "Ready"); cond != nil {
		ready = cond.Reason
	}
	s := fmt.Sprintf("campaign/%s  %s  total %d, pending %d, active %d, succeeded %d, failed %d, skipped %d",
		c.Name, ready, c.Status.Total, c.Status.Pending, c.Status.Active, c.Status.Succeeded, c.Status.Failed, c.Status.Skipped)
	if t := c.Status.NextWindowTime; t != nil && c.Status.Active == 0 {
		s += "  next window " + t.Format(time.RFC3339)
	}
	return s
}

func findCondition(cs []metav1.Condition, t string) *metav1.Condition {
	for i := range cs {
		if cs[i].Type == t {
			return &cs[i]
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// watcher prints Calls, StreamEndpoints and AgentPools as they change (as
// `kubectl get -w` would) and remembers the latest of each.
type watcher struct {
	c  client.WithWatch
	ns string
	p  *printer

	mu    sync.Mutex
	rows  map[string]string
	calls map[string]*voicev1alpha1.Call
	// handedOff remembers Calls seen in phase HandedOff.
	handedOff map[string]bool
	endpoints map[string]*voicev1alpha1.StreamEndpoint
	pools     map[string]*voicev1alpha1.AgentPool
}

func newWatcher(c client.WithWatch, ns string, p *printer) *watcher {
	return &watcher{c: c, ns: ns, p: p, rows: map[string]string{}, calls: map[string]*voicev1alpha1.Call{},
		handedOff: map[string]bool{}, endpoints: map[string]*voicev1alpha1.StreamEndpoint{}, pools: map[string]*voicev1alpha1.AgentPool{}}
}

func (w *watcher) run(ctx context.Context) {
	go w.loop(ctx, &voicev1alpha1.StreamEndpointList{})
	go w.loop(ctx, &voicev1alpha1.AgentPoolList{})
	go w.loop(ctx, &voicev1alpha1.CampaignList{})
	w.loop(ctx, &voicev1alpha1.CallList{})
}

// loop watches one kind, re-watching whenever the stream ends.
func (w *watcher) loop(ctx context.Context, list client.ObjectList) {
	for ctx.Err() == nil {
		wi, err := w.c.Watch(ctx, list, client.InNamespace(w.ns))
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
				continue
			}
		}
		for ev := range wi.ResultChan() {
			if ev.Type == watch.Error || ev.Type == watch.Bookmark {
				continue
			}
			w.observe(ev.Type, ev.Object)
		}
		wi.Stop()
	}
}

func (w *watcher) observe(t watch.EventType, o any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var key, row string
	switch obj := o.(type) {
	case *voicev1alpha1.Call:
		key = "call/" + obj.Name
		if t == watch.Deleted {
			delete(w.calls, obj.Name)
			w.p.line("%-20s deleted", obj.Name)
			delete(w.rows, key)
			return
		}
		w.calls[obj.Name] = obj
		if obj.Status.Phase == voicev1alpha1.CallHandedOff {
			w.handedOff[obj.Name] = true
		}
		row = renderCall(obj)
	case *voicev1alpha1.StreamEndpoint:
		key = "se/" + obj.Name
		if t == watch.Deleted {
			delete(w.endpoints, obj.Name)
			w.p.line("· streamendpoint/%s deleted", obj.Name)
			delete(w.rows, key)
			return
		}
		w.endpoints[obj.Name] = obj
		row = "· " + renderEndpoint(obj)
	case *voicev1alpha1.AgentPool:
		key = "ap/" + obj.Name
		if t == watch.Deleted {
			delete(w.pools, obj.Name)
			w.p.line("· agentpool/%s deleted", obj.Name)
			delete(w.rows, key)
			return
		}
		w.pools[obj.Name] = obj
		row = "· " + renderPool(obj)
	case *voicev1alpha1.Campaign:
		key = "cp/" + obj.Name
		if t == watch.Deleted {
			w.p.line("· campaign/%s deleted", obj.Name)
			delete(w.rows, key)
			return
		}
		row = "· " + renderCampaign(obj)
	default:
		return
	}
	if w.rows[key] == row {
		return
	}
	w.rows[key] = row
	w.p.line("%s", row)
}

func (w *watcher) call(name string) (*voicev1alpha1.Call, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.calls[name]
	return c, ok && w.handedOff[name]
}

// simWatcher polls piopiy-sim's record and prints what happened on the
// "phone network": dials, webhooks, streams, bridges, actions.
type simWatcher struct {
	url string
	p   *printer
	hc  *http.Client

	mu      sync.Mutex
	records []sim.CallRecord
	seen    map[string]*seenCall
}

type seenCall struct {
	events, pcmos, pauses, resumes, actions, plays int
	deliveries                                     map[int]int // event seq -> delivery attempts reported
	ended                                          bool
}

func newSimWatcher(url string, p *printer) *simWatcher {
	return &simWatcher{url: url, p: p, hc: &http.Client{Timeout: 3 * time.Second}, seen: map[string]*seenCall{}}
}

func (s *simWatcher) fetch() ([]sim.CallRecord, error) {
	resp, err := s.hc.Get(s.url + "/sim/calls")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /sim/calls: %s", resp.Status)
	}
	var recs []sim.CallRecord
	if err := json.NewDecoder(resp.Body).Decode(&recs); err != nil {
		return nil, fmt.Errorf("GET /sim/calls: %w", err)
	}
	return recs, nil
}

func (s *simWatcher) run(ctx context.Context, every time.Duration, quiet bool) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if recs, err := s.fetch(); err == nil {
			s.mu.Lock()
			s.records = recs
			if !quiet {
				for i := range recs {
					s.report(&recs[i])
				}
			}
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *simWatcher) latest() []sim.CallRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records
}

// callName is the Call a sim record belongs to (extra_params.callfleet_call).
func callName(r *sim.CallRecord) string {
	var ep map[string]any
	_ = json.Unmarshal(r.ExtraParams, &ep)
	if v, ok := ep["callfleet_call"].(string); ok {
		if _, name, ok := strings.Cut(v, "/"); ok {
			return name
		}
		return v
	}
	return "?"
}

func (s *simWatcher) report(r *sim.CallRecord) {
	sc := s.seen[r.RequestID]
	who := fmt.Sprintf("[sim] %s %s", callName(r), r.To)
	if sc == nil {
		sc = &seenCall{deliveries: map[int]int{}}
		s.seen[r.RequestID] = sc
		s.p.line("%s: make-call accepted from %s (request %s…)", who, r.From, short(r.RequestID))
	}
	events := append([]sim.EventRecord(nil), r.Events...)
	sort.Slice(events, func(i, j int) bool { return events[i].Seq < events[j].Seq })
	for i := sc.events; i < len(events); i++ {
		s.p.line("%s: %s", who, describeEvent(&events[i]))
	}
	if len(events) > sc.events {
		sc.events = len(events)
	}
	// Webhook deliveries worth a line: lost ones (faults, the manager down or
	// refusing) and the redeliveries that follow.
	for _, ev := range events {
		for i := sc.deliveries[ev.Seq]; i < len(ev.Attempts); i++ {
			a := ev.Attempts[i]
			switch {
			case a.Dropped:
				s.p.line("%s: webhook %s lost (a delivery fault); the sim redelivers it later", who, ev.Status)
			case a.Error != "" || (a.HTTPStatus != 0 && a.HTTPStatus/100 != 2):
				s.p.line("%s: webhook %s not accepted (%d %s); the sim redelivers it later", who, ev.Status, a.HTTPStatus, a.Error)
			case a.Redelivery:
				s.p.line("%s: webhook %s redelivered → %d", who, ev.Status, a.HTTPStatus)
			}
		}
		sc.deliveries[ev.Seq] = len(ev.Attempts)
	}
	var pcmos []sim.PCMONote
	var pauses []sim.Pause
	for _, st := range r.Streams {
		pcmos = append(pcmos, st.PCMOs...)
		pauses = append(pauses, st.Pauses...)
	}
	for i := sc.pcmos; i < len(pcmos); i++ {
		n := pcmos[i]
		if n.Error != "" {
			s.p.line("%s: PCMO on the stream refused: %s", who, n.Error)
		} else {
			s.p.line("%s: PCMO on the stream from the gateway: %s", who, strings.Join(n.Actions, ", "))
		}
	}
	sc.pcmos = max(sc.pcmos, len(pcmos))
	resumes := 0
	for _, ps := range pauses {
		if ps.ResumedAt != nil {
			resumes++
		}
	}
	for i := sc.pauses; i < len(pauses); i++ {
		s.p.line("%s: stream paused by the gateway (no audio to the bot, the call goes on)", who)
	}
	for i := sc.resumes; i < resumes; i++ {
		s.p.line("%s: stream resumed by the gateway", who)
	}
	sc.pauses, sc.resumes = max(sc.pauses, len(pauses)), max(sc.resumes, resumes)
	for i := sc.plays; i < len(r.Plays); i++ {
		pl := r.Plays[i]
		what := pl.Action
		if f := pl.FileName + pl.FileURL + pl.Text; f != "" {
			what += " " + f
		}
		if pl.Result != "" {
			what += " (" + pl.Result + ")"
		}
		s.p.line("%s: %s, from the %s", who, what, pl.Source)
	}
	sc.plays = max(sc.plays, len(r.Plays))
	for i := sc.actions; i < len(r.Actions); i++ {
		a := r.Actions[i]
		s.p.line("%s: call action %q on leg %s (REST, from the manager)", who, a.Action, a.Leg)
	}
	sc.actions = max(sc.actions, len(r.Actions))
	if r.State == "ended" && !sc.ended {
		sc.ended = true
		s.p.line("%s: call over: %s, hangup cause %s", who, orDash(r.Outcome), orDash(r.HangupCause))
	}
}

func describeEvent(ev *sim.EventRecord) string {
	var p map[string]any
	_ = json.Unmarshal(ev.Payload, &p)
	str := func(k string) string {
		switch v := p[k].(type) {
		case string:
			return v
		case float64:
			return fmt.Sprintf("%.0f", v)
		}
		return ""
	}
	leg := "leg " + ev.Leg
	if ev.Leg == "b" {
		leg = "agent " + str("to")
	}
	var what string
	switch ev.Status {
	case "cdr":
		what = fmt.Sprintf("CDR %s, %ss", str("status"), orDash(str("duration")))
	case "stream_connected", "STREAM_DISCONNECTED":
		what = ev.Status
		var ws struct {
			Status  string `json:"status"`
			Message struct {
				Code   int    `json:"code"`
				Reason string `json:"reason"`
			} `json:"message"`
		}
		if json.Unmarshal([]byte(str("ws_status")), &ws) == nil && ws.Message.Code != 0 && ev.Status != "stream_connected" {
			what += fmt.Sprintf(" (%d %s)", ws.Message.Code, ws.Message.Reason)
		}
	default:
		what = ev.Status
	}
	return fmt.Sprintf("%s %s → webhook", leg, what)
}

func short(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}
