// Package account resolves the Piopiy credentials a Call dials with: the
// Secret its accountRef names, else the manager's default account.
package account

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

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
)

// Errors are typed so the Call controller can say precisely what to fix.
var (
	// ErrNotFound: the Secret does not exist (or no default is configured).
	ErrNotFound = errors.New("account secret not found")
	// ErrInvalid: the Secret exists but its keys are missing or malformed.
	ErrInvalid = errors.New("account secret invalid")
)

// Account is what a Call dials with.
type Account struct {
	Credentials piopiy.Credentials
	// From is the Secret's default caller id ("" when absent).
	From string
	// Source names the Secret, for messages (never its content).
	Source string
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

	mu    sync.Mutex
	cache map[types.NamespacedName]cached
}

type cached struct {
	acct    *Account
	expires time.Time
}

var digits = regexp.MustCompile(`^[1-9][0-9]{6,15}$`)

// Resolve returns the account of call.
func (r *Resolver) Resolve(ctx context.Context, call *voicev1alpha1.Call) (*Account, error) {
	key := r.Default
	if call.Spec.AccountRef != nil {
		key = types.NamespacedName{Namespace: call.Namespace, Name: call.Spec.AccountRef.Name}
	}
	if key.Name == "" {
		return nil, fmt.Errorf("%w: the Call has no accountRef and the manager has no default account (--default-account)", ErrNotFound)
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	r.mu.Lock()
	c, ok := r.cache[key]
	r.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.acct, nil
	}
	acct, err := r.read(ctx, key)
	if err != nil {
		return nil, err
	}
	ttl := r.TTL
	if ttl == 0 {
		ttl = 10 * time.Second
	}
	r.mu.Lock()
	if r.cache == nil {
		r.cache = map[types.NamespacedName]cached{}
	}
	r.cache[key] = cached{acct: acct, expires: now.Add(ttl)}
	r.mu.Unlock()
	return acct, nil
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
	appID, err := strconv.ParseInt(strings.TrimSpace(string(s.Data[KeyAppID])), 10, 64)
	if err != nil || appID <= 0 {
		return nil, fmt.Errorf("%w: Secret %s key %q must hold the numeric Piopiy app id", ErrInvalid, source, KeyAppID)
	}
	secret := strings.TrimSpace(string(s.Data[KeySecret]))
	if secret == "" {
		return nil, fmt.Errorf("%w: Secret %s has no %q key", ErrInvalid, source, KeySecret)
	}
	from := strings.TrimSpace(string(s.Data[KeyFrom]))
	if from != "" && !digits.MatchString(from) {
		return nil, fmt.Errorf("%w: Secret %s key %q must be 7 to 16 digits without '+'", ErrInvalid, source, KeyFrom)
	}
	return &Account{Credentials: piopiy.Credentials{AppID: appID, Secret: secret}, From: from, Source: source}, nil
}
