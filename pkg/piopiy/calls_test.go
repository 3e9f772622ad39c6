package piopiy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func testCall() MakeCallRequest {
	return MakeCallRequest{
		From:        "918071387000",
		To:          "919876543210",
		ExtraParams: map[string]string{"call": "default/call-a", "attempt": "1"},
		PCMO: PCMO{Stream(StreamOptions{
			WSURL: wsURL, ListenMode: ListenBoth, StreamOnAnswer: true,
		})},
	}
}

func TestMakeCallRequestBodiesMatchGolden(t *testing.T) {
	global := testCall()
	global.From, global.To = "14155550100", "447700900123"
	global.DurationSeconds = 600
	global.ExtraParams = nil
	forced := testCall()
	forced.Route = RouteGlobal
	for _, tc := range []struct {
		name     string
		req      MakeCallRequest
		wantPath string
	}{
		{"make_call_india", testCall(), "/v2/ind_pcmo_make_call"},
		{"make_call_global", global, "/v2/global_pcmo_make_call"},
		{"make_call_forced_global", forced, "/v2/global_pcmo_make_call"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, nil)
			resp, err := f.client(t).MakeCall(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.RequestID != testRequestID || resp.Status != "progress" {
				t.Errorf("response %+v", resp)
			}
			got := f.last()
			if got.Method != http.MethodPost || got.Path != tc.wantPath {
				t.Errorf("sent %s %s, want POST %s", got.Method, got.Path, tc.wantPath)
			}
			if ct := got.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if ua := got.Header.Get("User-Agent"); ua != defaultUserAgent {
				t.Errorf("User-Agent %q", ua)
			}
			assertGolden(t, "request_"+tc.name, got.Body)
		})
	}
}

func TestDeriveRoute(t *testing.T) {
	for from, want := range map[string]Route{
		"919876543210":  RouteIndia,
		"916000000000":  RouteIndia,
		"915876543210":  RouteGlobal, // landline prefix
		"9198765432100": RouteGlobal, // too long
		"14155550100":   RouteGlobal,
		"":              RouteGlobal,
	} {
		if got := DeriveRoute(from); got != want {
			t.Errorf("DeriveRoute(%q) = %q, want %q", from, got, want)
		}
	}
}

func TestMakeCallValidatesBeforeSending(t *testing.T) {
	mutate := func(m func(*MakeCallRequest)) MakeCallRequest {
		r := testCall()
		m(&r)
		return r
	}
	for _, tc := range []struct {
		name string
		req  MakeCallRequest
		want string
	}{
		{"plus sign", mutate(func(r *MakeCallRequest) { r.To = "+919876543210" }), `to "+919876543210"`},
		{"letters", mutate(func(r *MakeCallRequest) { r.From = "91807ABC000" }), `from "91807ABC000"`},
		{"too short", mutate(func(r *MakeCallRequest) { r.To = "123456" }), "to"},
		{"too long", mutate(func(r *MakeCallRequest) { r.To = "12345678901234567" }), "to"},
		{"route", mutate(func(r *MakeCallRequest) { r.Route = "mars" }), `route "mars"`},
		{"duration", mutate(func(r *MakeCallRequest) { r.DurationSeconds = -5 }), "duration -5"},
		{"no pcmo", mutate(func(r *MakeCallRequest) { r.PCMO = nil }), "pcmo: no actions"},
		{"bad pcmo", mutate(func(r *MakeCallRequest) { r.PCMO = PCMO{Speak("")} }), "pcmo: action 0 (speak): text is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, nil)
			_, err := f.client(t).MakeCall(context.Background(), tc.req)
			if !errors.Is(err, ErrValidation) || IsAmbiguous(err) {
				t.Fatalf("err = %v, want a validation error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q does not mention %q", err, tc.want)
			}
			if n := f.count(); n != 0 {
				t.Errorf("%d requests sent for an invalid call", n)
			}
		})
	}
}

// errorCase is one way Piopiy can answer badly, and what each operation must
// make of it.
type errorCase struct {
	name   string
	handle func(w http.ResponseWriter, r *http.Request, n int)
	// create is the sentinel MakeCall must return; lookup the one a CDR
	// lookup must return after its retries.
	create, lookup error
	// lookupRequests is how many requests a lookup makes (3 = retried).
	lookupRequests int
	code           int
}

