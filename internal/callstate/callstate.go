// Package callstate folds Piopiy's webhooks into a Call's status. It is pure:
// the webhook receiver and the Call controller (when it settles a call from a
// CDR lookup) both use it, so an event means the same thing whichever way it
// arrives.
//
// Piopiy delivers events late, twice and out of order, so Apply is idempotent
// and monotonic: applying the same event again changes nothing, a timestamp
// once set is only ever moved earlier, an ended attempt never reopens, and the
// phase never moves backwards.
package callstate

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// Keys callfleet adds to a call's extra_params. Piopiy echoes extra_params in
// every webhook, which is how an attempt whose create reply was lost (so whose
// request id is unknown) is still recognised.
const (
	ExtraAttempt = "callfleet_attempt"
	ExtraCall    = "callfleet_call"
)

// Field index names on Call objects, used by the webhook receiver to find a
// Call without listing.
const (
	IndexRequestID = "status.attempts.requestID"
	IndexAttemptID = "status.attempts.id"
)

// AttemptID is the id of attempt n of a Call. The UID keeps ids unique across
// a Call deleted and recreated with the same name.
func AttemptID(call *voicev1alpha1.Call, n int32) string {
	return fmt.Sprintf("%s.%d", call.UID, n)
}

// RequestIDs returns the index values of IndexRequestID.
func RequestIDs(call *voicev1alpha1.Call) []string {
	var out []string
	for _, a := range call.Status.Attempts {
		if a.RequestID != "" {
			out = append(out, a.RequestID)
		}
	}
	return out
}

// AttemptIDs returns the index values of IndexAttemptID.
func AttemptIDs(call *voicev1alpha1.Call) []string {
	out := make([]string, 0, len(call.Status.Attempts))
	for _, a := range call.Status.Attempts {
		out = append(out, a.ID)
	}
	return out
}

// Current returns the last attempt, or nil.
func Current(st *voicev1alpha1.CallStatus) *voicev1alpha1.CallAttempt {
	if len(st.Attempts) == 0 {
		return nil
	}
	return &st.Attempts[len(st.Attempts)-1]
}

// FindAttempt returns the attempt a webhook belongs to: by request id, else by
// the attempt id in extra_params.
func FindAttempt(st *voicev1alpha1.CallStatus, requestID string, extra map[string]string) *voicev1alpha1.CallAttempt {
	for i := range st.Attempts {
		if requestID != "" && st.Attempts[i].RequestID == requestID {
			return &st.Attempts[i]
		}
	}
	if id := extra[ExtraAttempt]; id != "" {
		for i := range st.Attempts {
			if st.Attempts[i].ID == id {
				return &st.Attempts[i]
			}
		}
	}
	return nil
}

// Result says what Apply did.
type Result string

const (
	Applied   Result = "applied"
	Duplicate Result = "duplicate" // nothing new: a repeat or an older view
	Unmatched Result = "unmatched" // no attempt of this Call matches
)

// Apply folds one webhook into the Call's status.
func Apply(call *voicev1alpha1.Call, wh *piopiy.Webhook) Result {
	switch {
	case wh.Event != nil:
		return applyEvent(call, wh.Event)
	case wh.CDR != nil:
		return ApplyCDR(call, wh.CDR, SettledByWebhook)
	}
	return Duplicate
}

