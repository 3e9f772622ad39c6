package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
)

const maxBody = 1 << 20

func readAll(r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("body larger than %d bytes", limit)
	}
	return b, nil
}

// writeError replies {"code":n,"message":"..."} with HTTP status n.
func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Code)
	_ = json.NewEncoder(w).Encode(e)
}

// writeJSON answers 200 with v, indented.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Sim) handleMakeCall(route string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, aerr := parseBody(r, maxBody)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		// Per-number faults are keyed by "to"; peek it before validation so a
		// fault can hit a request that would also fail validation.
		to := ""
		if n, err := positiveInt(b["to"]); err == nil {
			to = strconv.FormatInt(n, 10)
		}
		f := s.restFaultsFor(to)
		if !s.preFaults(w, r, f) {
			return
		}
		mc, aerr := s.parseMakeCall(b)
		if aerr == nil {
			aerr = s.checkFiles(mc.PCMO)
		}
		if aerr != nil {
			s.log.Debug("make-call rejected", "code", aerr.Code, "message", aerr.Message)
			writeError(w, aerr)
			return
		}
		c, err := s.placeCall(mc, route)
		if err != nil {
			writeError(w, errf(http.StatusServiceUnavailable, "%v", err))
			return
		}
		if s.ambiguous(w, r, f, c.id) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		// Written by hand so the reply is byte for byte Piopiy's shape and key order.
		_, _ = fmt.Fprintf(w, `{"data":{"status":"progress","request_id":"%s"},"status":"progress","request_id":"%s","code":200}`, c.id, c.id)
	}
}

// checkFiles answers 404 "music file not found" when the scenario lists the
// account's uploaded files and a play names another one.
func (s *Sim) checkFiles(acts []action) *apiError {
	sc := s.currentScenario()
	if len(sc.Files) == 0 {
		return nil
	}
	for _, a := range acts {
		p := a.Play
		if a.Input != nil && a.Input.Play != nil {
			p = a.Input.Play
		}
		if p != nil && p.FileName != "" && !slices.Contains(sc.Files, p.FileName) {
			return errf(codeNotFound, "music file not found: %s", p.FileName)
		}
	}
	return nil
}

// lookupRequest starts a call action or CDR lookup: parse the body, apply
// REST faults, check credentials. badCredsNotFound answers bad credentials
// with 404, as the request-id CDR lookup does. It writes the error reply
// itself and reports whether to go on.
func (s *Sim) lookupRequest(w http.ResponseWriter, r *http.Request, badCredsNotFound bool) (body, int64, bool) {
	b, aerr := parseBody(r, maxBody)
	if aerr != nil {
		writeError(w, aerr)
		return nil, 0, false
	}
	if !s.preFaults(w, r, s.restFaultsFor("")) {
		return nil, 0, false
	}
	appID, aerr := s.credentials(b)
	if aerr != nil {
		if badCredsNotFound {
			aerr = errf(codeNotFound, "not found: %s", aerr.Message)
		}
		writeError(w, aerr)
		return nil, 0, false
	}
	return b, appID, true
}

// Call actions (piopiy.telecmi.com). The Node SDK posts to /v1/call/global_action
// with the key misspelt "cmiuid"; both paths and both spellings are accepted.
func (s *Sim) handleCallAction(w http.ResponseWriter, r *http.Request) {
	b, appID, ok := s.lookupRequest(w, r, false)
	if !ok {
		return
	}
	key := "cmiuuid"
	if !b.has(key) && b.has("cmiuid") {
		key = "cmiuid"
	}
	id, aerr := b.requiredString(key)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	act, aerr := b.requiredString("action")
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	switch act {
	case "hangup", "hold", "unhold", "holdToggle":
	default:
		writeError(w, errf(codePropMissing, "invalid action %q: want hangup, hold, unhold or holdToggle", act))
		return
	}
	s.mu.RLock()
	ref, ok := s.legs[id]
	s.mu.RUnlock()
	if !ok || ref.c.appID != appID {
		writeError(w, errf(codeNotFound, "call not found"))
		return
	}
	if aerr := ref.c.callAction(ref.agent, id, act); aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, map[string]any{"code": 200, "status": "success", "message": act + " done"})
}

// handleCMIUUIDCDR answers the documented minimal record, and 404 for bad
// credentials as the documentation lists (420 with rich shapes).
func (s *Sim) handleCMIUUIDCDR(w http.ResponseWriter, r *http.Request) {
	rich := s.CurrentShapes().Rich
	b, appID, ok := s.lookupRequest(w, r, !rich)
	if !ok {
		return
	}
	id, aerr := b.requiredString("cmiuuid")
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	s.mu.RLock()
	ref, ok := s.legs[id]
	s.mu.RUnlock()
	if !ok || ref.c.appID != appID {
		writeError(w, errf(codeNotFound, "cdr not found"))
		return
	}
	cdr := ref.c.cdrFor(id, rich)
	if cdr == nil {
		writeError(w, errf(codeNotFound, "cdr not found"))
		return
	}
	writeJSON(w, map[string]any{"cdr": cdr, "code": 200})
}

// handleRequestIDCDR answers 404 both for an unknown request id and for bad
// credentials, as piopiy-api.md says. A known call without CDRs yet (still
// in progress) answers count 0.
func (s *Sim) handleRequestIDCDR(w http.ResponseWriter, r *http.Request) {
	b, appID, ok := s.lookupRequest(w, r, true)
	if !ok {
		return
	}
	id, aerr := b.requiredString("request_id")
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	s.mu.RLock()
	c, ok := s.calls[id]
	s.mu.RUnlock()
	if !ok || c.appID != appID {
		writeError(w, errf(codeNotFound, "request id not found"))
		return
	}
	cdrs := c.allCDRs(s.CurrentShapes().Rich)
	writeJSON(w, map[string]any{"count": len(cdrs), "cdr": cdrs, "code": 200})
}
