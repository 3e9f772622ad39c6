package call

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/internal/failpoint"
	"github.com/callfleet/callfleet/internal/metrics"
	"github.com/callfleet/callfleet/internal/streamtoken"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// Condition types specific to Calls.
const (
	ConditionEndpointReady   = "EndpointReady"
	ConditionAccountResolved = "AccountResolved"
)

// errStalled marks a failure only a change of spec or of a referenced object
// can fix: the Call reports Stalled and is not retried by backoff.
type errStalled struct {
	reason string
	err    error
}

func (e *errStalled) Error() string { return e.err.Error() }
func (e *errStalled) Unwrap() error { return e.err }

// dial starts a new attempt: preflight, record intent, POST, record result.
func (r *Reconciler) dial(ctx context.Context, call *voicev1alpha1.Call) (ctrl.Result, error) {
	base, wait := r.streamBase(ctx, call)
	if base == "" {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	acct, err := r.Accounts.Resolve(ctx, call)
	if err != nil {
		return r.accountProblem(call, err)
	}
	if acct.Generation == account.GenerationV3 {
		return r.accountProblem(call, v3AccountForStream(acct))
	}
	from := call.Spec.From
	if from == "" {
		from = acct.From
	}
	if from == "" {
		err := fmt.Errorf("no caller id: set spec.from or the %q key of account Secret %s", account.KeyFrom, acct.Source)
		return r.accountProblem(call, &errStalled{reason: "NoCallerID", err: err})
	}
	if wait, err := r.sinceRefusal(call); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, err
	}
	r.setCondition(call, ConditionAccountResolved, true, "Resolved", "using account Secret "+acct.Source)
	api, err := r.Piopiy.For(acct.Credentials)
	if err != nil {
		return r.accountProblem(call, &errStalled{reason: "InvalidAccount", err: err})
	}

	waitStart := time.Now()
	if err := r.Limiter.Wait(ctx); err != nil {
		return ctrl.Result{}, fmt.Errorf("waiting for the Piopiy rate limit: %w", err)
	}
	metrics.PiopiyRequestWait.Observe(time.Since(waitStart).Seconds())

	// Intent first: once this write lands, this attempt is never dialed again
	// whatever happens to the POST or to this process.
	n := int32(len(call.Status.Attempts)) + 1
	attempt := voicev1alpha1.CallAttempt{
		Number:     n,
		ID:         callstate.AttemptID(call, n),
		State:      voicev1alpha1.AttemptIntent,
		From:       from,
		IntentTime: metav1.NewTime(r.Now()),
	}
	call.Status.Attempts = append(call.Status.Attempts, attempt)
	call.Status.Phase = voicev1alpha1.CallDialing
	call.Status.NextAttemptTime = nil
	wsURL, shownURL, err := r.streamURL(call, base, n)
	if err != nil {
		return ctrl.Result{}, err
	}
	call.Status.StreamURL = shownURL
	call.Status.Stream = &voicev1alpha1.CallStreamStatus{State: voicev1alpha1.StreamPhasePending}
	r.summarize(call, nil)
	if err := r.updateStatus(ctx, call); err != nil {
		return ctrl.Result{}, fmt.Errorf("recording dial intent: %w", err)
	}
	// No Event yet: the create's outcome (Placed, DialAmbiguous, ...) has
	// one in this same pass, and an intent left behind by a crash has its
	// DialAmbiguous in the next.
	failpoint.Crash(failpoint.DialAfterIntent)

	req := piopiy.MakeCallRequest{
		From:            from,
		To:              call.Spec.To,
		Route:           route(call.Spec.Route),
		DurationSeconds: int(call.Spec.MaxDurationSeconds),
		ExtraParams:     extraParams(call, attempt.ID),
		PCMO: piopiy.PCMO{piopiy.Stream(piopiy.StreamOptions{
			WSURL:          wsURL,
			ListenMode:     piopiy.ListenMode(call.Spec.Stream.ListenMode),
			VoiceQuality:   piopiy.VoiceQuality(call.Spec.Stream.VoiceQuality),
			StreamOnAnswer: call.Spec.Stream.StartOnAnswer == nil || *call.Spec.Stream.StartOnAnswer,
		})},
	}
	if call.Spec.Record {
		// Piopiy runs a PCMO in order: record first, so the whole call is on it.
		req.PCMO = append(piopiy.PCMO{piopiy.Record()}, req.PCMO...)
	}
	dctx, cancel := context.WithTimeout(ctx, r.DialTimeout)
	resp, dialErr := api.MakeCall(dctx, req)
	cancel()
	failpoint.Crash(failpoint.DialAfterPost)

	result := classify(resp, dialErr)
	requestID := ""
	if resp != nil {
		requestID = resp.RequestID
	}
	if err := r.reportDial(ctx, call, n, attempt.ID, result, dialErr, dialReport{
		placedLog:      []any{"requestID", requestID},
		placedEvent:    "request id " + requestID,
		ambiguousLog:   "Create was ambiguous; settling from webhooks and CDR lookups, never redialling",
		ambiguousEvent: "waiting for its webhooks, not redialling",
		record:         r.recordDialResult,
	}); err != nil {
		return ctrl.Result{}, err
	}
	return r.afterDial(call, result)
}

