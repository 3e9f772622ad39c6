package callstate

import (
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// Recent remembers, per Call, the object this process's last write of it
// returned and the resourceVersions its writes replaced. The manager's
// cache shows a write only once its watch event comes back, and meanwhile
// the Call controller and the webhook receiver (one Recent shared between
// them) would work from the version they just replaced: the controller
// taking its own intent, still without the create's result, for one a crash
// left behind; the receiver sending an update bound to be refused with 409
// Conflict. A cached Call whose resourceVersion this process replaced is
// stale by definition, and Fresher gives the newer object instead.
//
// Every status write is an update with a resourceVersion, so successful
// writes of one Call form a chain and the object whose version nothing
// replaced is the newest this process knows. Nothing is decided from the
// object that is not also checked by the write's optimistic lock: a write
// from it that another writer (the gateway, another replica) overtook still
// fails with a conflict, as one from the cache does.
//
// The zero value is ready to use; a nil *Recent remembers nothing.
type Recent struct {
	mu sync.Mutex
	m  map[types.NamespacedName]*recentCall
	// swept is when entries were last aged out.
	swept time.Time
}

type recentCall struct {
	replaced []string
	last     *voicev1alpha1.Call
	at       time.Time
}

// recentKeep bounds the versions remembered per Call, and recentTTL how long
// a Call is remembered after its last write: a cache lags by milliseconds
// to seconds, not minutes.
const (
	recentKeep = 8
	recentTTL  = 2 * time.Minute
)

// Wrote records that a write of this process replaced version from with
// obj (the write's reply, which is copied).
func (r *Recent) Wrote(from string, obj *voicev1alpha1.Call) {
	if r == nil || from == "" || obj == nil || obj.ResourceVersion == "" {
		return
	}
	now := time.Now()
	key := types.NamespacedName{Namespace: obj.Namespace, Name: obj.Name}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[types.NamespacedName]*recentCall{}
	}
	if now.Sub(r.swept) > recentTTL {
		r.swept = now
		for k, e := range r.m {
			if now.Sub(e.at) > recentTTL {
				delete(r.m, k)
			}
		}
	}
	e := r.m[key]
	if e == nil || (e.last != nil && e.last.UID != obj.UID) {
		e = &recentCall{}
		r.m[key] = e
	}
	e.at = now
	if !slices.Contains(e.replaced, from) {
		e.replaced = append(e.replaced, from)
		if len(e.replaced) > recentKeep {
			e.replaced = e.replaced[len(e.replaced)-recentKeep:]
		}
	}
	// Writes recorded out of order: keep the one nothing replaced.
	if e.last == nil || slices.Contains(e.replaced, e.last.ResourceVersion) {
		e.last = obj.DeepCopy()
	}
}

// Fresher returns a copy of the newest version of cached this process
// wrote, when cached is one of the versions its writes replaced; else nil
// (use cached).
func (r *Recent) Fresher(cached *voicev1alpha1.Call) *voicev1alpha1.Call {
	return r.newer(cached, true)
}

// Newer is Fresher for an object that is not the cache's (a write's own
// reply): the write of another goroutine of this process may have replaced
// it since.
func (r *Recent) Newer(obj *voicev1alpha1.Call) *voicev1alpha1.Call {
	return r.newer(obj, false)
}

func (r *Recent) newer(cached *voicev1alpha1.Call, fromCache bool) *voicev1alpha1.Call {
	if r == nil || cached == nil {
		return nil
	}
	key := types.NamespacedName{Namespace: cached.Namespace, Name: cached.Name}
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.m[key]
	if e == nil || e.last == nil || e.last.UID != cached.UID {
		return nil
	}
	if cached.ResourceVersion == e.last.ResourceVersion {
		if fromCache {
			// The cache has caught up, and never goes back.
			delete(r.m, key)
		}
		return nil
	}
	if !slices.Contains(e.replaced, cached.ResourceVersion) || slices.Contains(e.replaced, e.last.ResourceVersion) {
		return nil
	}
	return e.last.DeepCopy()
}

// Forget drops what is remembered of a Call (it is gone).
func (r *Recent) Forget(key types.NamespacedName) {
	if r == nil {
		return
	}
	r.mu.Lock()
	delete(r.m, key)
	r.mu.Unlock()
}
