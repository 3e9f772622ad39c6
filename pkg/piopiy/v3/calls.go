package piopiyv3

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// CallOptions are the options of a call create. Zero fields are left out,
// so Piopiy's defaults apply.
type CallOptions struct {
	// MaxDurationSec caps the call, 30 to 7200.
	MaxDurationSec int `json:"max_duration_sec,omitempty"`
	// RingTimeoutSec is how long the person's phone rings, 5 to 120.
	RingTimeoutSec int `json:"ring_timeout_sec,omitempty"`
	// Record records the call when set.
	Record *bool `json:"record,omitempty"`
}

// AICallRequest places a call answered by a Piopiy-hosted AI agent
// (POST /voice/ai/call).
type AICallRequest struct {
	CallerID string `json:"caller_id"`
	ToNumber string `json:"to_number"`
	// AgentID is the hosted agent's UUID.
	AgentID string       `json:"agent_id"`
	Options *CallOptions `json:"options,omitempty"`
	// Variables reach the agent; values are strings, numbers or booleans.
	Variables map[string]any `json:"variables,omitempty"`
}

// PCMOCallRequest places a call that runs a pipeline (POST /voice/pcmo/call).
type PCMOCallRequest struct {
	CallerID string   `json:"caller_id"`
	ToNumber string   `json:"to_number"`
	AppID    string   `json:"app_id"`
	Pipeline Pipeline `json:"pipeline"`
	// AgentID optionally names a hosted agent the pipeline's call belongs to.
	AgentID   string         `json:"agent_id,omitempty"`
	Options   *CallOptions   `json:"options,omitempty"`
	Variables map[string]any `json:"variables,omitempty"`
}

// CallCreated is the reply of a create. Inferred shape: Piopiy documents no
// reply schema; call_id (top level or under "data") is what the SDK
// examples read.
type CallCreated struct {
	CallID    string `json:"call_id"`
	RequestID string `json:"request_id,omitempty"`
	Status    string `json:"status,omitempty"`
}

// Call states reported by GET /calls/{id} (inferred vocabulary: Piopiy
// publishes none; once a call ends it answers 404).
const (
	CallQueued   = "queued"
	CallRinging  = "ringing"
	CallAnswered = "answered"
)

// CallInfo is the reply of GET /calls/{id} (inferred shape).
type CallInfo struct {
	CallID    string         `json:"call_id"`
	Status    string         `json:"status"`
	From      string         `json:"caller_id,omitempty"`
	To        string         `json:"to_number,omitempty"`
	Variables map[string]any `json:"variables,omitempty"`
}

// Answered reports whether the person has answered.
func (c *CallInfo) Answered() bool { return c.Status == CallAnswered }

// AICall places a call to a hosted agent. It is sent once: see the package
// documentation on ErrAmbiguous.
func (c *Client) AICall(ctx context.Context, req AICallRequest) (*CallCreated, error) {
	return c.create(ctx, "ai call", "/voice/ai/call", EndpointAICall, req)
}

// PCMOCall places a call that runs a pipeline. It is sent once.
func (c *Client) PCMOCall(ctx context.Context, req PCMOCallRequest) (*CallCreated, error) {
	return c.create(ctx, "pcmo call", "/voice/pcmo/call", EndpointPCMOCall, req)
}

func (c *Client) create(ctx context.Context, op, path string, ep Endpoint, req any) (*CallCreated, error) {
	var out CallCreated
	if err := c.send(ctx, op, http.MethodPost, path, ep, req, &out, false); err != nil {
		return nil, err
	}
	if strings.TrimSpace(out.CallID) == "" {
		return nil, &Error{Kind: KindAmbiguous, Op: op, HTTPStatus: http.StatusOK, Message: "reply has no call_id; the call may have been placed"}
	}
	return &out, nil
}

