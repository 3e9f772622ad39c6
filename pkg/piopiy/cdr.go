package piopiy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// CDR is a call detail record: what Piopiy posts when a call has finished,
// and what the CDR lookups return.
type CDR struct {
	// Status is answered or missed.
	Status    CDRStatus
	AppID     int64
	Leg       Leg
	Direction Direction
	From      Number
	To        Number
	// Duration is the billed duration (Piopiy sends whole seconds).
	Duration time.Duration
	// Time is the record's timestamp (Piopiy sends epoch milliseconds).
	Time time.Time
	// StartTime, AnswerTime and EndTime are sent in epoch seconds; AnswerTime
	// is zero for a missed call.
	StartTime  time.Time
	AnswerTime time.Time
	EndTime    time.Time
	// CMIUUID identifies the leg.
	CMIUUID          string
	ConversationUUID string
	// RequestID is the make-call request id (outbound calls).
	RequestID string
	CallerID  Number
	VN        Number
	// CallRate and Balance are decimal amounts, kept as text to avoid
	// floating point.
	CallRate string
	Balance  string
	// ExtraParams and RawExtraParams are as in Event.
	ExtraParams    map[string]string
	RawExtraParams string
	// Recording is the recorded file's name, from the `filename` key that
	// TeleCMI's CDRs carry beside `record: true` when a call was recorded.
	// TeleCMI documents that pair for its CHUB CDRs; that Piopiy's CDRs of a
	// PCMO `record` action use the same keys is inferred (docs/call.md).
	Recording string
}

// Outcome names the record the way Piopiy's documentation does:
// out_answered, out_missed, in_answered or in_missed. It is empty when the
// direction or status is not known.
func (c *CDR) Outcome() string {
	var dir string
	switch c.Direction {
	case DirectionOutbound:
		dir = "out_"
	case DirectionInbound:
		dir = "in_"
	default:
		return ""
	}
	switch c.Status {
	case CDRAnswered, CDRMissed:
		return dir + string(c.Status)
	}
	return ""
}

func parseCDR(r *fieldReader) *CDR {
	c := &CDR{
		Status:           CDRStatus(r.lower("status")),
		AppID:            r.int("appid"),
		Leg:              Leg(r.lower("leg")),
		Direction:        Direction(r.lower("direction")),
		From:             r.number("from"),
		To:               r.number("to"),
		Duration:         r.duration("duration"),
		Time:             r.millis("time"),
		StartTime:        r.seconds("start_time"),
		AnswerTime:       r.seconds("answer_time"),
		EndTime:          r.seconds("end_time"),
		CMIUUID:          r.str("cmiuuid", "cmuuid", "cmiuid"),
		ConversationUUID: r.str("conversation_uuid"),
		RequestID:        r.str("request_id"),
		CallerID:         r.number("callerid"),
		VN:               r.number("vn"),
		CallRate:         strings.TrimSpace(r.str("call_rate", "rate")), // webhooks say call_rate, the documented lookups rate
		Balance:          strings.TrimSpace(r.str("balance")),
		Recording:        strings.TrimSpace(r.str("filename")),
	}
	c.ExtraParams, c.RawExtraParams = r.extraParams("extra_params")
	return c
}

// UnmarshalJSON parses a CDR object in any of the shapes Piopiy sends.
func (c *CDR) UnmarshalJSON(b []byte) error {
	o, err := decodeObject(b, "cdr")
	if err != nil {
		return err
	}
	r := &fieldReader{obj: o, what: "cdr"}
	p := parseCDR(r)
	if r.err != nil {
		return r.err
	}
	*c = *p
	return nil
}

type wireCDR struct {
	Type             string    `json:"type"`
	AppID            int64     `json:"appid,omitempty"`
	Leg              Leg       `json:"leg,omitempty"`
	Direction        Direction `json:"direction,omitempty"`
	From             Number    `json:"from,omitempty"`
	To               Number    `json:"to,omitempty"`
	Status           CDRStatus `json:"status,omitempty"`
	Duration         int64     `json:"duration"`
	Time             int64     `json:"time,omitempty"`
	StartTime        int64     `json:"start_time,omitempty"`
	AnswerTime       int64     `json:"answer_time,omitempty"`
	EndTime          int64     `json:"end_time,omitempty"`
	CMIUUID          string    `json:"cmiuuid,omitempty"`
	ConversationUUID string    `json:"conversation_uuid,omitempty"`
	RequestID        string    `json:"request_id,omitempty"`
	CallerID         Number    `json:"callerid,omitempty"`
	VN               Number    `json:"vn,omitempty"`
	CallRate         string    `json:"call_rate,omitempty"`
	Balance          string    `json:"balance,omitempty"`
	ExtraParams      string    `json:"extra_params,omitempty"`
	Record           bool      `json:"record,omitempty"`
	Filename         string    `json:"filename,omitempty"`
}

