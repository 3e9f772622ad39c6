package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Piopiy's error codes (piopiy-api.md). The HTTP status equals the body code.
const (
	codeBadCredentials = 420 // appid/secret present but wrong
	codeAuthFailed     = 401 // appid/secret absent
	codePCMOMissing    = 422 // PCMO missing, not an array, or an action property missing/invalid
	codePropMissing    = 502 // a top-level property missing or malformed
	codeNotFound       = 404 // music file, call, CDR
)

// apiError is a Piopiy error reply: {"code":n,"message":"..."} with HTTP status n.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Message) }

func errf(code int, format string, a ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, a...)}
}

// body is a parsed request object; values stay raw so every field's JSON type
// can be checked the way Piopiy does (numbers must be numbers).
type body map[string]json.RawMessage

func parseBody(r *http.Request, limit int64) (body, *apiError) {
	if r.Method != http.MethodPost {
		return nil, errf(http.StatusMethodNotAllowed, "method %s not allowed, use POST", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/json") {
		return nil, errf(http.StatusUnsupportedMediaType, "content-type must be application/json, got %q", ct)
	}
	raw, err := readAll(r, limit)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "read body: %v", err)
	}
	var b body
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&b); err != nil || b == nil {
		return nil, errf(http.StatusBadRequest, "body is not a JSON object")
	}
	if dec.More() {
		return nil, errf(http.StatusBadRequest, "trailing data after JSON object")
	}
	return b, nil
}

func (b body) has(k string) bool {
	v, ok := b[k]
	return ok && string(v) != "null"
}

// jsonKind names the JSON type of a raw value.
func jsonKind(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "empty"
	}
	switch v[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// positiveInt reads a JSON *number* that is a positive integer. Digit strings
// are refused: v2 carries numbers as JSON numbers and a client sending
// "919876543210" has a bug the sim must surface.
func positiveInt(v json.RawMessage) (int64, error) {
	if k := jsonKind(v); k != "number" {
		return 0, fmt.Errorf("must be a JSON number, got %s", k)
	}
	s := string(bytes.TrimSpace(v))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("must be an integer, got %s", s)
	}
	if n <= 0 {
		return 0, fmt.Errorf("must be positive, got %d", n)
	}
	return n, nil
}

// phoneNumber is a positive integer of at most 15 digits (E.164 without "+").
func phoneNumber(v json.RawMessage) (int64, error) {
	n, err := positiveInt(v)
	if err != nil {
		return 0, err
	}
	if n > 999_999_999_999_999 {
		return 0, fmt.Errorf("has more than 15 digits")
	}
	return n, nil
}

// requiredString reads a mandatory non-empty string property the way
// Piopiy reports it missing or malformed (code 502, "property missing").
func (b body) requiredString(key string) (string, *apiError) {
	if !b.has(key) {
		return "", errf(codePropMissing, "property missing: %s", key)
	}
	v, err := str(b[key])
	if err != nil || v == "" {
		return "", errf(codePropMissing, "property %s must be a non-empty string", key)
	}
	return v, nil
}

func str(v json.RawMessage) (string, error) {
	if k := jsonKind(v); k != "string" {
		return "", fmt.Errorf("must be a string, got %s", k)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", err
	}
	return s, nil
}

// credentials checks appid + secret against the configured apps. Absent
// fields are 401 (authentication failed); present but wrong (including a
// digit-string appid) is 420 (bad appid/secret).
func (s *Sim) credentials(b body) (int64, *apiError) {
	if !b.has("appid") || !b.has("secret") {
		return 0, errf(codeAuthFailed, "authentication failed: appid and secret are required")
	}
	id, err := positiveInt(b["appid"])
	if err != nil {
		return 0, errf(codeBadCredentials, "invalid appid or secret: appid %v", err)
	}
	secret, err := str(b["secret"])
	if err != nil {
		return 0, errf(codeBadCredentials, "invalid appid or secret: secret %v", err)
	}
	want, ok := s.apps[id]
	if !ok || want != secret {
		return 0, errf(codeBadCredentials, "invalid appid or secret")
	}
	return id, nil
}

