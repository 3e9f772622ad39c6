package piopiy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Default base URLs of Piopiy's v2 API.
const (
	DefaultRESTBaseURL   = "https://rest.telecmi.com"
	DefaultActionBaseURL = "https://piopiy.telecmi.com"
)

// Paths of the v2 endpoints.
const (
	pathMakeCallIndia  = "/v2/ind_pcmo_make_call"
	pathMakeCallGlobal = "/v2/global_pcmo_make_call"
	pathCallAction     = "/v1/call/action"
	pathCMIUUIDCDR     = "/v1/piopiy/cmiuuid_cdr"
	pathRequestIDCDR   = "/v1/piopiy/requestid_cdr"
)

const (
	defaultUserAgent      = "callfleet-piopiy-go/1"
	defaultHTTPTimeout    = 30 * time.Second
	defaultLookupAttempts = 3
	defaultLookupBackoff  = 200 * time.Millisecond
	// maxRetryWait bounds one pause between lookup attempts: when Piopiy asks
	// for longer (Retry-After), the error goes back to the caller, whose
	// requeue is a better place to wait than a blocked goroutine.
	maxRetryWait = 10 * time.Second
	// maxResponseBytes bounds what is read of a reply; Piopiy's are small.
	maxResponseBytes = 1 << 20
)

// Client talks to Piopiy's v2 API. It is safe for concurrent use. Make one
// with NewClient.
type Client struct {
	// creds is a closure, not a field, because fmt prints unexported fields
	// raw (it cannot call their methods), and a func prints as an address
	// whatever the verb.
	creds      func() Credentials
	restBase   string
	actionBase string
	httpClient *http.Client
	userAgent  string
	attempts   int
	backoff    time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithRESTBaseURL sets the base URL of the make-call endpoints
// (default https://rest.telecmi.com).
func WithRESTBaseURL(u string) Option { return func(c *Client) { c.restBase = u } }

// WithActionBaseURL sets the base URL of the call-action and CDR endpoints
// (default https://piopiy.telecmi.com).
func WithActionBaseURL(u string) Option { return func(c *Client) { c.actionBase = u } }

// WithHTTPClient sets the HTTP client. The Client uses a shallow copy that
// does not follow redirects: a redirected create could not be accounted for.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.httpClient = hc } }

// WithLookupRetries sets how many times an idempotent request (a CDR lookup,
// a hangup, hold or unhold) is attempted and the first pause between
// attempts, which doubles each time (default 3 attempts, 200ms). Placing a
// call is never retried.
func WithLookupRetries(attempts int, backoff time.Duration) Option {
	return func(c *Client) { c.attempts, c.backoff = attempts, backoff }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// NewClient returns a Client for the app the credentials identify.
func NewClient(creds Credentials, opts ...Option) (*Client, error) {
	if err := creds.Validate(); err != nil {
		return nil, err
	}
	c := &Client{
		creds:      func() Credentials { return creds },
		restBase:   DefaultRESTBaseURL,
		actionBase: DefaultActionBaseURL,
		userAgent:  defaultUserAgent,
		attempts:   defaultLookupAttempts,
		backoff:    defaultLookupBackoff,
	}
	for _, o := range opts {
		o(c)
	}
	var err error
	if c.restBase, err = checkBaseURL(c.restBase, "rest base url"); err != nil {
		return nil, err
	}
	if c.actionBase, err = checkBaseURL(c.actionBase, "action base url"); err != nil {
		return nil, err
	}
	if c.attempts < 1 {
		return nil, validationError("new client", "lookup attempts %d is less than 1", c.attempts)
	}
	if c.backoff < 0 {
		return nil, validationError("new client", "lookup backoff %s is negative", c.backoff)
	}
	hc := &http.Client{Timeout: defaultHTTPTimeout}
	if c.httpClient != nil {
		copied := *c.httpClient
		hc = &copied
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.httpClient = hc
	return c, nil
}

func checkBaseURL(raw, what string) (string, error) {
	if err := checkURL(raw, what, "http", "https"); err != nil {
		return "", validationError("new client", "%v", err)
	}
	u, _ := url.Parse(raw) // parsed by checkURL
	if u.RawQuery != "" || u.Fragment != "" {
		return "", validationError("new client", "%s has a query or fragment", what)
	}
	return strings.TrimRight(raw, "/"), nil
}

// String describes the client without its secret.
func (c *Client) String() string {
	return fmt.Sprintf("piopiy.Client{AppID:%d, REST:%s, Action:%s}", c.creds().AppID, c.restBase, c.actionBase)
}

// GoString is String, for %#v.
func (c *Client) GoString() string { return c.String() }

// authFields open every v2 request body.
type authFields struct {
	AppID  int64  `json:"appid"`
	Secret string `json:"secret"`
}

// Format keeps the secret out of anything that prints a request body.
func (a authFields) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "{appid:%d secret:%s}", a.AppID, redacted) // a Formatter cannot report a failed write
}

func (c *Client) auth() authFields {
	cr := c.creds()
	return authFields(cr)
}

// scrub removes the secret from text that came back from the server, in case
// an error message echoes the request.
func (c *Client) scrub(s string) string {
	secret := c.creds().Secret
	if secret == "" || s == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, redacted)
}

