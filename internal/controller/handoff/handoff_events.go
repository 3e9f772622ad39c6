package handoff

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// written announces what a pass's status write changed, by comparing the
// status before and after it: each fact is an Event and a metric once,
// because a handoff's outcome, its assignments and its phase change in
// exactly one write that landed.
func (r *Reconciler) written(s *scope) {
	c := s.call
	var b voicev1alpha1.CallHandoffStatus
	if s.before.Handoff != nil {
		b = *s.before.Handoff
	}
	h := c.Status.Handoff
	if h == nil {
		return
	}
	switch {
	case b.Phase == "" && h.Source == voicev1alpha1.HandoffSourceSpec:
		r.event(c, "Normal", "HandoffRequested", "spec.handoff.requested: looking for an agent of %s", s.pool)
	case b.Phase == voicev1alpha1.HandoffRequested && len(b.TriedAgents) == 0 && b.Outcome == "" && h.Source == voicev1alpha1.HandoffSourceBot && h.Phase != b.Phase:
		why := ""
		if b.Reason != "" {
			why = ": " + b.Reason
		}
		r.event(c, "Normal", "HandoffRequested", "the bot asked for an agent of %s%s", s.pool, why)
	}
	if h.Phase == voicev1alpha1.HandoffQueued && b.Phase != voicev1alpha1.HandoffQueued {
		r.event(c, "Normal", "HandoffQueued", "every agent of %s is busy; queued", s.pool)
	}
	if b.Phase == voicev1alpha1.HandoffRinging && h.Phase == voicev1alpha1.HandoffRequested && len(h.TriedAgents) > 0 {
		r.event(c, "Normal", "AgentNoAnswer", "agent %s did not answer; trying the next agent", h.TriedAgents[len(h.TriedAgents)-1])
	}
	if h.Assignment > b.Assignment {
		r.event(c, "Normal", "AgentAssigned", "ringing agent %s (%s) of %s", h.Agent, h.Number, s.pool)
	}
	if h.TransferRequestID != "" && h.TransferRequestID != b.TransferRequestID {
		r.event(c, "Normal", "TransferStarted", "warm transfer %s to agent %s (%s) started", h.TransferRequestID, h.Agent, h.Number)
	}
	if h.Outcome != "" && h.Outcome != b.Outcome {
		// Once per handoff; again only when late word from Piopiy
		// corrects it (an agent who answered after all).
		r.outcome(c, h)
	}
	old := meta.FindStatusCondition(s.before.Conditions, voicev1alpha1.ConditionHandoffMonitoring)
	if cond := meta.FindStatusCondition(c.Status.Conditions, voicev1alpha1.ConditionHandoffMonitoring); cond != nil &&
		cond.Status == metav1.ConditionFalse && (old == nil || old.Reason != cond.Reason) {
		r.event(c, "Warning", cond.Reason, "%s", cond.Message)
	}
}

// outcome counts and announces how a handoff turned out.
func (r *Reconciler) outcome(c *voicev1alpha1.Call, h *voicev1alpha1.CallHandoffStatus) {
	switch h.Outcome {
	case voicev1alpha1.HandoffOutcomeBridged:
		Handoffs.WithLabelValues(OutcomeBridged).Inc()
		wait := ""
		if h.RequestedTime != nil && h.BridgedTime != nil {
			d := h.BridgedTime.Sub(h.RequestedTime.Time)
			TimeToAnswer.Observe(d.Seconds())
			wait = fmt.Sprintf(" %s after the request", d.Round(time.Second))
		}
		r.event(c, "Normal", "HandoffBridged", "agent %s answered%s", h.Agent, wait)
	case voicev1alpha1.HandoffOutcomeTimedOut:
		Handoffs.WithLabelValues(OutcomeTimedOut).Inc()
		r.event(c, "Warning", "HandoffTimedOut", "%s", h.Reason)
	case voicev1alpha1.HandoffOutcomeAbandoned:
		Handoffs.WithLabelValues(OutcomeAbandoned).Inc()
		r.event(c, "Warning", "HandoffAbandoned", "%s", h.Reason)
	default:
		Handoffs.WithLabelValues(OutcomeFailed).Inc()
		r.event(c, "Warning", "HandoffFailed", "%s", h.Reason)
	}
}

func (r *Reconciler) event(c *voicev1alpha1.Call, kind, reason, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(c, nil, kind, reason, "Handoff", note, args...)
	}
}