// makeCall is a validated make-call request.
type makeCall struct {
	AppID       int64
	From, To    int64
	Duration    int64           // seconds
	ExtraParams json.RawMessage // compact object
	PCMO        []action
	RawPCMO     json.RawMessage
}

// DefaultCallDuration is applied when make-call carries no duration (the SDKs always send one).
const DefaultCallDuration = 5400

func (s *Sim) parseMakeCall(b body) (*makeCall, *apiError) {
	appID, aerr := s.credentials(b)
	if aerr != nil {
		return nil, aerr
	}
	mc := &makeCall{AppID: appID, Duration: DefaultCallDuration, ExtraParams: json.RawMessage("{}")}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"from", &mc.From}, {"to", &mc.To}} {
		if !b.has(f.name) {
			return nil, errf(codePropMissing, "property missing: %s", f.name)
		}
		n, err := phoneNumber(b[f.name])
		if err != nil {
			return nil, errf(codePropMissing, "property %s %v", f.name, err)
		}
		*f.dst = n
	}
	if b.has("duration") {
		n, err := positiveInt(b["duration"])
		if err != nil {
			return nil, errf(codePropMissing, "property duration %v", err)
		}
		mc.Duration = n
	}
	if b.has("extra_params") {
		v := b["extra_params"]
		if k := jsonKind(v); k != "object" {
			return nil, errf(codePropMissing, "property extra_params must be an object, got %s", k)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return nil, errf(codePropMissing, "property extra_params: %v", err)
		}
		mc.ExtraParams = buf.Bytes()
	}
	if !b.has("pcmo") {
		return nil, errf(codePCMOMissing, "PCMO property missing")
	}
	acts, aerr := s.parsePCMO(b["pcmo"])
	if aerr != nil {
		return nil, aerr
	}
	if len(acts) == 0 {
		return nil, errf(codePCMOMissing, "PCMO property missing: empty action array")
	}
	mc.PCMO, mc.RawPCMO = acts, b["pcmo"]
	return mc, nil
}

// action is one validated PCMO action.
type action struct {
	Name   string
	Stream *streamSpec
	Bridge *bridgeSpec
	Play   *playSpec
	Text   string // speak, param
	Input  *inputSpec
	Raw    json.RawMessage
}

type streamSpec struct {
	WSURL      string
	ListenMode string // caller | callee | both
	SampleRate int
	OnAnswer   bool
}

type bridgeSpec struct {
	From     int64
	Targets  []string // agent numbers (pstn) or SIP users (connect)
	SIP      bool
	Duration int64 // s
	Timeout  int64 // ring s
	Loop     int64
	Group    bool
}

type playSpec struct{ FileName, FileURL string }

type inputSpec struct {
	ActionURL string
	MaxDigit  int64
	MaxRetry  int64
	Timeout   int64
	Play      *playSpec
}

// parsePCMO validates a PCMO: a bare JSON array of action objects. A PCMO
// sent as a JSON string (the official SDK's PCMO() mistake) is refused.
func (s *Sim) parsePCMO(v json.RawMessage) ([]action, *apiError) {
	if k := jsonKind(v); k != "array" {
		return nil, errf(codePCMOMissing, "PCMO property missing: pcmo must be a JSON array of actions, got %s", k)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, errf(codePCMOMissing, "PCMO property missing: %v", err)
	}
	acts := make([]action, 0, len(items))
	for i, it := range items {
		a, err := s.parseAction(it)
		if err != nil {
			return nil, errf(codePCMOMissing, "PCMO property missing: action %d: %v", i, err)
		}
		acts = append(acts, a)
	}
	return acts, nil
}

