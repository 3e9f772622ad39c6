package streamtoken

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var key = []byte("0123456789abcdef0123456789abcdef")

func TestSignVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	good := Claims{Namespace: "sales", Call: "asha", Attempt: 2, Expires: now.Add(time.Minute)}
	tok, err := Sign(key, good)
	if err != nil {
		t.Fatal(err)
	}
	other := append([]byte{}, key...)
	other[0] ^= 1
	tampered := strings.Replace(tok, tok[:4], "AAAA", 1)

	cases := []struct {
		name  string
		key   []byte
		token string
		now   time.Time
		want  error
	}{
		{"valid", key, tok, now, nil},
		{"expired", key, tok, now.Add(time.Minute), ErrExpired},
		{"other key", other, tok, now, ErrBadSignature},
		{"tampered payload", key, tampered, now, ErrBadSignature},
		{"no dot", key, "abc", now, ErrMalformed},
		{"bad base64", key, "!!.!!", now, ErrMalformed},
		{"empty", key, "", now, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Verify(tc.key, tc.token, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify error = %v, want %v", err, tc.want)
			}
			if tc.want == nil && (c.Namespace != good.Namespace || c.Call != good.Call || c.Attempt != good.Attempt || !c.Expires.Equal(good.Expires)) {
				t.Fatalf("claims = %+v, want %+v", c, good)
			}
		})
	}
}

func TestSignRejectsShortKeyAndSeparator(t *testing.T) {
	if _, err := Sign([]byte("short"), Claims{}); err == nil {
		t.Fatal("short key accepted")
	}
	if _, err := Sign(key, Claims{Namespace: "a|b"}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("separator in name: err = %v", err)
	}
}
