// Package resultstest runs what happened on each call end to end: the real
// Call controller and webhook receiver (test/harness), piopiy-sim, the
// stream gateway and the echo bot (examples/bots/echo, built and run as a
// process), against a real kube-apiserver. See docs/results.md.
package resultstest
