package streamtoken

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestFromPath(t *testing.T) {
	for _, tc := range []struct {
		path, want string
		ok         bool
	}{
		{"/s/abc.def", "abc.def", true},
		{"/stream/s/abc.def", "abc.def", true},
		{"/stream", "", false},
		{"/s/", "", false},
		{"/x/abc", "", false},
		{"/s", "", false},
		{"", "", false},
		{"/s/abc/extra", "", false},
	} {
		got, ok := FromPath(tc.path)
		if got != tc.want || ok != tc.ok {
			t.Errorf("FromPath(%q) = %q %v, want %q %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
}

func TestURLCarriesTheTokenInPathAndQuery(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := Claims{Namespace: "sales", Call: "asha", Attempt: 2, Expires: now.Add(time.Minute)}
	for _, base := range []string{"wss://gw.example", "wss://gw.example/stream", "wss://gw.example/stream/", "wss://gw.example/stream?region=in"} {
		full, shown, err := URL(base, key, c)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(full)
		if err != nil {
			t.Fatal(err)
		}
		pathTok, ok := FromPath(u.Path)
		if !ok || pathTok != u.Query().Get(ParamToken) {
			t.Fatalf("%s: path token %q, query token %q", full, pathTok, u.Query().Get(ParamToken))
		}
		// Stripped of its query the URL still authenticates the stream.
		got, err := Verify(key, pathTok, now)
		if err != nil || got.Namespace != "sales" || got.Call != "asha" || got.Attempt != 2 {
			t.Fatalf("%s: verify path token: %+v %v", full, got, err)
		}
		if strings.Contains(shown, pathTok) || strings.Contains(shown, "/"+PathSegment+"/") {
			t.Fatalf("shown URL %q carries the token", shown)
		}
		if q := u.Query(); q.Get(ParamCall) != "sales/asha" || q.Get(ParamAttempt) != "2" {
			t.Fatalf("%s: query %v", full, q)
		}
		if strings.HasSuffix(base, "?region=in") && u.Query().Get("region") != "in" {
			t.Fatalf("%s: the base query was lost", full)
		}
	}
}
