// Package failpoint lets the crash tests kill the manager at the exact points
// where at-most-once dialing could break: between writing an attempt's intent
// and the POST, and between the POST and recording its result.
//
// It does nothing unless the environment variable CALLFLEET_FAILPOINTS names
// the point (comma-separated), which only test/e2e sets.
package failpoint

import (
	"os"
	"strings"
	"syscall"
)

// EnvVar lists the armed failpoints.
const EnvVar = "CALLFLEET_FAILPOINTS"

// Points in the Call controller's dial path.
const (
	DialAfterIntent = "dial-after-intent"
	DialAfterPost   = "dial-after-post"
)

var armed = parse(os.Getenv(EnvVar))

func parse(v string) map[string]bool {
	if v == "" {
		return nil
	}
	m := map[string]bool{}
	for _, p := range strings.Split(v, ",") {
		m[strings.TrimSpace(p)] = true
	}
	return m
}

// Crash kills the process with SIGKILL, as a node failure or OOM kill would,
// when name is armed: no deferred functions, no flushing, no goodbyes.
func Crash(name string) {
	if armed[name] {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not delivered synchronously; never return
	}
}
