package notify

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// DefaultKey is the Secret key read when a sink names none.
const DefaultKey = "hmacKey"

// Default is the manager-wide sink, used by Campaigns without spec.notify
// and by Calls of no Campaign.
type Default struct {
	URL string
	// Secret holds the HMAC key (in the manager's namespace, typically).
	Secret types.NamespacedName
	Key    string
}

// SinkError says why a sink cannot be used; Reason is a NotifyReady reason.
type SinkError struct {
	Reason string
	Msg    string
}

func (e *SinkError) Error() string { return e.Msg }

// Resolver finds the sink of a Campaign (or of a Call of no Campaign).
type Resolver struct {
	// Reader reads key Secrets; a live reader (not the cache) so the
	// manager need not watch every Secret. Keys are kept for keyTTL.
	Reader  client.Reader
	Default *Default

	mu   sync.Mutex
	keys map[types.NamespacedName]cachedKey
}

// keyTTL bounds how long a rotated or deleted key Secret goes unnoticed.
const keyTTL = 10 * time.Second

type cachedKey struct {
	sec *corev1.Secret
	err error
	at  time.Time
}

func (r *Resolver) secret(ctx context.Context, ref types.NamespacedName) (*corev1.Secret, error) {
	r.mu.Lock()
	if k, ok := r.keys[ref]; ok && time.Since(k.at) < keyTTL {
		r.mu.Unlock()
		return k.sec, k.err
	}
	r.mu.Unlock()
	sec := &corev1.Secret{}
	err := r.Reader.Get(ctx, ref, sec)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err // not cached: a transient failure is retried at once
	}
	r.mu.Lock()
	if r.keys == nil {
		r.keys = map[types.NamespacedName]cachedKey{}
	}
	r.keys[ref] = cachedKey{sec: sec, err: err, at: time.Now()}
	r.mu.Unlock()
	return sec, err
}

// ForCampaign is c's sink: spec.notify, else the default. nil, nil when
// there is none. c may be nil (a Call of no Campaign).
func (r *Resolver) ForCampaign(ctx context.Context, c *voicev1alpha1.Campaign) (*Sink, error) {
	var u string
	var ref types.NamespacedName
	var key string
	switch {
	case c != nil && c.Spec.Notify != nil:
		u, key = c.Spec.Notify.URL, c.Spec.Notify.SecretRef.Key
		ref = types.NamespacedName{Namespace: c.Namespace, Name: c.Spec.Notify.SecretRef.Name}
	case r.Default != nil && r.Default.URL != "":
		u, ref, key = r.Default.URL, r.Default.Secret, r.Default.Key
	default:
		return nil, nil
	}
	if key == "" {
		key = DefaultKey
	}
	if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return nil, &SinkError{Reason: voicev1alpha1.ReasonInvalidSinkURL, Msg: fmt.Sprintf("sink URL %q is not an absolute http(s) URL", u)}
	}
	sec, err := r.secret(ctx, ref)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &SinkError{Reason: voicev1alpha1.ReasonSinkKeyNotFound, Msg: fmt.Sprintf("Secret %s holding the sink's HMAC key does not exist", ref)}
		}
		return nil, fmt.Errorf("reading the sink's key Secret %s: %w", ref, err)
	}
	k := sec.Data[key]
	if len(k) == 0 {
		return nil, &SinkError{Reason: voicev1alpha1.ReasonSinkKeyNotFound, Msg: fmt.Sprintf("Secret %s has no key %q (the sink's HMAC key)", ref, key)}
	}
	return &Sink{URL: u, Key: k}, nil
}
