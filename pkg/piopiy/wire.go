package piopiy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Number is a phone number as Piopiy's v2 API carries it: digits with the
// country code and no "+". v2 sends numbers as JSON numbers in some places and
// as strings in others; Number reads both and writes a JSON number whenever
// the value is plain digits, which is what v2 requests require.
//
// A Number read from a webhook is kept as sent (minus a leading "+"), because
// a SIP leg may carry a user name instead of digits; use Valid to check.
type Number string

// String returns the number as text.
func (n Number) String() string { return string(n) }

// Valid reports whether n is a dialable v2 number: 7 to 16 digits, the first
// not zero (a JSON number cannot start with 0).
func (n Number) Valid() bool { return validPhone(string(n)) }

// MarshalJSON writes digits as a JSON number and anything else as a string,
// so marshalling never fails and never loses what was read.
func (n Number) MarshalJSON() ([]byte, error) {
	if isJSONInteger(string(n)) {
		return []byte(n), nil
	}
	return marshal(string(n))
}

// UnmarshalJSON accepts a JSON number, a string, or null.
func (n *Number) UnmarshalJSON(b []byte) error {
	s, err := decodeScalar(b)
	if err != nil {
		return fmt.Errorf("phone number: %w", err)
	}
	if s.isNumber && !isDigits(s.text) {
		return fmt.Errorf("phone number %s is not an integer", s.text)
	}
	*n = Number(strings.TrimPrefix(strings.TrimSpace(s.text), "+"))
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isJSONInteger reports whether s can be written as a JSON number verbatim.
func isJSONInteger(s string) bool {
	return isDigits(s) && (s[0] != '0' || len(s) == 1)
}

// NumberPattern is the one rule for a phone number anywhere in callfleet:
// 7 to 16 digits with the country code, no "+", the first digit not zero.
// The CRDs' pattern markers spell the same expression (test/arch checks).
const NumberPattern = `^[1-9][0-9]{6,15}$`

// ValidNumber reports whether s matches NumberPattern.
func ValidNumber(s string) bool { return Number(s).Valid() }

func validPhone(s string) bool {
	return len(s) >= 7 && len(s) <= 16 && isJSONInteger(s) && s[0] != '0'
}

// scalar is one decoded JSON scalar: its text, and whether it was a number.
type scalar struct {
	text     string
	isNumber bool
	isNull   bool
}

// decodeScalar reads a JSON string, number, boolean or null. Piopiy is loose
// about which of those it uses for the same field, so the webhook types read
// every scalar field through here.
func decodeScalar(b []byte) (scalar, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return scalar{}, fmt.Errorf("empty value")
	}
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return scalar{}, err
		}
		return scalar{text: s}, nil
	case 'n':
		if string(b) == "null" {
			return scalar{isNull: true}, nil
		}
	case 't', 'f':
		if string(b) == "true" || string(b) == "false" {
			return scalar{text: string(b)}, nil
		}
	case '{', '[':
		return scalar{}, fmt.Errorf("want a string or a number, got %s", jsonKind(b[0]))
	default:
		if json.Valid(b) {
			return scalar{text: string(b), isNumber: true}, nil
		}
	}
	return scalar{}, fmt.Errorf("invalid JSON value %.40q", b)
}

func jsonKind(c byte) string {
	if c == '{' {
		return "an object"
	}
	return "an array"
}

// flexString is a string field that Piopiy may also send as a number or a
// boolean; the text is kept as sent.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	s, err := decodeScalar(b)
	if err != nil {
		return err
	}
	*f = flexString(s.text)
	return nil
}

// flexInt is an integer field that Piopiy may send as a number, a numeric
// string, an empty string or null (all but the first read as absent = 0).
type flexInt struct {
	v   int64
	set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s, err := decodeScalar(b)
	if err != nil {
		return err
	}
	text := strings.TrimSpace(s.text)
	if s.isNull || text == "" {
		*f = flexInt{}
		return nil
	}
	v, err := parseFlexInt(text)
	if err != nil {
		return err
	}
	*f = flexInt{v: v, set: true}
	return nil
}

// parseFlexInt reads an integer, truncating a fractional value ("9.0" and 9.5
// both say nine seconds).
func parseFlexInt(text string) (int64, error) {
	if v, err := strconv.ParseInt(text, 10, 64); err == nil {
		return v, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("invalid number %.40q", text)
	}
	// Beyond ±2^63 the conversion is undefined, so refuse rather than guess.
	if f >= math.MaxInt64 || f <= math.MinInt64 {
		return 0, fmt.Errorf("number %.40q out of range", text)
	}
	return int64(f), nil
}

// object is a decoded JSON object whose fields are read one by one, so that
// each field can take whatever shape Piopiy gave it and errors can name it.
type object map[string]json.RawMessage

// decodeObject reads b as a JSON object; what names it in errors.
func decodeObject(b []byte, what string) (object, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("piopiy: %s is not a JSON object", what)
	}
	var o object
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("piopiy: %s is not a JSON object: %w", what, err)
	}
	return o, nil
}