func applyEvent(call *voicev1alpha1.Call, ev *piopiy.Event) Result {
	st := &call.Status
	a := FindAttempt(st, ev.RequestID, ev.ExtraParams)
	if a == nil && NamesOnlyLeg(ev) {
		// The documented stream events name no request: only the leg.
		a = FindAttemptByLeg(st, ev.CMIUUID)
	}
	if a == nil {
		return Unmatched
	}
	c := &changes{}
	at := saneTime(call, a, ev.Time)
	if at == nil {
		// No believable time: the facts count, at the time of receipt, but
		// only where no time is recorded yet.
		at, c.receiptTime = eventTime(time.Time{}), true
	}
	c.settlePlaced(a, ev.RequestID, at)
	current := a == Current(st)

	if ev.Leg == piopiy.LegB && !isStreamEvent(ev.Status) {
		if current {
			applyAgentLeg(call, ev, at, c)
		}
		return c.result()
	}
	switch ev.Status {
	case piopiy.StatusStarted:
		c.setString(&a.CMIUUID, ev.CMIUUID)
	case piopiy.StatusRinging:
		c.setString(&a.CMIUUID, ev.CMIUUID)
		c.earliest(&a.RingTime, at)
	case piopiy.StatusOutAnswered, piopiy.StatusInAnswered:
		c.setString(&a.CMIUUID, ev.CMIUUID)
		c.earliest(&a.AnswerTime, at)
	case piopiy.StatusHangup:
		c.setString(&a.CMIUUID, ev.CMIUUID)
		c.earliest(&a.EndTime, at)
	case piopiy.StatusOutBridged:
		if current {
			applyAgentLeg(call, ev, at, c)
		}
	case piopiy.StatusStreamConnected:
		if current {
			applyStreamConnected(st, at, c)
		}
	case piopiy.StatusStreamDisconnected:
		if current {
			applyStreamDisconnected(st, ev.WSStatus, at, c)
		}
	}
	if current {
		advancePhase(st, c)
	}
	return c.result()
}

// How an attempt's outcome became known (CallAttempt.SettledBy).
const (
	SettledByWebhook   = "Webhook"
	SettledByCDRLookup = "CDRLookup"
	SettledByRefused   = "Refused"
	SettledByTimeout   = "Timeout"
)

// ApplyCDR records the final word on a leg. A leg-a CDR ends the attempt.
func ApplyCDR(call *voicev1alpha1.Call, cdr *piopiy.CDR, settledBy string) Result {
	st := &call.Status
	a := FindAttempt(st, cdr.RequestID, cdr.ExtraParams)
	if a == nil {
		return Unmatched
	}
	c := &changes{}
	c.settlePlaced(a, cdr.RequestID, saneTime(call, a, cdr.StartTime))
	// TeleCMI's samples show the recording on either leg's CDR.
	c.setString(&a.Recording, cdr.Recording)
	if cdr.Leg == piopiy.LegB {
		if a == Current(st) && cdr.Status == piopiy.CDRAnswered && call.Status.Handoff != nil {
			// The agent's leg answered and has ended: the word that counts
			// when its out_bridged was lost or overtaken.
			end := timeOrNil(cdr.EndTime)
			if end == nil {
				end = timeOrNil(cdr.Time)
			}
			agentAnswered(call, cdr.To.String(), timeOrNil(cdr.AnswerTime), end, c)
		}
		if a == Current(st) && cdr.Status == piopiy.CDRMissed {
			// The agent's leg ended unanswered: the same as its hangup
			// event while ringing, for when that event was lost.
			end := saneTime(call, a, cdr.EndTime)
			if end == nil {
				end = saneTime(call, a, cdr.Time)
			}
			agentMissed(call.Status.Handoff, cdr.To.String(), end, c)
		}
		return c.result()
	}
	if cdr.Status != piopiy.CDRAnswered && a.AnswerTime != nil && a.State != voicev1alpha1.AttemptEnded {
		return Contradicted
	}
	c.setString(&a.CMIUUID, cdr.CMIUUID)
	c.setString(&a.CallRate, boundedRate(cdr.CallRate))
	if cdr.Status == piopiy.CDRAnswered {
		c.earliest(&a.AnswerTime, saneTime(call, a, cdr.AnswerTime))
	}
	c.earliest(&a.EndTime, saneTime(call, a, cdr.EndTime))
	if a.State != voicev1alpha1.AttemptEnded {
		a.State = voicev1alpha1.AttemptEnded
		a.Outcome, a.Message = outcomeOf(call, a, cdr)
		a.DurationSeconds = int32(cdr.Duration / time.Second)
		a.SettledBy = settledBy
		c.changed = true
		if a.EndTime == nil {
			a.EndTime = &metav1.Time{Time: time.Now()}
		}
	}
	return c.result()
}

