// Package cachelag tells a controller when its informer cache still shows an
// object as it was before one of the controller's own writes of it.
//
// A reconcile that starts from such a view decides from facts the
// controller itself has already replaced: a pacing clock already advanced, a
// start already recorded, an answer already seen. Its write then fails with
// a conflict (at best, after wasted requests to Piopiy) or, where a write is
// not guarded by the resourceVersion, goes backwards. Controllers whose own
// status writes are filtered from their watch, or who requeue themselves,
// meet this view often on a loaded apiserver. Skipping such a pass and
// looking again shortly costs nothing: the write that made the view stale is
// already stored.
//
// Resource versions are opaque, so the tracker never compares them: it
// remembers the exact versions this process wrote over. Once the store has
// moved past a version, the object can never be at it again.
package cachelag

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// TTL bounds how long a write is taken as possibly not yet in the cache. An
// informer that lags longer is broken in other ways; past it, the tracker
// lets passes through rather than hold an object back for ever.
const TTL = 30 * time.Second

// perObject bounds the versions remembered per object: a controller writes
// an object a few times per pass at most.
const perObject = 8

// Tracker remembers, per object, the resource versions this process wrote
// over. The zero value is ready to use and safe for concurrent use.
type Tracker struct {
	mu sync.Mutex
	m  map[types.UID][]wrote
	// Now is the tracker's clock (tests set it); nil is time.Now.
	Now func() time.Time
}

type wrote struct {
	from string
	at   time.Time
}

func (t *Tracker) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// Wrote records a successful write of object uid made over resource version
// from (the version the write was computed from) that stored version to. A
// write that changed nothing keeps the version (the apiserver skips it), so
// the object is still at from and nothing is recorded.
func (t *Tracker) Wrote(uid types.UID, from, to string) {
	if uid == "" || from == "" || from == to {
		return
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[types.UID][]wrote{}
	}
	list := fresh(t.m[uid], now)
	if len(list) == perObject {
		list = list[1:]
	}
	t.m[uid] = append(list, wrote{from: from, at: now})
}

// Behind reports whether resource version rv of object uid is one this
// process has since written over: the cache has not caught up with that
// write yet.
func (t *Tracker) Behind(uid types.UID, rv string) bool {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	list := fresh(t.m[uid], now)
	if len(list) == 0 {
		delete(t.m, uid)
		return false
	}
	t.m[uid] = list
	for _, w := range list {
		if w.from == rv {
			return true
		}
	}
	return false
}

// Forget drops what is known of an object that is finished or gone.
func (t *Tracker) Forget(uid types.UID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, uid)
}

// Len is how many objects the tracker holds (for tests and metrics).
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// fresh drops the entries older than TTL, in place.
func fresh(list []wrote, now time.Time) []wrote {
	i := 0
	for i < len(list) && now.Sub(list[i].at) >= TTL {
		i++
	}
	return list[i:]
}
