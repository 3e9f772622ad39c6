package main

import "testing"

// TestBeepDetector: a greeting (even a steady tone at another pitch) does
// not fire; the beep fires once, after it held for BeepMin.
func TestBeepDetector(t *testing.T) {
	const rate = 8000
	frame := rate / 50 * 2
	d := beepDetector{rate: rate, hz: 1000, minMs: 200, floor: 500}
	feed := func(pcm []byte) (fired int, atMs int) {
		for off := 0; off+frame <= len(pcm); off += frame {
			if d.feed(pcm[off:off+frame], 20) {
				fired++
				atMs = off / 2 * 1000 / rate
			}
		}
		return fired, atMs
	}
	if n, _ := feed(tone(rate, 700, 1500)); n != 0 {
		t.Fatalf("a 700 Hz greeting fired the detector %d times", n)
	}
	if n, _ := feed(tone(rate, 440, 500)); n != 0 {
		t.Fatalf("speech at 440 Hz fired the detector")
	}
	n, at := feed(tone(rate, 1000, 500))
	if n != 1 || at < 180 {
		t.Fatalf("beep fired %d times at %d ms, want once after 200 ms", n, at)
	}
}
