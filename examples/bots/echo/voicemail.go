package main

import (
	"encoding/binary"
	"math"
)

// beepDetector spots an answering machine's beep: a steady tone at one
// frequency that holds most of the frame's energy for a while. Speech moves
// in pitch and loudness and never holds one bin that long.
type beepDetector struct {
	rate   int
	hz     float64
	minMs  int     // how long the tone must hold
	floor  float64 // RMS below which a frame is silence
	heldMs int
	fired  bool
}

// feed takes one L16 frame and reports true once, when the beep has held
// for minMs.
func (d *beepDetector) feed(pcm []byte, frameMs int) bool {
	if d.fired || d.hz <= 0 {
		return false
	}
	if rms(pcm) > d.floor && toneShare(pcm, d.rate, d.hz) > 0.6 {
		d.heldMs += frameMs
	} else {
		d.heldMs = 0
	}
	if d.heldMs >= d.minMs {
		d.fired = true
		return true
	}
	return false
}

// toneShare is the share of the frame's energy at hz (Goertzel).
func toneShare(pcm []byte, rate int, hz float64) float64 {
	n := len(pcm) / 2
	if n == 0 {
		return 0
	}
	coeff := 2 * math.Cos(2*math.Pi*hz/float64(rate))
	var s1, s2, energy float64
	for i := 0; i < n; i++ {
		x := float64(int16(binary.LittleEndian.Uint16(pcm[2*i:])))
		energy += x * x
		s0 := x + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	if energy == 0 {
		return 0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2 // |X(hz)|^2
	// A pure tone of n samples puts n/2 * energy into its bin.
	return power / (float64(n) / 2 * energy)
}
