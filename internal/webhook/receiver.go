// Package webhook receives Piopiy's live events and CDRs and folds them into
// Call status.
//
// Piopiy signs nothing, so the URL carries a secret token. Each account
// Secret with a webhookToken key has its own URL,
// POST /piopiy/accounts/<namespace>/<secret>/<token>, and an event posted
// there is applied only to a Call that dials with that account and only when
// its appid is the account's: one app owner's URL cannot touch another's
// Calls. The older global URL, POST /piopiy/events/<token>, still works for
// accounts without a token of their own (and checks appid too). A wrong or
// missing token gets 401 and nothing is applied.
//
// The receiver does one status write per new fact and answers at once;
// decisions (retries, hangups) are left to the Call controller, which that
// write wakes.
package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/internal/metrics"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// PathPrefix is the global URL; the token follows it.
const PathPrefix = "/piopiy/events/"

// AccountPathPrefix is the per-account URL; <namespace>/<secret>/<token>
// follow it.
const AccountPathPrefix = "/piopiy/accounts/"

// maxBody bounds a webhook body; Piopiy's are well under 4 KiB.
const maxBody = 64 << 10

// bodyTimeout bounds reading a body, so a client trickling bytes holds a
// connection for seconds, not for as long as it likes.
const bodyTimeout = 10 * time.Second

// Receiver is the http.Handler for Piopiy webhooks.
type Receiver struct {
	// Client reads through the manager's cache, with the callstate indexes.
	Client client.Client
	// APIReader reads past the cache when a fresh Call is not cached yet.
	APIReader client.Reader
	// Token is the secret path segment of the global URL; "" turns the
	// global URL off.
	Token string
	// Accounts reads account Secrets: the tokens of per-account URLs, and
	// the account (app id, own URL or not) of the Call an event names. It
	// should have a ReadLimit. Nil turns per-account URLs and the appid
	// check off (tests that predate them).
	Accounts *account.Resolver
	// CacheWait bounds how long a webhook for a just-dialed Call waits for
	// the cache to show it before falling back to the API.
	CacheWait time.Duration
	// Recent is shared with the Call controller of this process: the
	// versions of Calls their writes replaced, so the next webhook of a
	// call starts from the receiver's (or the controller's) last write
	// rather than from a cache that has not shown it yet, which costs a
	// 409 Conflict, a read and a second write (nil: nothing remembered).
	Recent *callstate.Recent
}

type reply struct {
	Result  string `json:"result"`
	Message string `json:"message,omitempty"`
}

func (rc *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	logger := log.FromContext(ctx).WithName("webhook")
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		write(w, http.StatusMethodNotAllowed, reply{Result: "error", Message: "use POST"})
		return
	}
	sc, code := rc.authenticate(ctx, req.URL.Path)
	if code != http.StatusOK {
		result, msg := "unauthorized", "unknown webhook token"
		if code == http.StatusServiceUnavailable {
			result, msg = "busy", "could not check the token; retry later"
		}
		metrics.WebhookEvents.WithLabelValues("", result).Inc()
		write(w, code, reply{Result: result, Message: msg})
		return
	}
	// The server's ReadTimeout bounds the whole request too; this is the
	// receiver's own bound, whatever server it is mounted on.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
	if err != nil {
		metrics.WebhookEvents.WithLabelValues("", "malformed").Inc()
		write(w, http.StatusBadRequest, reply{Result: "malformed", Message: "reading body: " + err.Error()})
		return
	}
	wh, err := piopiy.ParseWebhook(body)
	if err != nil {
		metrics.WebhookEvents.WithLabelValues("", "malformed").Inc()
		write(w, http.StatusBadRequest, reply{Result: "malformed", Message: "not a Piopiy event or CDR: " + err.Error()})
		return
	}
	status := statusLabel(wh)
	if wh.Event == nil && wh.CDR == nil {
		metrics.WebhookEvents.WithLabelValues(status, "ignored").Inc()
		write(w, http.StatusOK, reply{Result: "ignored", Message: "only live events and CDRs are used"})
		return
	}
	result, key, err := rc.apply(ctx, sc, wh)
	switch {
	case err != nil:
		metrics.WebhookEvents.WithLabelValues(status, "error").Inc()
		logger.Error(err, "Applying webhook", "status", status, "call", key)
		// Piopiy redelivers on failure, so a transient error loses nothing.
		write(w, http.StatusServiceUnavailable, reply{Result: "error", Message: "could not record the event; retry later"})
	default:
		metrics.WebhookEvents.WithLabelValues(status, string(result)).Inc()
		if result == callstate.Applied {
			logger.V(1).Info("Applied webhook", "status", status, "call", key)
		}
		write(w, http.StatusOK, reply{Result: string(result)})
	}
}

// ignored is the result for webhooks of calls callfleet did not place.
const ignored callstate.Result = "ignored"

