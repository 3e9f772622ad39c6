// Package streamtoken signs and verifies the token carried in a stream's
// ws_url. Piopiy dials the URL with no call metadata of its own, so the URL is
// the only place to say which Call (and attempt) a socket belongs to; the HMAC
// keeps anyone who learns the gateway's address from streaming into a call.
//
// A token is base64url(payload) "." base64url(HMAC-SHA256(key, payload)),
// where payload is "v1|namespace|call|attempt|expiry-unix".
package streamtoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Claims identify the Call attempt a stream belongs to.
type Claims struct {
	Namespace string
	Call      string
	Attempt   int32
	Expires   time.Time
}

var (
	// ErrMalformed is a token that is not one of ours.
	ErrMalformed = errors.New("malformed stream token")
	// ErrBadSignature is a token signed with another key or altered.
	ErrBadSignature = errors.New("stream token signature does not match")
	// ErrExpired is a token past its expiry.
	ErrExpired = errors.New("stream token expired")
)

const version = "v1"

// MinKeyLen is the shortest key accepted: 256 bits, as for HMAC-SHA256.
const MinKeyLen = 32

var enc = base64.RawURLEncoding

// Sign returns the token for claims.
func Sign(key []byte, c Claims) (string, error) {
	if len(key) < MinKeyLen {
		return "", fmt.Errorf("stream token key is %d bytes, want at least %d", len(key), MinKeyLen)
	}
	if strings.Contains(c.Namespace, "|") || strings.Contains(c.Call, "|") {
		return "", fmt.Errorf("%w: names cannot contain '|'", ErrMalformed)
	}
	payload := strings.Join([]string{version, c.Namespace, c.Call, strconv.Itoa(int(c.Attempt)), strconv.FormatInt(c.Expires.Unix(), 10)}, "|")
	return enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(mac(key, []byte(payload))), nil
}

// Verify checks the token's signature and expiry at now and returns its claims.
func Verify(key []byte, token string, now time.Time) (Claims, error) {
	p, s, ok := strings.Cut(token, ".")
	if !ok {
		return Claims{}, ErrMalformed
	}
	payload, err := enc.DecodeString(p)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	sig, err := enc.DecodeString(s)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	if !hmac.Equal(sig, mac(key, payload)) {
		return Claims{}, ErrBadSignature
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 5 || parts[0] != version {
		return Claims{}, ErrMalformed
	}
	attempt, err := strconv.ParseInt(parts[3], 10, 32)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	exp, err := strconv.ParseInt(parts[4], 10, 64)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	c := Claims{Namespace: parts[1], Call: parts[2], Attempt: int32(attempt), Expires: time.Unix(exp, 0)}
	if !now.Before(c.Expires) {
		return c, ErrExpired
	}
	return c, nil
}

func mac(key, payload []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(payload)
	return h.Sum(nil)
}

// Query parameter names of a stream URL. The call and attempt are repeated in
// clear so logs and load balancers can route without verifying.
const (
	ParamToken   = "token"
	ParamCall    = "call"
	ParamAttempt = "attempt"
)