// response is a reply whose status and body code said success.
type response struct {
	status int
	// env is the decoded body, nil when it was not a JSON object.
	env *envelope
}

// post sends one request and classifies the outcome. idempotent says whether
// repeating the request is harmless: when it is not, every failure that could
// follow the request reaching Piopiy is reported as KindAmbiguous.
func (c *Client) post(ctx context.Context, op, base, path string, body any, idempotent bool) (*response, error) {
	payload, err := marshal(body)
	if err != nil {
		return nil, &Error{Kind: KindValidation, Op: op, Message: "cannot encode request", Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, &Error{Kind: KindTransport, Op: op, Message: "not sent", Err: err}
	}
	var tr connTrace
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, tr.clientTrace()), http.MethodPost, base+path, bytes.NewReader(payload))
	if err != nil {
		return nil, &Error{Kind: KindValidation, Op: op, Message: "cannot build request", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)

	resp, err := c.httpClient.Do(req)
	if err != nil {
		return nil, c.transportError(op, err, idempotent, &tr)
	}
	defer func() { _ = resp.Body.Close() }()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if readErr == nil && len(data) > maxResponseBytes {
		readErr = fmt.Errorf("response body exceeds %d bytes", maxResponseBytes)
	}
	var env *envelope
	if readErr == nil {
		env, _ = decodeEnvelope(data) // nil: not a JSON object, judged by status alone
	}
	if e := classify(op, resp.StatusCode, env, idempotent); e != nil {
		if e.Kind == KindRateLimited {
			e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		e.Message = c.scrub(e.Message)
		return nil, e
	}
	if readErr != nil {
		// Success was announced but not delivered.
		kind := KindTransport
		if !idempotent {
			kind = KindAmbiguous
		}
		return nil, &Error{Kind: kind, Op: op, HTTPStatus: resp.StatusCode, Message: "reply body lost", Err: readErr}
	}
	return &response{status: resp.StatusCode, env: env}, nil
}

// connTrace records how far net/http got with a request.
type connTrace struct {
	getConn atomic.Bool // net/http started looking for a connection
	gotConn atomic.Bool // it had one, so bytes may have been written
}

func (t *connTrace) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn: func(string) { t.getConn.Store(true) },
		GotConn: func(httptrace.GotConnInfo) { t.gotConn.Store(true) },
	}
}

// transportError classifies a failure in which no response arrived.
func (c *Client) transportError(op string, err error, idempotent bool, tr *connTrace) *Error {
	e := &Error{Kind: KindTransport, Op: op, Err: err}
	if !idempotent && mayHaveBeenSent(err, tr) {
		e.Kind = KindAmbiguous
		e.Message = "no reply; the request may have reached piopiy"
	} else if !idempotent {
		e.Message = "not sent"
	}
	return e
}

// mayHaveBeenSent decides whether a failed request could have reached the
// server. It answers no only with proof: the final error is a dial error (no
// connection, and net/http never replays a written POST on a fresh one), or
// net/http asked for a connection and never got one. A custom RoundTripper
// that fires no trace hooks gets the cautious answer.
func mayHaveBeenSent(err error, tr *connTrace) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return false
	}
	if tr.getConn.Load() && !tr.gotConn.Load() {
		return false
	}
	return true
}

