package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Contact is one person a Campaign rings.
type Contact struct {
	// id identifies the contact across edits of the list (a CRM's id). Without
	// it the contact is identified by its number.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[^\s,"]+$`
	ID string `json:"id,omitempty"`
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
	// +kubebuilder:validation:XValidation:rule="self == 'UTC' || (self != 'Local' && timestamp('2000-01-01T00:00:00Z').getHours(self) >= 0)",message="timeZone must be an IANA time zone such as Asia/Kolkata or UTC"
	TimeZone string `json:"timeZone,omitempty"`
}

// ContactSource is a CSV in a ConfigMap: a header row naming a `number`
// column, optional `id` and `timezone` columns, and variable columns.
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
	// timeZone (IANA) the windows, blackout dates and the dates of
	// startTime/deadline are read in for contacts without their own.
	// +optional
	// +kubebuilder:default=UTC
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self == 'UTC' || (self != 'Local' && timestamp('2000-01-01T00:00:00Z').getHours(self) >= 0)",message="timeZone must be an IANA time zone such as Asia/Kolkata or UTC"
	TimeZone string `json:"timeZone,omitempty"`
	// windows when calls may start; none means any time.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=14
	Windows []CallingWindow `json:"windows,omitempty"`
	// startTime: no attempt starts before it (RFC 3339).
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// deadline: no attempt starts at or after it (RFC 3339); Calls in flight
	// finish, contacts waiting for a retry end with their last outcome, and
	// the Campaign is done.
	// +optional
	Deadline *metav1.Time `json:"deadline,omitempty"`
	// blackoutDates are whole days (YYYY-MM-DD, in each contact's zone) when
	// no attempt starts: holidays.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=366
	// +kubebuilder:validation:items:Pattern=`^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$`
	BlackoutDates []string `json:"blackoutDates,omitempty"`
}

// CampaignRetryPolicy is how a contact whose last attempt ended with one
// outcome is recycled.
type CampaignRetryPolicy struct {
	// outcome of the last attempt this policy applies to.
	// +required
	// +kubebuilder:validation:XValidation:rule="self in ['NoAnswer', 'Busy', 'Failed', 'Voicemail']",message="a retry policy is for NoAnswer, Busy, Failed or Voicemail: an answered, rejected or canceled contact is not rung again"
	Outcome CallOutcome `json:"outcome"`
	// delaySeconds after the last attempt ended before the next may start
	// (when the window, pacing and the rest allow).
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=604800
	DelaySeconds int32 `json:"delaySeconds,omitempty"`
	// maxAttempts is the most attempts the contact gets, the first included,
	// when its last attempt ended with this outcome.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	MaxAttempts int32 `json:"maxAttempts,omitempty"`
}

// CampaignRetry recycles contacts by the outcome of their last attempt.
// Every attempt is granted by the Campaign, under its rules.
type CampaignRetry struct {
	// policies, at most one per outcome. An outcome without a policy ends
	// the contact.
	// +optional
	// +listType=map
	// +listMapKey=outcome
	// +kubebuilder:validation:MaxItems=4
	Policies []CampaignRetryPolicy `json:"policies,omitempty"`
}

// StopMode says what happens to the Calls in flight when a Campaign stops.
// +kubebuilder:validation:Enum=Finish;Hangup
type StopMode string

const (
	// StopFinish lets live calls end on their own.
	StopFinish StopMode = "Finish"
	// StopHangup hangs up live calls (spec.hangup on each).
	StopHangup StopMode = "Hangup"
)

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
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.stop) || !oldSelf.stop || (has(self.stop) && self.stop)",message="stop cannot be undone: a stopped Campaign is over; create a new one"
// +kubebuilder:validation:XValidation:rule="!has(self.schedule) || !has(self.schedule.startTime) || !has(self.schedule.deadline) || self.schedule.deadline > self.schedule.startTime",message="schedule.deadline must be after schedule.startTime"
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
	// schedule restricts when attempts start.
	// +optional
	Schedule *CampaignSchedule `json:"schedule,omitempty"`
	// retry recycles contacts by outcome. When unset, callTemplate.spec.retry
	// is converted: each of its outcomes gets its backoff and maxAttempts.
	// Either way the Campaign's Calls are single attempts (maxAttempts 1)
	// and the Campaign grants each next attempt itself.
	// +optional
	Retry *CampaignRetry `json:"retry,omitempty"`
	// doNotCallRef names a ConfigMap whose values (one number a line, under
	// any key) are never rung.
	// +optional
	DoNotCallRef *LocalRef `json:"doNotCallRef,omitempty"`
	// suspend holds new Calls and retries; live ones go on.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
	// stop ends the Campaign for good: no new Calls and no further attempts;
	// contacts waiting for a retry end with their last outcome.
	// +optional
	Stop bool `json:"stop,omitempty"`
	// stopMode: Finish lets live calls end on their own, Hangup hangs them up.
	// +optional
	// +kubebuilder:default=Finish
	StopMode StopMode `json:"stopMode,omitempty"`
	// ttlSecondsAfterFinished deletes finished child Calls after this long
	// (their outcome is kept in the results record and the counts).
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
	// successOutcomes count a contact as succeeded (by its final outcome);
	// Voicemail is not among the defaults.
	// +optional
	// +listType=set
	// +kubebuilder:default={Answered}
	// +kubebuilder:validation:items:Enum=Answered;Busy;NoAnswer;Rejected;Voicemail;Failed;Canceled
	SuccessOutcomes []CallOutcome `json:"successOutcomes,omitempty"`
	// notify posts signed CloudEvents about this Campaign and its Calls to
	// a sink of yours (docs/results.md); without it the manager's default
	// sink, if any, is used.
	// +optional
	Notify *NotifySink `json:"notify,omitempty"`
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

