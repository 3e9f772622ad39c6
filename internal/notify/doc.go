// Package notify posts CloudEvents about Calls and Campaigns to the user's
// own HTTP sink: call.completed once a Call is done, and campaign.started,
// suspended, resumed, completed and stopped as a Campaign's status moves.
//
// Delivery is at least once and never relies on memory. What is still owed
// is read from the cluster on every pass: a finished Call without the
// delivered annotation, a Campaign's ledger annotation entries not yet
// marked delivered. A finalizer keeps a finished Call until its event is
// out, so deleting it (ttlSecondsAfterFinished) loses nothing; a sink that
// is down is retried with backoff; a manager that restarts picks up where
// the cluster says it was. Each event has a stable id for deduplication and
// an HMAC-SHA256 signature header (Sign, Verify).
//
// The notifier runs in its own controllers with their own workers and
// touches neither dialing nor the Call controller's status fields.
package notify
