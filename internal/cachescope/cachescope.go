// Package cachescope keeps the manager's cache to what is callfleet's.
//
// Campaigns read contact lists and do-not-call lists from ConfigMaps the
// user names, in any namespace the manager watches; caching ConfigMaps the
// usual way would hold every ConfigMap in the cluster (another tenant's 200
// MB included) in the manager's memory. So ConfigMaps are cached without
// their data (name, labels and resourceVersion are enough to watch them),
// and a ConfigMap's data is read from the API when someone Gets it, then
// kept while its resourceVersion stands: only the ConfigMaps a Campaign
// references are held whole. Secrets are never cached (the account Secrets
// are read directly by name).
package cachescope

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Apply scopes o: ConfigMaps are cached without data, annotations or
// managedFields, and every other object without managedFields.
func Apply(o cache.Options) cache.Options {
	o.DefaultTransform = cache.TransformStripManagedFields()
	if o.ByObject == nil {
		o.ByObject = map[client.Object]cache.ByObject{}
	}
	o.ByObject[&corev1.ConfigMap{}] = cache.ByObject{Transform: stripConfigMap}
	return o
}

// stripConfigMap keeps what a watch needs. Annotations go too: kubectl's
// last-applied-configuration annotation holds a copy of the data.
func stripConfigMap(obj any) (any, error) {
	if cm, ok := obj.(*corev1.ConfigMap); ok {
		cm.Data, cm.BinaryData = nil, nil
		cm.Annotations = nil
		cm.ManagedFields = nil
	}
	return obj, nil
}

// NewClient is a client.NewClientFunc for the manager: the default client,
// with Secrets never read from the cache and ConfigMaps read as this
// package's doc says.
func NewClient(config *rest.Config, options client.Options) (client.Client, error) {
	live, err := client.New(config, client.Options{Scheme: options.Scheme, Mapper: options.Mapper, HTTPClient: options.HTTPClient})
	if err != nil {
		return nil, err
	}
	if options.Cache != nil {
		options.Cache.DisableFor = append(options.Cache.DisableFor, &corev1.Secret{})
	}
	c, err := client.New(config, options)
	if err != nil {
		return nil, err
	}
	return &Client{Client: c, live: live}, nil
}

// Client reads ConfigMaps' data from the API, keeping each while its
// resourceVersion in the cache stands. Lists of ConfigMaps come from the
// cache, so without data.
type Client struct {
	client.Client
	live client.Reader

	mu   sync.Mutex
	data map[types.NamespacedName]*corev1.ConfigMap
}

// Get reads obj; a ConfigMap comes whole.
func (c *Client) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	dst, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return c.Client.Get(ctx, key, obj, opts...)
	}
	// The cache says whether it exists and which version is current.
	var meta corev1.ConfigMap
	if err := c.Client.Get(ctx, key, &meta, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			c.forget(key)
		}
		return err
	}
	c.mu.Lock()
	held := c.data[key]
	c.mu.Unlock()
	if held == nil || held.UID != meta.UID || held.ResourceVersion != meta.ResourceVersion {
		fresh := &corev1.ConfigMap{}
		if err := c.live.Get(ctx, key, fresh); err != nil {
			if apierrors.IsNotFound(err) {
				c.forget(key)
			}
			return fmt.Errorf("reading ConfigMap %s: %w", key, err)
		}
		fresh.ManagedFields = nil
		c.mu.Lock()
		if c.data == nil {
			c.data = map[types.NamespacedName]*corev1.ConfigMap{}
		}
		c.data[key] = fresh
		c.mu.Unlock()
		held = fresh
	}
	var o client.GetOptions
	o.ApplyOptions(opts)
	if o.UnsafeDisableDeepCopy != nil && *o.UnsafeDisableDeepCopy {
		*dst = *held // shared, read-only, as the option promises
	} else {
		held.DeepCopyInto(dst)
	}
	return nil
}

func (c *Client) forget(key types.NamespacedName) {
	c.mu.Lock()
	delete(c.data, key)
	c.mu.Unlock()
}

// Held is how many ConfigMaps are held whole (tests, metrics).
func (c *Client) Held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.data)
}
