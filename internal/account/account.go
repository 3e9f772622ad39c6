// Package account resolves the Piopiy credentials a Call dials with: the
// Secret its accountRef names, else the manager's default account. A Secret
// holds one generation's credentials: v2 `appId` and `secret`, or a v3
// `token` (with an optional `appId` for v3 pipeline calls).
package account

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// Keys of an account Secret.
const (
	KeyAppID  = "appId"
	KeySecret = "secret"
	KeyFrom   = "from"
	// KeyToken holds a v3 Bearer token; its presence makes the account v3.
	KeyToken = "token"
	// KeyWebhookToken is the secret path token of the account's own webhook
	// URL (/piopiy/accounts/<namespace>/<name>/<token>); events on that URL
	// can only touch Calls dialed with this account.
	KeyWebhookToken = "webhookToken"
	// KeyWebhookTokenPrevious is still accepted while a rotation is under
	// way: set the new token in KeyWebhookToken and the old one here, move
	// the Piopiy dashboard to the new URL, then delete this key.
	KeyWebhookTokenPrevious = "webhookTokenPrevious"
)

// Generation is the Piopiy API generation an account speaks.
type Generation string

// The generations.
const (
	GenerationV2 Generation = "v2"
	GenerationV3 Generation = "v3"
)

// Errors are typed so the Call controller can say precisely what to fix.
var (
	// ErrNotFound: the Secret does not exist (or no default is configured).
	ErrNotFound = errors.New("account secret not found")
	// ErrInvalid: the Secret exists but its keys are missing or malformed.
	ErrInvalid = errors.New("account secret invalid")
	// ErrBusy: the resolver's read limit is spent; nothing was read.
	ErrBusy = errors.New("account secret reads limited; retry later")
)

// Account is what a Call dials with.
type Account struct {
	// Generation says which of Credentials and V3 is set.
	Generation Generation
	// Credentials are the v2 app id and secret.
	Credentials piopiy.Credentials
	// V3 holds the v3 token and app id.
	V3 V3Credentials
	// From is the Secret's default caller id ("" when absent).
	From string
	// Source names the Secret, for messages (never its content).
	Source string
	// Key is the Secret's namespace and name.
	Key types.NamespacedName
	// WebhookTokens are the tokens the account's webhook URL accepts: the
	// current one first, then the previous one during a rotation. Empty
	// means the account has no URL of its own.
	WebhookTokens []string
}

// Resolver reads account Secrets. Reader should be uncached (the manager's
// APIReader) so the manager needs no cluster-wide Secret watch.
type Resolver struct {
	Reader client.Reader
	// Default is the manager's default account; empty Name means none.
	Default types.NamespacedName
	// TTL keeps a resolved account this long, so a burst of dials costs one
	// Secret read, and a rotated Secret is in use within TTL (0: 10s).
	TTL time.Duration
	// Now is the clock (tests).
	Now func() time.Time
	// ReadLimit, when set, bounds the Secret reads a cache miss may cause
	// (the webhook receiver's resolver: a stranger choosing paths must not
	// choose how often the apiserver is read). A miss over the limit fails
	// with ErrBusy.
	ReadLimit *rate.Limiter

	mu    sync.Mutex
	cache map[types.NamespacedName]cached
}

// V3Credentials are a v3 account's. The token is only ever put in an
// Authorization header; the type prints without it.
type V3Credentials struct {
	Token string
	// AppID is the app a v3 pipeline call names ("" when the Secret has none).
	AppID string
}

// String hides the token.
func (c V3Credentials) String() string { return "v3{appId:" + c.AppID + " token:REDACTED}" }

// Format hides the token from every fmt verb.
func (c V3Credentials) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

type cached struct {
	acct *Account
	// err is a remembered ErrNotFound or ErrInvalid, so a Secret that does
	// not exist costs one read per TTL, not one per request.
	err     error
	expires time.Time
}

// minWebhookToken is the shortest webhook token accepted: a URL token is
// only as good as its entropy (openssl rand -hex 16 gives 32 characters).
const minWebhookToken = 24

// KeyFor returns the account Secret a Call dials with ("" Name: none).
func (r *Resolver) KeyFor(call *voicev1alpha1.Call) types.NamespacedName {
	if call.Spec.AccountRef != nil {
		return types.NamespacedName{Namespace: call.Namespace, Name: call.Spec.AccountRef.Name}
	}
	return r.Default
}

// Resolve returns the account of call.
func (r *Resolver) Resolve(ctx context.Context, call *voicev1alpha1.Call) (*Account, error) {
	key := r.KeyFor(call)
	if key.Name == "" {
		return nil, fmt.Errorf("%w: the Call has no accountRef and the manager has no default account (--default-account)", ErrNotFound)
	}
	return r.Lookup(ctx, key)
}