func (s *Sim) parseAction(raw json.RawMessage) (action, error) {
	if k := jsonKind(raw); k != "object" {
		return action{}, fmt.Errorf("must be an object, got %s", k)
	}
	var b body
	if err := json.Unmarshal(raw, &b); err != nil {
		return action{}, err
	}
	if !b.has("action") {
		return action{}, fmt.Errorf("property action missing")
	}
	name, err := str(b["action"])
	if err != nil {
		return action{}, fmt.Errorf("action %w", err)
	}
	a := action{Name: name, Raw: raw}
	switch name {
	case "stream":
		a.Stream, err = parseStream(b)
	case "play":
		a.Play, err = s.parsePlay(b)
	case "speak", "param":
		if !b.has("text") {
			return a, fmt.Errorf("%s: property text missing", name)
		}
		a.Text, err = str(b["text"])
	case "record", "hangup":
	case "bridge":
		a.Bridge, err = parseBridge(b, false)
	case "connect":
		a.Bridge, err = parseBridge(b, true)
	case "input":
		a.Input, err = parseInput(b, false)
	case "play_get_input":
		a.Input, err = parseInput(b, true)
		if err == nil {
			a.Input.Play, err = s.parsePlay(b)
		}
	default:
		return a, fmt.Errorf("unknown action %q", name)
	}
	if err != nil {
		return a, fmt.Errorf("%s: %w", name, err)
	}
	return a, nil
}

func parseStream(b body) (*streamSpec, error) {
	sp := &streamSpec{ListenMode: "caller", SampleRate: 8000}
	if !b.has("ws_url") {
		return nil, fmt.Errorf("property ws_url missing")
	}
	u, err := str(b["ws_url"])
	if err != nil {
		return nil, fmt.Errorf("ws_url %w", err)
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "ws" && pu.Scheme != "wss") || pu.Host == "" {
		return nil, fmt.Errorf("ws_url %q must be a ws:// or wss:// URL", u)
	}
	sp.WSURL = u
	if b.has("listen_mode") {
		m, err := str(b["listen_mode"])
		if err != nil {
			return nil, fmt.Errorf("listen_mode %w", err)
		}
		if m != "caller" && m != "callee" && m != "both" {
			return nil, fmt.Errorf("listen_mode %q must be caller, callee or both", m)
		}
		sp.ListenMode = m
	}
	if b.has("voice_quality") {
		// The SDK sends a string by default but passes an integer through, so both are accepted.
		v := b["voice_quality"]
		var q string
		switch jsonKind(v) {
		case "string":
			q, _ = str(v)
		case "number":
			q = string(bytes.TrimSpace(v))
		default:
			return nil, fmt.Errorf("voice_quality must be \"8000\", \"16000\" or \"32000\" (string or number), got %s", jsonKind(v))
		}
		switch q {
		case "8000", "16000", "32000":
			sp.SampleRate, _ = strconv.Atoi(q)
		default:
			return nil, fmt.Errorf("voice_quality %s must be 8000, 16000 or 32000", q)
		}
	}
	if b.has("stream_on_answer") {
		v := b["stream_on_answer"]
		if jsonKind(v) != "boolean" {
			return nil, fmt.Errorf("stream_on_answer must be a boolean, got %s", jsonKind(v))
		}
		sp.OnAnswer = string(bytes.TrimSpace(v)) == "true"
	}
	return sp, nil
}

func (s *Sim) parsePlay(b body) (*playSpec, error) {
	p := &playSpec{}
	var err error
	switch {
	case b.has("file_name"):
		if p.FileName, err = str(b["file_name"]); err != nil {
			return nil, fmt.Errorf("file_name %w", err)
		}
		if p.FileName == "" {
			return nil, fmt.Errorf("file_name is empty")
		}
	case b.has("file_url"):
		if p.FileURL, err = str(b["file_url"]); err != nil {
			return nil, fmt.Errorf("file_url %w", err)
		}
		if u, err := url.Parse(p.FileURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("file_url %q must be an http(s) URL", p.FileURL)
		}
	default:
		return nil, fmt.Errorf("property file_name or file_url missing")
	}
	return p, nil
}

