package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/internal/failpoint"
	"github.com/callfleet/callfleet/internal/metrics"
	piopiyv3 "github.com/callfleet/callfleet/pkg/piopiy/v3"
)

// v3Create is one prepared create: exactly one of the two requests is set.
type v3Create struct {
	ai   *piopiyv3.AICallRequest
	pcmo *piopiyv3.PCMOCallRequest
}

func (c v3Create) validate() error {
	if c.ai != nil {
		return c.ai.Validate()
	}
	return c.pcmo.Validate()
}

func (c v3Create) send(ctx context.Context, api V3API) (*piopiyv3.CallCreated, error) {
	if c.ai != nil {
		return api.AICall(ctx, *c.ai)
	}
	return api.PCMOCall(ctx, *c.pcmo)
}

// dialV3 starts a new attempt of a v3 Call, by the same at-most-once rule
// as dial: preflight (including the SDK's validation, so a request Piopiy
// would refuse never costs an attempt), record intent, POST once, record
// what the POST proved.
func (r *Reconciler) dialV3(ctx context.Context, call *voicev1alpha1.Call) (ctrl.Result, error) {
	if r.V3 == nil {
		return ctrl.Result{}, &errStalled{reason: "V3Disabled", err: errors.New("this manager has no Piopiy v3 backend configured")}
	}
	acct, err := r.Accounts.Resolve(ctx, call)
	if err != nil {
		return r.accountProblem(call, err)
	}
	if acct.Generation != account.GenerationV3 {
		err := fmt.Errorf("spec.agent needs a Piopiy v3 account, but Secret %s holds v2 %q/%q: give the Call an accountRef to a Secret with a v3 %q", acct.Source, account.KeyAppID, account.KeySecret, account.KeyToken)
		return r.accountProblem(call, &errStalled{reason: "NeedsV3Account", err: err})
	}
	from := call.Spec.From
	if from == "" {
		from = acct.From
	}
	if from == "" {
		err := fmt.Errorf("no caller id: set spec.from or the %q key of account Secret %s", account.KeyFrom, acct.Source)
		return r.accountProblem(call, &errStalled{reason: "NoCallerID", err: err})
	}
	n := int32(len(call.Status.Attempts)) + 1
	attemptID := callstate.AttemptID(call, n)
	create, err := v3Request(call, acct, from, attemptID)
	if err == nil {
		err = create.validate()
	}
	if err != nil {
		return ctrl.Result{}, &errStalled{reason: "InvalidV3Request", err: err}
	}
	r.setCondition(call, ConditionAccountResolved, true, "Resolved", "using Piopiy v3 account Secret "+acct.Source)
	api, err := r.V3.For(acct.V3.Token)
	if err != nil {
		return r.accountProblem(call, &errStalled{reason: "InvalidAccount", err: err})
	}

	waitStart := time.Now()
	if err := r.Limiter.Wait(ctx); err != nil {
		return ctrl.Result{}, fmt.Errorf("waiting for the Piopiy rate limit: %w", err)
	}
	metrics.PiopiyRequestWait.Observe(time.Since(waitStart).Seconds())

	// Intent first, exactly as for v2: once written, this attempt is never
	// dialed again whatever happens to the POST or to this process.
	attempt := voicev1alpha1.CallAttempt{
		Number: n, ID: attemptID, State: voicev1alpha1.AttemptIntent, From: from, IntentTime: metav1.NewTime(r.Now()),
	}
	call.Status.Attempts = append(call.Status.Attempts, attempt)
	call.Status.Phase = voicev1alpha1.CallDialing
	call.Status.NextAttemptTime = nil
	r.summarize(call, nil)
	if err := r.updateStatus(ctx, call); err != nil {
		return ctrl.Result{}, fmt.Errorf("recording dial intent: %w", err)
	}
	// No Event yet: the create's outcome has one in this same pass.
	failpoint.Crash(failpoint.DialAfterIntent)

	dctx, cancel := context.WithTimeout(ctx, r.DialTimeout)
	resp, dialErr := create.send(dctx, api)
	cancel()
	failpoint.Crash(failpoint.DialAfterPost)

	result := classifyV3(resp, dialErr)
	callID := ""
	if resp != nil {
		callID = resp.CallID
	}
	if err := r.reportDial(ctx, call, n, attempt.ID, result, dialErr, dialReport{
		placedLog:      []any{"callID", callID, "generation", "v3"},
		placedEvent:    "call id " + callID,
		ambiguousLog:   "Create was ambiguous; never redialling",
		ambiguousEvent: "not redialling",
		record:         r.recordV3DialResult,
	}); err != nil {
		return ctrl.Result{}, err
	}
	return r.afterDialV3(call, result)
}