// SourceStatus counts the rows of one contact source exactly.
type SourceStatus struct {
	// name is "inline" or the ConfigMap name.
	Name string `json:"name"`
	// rows read (CSV data rows, or inline entries).
	Rows int64 `json:"rows"`
	// invalid rows, however many (invalidContacts lists a sample).
	Invalid int64 `json:"invalid"`
	// duplicates: rows whose number or id an earlier row already has.
	Duplicates int64 `json:"duplicates"`
}

// CampaignResults says where the per-contact results record is.
type CampaignResults struct {
	// configMaps holding the record, in order (`<campaign>-results-NNN`,
	// key results.csv).
	// +optional
	// +listType=atomic
	ConfigMaps []string `json:"configMaps,omitempty"`
	// recorded contacts: done, with their final outcome.
	Recorded int64 `json:"recorded"`
}

// CampaignStatus is the progress of a Campaign. The counters are always
// written, zeros included, so `kubectl get campaigns` shows 0, not blank.
type CampaignStatus struct {
	// observedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// total contacts: every inline entry and CSV data row, invalid ones and
	// duplicates included, so that once the campaign is done
	// total = succeeded + failed + skipped (while no done contact has been
	// removed from the list).
	// +optional
	Total int64 `json:"total"`
	// pending contacts never attempted yet.
	// +optional
	Pending int64 `json:"pending"`
	// active Calls in flight.
	// +optional
	Active int64 `json:"active"`
	// waiting contacts: attempted, waiting for their next attempt.
	// +optional
	Waiting int64 `json:"waiting"`
	// succeeded contacts (final outcome in successOutcomes).
	// +optional
	Succeeded int64 `json:"succeeded"`
	// failed contacts (any other final outcome).
	// +optional
	Failed int64 `json:"failed"`
	// skipped contacts never called: invalid rows, duplicates, and numbers
	// on the do-not-call list as it stands.
	// +optional
	Skipped int64 `json:"skipped"`
	// duplicates: rows whose number or id an earlier row already has (in
	// skipped too).
	// +optional
	Duplicates int64 `json:"duplicates"`
	// outcomes counts the done contacts by final outcome.
	// +optional
	Outcomes map[string]int64 `json:"outcomes,omitempty"`
	// dispositions counts the done contacts by the disposition reported
	// (at most 50 distinct; the rest under "other").
	// +optional
	Dispositions map[string]int64 `json:"dispositions,omitempty"`
	// results is the per-contact results record.
	// +optional
	Results *CampaignResults `json:"results,omitempty"`
	// sources counts each contact source's rows exactly.
	// +optional
	// +listType=atomic
	Sources []SourceStatus `json:"sources,omitempty"`
	// paceTime is the pacing clock: each attempt started moves it on by
	// 60s/callsPerMinute, and an attempt may start once it is at most one
	// second's share of callsPerMinute ahead of now. Kept in status so a
	// restarted manager does not burst.
	// +optional
	PaceTime *metav1.MicroTime `json:"paceTime,omitempty"`
	// nextWindowTime is the earliest time a contact now outside its calling
	// window (or blackout day, or before startTime) may be called.
	// +optional
	NextWindowTime *metav1.Time `json:"nextWindowTime,omitempty"`
	// waitingForWindow contacts are due but outside their window.
	// +optional
	WaitingForWindow int64 `json:"waitingForWindow,omitempty"`
	// nextAttemptTime is when the earliest retry falls due.
	// +optional
	NextAttemptTime *metav1.Time `json:"nextAttemptTime,omitempty"`
	// invalidContacts lists a sample of the skipped rows and why (exact
	// counts are in sources).
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
	// conditions: Ready, Reconciling, Stalled, Suspended, Stopped, InWindow.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Labels and annotations a Campaign puts on its Calls and results record.
const (
	// LabelCampaign names the Campaign on its Calls and results ConfigMaps
	// (hashed when the name is longer than a label value may be).
	LabelCampaign = "voice.callfleet.dev/campaign"
	// LabelCampaignResults marks a results ConfigMap; its value is the
	// Campaign's LabelCampaign value.
	LabelCampaignResults = "voice.callfleet.dev/campaign-results"
	// LabelContactHash is the hash of the contact key in a Call's name.
	LabelContactHash = "voice.callfleet.dev/contact"
	// AnnotationContactKey is the contact's key (its id, else its number).
	AnnotationContactKey = "voice.callfleet.dev/contact-key"
	// AnnotationAttempt is the attempt number of the Call, 1 for the first.
	AnnotationAttempt = "voice.callfleet.dev/attempt"
	// AnnotationCounted is set, in the same write that removes the
	// Campaign's count finalizer, once the Call is accounted for: "recorded"
	// (its contact is in the results record) or "superseded" (a later
	// attempt exists).
	AnnotationCounted = "voice.callfleet.dev/counted"
)

// HangupFinalizer lets the Call controller hang up a live call when its Call
// is deleted. A Campaign creates its Calls with it (no second write to add
// it), and removes it with its own count finalizer once the Call is
// Completed or Failed (nothing is live to hang up): the TTL deletion then
// takes one write, not three.
const HangupFinalizer = "voice.callfleet.dev/hangup"

// Condition types of a Campaign.
const (
	ConditionSuspended = "Suspended"
	ConditionStopped   = "Stopped"
	ConditionInWindow  = "InWindow"
)

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vcp,categories=callfleet
// +kubebuilder:printcolumn:name="Total",type=integer,JSONPath=`.status.total`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.active`
// +kubebuilder:printcolumn:name="Waiting",type=integer,JSONPath=`.status.waiting`
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
	register(&Campaign{}, &CampaignList{})
}
