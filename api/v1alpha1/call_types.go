package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// CallParameters is everything about a call except whom it rings; a Campaign's
// callTemplate is made of it.
type CallParameters struct {
	// from is the Piopiy number shown to the callee as caller id: 7 to 16
	// digits with the country code and no '+'. Defaults to the `from` key of the
	// account Secret.
	// +optional
	// +kubebuilder:validation:Pattern=`^[1-9][0-9]{6,15}$`
	// +kubebuilder:validation:MaxLength=16
	From string `json:"from,omitempty"`

	// accountRef names the Secret holding the Piopiy app id (`appId`) and
	// secret (`secret`), or for Piopiy v3 a `token`. Defaults to the manager's account (chart value
	// `piopiy.accountSecret`).
	// +optional
	AccountRef *SecretRef `json:"accountRef,omitempty"`

	// route picks Piopiy's make-call route. Default: India when `from` is an
	// Indian mobile number (91 followed by 10 digits starting 6-9), else Global.
	// +optional
	// +kubebuilder:validation:Enum=India;Global
	Route string `json:"route,omitempty"`

	// streamEndpointRef names the StreamEndpoint whose bots take the call's
	// audio. The Call waits, without dialing, until that endpoint is Ready.
	// Exactly one of streamEndpointRef and stream.url is set.
	// +optional
	StreamEndpointRef *LocalRef `json:"streamEndpointRef,omitempty"`

	// stream configures the full-duplex audio stream to the AI bot.
	// +optional
	// +kubebuilder:default={}
	Stream CallStream `json:"stream,omitempty"`

	// ringTimeoutSeconds is how long the callee's phone rings before the
	// attempt counts as NoAnswer.
	// +optional
	// +kubebuilder:default=40
	// +kubebuilder:validation:Minimum=5
	// +kubebuilder:validation:Maximum=120
	RingTimeoutSeconds int32 `json:"ringTimeoutSeconds,omitempty"`

	// maxDurationSeconds caps the call; Piopiy ends it when reached (sent as
	// the make-call `duration`).
	// +optional
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=7200
	MaxDurationSeconds int32 `json:"maxDurationSeconds,omitempty"`

	// retry says whether and when an attempt that did not connect is retried.
	// +optional
	// +kubebuilder:default={}
	Retry RetryPolicy `json:"retry,omitempty"`

	// variables are sent to Piopiy as `extra_params` (echoed in its webhooks)
	// and to the bot in the gateway's start frame. A change after dialing
	// started applies to later attempts only. At most 32 variables and 8 KiB
	// in total (names and values): Piopiy echoes them, escaped, in every
	// webhook, and the receiver takes webhooks of at most 64 KiB.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.map(k, size(k) + size(self[k])).sum() <= 8192",message="variables may hold at most 8 KiB in total (names and values): Piopiy echoes them in every webhook"
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_]{0,62}$'))",message="variable names must be identifiers: a letter or '_' then letters, digits or '_', at most 63 characters"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.startsWith('callfleet_'))",message="variable names starting with 'callfleet_' are reserved"
	Variables map[string]string `json:"variables,omitempty"`

	// announcements are audio clips the gateway plays on the live call, each at
	// most once, in order, as soon as the stream is connected.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Announcements []Announcement `json:"announcements,omitempty"`

	// handoff hands the call to a human agent from an AgentPool.
	// +optional
	Handoff *CallHandoff `json:"handoff,omitempty"`

	// voicemail says what the gateway does when the bot reports that a
	// voicemail box answered (the attempt's outcome is then Voicemail).
	// +optional
	Voicemail *VoicemailPolicy `json:"voicemail,omitempty"`

	// record asks Piopiy to record the call. On v2 it adds the record action
	// to the call's PCMO, and the recording Piopiy reports lands in
	// status.attempts[].recording. On v3 (spec.agent) it sets the create's
	// options.record; Piopiy keeps that recording, and since v3 documents no
	// way to look it up, status does not show it.
	// +optional
	Record bool `json:"record,omitempty"`

	// agent makes this a Piopiy v3 call: its AI is a Piopiy-hosted agent or a
	// v3 pipeline instead of a stream to a StreamEndpoint. It needs an account
	// Secret holding a v3 `token` (docs/piopiy-setup.md), and cannot be
	// combined with the stream controls only v2 has. It cannot change.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.agent cannot change; create a new Call"
	Agent *CallAgent `json:"agent,omitempty"`
}