func reply(status int, body string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) { writeJSON(w, status, body) }
}

func hijackAndClose(w http.ResponseWriter, _ *http.Request, _ int) {
	// The body has been read by the fake: the request arrived, the reply is lost.
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

var errorCases = []errorCase{
	{name: "auth code 420 in a 200", handle: reply(200, `{"code":420,"message":"Invalid appid or secret"}`), create: ErrAuthentication, lookup: ErrAuthentication, lookupRequests: 1, code: 420},
	{name: "auth cmi_code 401", handle: reply(200, `{"cmi_code":"401","msg":"authentication failed"}`), create: ErrAuthentication, lookup: ErrAuthentication, lookupRequests: 1, code: 401},
	{name: "http 401", handle: reply(401, `{"code":401,"message":"authentication failed"}`), create: ErrAuthentication, lookup: ErrAuthentication, lookupRequests: 1, code: 401},
	{name: "http 403 no body", handle: reply(403, ``), create: ErrAuthentication, lookup: ErrAuthentication, lookupRequests: 1},
	{name: "validation 422", handle: reply(422, `{"code":422,"message":"PCMO property missing"}`), create: ErrValidation, lookup: ErrValidation, lookupRequests: 1, code: 422},
	{name: "validation 502 in a 200", handle: reply(200, `{"code":502,"message":"property missing"}`), create: ErrValidation, lookup: ErrValidation, lookupRequests: 1, code: 502},
	{name: "validation 502 in a 502", handle: reply(502, `{"code":502,"message":"Property missing: to"}`), create: ErrValidation, lookup: ErrValidation, lookupRequests: 1, code: 502},
	{name: "http 400", handle: reply(400, `not json`), create: ErrValidation, lookup: ErrValidation, lookupRequests: 1},
	{name: "not found", handle: reply(404, `{"code":404,"message":"music file not found"}`), create: ErrNotFound, lookup: ErrNotFound, lookupRequests: 1, code: 404},
	{name: "not found in a 200", handle: reply(200, `{"code":404,"message":"not found"}`), create: ErrNotFound, lookup: ErrNotFound, lookupRequests: 1, code: 404},
	{name: "gateway 502", handle: reply(502, `<html>Bad Gateway</html>`), create: ErrAmbiguous, lookup: ErrServer, lookupRequests: 3},
	{name: "json gateway 502", handle: reply(502, `{"code":502,"message":"Bad Gateway"}`), create: ErrAmbiguous, lookup: ErrServer, lookupRequests: 3, code: 502},
	{name: "server 500", handle: reply(500, `{"code":500,"message":"internal error"}`), create: ErrAmbiguous, lookup: ErrServer, lookupRequests: 3, code: 500},
	{name: "server 503 in a 200 body", handle: reply(200, `{"code":503,"message":"busy"}`), create: ErrAmbiguous, lookup: ErrServer, lookupRequests: 3, code: 503},
	{name: "redirect", handle: func(w http.ResponseWriter, r *http.Request, _ int) {
		http.Redirect(w, r, "/elsewhere", http.StatusSeeOther)
	}, create: ErrAmbiguous, lookup: ErrUnexpected, lookupRequests: 1},
	{name: "unknown 4xx", handle: reply(409, `{"message":"conflict"}`), create: ErrUnexpected, lookup: ErrUnexpected, lookupRequests: 1},
	{name: "reply lost", handle: hijackAndClose, create: ErrAmbiguous, lookup: ErrTransport, lookupRequests: 3},
	{name: "200 not json", handle: reply(200, `<html>ok</html>`), create: ErrAmbiguous, lookup: ErrUnexpected, lookupRequests: 1},
	{name: "200 without request_id", handle: reply(200, `{"code":200,"status":"progress"}`), create: ErrAmbiguous},
	{name: "200 with non-numeric code", handle: reply(200, `{"code":"ok"}`), create: ErrAmbiguous},
}

func TestMakeCallErrorClasses(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.handle)
			resp, err := f.client(t).MakeCall(context.Background(), testCall())
			if err == nil {
				t.Fatalf("MakeCall succeeded: %+v", resp)
			}
			if !errors.Is(err, tc.create) {
				t.Errorf("err = %v, want %v", err, tc.create)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("%T is not *Error", err)
			}
			if tc.code != 0 && pe.Code != tc.code {
				t.Errorf("Code = %d, want %d", pe.Code, tc.code)
			}
			if pe.Temporary() && tc.create == ErrAmbiguous {
				t.Error("an ambiguous create claims to be temporary")
			}
			if n := f.count(); n != 1 {
				t.Errorf("MakeCall sent %d requests, want exactly 1: a create is never retried", n)
			}
			assertNoSecret(t, "error", err)
		})
	}
}

