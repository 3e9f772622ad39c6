package handoff

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/internal/controller/agentpool"
	"github.com/callfleet/callfleet/internal/controller/call"
	"github.com/callfleet/callfleet/internal/transfer"
	piopiyv3 "github.com/callfleet/callfleet/pkg/piopiy/v3"
)

// Handoffs of spec.agent (Piopiy v3) Calls. Booking, queueing and releasing
// agents work exactly as for v2; what differs is who reaches the agent.
// There is no stream gateway to send a bridge and no webhook to tell of the
// agent's leg, so the Reconciler itself starts a warm transfer of the live
// call to the booked agent (internal/transfer) and reads its progress back
// on every pass while the handoff is Ringing. The seams are one branch in
// ringing and one in hangup; everything else about v3 is in this file.

// transferPoll paces reads of a transfer under way: Piopiy v3 tells nothing
// unless asked, and a transfer lasts at least the agent's ring.
const transferPoll = time.Second

// V3Clients gives the Piopiy v3 client of an account token; the Call
// controller's *call.V3Backend is one.
type V3Clients interface {
	For(token string) (call.V3API, error)
}

// isV3 reports whether a Call runs on Piopiy v3. spec.agent cannot be added
// or removed (CEL), so a Call never changes generation mid-handoff.
func isV3(c *voicev1alpha1.Call) bool { return c.Spec.Agent != nil }

// UnavailableError says why this manager cannot act on a Call's Piopiy
// call at all: no client for its generation, a v3 Call on an account that
// is not v3, a token no client can be made of. Asking again does not help,
// so a handoff that needs the call fails with it instead of retrying, and
// an onNoAgent hangup is given up with a Warning.
type UnavailableError struct {
	Reason string
}

func (e *UnavailableError) Error() string { return e.Reason }

// TransferError is a temporary failure to start or read the warm transfer
// to an agent (rate limit, 5xx, network): the pass is retried with the
// same transfer, so an agent is never rung twice for one assignment.
type TransferError struct {
	Agent     string
	RequestID string // empty while starting
	Err       error
}

func (e *TransferError) Error() string {
	if e.RequestID == "" {
		return fmt.Sprintf("starting the transfer to agent %s: %v", e.Agent, e.Err)
	}
	return fmt.Sprintf("following transfer %s to agent %s: %v", e.RequestID, e.Agent, e.Err)
}

func (e *TransferError) Unwrap() error { return e.Err }

