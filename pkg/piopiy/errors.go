package piopiy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrorKind classifies a failure by what the caller should do about it.
type ErrorKind uint8

// The kinds of Error. The zero value is KindUnexpected so that an Error built
// without a kind never claims to be something it is not.
const (
	// KindUnexpected: Piopiy answered in a way this client does not understand
	// (an unknown status code or an unreadable body on an idempotent request).
	KindUnexpected ErrorKind = iota
	// KindAuthentication: the app id or secret was refused (body code 401 or
	// 420, HTTP 401 or 403). Fix the credentials; retrying will not help.
	KindAuthentication
	// KindValidation: the request was refused as malformed (HTTP 400, body code
	// 422 or 502 "property missing") or failed local validation before sending.
	KindValidation
	// KindNotFound: the thing asked for does not exist (404). Piopiy also
	// answers 404 to CDR lookups with bad credentials.
	KindNotFound
	// KindRateLimited: Piopiy answered 429; Error.RetryAfter says for how long
	// to back off when it said so.
	KindRateLimited
	// KindServer: Piopiy failed (5xx) on a request that is safe to repeat.
	KindServer
	// KindAmbiguous: a request that is not safe to repeat (placing a call)
	// may or may not have been applied. Settle it from webhooks or a CDR
	// lookup before deciding to send it again.
	KindAmbiguous
	// KindTransport: the network failed and, for a request that is not safe to
	// repeat, it certainly never reached Piopiy (the connection was never
	// made).
	KindTransport
)

// Sentinel errors for errors.Is. Every *Error matches exactly one of them,
// the one of its Kind.
var (
	ErrUnexpected     = errors.New("piopiy: unexpected response")
	ErrAuthentication = errors.New("piopiy: authentication failed")
	ErrValidation     = errors.New("piopiy: invalid request")
	ErrNotFound       = errors.New("piopiy: not found")
	ErrRateLimited    = errors.New("piopiy: rate limited")
	ErrServer         = errors.New("piopiy: server error")
	ErrAmbiguous      = errors.New("piopiy: request may have been applied")
	ErrTransport      = errors.New("piopiy: transport error")
)

var kindNames = [...]string{
	KindUnexpected:     "unexpected response",
	KindAuthentication: "authentication failed",
	KindValidation:     "invalid request",
	KindNotFound:       "not found",
	KindRateLimited:    "rate limited",
	KindServer:         "server error",
	KindAmbiguous:      "request may have been applied",
	KindTransport:      "transport error",
}

var kindSentinels = [...]error{
	KindUnexpected:     ErrUnexpected,
	KindAuthentication: ErrAuthentication,
	KindValidation:     ErrValidation,
	KindNotFound:       ErrNotFound,
	KindRateLimited:    ErrRateLimited,
	KindServer:         ErrServer,
	KindAmbiguous:      ErrAmbiguous,
	KindTransport:      ErrTransport,
}

// String returns a short lower-case description of the kind.
func (k ErrorKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Sentinel returns the sentinel error that errors of this kind match.
func (k ErrorKind) Sentinel() error {
	if int(k) < len(kindSentinels) {
		return kindSentinels[k]
	}
	return nil
}

// Error is the error returned by every Client method and by local
// validation. It never holds the account secret.
type Error struct {
	// Kind says what the caller should do about the failure.
	Kind ErrorKind
	// Op names the operation, such as "make call" or "cdr by request id".
	Op string
	// HTTPStatus is the HTTP status Piopiy answered with, 0 when there was
	// no response.
	HTTPStatus int
	// Code is the Piopiy code from the body (code or cmi_code), 0 when absent.
	Code int
	// Message is the human-readable reason, from Piopiy or from validation.
	Message string
	// RetryAfter is how long Piopiy asked the caller to wait (429 only).
	RetryAfter time.Duration
	// Err is the underlying cause (a transport or decoding error), if any.
	Err error
}

// Error formats the error as "piopiy: <op>: <kind>: <message> (http N, code M): <cause>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("piopiy: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.String())
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	switch {
	case e.HTTPStatus != 0 && e.Code != 0:
		fmt.Fprintf(&b, " (http %d, code %d)", e.HTTPStatus, e.Code)
	case e.HTTPStatus != 0:
		fmt.Fprintf(&b, " (http %d)", e.HTTPStatus)
	case e.Code != 0:
		fmt.Fprintf(&b, " (code %d)", e.Code)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause, so errors.Is(err, context.DeadlineExceeded)
// works through an Error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's Kind.
func (e *Error) Is(target error) bool {
	return target != nil && target == e.Kind.Sentinel()
}

// Temporary reports whether repeating the same request later may succeed
// without changing it. Ambiguous errors are not temporary: repeating them is
// exactly what must not happen blindly.
func (e *Error) Temporary() bool {
	switch e.Kind {
	case KindRateLimited, KindServer, KindTransport:
		return true
	}
	return false
}

// IsAmbiguous reports whether err says a request may or may not have been
// applied. It is shorthand for errors.Is(err, ErrAmbiguous).
func IsAmbiguous(err error) bool { return errors.Is(err, ErrAmbiguous) }

// validationError builds a KindValidation error for a failure found before
// anything was sent.
func validationError(op, format string, args ...any) *Error {
	return &Error{Kind: KindValidation, Op: op, Message: fmt.Sprintf(format, args...)}
}

// kindForCode maps a Piopiy body code or an HTTP status to a kind. ok is false
// for codes that carry no verdict of their own (2xx, unknown 3xx/4xx).
func kindForCode(code int) (ErrorKind, bool) {
	switch {
	case code == 401 || code == 403 || code == 420:
		return KindAuthentication, true
	case code == 400 || code == 422:
		return KindValidation, true
	case code == 404:
		return KindNotFound, true
	case code == 429:
		return KindRateLimited, true
	case code >= 500 && code <= 599:
		return KindServer, true
	}
	return KindUnexpected, false
}

// parseRetryAfter reads a Retry-After header in either of its two forms
// (delay seconds or an HTTP date).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := httpDate(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