func TestMakeCallRateLimited(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Retry-After", "7")
		writeJSON(w, 429, `{"code":429,"message":"too many requests"}`)
	})
	_, err := f.client(t).MakeCall(context.Background(), testCall())
	var pe *Error
	if !errors.Is(err, ErrRateLimited) || !errors.As(err, &pe) {
		t.Fatalf("err = %v, want ErrRateLimited", err)
	}
	if pe.RetryAfter != 7*time.Second || pe.HTTPStatus != 429 {
		t.Errorf("RetryAfter = %s, HTTPStatus = %d", pe.RetryAfter, pe.HTTPStatus)
	}
	if !strings.Contains(err.Error(), "retry after 7s") {
		t.Errorf("message %q", err)
	}
	if f.count() != 1 {
		t.Errorf("%d requests", f.count())
	}
}

func TestMakeCallTimeoutIsAmbiguous(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, func(_ http.ResponseWriter, r *http.Request, _ int) {
		select { // hold the reply until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := f.client(t).MakeCall(ctx, testCall())
	if !errors.Is(err, ErrAmbiguous) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrAmbiguous wrapping context.DeadlineExceeded", err)
	}
	if f.count() != 1 {
		t.Errorf("%d requests", f.count())
	}
}

func TestMakeCallHTTPClientTimeoutIsAmbiguous(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, func(_ http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	_, err := f.client(t, WithHTTPClient(&http.Client{Timeout: 100 * time.Millisecond})).MakeCall(context.Background(), testCall())
	if !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("err = %v, want ErrAmbiguous", err)
	}
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestMakeCallConnectionRefusedIsNotAmbiguous(t *testing.T) {
	c, err := NewClient(testCreds, WithRESTBaseURL("http://"+closedAddr(t)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.MakeCall(context.Background(), testCall())
	if !errors.Is(err, ErrTransport) || IsAmbiguous(err) {
		t.Fatalf("err = %v, want ErrTransport and not ambiguous", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) || opErr.Op != "dial" {
		t.Errorf("cause %v is not a dial error", err)
	}
}

func TestMakeCallDialFailureWithoutOpErrorIsNotAmbiguous(t *testing.T) {
	// A custom dialer's error carries no net.OpError; the connection trace
	// still proves nothing was sent.
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no route to piopiy")
	}}
	c, err := NewClient(testCreds, WithRESTBaseURL("http://piopiy.invalid"), WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.MakeCall(context.Background(), testCall())
	if !errors.Is(err, ErrTransport) || IsAmbiguous(err) {
		t.Fatalf("err = %v, want ErrTransport", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestMakeCallUnknownTransportFailureIsAmbiguous(t *testing.T) {
	// A RoundTripper that fires no trace hooks proves nothing either way.
	rt := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("connection reset") })
	c, err := NewClient(testCreds, WithHTTPClient(&http.Client{Transport: rt}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.MakeCall(context.Background(), testCall())
	if !IsAmbiguous(err) {
		t.Fatalf("err = %v, want ErrAmbiguous", err)
	}
}

func TestMakeCallCanceledContextSendsNothing(t *testing.T) {
	f := newFake(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.client(t).MakeCall(ctx, testCall())
	if !errors.Is(err, ErrTransport) || !errors.Is(err, context.Canceled) || IsAmbiguous(err) {
		t.Fatalf("err = %v, want ErrTransport wrapping context.Canceled", err)
	}
	if f.count() != 0 {
		t.Errorf("%d requests", f.count())
	}
}

func TestMakeCallReadsRequestIDFromData(t *testing.T) {
	f := newFake(t, reply(200, `{"data":{"status":"progress","request_id":"abc"}}`))
	resp, err := f.client(t).MakeCall(context.Background(), testCall())
	if err != nil || resp.RequestID != "abc" || resp.Status != "progress" {
		t.Fatalf("resp %+v, err %v", resp, err)
	}
}

func TestErrorMessagesScrubAnEchoedSecret(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		writeJSON(w, 200, fmt.Sprintf(`{"code":420,"message":"bad secret %v for app %v"}`, body["secret"], body["appid"]))
	})
	_, err := f.client(t).MakeCall(context.Background(), testCall())
	if !errors.Is(err, ErrAuthentication) {
		t.Fatalf("err = %v", err)
	}
	assertNoSecret(t, "error", err)
	if !strings.Contains(err.Error(), "bad secret REDACTED") {
		t.Errorf("message %q", err)
	}
}

func TestCallAction(t *testing.T) {
	f := newFake(t, nil)
	c := f.client(t)
	if err := c.CallAction(context.Background(), "c-1", ActionHangup); err != nil {
		t.Fatal(err)
	}
	got := f.last()
	if got.Path != "/v1/call/action" {
		t.Errorf("path %s", got.Path)
	}
	assertGolden(t, "request_call_action", got.Body)
	for _, a := range []CallActionKind{ActionHold, ActionUnhold, ActionHoldToggle} {
		if err := c.CallAction(context.Background(), "c-1", a); err != nil {
			t.Errorf("%s: %v", a, err)
		}
		var body map[string]any
		_ = json.Unmarshal(f.last().Body, &body)
		if body["action"] != string(a) {
			t.Errorf("sent action %v, want %s", body["action"], a)
		}
	}
}

func TestCallActionRetriesOnlyIdempotentActions(t *testing.T) {
	for _, tc := range []struct {
		action   CallActionKind
		want     error
		requests int
	}{
		{ActionHangup, nil, 2},
		{ActionHoldToggle, ErrAmbiguous, 1},
	} {
		t.Run(string(tc.action), func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, _ *http.Request, n int) {
				if n == 1 {
					writeJSON(w, 503, `{"code":503}`)
					return
				}
				writeJSON(w, 200, `{"code":200}`)
			})
			err := f.client(t).CallAction(context.Background(), "c-1", tc.action)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if f.count() != tc.requests {
				t.Errorf("%d requests, want %d", f.count(), tc.requests)
			}
		})
	}
}

func TestCallActionValidates(t *testing.T) {
	f := newFake(t, nil)
	c := f.client(t)
	if err := c.CallAction(context.Background(), " ", ActionHangup); !errors.Is(err, ErrValidation) {
		t.Errorf("empty cmiuuid: %v", err)
	}
	if err := c.CallAction(context.Background(), "c-1", "mute"); !errors.Is(err, ErrValidation) {
		t.Errorf("unknown action: %v", err)
	}
	if f.count() != 0 {
		t.Errorf("%d requests", f.count())
	}
}

func TestNewClientOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		ok   bool
	}{
		{"defaults", nil, true},
		{"rest ftp", []Option{WithRESTBaseURL("ftp://x")}, false},
		{"action no host", []Option{WithActionBaseURL("http://")}, false},
		{"rest query", []Option{WithRESTBaseURL("http://x.example.com/?a=b")}, false},
		{"zero attempts", []Option{WithLookupRetries(0, time.Second)}, false},
		{"negative backoff", []Option{WithLookupRetries(2, -time.Second)}, false},
		{"user agent", []Option{WithUserAgent("x/1")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClient(testCreds, tc.opts...)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrValidation) {
				t.Errorf("%v is not a validation error", err)
			}
			if c != nil && !strings.Contains(c.String(), "AppID:2222222") {
				t.Errorf("String() = %s", c)
			}
		})
	}
}

func TestWithHTTPClientIsNotModified(t *testing.T) {
	hc := &http.Client{Timeout: time.Second}
	if _, err := NewClient(testCreds, WithHTTPClient(hc)); err != nil {
		t.Fatal(err)
	}
	if hc.CheckRedirect != nil {
		t.Error("NewClient changed the caller's http.Client")
	}
}