// VoicemailAction is what happens once a voicemail box is detected.
// +kubebuilder:validation:Enum=Hangup;LeaveMessage
type VoicemailAction string

const (
	VoicemailHangup       VoicemailAction = "Hangup"
	VoicemailLeaveMessage VoicemailAction = "LeaveMessage"
)

// VoicemailPolicy chooses between hanging up on a voicemail box and leaving
// a recorded message on it.
// +kubebuilder:validation:XValidation:rule="self.action != 'LeaveMessage' || has(self.audioURL)",message="voicemail.action LeaveMessage needs voicemail.audioURL (the http(s) mp3 or wav to leave)"
type VoicemailPolicy struct {
	// action is Hangup (the default) or LeaveMessage: play audioURL on the
	// call, then hang up.
	// +optional
	// +kubebuilder:default=Hangup
	Action VoicemailAction `json:"action,omitempty"`
	// audioURL is an http(s) URL of an mp3 or wav Piopiy plays to the box.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	AudioURL string `json:"audioURL,omitempty"`
}

// CallAgent is the AI that takes a v3 call.
// +kubebuilder:validation:XValidation:rule="has(self.id) || has(self.pipeline)",message="spec.agent needs id (a Piopiy-hosted AI agent) or pipeline (a v3 pipeline), or both"
type CallAgent struct {
	// id is the UUID of a Piopiy-hosted AI agent. Alone, the call is placed
	// with Piopiy's AI call (POST /voice/ai/call); with a pipeline it is sent
	// as the PCMO call's agent_id.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	ID string `json:"id,omitempty"`
	// pipeline is a v3 PCMO pipeline (actions connect, play, param, record,
	// hangup, input, play_get_input) placed with POST /voice/pcmo/call, which
	// needs the account Secret's `appId`. It is checked by the official SDK's
	// rules when dialing; a pipeline they refuse stalls the Call with the
	// SDK's message.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Pipeline []runtime.RawExtension `json:"pipeline,omitempty"`
}

// CallSpec is the desired state of a Call.
// +kubebuilder:validation:XValidation:rule="has(self.agent) || has(self.streamEndpointRef) != has(self.stream.url)",message="set exactly one of streamEndpointRef (a StreamEndpoint in this namespace) and stream.url (a handler run elsewhere), or spec.agent for a Piopiy v3 call"
// +kubebuilder:validation:XValidation:rule="!has(self.agent) || (!has(self.streamEndpointRef) && !has(self.stream.url))",message="spec.agent calls run on Piopiy v3, which streams no audio to a WebSocket: remove streamEndpointRef and stream.url (the hosted agent or pipeline takes the audio)"
// +kubebuilder:validation:XValidation:rule="!has(self.agent) || ((!has(self.stream.state) || self.stream.state == 'Active') && (!has(self.stream.listenMode) || self.stream.listenMode == 'caller') && (!has(self.stream.voiceQuality) || self.stream.voiceQuality == 8000) && (!has(self.stream.startOnAnswer) || self.stream.startOnAnswer))",message="stream.state, stream.listenMode, stream.voiceQuality and stream.startOnAnswer control the Piopiy v2 audio stream; a spec.agent (v3) call has no stream, so leave them unset"
// +kubebuilder:validation:XValidation:rule="!has(self.agent) || !has(self.announcements) || size(self.announcements) == 0",message="announcements are played by the stream gateway, which a spec.agent (v3) call does not have; put a play action in spec.agent.pipeline instead"
// +kubebuilder:validation:XValidation:rule="!has(self.agent) || !has(self.handoff) || !has(self.handoff.keepStreaming) || !self.handoff.keepStreaming",message="handoff.keepStreaming keeps the v2 stream up after the bridge; a spec.agent (v3) call has no stream to keep"
// +kubebuilder:validation:XValidation:rule="!has(self.agent) || self.maxDurationSeconds >= 30",message="a spec.agent (v3) call needs maxDurationSeconds of at least 30: Piopiy v3 refuses a shorter max_duration_sec"
// +kubebuilder:validation:XValidation:rule="has(self.agent) == has(oldSelf.agent)",message="spec.agent cannot be added or removed: it chooses the Piopiy generation (v2 stream or v3 agent) of the Call"
type CallSpec struct {
	// to is the number to ring: 7 to 16 digits with the country code and no
	// '+', for example 919876543210.
	// +required
	// +kubebuilder:validation:Pattern=`^[1-9][0-9]{6,15}$`
	// +kubebuilder:validation:MaxLength=16
	To string `json:"to"`

	CallParameters `json:",inline"`

	// hangup ends the call when set to true: a live call is hung up, a pending
	// or retrying one is not dialed again.
	// +optional
	Hangup bool `json:"hangup,omitempty"`
}

