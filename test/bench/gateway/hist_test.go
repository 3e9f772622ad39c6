package gateway

import (
	"sync/atomic"
	"time"
)

// hist is a lock-free latency histogram: 5 µs buckets up to 250 ms.
type hist struct {
	b [50001]atomic.Int64
	n atomic.Int64
}

const histBucket = 5 * time.Microsecond

func (h *hist) observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := int(d / histBucket)
	if i >= len(h.b) {
		i = len(h.b) - 1
	}
	h.b[i].Add(1)
	h.n.Add(1)
}

func (h *hist) reset() {
	for i := range h.b {
		h.b[i].Store(0)
	}
	h.n.Store(0)
}

// quantile returns the upper bound of the bucket holding quantile q.
func (h *hist) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	want := int64(q*float64(n) + 0.5)
	if want < 1 {
		want = 1
	}
	var seen int64
	for i := range h.b {
		seen += h.b[i].Load()
		if seen >= want {
			return time.Duration(i+1) * histBucket
		}
	}
	return time.Duration(len(h.b)) * histBucket
}