// has reports whether key is present with a non-null value.
func (o object) has(key string) bool {
	v, ok := o[key]
	return ok && string(v) != "null"
}

// fieldReader reads typed fields from an object and keeps the first error,
// so a parser can read every field and check once.
type fieldReader struct {
	obj  object
	what string
	err  error
}

func (r *fieldReader) fail(key string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("piopiy: %s field %q: %w", r.what, key, err)
	}
}

// str returns the first present key's value as text. Several keys cover
// Piopiy's misspellings (cmuuid, cmiuid for cmiuuid).
func (r *fieldReader) str(keys ...string) string {
	for _, k := range keys {
		if !r.obj.has(k) {
			continue
		}
		var f flexString
		if err := f.UnmarshalJSON(r.obj[k]); err != nil {
			r.fail(k, err)
			return ""
		}
		return string(f)
	}
	return ""
}

// lower is str, trimmed and lower-cased, for enumerations.
func (r *fieldReader) lower(keys ...string) string {
	return strings.ToLower(strings.TrimSpace(r.str(keys...)))
}

func (r *fieldReader) int(keys ...string) int64 {
	for _, k := range keys {
		if !r.obj.has(k) {
			continue
		}
		var f flexInt
		if err := f.UnmarshalJSON(r.obj[k]); err != nil {
			r.fail(k, err)
			return 0
		}
		return f.v
	}
	return 0
}

func (r *fieldReader) number(key string) Number {
	if !r.obj.has(key) {
		return ""
	}
	var n Number
	if err := n.UnmarshalJSON(r.obj[key]); err != nil {
		r.fail(key, err)
	}
	return n
}

// maxEpochSeconds is the end of year 9999: later timestamps are garbage.
const maxEpochSeconds = 253402300799

// millis reads epoch milliseconds; 0 or absent is the zero time.
func (r *fieldReader) millis(key string) time.Time {
	v := r.int(key)
	if v < 0 || v > maxEpochSeconds*1000+999 {
		r.fail(key, fmt.Errorf("timestamp %d ms is out of range", v))
		return time.Time{}
	}
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// seconds reads epoch seconds; 0 or absent is the zero time.
func (r *fieldReader) seconds(key string) time.Time {
	v := r.int(key)
	if v < 0 || v > maxEpochSeconds {
		r.fail(key, fmt.Errorf("timestamp %d s is out of range", v))
		return time.Time{}
	}
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(v, 0).UTC()
}

// duration reads a number of seconds.
func (r *fieldReader) duration(key string) time.Duration {
	v := r.int(key)
	if v > math.MaxInt64/int64(time.Second) || v < math.MinInt64/int64(time.Second) {
		r.fail(key, fmt.Errorf("%d seconds is out of range", v))
		return 0
	}
	return time.Duration(v) * time.Second
}

// extraParams reads extra_params, which Piopiy sends as a string holding a
// JSON object, as an object, or as the free text of a param action. raw is
// the text as received (an object re-encoded compactly); params is set only
// when that text is a JSON object.
func (r *fieldReader) extraParams(key string) (params map[string]string, raw string) {
	v, ok := r.obj[key]
	if !ok || string(v) == "null" {
		return nil, ""
	}
	v = bytes.TrimSpace(v)
	if v[0] == '"' {
		if err := json.Unmarshal(v, &raw); err != nil {
			r.fail(key, err)
			return nil, ""
		}
	} else {
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			r.fail(key, err)
			return nil, ""
		}
		raw = validUTF8(buf.String())
	}
	return paramsFromJSON(raw), raw
}

// paramsFromJSON flattens a JSON object to strings: strings stay as they are,
// other values keep their JSON text. It returns nil for anything else.
func paramsFromJSON(raw string) map[string]string {
	t := strings.TrimSpace(raw)
	if t == "" || t[0] != '{' {
		return nil
	}
	var o map[string]json.RawMessage
	if err := json.Unmarshal([]byte(t), &o); err != nil {
		return nil
	}
	params := make(map[string]string, len(o))
	for k, v := range o {
		var s string
		switch {
		case string(v) == "null":
		case v[0] == '"':
			_ = json.Unmarshal(v, &s) // valid: json.Unmarshal checked the whole object
		default:
			var buf bytes.Buffer
			_ = json.Compact(&buf, v)
			s = buf.String()
		}
		params[k] = s
	}
	return params
}

// encodeExtraParams is the inverse of extraParams: the raw text when there is
// one, else the params as a JSON object, as a string (the form v2 events use).
func encodeExtraParams(params map[string]string, raw string) string {
	if raw != "" {
		return raw
	}
	if len(params) == 0 {
		return ""
	}
	b, _ := marshal(params) // a map[string]string always encodes
	return string(b)
}

// marshal is json.Marshal without HTML escaping: Piopiy is no browser, and
// a ws_url's "&" should travel as "&", not "\u0026".
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// validUTF8 replaces invalid bytes in JSON copied verbatim, as decoding a
// JSON string would, so that a value re-encodes to the same text.
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