// v3Request builds the create of a v3 Call: an AI call to the hosted agent,
// or a PCMO call running the pipeline.
func v3Request(call *voicev1alpha1.Call, acct *account.Account, from, attemptID string) (v3Create, error) {
	opts := &piopiyv3.CallOptions{MaxDurationSec: int(call.Spec.MaxDurationSeconds), RingTimeoutSec: int(call.Spec.RingTimeoutSeconds)}
	if call.Spec.Record {
		// v3 records by the create's options.record; its recordings are not
		// yet followed into status (no v3 recording lookup is documented).
		opts.Record = ptr.To(true)
	}
	vars := make(map[string]any, len(call.Spec.Variables)+2)
	for k, v := range extraParams(call, attemptID) {
		vars[k] = v
	}
	ag := call.Spec.Agent
	if len(ag.Pipeline) == 0 {
		return v3Create{ai: &piopiyv3.AICallRequest{CallerID: from, ToNumber: call.Spec.To, AgentID: ag.ID, Options: opts, Variables: vars}}, nil
	}
	if acct.V3.AppID == "" {
		return v3Create{}, fmt.Errorf("spec.agent.pipeline is placed as a PCMO call, which needs the app id: add an %q key to account Secret %s", account.KeyAppID, acct.Source)
	}
	p := make(piopiyv3.Pipeline, len(ag.Pipeline))
	for i, raw := range ag.Pipeline {
		if !json.Valid(raw.Raw) {
			return v3Create{}, fmt.Errorf("spec.agent.pipeline[%d] is not JSON", i)
		}
		p[i] = piopiyv3.RawAction(raw.Raw)
	}
	return v3Create{pcmo: &piopiyv3.PCMOCallRequest{CallerID: from, ToNumber: call.Spec.To, AppID: acct.V3.AppID, Pipeline: p, AgentID: ag.ID, Options: opts, Variables: vars}}, nil
}

// classifyV3 sorts a v3 create's result by what it proves about the
// person's phone. requestID carries the call_id.
func classifyV3(resp *piopiyv3.CallCreated, err error) dialResult {
	now := time.Now()
	switch {
	case err == nil:
		return dialResult{kind: dialPlaced, requestID: resp.CallID, at: now}
	case piopiyv3.IsAmbiguous(err):
		return dialResult{kind: dialAmbiguous, err: err, at: now}
	case errors.Is(err, piopiyv3.ErrRateLimited), errors.Is(err, piopiyv3.ErrTransport):
		return dialResult{kind: dialNotSent, err: err, at: now}
	default:
		return dialResult{kind: dialRefused, err: err, at: now}
	}
}

// recordV3DialResult writes what the POST proved into the attempt; only a
// placed call differs from v2 (its id is a call_id).
func (r *Reconciler) recordV3DialResult(ctx context.Context, call *voicev1alpha1.Call, attemptID string, res dialResult) error {
	if res.kind != dialPlaced {
		return r.recordDialResult(ctx, call, attemptID, res)
	}
	return r.updateAttempt(ctx, call, attemptID, func(a *voicev1alpha1.CallAttempt, _ bool) {
		if a.CallID == "" {
			a.CallID = res.requestID
		}
		if a.State == voicev1alpha1.AttemptIntent || a.State == voicev1alpha1.AttemptUnknown {
			a.State = voicev1alpha1.AttemptDialed
		}
		if a.DialTime == nil {
			a.DialTime = metaTime(res.at)
		}
	})
}

func (r *Reconciler) afterDialV3(call *voicev1alpha1.Call, result dialResult) (ctrl.Result, error) {
	switch result.kind {
	case dialRefused:
		if errors.Is(result.err, piopiyv3.ErrAuthentication) {
			return ctrl.Result{}, &errStalled{reason: "AuthenticationFailed", err: result.err}
		}
		return ctrl.Result{}, nil
	case dialNotSent:
		var perr *piopiyv3.Error
		if errors.As(result.err, &perr) && perr.RetryAfter > 0 {
			return ctrl.Result{RequeueAfter: perr.RetryAfter}, nil
		}
		return ctrl.Result{}, result.err
	case dialAmbiguous:
		return ctrl.Result{RequeueAfter: r.SettleTimeout}, nil
	}
	return ctrl.Result{RequeueAfter: r.V3.pollEvery(callstate.Current(&call.Status))}, nil
}
