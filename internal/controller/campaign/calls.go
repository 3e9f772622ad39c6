package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/callstate"
)

// buildCall makes the Call for attempt n of a contact: a single attempt
// (the Campaign grants the next one itself).
func buildCall(c *voicev1alpha1.Campaign, e entry, n int32) *voicev1alpha1.Call {
	t := &c.Spec.CallTemplate
	key := e.c.key()
	call := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{
		Namespace:   c.Namespace,
		Name:        CallName(c.Name, key, n),
		Labels:      make(map[string]string, len(t.Labels)+2),
		Annotations: make(map[string]string, len(t.Annotations)+2),
		// The Call controller's finalizer too, so it need not add it with
		// a second write before the dial.
		Finalizers: []string{CountFinalizer, voicev1alpha1.HangupFinalizer},
	}}
	if c.Spec.Notify != nil {
		// Its call.completed event must outlive a TTL deletion (docs/results.md).
		call.Finalizers = append(call.Finalizers, voicev1alpha1.NotifyFinalizer)
	}
	for k, v := range t.Labels {
		call.Labels[k] = v
	}
	call.Labels[voicev1alpha1.LabelCampaign] = LabelValue(c.Name)
	call.Labels[voicev1alpha1.LabelContactHash] = KeyHash(key)
	for k, v := range t.Annotations {
		call.Annotations[k] = v
	}
	call.Annotations[voicev1alpha1.AnnotationContactKey] = key
	call.Annotations[voicev1alpha1.AnnotationAttempt] = strconv.Itoa(int(n))
	t.Spec.DeepCopyInto(&call.Spec.CallParameters)
	call.Spec.Retry.MaxAttempts = 1
	call.Spec.To = e.c.number
	own := e.src.variables(e.c)
	if len(own) > 0 || len(t.Spec.Variables) > 0 {
		vars := make(map[string]string, len(t.Spec.Variables)+len(own))
		for k, v := range t.Spec.Variables {
			vars[k] = v
		}
		for k, v := range own {
			vars[k] = v
		}
		call.Spec.Variables = vars
	}
	call.OwnerReferences = []metav1.OwnerReference{ownerRef(c)}
	return call
}

