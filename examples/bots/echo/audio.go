package main

import (
	"encoding/binary"
	"math"
)

// greeting is a rising three-note chime: 150 ms notes with 50 ms gaps, L16
// at rate, so the caller hears that the bot is there.
func greeting(rate int) []byte {
	var out []byte
	for _, hz := range []float64{660, 880, 1100} {
		out = append(out, tone(rate, hz, 150)...)
		out = append(out, make([]byte, rate/20*2)...) // 50 ms
	}
	return out
}

// tone is ms of a sine at hz with 5 ms fades (no clicks), at -10 dBFS.
func tone(rate int, hz float64, ms int) []byte {
	n := rate * ms / 1000
	out := make([]byte, 2*n)
	fade := float64(rate) * 0.005
	for i := 0; i < n; i++ {
		env := math.Min(1, math.Min(float64(i), float64(n-1-i))/fade)
		v := 0.3 * math.MaxInt16 * env * math.Sin(2*math.Pi*hz*float64(i)/float64(rate))
		binary.LittleEndian.PutUint16(out[2*i:], uint16(int16(v)))
	}
	return out
}

// rms of an L16 frame.
func rms(pcm []byte) float64 {
	n := len(pcm) / 2
	if n == 0 {
		return 0
	}
	var sum float64
	for i := 0; i < n; i++ {
		s := float64(int16(binary.LittleEndian.Uint16(pcm[2*i:])))
		sum += s * s
	}
	return math.Sqrt(sum / float64(n))
}
