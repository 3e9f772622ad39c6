package sim

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// CallRecord is everything the sim knows about one call (GET /sim/calls).
type CallRecord struct {
	RequestID   string          `json:"request_id"`
	AppID       int64           `json:"appid"`
	Route       string          `json:"route"` // ind | global
	From        string          `json:"from"`
	To          string          `json:"to"`
	ExtraParams json.RawMessage `json:"extra_params"` // the make-call object as sent
	Duration    int64           `json:"duration"`     // make-call max seconds
	PCMO        json.RawMessage `json:"pcmo"`
	CMIUUID     string          `json:"cmiuuid"` // leg a
	State       string          `json:"state"`   // dialing | ringing | answered | ended
	// Outcome: answered | voicemail | busy | noanswer | rejected | canceled ("" while undecided).
	Outcome     string         `json:"outcome"`
	HangupCause string         `json:"hangup_cause,omitempty"` // callee | duration | api | pcmo | pcmo_end | bridge_ended | busy | ...
	DialedAt    time.Time      `json:"dialed_at"`
	RingingAt   *time.Time     `json:"ringing_at,omitempty"`
	AnsweredAt  *time.Time     `json:"answered_at,omitempty"`
	EndedAt     *time.Time     `json:"ended_at,omitempty"`
	Streams     []StreamRecord `json:"streams"`
	Bridges     []BridgeRecord `json:"bridges"`
	Plays       []PlayRecord   `json:"plays"`   // play, speak, param, record, input, hangup actions run
	Actions     []ActionRecord `json:"actions"` // POST /v1/call/action requests accepted
	Events      []EventRecord  `json:"events"`
}

// StreamRecord is one stream action's WebSocket.
type StreamRecord struct {
	WSURL          string     `json:"ws_url"`
	DialedURL      string     `json:"dialed_url"` // ws_url as dialed (the query stripped unless Shapes keeps it)
	CMIUUID        string     `json:"cmiuuid"`    // what its stream events carry
	ListenMode     string     `json:"listen_mode"`
	SampleRate     int        `json:"sample_rate"`
	OnAnswer       bool       `json:"stream_on_answer"`
	Source         string     `json:"source"` // make-call | socket | action_url
	DialedAt       time.Time  `json:"dialed_at"`
	ConnectedAt    *time.Time `json:"connected_at,omitempty"`
	DisconnectedAt *time.Time `json:"disconnected_at,omitempty"`
	DialError      string     `json:"dial_error,omitempty"`
	CloseCode      int        `json:"close_code,omitempty"`
	CloseReason    string     `json:"close_reason,omitempty"`
	ClosedBy       string     `json:"closed_by,omitempty"` // sim | peer
	FramesSent     int64      `json:"frames_sent"`         // binary audio frames sent
	BytesSent      int64      `json:"bytes_sent"`
	FramesReceived int64      `json:"frames_received"` // every message received
	Audio          AudioStats `json:"audio"`           // streamAudio accepted
	Rejected       []Note     `json:"rejected,omitempty"`
	Ignored        []Note     `json:"ignored,omitempty"`
	IgnoredCount   int        `json:"ignored_count"`
	Pauses         []Pause    `json:"pauses,omitempty"`
	Breaks         []Break    `json:"breaks,omitempty"`
	StoppedAt      *time.Time `json:"stopped_at,omitempty"`
	PCMOs          []PCMONote `json:"pcmos,omitempty"` // PCMO arrays received on the socket
}

// AudioStats sums the streamAudio frames the sim accepted for playing.
type AudioStats struct {
	Frames      int64            `json:"frames"`
	Bytes       int64            `json:"bytes"`         // decoded
	PlayedMs    int64            `json:"played_ms"`     // raw and wav; mp3/ogg count bytes only
	BytesByType map[string]int64 `json:"bytes_by_type"` // raw | mp3 | wav | ogg
	SampleRates []int            `json:"sample_rates"`
}

// Note is a frame that was rejected or ignored, and why.
type Note struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	Frame  string    `json:"frame,omitempty"` // start of the frame
}

