package piopiy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// WebhookKind says what a webhook body is.
type WebhookKind string

// Kinds of body Piopiy posts.
const (
	// KindEvent is a live call event (a status change of one leg).
	KindEvent WebhookKind = "event"
	// KindCDR is the call detail record sent when a call has finished.
	KindCDR WebhookKind = "cdr"
	// KindDTMF is the digits collected by an input or play_get_input action,
	// posted to its action_url.
	KindDTMF WebhookKind = "dtmf"
	// KindInbound is the answer-URL request for an inbound call; the reply
	// is a PCMO.
	KindInbound WebhookKind = "inbound"
)

// Webhook is one parsed body posted by Piopiy. Exactly one of Event, CDR,
// DTMF and Inbound is set, the one Kind names.
type Webhook struct {
	Kind    WebhookKind
	Event   *Event
	CDR     *CDR
	DTMF    *DTMF
	Inbound *Inbound
}

// Leg names the leg of a call: "a" is the first party, "b" the one a bridge
// or connect rang.
type Leg string

// Call legs.
const (
	LegA Leg = "a"
	LegB Leg = "b"
)

// Direction is the direction of a call leg.
type Direction string

// Call directions.
const (
	DirectionInbound  Direction = "inbound"
	DirectionOutbound Direction = "outbound"
)

// EventStatus is a live event's status, lower-cased (Piopiy really sends
// STREAM_DISCONNECTED in capitals).
type EventStatus string

// Live event statuses.
const (
	StatusStarted            EventStatus = "started"
	StatusRinging            EventStatus = "ringing"
	StatusOutStarted         EventStatus = "out_started"
	StatusOutAnswered        EventStatus = "out_answered"
	StatusOutBridged         EventStatus = "out_bridged" // leg b answered: a bridge or transfer connected
	StatusInAnswered         EventStatus = "in_answered"
	StatusHangup             EventStatus = "hangup"
	StatusStreamConnected    EventStatus = "stream_connected"
	StatusStreamDisconnected EventStatus = "stream_disconnected"
)

// Known reports whether s is one of the documented statuses. Unknown ones are
// kept (lower-cased) rather than refused, so a new Piopiy status does not
// make webhooks fail.
func (s EventStatus) Known() bool {
	switch s {
	case StatusStarted, StatusRinging, StatusOutStarted, StatusOutAnswered, StatusOutBridged,
		StatusInAnswered, StatusHangup, StatusStreamConnected, StatusStreamDisconnected:
		return true
	}
	return false
}

// Event is a live call event.
type Event struct {
	// Status is the normalised status; RawStatus is what Piopiy sent.
	Status    EventStatus
	RawStatus string
	AppID     int64
	Leg       Leg
	Direction Direction
	From      Number
	To        Number
	// Time is when the event happened (Piopiy sends epoch milliseconds).
	Time time.Time
	// CMIUUID identifies the leg; it is what CallAction and CDRByCMIUUID take.
	CMIUUID          string
	ConversationUUID string
	// RequestID is the make-call request id (outbound calls only).
	RequestID string
	CallerID  Number
	VN        Number
	// WSStatus is set on stream_connected and stream_disconnected.
	WSStatus *WSStatus
	// ExtraParams are the make-call extra_params echoed back, when they are a
	// JSON object; RawExtraParams is the text as received (a param action's
	// free text lands there alone).
	ExtraParams    map[string]string
	RawExtraParams string
}

// WSStatus describes the state of the stream socket in a stream event.
type WSStatus struct {
	// Status is "connected" or "disconnected".
	Status string
	// Code and Reason are the WebSocket close code and reason.
	Code   int
	Reason string
	// Raw is ws_status as received (Piopiy sends a string holding JSON).
	Raw string
}

// CDRStatus is the outcome in a CDR.
type CDRStatus string

// CDR outcomes.
const (
	CDRAnswered CDRStatus = "answered"
	CDRMissed   CDRStatus = "missed"
)

// DTMF is the body posted to an input action's action_url.
type DTMF struct {
	From    Number
	To      Number
	Digits  string
	CMIUUID string
	// RequestID and ConversationUUID are set when Piopiy sends them.
	RequestID        string
	ConversationUUID string
}

// Inbound is the body posted to the answer URL when a call comes in.
type Inbound struct {
	From             Number
	To               Number
	Time             time.Time
	CMIUUID          string
	ConversationUUID string
	AppID            int64
}

