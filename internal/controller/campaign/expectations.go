package campaign

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// expectationTimeout bounds how long creates that never show in the cache
// hold a Campaign back (as ReplicaSet's expectations do): something else
// must have deleted them.
const expectationTimeout = 5 * time.Minute

// expectations remembers, per Campaign, the Calls this process created and
// the informer has not shown yet. Until it has, the cache under-counts the
// Calls in flight, so the controller makes no more: a stale cache never
// over-creates. Names are deterministic, so "shown" is simply "a Call of that
// name is in the cache", with no event bookkeeping to race.
type expectations struct {
	mu sync.Mutex
	m  map[types.NamespacedName]*expected
}

type expected struct {
	names map[string]struct{}
	since time.Time
}

// expect records names before they are created, so a watch event that comes
// back before the create call returns is never missed.
func (e *expectations) expect(key types.NamespacedName, names []string, now time.Time) {
	if len(names) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[types.NamespacedName]*expected{}
	}
	x := e.m[key]
	if x == nil {
		x = &expected{names: map[string]struct{}{}}
		e.m[key] = x
	}
	x.since = now
	for _, n := range names {
		x.names[n] = struct{}{}
	}
}

// lower drops a name whose create failed: nothing will show.
func (e *expectations) lower(key types.NamespacedName, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x := e.m[key]; x != nil {
		delete(x.names, name)
	}
}

// satisfied drops the names the cache shows and reports whether none is
// left (or they are too old to wait for). pending is how many remain.
func (e *expectations) satisfied(key types.NamespacedName, inCache func(string) bool, now time.Time) (ok bool, pending int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.m[key]
	if x == nil {
		return true, 0
	}
	for n := range x.names {
		if inCache(n) {
			delete(x.names, n)
		}
	}
	if len(x.names) == 0 || now.Sub(x.since) > expectationTimeout {
		delete(e.m, key)
		return true, 0
	}
	return false, len(x.names)
}

func (e *expectations) forget(key types.NamespacedName) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

// recentTTL is how long a write this process made is taken as not yet
// visible in the cache.
const recentTTL = 30 * time.Second

// recentWrites remembers the releases and deletes this process made that
// the cache may not show yet, so a pass working from a stale cache does not
// send them again. It only saves requests: a repeated release fails its
// JSON patch test and a repeated delete finds nothing, both harmlessly.
type recentWrites struct {
	mu sync.Mutex
	m  map[types.NamespacedName]map[string]time.Time
}

func (w *recentWrites) add(key types.NamespacedName, what string, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[types.NamespacedName]map[string]time.Time{}
	}
	if w.m[key] == nil {
		w.m[key] = map[string]time.Time{}
	}
	w.m[key][what] = now
}

func (w *recentWrites) has(key types.NamespacedName, what string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.m[key][what]
	return ok && now.Sub(at) < recentTTL
}

// sweep drops the entries of a Campaign older than recentTTL.
func (w *recentWrites) sweep(key types.NamespacedName, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for what, at := range w.m[key] {
		if now.Sub(at) >= recentTTL {
			delete(w.m[key], what)
		}
	}
	if len(w.m[key]) == 0 {
		delete(w.m, key)
	}
}

func (w *recentWrites) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}
