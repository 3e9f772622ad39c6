package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StreamEndpointSpec is where calls stream to.
// +kubebuilder:validation:XValidation:rule="has(self.image) != has(self.external)",message="set exactly one of image (callfleet runs the bot) and external (a handler already running elsewhere)"
// +kubebuilder:validation:XValidation:rule="!has(self.ingress) || has(self.publicURL)",message="ingress needs publicURL: the wss:// URL Piopiy dials"
type StreamEndpointSpec struct {
	// image is the user's bot container image. The bot speaks callfleet's bot
	// protocol on localhost (or raw Piopiy frames when gateway.enabled is false).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`

	// replicas of the bot Deployment.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Replicas *int32 `json:"replicas,omitempty"`

	// port the bot listens on inside the pod (WebSocket on localhost).
	// +optional
	// +kubebuilder:default=8080
	// +kubebuilder:validation:Minimum=1024
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// env of the bot container.
	// +optional
	// +listType=map
	// +listMapKey=name
	Env []corev1.EnvVar `json:"env,omitempty"`

	// resources of the bot container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// maxStreamsPerReplica is how many concurrent calls one pod takes;
	// Campaigns never start more calls than the free slots this allows.
	// +optional
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MaxStreamsPerReplica int32 `json:"maxStreamsPerReplica,omitempty"`

	// audio defaults for Calls that do not set them.
	// +optional
	// +kubebuilder:default={}
	Audio AudioDefaults `json:"audio,omitempty"`

	// publicURL is the ws:// or wss:// URL at which Piopiy reaches this
	// endpoint; Calls put it in their PCMO's ws_url.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^wss?://[^\s]+$`
	PublicURL string `json:"publicURL,omitempty"`

	// ingress, when set, makes an Ingress routing publicURL's host to the
	// endpoint's Service.
	// +optional
	Ingress *IngressSpec `json:"ingress,omitempty"`

	// gateway configures callfleet's stream gateway container.
	// +optional
	// +kubebuilder:default={}
	Gateway GatewaySpec `json:"gateway,omitempty"`

	// external points at a handler already running elsewhere: no Deployment is
	// made and the endpoint is Ready while healthURL answers 2xx.
	// +optional
	External *ExternalEndpoint `json:"external,omitempty"`

	// drain says how a pod that is being stopped (scale-down, rollout, node
	// drain) lets its live calls end before it exits.
	// +optional
	// +kubebuilder:default={}
	Drain DrainPolicy `json:"drain,omitempty"`
}

// DrainPolicy is how a stopping pod ends its calls: it stops taking new
// streams at once, keeps its live calls until they end on their own or the
// grace period is nearly over, then ends the rest politely (the goodbye audio,
// then a hangup) instead of cutting the socket.
// +kubebuilder:validation:XValidation:rule="!has(self.gracePeriodSeconds) || self.gracePeriodSeconds == 0 || !has(self.goodbyeSeconds) || self.goodbyeSeconds < self.gracePeriodSeconds",message="goodbyeSeconds must be shorter than gracePeriodSeconds: the goodbye is played inside the grace period"
type DrainPolicy struct {
	// gracePeriodSeconds is how long a stopping pod keeps its live calls.
	// Unset: 600, the maximum duration a Call gets by default (a call placed
	// just before the pod stopped can then still end on its own); set it to
	// the spec.maxDurationSeconds of your longest Calls. Capped at 7200, the
	// longest a Call can last. The pod's terminationGracePeriodSeconds is
	// this plus 30 s for the final status writes.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=7200
	GracePeriodSeconds *int32 `json:"gracePeriodSeconds,omitempty"`
	// goodbyeURL is an audio file (http or https) played to callers still on
	// the line when the grace period is nearly over, before the hangup.
	// Unset: the call is hung up without a message.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	GoodbyeURL string `json:"goodbyeURL,omitempty"`
	// goodbyeSeconds is how long before the end of the grace period the
	// goodbye (or the bare hangup) is sent: the length of the goodbye audio
	// plus a little.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=300
	GoodbyeSeconds int32 `json:"goodbyeSeconds,omitempty"`
}

// AudioDefaults are the stream defaults of an endpoint.
type AudioDefaults struct {
	// sampleRate in Hz.
	// +optional
	// +kubebuilder:default=8000
	// +kubebuilder:validation:Enum=8000;16000;32000
	SampleRate int32 `json:"sampleRate,omitempty"`
	// listenMode whose voice is streamed.
	// +optional
	// +kubebuilder:default=caller
	ListenMode ListenMode `json:"listenMode,omitempty"`
}