// outcomeOf turns a CDR into an outcome. Piopiy's v2 webhooks carry no hangup
// cause, only answered or missed, so a missed call is classified by what was
// seen: it rang for the whole ring timeout (NoAnswer), it rang and was cut
// short (Rejected), or it never rang (Busy). Voicemail answers like a person
// at this level; only the bot can tell them apart, and the gateway records
// what it said in status.stream.voicemailTime.
func outcomeOf(call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt, cdr *piopiy.CDR) (voicev1alpha1.CallOutcome, string) {
	if cdr.Status == piopiy.CDRAnswered {
		if VoicemailReported(&call.Status, a) {
			return voicemailOutcome(call)
		}
		return voicev1alpha1.OutcomeAnswered, ""
	}
	ring := time.Duration(call.Spec.RingTimeoutSeconds) * time.Second
	if a.HangupRequestedTime != nil && a.AnswerTime == nil && !call.Spec.Hangup && call.DeletionTimestamp == nil {
		return voicev1alpha1.OutcomeNoAnswer, fmt.Sprintf("not answered within ringTimeoutSeconds (%s); callfleet hung up", ring)
	}
	if a.RingTime == nil {
		return voicev1alpha1.OutcomeBusy, "the call ended without ringing (busy or unreachable)"
	}
	end := cdr.EndTime
	if end.IsZero() && a.EndTime != nil {
		end = a.EndTime.Time
	}
	// Seconds resolution on CDR times: allow one second of slack.
	if !end.IsZero() && end.Sub(a.RingTime.Time) >= ring-time.Second {
		return voicev1alpha1.OutcomeNoAnswer, "rang without an answer until the ring timeout"
	}
	if call.Spec.Hangup {
		return voicev1alpha1.OutcomeCanceled, "hung up by spec.hangup before it was answered"
	}
	return voicev1alpha1.OutcomeRejected, "the callee declined the call"
}

// applyAgentLeg follows the handoff's leg b: the agent's phone answered
// (out_bridged) makes the handoff Bridged; its hangup ends a bridged handoff,
// or, while still ringing, means the agent did not answer.
//
// Only events for the number currently assigned, and no older than the
// assignment, count: a late or repeated event of an agent tried earlier must
// not move a later assignment.
func applyAgentLeg(call *voicev1alpha1.Call, ev *piopiy.Event, at *metav1.Time, c *changes) {
	h := call.Status.Handoff
	if h == nil {
		return
	}
	switch ev.Status {
	case piopiy.StatusOutBridged, piopiy.StatusOutAnswered:
		agentAnswered(call, ev.To.String(), at, nil, c)
	case piopiy.StatusHangup:
		if h.Number == "" || ev.To.String() != h.Number || beforeAssignment(h, at) {
			return
		}
		switch h.Phase {
		case voicev1alpha1.HandoffBridged:
			h.Phase = voicev1alpha1.HandoffEnded
			c.changed = true
			c.earliest(&h.EndedTime, at)
		case voicev1alpha1.HandoffRinging:
			agentMissed(h, ev.To.String(), at, c)
		}
	}
}

// agentAnswered records that the agent's leg answered (out_bridged, or an
// answered CDR of the leg, which also says when it ended). It counts for the
// number currently assigned, or for the leg last taken as missed: its hangup
// may have overtaken its out_bridged, which then still bridges the Call.
func agentAnswered(call *voicev1alpha1.Call, number string, at, ended *metav1.Time, c *changes) {
	h := call.Status.Handoff
	current := h.Number != "" && number == h.Number && !beforeAssignment(h, at)
	if !current && !reviveMissed(h, number, at, c) {
		return
	}
	if handoffRank[h.Phase] < handoffRank[voicev1alpha1.HandoffBridged] {
		h.Phase = voicev1alpha1.HandoffBridged
		c.changed = true
	}
	if h.Phase == voicev1alpha1.HandoffBridged || h.Phase == voicev1alpha1.HandoffEnded {
		c.earliest(&h.BridgedTime, at)
	}
	if ended != nil && h.Phase == voicev1alpha1.HandoffBridged {
		h.Phase = voicev1alpha1.HandoffEnded
		c.changed = true
		c.earliest(&h.EndedTime, ended)
	}
	advancePhase(&call.Status, c)
}

