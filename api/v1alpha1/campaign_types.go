package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Contact is one person a Campaign rings.
type Contact struct {
	// number to ring: 7 to 16 digits, no '+'.
	// +required
	// +kubebuilder:validation:Pattern=`^[1-9][0-9]{6,15}$`
	Number string `json:"number"`
	// variables merged over the template's for this contact.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Variables map[string]string `json:"variables,omitempty"`
	// timeZone is the contact's IANA time zone; calling windows are read in it.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	TimeZone string `json:"timeZone,omitempty"`
}

// ContactSource is a CSV in a ConfigMap: a header row naming a `number`
// column, optional `timezone` column, and variable columns.
type ContactSource struct {
	// configMapRef names the ConfigMap.
	// +required
	ConfigMapRef LocalRef `json:"configMapRef"`
	// key of the CSV in the ConfigMap.
	// +optional
	// +kubebuilder:default=contacts.csv
	Key string `json:"key,omitempty"`
}

// CallingWindow is a daily range of local time when calls may start.
// +kubebuilder:validation:XValidation:rule="self.start < self.end",message="a calling window's start must be before its end (use two windows to span midnight)"
type CallingWindow struct {
	// days the window applies to; empty means every day.
	// +optional
	// +listType=set
	// +kubebuilder:validation:items:Enum=Mon;Tue;Wed;Thu;Fri;Sat;Sun
	Days []string `json:"days,omitempty"`
	// start time of day, HH:MM (24 h).
	// +required
	// +kubebuilder:validation:Pattern=`^([01][0-9]|2[0-3]):[0-5][0-9]$`
	Start string `json:"start"`
	// end time of day, HH:MM (24 h), exclusive.
	// +required
	// +kubebuilder:validation:Pattern=`^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$`
	End string `json:"end"`
}

// CampaignSchedule restricts when calls start.
type CampaignSchedule struct {
	// timeZone (IANA) the windows are read in for contacts without their own.
	// +optional
	// +kubebuilder:default=UTC
	// +kubebuilder:validation:MaxLength=64
	TimeZone string `json:"timeZone,omitempty"`
	// windows when calls may start; none means any time.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=14
	Windows []CallingWindow `json:"windows,omitempty"`
}

// CallTemplate is the Call made for each contact.
type CallTemplate struct {
	// labels added to each Call.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// annotations added to each Call.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// spec of each Call, without `to`.
	// +required
	// +kubebuilder:validation:XValidation:rule="has(self.agent) || has(self.streamEndpointRef) != (has(self.stream) && has(self.stream.url))",message="set exactly one of streamEndpointRef and stream.url, or agent for Piopiy v3 Calls"
	Spec CallParameters `json:"spec"`
}

// CampaignSpec is many Calls from a contact list.
// +kubebuilder:validation:XValidation:rule="(has(self.contacts) && size(self.contacts) > 0) || (has(self.contactsFrom) && size(self.contactsFrom) > 0)",message="a Campaign needs contacts or contactsFrom"
type CampaignSpec struct {
	// callTemplate shapes every Call.
	// +required
	CallTemplate CallTemplate `json:"callTemplate"`
	// contacts listed inline.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1000
	Contacts []Contact `json:"contacts,omitempty"`
	// contactsFrom lists CSVs in ConfigMaps, read after the inline contacts.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	ContactsFrom []ContactSource `json:"contactsFrom,omitempty"`
	// concurrency is the most Calls in flight at once; also never more than
	// the StreamEndpoint's free stream slots.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	Concurrency int32 `json:"concurrency,omitempty"`
	// callsPerMinute caps how fast new Calls start.
	// +optional
	// +kubebuilder:default=60
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=60000
	CallsPerMinute int32 `json:"callsPerMinute,omitempty"`
	// schedule restricts when calls start.
	// +optional
	Schedule *CampaignSchedule `json:"schedule,omitempty"`
	// doNotCallRef names a ConfigMap whose values (one number a line, under
	// any key) are never rung.
	// +optional
	DoNotCallRef *LocalRef `json:"doNotCallRef,omitempty"`
	// suspend stops new Calls; live ones go on.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
	// ttlSecondsAfterFinished deletes finished child Calls after this long
	// (their outcome is kept in the Campaign's counts).
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
	// successOutcomes count a Call as succeeded.
	// +optional
	// +listType=set
	// +kubebuilder:default={Answered}
	// +kubebuilder:validation:items:Enum=Answered;Busy;NoAnswer;Rejected;Voicemail;Failed;Canceled
	SuccessOutcomes []CallOutcome `json:"successOutcomes,omitempty"`
}