type Pause struct {
	PausedAt  time.Time  `json:"paused_at"`
	ResumedAt *time.Time `json:"resumed_at,omitempty"`
}

// Break is a barge-in: CutMs of queued audio were dropped.
type Break struct {
	At    time.Time `json:"at"`
	CutMs int64     `json:"cut_ms"`
}

type PCMONote struct {
	At      time.Time `json:"at"`
	Actions []string  `json:"actions,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// BridgeRecord is one bridge/connect action.
type BridgeRecord struct {
	Kind            string         `json:"kind"`   // bridge | connect
	Source          string         `json:"source"` // make-call | socket | action_url
	From            string         `json:"from"`
	Targets         []string       `json:"targets"`
	Group           bool           `json:"group"`
	TimeoutSeconds  int64          `json:"timeout"`
	Loop            int64          `json:"loop"`
	DurationSeconds int64          `json:"duration"`
	StartedAt       time.Time      `json:"started_at"`
	Answered        bool           `json:"answered"`
	Agent           string         `json:"agent,omitempty"`
	AgentCMIUUID    string         `json:"agent_cmiuuid,omitempty"`
	AnsweredAt      *time.Time     `json:"answered_at,omitempty"`
	EndedAt         *time.Time     `json:"ended_at,omitempty"`
	EndCause        string         `json:"end_cause,omitempty"`
	Attempts        []AgentAttempt `json:"attempts"`
}

// AgentAttempt is one agent leg rung by a bridge.
type AgentAttempt struct {
	Agent      string     `json:"agent"`
	CMIUUID    string     `json:"cmiuuid"`
	RangAt     time.Time  `json:"rang_at"`
	Outcome    string     `json:"outcome,omitempty"` // answered | busy | noanswer | canceled | ...
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
}

type PlayRecord struct {
	At       time.Time `json:"at"`
	Action   string    `json:"action"`
	Source   string    `json:"source"`
	FileName string    `json:"file_name,omitempty"`
	FileURL  string    `json:"file_url,omitempty"`
	Text     string    `json:"text,omitempty"`
	Result   string    `json:"result,omitempty"`
}

type ActionRecord struct {
	At      time.Time `json:"at"`
	CMIUUID string    `json:"cmiuuid"`
	Leg     string    `json:"leg"`
	Action  string    `json:"action"`
}

// EventRecord is one webhook (live event or CDR) and its delivery.
type EventRecord struct {
	Seq         int             `json:"seq"`
	Status      string          `json:"status"` // started ... hangup, stream_connected, STREAM_DISCONNECTED, cdr
	Leg         string          `json:"leg"`
	CMIUUID     string          `json:"cmiuuid"`
	CreatedAt   time.Time       `json:"created_at"`
	Payload     json.RawMessage `json:"payload"`
	Faults      []string        `json:"faults,omitempty"` // delayed | dropped | duplicated | reordered
	Attempts    []AttemptRecord `json:"attempts"`
	Delivered   bool            `json:"delivered"`
	DeliveredAt *time.Time      `json:"delivered_at,omitempty"`
	GaveUp      bool            `json:"gave_up,omitempty"`
}

type AttemptRecord struct {
	At         time.Time `json:"at"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"`
	Dropped    bool      `json:"dropped,omitempty"`    // a drop fault: never sent
	Duplicate  bool      `json:"duplicate,omitempty"`  // a duplicate fault's second copy
	Redelivery bool      `json:"redelivery,omitempty"` // a scheduled retry
}

// AgentRecord shows one agent number's legs over time (GET /sim/agents).
type AgentRecord struct {
	Number string `json:"number"`
	// MaxConcurrent is the most calls the agent was talking on at once
	// (answered to ended); MaxConcurrentRung counts from ringing.
	MaxConcurrent     int         `json:"max_concurrent"`
	MaxConcurrentRung int         `json:"max_concurrent_rung"`
	Legs              []AgentSpan `json:"legs"`
}

