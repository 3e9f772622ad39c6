package piopiyv3

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrorKind classifies a failure by what the caller should do about it.
type ErrorKind uint8

// The kinds of Error. The zero value is KindUnexpected so that an Error
// built without a kind never claims to be something it is not.
const (
	// KindUnexpected: Piopiy answered in a way this client does not understand.
	KindUnexpected ErrorKind = iota
	// KindValidation: the request was refused as malformed, before sending
	// (by the SDK's rules) or by Piopiy (400, 422).
	KindValidation
	// KindAuthentication: the token was refused (401, or 403 for another
	// reason than a stopped agent). Retrying will not help.
	KindAuthentication
	// KindAgentNotRunning: 403 ai_agent_not_running, the hosted agent is
	// stopped. Nothing was placed.
	KindAgentNotRunning
	// KindNotFound: 404. For a call, Piopiy forgets it once it has ended.
	KindNotFound
	// KindTransferInProgress: 409 transfer_in_progress: the call already has
	// a transfer under way (Error.RequestID names it). Wait for it.
	KindTransferInProgress
	// KindRateLimited: 429; Error.RetryAfter says how long when Piopiy did.
	// Nothing was done.
	KindRateLimited
	// KindServer: 5xx on a request that is safe to repeat.
	KindServer
	// KindAmbiguous: a request that is not safe to repeat (a create or a
	// transfer) may or may not have been applied.
	KindAmbiguous
	// KindTransport: the network failed; for a request that is not safe to
	// repeat, it certainly never reached Piopiy.
	KindTransport
)

// Sentinel errors for errors.Is. Every *Error matches exactly one of them.
var (
	ErrUnexpected         = errors.New("piopiy v3: unexpected response")
	ErrValidation         = errors.New("piopiy v3: invalid request")
	ErrAuthentication     = errors.New("piopiy v3: authentication failed")
	ErrAgentNotRunning    = errors.New("piopiy v3: ai agent not running")
	ErrNotFound           = errors.New("piopiy v3: not found")
	ErrTransferInProgress = errors.New("piopiy v3: transfer in progress")
	ErrRateLimited        = errors.New("piopiy v3: rate limited")
	ErrServer             = errors.New("piopiy v3: server error")
	ErrAmbiguous          = errors.New("piopiy v3: request may have been applied")
	ErrTransport          = errors.New("piopiy v3: transport error")
)

var kinds = [...]struct {
	name     string
	sentinel error
}{
	KindUnexpected:         {"unexpected response", ErrUnexpected},
	KindValidation:         {"invalid request", ErrValidation},
	KindAuthentication:     {"authentication failed", ErrAuthentication},
	KindAgentNotRunning:    {"ai agent not running", ErrAgentNotRunning},
	KindNotFound:           {"not found", ErrNotFound},
	KindTransferInProgress: {"transfer in progress", ErrTransferInProgress},
	KindRateLimited:        {"rate limited", ErrRateLimited},
	KindServer:             {"server error", ErrServer},
	KindAmbiguous:          {"request may have been applied", ErrAmbiguous},
	KindTransport:          {"transport error", ErrTransport},
}

// String returns a short lower-case description of the kind.
func (k ErrorKind) String() string {
	if int(k) < len(kinds) {
		return kinds[k].name
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Sentinel returns the sentinel error that errors of this kind match.
func (k ErrorKind) Sentinel() error {
	if int(k) < len(kinds) {
		return kinds[k].sentinel
	}
	return nil
}

// Error codes Piopiy puts in the "error" field of a v3 error body.
const (
	CodeTransferInProgress = "transfer_in_progress"
	CodeAgentNotRunning    = "ai_agent_not_running"
)

// Error is returned by every Client method and by Validate. It never holds
// the token.
type Error struct {
	Kind ErrorKind
	// Op names the operation, such as "ai call" or "get transfer".
	Op string
	// HTTPStatus is Piopiy's status, 0 when there was no response.
	HTTPStatus int
	// Code is the body's "error" field (e.g. "transfer_in_progress").
	Code string
	// Message is the body's "message", or the SDK's validation message.
	Message string
	// Field is the request field a validation error is about.
	Field string
	// RequestID is the body's "request_id": for a 409, the transfer already
	// under way.
	RequestID string
	// RetryAfter is how long Piopiy asked the caller to wait (429).
	RetryAfter time.Duration
	// Err is the underlying cause, if any.
	Err error
}

// Error formats as "piopiy v3: <op>: <kind>: <message> (http N, error CODE): <cause>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("piopiy v3: ")
	if e.Op != "" {
		b.WriteString(e.Op + ": ")
	}
	b.WriteString(e.Kind.String())
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	switch {
	case e.HTTPStatus != 0 && e.Code != "":
		fmt.Fprintf(&b, " (http %d, error %s)", e.HTTPStatus, e.Code)
	case e.HTTPStatus != 0:
		fmt.Fprintf(&b, " (http %d)", e.HTTPStatus)
	}
	if e.RequestID != "" {
		b.WriteString(" (request " + e.RequestID + ")")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's Kind.
func (e *Error) Is(target error) bool { return target != nil && target == e.Kind.Sentinel() }

// Temporary reports whether repeating the same request later may succeed
// unchanged. Ambiguous errors are not temporary: repeating them blindly is
// exactly what must not happen.
func (e *Error) Temporary() bool {
	switch e.Kind {
	case KindRateLimited, KindServer, KindTransport:
		return true
	}
	return false
}

// IsAmbiguous is shorthand for errors.Is(err, ErrAmbiguous).
func IsAmbiguous(err error) bool { return errors.Is(err, ErrAmbiguous) }

// classify turns a non-2xx status and a decoded body into an Error.
func classify(op string, status int, body *errorBody, idempotent bool) *Error {
	e := &Error{Op: op, HTTPStatus: status}
	if body != nil {
		e.Code, e.Message, e.RequestID = body.Error, body.Message, body.RequestID
	}
	switch {
	case status == 409 && e.Code == CodeTransferInProgress:
		e.Kind = KindTransferInProgress
	case status == 403 && e.Code == CodeAgentNotRunning:
		e.Kind = KindAgentNotRunning
	case status == 401 || status == 403:
		e.Kind = KindAuthentication
	case status == 400 || status == 422:
		e.Kind = KindValidation
	case status == 404:
		e.Kind = KindNotFound
	case status == 429:
		e.Kind = KindRateLimited
	case status >= 500 && status <= 599 && idempotent:
		e.Kind = KindServer
	case status >= 500 && status <= 599, !idempotent && (status < 400 || status > 499):
		// A 5xx (or a redirect, or anything odd) after a create may follow
		// the call being placed.
		e.Kind = KindAmbiguous
	default:
		e.Kind = KindUnexpected
	}
	return e
}

// parseRetryAfter reads a Retry-After header (delay seconds or HTTP date).
func parseRetryAfter(v string, now time.Time, parseDate func(string) (time.Time, error)) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(min(max(secs, 0), int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := parseDate(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
