package piopiyv3

import (
	"bytes"
	"context"
	"encoding/json"
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

// DefaultBaseURL is the base of every v3 endpoint.
const DefaultBaseURL = "https://rest.piopiy.com/v3"

const (
	defaultUserAgent   = "callfleet-piopiy-go/1 (v3)"
	defaultHTTPTimeout = 30 * time.Second
	defaultAttempts    = 3
	defaultBackoff     = 200 * time.Millisecond
	// maxRetryWait bounds one pause between attempts of an idempotent
	// request: a longer Retry-After goes back to the caller.
	maxRetryWait     = 10 * time.Second
	maxResponseBytes = 1 << 20
)

// Client talks to Piopiy's v3 API. It is safe for concurrent use.
type Client struct {
	// token is a closure so that fmt, which prints unexported fields raw,
	// can never print it.
	token      func() string
	base       string
	httpClient *http.Client
	userAgent  string
	attempts   int
	backoff    time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithBaseURL sets the API base, path included (default
// https://rest.piopiy.com/v3).
func WithBaseURL(u string) Option { return func(c *Client) { c.base = u } }

// WithHTTPClient sets the HTTP client; a shallow copy that does not follow
// redirects is used.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.httpClient = hc } }

// WithRetries sets how often an idempotent request (a GET, a hangup) is
// attempted and the first pause, which doubles (default 3, 200ms). Creates
// and transfers are never retried.
func WithRetries(attempts int, backoff time.Duration) Option {
	return func(c *Client) { c.attempts, c.backoff = attempts, backoff }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// NewClient returns a Client that authenticates with the Bearer token.
func NewClient(token string, opts ...Option) (*Client, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, &Error{Kind: KindValidation, Op: "new client", Message: "token is empty"}
	}
	if strings.ContainsAny(token, "\r\n") {
		return nil, &Error{Kind: KindValidation, Op: "new client", Message: "token contains a line break"}
	}
	c := &Client{token: func() string { return token }, base: DefaultBaseURL, userAgent: defaultUserAgent, attempts: defaultAttempts, backoff: defaultBackoff}
	for _, o := range opts {
		o(c)
	}
	u, err := url.Parse(c.base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, &Error{Kind: KindValidation, Op: "new client", Message: fmt.Sprintf("base url %q must be an http(s) URL without query or fragment", c.base)}
	}
	c.base = strings.TrimRight(c.base, "/")
	if c.attempts < 1 || c.backoff < 0 {
		return nil, &Error{Kind: KindValidation, Op: "new client", Message: "retries need at least 1 attempt and a backoff >= 0"}
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

// String describes the client without its token.
func (c *Client) String() string { return "piopiyv3.Client{Base:" + c.base + ", Token:REDACTED}" }

// GoString is String, for %#v.
func (c *Client) GoString() string { return c.String() }

// errorBody is Piopiy's v3 error reply.
type errorBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// send validates body by ep's rules (when ep is set), sends one request and
// decodes a 2xx reply into out. idempotent says whether repeating the
// request is harmless: when it is not, every failure that could follow the
// request reaching Piopiy is KindAmbiguous, and it is sent once only.
func (c *Client) send(ctx context.Context, op, method, path string, ep Endpoint, body, out any, idempotent bool) error {
	var payload []byte
	if body != nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(body); err != nil {
			return &Error{Kind: KindValidation, Op: op, Message: "cannot encode request", Err: err}
		}
		payload = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if ep != "" {
			if err := Validate(ep, payload); err != nil {
				err.(*Error).Op = op
				return err
			}
		}
	}
	if !idempotent {
		return c.once(ctx, op, method, path, payload, out, false)
	}
	return c.retry(ctx, func() error { return c.once(ctx, op, method, path, payload, out, true) })
}

func (c *Client) once(ctx context.Context, op, method, path string, payload []byte, out any, idempotent bool) error {
	if err := ctx.Err(); err != nil {
		return &Error{Kind: KindTransport, Op: op, Message: "not sent", Err: err}
	}
	var tr connTrace
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, tr.clientTrace()), method, c.base+path, rd)
	if err != nil {
		return &Error{Kind: KindValidation, Op: op, Message: "cannot build request", Err: err}
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Authorization", "Bearer "+c.token())

	resp, err := c.httpClient.Do(req)
	if err != nil {
		e := &Error{Kind: KindTransport, Op: op, Err: err}
		if !idempotent {
			e.Message = "not sent"
			if mayHaveBeenSent(err, &tr) {
				e.Kind, e.Message = KindAmbiguous, "no reply; the request may have reached piopiy"
			}
		}
		return e
	}
	defer func() { _ = resp.Body.Close() }()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if readErr == nil && len(data) > maxResponseBytes {
		readErr = fmt.Errorf("response body exceeds %d bytes", maxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var eb *errorBody
		if readErr == nil {
			var b errorBody
			if json.Unmarshal(data, &b) == nil {
				eb = &b
			}
		}
		e := classify(op, resp.StatusCode, eb, idempotent)
		if e.Kind == KindRateLimited {
			e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now(), http.ParseTime)
		}
		e.Message = strings.ReplaceAll(e.Message, c.token(), "REDACTED")
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
		return e
	}
	kind := KindTransport
	if !idempotent {
		kind = KindAmbiguous
	}
	if readErr != nil {
		return &Error{Kind: kind, Op: op, HTTPStatus: resp.StatusCode, Message: "reply body lost", Err: readErr}
	}
	if out != nil {
		if err := decodeReply(data, out); err != nil {
			// Success was announced in a shape this client cannot read: for
			// a create, the call exists but its id is unknown.
			if !idempotent {
				return &Error{Kind: KindAmbiguous, Op: op, HTTPStatus: resp.StatusCode, Message: "reply unreadable", Err: err}
			}
			return &Error{Kind: KindUnexpected, Op: op, HTTPStatus: resp.StatusCode, Message: "reply unreadable", Err: err}
		}
	}
	return nil
}

// decodeReply reads a reply object, or the object under its "data" key when
// Piopiy wraps it (both shapes appear in TeleCMI's examples).
func decodeReply(data []byte, out any) error {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return err
	}
	if len(env.Data) > 0 && env.Data[0] == '{' {
		data = env.Data
	}
	return json.Unmarshal(data, out)
}

type connTrace struct {
	getConn atomic.Bool
	gotConn atomic.Bool
}

func (t *connTrace) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn: func(string) { t.getConn.Store(true) },
		GotConn: func(httptrace.GotConnInfo) { t.gotConn.Store(true) },
	}
}

// mayHaveBeenSent answers no only with proof: a dial error, or a connection
// asked for and never obtained (net/http never replays a written POST).
func mayHaveBeenSent(err error, tr *connTrace) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return false
	}
	return !tr.getConn.Load() || tr.gotConn.Load()
}

// retry runs fn until it succeeds, fails for good or the attempts run out,
// with doubling backoff and jitter, honouring Retry-After and ctx.
func (c *Client) retry(ctx context.Context, fn func() error) error {
	wait := c.backoff
	for attempt := 1; ; attempt++ {
		err := fn()
		var pe *Error
		if err == nil || attempt >= c.attempts || !errors.As(err, &pe) || !pe.Temporary() || ctx.Err() != nil {
			return err
		}
		d := wait + rand.N(wait/5+1)
		d = max(d, pe.RetryAfter)
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
