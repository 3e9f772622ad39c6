package piopiyv3

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// The rules below mirror the validators of the official Python SDK
// (piopiy/voice/validators.py, 1.2.x) rule for rule and message for message,
// applied to the JSON body exactly as it will be sent. The live-call action
// family (/calls/{id}/actions/...) has no validator in the SDK; its rules are
// written in the same style from the documented fields.

var (
	phoneRE  = regexp.MustCompile(`^[1-9][0-9]{6,15}$`)
	varKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	uuidRE   = regexp.MustCompile(`^(urn:uuid:)?\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?$`)
	httpRE   = regexp.MustCompile(`^https?://`)
)

// Endpoint names a v3 request body that Validate knows.
type Endpoint string

// The v3 endpoints with a JSON body.
const (
	EndpointAICall       Endpoint = "POST /voice/ai/call"
	EndpointPCMOCall     Endpoint = "POST /voice/pcmo/call"
	EndpointPCMOTransfer Endpoint = "POST /voice/pcmo/transfer"
	EndpointHangup       Endpoint = "POST /voice/call/hangup"
	EndpointTransfer     Endpoint = "POST /calls/{call_id}/actions/transfer"
	EndpointCallHangup   Endpoint = "POST /calls/{call_id}/actions/hangup"
)

// Validate checks a request body for ep by the SDK's rules. The error is an
// *Error of KindValidation whose Message is the SDK's message.
func Validate(ep Endpoint, body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return &Error{Kind: KindValidation, Op: string(ep), Message: "body must be valid JSON.", Err: err}
	}
	if dec.More() {
		return &Error{Kind: KindValidation, Op: string(ep), Message: "body must be a single JSON value."}
	}
	var err error
	switch ep {
	case EndpointAICall:
		err = validateAICall(v)
	case EndpointPCMOCall:
		err = validatePCMOCall(v)
	case EndpointPCMOTransfer:
		err = validatePCMOTransfer(v)
	case EndpointHangup:
		err = validateHangup(v)
	case EndpointTransfer:
		err = validateTransfer(v)
	case EndpointCallHangup:
		err = validateCallHangup(v)
	default:
		return fmt.Errorf("piopiy v3: no validator for %q", ep)
	}
	if e, ok := err.(*Error); ok {
		e.Op = string(ep)
	}
	return err
}

// invalid is the SDK's PiopiyValidationError.
func invalid(field, format string, args ...any) *Error {
	return &Error{Kind: KindValidation, Field: field, Message: fmt.Sprintf(format, args...)}
}

type obj = map[string]any

func ensureDict(v any, field string) (obj, error) {
	o, ok := v.(obj)
	if !ok {
		return nil, invalid(field, "%s must be an object.", field)
	}
	return o, nil
}

func ensureList(v any, field string) ([]any, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, invalid(field, "%s must be an array.", field)
	}
	return l, nil
}

