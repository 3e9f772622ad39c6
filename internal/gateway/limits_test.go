package gateway

import (
	"fmt"
	"testing"
)

// TestEchoedMarksAreBounded is issue #20 item 5: a bot that sends marks and
// never reads cannot grow its queue past maxPendingEvents, and the
// gateway's own events still get through.
func TestEchoedMarksAreBounded(t *testing.T) {
	q := newBotQueue(50, 320, nil)
	queued := 0
	for i := range 20_000 {
		if q.pushEcho([]byte(fmt.Sprintf(`{"type":"mark","name":"m%d"}`, i))) {
			queued++
		}
	}
	if queued != maxPendingEvents {
		t.Fatalf("queued %d echoed marks, want at most %d", queued, maxPendingEvents)
	}
	if !q.pushEvent([]byte(`{"type":"stop"}`)) {
		t.Fatal("the gateway's own stop event was refused")
	}
	var last []byte
	for range queued + 1 {
		ev, _, ok := q.next(nil)
		if !ok {
			t.Fatal("queue ended early")
		}
		last = ev
	}
	if string(last) != `{"type":"stop"}` {
		t.Fatalf("last event %s, want the stop", last)
	}
}

// TestOversizedFrameBuffersAreNotKept: a frame that grew for a large
// platform message is not recycled, so a burst of big frames does not stay
// resident in the free list.
func TestOversizedFrameBuffersAreNotKept(t *testing.T) {
	q := newBotQueue(50, 320, nil)
	big := q.get()
	big.data = append(big.data, make([]byte, maxPlatformFrame)...)
	q.put(big)
	small := q.get()
	small.data = append(small.data, 1)
	q.put(small)
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, f := range q.free {
		if cap(f.data) > maxRetainedFrame {
			t.Fatalf("a %d-byte buffer was kept for reuse", cap(f.data))
		}
	}
	if len(q.free) != 1 {
		t.Fatalf("free list %d, want the small frame only", len(q.free))
	}
}