// ringingV3 carries out the assignment of a v3 Call as a warm transfer:
// start it once, then follow it until the agent answers (Bridged), cannot
// be reached (the next agent is tried), or the caller leaves (Abandoned).
func (r *Reconciler) ringingV3(ctx context.Context, s *scope) (ctrl.Result, error) {
	c := s.call
	h := c.Status.Handoff
	pool, err := r.getPool(ctx, c)
	if err != nil {
		return ctrl.Result{}, err
	}
	if pool == nil {
		pool = &voicev1alpha1.AgentPool{}
	}
	r.releaseStale(s, pool)
	ended := agentpool.CallEnded(c)
	if ended && h.TransferRequestID == "" {
		s.end(voicev1alpha1.HandoffOutcomeAbandoned, fmt.Sprintf("the call ended while agent %s was ringing", h.Agent), false)
		return ctrl.Result{}, nil
	}
	a := callstate.Current(&c.Status)
	if a == nil || a.CallID == "" {
		s.end(voicev1alpha1.HandoffOutcomeFailed, "the call has no Piopiy v3 call id to transfer", false)
		return ctrl.Result{}, nil
	}
	api, err := r.v3API(ctx, c)
	if un := (*UnavailableError)(nil); errors.As(err, &un) {
		if ended {
			s.end(voicev1alpha1.HandoffOutcomeAbandoned, fmt.Sprintf("the call ended while agent %s was ringing", h.Agent), false)
		} else {
			s.end(voicev1alpha1.HandoffOutcomeFailed, fmt.Sprintf("cannot transfer the call to agent %s: %s", h.Agent, un.Reason), false)
		}
		return ctrl.Result{}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}

	if h.TransferRequestID == "" {
		if res, done, err := r.beforeTransfer(ctx, s); done || err != nil {
			return res, err
		}
		h = s.call.Status.Handoff
	}
	p, err := transfer.Step(ctx, api, transferRequest(s.call, a, pool), h.TransferRequestID)
	if err != nil {
		return ctrl.Result{}, &TransferError{Agent: h.Agent, RequestID: h.TransferRequestID, Err: err}
	}
	if ended && p.State != transfer.Connected {
		// The caller is gone: whatever the transfer says, nobody is left
		// to connect. A transfer that did connect before the call ended
		// still counts as Bridged (below).
		s.end(voicev1alpha1.HandoffOutcomeAbandoned, fmt.Sprintf("the call ended while agent %s was ringing", h.Agent), false)
		return ctrl.Result{}, nil
	}
	switch p.State {
	case transfer.Unsent:
		// The POST may or may not have reached Piopiy. Step again: a
		// transfer that did start answers 409 naming itself and is adopted.
		// BridgeWait bounds the retries, as it bounds the gateway's bridge.
		if due := assignedAt(h, s.now).Add(r.BridgeWait); !s.now.Before(due) {
			s.end(voicev1alpha1.HandoffOutcomeFailed, fmt.Sprintf("the transfer to agent %s could not be started within %s (%s)", h.Agent, r.BridgeWait, p.Reason), false)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{RequeueAfter: transferPoll}, nil
	case transfer.Ringing:
		// No ring timeout of our own: Piopiy ends the transfer after
		// timeout_sec, and until it does no other transfer of this call can
		// start (409), so the next agent could not be rung anyway.
		s.transferStarted(p.RequestID)
		return ctrl.Result{RequeueAfter: transferPoll}, nil
	case transfer.Connected:
		s.transferStarted(p.RequestID)
		s.transferConnected()
		s.bridgedOutcome(ended)
		return ctrl.Result{}, nil
	case transfer.CallEnded:
		s.end(voicev1alpha1.HandoffOutcomeAbandoned, fmt.Sprintf("the call ended while agent %s was ringing (%s)", h.Agent, p.Reason), false)
		return ctrl.Result{}, nil
	}
	// AgentFailed: busy, no answer, refused number, ...; the caller still
	// waits on hold, so the next agent is tried as after a missed v2 leg.
	log.FromContext(ctx).Info("Agent not reached by the transfer", "agent", h.Agent, "transfer", p.RequestID, "reason", p.Reason)
	s.noAnswer()
	return ctrl.Result{RequeueAfter: time.Millisecond}, nil
}

// beforeTransfer makes sure, past the cache, that no other pass (another
// replica, or this one on an older read) has already recorded a transfer
// for this assignment: starting one rings the agent, so it is done only on
// the latest version of the Call. A transfer started concurrently by a pass
// that has not written yet is still under way when this one is sent, and
// Piopiy's 409 names it, so it is adopted rather than doubled. done means
// the pass ends here (the Call moved on; its next pass looks again).
func (r *Reconciler) beforeTransfer(ctx context.Context, s *scope) (res ctrl.Result, done bool, err error) {
	fresh := &voicev1alpha1.Call{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(s.call), fresh); err != nil {
		return ctrl.Result{}, true, client.IgnoreNotFound(err)
	}
	h, fh := s.call.Status.Handoff, fresh.Status.Handoff
	if fh == nil || fh.Phase != voicev1alpha1.HandoffRinging || fh.Assignment != h.Assignment {
		return ctrl.Result{RequeueAfter: time.Millisecond}, true, nil
	}
	s.rebase(fresh)
	if fh.TransferRequestID != "" {
		return ctrl.Result{RequeueAfter: transferPoll}, true, nil
	}
	return ctrl.Result{}, false, nil
}

// recordTransfer writes the transfer a pass started onto the latest
// version of the Call when the pass's own write conflicted. Lost, it could
// be found again only while still under way (409); once the agent has
// answered, a new POST would transfer the call a second time.
func (r *Reconciler) recordTransfer(ctx context.Context, s *scope) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		fresh := &voicev1alpha1.Call{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(s.call), fresh); err != nil {
			return client.IgnoreNotFound(err)
		}
		h, want := fresh.Status.Handoff, s.call.Status.Handoff
		if h == nil || h.Phase != voicev1alpha1.HandoffRinging || h.Assignment != want.Assignment || h.TransferRequestID != "" {
			return nil // moved on, or recorded by another pass
		}
		h.TransferRequestID, h.BridgeSentTime = s.transfer, want.BridgeSentTime
		return r.Status().Update(ctx, fresh)
	})
}

