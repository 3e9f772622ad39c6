package sim

import (
	"encoding/binary"
	"math"
	"time"
)

// A voicemail box answers with a greeting (speech-like bursts at
// VoicemailToneHz), then beeps (a steady VoicemailBeepHz tone) and records
// silence until the call ends. Played once from the answer, not looped.
const (
	VoicemailGreeting = 1500 * time.Millisecond
	VoicemailBeepAt   = 1600 * time.Millisecond
	VoicemailBeep     = 500 * time.Millisecond
)

// machineClip is the greeting and the beep, as one L16 clip.
func machineClip(rate int) pattern {
	end := VoicemailBeepAt + VoicemailBeep
	out := make([]byte, int(end.Seconds()*float64(rate))*2)
	greeting := speech(rate, VoicemailToneHz, voicemailTalk)
	for i := 0; i < len(out)/2; i++ {
		t := time.Duration(float64(i) / float64(rate) * float64(time.Second))
		var v int16
		switch {
		case t < VoicemailGreeting:
			j := i % (len(greeting) / 2)
			v = int16(binary.LittleEndian.Uint16(greeting[2*j:]))
		case t >= VoicemailBeepAt:
			v = int16(0.3 * math.MaxInt16 * math.Sin(2*math.Pi*VoicemailBeepHz*float64(i)/float64(rate)))
		}
		binary.LittleEndian.PutUint16(out[2*i:], uint16(v))
	}
	return out
}

// machineClock counts a stream's frames from the answer, so the box's clip
// starts there whenever the stream opened. Only the stream's sender uses it.
type machineClock struct {
	started bool
	first   int64
}

func (m *machineClock) frame(rp *ratePatterns, n int64) []byte {
	if !m.started {
		m.started, m.first = true, n
	}
	off := int(n-m.first) * rp.frameBytes
	if off+rp.frameBytes > len(rp.voicemail) {
		return rp.silence
	}
	return rp.voicemail[off : off+rp.frameBytes]
}
