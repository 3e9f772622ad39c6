package sim

import (
	"container/heap"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Sender strategies for the 20 ms binary frames (Config.Sender).
const (
	// SenderPerStream runs one goroutine per stream, each with its own timer.
	SenderPerStream = "per-stream"
	// SenderShared runs one goroutine per CPU, each walking a heap of its
	// streams by due time: no per-frame goroutine switch or channel select.
	SenderShared = "shared"
)

// writeTimeout bounds a frame write. A shared sender writes for many streams
// from one goroutine, so a peer that stops reading must not stall the others:
// its socket dies instead (reported as an abnormal closure).
const writeTimeout = 2 * time.Second

// deadlineConn keeps a rolling write deadline on the stream's TCP connection.
// The deadline is refreshed only when half used up, so most writes cost no
// extra syscall or timer update.
type deadlineConn struct {
	net.Conn
	until atomic.Int64 // unix ns of the deadline in force
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	now := time.Now()
	if c.until.Load()-now.UnixNano() < int64(writeTimeout/2) {
		d := now.Add(writeTimeout)
		if err := c.SetWriteDeadline(d); err != nil {
			return 0, err
		}
		c.until.Store(d.UnixNano())
	}
	return c.Conn.Write(p)
}

// sendState is what a sender needs per stream; the shared sender keeps it in a heap.
type sendState struct {
	st      *stream
	conn    *websocket.Conn
	rp      *ratePatterns
	scratch []byte
	n       int64
	next    time.Time // due time of frame n
	idx     int       // heap index
	done    chan struct{}
}

// sendFrame writes frame n (unless paused); false when the socket is gone.
func (ss *sendState) sendFrame(now time.Time) bool {
	st := ss.st
	st.c.s.late.observe(now.Sub(ss.next))
	if !st.paused.Load() {
		frame := st.frame(ss.rp, ss.n, ss.scratch)
		// A background context: a context with a Done channel costs an
		// allocation per write in coder/websocket. Closing the socket stops it.
		if err := ss.conn.Write(context.Background(), websocket.MessageBinary, frame); err != nil {
			return false
		}
		st.framesSent.Add(1)
		st.bytesSent.Add(int64(len(frame)))
	}
	ss.n++
	ss.next = ss.next.Add(FrameInterval)
	return true
}

// perStreamSend is the goroutine-per-stream sender. Slots are absolute
// (start + n*20ms) so a late wake-up shows as lateness instead of drifting;
// a sender that falls behind catches up back to back.
func perStreamSend(ss *sendState) {
	defer close(ss.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	done := ss.st.ctx.Done()
	for {
		if d := time.Until(ss.next); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-done:
				return
			}
		} else if ss.st.ctx.Err() != nil {
			return
		}
		if !ss.sendFrame(time.Now()) {
			return
		}
	}
}

// sharedSender is a fixed set of shards, each one goroutine over a heap.
type sharedSender struct {
	shards []*sendShard
	rr     atomic.Uint32
}

type sendShard struct {
	mu   sync.Mutex
	h    sendHeap
	wake chan struct{}
}

func newSharedSender(ctx context.Context, shards int) *sharedSender {
	ps := &sharedSender{}
	for range shards {
		sh := &sendShard{wake: make(chan struct{}, 1)}
		ps.shards = append(ps.shards, sh)
		go sh.loop(ctx)
	}
	return ps
}

func (ps *sharedSender) add(ss *sendState) {
	sh := ps.shards[int(ps.rr.Add(1))%len(ps.shards)]
	sh.mu.Lock()
	heap.Push(&sh.h, ss)
	first := sh.h[0] == ss
	sh.mu.Unlock()
	if first {
		select {
		case sh.wake <- struct{}{}:
		default:
		}
	}
}

func (sh *sendShard) loop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	defer func() {
		// Shutting down: release every stream still scheduled here.
		sh.mu.Lock()
		for _, ss := range sh.h {
			close(ss.done)
		}
		sh.h = nil
		sh.mu.Unlock()
	}()
	for {
		sh.mu.Lock()
		var due time.Time
		if len(sh.h) > 0 {
			due = sh.h[0].next
		}
		sh.mu.Unlock()
		if due.IsZero() {
			select {
			case <-sh.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-sh.wake: // an earlier stream arrived
				continue
			case <-ctx.Done():
				return
			}
		}
		// Send everything due now, earliest first.
		for {
			now := time.Now()
			sh.mu.Lock()
			if len(sh.h) == 0 || sh.h[0].next.After(now) {
				sh.mu.Unlock()
				break
			}
			ss := heap.Pop(&sh.h).(*sendState)
			sh.mu.Unlock()
			if ss.st.ctx.Err() != nil || !ss.sendFrame(now) {
				close(ss.done)
				continue
			}
			sh.mu.Lock()
			heap.Push(&sh.h, ss)
			sh.mu.Unlock()
		}
	}
}

// sendHeap orders streams by the due time of their next frame.
type sendHeap []*sendState

func (h sendHeap) Len() int           { return len(h) }
func (h sendHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h sendHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *sendHeap) Push(x any) {
	ss := x.(*sendState)
	ss.idx = len(*h)
	*h = append(*h, ss)
}
func (h *sendHeap) Pop() any {
	old := *h
	ss := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return ss
}