// CallStream configures the stream action of the call's PCMO.
type CallStream struct {
	// url is a ws:// or wss:// handler run outside callfleet. Leave it empty
	// when streamEndpointRef is set; the controller then builds the URL with
	// the Call's identity and a signed token.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^wss?://[^\s]+$`
	URL string `json:"url,omitempty"`

	// listenMode chooses whose voice is streamed. In a PCMO call the person
	// rung is leg a, which Piopiy calls the caller; callee is the party a
	// bridge connects (a human agent after handoff); both mixes them, which
	// is what monitoring after a handoff needs.
	// +optional
	// +kubebuilder:default=caller
	ListenMode ListenMode `json:"listenMode,omitempty"`

	// voiceQuality is the sample rate in Hz of the L16 audio on the socket:
	// 8000 or 16000. Older Piopiy docs also list 32000, but Piopiy plays bot
	// audio (streamAudio) only at 8000 or 16000, so a 32000 stream would
	// leave the bot mute; it is refused.
	// +optional
	// +kubebuilder:default=8000
	// +kubebuilder:validation:Enum=8000;16000;32000
	// +kubebuilder:validation:XValidation:rule="self != 32000",message="voiceQuality 32000 cannot be answered: Piopiy plays bot audio (streamAudio) only at 8000 or 16000 Hz, so the bot would be mute; use 16000"
	VoiceQuality int32 `json:"voiceQuality,omitempty"`

	// connectTimeoutSeconds bounds the wait, from the answer, for Piopiy to
	// open the stream. A stream not connected by then means the person
	// hears silence: callfleet hangs up, and the Call's StreamConnected
	// condition says why (reason StreamConnectTimeout).
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=300
	ConnectTimeoutSeconds int32 `json:"connectTimeoutSeconds,omitempty"`

	// startOnAnswer opens the stream when the callee answers (true) or as soon
	// as the call starts ringing (false).
	// +optional
	// +kubebuilder:default=true
	StartOnAnswer *bool `json:"startOnAnswer,omitempty"`

	// state is the desired stream state on the live call: Active streams
	// audio, Paused stops audio to the bot while the call goes on, Stopped ends
	// streaming for good (it cannot be resumed).
	// +optional
	// +kubebuilder:default=Active
	// +kubebuilder:validation:Enum=Active;Paused;Stopped
	State StreamState `json:"state,omitempty"`
}

// StreamState is the desired state of a live stream.
type StreamState string

const (
	StreamActive  StreamState = "Active"
	StreamPaused  StreamState = "Paused"
	StreamStopped StreamState = "Stopped"
)

// RetryPolicy bounds the attempts of a Call.
// +kubebuilder:validation:XValidation:rule="!has(self.maxBackoffSeconds) || !has(self.backoffSeconds) || self.maxBackoffSeconds >= self.backoffSeconds",message="maxBackoffSeconds must be at least backoffSeconds"
type RetryPolicy struct {
	// maxAttempts is the most dials for this Call, the first included.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	MaxAttempts int32 `json:"maxAttempts,omitempty"`

	// backoffSeconds is the wait before the second attempt; each later wait
	// doubles, up to maxBackoffSeconds.
	// +optional
	// +kubebuilder:default=60
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	BackoffSeconds int32 `json:"backoffSeconds,omitempty"`

	// maxBackoffSeconds caps the doubling wait between attempts.
	// +optional
	// +kubebuilder:default=3600
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	MaxBackoffSeconds int32 `json:"maxBackoffSeconds,omitempty"`

	// outcomes lists the attempt outcomes that are retried. (Not named `on`:
	// YAML 1.1 parsers, kubectl's among them, read an unquoted `on:` key as true.)
	// +optional
	// +listType=set
	// +kubebuilder:default={NoAnswer,Busy}
	// +kubebuilder:validation:MaxItems=3
	// +kubebuilder:validation:XValidation:rule="self.all(o, o in ['NoAnswer', 'Busy', 'Failed'])",message="retry.outcomes may list only NoAnswer, Busy and Failed: an answered, rejected or voicemail call is not rung again"
	Outcomes []CallOutcome `json:"outcomes,omitempty"`
}

