package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// The vocabulary of a Call's handoff to a human (status.handoff), shared by
// the handoff controller, the stream gateway and the webhook receiver.

// Sources of a handoff (status.handoff.source).
const (
	HandoffSourceSpec = "Spec"
	HandoffSourceBot  = "Bot"
)

// Values of spec.handoff.onNoAgent and status.handoff.onNoAgent.
const (
	OnNoAgentReturnToBot = "ReturnToBot"
	OnNoAgentHangup      = "Hangup"
)

// HandoffOutcome is how a handoff turned out, in the terms a contact centre
// counts its queue by.
// +kubebuilder:validation:Enum=Bridged;TimedOut;Abandoned;Failed
type HandoffOutcome string

const (
	// HandoffOutcomeBridged: an agent answered.
	HandoffOutcomeBridged HandoffOutcome = "Bridged"
	// HandoffOutcomeTimedOut: no agent answered within the queue's
	// maxWaitSeconds.
	HandoffOutcomeTimedOut HandoffOutcome = "TimedOut"
	// HandoffOutcomeAbandoned: the caller hung up while waiting for an agent
	// (queued, or an agent ringing).
	HandoffOutcomeAbandoned HandoffOutcome = "Abandoned"
	// HandoffOutcomeFailed: the handoff could not go on (no such pool, no
	// agent with the skills, a full queue, no bridge sent, ...); the reason
	// says why.
	HandoffOutcomeFailed HandoffOutcome = "Failed"
)

// ConditionHandoffMonitoring is set on a Call whose handoff keeps the
// stream: False when stream.listenMode cannot carry the agent's voice.
const ConditionHandoffMonitoring = "HandoffMonitoring"

// Reasons of ConditionHandoffMonitoring.
const (
	ReasonListenModeBoth   = "ListenModeBoth"
	ReasonListenModeCallee = "ListenModeCallee"
	ReasonListenModeCaller = "ListenModeCaller"
)

// Reasons of the AgentPool's Ready condition.
const (
	ReasonAgentsListed    = "AgentsListed"
	ReasonAllAgentsPaused = "AllAgentsPaused"
)

// HandoffMissedLeg is one agent leg of a handoff, by its assignment.
type HandoffMissedLeg struct {
	// assignment is the status.handoff.assignment the leg was rung for.
	Assignment int32 `json:"assignment"`
	// agent is the agent's name in the pool.
	Agent string `json:"agent"`
	// number the bridge dialed.
	Number string `json:"number"`
	// assignedTime is when the agent was assigned.
	// +optional
	AssignedTime *metav1.Time `json:"assignedTime,omitempty"`
	// endedTime is when the leg ended (its hangup).
	// +optional
	EndedTime *metav1.Time `json:"endedTime,omitempty"`
}
