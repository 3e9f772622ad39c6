package sim

import (
	"crypto/rand"
	"fmt"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newRequestID returns a 43-character base62 id like Piopiy's request_id
// (not a UUID: clients must not parse it as one).
func newRequestID() string {
	out := make([]byte, 0, 43)
	var buf [64]byte
	for len(out) < 43 {
		_, _ = rand.Read(buf[:])
		for _, b := range buf {
			// 248 = 4*62: rejecting the rest keeps every symbol equally likely.
			if b < 248 && len(out) < 43 {
				out = append(out, base62[b%62])
			}
		}
	}
	return string(out)
}

// newCMIUUID returns a random v4 UUID string, the shape of a leg id.
func newCMIUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