// transferRequest is the warm transfer of the Call to its assigned agent:
// the agent's phone rings for the pool's ringTimeoutSeconds with the
// caller on the pool's hold audio, and the Call's latest result summary
// is read to the agent before the caller is connected.
func transferRequest(c *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt, pool *voicev1alpha1.AgentPool) transfer.Request {
	h := c.Status.Handoff
	req := transfer.Request{
		CallID:     a.CallID,
		ToNumber:   h.Number,
		CallerID:   a.From,
		TimeoutSec: int(ringTimeout(pool) / time.Second),
		HoldAudio:  pool.Spec.Queue.HoldAudioURL,
		// The handoff's identity travels with the transfer, so whatever
		// reports on it later (a LiveKit worker's job) can name it.
		Variables: map[string]any{
			callstate.ExtraCall:    c.Namespace + "/" + c.Name,
			"callfleet_agent":      h.Agent,
			"callfleet_assignment": h.Assignment,
		},
	}
	if c.Status.Result != nil {
		req.Summary = c.Status.Result.Summary
	}
	return req
}

func assignedAt(h *voicev1alpha1.CallHandoffStatus, now time.Time) time.Time {
	if h.AgentAssignedTime != nil {
		return h.AgentAssignedTime.Time
	}
	return now
}

// v3API returns the v3 client of the Call's account once the shared rate
// limit lets a request through. A *UnavailableError says it never will;
// other errors (the account Secret not readable yet) are worth a retry.
func (r *Reconciler) v3API(ctx context.Context, c *voicev1alpha1.Call) (call.V3API, error) {
	if r.V3 == nil || r.Accounts == nil {
		return nil, &UnavailableError{Reason: "this manager has no Piopiy v3 backend configured"}
	}
	acct, err := r.Accounts.Resolve(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("resolving the account of the handoff: %w", err)
	}
	if acct.Generation != account.GenerationV3 {
		return nil, &UnavailableError{Reason: fmt.Sprintf("account Secret %s is not a Piopiy v3 account (no %q)", acct.Source, account.KeyToken)}
	}
	api, err := r.V3.For(acct.V3.Token)
	if err != nil {
		return nil, &UnavailableError{Reason: fmt.Sprintf("account Secret %s: %v", acct.Source, err)}
	}
	if r.Limiter != nil {
		if err := r.Limiter.Wait(ctx); err != nil {
			return nil, err
		}
	}
	return api, nil
}

// hangupV3 ends the v3 call (onNoAgent: Hangup); the Call controller's
// polling then sees it end. ErrNotFound means it already has.
func (r *Reconciler) hangupV3(ctx context.Context, c *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt) error {
	api, err := r.v3API(ctx, c)
	if err != nil {
		return err
	}
	_, err = api.Hangup(ctx, a.CallID, piopiyv3.HangupRequest{Reason: "no agent took the call (onNoAgent: Hangup)"})
	if errors.Is(err, piopiyv3.ErrNotFound) {
		return nil
	}
	return err
}
