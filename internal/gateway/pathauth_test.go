package gateway

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/callfleet/callfleet/internal/streamtoken"
)

// The gateway accepts the token in the path, the query or both (agreeing),
// so a platform that drops the ws_url's query still reaches the bot.
func TestVerifyStreamURL(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	g := &Gateway{opts: Options{Namespace: "voice", TokenKey: key, Now: func() time.Time { return now }}}
	claims := streamtoken.Claims{Namespace: "voice", Call: "c1", Attempt: 2, Expires: now.Add(time.Minute)}
	full, _, err := streamtoken.URL("wss://gw.example/stream", key, claims)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(full)
	pathOnly := *u
	pathOnly.RawQuery = ""
	queryOnly := *u
	queryOnly.Path = "/stream"
	other, _, _ := streamtoken.URL("wss://gw.example/stream", key, streamtoken.Claims{Namespace: "voice", Call: "c9", Attempt: 1, Expires: now.Add(time.Minute)})
	ou, _ := url.Parse(other)
	crossed := *u
	crossed.Path = ou.Path // c9's token in the path, c1's in the query
	for _, tc := range []struct {
		name   string
		u      *url.URL
		status int
		reason string
	}{
		{"both forms", u, 0, ""},
		{"query stripped", &pathOnly, 0, ""},
		{"query only (older ws_urls)", &queryOnly, 0, ""},
		{"path and query disagree", &crossed, http.StatusForbidden, rejectMismatch},
		{"neither", &url.URL{Path: "/stream"}, http.StatusUnauthorized, rejectMissing},
		{"path segment without a token", &url.URL{Path: "/stream/s/"}, http.StatusUnauthorized, rejectMissing},
		{"not our token in the path", &url.URL{Path: "/stream/s/abc"}, http.StatusUnauthorized, rejectMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, rej := g.verifyStreamURL(tc.u)
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