// reviveMissed gives the handoff back to the agent of status.handoff.missed
// when word comes that its leg answered after all, unless the handoff has
// been bridged since. The handoff's state then is that agent's assignment,
// Bridged: a later agent rung meanwhile no longer holds the Call.
func reviveMissed(h *voicev1alpha1.CallHandoffStatus, number string, at *metav1.Time, c *changes) bool {
	m := h.Missed
	if m == nil || m.Number != number || h.Phase == voicev1alpha1.HandoffBridged || h.Phase == voicev1alpha1.HandoffEnded ||
		(at != nil && m.AssignedTime != nil && at.Time.Before(m.AssignedTime.Truncate(time.Second))) {
		return false
	}
	if n := len(h.TriedAgents); n > 0 && h.TriedAgents[n-1] == m.Agent {
		h.TriedAgents = h.TriedAgents[:n-1]
	}
	if handoffRank[h.Phase] == handoffRank[voicev1alpha1.HandoffFailed] {
		h.Reason, h.OnNoAgent = "", "" // the controller's conclusion was premature
	}
	h.Agent, h.Number, h.AgentAssignedTime = m.Agent, m.Number, m.AssignedTime
	h.BridgeSentTime, h.EndedTime, h.Missed = nil, nil, nil
	h.Phase = voicev1alpha1.HandoffBridged
	c.changed = true
	return true
}

// MaxTriedAgents bounds status.handoff.triedAgents; the oldest entries go
// first.
const MaxTriedAgents = 32

// agentMissed records that the ringing agent's leg ended without an answer
// (no answer, busy or rejected): the agent joins triedAgents and the handoff
// goes back to Requested, without an agent, for the AgentPool's handoff
// controller to ring the next one and release this one.
func agentMissed(h *voicev1alpha1.CallHandoffStatus, number string, at *metav1.Time, c *changes) {
	if h == nil || h.Phase != voicev1alpha1.HandoffRinging || h.Number == "" || number != h.Number || beforeAssignment(h, at) {
		return
	}
	h.Missed = &voicev1alpha1.HandoffMissedLeg{Assignment: h.Assignment, Agent: h.Agent, Number: h.Number, AssignedTime: h.AgentAssignedTime, EndedTime: at}
	if h.Agent != "" {
		h.TriedAgents = append(h.TriedAgents, h.Agent)
		if n := len(h.TriedAgents); n > MaxTriedAgents {
			h.TriedAgents = append([]string(nil), h.TriedAgents[n-MaxTriedAgents:]...)
		}
	}
	h.Phase = voicev1alpha1.HandoffRequested
	h.Agent, h.Number = "", ""
	h.AgentAssignedTime, h.BridgeSentTime, h.BridgedTime = nil, nil, nil
	c.changed = true
}

// beforeAssignment reports whether a leg-b event happened before the current
// agent was assigned (agentAssignedTime has one-second resolution).
func beforeAssignment(h *voicev1alpha1.CallHandoffStatus, at *metav1.Time) bool {
	return at != nil && h.AgentAssignedTime != nil && at.Time.Before(h.AgentAssignedTime.Truncate(time.Second))
}

var handoffRank = map[voicev1alpha1.HandoffPhase]int{
	"": 0, voicev1alpha1.HandoffRequested: 1, voicev1alpha1.HandoffQueued: 2, voicev1alpha1.HandoffRinging: 3,
	voicev1alpha1.HandoffBridged: 4, voicev1alpha1.HandoffEnded: 5, voicev1alpha1.HandoffTimedOut: 5, voicev1alpha1.HandoffFailed: 5,
}

func applyStreamConnected(st *voicev1alpha1.CallStatus, at *metav1.Time, c *changes) {
	if st.Stream == nil {
		st.Stream = &voicev1alpha1.CallStreamStatus{}
	}
	s := st.Stream
	// The gateway reports richer state; Piopiy's event only fills gaps.
	if s.State == "" || s.State == voicev1alpha1.StreamPhasePending {
		s.State = voicev1alpha1.StreamPhaseConnected
		c.changed = true
	}
	c.earliest(&s.ConnectedTime, at)
}

