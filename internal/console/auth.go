package console

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// User is a person the cluster authenticated.
type User struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string]authzv1.ExtraValue
	// token is the bearer token the user signed in with; writes are made
	// with it. Never rendered, never logged.
	token string
	// session identifies the sign-in for the CSRF token ("" for a bearer
	// header, which a browser never adds on its own).
	session string
	// expires is when the sign-in ends (the cookie's expiry).
	expires time.Time
}

// Errors of authentication and authorization, mapped to 401 and 403.
var (
	ErrUnauthenticated = errors.New("not signed in")
	ErrForbidden       = errors.New("forbidden")
)

// Reviewer checks tokens and permissions with the apiserver: TokenReview and
// SubjectAccessReview, the only two things the console's own identity does
// on behalf of users.
type Reviewer struct {
	Client kubernetes.Interface
	// Audiences a token must be for (empty: the apiserver's).
	Audiences []string
	// CacheTTL keeps a token's review this long (0: 10 s), so a page and its
	// event stream do not each cost a review.
	CacheTTL time.Duration
	Now      func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]cachedReview
}

type cachedReview struct {
	user User
	at   time.Time
}

// Authenticate returns the user a bearer token belongs to.
func (r *Reviewer) Authenticate(ctx context.Context, token string) (User, error) {
	if token == "" {
		return User{}, ErrUnauthenticated
	}
	now := r.now()
	h := sha256.Sum256([]byte(token))
	ttl := r.CacheTTL
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	r.mu.Lock()
	if c, ok := r.cache[h]; ok && now.Sub(c.at) < ttl {
		r.mu.Unlock()
		return c.user, nil
	}
	r.mu.Unlock()

	tr, err := r.Client.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: r.Audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		return User{}, fmt.Errorf("token review: %w", err)
	}
	if !tr.Status.Authenticated {
		return User{}, ErrUnauthenticated
	}
	ui := tr.Status.User
	u := User{Name: ui.Username, UID: ui.UID, Groups: ui.Groups, token: token}
	if len(ui.Extra) > 0 {
		u.Extra = make(map[string]authzv1.ExtraValue, len(ui.Extra))
		for k, v := range ui.Extra {
			u.Extra[k] = authzv1.ExtraValue(v)
		}
	}
	r.mu.Lock()
	if r.cache == nil {
		r.cache = map[[32]byte]cachedReview{}
	}
	for k, c := range r.cache { // small: one entry per signed-in user
		if now.Sub(c.at) >= ttl {
			delete(r.cache, k)
		}
	}
	r.cache[h] = cachedReview{user: u, at: now}
	r.mu.Unlock()
	return u, nil
}

// Access is one question for SubjectAccessReview.
type Access struct {
	Verb, Resource, Subresource, Namespace, Name string
}

// Authorize returns nil when the cluster allows u the access, else
// ErrForbidden (wrapped with the reason).
func (r *Reviewer) Authorize(ctx context.Context, u User, a Access) error {
	sar, err := r.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{
		Spec: authzv1.SubjectAccessReviewSpec{
			User: u.Name, UID: u.UID, Groups: u.Groups, Extra: u.Extra,
			ResourceAttributes: &authzv1.ResourceAttributes{
				Group: voicev1alpha1.GroupVersion.Group, Version: voicev1alpha1.GroupVersion.Version,
				Resource: a.Resource, Subresource: a.Subresource, Verb: a.Verb, Namespace: a.Namespace, Name: a.Name,
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("subject access review: %w", err)
	}
	if !sar.Status.Allowed {
		what := a.Resource
		if a.Subresource != "" {
			what += "/" + a.Subresource
		}
		return fmt.Errorf("%w: %s may not %s %s in namespace %s", ErrForbidden, u.Name, a.Verb, what, a.Namespace)
	}
	return nil
}

func (r *Reviewer) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Sessions seal the signed-in user's token into a cookie with AES-GCM: the
// browser holds only ciphertext it cannot read (HttpOnly) or use elsewhere,
// and any console replica with the key can open it, so no session store.
type sessions struct {
	aead   cipher.AEAD
	csrf   []byte // HMAC key for CSRF tokens
	ttl    time.Duration
	secure bool // the cookie needs TLS (off only on plain-HTTP loopback)
}

const cookieName = "callfleet_console"

type sealed struct {
	Token   string `json:"t"`
	Session string `json:"s"`
	Expires int64  `json:"e"`
}

func newSessions(key []byte, ttl time.Duration, secure bool) (*sessions, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("console: session key is %d bytes, want at least 32", len(key))
	}
	ek := sha256.Sum256(append([]byte("callfleet-console-cookie|"), key...))
	ck := sha256.Sum256(append([]byte("callfleet-console-csrf|"), key...))
	block, err := aes.NewCipher(ek[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sessions{aead: aead, csrf: ck[:], ttl: ttl, secure: secure}, nil
}

var b64 = base64.RawURLEncoding

// seal returns the cookie for a new sign-in with token.
func (s *sessions) seal(token string, now time.Time) (*http.Cookie, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	exp := now.Add(s.ttl)
	plain, err := json.Marshal(sealed{Token: token, Session: b64.EncodeToString(id), Expires: exp.Unix()})
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	ct := s.aead.Seal(nonce, nonce, plain, []byte(cookieName))
	return &http.Cookie{
		Name: cookieName, Value: b64.EncodeToString(ct), Path: "/", Expires: exp,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode,
	}, nil
}

// open returns the token, session id and expiry in a request's cookie.
func (s *sessions) open(r *http.Request, now time.Time) (sealed, error) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return sealed{}, ErrUnauthenticated
	}
	ct, err := b64.DecodeString(c.Value)
	if err != nil || len(ct) < s.aead.NonceSize() {
		return sealed{}, ErrUnauthenticated
	}
	plain, err := s.aead.Open(nil, ct[:s.aead.NonceSize()], ct[s.aead.NonceSize():], []byte(cookieName))
	if err != nil {
		return sealed{}, ErrUnauthenticated
	}
	var v sealed
	if json.Unmarshal(plain, &v) != nil || v.Token == "" {
		return sealed{}, ErrUnauthenticated
	}
	if !now.Before(time.Unix(v.Expires, 0)) {
		return sealed{}, fmt.Errorf("%w: the sign-in expired", ErrUnauthenticated)
	}
	return v, nil
}

func (s *sessions) clear() *http.Cookie {
	return &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode}
}

// csrfToken is the token a page of this session embeds in its forms.
func (s *sessions) csrfToken(session string) string {
	m := hmac.New(sha256.New, s.csrf)
	m.Write([]byte(session))
	return b64.EncodeToString(m.Sum(nil))
}

// checkCSRF guards a state-changing request. Requests authenticated by an
// Authorization header carry no ambient credential and need no token.
func (s *sessions) checkCSRF(r *http.Request, u User) error {
	if u.session == "" {
		return nil
	}
	// Browsers say where a request comes from; refuse any other site.
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return fmt.Errorf("%w: cross-site request (%s)", ErrForbidden, site)
	}
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r) {
		return fmt.Errorf("%w: request from origin %s", ErrForbidden, o)
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	if !hmac.Equal([]byte(got), []byte(s.csrfToken(u.session))) {
		return fmt.Errorf("%w: missing or wrong CSRF token", ErrForbidden)
	}
	return nil
}

func sameOrigin(origin string, r *http.Request) bool {
	o := strings.TrimPrefix(strings.TrimPrefix(origin, "https://"), "http://")
	return o == r.Host
}
