package handoff

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/internal/controller/agentpool"
)

// scope is one pass over one Call: a working copy whose status is written
// once at the end, the status as read, and what to do once it is written.
// Every change to status.handoff goes through the methods in this file.
type scope struct {
	call   *voicev1alpha1.Call
	before *voicev1alpha1.CallStatus
	pool   string // the AgentPool's name, for Events
	now    time.Time

	assigned bool // an agent was assigned in this pass (released if the write fails)
	release  bool // release the Call's bookings once the write landed
	hangup   bool // hang the call up (onNoAgent: Hangup) once the write landed
	// transfer is the v3 transfer this pass started (or adopted): it rings
	// the agent, so it is recorded even when the pass's write conflicts.
	transfer string
}

func newScope(c *voicev1alpha1.Call, now time.Time) *scope {
	return &scope{call: c.DeepCopy(), before: c.Status.DeepCopy(), pool: agentpool.PoolOf(c), now: now}
}

// rebase moves the pass onto a fresher read of the Call: the write goes
// against its version, and what it changes is compared with its status.
func (s *scope) rebase(fresh *voicev1alpha1.Call) {
	s.call, s.before = fresh.DeepCopy(), fresh.Status.DeepCopy()
	setMonitoring(s.call)
}

// handoff returns status.handoff, recording a spec request not yet recorded.
func (s *scope) handoff() *voicev1alpha1.CallHandoffStatus {
	st := &s.call.Status
	if st.Handoff == nil {
		st.Handoff = &voicev1alpha1.CallHandoffStatus{}
	}
	h := st.Handoff
	if h.Phase == "" {
		t := metav1.NewTime(s.now)
		// The assignment counter goes on across handoffs of the Call.
		*h = voicev1alpha1.CallHandoffStatus{Source: voicev1alpha1.HandoffSourceSpec, RequestedTime: &t, Phase: voicev1alpha1.HandoffRequested, Assignment: h.Assignment}
	}
	if h.RequestedTime == nil {
		t := metav1.NewTime(s.now)
		h.RequestedTime = &t
	}
	return h
}

// assign binds the Call to the agent booked for it: Ringing, a new
// assignment.
func (s *scope) assign(a voicev1alpha1.Agent) {
	h := s.handoff()
	t := metav1.NewTime(s.now)
	h.Phase = voicev1alpha1.HandoffRinging
	h.Agent, h.Number = a.Name, a.Number
	h.Assignment++
	h.AgentAssignedTime = &t
	h.BridgeSentTime, h.BridgedTime, h.EndedTime = nil, nil, nil
	h.TransferRequestID = "" // a v3 transfer belongs to one assignment
	s.assigned = true
}

// queued records that the Call waits in the pool's queue.
func (s *scope) queued() { s.handoff().Phase = voicev1alpha1.HandoffQueued }

// noAnswer sends a ringing handoff back to Requested with its agent tried.
func (s *scope) noAnswer() {
	h := s.handoff()
	h.TriedAgents = append(h.TriedAgents, h.Agent)
	if n := len(h.TriedAgents); n > callstate.MaxTriedAgents {
		h.TriedAgents = append([]string(nil), h.TriedAgents[n-callstate.MaxTriedAgents:]...)
	}
	h.Phase = voicev1alpha1.HandoffRequested
	h.Agent, h.Number, h.TransferRequestID = "", "", ""
	h.AgentAssignedTime, h.BridgeSentTime, h.BridgedTime = nil, nil, nil
	s.release = true
}

// transferStarted records the Piopiy v3 warm transfer that rings the
// assigned agent. Its start stands for the v2 bridge going out
// (bridgeSentTime), so the handoff reads the same on either generation.
func (s *scope) transferStarted(requestID string) {
	h := s.handoff()
	if h.TransferRequestID != requestID {
		s.transfer = requestID
	}
	h.TransferRequestID = requestID
	if h.BridgeSentTime == nil {
		t := metav1.NewTime(s.now)
		h.BridgeSentTime = &t
	}
}

