package campaign

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// maxNameLen keeps Call names usable as label values and DNS labels.
const maxNameLen = 63

// shortName returns name when it fits in limit, else a prefix of it, a dash
// and 8 hex digits of its FNV-1a hash, together exactly limit long (or
// shorter, trailing dashes and dots trimmed).
func shortName(name string, limit int) string {
	if len(name) <= limit {
		return name
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	sum := fmt.Sprintf("%08x", h.Sum32())
	prefix := strings.TrimRight(name[:limit-len(sum)-1], "-.")
	return prefix + "-" + sum
}

// CallName is the name of the Call for contact index of a Campaign:
// `<campaign>-<index>`, with the Campaign part shortened and hashed when the
// whole would pass 63 characters. The same inputs always give the same
// name, so a create repeated after a crash meets the Call already made.
func CallName(campaign string, index int64) string {
	suffix := "-" + strconv.FormatInt(index, 10)
	return shortName(campaign, maxNameLen-len(suffix)) + suffix
}

// LabelValue is the value of LabelCampaign for a Campaign name.
func LabelValue(campaign string) string { return shortName(campaign, maxNameLen) }

// contactIndex reads a Call's contact index annotation.
func contactIndex(call *voicev1alpha1.Call) (int64, bool) {
	v, ok := call.Annotations[AnnotationContactIndex]
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(v, 10, 64)
	return i, err == nil && i >= 0
}

// buildCall makes the Call for contact index.
func buildCall(c *voicev1alpha1.Campaign, index int64, ct *contact, src *source) *voicev1alpha1.Call {
	t := &c.Spec.CallTemplate
	call := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{
		Namespace:   c.Namespace,
		Name:        CallName(c.Name, index),
		Labels:      make(map[string]string, len(t.Labels)+1),
		Annotations: make(map[string]string, len(t.Annotations)+1),
		Finalizers:  []string{CountFinalizer},
	}}
	if c.Spec.Notify != nil {
		// Its call.completed event must outlive a TTL deletion (docs/results.md).
		call.Finalizers = append(call.Finalizers, voicev1alpha1.NotifyFinalizer)
	}
	for k, v := range t.Labels {
		call.Labels[k] = v
	}
	call.Labels[LabelCampaign] = LabelValue(c.Name)
	for k, v := range t.Annotations {
		call.Annotations[k] = v
	}
	call.Annotations[AnnotationContactIndex] = strconv.FormatInt(index, 10)
	t.Spec.DeepCopyInto(&call.Spec.CallParameters)
	call.Spec.To = ct.number
	own := src.variables(ct)
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
	call.OwnerReferences = []metav1.OwnerReference{{
		APIVersion:         voicev1alpha1.GroupVersion.String(),
		Kind:               "Campaign",
		Name:               c.Name,
		UID:                c.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}}
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

// listCalls reads the Campaign's Calls and checks the cache has caught up
// with the creates this process made.
func (r *Reconciler) listCalls(ctx context.Context, s *scope) error {
	calls, err := r.ownCalls(ctx, s.c)
	if err != nil {
		return err
	}
	s.children = make(map[int64]*voicev1alpha1.Call, len(calls))
	names := make(map[string]struct{}, len(calls))
	for i := range calls {
		call := &calls[i]
		names[call.Name] = struct{}{}
		if idx, ok := contactIndex(call); ok {
			s.children[idx] = call
		}
	}
	s.listed = true
	r.recent.sweep(s.key, s.now)
	s.expectationsMet, _ = r.expect.satisfied(s.key, func(n string) bool { _, ok := names[n]; return ok }, s.now)
	return nil
}

// streaming reports whether a Call holds a stream on its endpoint now.
func streaming(call *voicev1alpha1.Call) bool {
	if call.Status.Stream == nil {
		return false
	}
	st := call.Status.Stream.State
	return st == voicev1alpha1.StreamPhaseConnected || st == voicev1alpha1.StreamPhasePaused
}

// step is one planned move of the cursor.
type step struct {
	index  int64
	skip   string // skip reason ("invalid", "do_not_call"), or ""
	adopt  bool   // the Call exists already (made before a restart)
	call   *voicev1alpha1.Call
	tat    time.Time // the pacing clock after this step
	result error
}

// Skip reasons, the label of the contacts-skipped metric.
const (
	SkipInvalid   = "invalid"
	SkipDoNotCall = "do_not_call"
)

// startCalls moves the cursor: it skips invalid and do-not-call contacts,
// adopts Calls made before a restart, and creates Calls while the Campaign
// is not suspended, the head contact's window is open, slots are free and
// pacing allows. The head
// contact waits for its window even when later contacts (in other zones)
// could be called: the cursor is one number, which is what makes a restart
// resume exactly.
func (r *Reconciler) startCalls(ctx context.Context, s *scope) error {
	c := s.c
	st := &c.Status
	if !s.expectationsMet {
		// The Calls created last time will show in the cache and their
		// create events wake this Campaign; the requeue only bounds a wait
		// for a Call deleted before it was seen.
		s.wait("WaitingForCache", "waiting for the cache to show the Calls just created")
		s.requeueIn(expectationTimeout)
		return nil
	}
	limit := int(c.Spec.Concurrency)
	if limit <= 0 {
		limit = 10
	}
	limitReason := "ConcurrencyLimit"
	if ep := s.endpoint; ep != nil {
		slots := endpointSlots(ep.Status.Capacity, ep.Status.ActiveStreams, s.ownStreaming)
		if slots < limit {
			limit, limitReason = slots, "EndpointFull"
		}
		if !meta.IsStatusConditionTrue(ep.Status.Conditions, voicev1alpha1.ConditionReady) {
			// Its Calls would only wait for it: start none.
			limit, limitReason = 0, "EndpointNotReady"
		}
	}
	budget := limit - s.inflight
	p := newPacer(c.Spec.CallsPerMinute)
	tat := paceTime(st)

	var plan []step
	creates := 0
	cur := st.Cursor
	for cur < s.contacts.total {
		ct, src := s.contacts.at(cur)
		if ct.invalid != "" {
			plan = append(plan, step{index: cur, skip: SkipInvalid, tat: tat})
			cur++
			continue
		}
		if _, no := s.dnc[ct.number]; no {
			plan = append(plan, step{index: cur, skip: SkipDoNotCall, tat: tat})
			cur++
			continue
		}
		if child := s.children[cur]; child != nil {
			// Made before a crash or before the last status write landed:
			// it started then, so it counts against pacing now.
			tat = p.charge(tat, child.CreationTimestamp.Time)
			plan = append(plan, step{index: cur, adopt: true, tat: tat})
			cur++
			continue
		}
		if c.Spec.Suspend {
			s.wait("Suspended", "spec.suspend is true: no new Calls; Calls in flight go on")
			break
		}
		zone := ct.zone
		if zone == nil {
			zone = s.sched.zone
		}
		ws := &windowState{open: true, index: cur, zone: zone.String()}
		s.window = ws
		if !s.sched.open(s.now, zone) {
			ws.open = false
			if next, ok := s.sched.nextOpen(s.now, zone); ok {
				ws.next = next
				// Time is not watched: come back when the window opens.
				s.requeueIn(next.Sub(s.now))
			}
			s.wait("OutsideWindow", fmt.Sprintf("contact %d is outside its calling window (%s)", cur, zone))
			break
		}
		if creates >= budget {
			s.wait(limitReason, fmt.Sprintf("%d Calls in flight, limit %d", s.inflight, limit))
			break
		}
		if creates == maxCreatesPerPass {
			// The rest waits for the next pass, which these creates' watch
			// events start: counting and status keep flowing meanwhile.
			break
		}
		next, ok := p.take(tat, s.now)
		if !ok {
			// Time is not watched: come back when the bucket allows.
			s.requeueIn(p.wait(tat, s.now))
			s.wait("Pacing", fmt.Sprintf("callsPerMinute %d: %s", c.Spec.CallsPerMinute, p))
			break
		}
		tat = next
		plan = append(plan, step{index: cur, call: buildCall(c, cur, ct, src), tat: tat})
		creates++
		cur++
	}
	if cur >= s.contacts.total {
		s.window = nil
	}
	r.createAll(ctx, s, plan)
	return r.advance(ctx, s, plan)
}

// maxCreatesPerPass bounds the Calls one reconcile creates. A pass that
// creates hundreds holds the Campaign's worker for seconds on a busy
// apiserver, and every Call finishing meanwhile waits to be counted and
// replaced, so the Campaign would advance in waves.
const maxCreatesPerPass = 50

// createAll creates the planned Calls: one first, then the rest
// apiWorkers at a time (a slow start, as ReplicaSets do), so a systematic
// failure costs one request, not fifty. It stops after the first batch with a
// failure; steps not tried get errNotTried.
func (r *Reconciler) createAll(ctx context.Context, s *scope, plan []step) {
	var names []string
	for _, st := range plan {
		if st.call != nil {
			names = append(names, st.call.Name)
		}
	}
	// Expect before creating: the watch event may beat the create's reply.
	r.expect.expect(s.key, names, s.now)
	var todo []*step
	for i := range plan {
		if plan[i].call != nil {
			todo = append(todo, &plan[i])
		}
	}
	batch := 1
	for len(todo) > 0 {
		n := min(batch, len(todo))
		parallel(n, func(i int) { todo[i].result = r.create(ctx, s, todo[i].call) })
		failed := false
		for _, st := range todo[:n] {
			if st.result != nil {
				failed = true
			}
		}
		todo = todo[n:]
		if failed {
			for _, st := range todo {
				st.result = errNotTried
				r.expect.lower(s.key, st.call.Name)
			}
			return
		}
		batch = maxCreatesPerPass
	}
}

var errNotTried = errors.New("not tried: an earlier create failed")

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
// Campaign's: names are deterministic, so it is the Call of this contact,
// made before a crash, and no second one is ever made.
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
			// Deleted in between: try again next time.
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

// advance moves the cursor over the steps that succeeded, in order, up to
// the first that did not, and reports that one's error.
func (r *Reconciler) advance(ctx context.Context, s *scope, plan []step) error {
	st := &s.c.Status
	tat := paceTime(st)
	var stop error
	for i := range plan {
		p := &plan[i]
		if p.result != nil {
			stop = p.result
			break
		}
		switch {
		case p.skip != "":
			st.Skipped++
			s.skipped[p.skip]++
		case p.adopt:
			// Already in s.inflight (or counted) from the cache.
		default:
			s.created++
		}
		if p.skip == "" && st.StartTime == nil {
			st.StartTime = ptr.To(metav1.NewTime(s.now))
		}
		st.Cursor = p.index + 1
		tat = p.tat
	}
	setPaceTime(st, tat)
	if stop == nil {
		return nil
	}
	// The contact at the cursor is retried; the window check for it stands.
	var taken *errNameTaken
	switch {
	case errors.As(stop, &taken) && taken.deleting:
		// The old Call's deletion is not watched by this Campaign (it is
		// not its owner): look again shortly.
		s.requeueIn(2 * time.Second)
		s.wait("NameInUse", taken.Error())
		return nil
	case errors.As(stop, &taken):
		return &errStalled{"NameConflict", taken}
	case apierrors.IsInvalid(stop):
		return &errStalled{"CallRejected", fmt.Errorf("the apiserver refused the Call for contact %d: %w", st.Cursor, stop)}
	case errors.Is(stop, errNotTried):
		return nil
	}
	log.FromContext(ctx).Info("Creating Call failed; retrying", "index", st.Cursor, "error", stop.Error())
	return fmt.Errorf("creating the Call for contact %d: %w", st.Cursor, stop)
}