// dialReport is what differs between the generations when a create's
// outcome is reported: how the placed call is named, what follows an
// ambiguous create, and which status write records the result.
type dialReport struct {
	placedLog      []any
	placedEvent    string
	ambiguousLog   string
	ambiguousEvent string
	record         func(ctx context.Context, call *voicev1alpha1.Call, attemptID string, res dialResult) error
}

// reportDial counts, logs and records the outcome of attempt n's create and
// emits its Event. A result whose write fails is kept in memory so the next
// pass records it; if this process dies first, the attempt stays in Intent
// and is settled like an ambiguous one.
func (r *Reconciler) reportDial(ctx context.Context, call *voicev1alpha1.Call, n int32, attemptID string, result dialResult, dialErr error, rep dialReport) error {
	logger := log.FromContext(ctx)
	metrics.Dials.WithLabelValues(string(result.kind)).Inc()
	switch result.kind {
	case dialPlaced:
		logger.Info("Call placed", append([]any{"attempt", n}, rep.placedLog...)...)
		if n == 1 {
			metrics.ApplyToDial.Observe(r.Now().Sub(call.CreationTimestamp.Time).Seconds())
		}
	case dialAmbiguous:
		metrics.AmbiguousCreates.Inc()
		logger.Info(rep.ambiguousLog, "attempt", n, "error", dialErr.Error())
	default:
		logger.Info("Piopiy refused the call", "attempt", n, "error", dialErr.Error())
	}
	if err := rep.record(ctx, call, attemptID, result); err != nil {
		r.unrecorded.Store(attemptID, result)
		return fmt.Errorf("recording dial result of attempt %d: %w", n, err)
	}
	switch result.kind {
	case dialPlaced:
		r.event(call, "Normal", "Placed", "attempt %d placed, %s", n, rep.placedEvent)
	case dialAmbiguous:
		r.event(call, "Warning", "DialAmbiguous", "attempt %d: Piopiy's reply was lost or failed (%v); %s", n, dialErr, rep.ambiguousEvent)
	case dialRefused:
		r.event(call, "Warning", "DialRefused", "attempt %d: Piopiy refused the call: %v", n, dialErr)
	case dialNotSent:
		r.event(call, "Warning", "DialNotSent", "Piopiy could not be reached, nothing was sent: %v", dialErr)
	}
	return nil
}

