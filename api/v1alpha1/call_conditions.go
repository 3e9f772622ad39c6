package v1alpha1

// Call condition types and reasons of the stream connect timeout and the
// CDR lookups (issue #16).
const (
	// ConditionStreamConnected is False, reason ReasonStreamConnectTimeout,
	// once callfleet hung up a call whose stream did not connect within
	// spec.stream.connectTimeoutSeconds of the answer.
	ConditionStreamConnected   = "StreamConnected"
	ReasonStreamConnectTimeout = "StreamConnectTimeout"

	// ConditionCDRLookup is False, reason ReasonAccountRefused, when
	// Piopiy's CDR lookup answers "not found" and the account's credentials
	// are known to be refused: the 404 then says nothing about the call, and
	// the attempt is ended at once rather than after the settle timeout.
	ConditionCDRLookup   = "CDRLookup"
	ReasonAccountRefused = "AccountRefused"
)
