// Package agentpool runs the human side of callfleet: AgentPools and the
// handoff of a live AI call to one of their agents.
//
// Two reconcilers, one job each:
//
//   - PoolReconciler keeps an AgentPool's status true: one entry per agent in
//     spec order (an agent removed from spec stays listed while it still has
//     calls, which go on untouched), the Total/Available/Busy/Queued counts,
//     the Ready condition, the utilisation gauge, and a safety net that
//     releases reservations whose Call is gone, has ended or moved on.
//   - HandoffReconciler drives status.handoff of Calls: it reserves an agent
//     for a live, answered Call that asked for a human (spec.handoff.requested,
//     or the bot through the gateway), queues the Call when every agent is
//     busy, tries the next agent when one does not answer, times the queue
//     out into the Call's onNoAgent outcome, and releases the agent when the
//     call or the bridge ends. It writes only status.handoff of Calls (and a
//     HandoffMonitoring condition) and the reservations in AgentPool status;
//     never a spec.
//
// The stream gateway sends the bridge PCMO on the live socket once a Call's
// handoff is Ringing, and the webhook receiver (internal/callstate) folds the
// agent's leg into status.handoff: out_bridged makes it Bridged, the agent's
// hangup ends it, and a hangup or missed CDR while still ringing sends it
// back to Requested with the agent in triedAgents.
//
// # Never double-booked
//
// Reservations live in the AgentPool's status and every change to them is an
// Update carrying the resourceVersion that was read, so two writers (two
// workers, two managers) cannot both take an agent's last slot: one gets a
// conflict, re-reads and chooses again.
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