func (r *Reconciler) afterDial(call *voicev1alpha1.Call, result dialResult) (ctrl.Result, error) {
	switch result.kind {
	case dialRefused:
		if refusedCredentials(result) {
			// Nothing was placed and the intent was withdrawn: the Call
			// waits, Stalled, for the Secret to be fixed.
			return r.accountProblem(call, &errStalled{reason: reasonAuthenticationFailed,
				err: fmt.Errorf("Piopiy refused the account's credentials, so nothing was placed; fix the app id or secret in the account Secret: %w", result.err)}) //nolint:staticcheck // ST1005: Piopiy is a name, and this message is the Stalled condition's sentence
		}
		return ctrl.Result{}, nil
	case dialNotSent:
		// Nothing reached Piopiy, so nothing was placed and the intent was
		// withdrawn: try again with backoff (or after Retry-After).
		var perr *piopiy.Error
		if errors.As(result.err, &perr) && perr.RetryAfter > 0 {
			return ctrl.Result{RequeueAfter: perr.RetryAfter}, nil
		}
		return ctrl.Result{}, result.err
	}
	return ctrl.Result{RequeueAfter: r.followUpIn(call)}, nil
}

type dialKind string

const (
	dialPlaced    dialKind = "placed"
	dialAmbiguous dialKind = "ambiguous"
	dialRefused   dialKind = "rejected"
	dialNotSent   dialKind = "not_sent"
)

type dialResult struct {
	kind      dialKind
	requestID string
	err       error
	at        time.Time
}

// classify sorts a make-call result by what it proves about the person's phone.
func classify(resp *piopiy.MakeCallResponse, err error) dialResult {
	now := time.Now()
	switch {
	case err == nil:
		return dialResult{kind: dialPlaced, requestID: resp.RequestID, at: now}
	case piopiy.IsAmbiguous(err):
		return dialResult{kind: dialAmbiguous, err: err, at: now}
	case errors.Is(err, piopiy.ErrRateLimited), errors.Is(err, piopiy.ErrTransport):
		return dialResult{kind: dialNotSent, err: err, at: now}
	default:
		return dialResult{kind: dialRefused, err: err, at: now}
	}
}

// recordDialResult writes what the POST proved into the attempt.
func (r *Reconciler) recordDialResult(ctx context.Context, call *voicev1alpha1.Call, attemptID string, res dialResult) error {
	return r.updateAttempt(ctx, call, attemptID, func(a *voicev1alpha1.CallAttempt, last bool) {
		switch res.kind {
		case dialPlaced:
			if a.RequestID == "" {
				a.RequestID = res.requestID
			}
			if a.State == voicev1alpha1.AttemptIntent || a.State == voicev1alpha1.AttemptUnknown {
				a.State = voicev1alpha1.AttemptDialed
			}
			if a.DialTime == nil {
				a.DialTime = metaTime(res.at)
			}
		case dialAmbiguous:
			if a.State == voicev1alpha1.AttemptIntent {
				a.State = voicev1alpha1.AttemptUnknown
				a.Message = "create was ambiguous: " + res.err.Error()
			}
		case dialRefused:
			if refusedCredentials(res) {
				withdrawIntent(call, a, last)
				return
			}
			if a.State == voicev1alpha1.AttemptIntent {
				a.State = voicev1alpha1.AttemptEnded
				a.Outcome = voicev1alpha1.OutcomeFailed
				a.SettledBy = callstate.SettledByRefused
				a.EndTime = metaTime(res.at)
				a.Message = "Piopiy refused the call: " + res.err.Error()
				metrics.Attempts.WithLabelValues(string(a.Outcome)).Inc()
			}
		case dialNotSent:
			// Provably nothing was sent: withdraw the intent so the attempt
			// count reflects calls that could have rung.
			withdrawIntent(call, a, last)
		}
	})
}

// refusedCredentials reports a refusal of the account itself (Piopiy's 420,
// HTTP 401 or 403): provably nothing was placed, and no retry helps until
// the Secret changes.
func refusedCredentials(res dialResult) bool {
	return res.kind == dialRefused && errors.Is(res.err, piopiy.ErrAuthentication)
}

