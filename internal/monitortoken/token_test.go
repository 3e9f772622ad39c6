package monitortoken

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/callfleet/callfleet/internal/streamtoken"
)

var (
	key   = bytes.Repeat([]byte("k"), 32)
	other = bytes.Repeat([]byte("o"), 32)
	now   = time.Unix(1_800_000_000, 0)
)

func TestRoundTrip(t *testing.T) {
	c := Claims{Namespace: "sales", Call: "alice", User: "system:serviceaccount:sales:sup", Expires: now.Add(DefaultTTL)}
	tok, err := Sign(key, c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(key, tok, now)
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Fatalf("claims = %+v, want %+v", got, c)
	}
}

func TestVerifyRefuses(t *testing.T) {
	good, _ := Sign(key, Claims{Namespace: "sales", Call: "alice", User: "u", Expires: now.Add(time.Minute)})
	expired, _ := Sign(key, Claims{Namespace: "sales", Call: "alice", User: "u", Expires: now})
	p, s, _ := strings.Cut(good, ".")
	forged, _ := Sign(other, Claims{Namespace: "sales", Call: "bob", User: "u", Expires: now.Add(time.Minute)})
	fp, _, _ := strings.Cut(forged, ".")
	stream, _ := streamtoken.Sign(key, streamtoken.Claims{Namespace: "sales", Call: "alice", Attempt: 1, Expires: now.Add(time.Minute)})
	for _, tc := range []struct {
		name, tok string
		key       []byte
		want      error
	}{
		{"empty", "", key, ErrMalformed},
		{"no dot", p, key, ErrMalformed},
		{"other key", good, other, ErrBadSignature},
		{"payload swapped", fp + "." + s, key, ErrBadSignature},
		{"expired", expired, key, ErrExpired},
		{"stream token with the same key", stream, key, ErrMalformed},
		{"short key", good, key[:8], ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Verify(tc.key, tc.tok, now); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSignRefuses(t *testing.T) {
	for _, c := range []Claims{
		{Namespace: "a|b", Call: "c", User: "u"},
		{Namespace: "a", Call: "c", User: ""},
		{Namespace: "a", Call: "", User: "u"},
	} {
		if _, err := Sign(key, c); !errors.Is(err, ErrMalformed) {
			t.Errorf("Sign(%+v) = %v, want ErrMalformed", c, err)
		}
	}
	if _, err := Sign(key[:8], Claims{Namespace: "a", Call: "c", User: "u"}); err == nil {
		t.Error("Sign accepted a short key")
	}
}
