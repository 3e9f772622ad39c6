package sim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	piopiyv3 "github.com/callfleet/callfleet/pkg/piopiy/v3"
)

// V3Account is one v3 credential the sim accepts: a Bearer token and the
// app id PCMO calls made with it must name.
type V3Account struct {
	Token string
	AppID string
}

// v3State is the v3 side of the sim: https://rest.piopiy.com/v3, served
// under /v3. Calls, transfers and faults follow piopiy-api.md's v3 section;
// bodies are checked by the official SDK's rules (pkg/piopiy/v3.Validate).
type v3State struct {
	mu        sync.Mutex
	accounts  map[string]string // token → app id
	stopped   map[string]bool   // hosted agents answering 403 ai_agent_not_running
	calls     map[string]*v3Call
	order     []*v3Call
	transfers map[string]*v3Transfer
}

func newV3State(accounts []V3Account) (*v3State, error) {
	st := &v3State{accounts: map[string]string{}, stopped: map[string]bool{}, calls: map[string]*v3Call{}, transfers: map[string]*v3Transfer{}}
	for _, a := range accounts {
		if strings.TrimSpace(a.Token) == "" {
			return nil, errors.New("sim: v3 account with an empty token")
		}
		st.accounts[a.Token] = a.AppID
	}
	return st, nil
}

// v3Routes registers the v3 endpoints.
func (s *Sim) v3Routes(m *http.ServeMux) {
	m.HandleFunc("POST /v3/voice/ai/call", s.v3Create("ai", piopiyv3.EndpointAICall))
	m.HandleFunc("POST /v3/voice/pcmo/call", s.v3Create("pcmo", piopiyv3.EndpointPCMOCall))
	m.HandleFunc("GET /v3/calls/{id}", s.v3GetCall)
	m.HandleFunc("POST /v3/calls/{id}/actions/transfer", s.v3Transfer)
	m.HandleFunc("POST /v3/calls/{id}/actions/hangup", s.v3CallHangup)
	m.HandleFunc("POST /v3/voice/call/hangup", s.v3VoiceHangup)
	m.HandleFunc("POST /v3/voice/pcmo/transfer", s.v3PCMOTransfer)
	m.HandleFunc("GET /v3/transfers/{id}", s.v3GetTransfer)
	m.HandleFunc("/v3/", func(w http.ResponseWriter, r *http.Request) {
		v3Error(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	m.HandleFunc("GET /sim/v3/calls", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, s.V3Calls()) })
	m.HandleFunc("PUT /sim/v3/stopped-agents", s.handlePutStoppedAgents)
}

// SetStoppedAgents makes calls to these hosted agents fail with
// 403 ai_agent_not_running (nil: every agent runs).
func (s *Sim) SetStoppedAgents(ids ...string) {
	s.v3.mu.Lock()
	defer s.v3.mu.Unlock()
	s.v3.stopped = map[string]bool{}
	for _, id := range ids {
		s.v3.stopped[id] = true
	}
}

func (s *Sim) handlePutStoppedAgents(w http.ResponseWriter, r *http.Request) {
	var ids []string
	b, err := readAll(r, maxBody)
	if err == nil {
		err = json.Unmarshal(b, &ids)
	}
	if err != nil {
		v3Error(w, http.StatusBadRequest, "validation_error", "want a JSON array of agent ids")
		return
	}
	s.SetStoppedAgents(ids...)
	writeJSON(w, ids)
}

// v3Error writes Piopiy's v3 error body.
func v3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": msg, "request_id": newCMIUUID()})
}

// v3Auth checks the Bearer token and returns its app id.
func (s *Sim) v3Auth(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.v3.mu.Lock()
	app, known := s.v3.accounts[strings.TrimSpace(tok)]
	s.v3.mu.Unlock()
	if !ok || !known {
		v3Error(w, http.StatusUnauthorized, "unauthorized", "missing or invalid bearer token")
		return "", false
	}
	return app, true
}

// v3PreFaults applies latency, reset, 429 and 5xx like the v2 side, with
// v3 error bodies. It reports false when the request has been answered.
func (s *Sim) v3PreFaults(w http.ResponseWriter, r *http.Request, f RESTFaults) bool {
	if f.Latency > 0 && (f.LatencyProb == 0 || s.dice.roll(f.LatencyProb)) {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false
		}
	}
	switch {
	case s.dice.roll(f.ResetProb):
		s.log.Info("fault: connection reset", "path", r.URL.Path)
		resetConn(w)
	case s.dice.roll(f.TooManyProb):
		s.log.Info("fault: 429", "path", r.URL.Path)
		v3Error(w, http.StatusTooManyRequests, "rate_limited", "too many requests")
	case s.dice.roll(f.ServerErrProb):
		code := serverErrCode(f)
		s.log.Info("fault: 5xx", "path", r.URL.Path, "code", code)
		v3Error(w, code, "server_error", http.StatusText(code))
	default:
		return true
	}
	return false
}

