// Package controllertest runs the stream gateway with callfleet's real Call
// and StreamEndpoint controllers (test/harness) against piopiy-sim, to prove
// that what the controller signs and dials is what the gateway accepts, and
// that both write the Call's status without undoing each other.
package controllertest
