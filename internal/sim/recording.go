package sim

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"time"
)

// recordingName is a recorded file's name the way TeleCMI's CDRs show it:
// digits (the start in epoch ms, then more) and the app id, .mp3.
func recordingName(appID int64) string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1e9))
	return fmt.Sprintf("%d%09d_%d.mp3", time.Now().UnixMilli(), n.Int64(), appID)
}

// addRecording adds the recording of a call whose PCMO had a record action
// to its leg-a CDR, under the keys TeleCMI's CDRs use (`record`,
// `filename`). TeleCMI documents them for its CHUB product; Piopiy's use of
// the same keys is inferred (docs/call.md).
func addRecording(c *call, cdr map[string]any) {
	c.mu.Lock()
	name := c.recording
	c.mu.Unlock()
	if name != "" {
		cdr["record"] = true
		cdr["filename"] = name
	}
}
