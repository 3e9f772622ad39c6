package call

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/account"
	piopiyv3 "github.com/callfleet/callfleet/pkg/piopiy/v3"
)

// The v3 backend. A Call with spec.agent runs on Piopiy v3 (a hosted agent
// or a pipeline; no stream, so no gateway). The v2 code calls into it at two
// seams in reconcileNormal (dial and in-flight) and one in reconcileDelete;
// everything else about v3 lives in the v3*.go files.
//
// What v3 lets the controller know, and what it infers:
//   - The create answers a call_id, recorded as attempts[].callID. There is
//     no idempotency key and no lookup by our attempt id (no public v3
//     webhook or call list), so an ambiguous create can only be waited out:
//     it is never redialled and ends Failed (settledBy Timeout) after the
//     settle timeout. The attempt id still travels in variables, so anything
//     that later reports the call (a LiveKit worker's job) can name it.
//   - GET /calls/{id} is polled; a status of ringing sets ringTime, answered
//     sets answerTime. Piopiy answers 404 once the call has ended, so the end
//     time is when the 404 was first seen (at most one poll interval late).
//   - The outcome is inferred: Answered when the call was ever seen
//     answered, else NoAnswer. v3 reports no end reason, so busy, rejected
//     and unanswered calls all read NoAnswer, and a call answered and ended
//     within one poll interval would too: keep PollInterval well under the
//     shortest conversation.

// V3API is the part of pkg/piopiy/v3's client the controller uses.
type V3API interface {
	AICall(ctx context.Context, req piopiyv3.AICallRequest) (*piopiyv3.CallCreated, error)
	PCMOCall(ctx context.Context, req piopiyv3.PCMOCallRequest) (*piopiyv3.CallCreated, error)
	GetCall(ctx context.Context, callID string) (*piopiyv3.CallInfo, error)
	Hangup(ctx context.Context, callID string, req piopiyv3.HangupRequest) (*piopiyv3.ActionAccepted, error)
	Transfer(ctx context.Context, callID string, req piopiyv3.TransferRequest) (*piopiyv3.ActionAccepted, error)
	GetTransfer(ctx context.Context, requestID string) (*piopiyv3.TransferStatus, error)
}

// Defaults of the v3 backend.
const (
	DefaultV3PollInterval         = 2 * time.Second
	DefaultV3AnsweredPollInterval = 5 * time.Second
)

// V3Backend holds what v3 Calls need: a client per account token and how
// often calls are polled. Polls share the Reconciler's Limiter with every
// other Piopiy request.
type V3Backend struct {
	// Options apply to every client (the base URL in tests).
	Options []piopiyv3.Option
	// PollInterval paces polls of a call not yet answered.
	PollInterval time.Duration
	// AnsweredPollInterval paces polls of an answered call (only its end is
	// left to learn).
	AnsweredPollInterval time.Duration

	mu      sync.Mutex
	clients map[[32]byte]V3API
}

// For returns the client of a v3 token, made once per token.
func (b *V3Backend) For(token string) (V3API, error) {
	key := sha256.Sum256([]byte(token))
	b.mu.Lock()
	defer b.mu.Unlock()
	if cl, ok := b.clients[key]; ok {
		return cl, nil
	}
	cl, err := piopiyv3.NewClient(token, b.Options...)
	if err != nil {
		return nil, err
	}
	if b.clients == nil {
		b.clients = map[[32]byte]V3API{}
	}
	b.clients[key] = cl
	return cl, nil
}

func (b *V3Backend) pollEvery(a *voicev1alpha1.CallAttempt) time.Duration {
	if a.AnswerTime != nil {
		return orDefault(b.AnsweredPollInterval, DefaultV3AnsweredPollInterval)
	}
	return orDefault(b.PollInterval, DefaultV3PollInterval)
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// isV3 reports whether a Call runs on the v3 backend. spec.agent cannot be
// added or removed (CEL), so this never changes during a Call's life.
func isV3(call *voicev1alpha1.Call) bool { return call.Spec.Agent != nil }

// v3AccountForStream explains why a stream Call cannot use a v3 account.
func v3AccountForStream(acct *account.Account) error {
	return &errStalled{reason: "NeedsV2Account", err: fmt.Errorf("account Secret %s holds a Piopiy v3 token, and v3 streams no audio to a WebSocket: give this Call spec.agent (a hosted agent or pipeline) instead of a stream, or an accountRef to a v2 Secret (%q and %q)", acct.Source, account.KeyAppID, account.KeySecret)}
}