// v3Ambiguous loses the reply of a create that did place the call.
func (s *Sim) v3Ambiguous(w http.ResponseWriter, r *http.Request, f RESTFaults, callID string) bool {
	if !s.dice.roll(f.AmbiguousProb) {
		return false
	}
	mode := f.AmbiguousMode
	if mode == "" {
		mode = AmbiguousClose
	}
	s.log.Info("fault: ambiguous v3 create", "mode", mode, "call_id", callID)
	switch mode {
	case Ambiguous5xx:
		code := serverErrCode(f)
		v3Error(w, code, "server_error", http.StatusText(code))
	case AmbiguousHang:
		select {
		case <-r.Context().Done():
		case <-s.ctx.Done():
		}
		resetConn(w)
	default:
		resetConn(w)
	}
	return true
}

// v3Body reads and validates a body by the SDK's rules.
func v3Body(w http.ResponseWriter, r *http.Request, ep piopiyv3.Endpoint) (map[string]any, []byte, bool) {
	b, err := readAll(r, maxBody)
	if err != nil {
		v3Error(w, http.StatusBadRequest, "validation_error", err.Error())
		return nil, nil, false
	}
	if err := piopiyv3.Validate(ep, b); err != nil {
		var pe *piopiyv3.Error
		msg := err.Error()
		if errors.As(err, &pe) {
			msg = pe.Message
		}
		v3Error(w, http.StatusBadRequest, "validation_error", msg)
		return nil, nil, false
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m) // validated above
	return m, b, true
}

func (s *Sim) v3Create(kind string, ep piopiyv3.Endpoint) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		app, ok := s.v3Auth(w, r)
		if !ok {
			return
		}
		b, err := readAll(r, maxBody)
		if err != nil {
			v3Error(w, http.StatusBadRequest, "validation_error", err.Error())
			return
		}
		// Per-number faults are keyed by to_number, read before validation.
		var peek struct {
			To string `json:"to_number"`
		}
		_ = json.Unmarshal(b, &peek)
		f := s.restFaultsFor(peek.To)
		if !s.v3PreFaults(w, r, f) {
			return
		}
		if err := piopiyv3.Validate(ep, b); err != nil {
			var pe *piopiyv3.Error
			errors.As(err, &pe)
			v3Error(w, http.StatusBadRequest, "validation_error", pe.Message)
			return
		}
		var req v3CreateBody
		_ = json.Unmarshal(b, &req)
		if kind == "pcmo" && app != "" && req.AppID != app {
			v3Error(w, http.StatusForbidden, "forbidden", "app_id does not belong to this token")
			return
		}
		agent := req.AgentID
		if kind == "pcmo" {
			agent = pipelineAgent(req.Pipeline)
		}
		s.v3.mu.Lock()
		stopped := agent != "" && s.v3.stopped[agent]
		s.v3.mu.Unlock()
		if stopped {
			v3Error(w, http.StatusForbidden, piopiyv3.CodeAgentNotRunning, "AI agent "+agent+" is not running")
			return
		}
		c, err := s.v3Place(kind, app, req, b)
		if err != nil {
			v3Error(w, http.StatusServiceUnavailable, "server_error", err.Error())
			return
		}
		if s.v3Ambiguous(w, r, f, c.id) {
			return
		}
		writeJSON(w, map[string]any{"call_id": c.id, "status": piopiyv3.CallQueued})
	}
}

// v3CreateBody is what the sim reads of a validated create.
type v3CreateBody struct {
	CallerID  string            `json:"caller_id"`
	To        string            `json:"to_number"`
	AgentID   string            `json:"agent_id"`
	AppID     string            `json:"app_id"`
	Pipeline  []json.RawMessage `json:"pipeline"`
	Variables map[string]any    `json:"variables"`
	Options   struct {
		MaxDurationSec int `json:"max_duration_sec"`
		RingTimeoutSec int `json:"ring_timeout_sec"`
	} `json:"options"`
}

// pipelineAgent is the first hosted agent a pipeline connects to.
func pipelineAgent(p []json.RawMessage) string {
	for _, raw := range p {
		var a struct {
			Action    string `json:"action"`
			Endpoints []struct {
				Type string `json:"type"`
				ID   string `json:"id"`
			} `json:"endpoints"`
		}
		if json.Unmarshal(raw, &a) == nil && a.Action == "connect" {
			for _, e := range a.Endpoints {
				if e.Type == "agent" {
					return e.ID
				}
			}
		}
	}
	return ""
}

// v3Live finds a live call of the request's path, answering 404 when it
// has ended or never existed, as Piopiy does.
func (s *Sim) v3Live(w http.ResponseWriter, id string) *v3Call {
	s.v3.mu.Lock()
	c := s.v3.calls[id]
	s.v3.mu.Unlock()
	if c == nil || c.ended() {
		v3Error(w, http.StatusNotFound, "not_found", "call "+id+" not found or already ended")
		return nil
	}
	return c
}