// InvalidContact is a contact row that was skipped.
type InvalidContact struct {
	// source is "inline" or the ConfigMap name.
	Source string `json:"source"`
	// line number in the CSV (1 is the header), or the index inline.
	Line int32 `json:"line"`
	// reason the row was skipped.
	Reason string `json:"reason"`
}

// CampaignStatus is the progress of a Campaign. The counters are always
// written, zeros included, so `kubectl get campaigns` shows 0, not blank.
type CampaignStatus struct {
	// observedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// total contacts: every inline entry and CSV data row, invalid ones
	// included (they end in skipped), so that once the campaign is done
	// total = succeeded + failed + skipped.
	// +optional
	Total int64 `json:"total"`
	// pending contacts the cursor has not reached yet.
	// +optional
	Pending int64 `json:"pending"`
	// active Calls in flight.
	// +optional
	Active int64 `json:"active"`
	// succeeded Calls (an outcome in successOutcomes).
	// +optional
	Succeeded int64 `json:"succeeded"`
	// failed Calls.
	// +optional
	Failed int64 `json:"failed"`
	// skipped contacts the cursor passed without a Call: do-not-call or
	// invalid rows.
	// +optional
	Skipped int64 `json:"skipped"`
	// cursor is the index of the next contact to start. Contact i is the
	// i-th inline entry, then the CSV data rows of contactsFrom in order.
	// +optional
	Cursor int64 `json:"cursor"`
	// paceTime is the pacing clock: each Call started moves it on by
	// 60s/callsPerMinute, and a Call may start once it is at most one
	// second's share of callsPerMinute ahead of now. Kept in status so a
	// restarted manager does not burst.
	// +optional
	PaceTime *metav1.MicroTime `json:"paceTime,omitempty"`
	// countedCalls lists the contact indexes of finished Calls whose outcome
	// is already in succeeded or failed but whose count finalizer is still
	// being removed. It makes each Call count exactly once across restarts;
	// it is usually empty and never longer than the Calls that finished
	// between two reconciles.
	// +optional
	// +listType=set
	CountedCalls []int64 `json:"countedCalls,omitempty"`
	// nextWindowTime is when calling may start again.
	// +optional
	NextWindowTime *metav1.Time `json:"nextWindowTime,omitempty"`
	// invalidContacts lists the first skipped rows and why.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	InvalidContacts []InvalidContact `json:"invalidContacts,omitempty"`
	// startTime is when the first Call was made.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// completionTime is when the last Call finished.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// conditions: Ready, Reconciling, Stalled, Suspended, InWindow.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vcp,categories=callfleet
// +kubebuilder:printcolumn:name="Total",type=integer,JSONPath=`.status.total`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.active`
// +kubebuilder:printcolumn:name="Succeeded",type=integer,JSONPath=`.status.succeeded`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.failed`
// +kubebuilder:printcolumn:name="Skipped",type=integer,JSONPath=`.status.skipped`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Campaign rings a contact list with pacing, calling windows and retries.
type Campaign struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the campaign.
	// +required
	Spec CampaignSpec `json:"spec"`
	// status is its progress.
	// +optional
	Status CampaignStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// CampaignList is a list of Campaigns.
type CampaignList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Campaign `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Campaign{}, &CampaignList{})
}