// envelope is the common part of every v2 reply body.
type envelope struct {
	obj     object
	code    int
	message string
}

func decodeEnvelope(body []byte) (*envelope, error) {
	o, err := decodeObject(body, "response body")
	if err != nil {
		return nil, err
	}
	r := &fieldReader{obj: o, what: "response"}
	env := &envelope{obj: o, code: int(r.int("code", "cmi_code"))}
	if r.err != nil {
		// A code that is not a number carries no verdict; keep the rest.
		env.code = 0
	}
	// The message key varies between endpoints and error paths; any of them
	// may be missing or oddly typed, so read each on its own.
	for _, k := range []string{"message", "msg", "error", "reason", "description"} {
		mr := &fieldReader{obj: o, what: "response"}
		if m := strings.TrimSpace(mr.str(k)); m != "" && mr.err == nil {
			env.message = m
			break
		}
	}
	return env, nil
}

// str reads a top-level field, falling back to the same field inside "data"
// (make-call puts request_id and status in both places).
func (env *envelope) str(key string) string {
	r := &fieldReader{obj: env.obj, what: "response"}
	if s := strings.TrimSpace(r.str(key)); s != "" && r.err == nil {
		return s
	}
	data, err := decodeObject(env.obj["data"], "data")
	if err != nil {
		return ""
	}
	r = &fieldReader{obj: data, what: "response data"}
	if s := strings.TrimSpace(r.str(key)); r.err == nil {
		return s
	}
	return ""
}

func is2xx(code int) bool { return code >= 200 && code <= 299 }

// classify turns an HTTP status and a decoded body (nil when unreadable) into
// an error, or nil when both say success. Piopiy may answer HTTP 200 with an
// error code in the body, so a body code that is not 2xx wins over the status.
func classify(op string, httpStatus int, env *envelope, idempotent bool) *Error {
	code := httpStatus
	e := &Error{Op: op, HTTPStatus: httpStatus}
	if env != nil {
		e.Code, e.Message = env.code, env.message
		if env.code != 0 && !is2xx(env.code) {
			code = env.code
		}
	}
	if is2xx(code) {
		return nil
	}
	kind, ok := kindForCode(code)
	if code == 502 && env != nil && env.code == 502 && (!is5xx(httpStatus) || mentionsMissing(env.message)) {
		// Body code 502 is Piopiy's "property missing"; an HTTP 502 whose
		// body does not say so is a gateway failure instead.
		kind, ok = KindValidation, true
	}
	switch {
	case !ok && code >= 400 && code <= 499:
		kind = KindUnexpected // refused, for a reason this client does not know
	case !ok && !idempotent:
		kind = KindAmbiguous // 3xx and other oddities: a create may have run first
	case kind == KindServer && !idempotent:
		kind = KindAmbiguous
	}
	e.Kind = kind
	if e.Message == "" {
		e.Message = http.StatusText(code)
		if kind == KindAmbiguous {
			e.Message = strings.TrimSpace(e.Message + " (the call may have been placed)")
		}
	}
	return e
}

func is5xx(code int) bool { return code >= 500 && code <= 599 }

func mentionsMissing(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "missing") || strings.Contains(m, "property")
}

var httpDate = http.ParseTime

// retry runs fn until it succeeds, fails for good, or the attempts run out.
// Only temporary errors (5xx, 429, network) are retried, with exponential
// backoff and jitter, honouring Retry-After and ctx.
func (c *Client) retry(ctx context.Context, fn func() error) error {
	wait := c.backoff
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		var pe *Error
		if attempt >= c.attempts || !errors.As(err, &pe) || !pe.Temporary() || ctx.Err() != nil {
			return err
		}
		d := wait + rand.N(wait/5+1) // jitter keeps many callers from retrying in step
		if pe.RetryAfter > d {
			d = pe.RetryAfter
		}
		if d > maxRetryWait {
			return err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return err
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait *= 2
	}
}
