package piopiy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestErrorMatchesOnlyItsSentinel(t *testing.T) {
	sentinels := []error{ErrUnexpected, ErrAuthentication, ErrValidation, ErrNotFound, ErrRateLimited, ErrServer, ErrAmbiguous, ErrTransport}
	for i, s := range sentinels {
		err := fmt.Errorf("reconcile: %w", &Error{Kind: ErrorKind(i), Op: "op"})
		for j, other := range sentinels {
			if got := errors.Is(err, other); got != (i == j) {
				t.Errorf("kind %s: errors.Is(%v) = %v", ErrorKind(i), other, got)
			}
		}
		if ErrorKind(i).Sentinel() != s {
			t.Errorf("Sentinel(%d) = %v", i, ErrorKind(i).Sentinel())
		}
	}
	odd := ErrorKind(200)
	if odd.String() != "kind(200)" || odd.Sentinel() != nil || errors.Is(&Error{Kind: odd}, nil) {
		t.Errorf("unknown kind: %s %v", odd, odd.Sentinel())
	}
}

func TestErrorString(t *testing.T) {
	for _, tc := range []struct {
		err  *Error
		want string
	}{
		{&Error{Kind: KindAuthentication, Op: "make call", HTTPStatus: 200, Code: 420, Message: "bad secret"},
			"piopiy: make call: authentication failed: bad secret (http 200, code 420)"},
		{&Error{Kind: KindServer, HTTPStatus: 503}, "piopiy: server error (http 503)"},
		{&Error{Kind: KindValidation, Code: 422}, "piopiy: invalid request (code 422)"},
		{&Error{Kind: KindRateLimited, Op: "x", RetryAfter: time.Second}, "piopiy: x: rate limited (retry after 1s)"},
		{&Error{Kind: KindTransport, Op: "x", Err: io.EOF}, "piopiy: x: transport error: EOF"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
	if e := (&Error{Err: io.EOF}); !errors.Is(e, io.EOF) {
		t.Error("Unwrap does not reach the cause")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		" 10 ":                          10 * time.Second,
		"0":                             0,
		"-4":                            0,
		"999999999":                     24 * time.Hour,
		"soon":                          0,
		"Fri, 02 Jan 2026 03:04:35 GMT": 30 * time.Second,
		"Fri, 02 Jan 2026 03:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestReplyBodyCutShort(t *testing.T) {
	short := func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Length", "500")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, `{"request_id":`)
	}
	f := newFake(t, short)
	if _, err := f.client(t).MakeCall(context.Background(), testCall()); !IsAmbiguous(err) || f.count() != 1 {
		t.Errorf("create: err = %v after %d requests, want ambiguous after 1", err, f.count())
	}
	f = newFake(t, short)
	if _, err := f.client(t).CDRByCMIUUID(context.Background(), "c-1"); !errors.Is(err, ErrTransport) || f.count() != 3 {
		t.Errorf("lookup: err = %v after %d requests, want transport after 3", err, f.count())
	}
	huge := func(w http.ResponseWriter, _ *http.Request, _ int) {
		writeJSON(w, 200, `{"request_id":"`+strings.Repeat("x", maxResponseBytes)+`"}`)
	}
	f = newFake(t, huge)
	if _, err := f.client(t).MakeCall(context.Background(), testCall()); !IsAmbiguous(err) || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("oversized reply: %v", err)
	}
	// A failure status is believed even when its body is lost.
	f = newFake(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Length", "500")
		w.WriteHeader(401)
	})
	if _, err := f.client(t).MakeCall(context.Background(), testCall()); !errors.Is(err, ErrAuthentication) {
		t.Errorf("401 with lost body: %v", err)
	}
}

func TestErrorTemporary(t *testing.T) {
	for k, want := range map[ErrorKind]bool{
		KindRateLimited: true, KindServer: true, KindTransport: true,
		KindAmbiguous: false, KindValidation: false, KindAuthentication: false, KindNotFound: false, KindUnexpected: false,
	} {
		if got := (&Error{Kind: k}).Temporary(); got != want {
			t.Errorf("%s: Temporary() = %v", k, got)
		}
	}
}