// ParseWebhook parses a body Piopiy posted: a live event, a CDR, DTMF digits
// or an inbound answer-URL request. It accepts every shape Piopiy is known to
// send (numbers as strings or numbers, ws_status and extra_params as strings
// holding JSON, misspelled keys) and ignores unknown fields. The result
// marshals back to the wire form.
func ParseWebhook(body []byte) (*Webhook, error) {
	o, err := decodeObject(body, "webhook body")
	if err != nil {
		return nil, err
	}
	r := &fieldReader{obj: o, what: "webhook"}
	typ := r.lower("type")
	status := strings.TrimSpace(r.str("status"))
	if r.err != nil {
		return nil, r.err
	}
	var w Webhook
	switch {
	case typ == "cdr":
		w.Kind, w.CDR = KindCDR, parseCDR(r)
	case status != "":
		w.Kind, w.Event = KindEvent, parseEvent(r)
	case o.has("dtmf"):
		w.Kind, w.DTMF = KindDTMF, parseDTMF(r)
	case r.lower("action") == "inbound":
		w.Kind, w.Inbound = KindInbound, parseInbound(r)
	default:
		return nil, fmt.Errorf("piopiy: webhook has neither a status nor type cdr (nor dtmf, nor action inbound)")
	}
	if r.err != nil {
		return nil, r.err
	}
	return &w, nil
}

// UnmarshalJSON parses b with ParseWebhook.
func (w *Webhook) UnmarshalJSON(b []byte) error {
	p, err := ParseWebhook(b)
	if err != nil {
		return err
	}
	*w = *p
	return nil
}

// MarshalJSON writes the webhook in Piopiy's wire form.
func (w Webhook) MarshalJSON() ([]byte, error) {
	switch {
	case w.Kind == KindEvent && w.Event != nil:
		return w.Event.MarshalJSON()
	case w.Kind == KindCDR && w.CDR != nil:
		return w.CDR.MarshalJSON()
	case w.Kind == KindDTMF && w.DTMF != nil:
		return w.DTMF.MarshalJSON()
	case w.Kind == KindInbound && w.Inbound != nil:
		return w.Inbound.MarshalJSON()
	}
	return nil, fmt.Errorf("piopiy: webhook of kind %q has no %s body", w.Kind, w.Kind)
}

func parseEvent(r *fieldReader) *Event {
	raw := r.str("status")
	e := &Event{
		RawStatus:        raw,
		Status:           EventStatus(strings.ToLower(strings.TrimSpace(raw))),
		AppID:            r.int("appid"),
		Leg:              Leg(r.lower("leg")),
		Direction:        Direction(r.lower("direction")),
		From:             r.number("from"),
		To:               r.number("to"),
		Time:             r.millis("time"),
		CMIUUID:          r.str("cmiuuid", "cmuuid", "cmiuid"),
		ConversationUUID: r.str("conversation_uuid"),
		RequestID:        r.str("request_id"),
		CallerID:         r.number("callerid"),
		VN:               r.number("vn"),
		WSStatus:         parseWSStatus(r, "ws_status"),
	}
	e.ExtraParams, e.RawExtraParams = r.extraParams("extra_params")
	return e
}

// UnmarshalJSON parses a live event body.
func (e *Event) UnmarshalJSON(b []byte) error {
	o, err := decodeObject(b, "event")
	if err != nil {
		return err
	}
	r := &fieldReader{obj: o, what: "event"}
	p := parseEvent(r)
	if r.err != nil {
		return r.err
	}
	*e = *p
	return nil
}

type wireEvent struct {
	AppID            int64     `json:"appid,omitempty"`
	Leg              Leg       `json:"leg,omitempty"`
	Direction        Direction `json:"direction,omitempty"`
	From             Number    `json:"from,omitempty"`
	To               Number    `json:"to,omitempty"`
	Time             int64     `json:"time,omitempty"`
	CMIUUID          string    `json:"cmiuuid,omitempty"`
	ConversationUUID string    `json:"conversation_uuid,omitempty"`
	RequestID        string    `json:"request_id,omitempty"`
	CallerID         Number    `json:"callerid,omitempty"`
	VN               Number    `json:"vn,omitempty"`
	Status           string    `json:"status"`
	WSStatus         string    `json:"ws_status,omitempty"`
	ExtraParams      string    `json:"extra_params,omitempty"`
}

