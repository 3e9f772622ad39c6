package gateway

import (
	"sync"
	"time"
)

// frame is one message bound for the bot: platform audio, or a JSON event.
type frame struct {
	data []byte
	at   time.Time // when it arrived from the platform (audio only)
}

// botQueue sits between the platform reader and the bot writer. Audio lives
// in a fixed ring: when the bot falls behind, the oldest frame is dropped so
// the platform socket is never blocked by a slow bot and the bot hears the
// most recent second rather than audio growing ever staler. Events (start,
// paused, mark, ...) are few and never dropped; they go before queued audio.
//
// Frame buffers are recycled through a free list, so steady-state relaying
// does not allocate.
type botQueue struct {
	mu     sync.Mutex
	ring   []*frame // capacity = max buffered frames
	head   int      // index of the oldest frame
	n      int      // frames in the ring
	events [][]byte
	free   []*frame
	closed bool
	size   int // initial capacity of a new frame buffer

	// ready has room for one token: a push makes it non-empty, the consumer
	// drains it. No allocation per wake-up.
	ready chan struct{}

	dropped func() // called once per dropped frame (a metric)
}

func newBotQueue(maxFrames, frameSize int, dropped func()) *botQueue {
	if maxFrames < 1 {
		maxFrames = 1
	}
	if dropped == nil {
		dropped = func() {}
	}
	return &botQueue{
		ring:    make([]*frame, maxFrames),
		size:    frameSize,
		ready:   make(chan struct{}, 1),
		dropped: dropped,
	}
}

// get returns an empty frame to read into.
func (q *botQueue) get() *frame {
	q.mu.Lock()
	defer q.mu.Unlock()
	if k := len(q.free); k > 0 {
		f := q.free[k-1]
		q.free = q.free[:k-1]
		f.data = f.data[:0]
		return f
	}
	return &frame{data: make([]byte, 0, q.size)}
}

// put returns a frame to the free list once written (or abandoned); an
// oversized buffer is not kept.
func (q *botQueue) put(f *frame) {
	if cap(f.data) > maxRetainedFrame {
		return
	}
	q.mu.Lock()
	q.free = append(q.free, f)
	q.mu.Unlock()
}

// pushAudio queues f, dropping the oldest audio frame when full. It reports
// false after close (the frame is recycled).
func (q *botQueue) pushAudio(f *frame) bool {
	q.mu.Lock()
	if q.closed {
		q.free = append(q.free, f)
		q.mu.Unlock()
		return false
	}
	dropped := false
	if q.n == len(q.ring) {
		old := q.ring[q.head]
		q.ring[q.head] = nil
		q.head = (q.head + 1) % len(q.ring)
		q.n--
		q.free = append(q.free, old)
		dropped = true
	}
	q.ring[(q.head+q.n)%len(q.ring)] = f
	q.n++
	q.mu.Unlock()
	if dropped {
		q.dropped()
	}
	q.signal()
	return true
}

// pushEvent queues a JSON event for the bot; b must not be modified after.
func (q *botQueue) pushEvent(b []byte) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.events = append(q.events, b)
	q.mu.Unlock()
	q.signal()
	return true
}

// pushEcho queues an event the bot itself caused (an echoed mark) unless
// maxPendingEvents are already waiting: a bot that sends marks and never
// reads must not grow the queue without bound. It reports whether it
// queued.
func (q *botQueue) pushEcho(b []byte) bool {
	q.mu.Lock()
	full := len(q.events) >= maxPendingEvents
	q.mu.Unlock()
	if full {
		return false
	}
	return q.pushEvent(b)
}

func (q *botQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// close stops new frames; queued events can still be taken (so a final
// "stop" reaches the bot) but audio is discarded.
func (q *botQueue) close() {
	q.mu.Lock()
	q.closed = true
	for q.n > 0 {
		q.free = append(q.free, q.ring[q.head])
		q.ring[q.head] = nil
		q.head = (q.head + 1) % len(q.ring)
		q.n--
	}
	q.mu.Unlock()
	q.signal()
}

// dropAudio discards the queued audio (events stay): audio meant for a bot
// socket that is gone.
func (q *botQueue) dropAudio() {
	q.mu.Lock()
	for q.n > 0 {
		q.free = append(q.free, q.ring[q.head])
		q.ring[q.head] = nil
		q.head = (q.head + 1) % len(q.ring)
		q.n--
	}
	q.mu.Unlock()
}

// next waits for an event or an audio frame. It returns ok=false once the
// queue is closed and no event is left, or when done is closed.
func (q *botQueue) next(done <-chan struct{}) (event []byte, audio *frame, ok bool) {
	for {
		q.mu.Lock()
		if len(q.events) > 0 {
			event = q.events[0]
			q.events[0] = nil
			q.events = q.events[1:]
			q.mu.Unlock()
			return event, nil, true
		}
		if q.n > 0 {
			audio = q.ring[q.head]
			q.ring[q.head] = nil
			q.head = (q.head + 1) % len(q.ring)
			q.n--
			q.mu.Unlock()
			return nil, audio, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, nil, false
		}
		select {
		case <-q.ready:
		case <-done:
			return nil, nil, false
		}
	}
}

// len reports queued audio frames (for tests).
func (q *botQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}