func applyStreamDisconnected(st *voicev1alpha1.CallStatus, ws *piopiy.WSStatus, at *metav1.Time, c *changes) {
	if st.Stream == nil {
		st.Stream = &voicev1alpha1.CallStreamStatus{}
	}
	s := st.Stream
	if s.State != voicev1alpha1.StreamPhaseStopped && s.State != voicev1alpha1.StreamPhaseDisconnected {
		s.State = voicev1alpha1.StreamPhaseDisconnected
		c.changed = true
	}
	c.earliest(&s.DisconnectedTime, at)
	if ws != nil && s.CloseCode == 0 && ws.Code != 0 {
		s.CloseCode = int32(ws.Code)
		s.Reason = ws.Reason
		c.changed = true
	}
}

var phaseRank = map[voicev1alpha1.CallPhase]int{
	"": 0, voicev1alpha1.CallPending: 0, voicev1alpha1.CallRetrying: 0, voicev1alpha1.CallDialing: 1,
	voicev1alpha1.CallRinging: 2, voicev1alpha1.CallInProgress: 3, voicev1alpha1.CallHandedOff: 4,
	voicev1alpha1.CallCompleted: 9, voicev1alpha1.CallFailed: 9,
}

// LivePhase is the phase the current attempt's record implies while it is in
// flight. Terminal phases and Retrying are the controller's to set.
func LivePhase(st *voicev1alpha1.CallStatus) voicev1alpha1.CallPhase {
	a := Current(st)
	switch {
	case a == nil:
		return voicev1alpha1.CallPending
	case st.Handoff != nil && st.Handoff.Phase == voicev1alpha1.HandoffBridged && a.EndTime == nil:
		return voicev1alpha1.CallHandedOff
	case a.AnswerTime != nil:
		return voicev1alpha1.CallInProgress
	case a.RingTime != nil:
		return voicev1alpha1.CallRinging
	default:
		return voicev1alpha1.CallDialing
	}
}

// advancePhase moves the phase forward to what the current attempt implies,
// never backwards and never out of a terminal phase.
func advancePhase(st *voicev1alpha1.CallStatus, c *changes) {
	next := LivePhase(st)
	if phaseRank[st.Phase] >= 9 || st.Phase == voicev1alpha1.CallRetrying {
		return
	}
	if phaseRank[next] > phaseRank[st.Phase] {
		st.Phase = next
		c.changed = true
	}
}

// changes tracks whether Apply altered anything.
type changes struct {
	changed bool
	// receiptTime: the event's own time was not believable, so its times
	// fill gaps and never replace a recorded time.
	receiptTime bool
}

func (c *changes) result() Result {
	if c.changed {
		return Applied
	}
	return Duplicate
}

func (c *changes) setString(dst *string, v string) {
	if *dst == "" && v != "" {
		*dst = v
		c.changed = true
	}
}

// earliest sets *dst to t when unset or when t is earlier: a redelivered or
// reordered event can only make a timestamp more precise, never later.
func (c *changes) earliest(dst **metav1.Time, t *metav1.Time) {
	if t == nil {
		return
	}
	if *dst == nil || (t.Before(*dst) && !c.receiptTime) {
		*dst = t
		c.changed = true
	}
}

// settlePlaced records what any webhook proves: Piopiy placed the call.
func (c *changes) settlePlaced(a *voicev1alpha1.CallAttempt, requestID string, at *metav1.Time) {
	c.setString(&a.RequestID, requestID)
	if a.State == voicev1alpha1.AttemptIntent || a.State == voicev1alpha1.AttemptUnknown {
		a.State = voicev1alpha1.AttemptDialed
		c.changed = true
		if a.Message != "" && strings.HasPrefix(a.Message, "create was ambiguous") {
			a.Message = "create was ambiguous; Piopiy's webhooks show the call was placed"
		}
	}
	if a.DialTime == nil && at != nil {
		a.DialTime = at
		c.changed = true
	}
}

func eventTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		now := metav1.Now()
		return &now
	}
	return &metav1.Time{Time: t}
}

func timeOrNil(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return &metav1.Time{Time: t}
}