// Announcement is a clip played once on the live call.
// +kubebuilder:validation:XValidation:rule="has(self.fileName) != has(self.url)",message="set exactly one of fileName (uploaded to Piopiy) and url (an http(s) mp3 or wav)"
type Announcement struct {
	// name identifies the announcement; status.stream.announcementsPlayed
	// lists the names already played.
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`
	Name string `json:"name"`
	// fileName is a file uploaded to the Piopiy dashboard.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	FileName string `json:"fileName,omitempty"`
	// url is an http(s) URL of an mp3 or wav file.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	URL string `json:"url,omitempty"`
}

// CallHandoff asks for the call to be bridged to a human agent.
type CallHandoff struct {
	// agentPoolRef names the AgentPool whose agents take the call.
	// +required
	AgentPoolRef LocalRef `json:"agentPoolRef"`
	// requested starts the handoff when true. The bot can also ask for it
	// through the gateway.
	// +optional
	Requested bool `json:"requested,omitempty"`
	// keepStreaming keeps the AI stream up after the bridge, carrying both
	// parties, so a bot or supervisor can monitor and coach. Without it the
	// stream stops when the agent answers.
	// +optional
	KeepStreaming bool `json:"keepStreaming,omitempty"`
	// skills an agent must all have to take this call.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	Skills []string `json:"skills,omitempty"`
	// onNoAgent says what happens when no agent answers before the pool's
	// queue maxWaitSeconds: ReturnToBot keeps the AI on the call, Hangup ends it.
	// +optional
	// +kubebuilder:default=ReturnToBot
	// +kubebuilder:validation:Enum=ReturnToBot;Hangup
	OnNoAgent string `json:"onNoAgent,omitempty"`
}

// CallPhase is where a Call is in its life.
// +kubebuilder:validation:Enum=Pending;Dialing;Ringing;InProgress;HandedOff;Retrying;Completed;Failed
type CallPhase string

const (
	CallPending    CallPhase = "Pending"
	CallDialing    CallPhase = "Dialing"
	CallRinging    CallPhase = "Ringing"
	CallInProgress CallPhase = "InProgress"
	CallHandedOff  CallPhase = "HandedOff"
	CallRetrying   CallPhase = "Retrying"
	CallCompleted  CallPhase = "Completed"
	CallFailed     CallPhase = "Failed"
)

// CallOutcome is how one attempt ended.
// +kubebuilder:validation:Enum=Answered;Busy;NoAnswer;Rejected;Voicemail;Failed;Canceled
type CallOutcome string

const (
	OutcomeAnswered  CallOutcome = "Answered"
	OutcomeBusy      CallOutcome = "Busy"
	OutcomeNoAnswer  CallOutcome = "NoAnswer"
	OutcomeRejected  CallOutcome = "Rejected"
	OutcomeVoicemail CallOutcome = "Voicemail"
	OutcomeFailed    CallOutcome = "Failed"
	OutcomeCanceled  CallOutcome = "Canceled"
)

// AttemptState tracks one dial through the at-most-once protocol.
// +kubebuilder:validation:Enum=Intent;Dialed;Unknown;Ended
type AttemptState string

const (
	// AttemptIntent: recorded before the POST; if found after a crash the
	// POST may or may not have happened, so it is settled like Unknown.
	AttemptIntent AttemptState = "Intent"
	// AttemptDialed: Piopiy accepted the call and gave a request id.
	AttemptDialed AttemptState = "Dialed"
	// AttemptUnknown: the create was ambiguous (timeout, 5xx, lost reply);
	// never redialled until webhooks or a CDR lookup settle it.
	AttemptUnknown AttemptState = "Unknown"
	// AttemptEnded: the outcome is known, from a CDR (webhook or lookup) or,
	// when Piopiy never showed the call, after the settle timeout.
	AttemptEnded AttemptState = "Ended"
)

// CallAttempt records one dial.
type CallAttempt struct {
	// number is 1 for the first attempt.
	Number int32 `json:"number"`
	// id is sent as extra_params.callfleet_attempt and identifies webhooks of
	// this attempt even when Piopiy's reply (and its request id) was lost.
	ID string `json:"id"`
	// state of the attempt in the at-most-once protocol.
	State AttemptState `json:"state"`
	// from is the caller id the attempt was placed from (spec.from or the
	// account's default); the gateway bridges handoffs from it.
	// +optional
	From string `json:"from,omitempty"`
	// requestID is Piopiy's request id for the call.
	// +optional
	RequestID string `json:"requestID,omitempty"`
	// callID is Piopiy v3's call_id (spec.agent calls), what the controller
	// polls and transfers.
	// +optional
	CallID string `json:"callID,omitempty"`
	// cmiuuid is Piopiy's id of the callee's leg.
	// +optional
	CMIUUID string `json:"cmiuuid,omitempty"`
	// intentTime is when the attempt was recorded, before the POST.
	IntentTime metav1.Time `json:"intentTime"`
	// dialTime is when Piopiy accepted the call.
	// +optional
	DialTime *metav1.Time `json:"dialTime,omitempty"`
	// ringTime is when the callee's phone started ringing.
	// +optional
	RingTime *metav1.Time `json:"ringTime,omitempty"`
	// answerTime is when the callee answered.
	// +optional
	AnswerTime *metav1.Time `json:"answerTime,omitempty"`
	// endTime is when the callee's leg hung up.
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`
	// hangupRequestedTime is when callfleet asked Piopiy to hang up (spec.hangup,
	// ring timeout or deletion).
	// +optional
	HangupRequestedTime *metav1.Time `json:"hangupRequestedTime,omitempty"`
	// outcome of the attempt once ended.
	// +optional
	Outcome CallOutcome `json:"outcome,omitempty"`
	// durationSeconds of the answered call, from the CDR.
	// +optional
	DurationSeconds int32 `json:"durationSeconds,omitempty"`
	// callRate is the rate Piopiy billed the call at, as its CDR gave it (a
	// decimal in the account's currency; call_rate in webhook CDRs, rate in
	// the CDR lookups).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	CallRate string `json:"callRate,omitempty"`
	// settledBy says how the outcome became known: Webhook, CDRLookup,
	// Poll (v3: the call's status was polled until Piopiy forgot it),
	// Refused (Piopiy refused the create: nothing was placed) or Timeout
	// (an ambiguous create Piopiy never showed: ended without a retry, since
	// the person may have been rung).
	// +optional
	// +kubebuilder:validation:Enum=Webhook;CDRLookup;Poll;Refused;Timeout
	SettledBy string `json:"settledBy,omitempty"`
	// message says why, in words, when the outcome is not Answered.
	// +optional
	Message string `json:"message,omitempty"`

	// recording is the reference to this attempt's recording that Piopiy
	// reported (spec.record), as Piopiy gave it.
	// +optional
	Recording string `json:"recording,omitempty"`
}

