// Package agentpool runs AgentPools, the humans callfleet hands calls to,
// and keeps their bookings: the Ledger.
//
// PoolReconciler keeps an AgentPool's status true: one entry per agent in
// spec order (an agent removed from spec stays listed while it still has
// calls, which go on untouched), the Total/Available/Busy/Queued counts,
// the Ready condition, the utilisation and queue gauges, and a safety net
// that releases bookings whose Call is gone, has ended or moved on (a caller
// who hung up while waiting is counted in status.abandoned).
//
// The handoff controller (internal/controller/handoff) books agents and
// queue places through the Ledger.
//
// # Never double-booked
//
// Bookings live in the AgentPool's status and every change to them is an
// Update carrying the resourceVersion that was read, so two writers (two
// workers, two managers) cannot both take an agent's last slot, or the
// queue's: one gets a conflict, re-reads and chooses again.
//
// A reservation is made first and the Call bound to it second, by a status
// write conditional on the Call's resourceVersion the reservation recorded
// (callResourceVersion). Hence a reservation the Call does not show can only
// still bind while the Call is unchanged, and a reservation is released only
// when, read after the pool version being written, the Call is gone or has
// changed without showing it. A writer that crashed between the two steps
// leaves a reservation the next reconcile adopts or, once the Call moves on,
// releases.
package agentpool