// withdrawIntent removes an attempt that provably never reached a phone.
func withdrawIntent(call *voicev1alpha1.Call, a *voicev1alpha1.CallAttempt, last bool) {
	if a.State != voicev1alpha1.AttemptIntent || !last {
		return
	}
	call.Status.Attempts = call.Status.Attempts[:len(call.Status.Attempts)-1]
	call.Status.Phase = callstate.LivePhase(&call.Status)
	if len(call.Status.Attempts) > 0 {
		call.Status.Phase = voicev1alpha1.CallRetrying
	}
}

// updateAttempt applies mutate to one attempt and writes the status at once.
// It is for facts that must not be lost with a later conflicting write (what
// the POST returned, that a hangup was sent). A webhook may have updated the
// Call meanwhile, so on conflict it re-reads and mutates again: mutate must
// only fill in, never overwrite what a webhook recorded.
func (r *Reconciler) updateAttempt(ctx context.Context, call *voicev1alpha1.Call, attemptID string, mutate func(a *voicev1alpha1.CallAttempt, last bool)) error {
	first := true
	return retry.RetryOnConflict(callstate.ConflictBackoff, func() error {
		var stored *voicev1alpha1.CallStatus
		if w, ok := ctx.Value(writtenKey{}).(*writtenStatus); ok {
			stored = w.st
		}
		switch newer := r.Recent.Newer(call); {
		case !first:
			if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(call), call); err != nil {
				return err
			}
			stored = call.Status.DeepCopy()
		case newer != nil:
			// The receiver wrote a webhook meanwhile (the started event
			// races the POST's reply): start from its write, not into a
			// conflict.
			*call = *newer
			stored = call.Status.DeepCopy()
		}
		if w, ok := ctx.Value(writtenKey{}).(*writtenStatus); ok && stored != nil {
			w.st = stored
		}
		first = false
		idx := -1
		for i := range call.Status.Attempts {
			if call.Status.Attempts[i].ID == attemptID {
				idx = i
			}
		}
		if idx < 0 {
			return fmt.Errorf("attempt %s vanished from status", attemptID)
		}
		mutate(&call.Status.Attempts[idx], idx == len(call.Status.Attempts)-1)
		r.summarize(call, nil)
		if stored != nil && equality.Semantic.DeepEqual(stored, &call.Status) {
			// Already stored: a webhook recorded it first (the started
			// event often beats the POST's reply to the status).
			return nil
		}
		return r.updateStatus(ctx, call)
	})
}

// streamBase returns the URL calls stream to, or "" and a condition saying
// why the Call waits.
func (r *Reconciler) streamBase(ctx context.Context, call *voicev1alpha1.Call) (string, time.Duration) {
	if call.Spec.StreamEndpointRef == nil {
		meta.RemoveStatusCondition(&call.Status.Conditions, ConditionEndpointReady)
		return call.Spec.Stream.URL, 0
	}
	var ep voicev1alpha1.StreamEndpoint
	key := types.NamespacedName{Namespace: call.Namespace, Name: call.Spec.StreamEndpointRef.Name}
	if err := r.Get(ctx, key, &ep); err != nil {
		if apierrors.IsNotFound(err) {
			r.waitForEndpoint(call, "EndpointNotFound", fmt.Sprintf("StreamEndpoint %s does not exist; the Call dials once it is Ready", key.Name))
			return "", 0
		}
		r.waitForEndpoint(call, "EndpointUnreadable", err.Error())
		return "", 10 * time.Second
	}
	if !meta.IsStatusConditionTrue(ep.Status.Conditions, voicev1alpha1.ConditionReady) || ep.Status.URL == "" {
		r.waitForEndpoint(call, "EndpointNotReady", fmt.Sprintf("StreamEndpoint %s is not Ready; the Call dials once it is", key.Name))
		return "", 0
	}
	r.setCondition(call, ConditionEndpointReady, true, "Ready", fmt.Sprintf("StreamEndpoint %s is Ready at %s", key.Name, ep.Status.URL))
	return ep.Status.URL, 0
}

func (r *Reconciler) waitForEndpoint(call *voicev1alpha1.Call, reason, msg string) {
	if r.setCondition(call, ConditionEndpointReady, false, reason, msg) {
		r.event(call, "Normal", reason, "%s", msg)
	}
}