// StreamPhase is the observed state of the audio stream.
// +kubebuilder:validation:Enum=Pending;Connected;Paused;Stopped;Disconnected
type StreamPhase string

const (
	StreamPhasePending      StreamPhase = "Pending"
	StreamPhaseConnected    StreamPhase = "Connected"
	StreamPhasePaused       StreamPhase = "Paused"
	StreamPhaseStopped      StreamPhase = "Stopped"
	StreamPhaseDisconnected StreamPhase = "Disconnected"
)

// CallStreamStatus is what the gateway (or Piopiy's stream events) reported.
type CallStreamStatus struct {
	// state of the stream.
	// +optional
	State StreamPhase `json:"state,omitempty"`
	// pod is the gateway pod holding the socket.
	// +optional
	Pod string `json:"pod,omitempty"`
	// attempt is the number of the attempt whose socket this is: a ws_url
	// is good for one socket, so a gateway refuses another for an attempt
	// that already connected.
	// +optional
	Attempt int32 `json:"attempt,omitempty"`
	// connectedTime is when the socket opened.
	// +optional
	ConnectedTime *metav1.Time `json:"connectedTime,omitempty"`
	// disconnectedTime is when the socket closed.
	// +optional
	DisconnectedTime *metav1.Time `json:"disconnectedTime,omitempty"`
	// closeCode is the WebSocket close code.
	// +optional
	CloseCode int32 `json:"closeCode,omitempty"`
	// reason is the close reason or a note such as "kept for monitoring after
	// handoff".
	// +optional
	Reason string `json:"reason,omitempty"`
	// monitoring is true while the stream carries both parties after a
	// handoff with keepStreaming.
	// +optional
	Monitoring bool `json:"monitoring,omitempty"`
	// announcementsPlayed lists the announcements already sent to the call.
	// +optional
	// +listType=set
	AnnouncementsPlayed []string `json:"announcementsPlayed,omitempty"`
	// hangupSent is true once the gateway sent a hangup on the socket.
	// +optional
	HangupSent bool `json:"hangupSent,omitempty"`
	// voicemailTime is when the bot reported that a voicemail box answered;
	// it makes the attempt's outcome Voicemail.
	// +optional
	VoicemailTime *metav1.Time `json:"voicemailTime,omitempty"`
}

