package gateway

import (
	"fmt"
	"testing"
)

func TestBotQueueDropsOldest(t *testing.T) {
	for _, tc := range []struct {
		max, push   int
		wantDropped int
		wantFirst   byte
	}{
		{max: 50, push: 10, wantDropped: 0, wantFirst: 0},
		{max: 50, push: 50, wantDropped: 0, wantFirst: 0},
		{max: 50, push: 51, wantDropped: 1, wantFirst: 1},
		{max: 3, push: 10, wantDropped: 7, wantFirst: 7},
		{max: 1, push: 5, wantDropped: 4, wantFirst: 4},
	} {
		t.Run(fmt.Sprintf("max%d_push%d", tc.max, tc.push), func(t *testing.T) {
			dropped := 0
			q := newBotQueue(tc.max, 320, func() { dropped++ })
			for i := 0; i < tc.push; i++ {
				f := q.get()
				f.data = append(f.data, byte(i))
				q.pushAudio(f)
			}
			if dropped != tc.wantDropped {
				t.Errorf("dropped %d, want %d", dropped, tc.wantDropped)
			}
			if got := q.len(); got != min(tc.push, tc.max) {
				t.Errorf("queued %d", got)
			}
			_, f, ok := q.next(nil)
			if !ok || f == nil || f.data[0] != tc.wantFirst {
				t.Fatalf("first frame %v, want the one numbered %d", f, tc.wantFirst)
			}
		})
	}
}

func TestBotQueueEventsFirstAndCloseKeepsEvents(t *testing.T) {
	q := newBotQueue(4, 320, nil)
	for i := 0; i < 2; i++ {
		f := q.get()
		f.data = append(f.data, byte(i))
		q.pushAudio(f)
	}
	q.pushEvent([]byte(`{"type":"paused"}`))
	if ev, _, _ := q.next(nil); string(ev) != `{"type":"paused"}` {
		t.Fatalf("want the event before queued audio, got %q", ev)
	}
	if _, f, _ := q.next(nil); f == nil || f.data[0] != 0 {
		t.Fatal("want audio in order after the event")
	}
	q.pushEvent([]byte(`{"type":"stop"}`))
	q.close()
	if ev, _, ok := q.next(nil); !ok || string(ev) != `{"type":"stop"}` {
		t.Fatalf("after close the stop event must still go out, got %q %v", ev, ok)
	}
	if _, _, ok := q.next(nil); ok {
		t.Fatal("after close queued audio is discarded")
	}
	f := q.get()
	if q.pushAudio(f) || q.pushEvent([]byte("x")) {
		t.Fatal("push after close accepted")
	}
}

func TestBotQueueNextWaits(t *testing.T) {
	q := newBotQueue(4, 320, nil)
	got := make(chan []byte)
	go func() {
		_, f, _ := q.next(nil)
		got <- f.data
	}()
	f := q.get()
	f.data = append(f.data, 42)
	q.pushAudio(f)
	if b := <-got; b[0] != 42 {
		t.Fatalf("got %v", b)
	}
	done := make(chan struct{})
	close(done)
	if _, _, ok := q.next(done); ok {
		t.Fatal("next on an empty queue with done closed must return")
	}
}

// The relay's steady state recycles buffers: no allocation per frame.
func TestBotQueueSteadyStateDoesNotAllocate(t *testing.T) {
	q := newBotQueue(50, 320, nil)
	payload := make([]byte, 320)
	cycle := func() {
		f := q.get()
		f.data = append(f.data, payload...)
		q.pushAudio(f)
		_, g, _ := q.next(nil)
		q.put(g)
	}
	cycle()
	if n := testing.AllocsPerRun(1000, cycle); n != 0 {
		t.Errorf("%v allocations per frame", n)
	}
}
