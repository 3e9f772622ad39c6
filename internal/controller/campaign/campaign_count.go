package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// Counting each finished Call exactly once
//
// succeeded and failed live in status, because a Call may be deleted (TTL,
// a user) long before the Campaign ends. A Call is "counted" when
//
//	its index is in status.countedCalls, or
//	it carries AnnotationCounted.
//
// and the controller counts a finished Call only when neither holds. The
// steps, each safe to crash after:
//
//  1. Count: one status write adds the outcome to succeeded/failed AND the
//     index to countedCalls. It is an Update with the resourceVersion read,
//     so a reconcile working from a stale cache fails here instead of
//     counting twice.
//  2. Release: one JSON patch on the Call removes CountFinalizer and adds
//     AnnotationCounted. A crash before it leaves
//     the index in countedCalls: counted, released next time.
//  3. Prune: the next status write drops indexes whose Call is annotated or
//     gone. A Call can only be gone after step 2 (the finalizer holds it),
//     and the cache never shows a deleted Call again, so pruning never
//     makes a Call countable twice.
//
// CountFinalizer is set when the Call is created (no extra write) and holds
// a Call deleted by anyone until step 1: a deleted Call is counted with its
// last outcome, or Canceled.

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
		if c := meta.FindStatusCondition(call.Status.Conditions, typ); c != nil && c.Status == "True" {
			return c.LastTransitionTime.Time
		}
	}
	return call.CreationTimestamp.Time
}

func successful(c *voicev1alpha1.Campaign, o voicev1alpha1.CallOutcome) bool {
	if len(c.Spec.SuccessOutcomes) == 0 {
		return o == voicev1alpha1.OutcomeAnswered
	}
	return slices.Contains(c.Spec.SuccessOutcomes, o)
}

func countedValue(success bool) string {
	if success {
		return "succeeded"
	}
	return "failed"
}

// countFinished counts the Calls that finished since the last write (step
// 1), prunes countedCalls (step 3) and tallies the Calls in flight.
func (r *Reconciler) countFinished(s *scope) {
	st := &s.c.Status
	counted := make(map[int64]bool, len(st.CountedCalls))
	for _, i := range st.CountedCalls {
		counted[i] = true
	}
	for idx, call := range s.children {
		done, outcome := finished(call)
		switch {
		case !done:
			s.inflight++
			if streaming(call) {
				s.ownStreaming++
			}
		case call.Annotations[AnnotationCounted] != "" || counted[idx]:
		default:
			if successful(s.c, outcome) {
				st.Succeeded++
				s.succeeded++
			} else {
				st.Failed++
				s.failed++
			}
			counted[idx] = true
		}
	}
	out := st.CountedCalls[:0:0]
	for idx := range counted {
		call, ok := s.children[idx]
		if ok && call.Annotations[AnnotationCounted] == "" {
			out = append(out, idx)
		}
	}
	slices.Sort(out)
	st.CountedCalls = out
}

// releaseCounted removes CountFinalizer from the Calls whose count is
// stored (step 2). It runs after the status write, from what was written.
// A patch that loses a race is not an error: the index stays in
// countedCalls and the next reconcile releases it.
func (r *Reconciler) releaseCounted(ctx context.Context, s *scope) error {
	if !s.listed {
		return nil
	}
	var todo []*voicev1alpha1.Call
	for _, idx := range s.c.Status.CountedCalls {
		call := s.children[idx]
		if call != nil && call.Annotations[AnnotationCounted] == "" && !r.recent.has(s.key, "release/"+string(call.UID), s.now) {
			todo = append(todo, call)
		}
	}
	var mu sync.Mutex
	var errs []error
	parallel(len(todo), func(i int) {
		call := todo[i]
		_, outcome := finished(call)
		err := r.patchFinalizer(ctx, call, map[string]string{AnnotationCounted: countedValue(successful(s.c, outcome))})
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			r.recent.add(s.key, "release/"+string(call.UID), s.now)
		case apierrors.IsNotFound(err):
		case apierrors.IsConflict(err) || apierrors.IsInvalid(err):
			s.requeueIn(time.Second)
		default:
			errs = append(errs, err)
		}
	})
	return errors.Join(errs...)
}

// apiWorkers bounds the requests one reconcile has in flight at once.
const apiWorkers = 16

// parallel runs fn(0..n-1) on up to apiWorkers goroutines: a pass releasing
// or deleting a hundred Calls one request after another would hold the
// Campaign's worker for seconds on a busy apiserver.
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

// patchFinalizer removes CountFinalizer from a Call and adds annotations, in
// one JSON patch that tests the finalizer is still where the cache saw it.
// Unlike a merge patch with a resourceVersion, it does not fail each time
// the Call controller has written status meanwhile, and unlike a plain
// merge patch it cannot drop the Call controller's own finalizer.
func (r *Reconciler) patchFinalizer(ctx context.Context, call *voicev1alpha1.Call, annotations map[string]string) error {
	var ops []map[string]any
	if i := slices.Index(call.Finalizers, CountFinalizer); i >= 0 {
		path := fmt.Sprintf("/metadata/finalizers/%d", i)
		ops = append(ops,
			map[string]any{"op": "test", "path": path, "value": CountFinalizer},
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

// expireFinished deletes counted Calls ttlSecondsAfterFinished after they
// ended. Their outcome stays in the counts.
func (r *Reconciler) expireFinished(ctx context.Context, s *scope) error {
	ttl := s.c.Spec.TTLSecondsAfterFinished
	if ttl == nil {
		return nil
	}
	var expired []*voicev1alpha1.Call
	for _, call := range s.children {
		if call.Annotations[AnnotationCounted] == "" || controllerutil.ContainsFinalizer(call, CountFinalizer) || !call.DeletionTimestamp.IsZero() {
			continue
		}
		if done, _ := finished(call); !done || r.recent.has(s.key, "delete/"+string(call.UID), s.now) {
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
			r.recent.add(s.key, "delete/"+string(call.UID), s.now)
		}
	})
	return errors.Join(errs...)
}