type AgentSpan struct {
	RequestID  string     `json:"request_id"`
	CMIUUID    string     `json:"cmiuuid"`
	RangAt     time.Time  `json:"rang_at"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	Outcome    string     `json:"outcome,omitempty"`
}

// snapshot copies the call's record; safe to hand out.
func (c *call) snapshot() CallRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rec
	r.Streams = make([]StreamRecord, 0, len(c.streams))
	for _, st := range c.streams {
		r.Streams = append(r.Streams, st.snapshotLocked())
	}
	r.Bridges = make([]BridgeRecord, 0, len(c.bridges))
	for _, b := range c.bridges {
		br := b.rec
		br.Targets = slices.Clone(br.Targets)
		br.Attempts = make([]AgentAttempt, 0, len(b.attempts))
		for _, a := range b.attempts {
			br.Attempts = append(br.Attempts, *a)
		}
		r.Bridges = append(r.Bridges, br)
	}
	r.Plays = slices.Clone(c.plays)
	r.Actions = slices.Clone(c.actions)
	r.Events = make([]EventRecord, 0, len(c.events))
	for _, e := range c.events {
		er := e.EventRecord
		er.Faults = slices.Clone(er.Faults)
		er.Attempts = slices.Clone(er.Attempts)
		r.Events = append(r.Events, er)
	}
	if r.Plays == nil {
		r.Plays = []PlayRecord{}
	}
	if r.Actions == nil {
		r.Actions = []ActionRecord{}
	}
	return r
}

func (s *Sim) callList() []*call {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.order)
}

// Calls returns a snapshot of every call, in dial order (as GET /sim/calls).
func (s *Sim) Calls() []CallRecord {
	calls := s.callList()
	out := make([]CallRecord, 0, len(calls))
	for _, c := range calls {
		out = append(out, c.snapshot())
	}
	return out
}

// Agents returns every agent number's legs (as GET /sim/agents).
func (s *Sim) Agents() []AgentRecord {
	by := map[string]*AgentRecord{}
	for _, cr := range s.Calls() {
		for _, b := range cr.Bridges {
			for _, a := range b.Attempts {
				ar := by[a.Agent]
				if ar == nil {
					ar = &AgentRecord{Number: a.Agent}
					by[a.Agent] = ar
				}
				ar.Legs = append(ar.Legs, AgentSpan{RequestID: cr.RequestID, CMIUUID: a.CMIUUID, RangAt: a.RangAt, AnsweredAt: a.AnsweredAt, EndedAt: a.EndedAt, Outcome: a.Outcome})
			}
		}
	}
	out := make([]AgentRecord, 0, len(by))
	for _, ar := range by {
		sort.Slice(ar.Legs, func(i, j int) bool { return ar.Legs[i].RangAt.Before(ar.Legs[j].RangAt) })
		ar.MaxConcurrent = maxOverlap(ar.Legs, true)
		ar.MaxConcurrentRung = maxOverlap(ar.Legs, false)
		out = append(out, *ar)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out
}

// maxOverlap sweeps interval ends; an unended leg is open until now.
func maxOverlap(legs []AgentSpan, answeredOnly bool) int {
	type edge struct {
		t     time.Time
		delta int
	}
	var edges []edge
	far := time.Now().Add(time.Hour)
	for _, l := range legs {
		start := l.RangAt
		if answeredOnly {
			if l.AnsweredAt == nil {
				continue
			}
			start = *l.AnsweredAt
		}
		end := far
		if l.EndedAt != nil {
			end = *l.EndedAt
		}
		edges = append(edges, edge{start, 1}, edge{end, -1})
	}
	// Ends sort before starts at the same instant: back-to-back is not overlap.
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].t.Equal(edges[j].t) {
			return edges[i].delta < edges[j].delta
		}
		return edges[i].t.Before(edges[j].t)
	})
	cur, best := 0, 0
	for _, e := range edges {
		cur += e.delta
		best = max(best, cur)
	}
	return best
}

func (s *Sim) handleCalls(w http.ResponseWriter, r *http.Request) {
	to, id := r.URL.Query().Get("to"), r.URL.Query().Get("request_id")
	out := []CallRecord{}
	for _, c := range s.callList() {
		if (to != "" && c.toS != to) || (id != "" && c.id != id) {
			continue
		}
		out = append(out, c.snapshot())
	}
	writeJSON(w, out)
}

func (s *Sim) handleCall(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	c, ok := s.calls[r.PathValue("id")]
	s.mu.RUnlock()
	if !ok {
		writeError(w, errf(http.StatusNotFound, "no call %s", r.PathValue("id")))
		return
	}
	writeJSON(w, c.snapshot())
}

func (s *Sim) handleAgents(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.Agents())
}

func (s *Sim) handleReset(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if err := s.Reset(ctx); err != nil {
		writeError(w, errf(http.StatusInternalServerError, "%v", err))
		return
	}
	writeJSON(w, map[string]any{"status": "reset"})
}

func (s *Sim) handleGetScenario(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.currentScenario())
}

// handlePutScenario takes YAML or JSON, the same format as --scenario.
func (s *Sim) handlePutScenario(w http.ResponseWriter, r *http.Request) {
	b, err := readAll(r, maxBody)
	if err != nil {
		writeError(w, errf(http.StatusBadRequest, "%v", err))
		return
	}
	sc, err := ParseScenario(b)
	if err != nil {
		writeError(w, errf(http.StatusBadRequest, "scenario: %v", err))
		return
	}
	s.SetScenario(sc)
	writeJSON(w, s.currentScenario())
}

func (s *Sim) handleGetFaults(w http.ResponseWriter, _ *http.Request) {
	s.mu.RLock()
	f := s.faults
	s.mu.RUnlock()
	writeJSON(w, f)
}

// handlePutFaults takes YAML or JSON; an empty body clears every fault.
func (s *Sim) handlePutFaults(w http.ResponseWriter, r *http.Request) {
	b, err := readAll(r, maxBody)
	if err != nil {
		writeError(w, errf(http.StatusBadRequest, "%v", err))
		return
	}
	f, err := ParseFaults(b)
	if err != nil {
		writeError(w, errf(http.StatusBadRequest, "faults: %v", err))
		return
	}
	s.SetFaults(f)
	writeJSON(w, f)
}

// ParseFaults parses YAML or JSON faults (unknown keys are errors).
func ParseFaults(b []byte) (Faults, error) {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return Faults{}, err
	}
	var f Faults
	if t := strings.TrimSpace(string(j)); t != "" && t != "null" {
		if err := strictUnmarshal(j, &f); err != nil {
			return Faults{}, err
		}
	}
	if err := f.validate(); err != nil {
		return Faults{}, err
	}
	return f, nil
}

func (s *Sim) handleGetWebhook(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]string{"url": s.currentWebhookURL()})
}

func (s *Sim) handlePutWebhook(w http.ResponseWriter, r *http.Request) {
	var v struct {
		URL string `json:"url"`
	}
	b, err := readAll(r, maxBody)
	if err == nil {
		err = strictUnmarshal(b, &v)
	}
	if err != nil {
		writeError(w, errf(http.StatusBadRequest, "want {\"url\":\"...\"}: %v", err))
		return
	}
	s.SetWebhookURL(v.URL)
	writeJSON(w, v)
}

// Stats is a summary for benchmarks and the demo (GET /sim/stats).
type Stats struct {
	Calls       int            `json:"calls"`
	ActiveCalls int            `json:"active_calls"`
	LiveStreams int            `json:"live_streams"`
	Lateness    LatenessReport `json:"lateness"`
}

// Stats summarises the calls and the sender lateness histogram.
func (s *Sim) Stats() Stats {
	st := Stats{Lateness: s.late.report()}
	for _, c := range s.callList() {
		st.Calls++
		c.mu.Lock()
		if !c.closing {
			st.ActiveCalls++
		}
		for _, x := range c.streams {
			if !x.closed && x.rec.ConnectedAt != nil {
				st.LiveStreams++
			}
		}
		c.mu.Unlock()
	}
	return st
}

func (s *Sim) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.Stats())
}
