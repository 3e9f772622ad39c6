// Package transfer carries out a handoff on Piopiy v3: the reserved agent
// is reached with a warm transfer of the live call, and its progress is
// read back, one step per reconcile. It knows nothing of AgentPools or
// reservations; the handoff controller asks Step what happened and moves
// its own state.
package transfer

import (
	"context"
	"errors"
	"fmt"

	piopiyv3 "github.com/callfleet/callfleet/pkg/piopiy/v3"
)

// API is the part of the v3 client a transfer needs.
type API interface {
	Transfer(ctx context.Context, callID string, req piopiyv3.TransferRequest) (*piopiyv3.ActionAccepted, error)
	GetTransfer(ctx context.Context, requestID string) (*piopiyv3.TransferStatus, error)
}

// Request is a warm transfer to one agent.
type Request struct {
	// CallID is the live v3 call (attempts[].callID).
	CallID string
	// ToNumber is the agent's number.
	ToNumber string
	// CallerID is shown to the agent (the number the call was placed from).
	CallerID string
	// TimeoutSec is how long the agent's phone rings (the pool's
	// ringTimeoutSeconds), 5 to 120.
	TimeoutSec int
	// HoldAudio is played to the person while the agent rings.
	HoldAudio string
	// Summary is read to the agent before the person is connected (the
	// Call's latest result summary).
	Summary string
	// Variables travel with the transfer (the handoff's identity).
	Variables map[string]any
}

// State is where a transfer stands after a Step.
type State int

const (
	// Ringing: the transfer is under way (queued at Piopiy); step again later.
	Ringing State = iota
	// Unsent: the POST may or may not have reached Piopiy (or was not sent);
	// step again with no request id: a transfer that did start answers 409
	// naming itself, so the retry never starts a second one while the first
	// is under way.
	Unsent
	// Connected: the agent answered and the person is with them.
	Connected
	// AgentFailed: this agent cannot be reached (busy, no answer, rejected,
	// invalid number, ...); the person is still on the call: try the next.
	AgentFailed
	// CallEnded: the person's call is gone, during the transfer or before.
	CallEnded
)

func (s State) String() string {
	switch s {
	case Ringing:
		return "Ringing"
	case Unsent:
		return "Unsent"
	case Connected:
		return "Connected"
	case AgentFailed:
		return "AgentFailed"
	case CallEnded:
		return "CallEnded"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Progress is the result of a Step.
type Progress struct {
	State State
	// RequestID names the transfer once Piopiy accepted it (or named it in
	// a 409); keep it and pass it to the next Step.
	RequestID string
	// Reason is Piopiy's failure reason (busy, no_answer, ...), or why the
	// step could not tell.
	Reason string
	// Adopted is true when a 409 named a transfer already under way, which
	// is then followed instead of starting another.
	Adopted bool
}

// Step advances a transfer: with no requestID it starts one (sent once,
// never retried by the client), else it reads the one named. An error is
// temporary (rate limit, 5xx, network): step again later with the same
// arguments.
func Step(ctx context.Context, api API, req Request, requestID string) (Progress, error) {
	if requestID == "" {
		return start(ctx, api, req)
	}
	st, err := api.GetTransfer(ctx, requestID)
	switch {
	case errors.Is(err, piopiyv3.ErrNotFound):
		// Kept 15 minutes after it finished; past that nothing tells.
		return Progress{State: AgentFailed, RequestID: requestID, Reason: "transfer status expired at Piopiy"}, nil
	case err != nil:
		return Progress{State: Ringing, RequestID: requestID}, fmt.Errorf("reading transfer %s: %w", requestID, err)
	}
	return progressOf(st), nil
}

func start(ctx context.Context, api API, req Request) (Progress, error) {
	tr := piopiyv3.TransferRequest{
		ToNumber: req.ToNumber, CallerID: req.CallerID, TimeoutSec: min(max(req.TimeoutSec, 5), 120),
		HoldAudio: req.HoldAudio, TransferSummary: req.Summary, Variables: req.Variables,
	}
	res, err := api.Transfer(ctx, req.CallID, tr)
	var pe *piopiyv3.Error
	switch {
	case err == nil:
		return Progress{State: Ringing, RequestID: res.RequestID}, nil
	case errors.As(err, &pe) && pe.Kind == piopiyv3.KindTransferInProgress:
		// One transfer at a time per call: follow the one under way (ours,
		// when an earlier POST's reply was lost).
		if pe.RequestID == "" {
			return Progress{State: Unsent, Reason: "a transfer is in progress and Piopiy did not name it"}, nil
		}
		return Progress{State: Ringing, RequestID: pe.RequestID, Adopted: true}, nil
	case errors.Is(err, piopiyv3.ErrNotFound):
		return Progress{State: CallEnded, Reason: "the call has ended"}, nil
	case errors.Is(err, piopiyv3.ErrValidation):
		// Piopiy (or the SDK's rules) refuses this agent's transfer, e.g. a
		// number it does not accept: the next agent may do.
		return Progress{State: AgentFailed, Reason: pe.Message}, nil
	case errors.Is(err, piopiyv3.ErrAmbiguous):
		return Progress{State: Unsent, Reason: "the transfer's reply was lost"}, nil
	}
	return Progress{State: Unsent}, fmt.Errorf("starting transfer: %w", err)
}

func progressOf(st *piopiyv3.TransferStatus) Progress {
	p := Progress{RequestID: st.RequestID, Reason: st.Reason}
	switch st.Status {
	case piopiyv3.TransferCompleted:
		p.State = Connected
	case piopiyv3.TransferFailed:
		p.State = AgentFailed
		if st.CallEnded() {
			p.State = CallEnded
		}
	default:
		p.State = Ringing
	}
	return p
}