// GetCall returns a live call's status. ErrNotFound means the call has
// ended (or never existed).
func (c *Client) GetCall(ctx context.Context, callID string) (*CallInfo, error) {
	if err := validateUUID(callID, "call_id"); err != nil {
		err.(*Error).Op = "get call"
		return nil, err
	}
	var out CallInfo
	if err := c.send(ctx, "get call", http.MethodGet, "/calls/"+url.PathEscape(callID), "", nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// HangupRequest ends a live call. Cause defaults to NORMAL_CLEARING.
type HangupRequest struct {
	Cause  string `json:"cause,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// ActionAccepted is the reply of a live-call action.
type ActionAccepted struct {
	RequestID string `json:"request_id"`
	CallID    string `json:"call_id,omitempty"`
}

// Hangup ends a live call (POST /calls/{id}/actions/hangup). Hanging up
// twice is harmless, so it is retried on temporary errors; ErrNotFound
// means the call had already ended.
func (c *Client) Hangup(ctx context.Context, callID string, req HangupRequest) (*ActionAccepted, error) {
	if err := validateUUID(callID, "call_id"); err != nil {
		err.(*Error).Op = "hangup"
		return nil, err
	}
	if req.Cause == "" {
		req.Cause = "NORMAL_CLEARING"
	}
	var out ActionAccepted
	if err := c.send(ctx, "hangup", http.MethodPost, "/calls/"+url.PathEscape(callID)+"/actions/hangup", EndpointCallHangup, req, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// voiceHangup is the body of the older /voice/call/hangup.
type voiceHangup struct {
	CallID string `json:"call_id"`
	HangupRequest
}

// VoiceHangup ends a live call through the SDK's /voice/call/hangup.
func (c *Client) VoiceHangup(ctx context.Context, callID string, req HangupRequest) error {
	if req.Cause == "" {
		req.Cause = "NORMAL_CLEARING"
	}
	return c.send(ctx, "voice hangup", http.MethodPost, "/voice/call/hangup", EndpointHangup, voiceHangup{CallID: callID, HangupRequest: req}, nil, true)
}

// TransferRequest moves a live call: warm to ToNumber or SIPURI (the person
// waits on HoldAudio while the target rings, and TransferSummary is read to
// the target), or blind to a Pipeline. Set exactly one target.
type TransferRequest struct {
	ToNumber string   `json:"to_number,omitempty"`
	SIPURI   string   `json:"sip_uri,omitempty"`
	Pipeline Pipeline `json:"pipeline,omitempty"`
	CallerID string   `json:"caller_id,omitempty"`
	// TimeoutSec is how long the target rings.
	TimeoutSec int `json:"timeout_sec,omitempty"`
	// Confirm asks the target to accept before the person is connected.
	Confirm         *bool             `json:"confirm,omitempty"`
	HoldAudio       string            `json:"hold_audio,omitempty"`
	TransferSummary string            `json:"transfer_summary,omitempty"`
	SIPHeaders      map[string]string `json:"sip_headers,omitempty"`
	Variables       map[string]any    `json:"variables,omitempty"`
}

// Transfer starts a transfer (POST /calls/{id}/actions/transfer) and
// returns its request id; follow it with GetTransfer. It rings someone, so
// it is sent once: after ErrAmbiguous, sending it again is safe only
// because Piopiy answers 409 (ErrTransferInProgress, naming the transfer)
// while one is under way. ErrNotFound means the call has ended.
func (c *Client) Transfer(ctx context.Context, callID string, req TransferRequest) (*ActionAccepted, error) {
	if err := validateUUID(callID, "call_id"); err != nil {
		err.(*Error).Op = "transfer"
		return nil, err
	}
	var out ActionAccepted
	if err := c.send(ctx, "transfer", http.MethodPost, "/calls/"+url.PathEscape(callID)+"/actions/transfer", EndpointTransfer, req, &out, false); err != nil {
		return nil, err
	}
	if out.RequestID == "" {
		return nil, &Error{Kind: KindAmbiguous, Op: "transfer", HTTPStatus: http.StatusOK, Message: "reply has no request_id"}
	}
	return &out, nil
}

// pcmoTransfer is the body of /voice/pcmo/transfer.
type pcmoTransfer struct {
	CallID   string   `json:"call_id"`
	Pipeline Pipeline `json:"pipeline"`
}

// PCMOTransfer replaces a live call's pipeline (POST /voice/pcmo/transfer),
// the SDK's transfer. It is sent once.
func (c *Client) PCMOTransfer(ctx context.Context, callID string, p Pipeline) error {
	return c.send(ctx, "pcmo transfer", http.MethodPost, "/voice/pcmo/transfer", EndpointPCMOTransfer, pcmoTransfer{CallID: callID, Pipeline: p}, nil, false)
}

// Transfer states and failure reasons of GET /transfers/{request_id}.
const (
	TransferQueued    = "queued"
	TransferCompleted = "completed"
	TransferFailed    = "failed"

	ReasonBusy          = "busy"
	ReasonNoAnswer      = "no_answer"
	ReasonRejected      = "rejected"
	ReasonInvalidNumber = "invalid_number"
	ReasonUnreachable   = "unreachable"
	ReasonCallBarred    = "call_barred"
	ReasonNetworkError  = "network_error"
	// SuffixCallEnded is appended to a reason when the person hung up
	// while the target was being reached.
	SuffixCallEnded = "_and_call_ended"
)

// TransferStatus is the reply of GET /transfers/{request_id}; Piopiy keeps
// it 15 minutes.
type TransferStatus struct {
	RequestID string `json:"request_id"`
	CallID    string `json:"call_id,omitempty"`
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`
}

// BaseReason is Reason without the _and_call_ended suffix.
func (t *TransferStatus) BaseReason() string { return strings.TrimSuffix(t.Reason, SuffixCallEnded) }

// CallEnded reports whether the person hung up during the transfer.
func (t *TransferStatus) CallEnded() bool { return strings.HasSuffix(t.Reason, SuffixCallEnded) }

// GetTransfer returns a transfer's progress.
func (c *Client) GetTransfer(ctx context.Context, requestID string) (*TransferStatus, error) {
	if strings.TrimSpace(requestID) == "" {
		return nil, &Error{Kind: KindValidation, Op: "get transfer", Field: "request_id", Message: "request_id is required."}
	}
	var out TransferStatus
	if err := c.send(ctx, "get transfer", http.MethodGet, "/transfers/"+url.PathEscape(requestID), "", nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Validate checks the request by the SDK's rules without sending it, so a
// caller can refuse a bad request before recording any intent to send it.
func (r AICallRequest) Validate() error { return validateRequest("ai call", EndpointAICall, r) }

// Validate checks the request by the SDK's rules without sending it.
func (r PCMOCallRequest) Validate() error { return validateRequest("pcmo call", EndpointPCMOCall, r) }

// Validate checks the request by the SDK's rules without sending it.
func (r TransferRequest) Validate() error { return validateRequest("transfer", EndpointTransfer, r) }

func validateRequest(op string, ep Endpoint, req any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return &Error{Kind: KindValidation, Op: op, Message: "cannot encode request", Err: err}
	}
	if err := Validate(ep, b); err != nil {
		err.(*Error).Op = op
		return err
	}
	return nil
}
