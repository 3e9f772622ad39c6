package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Agent is one human who can take calls.
type Agent struct {
	// name identifies the agent in the pool.
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`
	Name string `json:"name"`
	// number the bridge dials: 7 to 16 digits, no '+'.
	// +required
	// +kubebuilder:validation:Pattern=`^[1-9][0-9]{6,15}$`
	// +kubebuilder:validation:MaxLength=16
	Number string `json:"number"`
	// maxConcurrentCalls the agent takes at once.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	MaxConcurrentCalls int32 `json:"maxConcurrentCalls,omitempty"`
	// skills the agent has; a Call's handoff.skills must all be present.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	Skills []string `json:"skills,omitempty"`
	// priority orders agents under the Priority strategy (higher first).
	// +optional
	Priority int32 `json:"priority,omitempty"`
	// paused agents get no new calls; their live calls go on.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// QueueSpec bounds the wait for a free agent.
type QueueSpec struct {
	// maxSize is the most Calls waiting at once; further requests fail at once.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	MaxSize int32 `json:"maxSize,omitempty"`
	// maxWaitSeconds a Call waits for an agent before its onNoAgent outcome.
	// +optional
	// +kubebuilder:default=120
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	MaxWaitSeconds int32 `json:"maxWaitSeconds,omitempty"`
	// holdAudioURL is played to the caller while queued: the stream gateway
	// sends a PCMO play of it on the live socket once, when the Call's
	// handoff becomes Queued. Calls streaming without a callfleet gateway do
	// not hear it.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	HoldAudioURL string `json:"holdAudioURL,omitempty"`
}

// AgentPoolSpec is the set of humans calls are handed to.
// +kubebuilder:validation:XValidation:rule="self.agents.all(a, self.agents.exists_one(b, b.number == a.number))",message="each agent number may appear once in a pool"
type AgentPoolSpec struct {
	// agents in the pool.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	Agents []Agent `json:"agents"`
	// strategy picks among free agents.
	// +optional
	// +kubebuilder:default=RoundRobin
	// +kubebuilder:validation:Enum=RoundRobin;LeastRecentlyUsed;Priority
	Strategy string `json:"strategy,omitempty"`
	// ringTimeoutSeconds an agent's phone rings before the next agent is tried.
	// +optional
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=5
	// +kubebuilder:validation:Maximum=120
	RingTimeoutSeconds int32 `json:"ringTimeoutSeconds,omitempty"`
	// queue bounds the wait when every agent is busy.
	// +optional
	// +kubebuilder:default={}
	Queue QueueSpec `json:"queue,omitempty"`
}

// AgentReservation is one call an agent is booked for.
type AgentReservation struct {
	// call is the name of the Call.
	Call string `json:"call"`
	// since is when the agent was reserved.
	Since metav1.Time `json:"since"`
	// callResourceVersion is the Call's resourceVersion the reservation was
	// made against. The Call is then bound to the agent by a status write
	// conditional on that version, so once the Call has changed a
	// reservation it does not show can never bind and is released.
	// +optional
	CallResourceVersion string `json:"callResourceVersion,omitempty"`
}

// QueuedCall is one Call waiting for a free agent.
type QueuedCall struct {
	// call is the name of the Call.
	Call string `json:"call"`
	// since is when the Call joined the queue.
	Since metav1.Time `json:"since"`
}

// AgentStatus is the live state of one agent.
type AgentStatus struct {
	// name of the agent.
	Name string `json:"name"`
	// reservations are the calls this agent is booked for.
	// +optional
	// +listType=atomic
	Reservations []AgentReservation `json:"reservations,omitempty"`
	// lastAssignedTime is when the agent last got a call.
	// +optional
	LastAssignedTime *metav1.Time `json:"lastAssignedTime,omitempty"`
}

// AgentPoolStatus is the observed state of an AgentPool.
type AgentPoolStatus struct {
	// observedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// agents' live state; reservations are made by optimistic concurrency on
	// this status, so an agent is never double-booked.
	// +optional
	// +listType=map
	// +listMapKey=name
	Agents []AgentStatus `json:"agents,omitempty"`
	// total agents in the pool.
	// +optional
	Total int32 `json:"total,omitempty"`
	// available agents with a free slot and not paused.
	// +optional
	Available int32 `json:"available,omitempty"`
	// busy agents with at least one call.
	// +optional
	Busy int32 `json:"busy,omitempty"`
	// queued Calls waiting for an agent (the length of queue).
	// +optional
	Queued int32 `json:"queued,omitempty"`
	// queue lists the Calls waiting for a free agent, in the order they
	// joined. A Call joins by an optimistic write on this status, so
	// spec.queue.maxSize holds however many Calls ask at once.
	// +optional
	// +listType=map
	// +listMapKey=call
	// +kubebuilder:validation:MaxItems=10000
	Queue []QueuedCall `json:"queue,omitempty"`
	// abandoned counts the callers who hung up while waiting for an agent
	// of this pool (queued, or an agent ringing), since the pool was made.
	// +optional
	Abandoned int64 `json:"abandoned,omitempty"`
	// roundRobinNext is the index the RoundRobin strategy tries first.
	// +optional
	RoundRobinNext int32 `json:"roundRobinNext,omitempty"`
	// conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vap,categories=callfleet
// +kubebuilder:printcolumn:name="Agents",type=integer,JSONPath=`.status.total`
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=`.status.available`
// +kubebuilder:printcolumn:name="Busy",type=integer,JSONPath=`.status.busy`
// +kubebuilder:printcolumn:name="Queued",type=integer,JSONPath=`.status.queued`
// +kubebuilder:printcolumn:name="Abandoned",type=integer,JSONPath=`.status.abandoned`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// AgentPool is the humans calls are handed to, never double-booked.
type AgentPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec lists the agents.
	// +required
	Spec AgentPoolSpec `json:"spec"`
	// status is who is on which call.
	// +optional
	Status AgentPoolStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// AgentPoolList is a list of AgentPools.
type AgentPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AgentPool `json:"items"`
}

func init() {
	register(&AgentPool{}, &AgentPoolList{})
}