// MarshalJSON writes the CDR as Piopiy posts it to the webhook (type "cdr",
// time in epoch milliseconds, the other times in epoch seconds).
func (c CDR) MarshalJSON() ([]byte, error) {
	return marshal(wireCDR{
		Type:             "cdr",
		AppID:            c.AppID,
		Leg:              c.Leg,
		Direction:        c.Direction,
		From:             c.From,
		To:               c.To,
		Status:           c.Status,
		Duration:         int64(c.Duration / time.Second),
		Time:             unixMilli(c.Time),
		StartTime:        unixSeconds(c.StartTime),
		AnswerTime:       unixSeconds(c.AnswerTime),
		EndTime:          unixSeconds(c.EndTime),
		CMIUUID:          c.CMIUUID,
		ConversationUUID: c.ConversationUUID,
		RequestID:        c.RequestID,
		CallerID:         c.CallerID,
		VN:               c.VN,
		CallRate:         c.CallRate,
		Balance:          c.Balance,
		ExtraParams:      encodeExtraParams(c.ExtraParams, c.RawExtraParams),
		Record:           c.Recording != "",
		Filename:         c.Recording,
	})
}

// ParseCDRResponse reads the body of a CDR lookup: {"cdr":{...},"code":200}
// from cmiuuid_cdr or {"count":N,"cdr":[...],"code":200} from requestid_cdr.
// Either shape gives a slice. An error code in the body is returned as an
// *Error (a 404 matches ErrNotFound).
func ParseCDRResponse(body []byte) ([]CDR, error) {
	const op = "parse cdr response"
	env, err := decodeEnvelope(body)
	if err != nil {
		return nil, &Error{Kind: KindUnexpected, Op: op, Message: "unreadable response body", Err: err}
	}
	if e := classify(op, http.StatusOK, env, true); e != nil {
		return nil, e
	}
	return cdrsFromEnvelope(op, http.StatusOK, env)
}

func cdrsFromEnvelope(op string, httpStatus int, env *envelope) ([]CDR, error) {
	if env == nil {
		return nil, &Error{Kind: KindUnexpected, Op: op, HTTPStatus: httpStatus, Message: "response body is not a JSON object"}
	}
	raw := bytes.TrimSpace(env.obj["cdr"])
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return []CDR{}, nil
	case raw[0] == '[':
		var cdrs []CDR
		if err := json.Unmarshal(raw, &cdrs); err != nil {
			return nil, &Error{Kind: KindUnexpected, Op: op, HTTPStatus: httpStatus, Message: "unreadable cdr list", Err: err}
		}
		if cdrs == nil {
			cdrs = []CDR{}
		}
		return cdrs, nil
	default:
		var c CDR
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, &Error{Kind: KindUnexpected, Op: op, HTTPStatus: httpStatus, Message: "unreadable cdr", Err: err}
		}
		return []CDR{c}, nil
	}
}

// CDRByCMIUUID looks up the CDR of one call leg. It returns an error matching
// ErrNotFound when Piopiy has no record (yet). Lookups are retried on 5xx,
// 429 and network failures, within ctx.
func (c *Client) CDRByCMIUUID(ctx context.Context, cmiuuid string) (*CDR, error) {
	const op = "cdr by cmiuuid"
	if strings.TrimSpace(cmiuuid) == "" {
		return nil, validationError(op, "cmiuuid is empty")
	}
	body := cmiuuidCDRRequest{authFields: c.auth(), CMIUUID: cmiuuid}
	var cdrs []CDR
	err := c.retry(ctx, func() error {
		resp, err := c.post(ctx, op, c.actionBase, pathCMIUUIDCDR, body, true)
		if err != nil {
			return err
		}
		cdrs, err = cdrsFromEnvelope(op, resp.status, resp.env)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(cdrs) == 0 {
		return nil, &Error{Kind: KindNotFound, Op: op, HTTPStatus: http.StatusOK, Message: "response has no cdr"}
	}
	return &cdrs[0], nil
}

// CDRsByRequestID returns the CDRs of every leg placed by one make-call
// request: the way to settle a call whose outcome webhook never arrived. An
// empty slice means Piopiy answered with no records; an unknown request id
// gives an error matching ErrNotFound (Piopiy also says 404 for bad
// credentials on this endpoint). Retried like CDRByCMIUUID.
func (c *Client) CDRsByRequestID(ctx context.Context, requestID string) ([]CDR, error) {
	const op = "cdr by request id"
	if strings.TrimSpace(requestID) == "" {
		return nil, validationError(op, "request id is empty")
	}
	body := requestIDCDRRequest{authFields: c.auth(), RequestID: requestID}
	var cdrs []CDR
	err := c.retry(ctx, func() error {
		resp, err := c.post(ctx, op, c.actionBase, pathRequestIDCDR, body, true)
		if err != nil {
			return err
		}
		cdrs, err = cdrsFromEnvelope(op, resp.status, resp.env)
		return err
	})
	return cdrs, err
}
