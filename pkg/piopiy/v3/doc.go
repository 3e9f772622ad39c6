// Package piopiyv3 is a typed Go client for the v3 generation of the Piopiy
// voice API (https://rest.piopiy.com/v3, Bearer token), the only generation
// TeleCMI's current official SDKs speak: calls to Piopiy-hosted AI agents and
// PCMO pipelines, warm and blind transfer of a live call, hangup, and the
// status of a call or a transfer. It depends on the standard library only
// and can be used without the rest of callfleet.
//
// Every request is checked before it is sent by the same rules as the
// official SDK's validators (phone numbers ^[1-9][0-9]{6,15}$, UUID ids,
// option ranges, no unknown keys), and refused with the SDK's messages, so a
// request this package sends is one the official SDK would send too.
// Validate exposes those rules for servers that receive such bodies.
//
// # Creates are never retried
//
// The official Python SDK 1.2.x mounts urllib3's Retry on its session for
// 429/500/502/503/504 with POST among the allowed methods. A call create has
// no idempotency key, so when Piopiy placed the call and then failed to
// answer (or answered 5xx), the SDK places it again and the person's phone
// rings twice. This client never repeats a create or a transfer: any failure
// that could follow the request reaching Piopiy is reported as ErrAmbiguous,
// and the caller settles it (GET /calls/{id}, or its own records) before
// deciding anything. Only idempotent requests (GETs and hangups) are retried,
// and only on 429, 5xx and network errors.
//
// Placing a call to a hosted agent:
//
//	c, err := piopiyv3.NewClient(token)
//	if err != nil { ... }
//	res, err := c.AICall(ctx, piopiyv3.AICallRequest{
//		CallerID:  "918071387000",
//		ToNumber:  "919876543210",
//		AgentID:   "bdd32bcb-767c-40a5-be4a-5f45eeb348a6",
//		Options:   &piopiyv3.CallOptions{RingTimeoutSec: 30, MaxDurationSec: 600},
//		Variables: map[string]any{"attempt": "call-a/1"},
//	})
//	switch {
//	case err == nil:
//		// res.CallID names the call: follow it with GetCall.
//	case errors.Is(err, piopiyv3.ErrAmbiguous):
//		// The call may have been placed. Never retry blindly.
//	case errors.Is(err, piopiyv3.ErrAgentNotRunning):
//		// Start the agent in the Piopiy dashboard.
//	}
//
// Errors are *Error values carrying Piopiy's {error, message, request_id}
// body; each matches one sentinel through errors.Is. The token travels only
// in the Authorization header and never appears in errors or in String.
//
// Piopiy publishes no schema for v3 replies. The fields this package reads
// (call_id, status, request_id, reason) are the ones the SDKs' examples and
// TeleCMI's agent packages show; where a reply shape is inferred, the type's
// comment says so.
package piopiyv3
