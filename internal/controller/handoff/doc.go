// Package handoff hands live AI calls to the human agents of an AgentPool.
//
// The Reconciler drives status.handoff of Calls: it books an agent for a
// live, answered Call that asked for a human (spec.handoff.requested, or the
// bot through the gateway), queues the Call when every agent is busy, tries
// the next agent when one does not answer, times the queue out into the
// Call's onNoAgent outcome, and releases the agent when the call or the
// bridge ends. It writes only status.handoff of Calls (and the
// HandoffMonitoring condition), once per pass, and the bookings in AgentPool
// status through the agentpool.Ledger; never a spec.
//
// A pass reads top to bottom: fetch the Call, make a scope (a working copy
// and the status as read), run the phase of the handoff, write the Call's
// status once (deferred, conditional on the version read), and only then act
// on what the write made true: release bookings, hang up for onNoAgent, and
// derive Events and metrics by comparing the status before and after.
//
// State lives in typed fields: status.handoff.assignment counts the agents
// assigned (the gateway sends one bridge per assignment), outcome says how
// the handoff turned out (Bridged, TimedOut, Abandoned, Failed) and
// onNoAgent what applied when no agent took the call.
//
// Carrying out the bridge is one step behind the Bridger interface: with
// Piopiy v2 the stream gateway sends the bridge PCMO on the live socket once
// the handoff is Ringing (GatewayBridge only follows it).
//
// The webhook receiver (internal/callstate) folds the agent's leg into
// status.handoff: out_bridged (or the leg's answered CDR) makes it Bridged,
// the agent's hangup ends it, and a missed leg while still ringing sends it
// back to Requested with the agent in triedAgents.
//
// A spec.agent Call runs on Piopiy v3, which has neither a gateway nor
// webhooks, so no Bridger fits: while such a handoff is Ringing the
// Reconciler itself starts a warm transfer of the live call to the agent
// (POST /calls/{id}/actions/transfer, once per assignment, recorded as
// status.handoff.transferRequestID with bridgeSentTime) and reads it back
// each pass (GET /transfers/{id}): completed is Bridged, a failure (busy,
// no_answer, ...) tries the next agent, a failure _and_call_ended is
// Abandoned. The Call controller's polling sees the call end, which ends a
// Bridged handoff as on v2. onNoAgent Hangup uses v3's hangup action.
package handoff
