package harness

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds or timeout passes, then fails the test
// with the last state cond described. Deadlines are generous: they bound a
// hung test, they do not measure speed.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last state: %s", what, last)
}
