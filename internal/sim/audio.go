package sim

import (
	"encoding/binary"
	"math"
	"sync/atomic"
	"time"
)

// Tone frequencies of the generated speech-like audio, one per party, so a
// test can tell whose voice a frame carries (e.g. with a Goertzel filter).
const (
	CallerToneHz    = 440  // leg a: the person dialled
	AgentToneHz     = 1100 // leg b: the bridged agent
	VoicemailToneHz = 700  // leg a when a voicemail box answered: its greeting
	VoicemailBeepHz = 1000 // the box's beep after the greeting (a steady tone)
)

// FrameInterval is the cadence of binary frames to the stream socket.
const FrameInterval = 20 * time.Millisecond

// Each party "talks" in a fixed window of every second, caller first and
// agent second, so mixed audio sounds like turn taking.
var (
	callerTalk    = [2]time.Duration{0, 450 * time.Millisecond}
	agentTalk     = [2]time.Duration{500 * time.Millisecond, 950 * time.Millisecond}
	voicemailTalk = [2]time.Duration{0, 900 * time.Millisecond}
)

// pattern is one second of L16 mono little-endian audio, looped.
type pattern []byte

// audioBank holds the precomputed patterns so sending a frame never allocates.
type audioBank struct {
	rates map[int]*ratePatterns
}

type ratePatterns struct {
	frameBytes int
	caller     pattern
	agent      pattern
	voicemail  pattern
	silence    []byte // one frame of zeros
}

func newAudioBank() *audioBank {
	b := &audioBank{rates: map[int]*ratePatterns{}}
	for _, rate := range []int{8000, 16000, 32000} {
		b.rates[rate] = &ratePatterns{
			frameBytes: rate / 50 * 2,
			caller:     speech(rate, CallerToneHz, callerTalk),
			agent:      speech(rate, AgentToneHz, agentTalk),
			voicemail:  machineClip(rate),
			silence:    make([]byte, rate/50*2),
		}
	}
	return b
}

// speech makes one second of a tone in syllable-like bursts inside the talk
// window, silence outside it.
func speech(rate int, hz float64, talk [2]time.Duration) pattern {
	out := make([]byte, rate*2)
	const amp = 0.3 * math.MaxInt16
	syl := 0.150 // s per syllable
	for i := 0; i < rate; i++ {
		t := float64(i) / float64(rate)
		td := time.Duration(t * float64(time.Second))
		v := 0.0
		if td >= talk[0] && td < talk[1] {
			rel := (td - talk[0]).Seconds()
			env := 0.35 + 0.65*math.Pow(math.Sin(math.Pi*rel/syl), 2)
			// 5 ms fades keep the window edges click-free.
			fade := math.Min(1, math.Min(rel, (talk[1]-td).Seconds())/0.005)
			v = amp * env * fade * math.Sin(2*math.Pi*hz*t)
		}
		binary.LittleEndian.PutUint16(out[2*i:], uint16(int16(v)))
	}
	return out
}

// frame returns frame n of the pattern (a sub-slice, no copy).
func (p pattern) frame(n int64, frameBytes int) []byte {
	per := int64(len(p) / frameBytes)
	off := int(n%per) * frameBytes
	return p[off : off+frameBytes]
}

// mix adds two L16 frames into dst with saturation.
func mix(dst, a, b []byte) []byte {
	dst = dst[:len(a)]
	for i := 0; i+1 < len(a); i += 2 {
		s := int32(int16(binary.LittleEndian.Uint16(a[i:]))) + int32(int16(binary.LittleEndian.Uint16(b[i:])))
		s = max(math.MinInt16, min(math.MaxInt16, s))
		binary.LittleEndian.PutUint16(dst[i:], uint16(int16(s)))
	}
	return dst
}

// latencyHist is a lock-free histogram of sender lateness: how long after
// its 20 ms slot each frame's write began. 50 µs buckets up to 100 ms.
type latencyHist struct {
	buckets [2001]atomic.Int64
	max     atomic.Int64
	n       atomic.Int64
}

const latBucket = 50 * time.Microsecond

func newLatencyHist() *latencyHist { return &latencyHist{} }

func (h *latencyHist) observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := int(d / latBucket)
	if i >= len(h.buckets) {
		i = len(h.buckets) - 1
	}
	h.buckets[i].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

func (h *latencyHist) reset() {
	for i := range h.buckets {
		h.buckets[i].Store(0)
	}
	h.max.Store(0)
	h.n.Store(0)
}

// LatenessReport summarises sender lateness. Quantiles are bucket upper
// bounds (50 µs resolution); Max is exact.
type LatenessReport struct {
	Frames  int64         `json:"frames"`
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	P999    time.Duration `json:"p999_ns"`
	Max     time.Duration `json:"max_ns"`
	Over5ms int64         `json:"over_5ms"`
}

func (h *latencyHist) report() LatenessReport {
	counts := make([]int64, len(h.buckets))
	var total int64
	for i := range h.buckets {
		counts[i] = h.buckets[i].Load()
		total += counts[i]
	}
	r := LatenessReport{Frames: total, Max: time.Duration(h.max.Load())}
	if total == 0 {
		return r
	}
	q := func(p float64) time.Duration {
		want := int64(math.Ceil(p * float64(total)))
		var acc int64
		for i, c := range counts {
			acc += c
			if acc >= want {
				return time.Duration(i+1) * latBucket
			}
		}
		return r.Max
	}
	r.P50, r.P99, r.P999 = q(0.50), q(0.99), q(0.999)
	for i := int(5 * time.Millisecond / latBucket); i < len(counts); i++ {
		r.Over5ms += counts[i]
	}
	return r
}
