package agentpool

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/internal/controller/call"
	"github.com/callfleet/callfleet/internal/transfer"
	piopiyv3 "github.com/callfleet/callfleet/pkg/piopiy/v3"
)

// Handoffs of spec.agent (Piopiy v3) Calls. Reservations work exactly as
// for v2; what differs is who reaches the agent: there is no gateway and no
// bridge PCMO, so this controller starts a warm transfer of the live call
// to the reserved agent and follows it (internal/transfer). The seams in
// handoff_controller.go are the two `c.Spec.Agent != nil` branches, in
// ringing and in hangup.

// transferPoll paces reads of a transfer in progress. Not watched: Piopiy
// v3 tells nothing unless asked.
const transferPoll = time.Second

// V3Clients gives the v3 client of an account token; the Call controller's
// *call.V3Backend is one.
type V3Clients interface {
	For(token string) (call.V3API, error)
}

// ringingV3 carries out an assigned agent of a v3 Call as a warm transfer:
// start it once, then follow it until the agent answers (Bridged), fails
// (the next agent is tried) or the person leaves.
func (r *HandoffReconciler) ringingV3(ctx context.Context, c *voicev1alpha1.Call, pool *voicev1alpha1.AgentPool) (ctrl.Result, error) {
	h := c.Status.Handoff
	a := callstate.Current(&c.Status)
	if a == nil || a.CallID == "" {
		return r.finish(ctx, c, voicev1alpha1.HandoffFailed, "the call has no Piopiy v3 call id to transfer", false)
	}
	api, err := r.v3API(ctx, c)
	if err != nil {
		return ctrl.Result{}, err
	}
	if api == nil {
		return r.finish(ctx, c, voicev1alpha1.HandoffFailed, "this manager has no Piopiy v3 backend to transfer the call with", false)
	}
	req := transfer.Request{
		CallID:     a.CallID,
		ToNumber:   h.Number,
		CallerID:   a.From,
		TimeoutSec: int(ringTimeout(pool) / time.Second),
		HoldAudio:  pool.Spec.Queue.HoldAudioURL,
		Variables:  map[string]any{callstate.ExtraCall: c.Namespace + "/" + c.Name, "callfleet_agent": h.Agent},
	}
	if c.Status.Result != nil {
		req.Summary = c.Status.Result.Summary
	}
	p, err := transfer.Step(ctx, api, req, h.TransferRequestID)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("transferring to agent %s: %w", h.Agent, err)
	}
	now := metav1.NewTime(r.Now())
	switch p.State {
	case transfer.Unsent:
		// Step again: a transfer that did start answers 409 and is adopted.
		return ctrl.Result{RequeueAfter: transferPoll}, nil
	case transfer.Ringing:
		if h.TransferRequestID == p.RequestID && h.BridgeSentTime != nil {
			return ctrl.Result{RequeueAfter: transferPoll}, nil
		}
		upd := c.DeepCopy()
		uh := upd.Status.Handoff
		uh.TransferRequestID = p.RequestID
		if uh.BridgeSentTime == nil {
			uh.BridgeSentTime = &now
		}
		if err := r.Status().Update(ctx, upd); err != nil {
			return conflictRequeue(err)
		}
		r.event(upd, "Normal", "TransferStarted", "warm transfer %s to agent %s (%s) started", p.RequestID, h.Agent, h.Number)
		return ctrl.Result{RequeueAfter: transferPoll}, nil
	case transfer.Connected:
		upd := c.DeepCopy()
		uh := upd.Status.Handoff
		uh.Phase = voicev1alpha1.HandoffBridged
		uh.TransferRequestID = p.RequestID
		if uh.BridgeSentTime == nil {
			uh.BridgeSentTime = &now
		}
		uh.BridgedTime = &now
		if err := r.Status().Update(ctx, upd); err != nil {
			return conflictRequeue(err)
		}
		r.observe(upd)
		return ctrl.Result{}, nil
	case transfer.CallEnded:
		return r.finish(ctx, c, voicev1alpha1.HandoffFailed, fmt.Sprintf("the call ended while agent %s was ringing (%s)", h.Agent, p.Reason), false)
	}
	// AgentFailed: as a missed bridge for v2, try the next agent.
	upd := c.DeepCopy()
	uh := upd.Status.Handoff
	uh.TriedAgents = append(uh.TriedAgents, uh.Agent)
	if n := len(uh.TriedAgents); n > callstate.MaxTriedAgents {
		uh.TriedAgents = append([]string(nil), uh.TriedAgents[n-callstate.MaxTriedAgents:]...)
	}
	uh.Phase = voicev1alpha1.HandoffRequested
	uh.Agent, uh.Number, uh.TransferRequestID = "", "", ""
	uh.AgentAssignedTime, uh.BridgeSentTime, uh.BridgedTime = nil, nil, nil
	if err := r.Status().Update(ctx, upd); err != nil {
		return conflictRequeue(err)
	}
	r.event(upd, "Normal", "AgentNoAnswer", "agent %s was not reached (%s); trying the next agent", h.Agent, p.Reason)
	return ctrl.Result{Requeue: true}, r.release(ctx, c.Namespace, pool.Name, c.Name)
}

// hangupV3 ends a v3 call whose handoff found no agent (onNoAgent Hangup),
// at most every hangupRetry; the Call controller's polling then ends it.
func (r *HandoffReconciler) hangupV3(ctx context.Context, c *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt) (ctrl.Result, error) {
	if a == nil || a.CallID == "" {
		return ctrl.Result{}, nil
	}
	r.mu.Lock()
	s := r.seenOf(client.ObjectKeyFromObject(c), c)
	wait := s.hangupAt.Add(hangupRetry).Sub(r.Now())
	if wait <= 0 {
		s.hangupAt = r.Now()
	}
	r.mu.Unlock()
	if wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	api, err := r.v3API(ctx, c)
	if err != nil || api == nil {
		if api == nil && err == nil {
			r.event(c, "Warning", "HangupUnavailable", "onNoAgent is Hangup but this manager has no Piopiy v3 client; the agent keeps the call")
		}
		return ctrl.Result{}, err
	}
	if _, err := api.Hangup(ctx, a.CallID, piopiyv3.HangupRequest{Reason: "no agent took the call (onNoAgent: Hangup)"}); err != nil && !errors.Is(err, piopiyv3.ErrNotFound) {
		return ctrl.Result{}, fmt.Errorf("hanging up after the handoff: %w", err)
	}
	r.event(c, "Normal", "HangupRequested", "attempt %d: hung up because no agent took the call (onNoAgent: Hangup)", a.Number)
	return ctrl.Result{RequeueAfter: hangupRetry}, nil
}

// v3API returns the v3 client of the Call's account once the shared rate
// limit lets a request through; nil without a v3 backend.
func (r *HandoffReconciler) v3API(ctx context.Context, c *voicev1alpha1.Call) (call.V3API, error) {
	if r.V3 == nil || r.Accounts == nil {
		return nil, nil
	}
	acct, err := r.Accounts.Resolve(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("resolving the account of the handoff: %w", err)
	}
	if acct.Generation != account.GenerationV3 {
		return nil, fmt.Errorf("account Secret %s is not a Piopiy v3 account", acct.Source)
	}
	api, err := r.V3.For(acct.V3.Token)
	if err != nil {
		return nil, err
	}
	if r.Limiter != nil {
		if err := r.Limiter.Wait(ctx); err != nil {
			return nil, err
		}
	}
	return api, nil
}