func keysOf(o obj) []string {
	ks := make([]string, 0, len(o))
	for k := range o {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func requiredAndAllowed(o obj, required, allowed []string, field string) error {
	var missing, extra []string
	for _, k := range required {
		if _, ok := o[k]; !ok {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		return invalid(field, "Missing required field(s): %s", strings.Join(missing, ", "))
	}
	for _, k := range keysOf(o) {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		return invalid(field, "Unknown field(s): %s", strings.Join(extra, ", "))
	}
	return nil
}

func allowedOnly(o obj, allowed []string, field, noun string) error {
	var extra []string
	for _, k := range keysOf(o) {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		return invalid(field, "Unknown %s: %s", noun, strings.Join(extra, ", "))
	}
	return nil
}

func ensureString(v any, field string, minLen, maxLen int) error {
	s, ok := v.(string)
	if !ok {
		return invalid(field, "%s must be a string.", field)
	}
	// Python's len counts code points.
	n := len([]rune(s))
	if minLen > 0 && n < minLen {
		return invalid(field, "%s must be at least %d characters long.", field, minLen)
	}
	if maxLen > 0 && n > maxLen {
		return invalid(field, "%s must be at most %d characters long.", field, maxLen)
	}
	return nil
}

func ensureBool(v any, field string) error {
	if _, ok := v.(bool); !ok {
		return invalid(field, "%s must be a boolean.", field)
	}
	return nil
}

// noBound leaves a side of a range open.
const noBound = math.MinInt64

func ensureInt(v any, field string, lo, hi int64) error {
	n, ok := v.(json.Number)
	var i int64
	var err error
	if ok {
		i, err = n.Int64()
	}
	if !ok || err != nil {
		return invalid(field, "%s must be an integer.", field)
	}
	if lo != noBound && i < lo {
		return invalid(field, "%s must be >= %d.", field, lo)
	}
	if hi != noBound && i > hi {
		return invalid(field, "%s must be <= %d.", field, hi)
	}
	return nil
}

func ensureNumber(v any, field string, lo, hi float64) error {
	n, ok := v.(json.Number)
	f, err := n.Float64()
	if !ok || err != nil {
		return invalid(field, "%s must be a number.", field)
	}
	if f < lo {
		return invalid(field, "%s must be >= %s.", field, pyFloat(lo))
	}
	if f > hi {
		return invalid(field, "%s must be <= %s.", field, pyFloat(hi))
	}
	return nil
}

// pyFloat prints a float as Python's str does for the SDK's bounds (0.5, 2.0).
func pyFloat(f float64) string {
	s := fmt.Sprint(f)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

func validatePhone(v any, field string) error {
	if err := ensureString(v, field, 0, 0); err != nil {
		return err
	}
	if !phoneRE.MatchString(v.(string)) {
		return invalid(field, "%s must match ^[1-9][0-9]{6,15}$.", field)
	}
	return nil
}

func validateUUID(v any, field string) error {
	if err := ensureString(v, field, 0, 0); err != nil {
		return err
	}
	if !uuidRE.MatchString(v.(string)) {
		return invalid(field, "%s must be a valid UUID string.", field)
	}
	return nil
}

func validateVariables(v any, field string, maxStringLen, maxProperties int) error {
	o, err := ensureDict(v, field)
	if err != nil {
		return err
	}
	if maxProperties > 0 && len(o) > maxProperties {
		return invalid(field, "%s supports at most %d entries.", field, maxProperties)
	}
	for _, k := range keysOf(o) {
		if !varKeyRE.MatchString(k) {
			return invalid(field, "%s has invalid key '%s'.", field, k)
		}
		switch item := o[k].(type) {
		case string:
			if maxStringLen > 0 && len([]rune(item)) > maxStringLen {
				return invalid(field, "%s.%s exceeds max string length %d.", field, k, maxStringLen)
			}
		case bool, json.Number:
		default:
			return invalid(field, "%s.%s must be string, number, or boolean.", field, k)
		}
	}
	return nil
}

func validateMainOptions(v any, field string) error {
	o, err := ensureDict(v, field)
	if err != nil {
		return err
	}
	if err := allowedOnly(o, []string{"max_duration_sec", "record", "ring_timeout_sec"}, field, "option(s)"); err != nil {
		return err
	}
	if x, ok := o["max_duration_sec"]; ok {
		if err := ensureInt(x, field+".max_duration_sec", 30, 7200); err != nil {
			return err
		}
	}
	if x, ok := o["record"]; ok {
		if err := ensureBool(x, field+".record"); err != nil {
			return err
		}
	}
	if x, ok := o["ring_timeout_sec"]; ok {
		if err := ensureInt(x, field+".ring_timeout_sec", 5, 120); err != nil {
			return err
		}
	}
	return nil
}

func validateRecording(v any, field string) error {
	rec, err := ensureDict(v, field)
	if err != nil {
		return err
	}
	if err := requiredAndAllowed(rec, nil, []string{"enabled", "channels", "format"}, field); err != nil {
		return err
	}
	if x, ok := rec["enabled"]; ok {
		if err := ensureBool(x, field+".enabled"); err != nil {
			return err
		}
	}
	if x, ok := rec["channels"]; ok {
		if err := ensureString(x, field+".channels", 0, 0); err != nil {
			return err
		}
		if x != "dual" && x != "single" {
			return invalid(field, "%s.channels must be dual or single.", field)
		}
	}
	if x, ok := rec["format"]; ok {
		if err := ensureString(x, field+".format", 0, 0); err != nil {
			return err
		}
		if x != "mp3" && x != "wav" {
			return invalid(field, "%s.format must be mp3 or wav.", field)
		}
	}
	return nil
}

func validatePrompt(v any, field string) error {
	o, err := ensureDict(v, field)
	if err != nil {
		return err
	}
	if err := allowedOnly(o, []string{"type", "file_name", "say", "voice_id", "language", "speed"}, field, "field(s)"); err != nil {
		return err
	}
	t, ok := o["type"]
	if !ok {
		return invalid(field, "%s.type is required.", field)
	}
	if err := ensureString(t, field+".type", 0, 0); err != nil {
		return err
	}
	switch t {
	case "file":
		if _, ok := o["file_name"]; !ok {
			return invalid(field, "%s.file_name is required when type is file.", field)
		}
	case "say":
		for _, k := range []string{"say", "language", "voice_id", "speed"} {
			if _, ok := o[k]; !ok {
				return invalid(field, "%s.%s is required when type is say.", field, k)
			}
		}
	default:
		return invalid(field, "%s.type must be one of: file, say.", field)
	}
	for _, k := range []string{"file_name", "say", "language", "voice_id"} {
		if x, ok := o[k]; ok {
			if err := ensureString(x, field+"."+k, 0, 0); err != nil {
				return err
			}
		}
	}
	if x, ok := o["speed"]; ok {
		return ensureNumber(x, field+".speed", 0.5, 2.0)
	}
	return nil
}

func validateDTMF(v any, field string) error {
	o, err := ensureDict(v, field)
	if err != nil {
		return err
	}
	if err := allowedOnly(o, []string{"min_digits", "max_digits", "finish_on_key", "first_digit_timeout", "inter_digit_timeout", "flush_buffer"}, field, "field(s)"); err != nil {
		return err
	}
	for _, k := range []string{"min_digits", "max_digits"} {
		if x, ok := o[k]; ok {
			if err := ensureInt(x, field+"."+k, 1, noBound); err != nil {
				return err
			}
		}
	}
	if x, ok := o["finish_on_key"]; ok {
		if err := ensureString(x, field+".finish_on_key", 0, 1); err != nil {
			return err
		}
	}
	for _, k := range []string{"first_digit_timeout", "inter_digit_timeout"} {
		if x, ok := o[k]; ok {
			if err := ensureInt(x, field+"."+k, 1, noBound); err != nil {
				return err
			}
		}
	}
	if x, ok := o["flush_buffer"]; ok {
		return ensureBool(x, field+".flush_buffer")
	}
	return nil
}

func validateOnResult(v any, field string) error {
	o, err := ensureDict(v, field)
	if err != nil {
		return err
	}
	if err := allowedOnly(o, []string{"type", "ref", "url"}, field, "field(s)"); err != nil {
		return err
	}
	t, ok := o["type"]
	if !ok {
		return invalid(field, "%s.type is required.", field)
	}
	if err := ensureString(t, field+".type", 0, 0); err != nil {
		return err
	}
	if t != "pcmo" && t != "url" {
		return invalid(field, "%s.type must be one of: pcmo, url.", field)
	}
	if _, ok := o["ref"]; t == "pcmo" && !ok {
		return invalid(field, "%s.ref is required when type is pcmo.", field)
	}
	if _, ok := o["url"]; t == "url" && !ok {
		return invalid(field, "%s.url is required when type is url.", field)
	}
	if x, ok := o["ref"]; ok {
		if err := ensureString(x, field+".ref", 0, 0); err != nil {
			return err
		}
	}
	if x, ok := o["url"]; ok {
		if err := ensureString(x, field+".url", 0, 0); err != nil {
			return err
		}
		if !httpRE.MatchString(x.(string)) {
			return invalid(field, "%s.url must start with http:// or https://.", field)
		}
	}
	return nil
}

func validateRetries(v any, field string) error {
	o, err := ensureDict(v, field)
	if err != nil {
		return err
	}
	if err := allowedOnly(o, []string{"max", "no_input_prompt", "invalid_prompt"}, field, "field(s)"); err != nil {
		return err
	}
	if x, ok := o["max"]; ok {
		if err := ensureInt(x, field+".max", 0, noBound); err != nil {
			return err
		}
	}
	for _, k := range []string{"no_input_prompt", "invalid_prompt"} {
		if x, ok := o[k]; ok {
			if err := validatePrompt(x, field+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}

func validateConnect(a obj, field string) error {
	if err := requiredAndAllowed(a, []string{"action", "params", "endpoints"}, []string{"action", "params", "endpoints"}, field); err != nil {
		return err
	}
	if err := validateConnectParams(a["params"], field); err != nil {
		return err
	}
	return validateConnectEndpoints(a["endpoints"], field)
}

// validateConnectParams checks a connect action's params.
func validateConnectParams(v any, field string) error {
	pf := field + ".params"
	params, err := ensureDict(v, pf)
	if err != nil {
		return err
	}
	if err := requiredAndAllowed(params, []string{"caller_id"}, []string{"strategy", "caller_id", "options", "metadata"}, pf); err != nil {
		return err
	}
	if err := validatePhone(params["caller_id"], pf+".caller_id"); err != nil {
		return err
	}
	if x, ok := params["strategy"]; ok {
		if err := ensureString(x, pf+".strategy", 0, 0); err != nil {
			return err
		}
		if x != "simultaneous" && x != "sequential" {
			return invalid(field, "%s.strategy must be simultaneous or sequential.", pf)
		}
	}
	if x, ok := params["options"]; ok {
		of := pf + ".options"
		opts, err := ensureDict(x, of)
		if err != nil {
			return err
		}
		if err := allowedOnly(opts, []string{"max_duration_sec", "ring_timeout_sec", "machine_detection", "recording", "waiting_music"}, of, "field(s)"); err != nil {
			return err
		}
		if err := checkOptional(opts, of+".",
			optionalField{"max_duration_sec", intIn(10, 7200)},
			optionalField{"ring_timeout_sec", intIn(5, 120)},
			optionalField{"machine_detection", ensureBool},
			optionalField{"waiting_music", stringOf(0)},
			optionalField{"recording", validateRecording},
		); err != nil {
			return err
		}
	}
	if x, ok := params["metadata"]; ok {
		if err := validateVariables(x, pf+".metadata", 0, 0); err != nil {
			return err
		}
	}
	return nil
}

// validateConnectEndpoints checks a connect action's endpoints: PSTN and
// SIP ones first, then at most two agents.
func validateConnectEndpoints(v any, field string) error {
	ef := field + ".endpoints"
	eps, err := ensureList(v, ef)
	if err != nil {
		return err
	}
	if len(eps) < 1 {
		return invalid(field, "%s must contain at least one endpoint.", ef)
	}
	agents := 0
	for i, e := range eps {
		f := fmt.Sprintf("%s[%d]", ef, i)
		ep, err := ensureDict(e, f)
		if err != nil {
			return err
		}
		if err := requiredAndAllowed(ep, []string{"type"}, []string{"type", "number", "uri", "id", "headers"}, f); err != nil {
			return err
		}
		if err := ensureString(ep["type"], f+".type", 0, 0); err != nil {
			return err
		}
		switch ep["type"] {
		case "pstn":
			if _, ok := ep["number"]; !ok {
				return invalid(f, "%s.number is required when type is pstn.", f)
			}
			if err := validatePhone(ep["number"], f+".number"); err != nil {
				return err
			}
			if agents > 0 {
				return invalid(f, "Agent endpoints must be at the end of connect.endpoints.")
			}
		case "sip":
			if _, ok := ep["uri"]; !ok {
				return invalid(f, "%s.uri is required when type is sip.", f)
			}
			if err := ensureString(ep["uri"], f+".uri", 0, 0); err != nil {
				return err
			}
			if agents > 0 {
				return invalid(f, "Agent endpoints must be at the end of connect.endpoints.")
			}
		case "agent":
			if _, ok := ep["id"]; !ok {
				return invalid(f, "%s.id is required when type is agent.", f)
			}
			if err := validateUUID(ep["id"], f+".id"); err != nil {
				return err
			}
			if agents++; agents > 2 {
				return invalid(f, "A maximum of two agent endpoints is allowed.")
			}
		default:
			return invalid(f, "%s.type must be one of: pstn, sip, agent.", f)
		}
		if x, ok := ep["headers"]; ok {
			if _, err := ensureDict(x, f+".headers"); err != nil {
				return err
			}
		}
	}
	return nil
}

// optionalField is the check of one optional member of an object.
type optionalField struct {
	key   string
	check func(v any, field string) error
}

// checkOptional runs the checks of the members o has, in order; prefix is
// o's path with a trailing dot ("" at the top of a body).
func checkOptional(o obj, prefix string, fields ...optionalField) error {
	for _, f := range fields {
		if x, ok := o[f.key]; ok {
			if err := f.check(x, prefix+f.key); err != nil {
				return err
			}
		}
	}
	return nil
}

// intIn is ensureInt's check for [lo, hi].
func intIn(lo, hi int64) func(any, string) error {
	return func(v any, field string) error { return ensureInt(v, field, lo, hi) }
}

// stringOf is ensureString's check for a string of at least minLen, with
// no maximum.
func stringOf(minLen int) func(any, string) error {
	return func(v any, field string) error { return ensureString(v, field, minLen, 0) }
}

var pipelineActions = []string{"connect", "hangup", "input", "param", "play", "play_get_input", "record"}

func validatePipeline(v any, field string) error {
	items, err := ensureList(v, field)
	if err != nil {
		return err
	}
	if len(items) < 1 {
		return invalid(field, "%s must contain at least one action.", field)
	}
	for i, item := range items {
		f := fmt.Sprintf("%s[%d]", field, i)
		a, err := ensureDict(item, f)
		if err != nil {
			return err
		}
		name, ok := a["action"]
		if !ok {
			return invalid(f, "%s.action is required.", f)
		}
		if err := ensureString(name, f+".action", 0, 0); err != nil {
			return err
		}
		switch name {
		case "connect":
			err = validateConnect(a, f)
		case "play":
			if err = requiredAndAllowed(a, []string{"action", "file_name"}, []string{"action", "file_name"}, f); err == nil {
				err = ensureString(a["file_name"], f+".file_name", 0, 0)
			}
		case "play_get_input":
			err = validatePlayGetInput(a, f)
		case "param":
			if err = requiredAndAllowed(a, []string{"action", "data"}, []string{"action", "data"}, f); err == nil {
				err = validateVariables(a["data"], f+".data", 256, 10)
			}
		case "record":
			err = validateRecordAction(a, f)
		case "hangup":
			err = requiredAndAllowed(a, []string{"action"}, []string{"action"}, f)
		case "input":
			if err = requiredAndAllowed(a, []string{"action", "on_result"}, []string{"action", "dtmf", "on_result"}, f); err == nil {
				if x, ok := a["dtmf"]; ok {
					err = validateDTMF(x, f+".dtmf")
				}
				if err == nil {
					err = validateOnResult(a["on_result"], f+".on_result")
				}
			}
		default:
			return invalid(f, "%s.action must be one of: %s.", f, strings.Join(pipelineActions, ", "))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func validatePlayGetInput(a obj, f string) error {
	if err := requiredAndAllowed(a, []string{"action", "prompt", "input", "on_result"}, []string{"action", "prompt", "input", "dtmf", "retries", "on_result"}, f); err != nil {
		return err
	}
	if err := validatePrompt(a["prompt"], f+".prompt"); err != nil {
		return err
	}
	modes, err := ensureList(a["input"], f+".input")
	if err != nil {
		return err
	}
	if len(modes) == 0 {
		return invalid(f, "%s.input must contain at least one item.", f)
	}
	seen := map[string]bool{}
	for i, m := range modes {
		mf := fmt.Sprintf("%s.input[%d]", f, i)
		if err := ensureString(m, mf, 0, 0); err != nil {
			return err
		}
		if m != "dtmf" && m != "speech" {
			return invalid(mf, "%s must be dtmf or speech.", mf)
		}
		if seen[m.(string)] {
			return invalid(f, "%s contains duplicate value '%s'.", f, m)
		}
		seen[m.(string)] = true
	}
	if x, ok := a["dtmf"]; ok {
		if err := validateDTMF(x, f+".dtmf"); err != nil {
			return err
		}
	}
	if x, ok := a["retries"]; ok {
		if err := validateRetries(x, f+".retries"); err != nil {
			return err
		}
	}
	return validateOnResult(a["on_result"], f+".on_result")
}

func validateRecordAction(a obj, f string) error {
	if err := requiredAndAllowed(a, []string{"action"}, []string{"action", "format", "channels"}, f); err != nil {
		return err
	}
	if x, ok := a["format"]; ok {
		if err := ensureString(x, f+".format", 0, 0); err != nil {
			return err
		}
		if x != "mp3" && x != "wav" {
			return invalid(f, "%s.format must be mp3 or wav.", f)
		}
	}
	if x, ok := a["channels"]; ok {
		if err := ensureString(x, f+".channels", 0, 0); err != nil {
			return err
		}
		if x != "single" && x != "dual" {
			return invalid(f, "%s.channels must be single or dual.", f)
		}
	}
	return nil
}

func validateAICall(v any) error {
	body, err := ensureDict(v, "body")
	if err != nil {
		return err
	}
	// failover is accepted by the SDK, which turns it into a PCMO call; this
	// client sends it as that PCMO call itself, so the AI endpoint never
	// sees it and the SDK's "app_id only with failover" rule stands alone.
	if err := requiredAndAllowed(body, []string{"caller_id", "to_number", "agent_id"}, []string{"caller_id", "to_number", "agent_id", "options", "variables"}, "body"); err != nil {
		return err
	}
	if err := validatePhone(body["caller_id"], "caller_id"); err != nil {
		return err
	}
	if err := validatePhone(body["to_number"], "to_number"); err != nil {
		return err
	}
	if err := validateUUID(body["agent_id"], "agent_id"); err != nil {
		return err
	}
	return optionsAndVariables(body)
}

func optionsAndVariables(body obj) error {
	if x, ok := body["options"]; ok {
		if err := validateMainOptions(x, "options"); err != nil {
			return err
		}
	}
	if x, ok := body["variables"]; ok {
		return validateVariables(x, "variables", 0, 0)
	}
	return nil
}

func validatePCMOCall(v any) error {
	body, err := ensureDict(v, "body")
	if err != nil {
		return err
	}
	if err := requiredAndAllowed(body, []string{"caller_id", "to_number", "pipeline", "app_id"}, []string{"caller_id", "to_number", "pipeline", "app_id", "agent_id", "options", "variables"}, "body"); err != nil {
		return err
	}
	if err := validatePhone(body["caller_id"], "caller_id"); err != nil {
		return err
	}
	if err := validatePhone(body["to_number"], "to_number"); err != nil {
		return err
	}
	if err := ensureString(body["app_id"], "app_id", 0, 0); err != nil {
		return err
	}
	if err := validatePipeline(body["pipeline"], "pipeline"); err != nil {
		return err
	}
	if x, ok := body["agent_id"]; ok {
		if err := validateUUID(x, "agent_id"); err != nil {
			return err
		}
	}
	return optionsAndVariables(body)
}

func validatePCMOTransfer(v any) error {
	body, err := ensureDict(v, "body")
	if err != nil {
		return err
	}
	if err := requiredAndAllowed(body, []string{"call_id", "pipeline"}, []string{"call_id", "pipeline"}, "body"); err != nil {
		return err
	}
	if err := validateUUID(body["call_id"], "call_id"); err != nil {
		return err
	}
	return validatePipeline(body["pipeline"], "pipeline")
}

func validateHangup(v any) error {
	body, err := ensureDict(v, "body")
	if err != nil {
		return err
	}
	if err := requiredAndAllowed(body, []string{"call_id"}, []string{"call_id", "cause", "reason"}, "body"); err != nil {
		return err
	}
	if err := validateUUID(body["call_id"], "call_id"); err != nil {
		return err
	}
	return causeAndReason(body)
}

func causeAndReason(body obj) error {
	if x, ok := body["cause"]; ok {
		if err := ensureString(x, "cause", 1, 64); err != nil {
			return err
		}
	}
	if x, ok := body["reason"]; ok {
		return ensureString(x, "reason", 1, 256)
	}
	return nil
}

func validateCallHangup(v any) error {
	body, err := ensureDict(v, "body")
	if err != nil {
		return err
	}
	if err := requiredAndAllowed(body, nil, []string{"cause", "reason"}, "body"); err != nil {
		return err
	}
	return causeAndReason(body)
}

// validateTransfer checks a live-call transfer: warm to to_number or
// sip_uri, or blind to a pipeline (exactly one of the three).
func validateTransfer(v any) error {
	body, err := ensureDict(v, "body")
	if err != nil {
		return err
	}
	allowed := []string{"to_number", "sip_uri", "caller_id", "timeout_sec", "confirm", "hold_audio", "transfer_summary", "sip_headers", "variables", "pipeline"}
	if err := requiredAndAllowed(body, nil, allowed, "body"); err != nil {
		return err
	}
	if err := validateTransferTarget(body); err != nil {
		return err
	}
	return checkOptional(body, "",
		optionalField{"to_number", validatePhone},
		optionalField{"sip_uri", stringOf(1)},
		optionalField{"caller_id", validatePhone},
		optionalField{"timeout_sec", intIn(5, 120)},
		optionalField{"confirm", ensureBool},
		optionalField{"hold_audio", stringOf(1)},
		optionalField{"transfer_summary", stringOf(0)},
		optionalField{"sip_headers", validateSIPHeaders},
		optionalField{"variables", func(x any, field string) error { return validateVariables(x, field, 0, 0) }},
	)
}

// validateTransferTarget checks a transfer names exactly one target, and
// that a pipeline (a cold transfer) comes without the warm-only fields.
func validateTransferTarget(body obj) error {
	targets := 0
	for _, k := range []string{"to_number", "sip_uri", "pipeline"} {
		if _, ok := body[k]; ok {
			targets++
		}
	}
	if targets != 1 {
		return invalid("body", "Exactly one of to_number, sip_uri or pipeline is required.")
	}
	if x, ok := body["pipeline"]; ok {
		for _, k := range []string{"caller_id", "timeout_sec", "confirm", "hold_audio", "transfer_summary", "sip_headers"} {
			if _, warm := body[k]; warm {
				return invalid(k, "%s is only supported for a warm transfer (to_number or sip_uri).", k)
			}
		}
		if err := validatePipeline(x, "pipeline"); err != nil {
			return err
		}
	}
	return nil
}

// validateSIPHeaders checks sip_headers is an object of strings.
func validateSIPHeaders(v any, field string) error {
	h, err := ensureDict(v, field)
	if err != nil {
		return err
	}
	for _, k := range keysOf(h) {
		if err := ensureString(h[k], field+"."+k, 0, 0); err != nil {
			return err
		}
	}
	return nil
}