// transferConnected records that the agent answered the warm transfer:
// on v3 no webhook receiver writes Bridged, so this controller does.
func (s *scope) transferConnected() {
	h := s.handoff()
	h.Phase = voicev1alpha1.HandoffBridged
	if h.BridgedTime == nil {
		t := metav1.NewTime(s.now)
		h.BridgedTime = &t
	}
}

// bridgedOutcome records that an agent answered (the receiver wrote the
// phase), and ends the handoff when the call is over.
func (s *scope) bridgedOutcome(ended bool) {
	h := s.handoff()
	h.Outcome = voicev1alpha1.HandoffOutcomeBridged
	if !ended {
		return
	}
	h.Phase = voicev1alpha1.HandoffEnded
	if h.EndedTime == nil {
		end := metav1.NewTime(s.now)
		if a := callstate.Current(&s.call.Status); a != nil && a.EndTime != nil {
			end = *a.EndTime
		}
		h.EndedTime = &end
	}
	s.release = true
}

// end finishes a handoff without a (further) agent. noAgent outcomes (the
// pool could not serve the Call) follow spec.handoff.onNoAgent.
func (s *scope) end(outcome voicev1alpha1.HandoffOutcome, reason string, noAgent bool) {
	h := s.handoff()
	h.Phase = voicev1alpha1.HandoffFailed
	if outcome == voicev1alpha1.HandoffOutcomeTimedOut {
		h.Phase = voicev1alpha1.HandoffTimedOut
		h.Agent, h.Number, h.AgentAssignedTime, h.BridgeSentTime = "", "", nil, nil
	}
	h.Outcome = outcome
	h.Reason = reason
	if noAgent {
		h.OnNoAgent = voicev1alpha1.OnNoAgentReturnToBot
		if sp := s.call.Spec.Handoff; sp != nil && sp.OnNoAgent == voicev1alpha1.OnNoAgentHangup && !agentpool.CallEnded(s.call) {
			h.OnNoAgent = voicev1alpha1.OnNoAgentHangup
			s.hangup = true
		}
		// For people reading the Call (and the bot, told the reason):
		// onNoAgent is the state, this the prose.
		h.Reason += map[string]string{
			voicev1alpha1.OnNoAgentReturnToBot: "; the bot keeps the call",
			voicev1alpha1.OnNoAgentHangup:      "; hanging up the call (onNoAgent: Hangup)",
		}[h.OnNoAgent]
	}
	s.release = true
}

// setMonitoring sets HandoffMonitoring when the stream is kept after the
// bridge: only listenMode both carries the agent's voice.
func setMonitoring(c *voicev1alpha1.Call) {
	if c.Spec.Handoff == nil || !c.Spec.Handoff.KeepStreaming {
		meta.RemoveStatusCondition(&c.Status.Conditions, voicev1alpha1.ConditionHandoffMonitoring)
		return
	}
	cond := metav1.Condition{Type: voicev1alpha1.ConditionHandoffMonitoring, Status: metav1.ConditionTrue, Reason: voicev1alpha1.ReasonListenModeBoth,
		Message: "the stream stays up after the bridge carrying the caller and the agent", ObservedGeneration: c.Generation}
	switch c.Spec.Stream.ListenMode {
	case voicev1alpha1.ListenBoth:
	case voicev1alpha1.ListenCallee:
		cond.Status, cond.Reason = metav1.ConditionFalse, voicev1alpha1.ReasonListenModeCallee
		cond.Message = "keepStreaming is set but stream.listenMode is callee: after the bridge the stream carries the agent only, not the caller; use listenMode both"
	default:
		cond.Status, cond.Reason = metav1.ConditionFalse, voicev1alpha1.ReasonListenModeCaller
		cond.Message = "keepStreaming is set but stream.listenMode is caller: after the bridge the stream carries the caller only, not the agent; use listenMode both"
	}
	meta.SetStatusCondition(&c.Status.Conditions, cond)
}