// apply finds the Call and folds the webhook into its status, retrying on
// write conflicts with the controller or other deliveries.
func (rc *Receiver) apply(ctx context.Context, sc scope, wh *piopiy.Webhook) (callstate.Result, klog.ObjectRef, error) {
	requestID, extra := ids(wh)
	key, found, err := rc.find(ctx, sc, requestID, extra)
	if err == nil && !found && callstate.NamesOnlyLeg(wh.Event) {
		key, found, err = rc.findByLeg(ctx, wh.Event.CMIUUID)
	}
	if err != nil || !found {
		return ignored, klog.ObjectRef{}, err
	}
	ref := klog.KRef(key.Namespace, key.Name)
	var result callstate.Result
	fresh := false
	err = retry.RetryOnConflict(callstate.ConflictBackoff, func() error {
		call := &voicev1alpha1.Call{}
		err := rc.Client.Get(ctx, key, call)
		if err == nil && !fresh {
			if newer := rc.Recent.Fresher(call); newer != nil {
				call = newer
			}
		}
		if fresh || apierrors.IsNotFound(err) {
			// After a conflict the cache is behind by definition; and a Call
			// dialed a moment ago may not be cached yet: only the API can
			// say it is gone.
			err = rc.APIReader.Get(ctx, key, call)
			fresh = true
		}
		if err != nil {
			return err
		}
		if result, err = rc.permitted(ctx, sc, call, wh); err != nil || result == refused {
			return err
		}
		wasEnded := endedAttempts(call)
		result = callstate.Apply(call, wh)
		if result == callstate.Unmatched && !fresh {
			// The cache may predate the attempt the webhook is about.
			if err := rc.APIReader.Get(ctx, key, call); err != nil {
				return err
			}
			result = callstate.Apply(call, wh)
		}
		fresh = true
		if result != callstate.Applied {
			return nil
		}
		from := call.ResourceVersion
		if err := rc.Client.Status().Update(ctx, call); err != nil {
			return err
		}
		rc.Recent.Wrote(from, call)
		if endedAttempts(call) > wasEnded {
			metrics.Attempts.WithLabelValues(string(callstate.Current(&call.Status).Outcome)).Inc()
		}
		return nil
	})
	if apierrors.IsNotFound(err) {
		return ignored, ref, nil // the Call was deleted: nothing to record
	}
	if result == callstate.Unmatched {
		result = ignored
	}
	if result == refused {
		log.FromContext(ctx).Info("Refused a webhook for a Call of another account", "call", ref, "url", sc.String())
	}
	return result, ref, err
}

// find locates the Call a webhook belongs to through the cache's indexes:
// by request id, then by the attempt id callfleet put in extra_params. A
// webhook can beat the cache to a Call dialed milliseconds ago, so a miss on
// a call that names itself in extra_params waits briefly, then asks the API.
func (rc *Receiver) find(ctx context.Context, sc scope, requestID string, extra map[string]string) (types.NamespacedName, bool, error) {
	attemptID := extra[callstate.ExtraAttempt]
	if requestID == "" && attemptID == "" {
		return types.NamespacedName{}, false, nil
	}
	deadline := time.Now().Add(rc.CacheWait)
	for {
		for _, q := range []struct{ index, value string }{{callstate.IndexRequestID, requestID}, {callstate.IndexAttemptID, attemptID}} {
			if q.value == "" {
				continue
			}
			var calls voicev1alpha1.CallList
			if err := rc.Client.List(ctx, &calls, client.MatchingFields{q.index: q.value}); err != nil {
				return types.NamespacedName{}, false, fmt.Errorf("looking up Call by %s: %w", q.index, err)
			}
			if len(calls.Items) > 0 {
				return client.ObjectKeyFromObject(&calls.Items[0]), true, nil
			}
		}
		if attemptID == "" || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return types.NamespacedName{}, false, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return rc.findByName(ctx, sc, extra)
}

// findByName is the last resort for a webhook naming a Call the cache has not
// shown yet: read it from the API and check the attempt is really its own.
func (rc *Receiver) findByName(ctx context.Context, sc scope, extra map[string]string) (types.NamespacedName, bool, error) {
	ns, name, ok := strings.Cut(extra[callstate.ExtraCall], "/")
	if !ok || !sc.mayReach(ns, rc.Accounts) {
		// A Call the URL's account cannot own is not worth an API read.
		return types.NamespacedName{}, false, nil
	}
	key := types.NamespacedName{Namespace: ns, Name: name}
	call := &voicev1alpha1.Call{}
	if err := rc.APIReader.Get(ctx, key, call); err != nil {
		if apierrors.IsNotFound(err) {
			return key, false, nil
		}
		return key, false, err
	}
	for _, id := range callstate.AttemptIDs(call) {
		if id == extra[callstate.ExtraAttempt] {
			return key, true, nil
		}
	}
	return key, false, nil
}

func ids(wh *piopiy.Webhook) (string, map[string]string) {
	if wh.Event != nil {
		return wh.Event.RequestID, wh.Event.ExtraParams
	}
	return wh.CDR.RequestID, wh.CDR.ExtraParams
}

// statusLabel is the metric label of a webhook, from a closed set: the
// documented statuses, "cdr", the other documented kinds, else "other". The
// status is the sender's to choose, and each new label value is a new
// series held in memory for the manager's lifetime.
func statusLabel(wh *piopiy.Webhook) string {
	switch {
	case wh.Event != nil:
		if wh.Event.Status.Known() {
			return string(wh.Event.Status)
		}
		return "other"
	case wh.CDR != nil:
		return "cdr"
	}
	switch wh.Kind {
	case piopiy.KindDTMF, piopiy.KindInbound:
		return string(wh.Kind)
	}
	return "other"
}

func endedAttempts(call *voicev1alpha1.Call) int {
	n := 0
	for _, a := range call.Status.Attempts {
		if a.State == voicev1alpha1.AttemptEnded {
			n++
		}
	}
	return n
}

func write(w http.ResponseWriter, code int, r reply) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(r)
}