// Lookup returns the account of the Secret key, read at most once per TTL,
// so a rotated Secret is in use within TTL without a restart.
func (r *Resolver) Lookup(ctx context.Context, key types.NamespacedName) (*Account, error) {
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	r.mu.Lock()
	c, ok := r.cache[key]
	r.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.acct, c.err
	}
	if r.ReadLimit != nil && !r.ReadLimit.Allow() {
		return nil, ErrBusy
	}
	acct, err := r.read(ctx, key)
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInvalid) {
		return nil, err // transient: not remembered
	}
	ttl := r.TTL
	if ttl == 0 {
		ttl = 10 * time.Second
	}
	r.mu.Lock()
	if r.cache == nil {
		r.cache = map[types.NamespacedName]cached{}
	}
	r.cache[key] = cached{acct: acct, err: err, expires: now.Add(ttl)}
	if len(r.cache) > maxCached {
		r.evictExpired(now)
	}
	r.mu.Unlock()
	return acct, err
}

// maxCached is the size past which expired entries are swept, so names a
// stranger makes up do not pile up.
const maxCached = 1024

func (r *Resolver) evictExpired(now time.Time) {
	for k, c := range r.cache {
		if !now.Before(c.expires) {
			delete(r.cache, k)
		}
	}
}

func (r *Resolver) read(ctx context.Context, key types.NamespacedName) (*Account, error) {
	source := key.String()
	var s corev1.Secret
	if err := r.Reader.Get(ctx, key, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: Secret %s does not exist", ErrNotFound, source)
		}
		return nil, fmt.Errorf("reading account Secret %s: %w", source, err)
	}
	acct, err := parse(&s, source)
	if err != nil {
		return nil, err
	}
	if acct.WebhookTokens, err = webhookTokens(&s, source); err != nil {
		return nil, err
	}
	acct.Key = key
	return acct, nil
}

// webhookTokens reads the account's own webhook path tokens, current first.
func webhookTokens(s *corev1.Secret, source string) ([]string, error) {
	var tokens []string
	for _, k := range []string{KeyWebhookToken, KeyWebhookTokenPrevious} {
		t := strings.TrimSpace(string(s.Data[k]))
		if t == "" {
			continue
		}
		if len(t) < minWebhookToken {
			return nil, fmt.Errorf("%w: Secret %s key %q must be at least %d characters", ErrInvalid, source, k, minWebhookToken)
		}
		tokens = append(tokens, t)
	}
	return tokens, nil
}

// parse reads the credentials of one Piopiy generation from the Secret.
func parse(s *corev1.Secret, source string) (*Account, error) {
	from := strings.TrimSpace(string(s.Data[KeyFrom]))
	if from != "" && !piopiy.ValidNumber(from) {
		return nil, fmt.Errorf("%w: Secret %s key %q must be 7 to 16 digits without '+'", ErrInvalid, source, KeyFrom)
	}
	if _, ok := s.Data[KeyToken]; ok {
		return readV3(s, source, from)
	}
	appID, err := strconv.ParseInt(strings.TrimSpace(string(s.Data[KeyAppID])), 10, 64)
	if err != nil || appID <= 0 {
		return nil, fmt.Errorf("%w: Secret %s key %q must hold the numeric Piopiy app id", ErrInvalid, source, KeyAppID)
	}
	secret := strings.TrimSpace(string(s.Data[KeySecret]))
	if secret == "" {
		return nil, fmt.Errorf("%w: Secret %s has no %q key", ErrInvalid, source, KeySecret)
	}
	return &Account{Generation: GenerationV2, Credentials: piopiy.Credentials{AppID: appID, Secret: secret}, From: from, Source: source}, nil
}

// readV3 reads a Secret holding a v3 token.
func readV3(s *corev1.Secret, source, from string) (*Account, error) {
	if _, ok := s.Data[KeySecret]; ok {
		return nil, fmt.Errorf("%w: Secret %s holds both a v3 %q and a v2 %q; keep the keys of one Piopiy generation per Secret", ErrInvalid, source, KeyToken, KeySecret)
	}
	token := strings.TrimSpace(string(s.Data[KeyToken]))
	if token == "" || strings.ContainsAny(token, "\r\n") {
		return nil, fmt.Errorf("%w: Secret %s key %q must hold the Piopiy v3 Bearer token on one line", ErrInvalid, source, KeyToken)
	}
	return &Account{
		Generation: GenerationV3,
		V3:         V3Credentials{Token: token, AppID: strings.TrimSpace(string(s.Data[KeyAppID]))},
		From:       from,
		Source:     source,
	}, nil
}