// IngressSpec shapes the Ingress made for publicURL.
type IngressSpec struct {
	// className of the Ingress controller.
	// +optional
	ClassName *string `json:"className,omitempty"`
	// tlsSecretName holds the certificate for publicURL's host.
	// +optional
	TLSSecretName string `json:"tlsSecretName,omitempty"`
	// annotations for the Ingress, e.g. WebSocket timeouts of the controller.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// GatewaySpec configures the stream gateway container.
type GatewaySpec struct {
	// enabled runs callfleet's gateway beside the bot. Turn it off for a bot
	// that speaks Piopiy's raw stream protocol itself.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`
	// image of the gateway; defaults to the manager's --gateway-image.
	// +optional
	Image string `json:"image,omitempty"`
	// port the gateway listens on for Piopiy.
	// +optional
	// +kubebuilder:default=8443
	// +kubebuilder:validation:Minimum=1024
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
	// botReconnectSeconds is how long the gateway tries to reopen the bot's
	// socket when it drops mid-call (the bot container restarting), dropping
	// the caller's audio meanwhile, before it ends the call. 0 ends the call
	// at once.
	// +optional
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=600
	BotReconnectSeconds *int32 `json:"botReconnectSeconds,omitempty"`
}

// ExternalEndpoint is a handler callfleet does not run.
type ExternalEndpoint struct {
	// healthURL answers 2xx while the handler takes calls.
	// +required
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	HealthURL string `json:"healthURL"`
	// capacity is the number of concurrent streams the handler takes.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	Capacity int32 `json:"capacity,omitempty"`
}

// StreamEndpointStatus is the observed state of a StreamEndpoint.
type StreamEndpointStatus struct {
	// observedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// readyReplicas of the Deployment.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// url Piopiy dials (publicURL, else the in-cluster Service URL).
	// +optional
	URL string `json:"url,omitempty"`
	// capacity is the number of concurrent streams the ready pods take.
	// +optional
	Capacity int32 `json:"capacity,omitempty"`
	// activeStreams is the number of Calls streaming to this endpoint now.
	// +optional
	ActiveStreams int32 `json:"activeStreams,omitempty"`
	// freeSlots is how many more calls the endpoint takes now: on each ready
	// pod that is not draining, maxStreamsPerReplica minus its live streams
	// (external mode: capacity minus activeStreams). Pacing (Campaigns)
	// should start no more calls than this.
	// +optional
	FreeSlots int32 `json:"freeSlots,omitempty"`
	// drainingReplicas is the number of pods stopping while they let their
	// live calls end; they take no new calls.
	// +optional
	DrainingReplicas int32 `json:"drainingReplicas,omitempty"`
	// pods is the load of each of the endpoint's pods.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=1000
	Pods []EndpointPodStatus `json:"pods,omitempty"`
	// conditions: Ready, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// EndpointPodStatus is one pod of an endpoint and the calls it holds.
type EndpointPodStatus struct {
	// name of the pod.
	// +required
	Name string `json:"name"`
	// ready: the pod passes its readiness checks and takes new calls.
	// +optional
	Ready bool `json:"ready,omitempty"`
	// draining: the pod is stopping and takes no new calls.
	// +optional
	Draining bool `json:"draining,omitempty"`
	// activeStreams is the number of Calls whose stream this pod holds.
	// +optional
	ActiveStreams int32 `json:"activeStreams,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.readyReplicas
// +kubebuilder:resource:shortName=vse,categories=callfleet
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.activeStreams`
// +kubebuilder:printcolumn:name="Capacity",type=integer,JSONPath=`.status.capacity`
// +kubebuilder:printcolumn:name="Free",type=integer,JSONPath=`.status.freeSlots`
// +kubebuilder:printcolumn:name="Draining",type=integer,JSONPath=`.status.drainingReplicas`,priority=1
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// StreamEndpoint runs the WebSocket handlers (bot plus gateway) that calls
// stream their audio to.
type StreamEndpoint struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired endpoint.
	// +required
	Spec StreamEndpointSpec `json:"spec"`
	// status is what runs.
	// +optional
	Status StreamEndpointStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// StreamEndpointList is a list of StreamEndpoints.
type StreamEndpointList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StreamEndpoint `json:"items"`
}

func init() {
	register(&StreamEndpoint{}, &StreamEndpointList{})
}
