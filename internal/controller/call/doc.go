// Package call reconciles Call objects: it waits for the Call's
// StreamEndpoint, dials Piopiy at most once per attempt, settles ambiguous
// creates, retries by policy, and hangs up on request or deletion.
//
// At-most-once dialing (design.md): Piopiy's make-call has no idempotency key,
// so each attempt is written to status (state Intent) before the POST and its
// id travels in extra_params. An attempt found in Intent or Unknown state is
// never redialled: it is settled by a webhook carrying its id or request id, by
// a CDR lookup, or, when Piopiy never shows the call, ended as Failed after the
// settle timeout without a retry.
package call
