package v1alpha1

// NotifySink is where callfleet posts CloudEvents about a Campaign and its
// Calls (docs/results.md).
type NotifySink struct {
	// url receives each event as an HTTP POST (CloudEvents 1.0, structured
	// JSON). A URL that does not parse is reported on the Campaign's
	// NotifyReady condition.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	URL string `json:"url"`
	// secretRef names a Secret in the Campaign's namespace holding the HMAC
	// key that signs every event (the Callfleet-Signature header).
	// +required
	SecretRef NotifySecretRef `json:"secretRef"`
}

// NotifySecretRef names the key of a Secret.
type NotifySecretRef struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// key in the Secret's data holding the HMAC key.
	// +optional
	// +kubebuilder:default=hmacKey
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// NotifyFinalizer holds a finished Call until its call.completed event is
// delivered. A Campaign with spec.notify creates its Calls with it (no
// extra write); the notifier adds it to other Calls once they are dialed.
const NotifyFinalizer = "notify.callfleet.dev/event"

// ConditionNotifyReady is the Campaign condition the event notifier owns:
// True when its sink (spec.notify, else the manager's default) is usable.
const ConditionNotifyReady = "NotifyReady"

// Reasons of ConditionNotifyReady.
const (
	ReasonSinkReady       = "SinkReady"
	ReasonNoSink          = "NoSink"
	ReasonInvalidSinkURL  = "InvalidSinkURL"
	ReasonSinkKeyNotFound = "SinkKeyNotFound"
	ReasonSinkUnreachable = "SinkUnreachable"
	ReasonSinkRejected    = "SinkRejected"
)