// HandoffPhase is where a handoff stands.
// +kubebuilder:validation:Enum=Requested;Queued;Ringing;Bridged;Ended;TimedOut;Failed
type HandoffPhase string

const (
	HandoffRequested HandoffPhase = "Requested"
	HandoffQueued    HandoffPhase = "Queued"
	HandoffRinging   HandoffPhase = "Ringing"
	HandoffBridged   HandoffPhase = "Bridged"
	HandoffEnded     HandoffPhase = "Ended"
	HandoffTimedOut  HandoffPhase = "TimedOut"
	HandoffFailed    HandoffPhase = "Failed"
)

// CallHandoffStatus records the handoff to a human.
type CallHandoffStatus struct {
	// phase of the handoff.
	// +optional
	Phase HandoffPhase `json:"phase,omitempty"`
	// agent is the name of the reserved agent in the pool.
	// +optional
	Agent string `json:"agent,omitempty"`
	// number is the reserved agent's number (what the bridge dials).
	// +optional
	Number string `json:"number,omitempty"`
	// source says who asked: Spec or Bot.
	// +optional
	Source string `json:"source,omitempty"`
	// reason the bot gave, or why the handoff ended.
	// +optional
	Reason string `json:"reason,omitempty"`
	// triedAgents lists agents that did not answer, in order.
	// +optional
	// +listType=atomic
	TriedAgents []string `json:"triedAgents,omitempty"`
	// requestedTime is when the handoff was asked for.
	// +optional
	RequestedTime *metav1.Time `json:"requestedTime,omitempty"`
	// agentAssignedTime is when the current agent was reserved.
	// +optional
	AgentAssignedTime *metav1.Time `json:"agentAssignedTime,omitempty"`
	// bridgeSentTime is when the gateway sent the bridge PCMO.
	// +optional
	BridgeSentTime *metav1.Time `json:"bridgeSentTime,omitempty"`
	// bridgedTime is when the agent answered (out_bridged).
	// +optional
	BridgedTime *metav1.Time `json:"bridgedTime,omitempty"`
	// endedTime is when the bridge ended.
	// +optional
	EndedTime *metav1.Time `json:"endedTime,omitempty"`
	// assignment counts the agents assigned to this Call so far (1 for the
	// first); it only grows, across handoffs too. The gateway sends one
	// bridge per assignment.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Assignment int32 `json:"assignment,omitempty"`
	// outcome is how the handoff turned out, set once it is known: Bridged,
	// TimedOut, Abandoned (the caller hung up before an agent answered) or
	// Failed.
	// +optional
	Outcome HandoffOutcome `json:"outcome,omitempty"`
	// missed is the agent leg last taken as not answering (its hangup came
	// with no word of an answer). Word that it answered after all, arriving
	// late as webhooks may, still bridges the Call to that agent.
	// +optional
	Missed *HandoffMissedLeg `json:"missed,omitempty"`
	// onNoAgent is the spec.handoff.onNoAgent that applied when the handoff
	// ended without an agent: with Hangup the controller ends the call.
	// +optional
	// +kubebuilder:validation:Enum=ReturnToBot;Hangup
	OnNoAgent string `json:"onNoAgent,omitempty"`
	// transferRequestID names the Piopiy v3 warm transfer carrying out the
	// handoff of a spec.agent Call (followed at /transfers/{id}).
	// +optional
	TransferRequestID string `json:"transferRequestID,omitempty"`
}

// ResultReporter says who reported a Call's result.
// +kubebuilder:validation:Enum=Bot;Agent;Supervisor
type ResultReporter string

