package piopiy

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
)

// Route picks the make-call endpoint.
type Route string

// Make-call routes. The zero value derives the route from the caller id.
const (
	// RouteIndia posts to /v2/ind_pcmo_make_call.
	RouteIndia Route = "india"
	// RouteGlobal posts to /v2/global_pcmo_make_call.
	RouteGlobal Route = "global"
)

// indianMobile is the caller-id test of the official Python SDK.
var indianMobile = regexp.MustCompile(`^91[6789]\d{9}$`)

// DeriveRoute returns the route Piopiy's SDK would pick for a caller id:
// India for an Indian mobile number (91 followed by ten digits starting 6-9),
// global otherwise.
func DeriveRoute(from string) Route {
	if indianMobile.MatchString(from) {
		return RouteIndia
	}
	return RouteGlobal
}

// MakeCallRequest describes one call to place.
type MakeCallRequest struct {
	// From is the Piopiy number shown as caller id: digits with country code.
	From string
	// To is the number to ring: digits with country code.
	To string
	// Route picks the endpoint; empty derives it from From (see DeriveRoute).
	Route Route
	// DurationSeconds caps the call; zero means 5400.
	DurationSeconds int
	// ExtraParams are echoed back in every event and CDR of the call. Put
	// the attempt's identity here to settle an ambiguous create.
	ExtraParams map[string]string
	// PCMO is what the call runs once answered.
	PCMO PCMO
}

// MakeCallResponse is Piopiy's acceptance of a call.
type MakeCallResponse struct {
	// RequestID identifies the call in every later event and CDR.
	RequestID string
	// Status is Piopiy's status word, normally "progress".
	Status string
}

type makeCallBody struct {
	authFields
	From        json.Number       `json:"from"`
	To          json.Number       `json:"to"`
	Duration    int               `json:"duration"`
	ExtraParams map[string]string `json:"extra_params"`
	PCMO        PCMO              `json:"pcmo"`
}

// Validate checks the request as MakeCall does before sending anything. The
// error matches ErrValidation.
func (r MakeCallRequest) Validate() error {
	const op = "make call"
	if !validPhone(r.From) {
		return validationError(op, "from %q is not a phone number (7 to 16 digits, no leading 0 or +)", r.From)
	}
	if !validPhone(r.To) {
		return validationError(op, "to %q is not a phone number (7 to 16 digits, no leading 0 or +)", r.To)
	}
	switch r.Route {
	case "", RouteIndia, RouteGlobal:
	default:
		return validationError(op, "route %q is not india or global", string(r.Route))
	}
	if r.DurationSeconds < 0 {
		return validationError(op, "duration %d is negative", r.DurationSeconds)
	}
	if err := r.PCMO.Validate(); err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return validationError(op, "pcmo: %s", pe.Message)
		}
		return err
	}
	return nil
}

// path returns the endpoint path for the request's route.
func (r MakeCallRequest) path() string {
	route := r.Route
	if route == "" {
		route = DeriveRoute(r.From)
	}
	if route == RouteIndia {
		return pathMakeCallIndia
	}
	return pathMakeCallGlobal
}

// MakeCall places a call. It is never retried: v2 has no idempotency key, so
// a second POST can ring a person twice. Any failure after the request may
// have reached Piopiy (a lost reply, a timeout, a 5xx, a 200 without a
// request_id) matches ErrAmbiguous; settle those with CDRsByRequestID or the
// webhooks, using ExtraParams to recognise the call. A failure that proves
// nothing was sent (the connection was refused) matches ErrTransport.
func (c *Client) MakeCall(ctx context.Context, req MakeCallRequest) (*MakeCallResponse, error) {
	const op = "make call"
	if err := req.Validate(); err != nil {
		return nil, err
	}
	body := makeCallBody{
		authFields:  c.auth(),
		From:        json.Number(req.From),
		To:          json.Number(req.To),
		Duration:    orDefault(req.DurationSeconds, DefaultCallDurationSeconds),
		ExtraParams: req.ExtraParams,
		PCMO:        req.PCMO,
	}
	if body.ExtraParams == nil {
		body.ExtraParams = map[string]string{}
	}
	resp, err := c.post(ctx, op, c.restBase, req.path(), body, false)
	if err != nil {
		return nil, err
	}
	if resp.env == nil {
		return nil, &Error{Kind: KindAmbiguous, Op: op, HTTPStatus: resp.status, Message: "success reply is not a JSON object; the call may have been placed"}
	}
	out := &MakeCallResponse{RequestID: resp.env.str("request_id"), Status: resp.env.str("status")}
	if out.RequestID == "" {
		return nil, &Error{Kind: KindAmbiguous, Op: op, HTTPStatus: resp.status, Code: resp.env.code, Message: "success reply has no request_id; the call may have been placed"}
	}
	return out, nil
}

// CallActionKind is an action on a live call leg.
type CallActionKind string

// Live call actions.
const (
	ActionHangup     CallActionKind = "hangup"
	ActionHold       CallActionKind = "hold"
	ActionUnhold     CallActionKind = "unhold"
	ActionHoldToggle CallActionKind = "holdToggle"
)

// idempotent reports whether sending the action twice does no harm.
func (k CallActionKind) idempotent() bool { return k != ActionHoldToggle }

type callActionBody struct {
	authFields
	CMIUUID string         `json:"cmiuuid"`
	Action  CallActionKind `json:"action"`
}

type cmiuuidCDRRequest struct {
	authFields
	CMIUUID string `json:"cmiuuid"`
}

type requestIDCDRRequest struct {
	authFields
	RequestID string `json:"request_id"`
}

// CallAction hangs up, holds or unholds a live call leg, named by the cmiuuid
// of its events. Hangup, hold and unhold are idempotent and retried like the
// lookups; holdToggle is not (twice is a no-op), so it is sent once and a
// failure after sending matches ErrAmbiguous. A leg that has already ended
// may be answered with an error matching ErrNotFound, which a caller hanging
// up can take as done.
func (c *Client) CallAction(ctx context.Context, cmiuuid string, action CallActionKind) error {
	const op = "call action"
	if strings.TrimSpace(cmiuuid) == "" {
		return validationError(op, "cmiuuid is empty")
	}
	switch action {
	case ActionHangup, ActionHold, ActionUnhold, ActionHoldToggle:
	default:
		return validationError(op, "action %q is not hangup, hold, unhold or holdToggle", string(action))
	}
	body := callActionBody{authFields: c.auth(), CMIUUID: cmiuuid, Action: action}
	send := func() error {
		_, err := c.post(ctx, op, c.actionBase, pathCallAction, body, action.idempotent())
		return err
	}
	if !action.idempotent() {
		return send()
	}
	return c.retry(ctx, send)
}
