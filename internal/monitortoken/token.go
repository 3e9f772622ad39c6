// Package monitortoken signs and verifies the short-lived tokens that open a
// stream gateway's monitor socket (listen-in and the assist feed) for one
// user and one Call. The console signs a token only after the cluster has
// authorized that user to read that Call; the gateway holds no Kubernetes
// identity of the user, so the token is its whole authorization.
//
// The console holds a root key and signs each token with the key derived
// from it for the StreamEndpoint serving the Call (DeriveKey); a gateway
// holds only its own endpoint's derived key. A tenant whose bot shares the
// gateway's pod can read that key, so it opens its own endpoint's calls at
// most, never another namespace's. Monitor keys are separate from stream
// token keys (another derivation purpose): a leaked monitor key lets someone
// listen, never stream into a call, and the other way round. A token is
// base64url(payload) "." base64url(HMAC-SHA256(key, payload)) with payload
// "m1|namespace|call|user|expiry-unix"; the "m1" version keeps a stream token
// signed with the same key (a misconfiguration) from ever verifying here.
package monitortoken

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParamToken is the query parameter of the monitor socket's URL.
const ParamToken = "token"

// DefaultTTL is how long a token opens a socket for. It only has to outlive
// the page's connect; an open socket stays open until the call ends.
const DefaultTTL = time.Minute

// MinKeyLen is the shortest key accepted: 256 bits, as for HMAC-SHA256.
const MinKeyLen = 32

// Claims say who may monitor which Call until when.
type Claims struct {
	Namespace string
	Call      string
	// User is the Kubernetes user name the console authenticated; it is
	// logged by the gateway so a listener can be traced to a person.
	User    string
	Expires time.Time
}

var (
	// ErrMalformed is a token that is not a monitor token.
	ErrMalformed = errors.New("malformed monitor token")
	// ErrBadSignature is a token signed with another key or altered.
	ErrBadSignature = errors.New("monitor token signature does not match")
	// ErrExpired is a token past its expiry.
	ErrExpired = errors.New("monitor token expired")
)

const version = "m1"

// deriveInfo prefixes the HKDF info of an endpoint's monitor key. It differs
// from the stream token's prefix ("callfleet stream token v1"), so the two
// keys derived for one endpoint from one root never equal each other.
const deriveInfo = "callfleet monitor token v1\x00"

// DeriveKey returns the key that signs and verifies the monitor tokens of
// the Calls one StreamEndpoint serves: HKDF-SHA256 of the root key, bound to
// the namespace and the endpoint. The manager puts it in the endpoint's key
// Secret for its gateway; the console derives it again to sign.
func DeriveKey(root []byte, namespace, endpoint string) ([]byte, error) {
	if len(root) < MinKeyLen {
		return nil, fmt.Errorf("monitor token root key is %d bytes, want at least %d", len(root), MinKeyLen)
	}
	if namespace == "" || endpoint == "" {
		return nil, errors.New("monitor token key: namespace and endpoint must be set")
	}
	// NUL cannot occur in Kubernetes names: the pair is unambiguous.
	info := deriveInfo + namespace + "\x00" + endpoint
	return hkdf.Key(sha256.New, root, nil, info, MinKeyLen)
}

var enc = base64.RawURLEncoding

// Sign returns the token for c.
func Sign(key []byte, c Claims) (string, error) {
	if len(key) < MinKeyLen {
		return "", fmt.Errorf("monitor token key is %d bytes, want at least %d", len(key), MinKeyLen)
	}
	for _, f := range []string{c.Namespace, c.Call, c.User} {
		if f == "" || strings.Contains(f, "|") {
			return "", fmt.Errorf("%w: namespace, call and user must be set and cannot contain '|'", ErrMalformed)
		}
	}
	payload := strings.Join([]string{version, c.Namespace, c.Call, c.User, strconv.FormatInt(c.Expires.Unix(), 10)}, "|")
	return enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(mac(key, []byte(payload))), nil
}

// Verify checks the token's signature and expiry at now and returns its
// claims.
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
	if len(key) < MinKeyLen || !hmac.Equal(sig, mac(key, payload)) {
		return Claims{}, ErrBadSignature
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 5 || parts[0] != version {
		return Claims{}, ErrMalformed
	}
	exp, err := strconv.ParseInt(parts[4], 10, 64)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	c := Claims{Namespace: parts[1], Call: parts[2], User: parts[3], Expires: time.Unix(exp, 0)}
	if !now.Before(c.Expires) {
		return c, ErrExpired
	}
	return c, nil
}

// VerifyAny checks token against each key in turn, as Verify does for one:
// a gateway accepts its current key and, during a rotation, the previous
// one. A token signed with none of them is ErrBadSignature.
func VerifyAny(keys [][]byte, token string, now time.Time) (Claims, error) {
	err := ErrBadSignature
	for _, k := range keys {
		var c Claims
		if c, err = Verify(k, token, now); !errors.Is(err, ErrBadSignature) {
			return c, err
		}
	}
	return Claims{}, err
}

func mac(key, payload []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(payload)
	return h.Sum(nil)
}