const (
	ReportedByBot        ResultReporter = "Bot"
	ReportedByAgent      ResultReporter = "Agent"
	ReportedBySupervisor ResultReporter = "Supervisor"
)

// CallResult is what the conversation achieved, as the bot or a person
// reported it. A later report replaces an earlier one.
type CallResult struct {
	// disposition is a short token the user defines (e.g. Interested).
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9_.-]*$`
	// +optional
	Disposition string `json:"disposition,omitempty"`

	// summary is a free-text summary of the call, at most 1 KiB.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Summary string `json:"summary,omitempty"`

	// data holds at most 16 short key/value pairs the reporter chose.
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	Data map[string]string `json:"data,omitempty"`

	// reportedAt is when the result was reported.
	// +optional
	ReportedAt *metav1.Time `json:"reportedAt,omitempty"`

	// reportedBy is who reported it: Bot, Agent or Supervisor.
	// +optional
	ReportedBy ResultReporter `json:"reportedBy,omitempty"`
}

// CallStatus is the observed state of a Call.
type CallStatus struct {
	// observedGeneration is the generation last fully reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// phase summarises the call's life.
	// +optional
	Phase CallPhase `json:"phase,omitempty"`
	// attempts lists every dial, oldest first.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	Attempts []CallAttempt `json:"attempts,omitempty"`
	// nextAttemptTime is when a Retrying call dials again.
	// +optional
	NextAttemptTime *metav1.Time `json:"nextAttemptTime,omitempty"`
	// streamURL is the ws_url sent to Piopiy, without its token.
	// +optional
	StreamURL string `json:"streamURL,omitempty"`
	// stream is the state of the audio stream of the current attempt.
	// +optional
	Stream *CallStreamStatus `json:"stream,omitempty"`
	// handoff is the state of the handoff to a human.
	// +optional
	Handoff *CallHandoffStatus `json:"handoff,omitempty"`

	// result is the disposition, summary and data reported for this Call.
	// +optional
	Result *CallResult `json:"result,omitempty"`
	// conditions: Ready, Reconciling, Stalled, and EndpointReady,
	// AccountResolved.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vc,categories=callfleet
// +kubebuilder:printcolumn:name="To",type=string,JSONPath=`.spec.to`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Attempts",type=integer,JSONPath=`.status.attempts[-1:].number`
// +kubebuilder:printcolumn:name="Stream",type=string,JSONPath=`.status.stream.state`
// +kubebuilder:printcolumn:name="Agent",type=string,JSONPath=`.status.handoff.agent`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || !has(oldSelf.status.attempts) || size(oldSelf.status.attempts) == 0 || (self.spec.to == oldSelf.spec.to && (has(self.spec.from) ? self.spec.from : '') == (has(oldSelf.spec.from) ? oldSelf.spec.from : '') && (has(self.spec.accountRef) ? self.spec.accountRef.name : '') == (has(oldSelf.spec.accountRef) ? oldSelf.spec.accountRef.name : '') && (has(self.spec.route) ? self.spec.route : '') == (has(oldSelf.spec.route) ? oldSelf.spec.route : '') && (has(self.spec.streamEndpointRef) ? self.spec.streamEndpointRef.name : '') == (has(oldSelf.spec.streamEndpointRef) ? oldSelf.spec.streamEndpointRef.name : '') && (has(self.spec.stream.url) ? self.spec.stream.url : '') == (has(oldSelf.spec.stream.url) ? oldSelf.spec.stream.url : '') && self.spec.stream.listenMode == oldSelf.spec.stream.listenMode && self.spec.stream.voiceQuality == oldSelf.spec.stream.voiceQuality && self.spec.maxDurationSeconds == oldSelf.spec.maxDurationSeconds)",message="to, from, accountRef, route, streamEndpointRef, stream.url, stream.listenMode, stream.voiceQuality and maxDurationSeconds cannot change once dialing has started; create a new Call instead"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.spec.hangup) || !oldSelf.spec.hangup || (has(self.spec.hangup) && self.spec.hangup)",message="hangup cannot be undone once set"

// Call is one person to ring, with its audio streamed to an AI bot.
type Call struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the call should be.
	// +required
	Spec CallSpec `json:"spec"`
	// status is what happened.
	// +optional
	Status CallStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// CallList is a list of Calls.
type CallList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Call `json:"items"`
}

func init() {
	register(&Call{}, &CallList{})
}