// bridgeTarget reads one endpoint of a bridge's list, at where in the body:
// a PSTN number, or for SIP a user id.
func bridgeTarget(ep body, sip bool, where string) (string, error) {
	if ep == nil {
		return "", fmt.Errorf("%s must be an object", where)
	}
	t, err := str(ep["type"])
	if err != nil {
		return "", fmt.Errorf("%s.type %w", where, err)
	}
	switch {
	case !sip && t == "pstn":
		n, err := phoneNumber(ep["number"])
		if err != nil {
			return "", fmt.Errorf("%s.number %w", where, err)
		}
		return strconv.FormatInt(n, 10), nil
	case sip && t == "sip":
		u := ep["user"]
		var id string
		switch jsonKind(u) {
		case "string":
			id, _ = str(u)
		case "number":
			id = string(bytes.TrimSpace(u))
		default:
			return "", fmt.Errorf("%s.user missing", where)
		}
		if id == "" {
			return "", fmt.Errorf("%s.user is empty", where)
		}
		return id, nil
	default:
		return "", fmt.Errorf("%s.type %q not allowed here", where, t)
	}
}

func parseBridge(b body, sip bool) (*bridgeSpec, error) {
	bs := &bridgeSpec{SIP: sip, Duration: 5400, Timeout: 40, Loop: 1}
	if b.has("from") {
		n, err := phoneNumber(b["from"])
		if err != nil {
			return nil, fmt.Errorf("from %w", err)
		}
		bs.From = n
	} else if !sip {
		return nil, fmt.Errorf("property from missing")
	}
	key := "connect"
	if sip && !b.has("connect") && b.has("call") {
		key = "call" // the docs name the SIP list "call"
	}
	if !b.has(key) {
		return nil, fmt.Errorf("property %s missing", key)
	}
	if jsonKind(b[key]) != "array" {
		return nil, fmt.Errorf("%s must be an array, got %s", key, jsonKind(b[key]))
	}
	var eps []body
	if err := json.Unmarshal(b[key], &eps); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("%s is empty", key)
	}
	for i, ep := range eps {
		target, err := bridgeTarget(ep, sip, fmt.Sprintf("%s[%d]", key, i))
		if err != nil {
			return nil, err
		}
		bs.Targets = append(bs.Targets, target)
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"duration", &bs.Duration}, {"timeout", &bs.Timeout}, {"loop", &bs.Loop}} {
		if b.has(f.name) {
			n, err := positiveInt(b[f.name])
			if err != nil {
				return nil, fmt.Errorf("%s %w", f.name, err)
			}
			*f.dst = n
		}
	}
	if b.has("ring_type") {
		rt, err := str(b["ring_type"])
		if err != nil || rt != "group" {
			return nil, fmt.Errorf("ring_type must be \"group\"")
		}
		bs.Group = true
	}
	return bs, nil
}

func parseInput(b body, withPlay bool) (*inputSpec, error) {
	in := &inputSpec{MaxDigit: 1, MaxRetry: 1, Timeout: 5}
	if !b.has("action_url") {
		return nil, fmt.Errorf("property action_url missing")
	}
	u, err := str(b["action_url"])
	if err != nil {
		return nil, fmt.Errorf("action_url %w", err)
	}
	if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return nil, fmt.Errorf("action_url %q must be an http(s) URL", u)
	}
	in.ActionURL = u
	names := []string{"max_digit", "timeout"}
	if withPlay {
		names = append(names, "max_retry")
	}
	for _, name := range names {
		if !b.has(name) {
			continue
		}
		n, err := positiveInt(b[name])
		if err != nil {
			return nil, fmt.Errorf("%s %w", name, err)
		}
		switch name {
		case "max_digit":
			in.MaxDigit = n
		case "timeout":
			in.Timeout = n
		case "max_retry":
			in.MaxRetry = n
		}
	}
	return in, nil
}