// ownCalls lists the Calls the Campaign controls, from the cache, without
// copying them: callers must DeepCopy before changing one.
func (r *Reconciler) ownCalls(ctx context.Context, c *voicev1alpha1.Campaign) ([]voicev1alpha1.Call, error) {
	var list voicev1alpha1.CallList
	if err := r.List(ctx, &list, client.InNamespace(c.Namespace), client.MatchingFields{IndexCallCampaign: c.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing Calls of Campaign: %w", err)
	}
	out := list.Items[:0]
	for i := range list.Items {
		// A Call of an earlier Campaign with the same name is not ours.
		if metav1.IsControlledBy(&list.Items[i], c) {
			out = append(out, list.Items[i])
		}
	}
	return out, nil
}

// finished reports whether a Call is over and its outcome: the phase is
// terminal, or the Call is being deleted and only the count finalizer is
// left (the Call controller has hung it up and let go).
func finished(call *voicev1alpha1.Call) (bool, voicev1alpha1.CallOutcome) {
	switch call.Status.Phase {
	case voicev1alpha1.CallCompleted, voicev1alpha1.CallFailed:
		return true, lastOutcome(call)
	}
	if !call.DeletionTimestamp.IsZero() && len(call.Finalizers) == 1 && call.Finalizers[0] == CountFinalizer {
		return true, lastOutcome(call)
	}
	return false, ""
}

func lastOutcome(call *voicev1alpha1.Call) voicev1alpha1.CallOutcome {
	if n := len(call.Status.Attempts); n > 0 && call.Status.Attempts[n-1].Outcome != "" {
		return call.Status.Attempts[n-1].Outcome
	}
	return voicev1alpha1.OutcomeCanceled
}

// finishTime is when a Call ended: its last attempt's end, else when it
// became Ready or Stalled, else its creation.
func finishTime(call *voicev1alpha1.Call) time.Time {
	if n := len(call.Status.Attempts); n > 0 && call.Status.Attempts[n-1].EndTime != nil {
		return call.Status.Attempts[n-1].EndTime.Time
	}
	for _, typ := range []string{voicev1alpha1.ConditionReady, voicev1alpha1.ConditionStalled} {
		if c := meta.FindStatusCondition(call.Status.Conditions, typ); c != nil && c.Status == metav1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return call.CreationTimestamp.Time
}

// resultOf is the results line of a contact whose final attempt is call.
func resultOf(key string, n int32, call *voicev1alpha1.Call) *resultRow {
	_, outcome := finished(call)
	row := &resultRow{key: key, number: call.Spec.To, attempts: n, outcome: outcome, lastAttempt: finishTime(call)}
	if res := call.Status.Result; res != nil {
		row.disposition, row.summary = res.Disposition, res.Summary
	}
	if a := call.Status.Attempts; len(a) > 0 {
		row.recording = a[len(a)-1].Recording
	}
	return row
}

// unsettled reports whether a Call's last attempt was ended without anyone
// learning what it did (an ambiguous create never seen at Piopiy): the
// person may have been rung, so, as the Call controller does for its own
// retries, the Campaign never rings the contact again.
func unsettled(call *voicev1alpha1.Call) bool {
	a := callstate.Current(&call.Status)
	return a != nil && a.SettledBy == callstate.SettledByTimeout
}

// settling reports whether a Call's current attempt has ended at Piopiy
// (its end time is known) while its outcome waits to be settled, by the CDR
// or its lookup: the person is off the phone, so it holds no concurrency
// slot, but the contact is not finished and is not retried meanwhile.
func settling(call *voicev1alpha1.Call) bool {
	cur := callstate.Current(&call.Status)
	return cur != nil && cur.EndTime != nil && cur.State != voicev1alpha1.AttemptEnded
}

// streaming reports whether a Call holds a stream on its endpoint now.
func streaming(call *voicev1alpha1.Call) bool {
	if call.Status.Stream == nil {
		return false
	}
	st := call.Status.Stream.State
	return st == voicev1alpha1.StreamPhaseConnected || st == voicev1alpha1.StreamPhasePaused
}

// maxCreatesPerPass bounds the Calls one reconcile creates, and
// maxReleasesPerPass the finalizer releases and deletes: a pass that sends
// hundreds of requests holds the Campaign's worker for seconds on a busy
// apiserver, and a suspend or stop written meanwhile waits for it. The rest
// is done by the next pass, which starts at once.
const (
	maxCreatesPerPass  = 32
	maxReleasesPerPass = 48
)

// createAll creates the planned Calls: one first, then the rest
// apiWorkers at a time (a slow start, as ReplicaSets do), so a systematic
// failure costs one request, not dozens. It returns the Calls made (or
// found made) and the first error.
func (r *Reconciler) createAll(ctx context.Context, s *scope, calls []*voicev1alpha1.Call) (int, error) {
	names := make([]string, len(calls))
	for i, call := range calls {
		names[i] = call.Name
	}
	// Expect before creating: the watch event may beat the create's reply.
	r.expect.expect(s.key, names, s.now)
	results := make([]error, len(calls))
	done, batch := 0, 1
	for done < len(calls) {
		n := min(batch, len(calls)-done)
		parallel(n, func(i int) { results[done+i] = r.create(ctx, s, calls[done+i]) })
		done += n
		if errors.Join(results[:done]...) != nil {
			break
		}
		batch = apiWorkers
	}
	for _, name := range names[done:] {
		r.expect.lower(s.key, name)
	}
	made := 0
	var first error
	for _, err := range results[:done] {
		if err == nil {
			made++
		} else if first == nil {
			first = err
		}
	}
	return made, first
}

// errNameTaken is a create refused because a Call of that name exists and is
// not this Campaign's.
type errNameTaken struct {
	name     string
	deleting bool
}

func (e *errNameTaken) Error() string {
	if e.deleting {
		return fmt.Sprintf("Call %s of an earlier Campaign is still being deleted", e.name)
	}
	return fmt.Sprintf("Call %s exists and is not this Campaign's", e.name)
}

// create makes one Call. AlreadyExists is success when the Call is this
// Campaign's: names are deterministic, so it is this attempt of this
// contact, made before a crash, and no second one is ever made.
func (r *Reconciler) create(ctx context.Context, s *scope, call *voicev1alpha1.Call) error {
	err := r.Create(ctx, call)
	if err == nil {
		callsCreated.Inc()
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		r.expect.lower(s.key, call.Name)
		return err
	}
	existing := &voicev1alpha1.Call{}
	if gerr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(call), existing); gerr != nil {
		r.expect.lower(s.key, call.Name)
		if apierrors.IsNotFound(gerr) {
			return err
		}
		return gerr
	}
	if metav1.IsControlledBy(existing, s.c) {
		return nil
	}
	r.expect.lower(s.key, call.Name)
	return &errNameTaken{name: call.Name, deleting: !existing.DeletionTimestamp.IsZero()}
}

// apiWorkers bounds the requests one reconcile has in flight at once.
const apiWorkers = 16

// parallel runs fn(0..n-1) on up to apiWorkers goroutines.
func parallel(n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, apiWorkers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// release removes CountFinalizer from Calls that are accounted for: their
// contact is in the results record, or a later attempt exists. A patch that
// loses a race is not an error: the next pass tries again.
func (r *Reconciler) release(ctx context.Context, s *scope, calls []released) error {
	var mu sync.Mutex
	var errs []error
	parallel(len(calls), func(i int) {
		call := calls[i].call
		err := r.patchFinalizer(ctx, call, map[string]string{voicev1alpha1.AnnotationCounted: calls[i].why})
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			r.recent.add(s.key, "release/"+string(call.UID), s.wall)
		case apierrors.IsNotFound(err):
		case apierrors.IsConflict(err) || apierrors.IsInvalid(err):
			s.requeueIn(time.Second)
		default:
			errs = append(errs, err)
		}
	})
	return errors.Join(errs...)
}

type released struct {
	call *voicev1alpha1.Call
	why  string // "recorded" or "superseded"
}

// patchFinalizer removes CountFinalizer from a Call and adds annotations, in
// one JSON patch that tests the finalizer is still where the cache saw it.
// Unlike a merge patch with a resourceVersion, it does not fail each time
// the Call controller has written status meanwhile, and unlike a plain
// merge patch it cannot drop the Call controller's own finalizer while it
// may be needed. Once the Call is Completed or Failed (a terminal phase
// never reopens, so the cache's word is final) nothing is live to hang up:
// the same patch removes the Call controller's HangupFinalizer, so a TTL
// deletion is the Call's last write instead of a delete, an update by the
// Call controller and this Campaign's second look.
func (r *Reconciler) patchFinalizer(ctx context.Context, call *voicev1alpha1.Call, annotations map[string]string) error {
	var ops []map[string]any
	remove := []string{CountFinalizer}
	if p := call.Status.Phase; p == voicev1alpha1.CallCompleted || p == voicev1alpha1.CallFailed {
		remove = append(remove, voicev1alpha1.HangupFinalizer)
	}
	var at []int
	for _, f := range remove {
		if i := slices.Index(call.Finalizers, f); i >= 0 {
			at = append(at, i)
		}
	}
	// The highest index first, so each removal leaves the next one's index
	// as tested.
	slices.Sort(at)
	slices.Reverse(at)
	for _, i := range at {
		path := fmt.Sprintf("/metadata/finalizers/%d", i)
		ops = append(ops,
			map[string]any{"op": "test", "path": path, "value": call.Finalizers[i]},
			map[string]any{"op": "remove", "path": path})
	}
	for k, v := range annotations {
		if call.Annotations == nil {
			ops = append(ops, map[string]any{"op": "add", "path": "/metadata/annotations", "value": map[string]string{}})
		}
		ops = append(ops, map[string]any{"op": "add", "path": "/metadata/annotations/" + strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1"), "value": v})
	}
	if len(ops) == 0 {
		return nil
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	// The reply is decoded into the object: never into an informer's.
	return r.Patch(ctx, call.DeepCopy(), client.RawPatch(types.JSONPatchType, body))
}

// expire deletes released Calls ttlSecondsAfterFinished after they ended.
func (r *Reconciler) expire(ctx context.Context, s *scope) error {
	ttl := s.c.Spec.TTLSecondsAfterFinished
	if ttl == nil {
		return nil
	}
	var expired []*voicev1alpha1.Call
	for _, call := range s.calls {
		if len(expired) == maxReleasesPerPass {
			s.requeueIn(time.Millisecond)
			break
		}
		if call.Annotations[voicev1alpha1.AnnotationCounted] == "" || controllerutil.ContainsFinalizer(call, CountFinalizer) || !call.DeletionTimestamp.IsZero() {
			continue
		}
		if done, _ := finished(call); !done || r.recent.has(s.key, "delete/"+string(call.UID), s.wall) {
			continue
		}
		at := finishTime(call).Add(time.Duration(*ttl) * time.Second)
		if wait := at.Sub(s.now); wait > 0 {
			// Time is not watched: come back when the TTL runs out.
			s.requeueIn(wait)
			continue
		}
		expired = append(expired, call)
	}
	errs := make([]error, len(expired))
	parallel(len(expired), func(i int) {
		call := expired[i]
		errs[i] = client.IgnoreNotFound(r.Delete(ctx, call, client.Preconditions{UID: &call.UID}))
		if errs[i] == nil {
			r.recent.add(s.key, "delete/"+string(call.UID), s.wall)
		}
	})
	return errors.Join(errs...)
}

// hangUp sets spec.hangup on the Calls in flight (stopMode Hangup).
func (r *Reconciler) hangUp(ctx context.Context, s *scope) error {
	var todo []*voicev1alpha1.Call
	for _, call := range s.inflightCalls {
		if !call.Spec.Hangup && !r.recent.has(s.key, "hangup/"+string(call.UID), s.wall) {
			todo = append(todo, call)
		}
	}
	errs := make([]error, len(todo))
	parallel(len(todo), func(i int) {
		call := todo[i]
		errs[i] = client.IgnoreNotFound(r.Patch(ctx, call.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"hangup":true}}`))))
		if errs[i] == nil {
			r.recent.add(s.key, "hangup/"+string(call.UID), s.wall)
		}
	})
	return errors.Join(errs...)
}