// MarshalJSON writes the event as Piopiy sends it (RawStatus when set, times
// in epoch milliseconds, ws_status and extra_params as strings).
func (e Event) MarshalJSON() ([]byte, error) {
	status := e.RawStatus
	if strings.TrimSpace(status) == "" {
		status = string(e.Status)
	}
	return marshal(wireEvent{
		AppID:            e.AppID,
		Leg:              e.Leg,
		Direction:        e.Direction,
		From:             e.From,
		To:               e.To,
		Time:             unixMilli(e.Time),
		CMIUUID:          e.CMIUUID,
		ConversationUUID: e.ConversationUUID,
		RequestID:        e.RequestID,
		CallerID:         e.CallerID,
		VN:               e.VN,
		Status:           status,
		WSStatus:         e.WSStatus.encode(),
		ExtraParams:      encodeExtraParams(e.ExtraParams, e.RawExtraParams),
	})
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func unixSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// parseWSStatus reads ws_status: a string holding a JSON object such as
// {"status":"disconnected","message":{"code":1006,"reason":"Abnormal closure"}},
// or that object itself, or a bare status word. Text that is not JSON is kept
// in Raw rather than failing the whole event.
func parseWSStatus(r *fieldReader, key string) *WSStatus {
	v, ok := r.obj[key]
	if !ok || string(v) == "null" {
		return nil
	}
	var raw string
	if v = bytes.TrimSpace(v); v[0] == '{' {
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			r.fail(key, err)
			return nil
		}
		raw = validUTF8(buf.String())
	} else {
		raw = r.str(key)
	}
	if strings.TrimSpace(raw) == "" {
		return nil
	}
	ws := &WSStatus{Raw: raw}
	o, err := decodeObject([]byte(raw), "ws_status")
	if err != nil {
		ws.Status = strings.TrimSpace(raw)
		return ws
	}
	// A malformed inner field must not lose the event, so errors stay here.
	inner := &fieldReader{obj: o, what: "ws_status"}
	ws.Status = inner.str("status")
	ws.Code = int(inner.int("code", "cmi_code"))
	ws.Reason = inner.str("reason")
	if m, ok := o["message"]; ok {
		if mo, err := decodeObject(m, "ws_status message"); err == nil {
			mr := &fieldReader{obj: mo, what: "ws_status message"}
			ws.Code = int(mr.int("code", "cmi_code"))
			ws.Reason = mr.str("reason", "message")
		} else {
			ws.Reason = inner.str("message")
		}
	}
	return ws
}

type wireWSStatus struct {
	Status  string `json:"status"`
	Message struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"message"`
}

// encode writes ws_status back as the string Piopiy sends.
func (ws *WSStatus) encode() string {
	if ws == nil {
		return ""
	}
	if ws.Raw != "" {
		return ws.Raw
	}
	w := wireWSStatus{Status: ws.Status}
	w.Message.Code, w.Message.Reason = ws.Code, ws.Reason
	b, _ := marshal(w) // strings and ints always encode
	return string(b)
}

func parseDTMF(r *fieldReader) *DTMF {
	return &DTMF{
		From:             r.number("from"),
		To:               r.number("to"),
		Digits:           strings.TrimSpace(r.str("dtmf")),
		CMIUUID:          r.str("cmiuuid", "cmuuid", "cmiuid"),
		RequestID:        r.str("request_id"),
		ConversationUUID: r.str("conversation_uuid"),
	}
}

// MarshalJSON writes the DTMF body as Piopiy sends it (digits as a string).
func (d DTMF) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		From             Number `json:"from,omitempty"`
		To               Number `json:"to,omitempty"`
		DTMF             string `json:"dtmf"`
		CMIUUID          string `json:"cmiuuid,omitempty"`
		RequestID        string `json:"request_id,omitempty"`
		ConversationUUID string `json:"conversation_uuid,omitempty"`
	}{d.From, d.To, d.Digits, d.CMIUUID, d.RequestID, d.ConversationUUID})
}

func parseInbound(r *fieldReader) *Inbound {
	return &Inbound{
		From:             r.number("from"),
		To:               r.number("to"),
		Time:             r.millis("time"),
		CMIUUID:          r.str("cmiuuid", "cmuuid", "cmiuid"),
		ConversationUUID: r.str("conversation_uuid"),
		AppID:            r.int("appid"),
	}
}

// MarshalJSON writes the answer-URL body as Piopiy sends it.
func (in Inbound) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		Action           string `json:"action"`
		AppID            int64  `json:"appid,omitempty"`
		From             Number `json:"from,omitempty"`
		To               Number `json:"to,omitempty"`
		Time             int64  `json:"time,omitempty"`
		CMIUUID          string `json:"cmiuuid,omitempty"`
		ConversationUUID string `json:"conversation_uuid,omitempty"`
	}{"inbound", in.AppID, in.From, in.To, unixMilli(in.Time), in.CMIUUID, in.ConversationUUID})
}