func (r *Reconciler) accountProblem(call *voicev1alpha1.Call, err error) (ctrl.Result, error) {
	reason := "AccountUnreadable"
	var st *errStalled
	switch {
	case errors.As(err, &st):
		reason = st.reason
	case errors.Is(err, account.ErrNotFound):
		reason = "SecretNotFound"
	case errors.Is(err, account.ErrInvalid):
		reason = "SecretInvalid"
	}
	if r.setCondition(call, ConditionAccountResolved, false, reason, err.Error()) {
		r.event(call, "Warning", reason, "%s", err.Error())
	}
	if reason == "AccountUnreadable" {
		return ctrl.Result{}, err
	}
	// Secrets are not watched (that would cache every Secret in the
	// cluster), so look again after AccountRetryInterval. The error reaches
	// summarize (Stalled) but not controller-runtime, whose backoff would
	// replace the interval.
	return ctrl.Result{RequeueAfter: AccountRetryInterval}, &errStalled{reason: reason, err: err}
}

// sinceRefusal keeps a Call whose credentials Piopiy refused from dialing
// again before AccountRetryInterval has passed since the refusal: the
// withdrawn attempt's own status write wakes it at once, and each pass would
// be another refused request to Piopiy. It returns how long is left, and the
// stall to report meanwhile.
func (r *Reconciler) sinceRefusal(call *voicev1alpha1.Call) (time.Duration, error) {
	c := meta.FindStatusCondition(call.Status.Conditions, ConditionAccountResolved)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != reasonAuthenticationFailed {
		return 0, nil
	}
	wait := c.LastTransitionTime.Add(AccountRetryInterval).Sub(r.Now())
	if wait <= 0 {
		return 0, nil
	}
	return wait, &errStalled{reason: reasonAuthenticationFailed, err: errors.New(c.Message)}
}

// reasonAuthenticationFailed: Piopiy refused the account's credentials.
const reasonAuthenticationFailed = "AuthenticationFailed"

// AccountRetryInterval is how often a Call stalled on its account Secret
// looks at it again.
const AccountRetryInterval = 30 * time.Second

// streamURL builds the ws_url of attempt n: the endpoint URL plus the Call's
// identity and a signed token. The second URL, for status, omits the token.
func (r *Reconciler) streamURL(call *voicev1alpha1.Call, base string, n int32) (string, string, error) {
	if call.Spec.StreamEndpointRef == nil {
		// A handler run elsewhere gets the URL as written.
		return base, base, nil
	}
	if _, err := url.Parse(base); err != nil {
		return "", "", &errStalled{reason: "BadEndpointURL", err: fmt.Errorf("StreamEndpoint URL %q: %w", base, err)}
	}
	// The platform connects at answer; the token must outlive the ring.
	ttl := time.Duration(call.Spec.RingTimeoutSeconds)*time.Second + 5*time.Minute
	// Signed with the endpoint's own key: its gateway holds that alone. The
	// token goes in the path as well as the query: nothing says Piopiy keeps
	// a ws_url's query.
	key, err := streamtoken.DeriveKey(r.TokenKey, call.Namespace, call.Spec.StreamEndpointRef.Name)
	if err != nil {
		return "", "", err
	}
	return streamtoken.URL(base, key, streamtoken.Claims{Namespace: call.Namespace, Call: call.Name, Attempt: n, Expires: r.Now().Add(ttl)})
}

func extraParams(call *voicev1alpha1.Call, attemptID string) map[string]string {
	out := make(map[string]string, len(call.Spec.Variables)+2)
	for k, v := range call.Spec.Variables {
		out[k] = v
	}
	out[callstate.ExtraAttempt] = attemptID
	out[callstate.ExtraCall] = call.Namespace + "/" + call.Name
	return out
}

func route(r string) piopiy.Route {
	switch r {
	case "India":
		return piopiy.RouteIndia
	case "Global":
		return piopiy.RouteGlobal
	}
	return ""
}

func metaTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t)
	return &mt
}
