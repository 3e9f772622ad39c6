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

// TestDeriveKey: a derived key is bound to its namespace and endpoint (a
// token signed for namespace A's endpoint does not verify with B's key, nor
// with the root), never equals the stream token key derived for the same
// endpoint from the same root, and is stable.
func TestDeriveKey(t *testing.T) {
	a, err := DeriveKey(key, "tenant-a", "bots")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := DeriveKey(key, "tenant-a", "bots")
	if !bytes.Equal(a, again) || len(a) != MinKeyLen {
		t.Fatalf("derived key %x, again %x", a, again)
	}
	// The NUL separator keeps "tenant-a"+"bots" apart from "tenant-ab"+"ots".
	for _, o := range [][2]string{{"tenant-b", "bots"}, {"tenant-a", "other"}, {"tenant-ab", "ots"}} {
		k, err := DeriveKey(key, o[0], o[1])
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(k, a) {
			t.Errorf("key of %s/%s equals tenant-a/bots's", o[0], o[1])
		}
	}
	stream, err := streamtoken.DeriveKey(key, "tenant-a", "bots")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(stream, a) {
		t.Error("the monitor key equals the stream token key of the same endpoint")
	}
	if _, err := DeriveKey(key[:8], "tenant-a", "bots"); err == nil {
		t.Error("short root accepted")
	}
	if _, err := DeriveKey(key, "tenant-a", ""); err == nil {
		t.Error("empty endpoint accepted")
	}

	b, _ := DeriveKey(key, "tenant-b", "bots")
	tok, err := Sign(a, Claims{Namespace: "tenant-a", Call: "alice", User: "u", Expires: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string][]byte{"tenant-b's key": b, "the root": key} {
		if _, err := Verify(k, tok, now); !errors.Is(err, ErrBadSignature) {
			t.Errorf("tenant-a's token with %s: %v, want ErrBadSignature", name, err)
		}
	}
	if _, err := Verify(a, tok, now); err != nil {
		t.Errorf("tenant-a's token with its own key: %v", err)
	}
}

// TestVerifyAny: during a rotation either key verifies; a token signed with
// neither is a bad signature, an expired one stays expired.
func TestVerifyAny(t *testing.T) {
	third := bytes.Repeat([]byte("t"), 32)
	c := Claims{Namespace: "sales", Call: "alice", User: "u", Expires: now.Add(time.Minute)}
	for name, k := range map[string][]byte{"current": key, "previous": other} {
		tok, _ := Sign(k, c)
		if got, err := VerifyAny([][]byte{key, other}, tok, now); err != nil || got != c {
			t.Errorf("%s key: %+v, %v", name, got, err)
		}
	}
	tok, _ := Sign(third, c)
	if _, err := VerifyAny([][]byte{key, other}, tok, now); !errors.Is(err, ErrBadSignature) {
		t.Errorf("third key: %v, want ErrBadSignature", err)
	}
	if _, err := VerifyAny(nil, tok, now); !errors.Is(err, ErrBadSignature) {
		t.Errorf("no keys: %v, want ErrBadSignature", err)
	}
	c.Expires = now
	tok, _ = Sign(other, c)
	if _, err := VerifyAny([][]byte{key, other}, tok, now); !errors.Is(err, ErrExpired) {
		t.Errorf("expired with the previous key: %v, want ErrExpired", err)
	}
}
