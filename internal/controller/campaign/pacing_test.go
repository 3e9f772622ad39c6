package campaign

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// TestPacerNeverExceedsCallsPerMinute drives the pacer with a greedy caller
// polling every millisecond and checks every 60-second window.
func TestPacerNeverExceedsCallsPerMinute(t *testing.T) {
	for _, cpm := range []int32{1, 7, 60, 61, 120, 600, 6000, 60000} {
		p := newPacer(cpm)
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var tat time.Time
		var starts []time.Time
		for now := start; now.Before(start.Add(3 * time.Minute)); now = now.Add(time.Millisecond) {
			for {
				next, ok := p.take(tat, now)
				if !ok {
					break
				}
				tat = next
				starts = append(starts, now)
			}
		}
		// Sliding window: starts[j] - starts[i] < 60s must hold for at most cpm.
		for i, j := 0, 0; i < len(starts); i++ {
			for j < len(starts) && starts[j].Sub(starts[i]) < time.Minute {
				j++
			}
			if j-i > int(cpm) {
				t.Fatalf("cpm %d: %d starts in the minute from %s", cpm, j-i, starts[i].Sub(start))
			}
		}
		// And it is not much slower than asked: at least 97% over 3 minutes.
		if got, want := len(starts), int(3*float64(cpm)*0.97); got < want {
			t.Fatalf("cpm %d: %d starts in 3 minutes, want at least %d", cpm, got, want)
		}
	}
}

func TestPacerBurstIsOneSecondsShare(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for cpm, burst := range map[int32]int{30: 1, 60: 1, 600: 10, 60000: 1000} {
		p := newPacer(cpm)
		var tat time.Time
		n := 0
		for {
			next, ok := p.take(tat, now)
			if !ok {
				break
			}
			tat, n = next, n+1
		}
		if n != burst {
			t.Errorf("cpm %d: burst %d, want %d", cpm, n, burst)
		}
		if w := p.wait(tat, now); w <= 0 || w > p.interval {
			t.Errorf("cpm %d: wait %s after the burst, want (0, %s]", cpm, w, p.interval)
		}
	}
}

// TestPacerChargeAfterRestart: Calls found already made count against the
// bucket, so a restarted controller does not burst.
func TestPacerChargeAfterRestart(t *testing.T) {
	p := newPacer(60)
	now := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	tat := p.charge(time.Time{}, now.Add(-200*time.Millisecond))
	if _, ok := p.take(tat, now); ok {
		t.Fatal("a Call made 200ms ago at 60/min must hold the next one back")
	}
	if _, ok := p.take(tat, now.Add(800*time.Millisecond)); !ok {
		t.Fatal("one second after it the next Call may start")
	}
}

func TestEndpointSlots(t *testing.T) {
	cases := []struct {
		capacity, active int32
		own, want        int
	}{
		{10, 0, 0, 10},
		{10, 4, 0, 6},  // others hold 4
		{10, 4, 4, 10}, // all 4 are ours: ours count in inflight instead
		{10, 2, 5, 10}, // activeStreams lags behind our Calls
		{2, 5, 0, 0},
	}
	for _, c := range cases {
		if got := endpointSlots(c.capacity, c.active, c.own); got != c.want {
			t.Errorf("endpointSlots(%d, %d, %d) = %d, want %d", c.capacity, c.active, c.own, got, c.want)
		}
	}
}

func TestCallNames(t *testing.T) {
	long := strings.Repeat("spring-sale-", 20) + "x"
	if got, want := CallName("promo", "919800000001", 1), "promo-"+KeyHash("919800000001")+"-1"; got != want {
		t.Errorf("CallName = %q, want %q", got, want)
	}
	seen := map[string]bool{}
	for _, camp := range []string{long, long + "y", strings.Repeat("a", 48), strings.Repeat("a", 49), strings.Repeat("a", 60)} {
		for _, key := range []string{"919800000001", "CRM-000042", "a key, with spaces/and symbols"} {
			for _, n := range []int32{1, 2, 10} {
				name := CallName(camp, key, n)
				if len(name) > 63 {
					t.Errorf("CallName(%d chars, %q, %d) is %d long", len(camp), key, n, len(name))
				}
				if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
					t.Errorf("CallName(%q, %q, %d) = %q: %v", camp, key, n, name, errs)
				}
				if name != CallName(camp, key, n) {
					t.Errorf("CallName is not deterministic")
				}
				if seen[name] {
					t.Errorf("name %q given twice", name)
				}
				seen[name] = true
			}
		}
		if errs := validation.IsValidLabelValue(LabelValue(camp)); len(errs) > 0 {
			t.Errorf("LabelValue(%q): %v", camp, errs)
		}
	}
}