// v3FaultsFor picks the REST faults of a request about a call: those of
// its number (Faults.RESTNumbers), as for its create, else the global ones.
func (s *Sim) v3FaultsFor(callID string) RESTFaults {
	s.v3.mu.Lock()
	c := s.v3.calls[callID]
	s.v3.mu.Unlock()
	if c == nil {
		return s.restFaultsFor("")
	}
	return s.restFaultsFor(c.to)
}

func (s *Sim) v3GetCall(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.v3Auth(w, r); !ok || !s.v3PreFaults(w, r, s.v3FaultsFor(r.PathValue("id"))) {
		return
	}
	c := s.v3Live(w, r.PathValue("id"))
	if c == nil {
		return
	}
	c.mu.Lock()
	out := map[string]any{"call_id": c.id, "status": c.status, "caller_id": c.from, "to_number": c.to}
	if len(c.variables) > 0 {
		out["variables"] = c.variables
	}
	c.mu.Unlock()
	writeJSON(w, out)
}

func (s *Sim) v3CallHangup(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.v3Auth(w, r); !ok || !s.v3PreFaults(w, r, s.v3FaultsFor(r.PathValue("id"))) {
		return
	}
	if _, _, ok := v3Body(w, r, piopiyv3.EndpointCallHangup); !ok {
		return
	}
	c := s.v3Live(w, r.PathValue("id"))
	if c == nil {
		return
	}
	c.hangup("hangup_api")
	writeJSON(w, map[string]any{"request_id": newCMIUUID(), "call_id": c.id})
}

func (s *Sim) v3VoiceHangup(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.v3Auth(w, r); !ok || !s.v3PreFaults(w, r, s.restFaultsFor("")) {
		return
	}
	m, _, ok := v3Body(w, r, piopiyv3.EndpointHangup)
	if !ok {
		return
	}
	c := s.v3Live(w, m["call_id"].(string))
	if c == nil {
		return
	}
	c.hangup("hangup_api")
	writeJSON(w, map[string]any{"request_id": newCMIUUID(), "call_id": c.id})
}

func (s *Sim) v3PCMOTransfer(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.v3Auth(w, r); !ok || !s.v3PreFaults(w, r, s.restFaultsFor("")) {
		return
	}
	m, b, ok := v3Body(w, r, piopiyv3.EndpointPCMOTransfer)
	if !ok {
		return
	}
	c := s.v3Live(w, m["call_id"].(string))
	if c == nil {
		return
	}
	t, busy := c.startTransfer(s, "pipeline", "", 0, b)
	if busy != nil {
		v3Error409(w, busy.id)
		return
	}
	writeJSON(w, map[string]any{"request_id": t.id, "call_id": c.id})
}

func v3Error409(w http.ResponseWriter, inProgress string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusConflict)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": piopiyv3.CodeTransferInProgress, "message": "a transfer is already in progress for this call", "request_id": inProgress})
}

func (s *Sim) v3Transfer(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.v3Auth(w, r); !ok || !s.v3PreFaults(w, r, s.v3FaultsFor(r.PathValue("id"))) {
		return
	}
	m, b, ok := v3Body(w, r, piopiyv3.EndpointTransfer)
	if !ok {
		return
	}
	c := s.v3Live(w, r.PathValue("id"))
	if c == nil {
		return
	}
	kind, target := "pipeline", ""
	if v, ok := m["to_number"].(string); ok {
		kind, target = "pstn", v
	} else if v, ok := m["sip_uri"].(string); ok {
		kind, target = "sip", v
	}
	timeout := 30 * time.Second
	if v, ok := m["timeout_sec"].(float64); ok {
		timeout = time.Duration(v) * time.Second
	}
	t, busy := c.startTransfer(s, kind, target, timeout, b)
	if busy != nil {
		v3Error409(w, busy.id)
		return
	}
	writeJSON(w, map[string]any{"request_id": t.id, "call_id": c.id})
}

func (s *Sim) v3GetTransfer(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.v3Auth(w, r); !ok || !s.v3PreFaults(w, r, s.restFaultsFor("")) {
		return
	}
	s.v3.mu.Lock()
	t := s.v3.transfers[r.PathValue("id")]
	s.v3.mu.Unlock()
	// Piopiy keeps a transfer's status 15 minutes.
	if t == nil || t.expired(time.Now()) {
		v3Error(w, http.StatusNotFound, "not_found", "transfer "+r.PathValue("id")+" not found")
		return
	}
	writeJSON(w, t.view())
}

// resetV3 ends every v3 call silently and forgets them.
func (s *Sim) resetV3(ctx context.Context) error {
	s.v3.mu.Lock()
	calls := s.v3.order
	s.v3.calls, s.v3.order, s.v3.transfers = map[string]*v3Call{}, nil, map[string]*v3Transfer{}
	s.v3.mu.Unlock()
	for _, c := range calls {
		c.cancel(errReset)
	}
	for _, c := range calls {
		select {
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
