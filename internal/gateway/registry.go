package gateway

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// sessionKey names one stream: a Call attempt.
type sessionKey struct {
	types.NamespacedName
	Attempt int32
}

// registry is the pod's in-memory map of live sockets: the Call reconciler
// acts only on calls whose socket this pod holds.
type registry struct {
	mu     sync.Mutex
	m      map[sessionKey]*session // nil value: reserved, not yet connected
	closed bool                    // shutting down: no new reservations
	empty  chan struct{}           // closed when the map becomes empty while closed
}

func newRegistry() *registry {
	return &registry{m: map[sessionKey]*session{}}
}

// Why reserve refused a key.
type reserveResult int

const (
	reserved   reserveResult = iota
	isDraining               // shutting down: no new sockets
	isOpen                   // a socket is open (or being opened) for the key
	isFull                   // max sockets (open or being opened) reached
)

// reserve claims key for a new socket, unless the gateway is draining, one
// is open for it, or max (0: no limit) are open already.
func (r *registry) reserve(k sessionKey, max int) reserveResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return isDraining
	}
	if _, ok := r.m[k]; ok {
		return isOpen
	}
	if max > 0 && len(r.m) >= max {
		return isFull
	}
	r.m[k] = nil
	return reserved
}

func (r *registry) set(k sessionKey, s *session) {
	r.mu.Lock()
	r.m[k] = s
	r.mu.Unlock()
}

func (r *registry) remove(k sessionKey) {
	r.mu.Lock()
	delete(r.m, k)
	if r.closed && len(r.m) == 0 && r.empty != nil {
		close(r.empty)
		r.empty = nil
	}
	r.mu.Unlock()
}

// forCall returns the live sessions of a Call (normally one).
func (r *registry) forCall(nn types.NamespacedName) []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*session
	for k, s := range r.m {
		if k.NamespacedName == nn && s != nil {
			out = append(out, s)
		}
	}
	return out
}

func (r *registry) all() []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*session, 0, len(r.m))
	for _, s := range r.m {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

func (r *registry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// close refuses new sockets and returns a channel closed once none is left.
func (r *registry) close() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	ch := make(chan struct{})
	if len(r.m) == 0 {
		close(ch)
		return ch
	}
	if r.empty == nil {
		r.empty = ch
		return ch
	}
	return r.empty
}
