package gateway

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/streamtoken"
)

func TestVerifyToken(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	g := &Gateway{opts: Options{Namespace: "voice", TokenKey: key, Now: func() time.Time { return now }}}
	sign := func(k []byte, ns, call string, attempt int32, exp time.Time) string {
		tok, err := streamtoken.Sign(k, streamtoken.Claims{Namespace: ns, Call: call, Attempt: attempt, Expires: exp})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	later := now.Add(time.Minute)
	good := sign(key, "voice", "c1", 2, later)
	for _, tc := range []struct {
		name   string
		q      url.Values
		status int
		reason string
	}{
		{"valid", url.Values{"token": {good}, "call": {"voice/c1"}, "attempt": {"2"}}, 0, ""},
		{"valid without the clear copies", url.Values{"token": {good}}, 0, ""},
		{"missing", url.Values{"call": {"voice/c1"}}, http.StatusUnauthorized, rejectMissing},
		{"malformed", url.Values{"token": {"abc"}}, http.StatusUnauthorized, rejectMalformed},
		{"other key", url.Values{"token": {sign([]byte("fedcba9876543210fedcba9876543210"), "voice", "c1", 2, later)}}, http.StatusUnauthorized, rejectBadSignature},
		{"expired", url.Values{"token": {sign(key, "voice", "c1", 2, now)}}, http.StatusForbidden, rejectExpired},
		{"call differs", url.Values{"token": {good}, "call": {"voice/c2"}}, http.StatusForbidden, rejectMismatch},
		{"attempt differs", url.Values{"token": {good}, "attempt": {"1"}}, http.StatusForbidden, rejectMismatch},
		{"other namespace", url.Values{"token": {sign(key, "other", "c1", 2, later)}}, http.StatusForbidden, rejectNamespace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, rej := g.verifyToken(tc.q)
			switch {
			case tc.reason == "" && rej != nil:
				t.Fatalf("refused: %+v", rej)
			case tc.reason == "" && (c.Call != "c1" || c.Attempt != 2):
				t.Fatalf("claims %+v", c)
			case tc.reason != "" && (rej == nil || rej.status != tc.status || rej.reason != tc.reason):
				t.Fatalf("got %+v, want %d %s", rej, tc.status, tc.reason)
			}
		})
	}
}

func TestServes(t *testing.T) {
	ref := func(name string) *voicev1alpha1.Call {
		c := &voicev1alpha1.Call{}
		c.Spec.StreamEndpointRef = &voicev1alpha1.LocalRef{Name: name}
		return c
	}
	byURL := func(u string) *voicev1alpha1.Call {
		c := &voicev1alpha1.Call{}
		c.Spec.Stream.URL = u
		return c
	}
	for _, tc := range []struct {
		name      string
		endpoint  string
		publicURL string
		call      *voicev1alpha1.Call
		want      bool
	}{
		{"our endpoint", "bots", "", ref("bots"), true},
		{"another endpoint", "bots", "", ref("others"), false},
		{"any endpoint", "", "", ref("others"), true},
		{"url under ours", "bots", "wss://gw.example.com/voice", byURL("wss://gw.example.com/voice/x?y=1"), true},
		{"url exactly ours", "bots", "wss://gw.example.com/voice", byURL("wss://GW.example.com/voice"), true},
		{"url prefix but not a path below", "bots", "wss://gw.example.com/voice", byURL("wss://gw.example.com/voicemail"), false},
		{"url elsewhere", "bots", "wss://gw.example.com/", byURL("wss://other.example.com/"), false},
		{"url without a public url", "bots", "", byURL("wss://gw.example.com/"), false},
		{"neither", "bots", "", &voicev1alpha1.Call{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Gateway{opts: Options{Endpoint: tc.endpoint, PublicURL: tc.publicURL}}
			if got := g.serves(tc.call); got != tc.want {
				t.Errorf("serves = %v, want %v", got, tc.want)
			}
		})
	}
}
