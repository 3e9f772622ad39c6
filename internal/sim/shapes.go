package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"sigs.k8s.io/yaml"
)

// Shapes chooses what the sim sends where TeleCMI's documentation shows a
// shape (the default follows the documentation) or leaves a question open
// (one switch per question). docs/piopiy-sim.md lists every switch and its
// source; pkg/piopiy/testdata/documented keeps the samples.
//
// The zero value is the documented behaviour.
type Shapes struct {
	// Rich restores the sim's former, kinder shapes, which the documentation
	// does not show: stream events on leg a carrying to, request_id,
	// conversation_uuid and extra_params, a normal (1000) close at call end,
	// the full webhook CDR from the CDR lookups, and 420 for bad credentials
	// on cmiuuid_cdr. It exists so code that relied on them can be compared.
	Rich bool `json:"rich,omitempty"`
	// WSURLQuery says whether the platform keeps the ws_url's query string
	// when it dials: WSURLQueryStripped (default) or WSURLQueryKept. No public
	// material shows either; every TeleCMI example uses a bare URL.
	WSURLQuery string `json:"wsURLQuery,omitempty"`
	// ListenMode is the reading of listen_mode: ListenModeExamples (default;
	// caller is leg a, the person an outbound PCMO call rings, as TeleCMI's
	// runnable outbound examples stream the customer with "caller") or
	// ListenModeTable (the doc table: caller is whoever initiated the call,
	// callee whoever received it, so on an outbound call the person rung is
	// the callee and the caller side is the bridged party).
	ListenMode string `json:"listenMode,omitempty"`
	// StreamCMIUUID is the cmiuuid a stream event carries: StreamCMIUUIDLegA
	// (default; the call's leg-a id, the reading under which the stream
	// event's "a unique identifier of this call" is the id the call's other
	// events carry) or StreamCMIUUIDOwn (a fresh id per stream, as leg-b
	// bridge events carry their own). The documented samples cannot tell.
	StreamCMIUUID string `json:"streamCMIUUID,omitempty"`
	// CDRRedelivery: CDRRedeliveryOnFailure (default) sends a CDR again on
	// the 5/10/15-minute schedule only while deliveries fail;
	// CDRRedeliveryAlways sends all four regardless. The documentation gives
	// the schedule but not whether a success stops it.
	CDRRedelivery string `json:"cdrRedelivery,omitempty"`
}

// Values of the Shapes switches.
const (
	WSURLQueryStripped     = "stripped"
	WSURLQueryKept         = "kept"
	ListenModeExamples     = "examples"
	ListenModeTable        = "table"
	StreamCMIUUIDLegA      = "legA"
	StreamCMIUUIDOwn       = "own"
	CDRRedeliveryOnFailure = "onFailure"
	CDRRedeliveryAlways    = "always"
)

func (sh Shapes) validate() error {
	for _, f := range []struct {
		name, v string
		ok      []string
	}{
		{"wsURLQuery", sh.WSURLQuery, []string{WSURLQueryStripped, WSURLQueryKept}},
		{"listenMode", sh.ListenMode, []string{ListenModeExamples, ListenModeTable}},
		{"streamCMIUUID", sh.StreamCMIUUID, []string{StreamCMIUUIDLegA, StreamCMIUUIDOwn}},
		{"cdrRedelivery", sh.CDRRedelivery, []string{CDRRedeliveryOnFailure, CDRRedeliveryAlways}},
	} {
		if f.v == "" {
			continue
		}
		found := false
		for _, o := range f.ok {
			found = found || f.v == o
		}
		if !found {
			return fmt.Errorf("%s %q: want %s or %s", f.name, f.v, f.ok[0], f.ok[1])
		}
	}
	return nil
}

// ParseShapes reads the JSON or YAML form of Shapes, refusing unknown keys.
func ParseShapes(b []byte) (Shapes, error) {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return Shapes{}, fmt.Errorf("yaml: %w", err)
	}
	var sh Shapes
	if err := strictUnmarshal(j, &sh); err != nil {
		return Shapes{}, err
	}
	return sh, sh.validate()
}

func (s *Sim) handleGetShapes(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.CurrentShapes())
}

// handlePutShapes switches shapes for everything sent from now on (a test
// can compare both on one sim).
func (s *Sim) handlePutShapes(w http.ResponseWriter, r *http.Request) {
	b, err := readAll(r, maxBody)
	if err != nil {
		writeError(w, errf(http.StatusBadRequest, "%v", err))
		return
	}
	sh, err := ParseShapes(b)
	if err == nil {
		err = s.SetShapes(sh)
	}
	if err != nil {
		writeError(w, errf(http.StatusBadRequest, "shapes: %v", err))
		return
	}
	writeJSON(w, sh)
}

// SetShapes replaces the shapes for everything sent from now on.
func (s *Sim) SetShapes(sh Shapes) error {
	if err := sh.validate(); err != nil {
		return fmt.Errorf("sim: shapes: %w", err)
	}
	s.mu.Lock()
	s.shapes = sh
	s.mu.Unlock()
	return nil
}

// CurrentShapes returns the shapes in force.
func (s *Sim) CurrentShapes() Shapes {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.shapes
}

// dialURL is the URL the platform really dials for a stream's ws_url.
func (sh Shapes) dialURL(wsURL string) string {
	if sh.WSURLQuery == WSURLQueryKept {
		return wsURL
	}
	u, err := url.Parse(wsURL)
	if err != nil {
		return wsURL // refused by validation before it gets here
	}
	u.RawQuery, u.ForceQuery = "", false
	return u.String()
}

// hears reports which parties a stream's listen_mode carries on an
// outbound call: the person rung (leg a) and the bridged party.
func (sh Shapes) hears(listenMode string) (person, bridged bool) {
	personSide, bridgedSide := "caller", "callee"
	if sh.ListenMode == ListenModeTable {
		personSide, bridgedSide = "callee", "caller"
	}
	return listenMode == personSide || listenMode == "both", listenMode == bridgedSide || listenMode == "both"
}

// wsStatus is the ws_status string of a stream event. The documented
// connected event says only {"status":"connected"}.
func (sh Shapes) wsStatus(status string, code int, reason string) string {
	m := map[string]any{"status": status}
	if sh.Rich || status != "connected" {
		m["message"] = map[string]any{"code": code, "reason": reason}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// lookupCDR is the record the CDR lookups answer with: in the documented
// shape only duration, balance, rate, from, to, time, leg, direction and
// status (numbers as the sample has them).
func lookupCDR(leg, status, from, to string, dur int64, startMs int64, rate, balance string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"duration": dur, "balance": balance, "rate": rate,
		"from": jsonNumber(from), "to": jsonNumber(to), "time": startMs,
		"leg": leg, "direction": "outbound", "status": status,
	})
	return b
}

// jsonNumber writes a digit string as a JSON number, as the documented
// samples do; anything else (a SIP user) stays a string.
func jsonNumber(s string) any {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && isDigits(s) {
		return n
	}
	return s
}

// redactURL keeps only a URL's scheme and host for logs: stream tokens
// travel in its path and query.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable url)"
	}
	return p.Scheme + "://" + p.Host
}
