package v1alpha1

// Condition types shared by every kind. Ready, Reconciling and Stalled follow
// kstatus (sigs.k8s.io/cli-utils/pkg/kstatus), so `kubectl wait`, Flux and
// Argo CD understand progress without knowing callfleet.
const (
	// ConditionReady is the summary: True when the object has reached what its
	// spec asks for (for a Call: it has ended and its outcome is recorded).
	ConditionReady = "Ready"
	// ConditionReconciling is True while the controller is working towards the
	// spec's current generation.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when progress needs a change of spec or of a
	// referenced object; the reason says which.
	ConditionStalled = "Stalled"
)

// ListenMode chooses whose voice Piopiy streams to the handler.
// +kubebuilder:validation:Enum=caller;callee;both
type ListenMode string

const (
	ListenCaller ListenMode = "caller"
	ListenCallee ListenMode = "callee"
	ListenBoth   ListenMode = "both"
)

// SecretRef names a Secret in the object's namespace.
type SecretRef struct {
	// name of the Secret. It must hold the keys `appId` (digits) and `secret`
	// (Piopiy v2), or `token` and optionally `appId` (Piopiy v3).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// LocalRef names another callfleet object in the same namespace.
type LocalRef struct {
	// name of the referenced object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}
