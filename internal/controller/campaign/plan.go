package campaign

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// classify sorts every contact into one state from the Calls and the
// results record:
//
//   - recorded: its key is in the results record (done for good);
//   - in flight: its latest attempt has not finished (holds a slot);
//   - final: its latest attempt finished and no further attempt is
//     allowed (no policy for the outcome, attempts used up, the number on
//     the do-not-call list now, the contact removed, the Campaign stopped
//     or past its deadline): it goes into the record;
//   - waiting: its latest attempt finished and a policy grants another at
//     a due time (holds no slot);
//   - pending: never attempted.
//
// Earlier attempts of a contact are released once a later one exists.
func classify(s *scope) {
	s.finalCalls = map[string]*voicev1alpha1.Call{}
	for key, cc := range s.byKey {
		for _, old := range cc.older {
			if needsRelease(old) {
				s.releases = append(s.releases, released{old, "superseded"})
			}
		}
		call := cc.latest
		done, outcome := finished(call)
		if !done {
			s.inflightCalls = append(s.inflightCalls, call)
			if settling(call) {
				s.settling++
			}
			if streaming(call) {
				s.ownStreaming++
			}
			continue
		}
		if _, ok := s.rec.rows[key]; ok {
			if needsRelease(call) {
				s.releases = append(s.releases, released{call, "recorded"})
			}
			continue
		}
		if i, listed := s.contacts.byKey[key]; listed && !s.ended {
			e := s.contacts.entries[i]
			if _, no := s.dnc[e.c.number]; !no && !unsettled(call) {
				if due, again := s.rules.next(outcome, cc.n, finishTime(call)); again {
					s.waiters = append(s.waiters, waiter{e: e, n: cc.n + 1, due: due})
					continue
				}
			}
		}
		s.finals = append(s.finals, resultOf(key, cc.n, call))
		s.finalCalls[key] = call
	}
	for _, e := range s.contacts.entries {
		key := e.c.key()
		if _, ok := s.byKey[key]; ok {
			continue
		}
		if _, ok := s.rec.rows[key]; ok {
			continue
		}
		if _, no := s.dnc[e.c.number]; no {
			s.dncNow++
			continue
		}
		s.pending = append(s.pending, e)
	}
}

// needsRelease reports whether a Call still carries the count finalizer and
// has not been released by an earlier pass.
func needsRelease(call *voicev1alpha1.Call) bool {
	return controllerutil.ContainsFinalizer(call, CountFinalizer)
}

// record writes the final contacts to the results record when a batch is
// due, and queues their Calls for release.
func (r *Reconciler) record(ctx context.Context, s *scope) error {
	s.unrecorded = len(s.finals)
	if len(s.finals) == 0 {
		r.batch.reset(s.key)
		return nil
	}
	since := r.batch.since(s.key, s.wall)
	if len(s.finals) < resultsBatch && s.inflight() > 0 && !s.ended && s.wall.Sub(since) < resultsFlushInterval {
		s.requeueIn(resultsFlushInterval - s.wall.Sub(since))
		return nil
	}
	// Oldest first: the record reads in the order contacts finished.
	slices.SortFunc(s.finals, func(a, b *resultRow) int { return a.lastAttempt.Compare(b.lastAttempt) })
	n, err := r.appendResults(ctx, s.c, s.rec, s.finals)
	for _, row := range s.finals[:n] {
		if call := s.finalCalls[row.key]; call != nil && needsRelease(call) {
			s.releases = append(s.releases, released{call, "recorded"})
		}
	}
	s.unrecorded -= n
	if n == len(s.finals) {
		r.batch.reset(s.key)
	}
	return err
}

// grant starts the next attempts: due retries first (oldest due first),
// then contacts never attempted, in list order. A contact outside its
// window is passed over, not waited on, so one closed zone never holds back
// another. Suspend, stop, the deadline, startTime, the endpoint and the
// cache hold back everything; concurrency, the endpoint's free slots and
// pacing end the pass.
func (r *Reconciler) grant(ctx context.Context, s *scope) error {
	s.scheduleRetries()
	if s.heldBack() {
		return nil
	}
	if !s.sched.deadline.IsZero() {
		s.requeueIn(s.sched.deadline.Sub(s.now))
	}
	g := newGrantPass(s)
	for _, w := range s.waiters {
		if !w.due.After(s.now) {
			g.try(w.e, w.n)
		}
	}
	for _, e := range s.pending {
		g.try(e, 1)
	}
	if s.outsideWindow > 0 && !s.anyOpen {
		if !s.nextWindow.IsZero() {
			s.requeueIn(s.nextWindow.Sub(s.now))
		}
		s.wait("OutsideWindow", fmt.Sprintf("%d due contact(s) outside their calling window", s.outsideWindow))
	}
	if len(g.plan) == 0 {
		return nil
	}
	return r.startPlanned(ctx, s, g)
}

// scheduleRetries sorts the waiters, oldest due first, and comes back when
// the first retry not yet due falls due.
func (s *scope) scheduleRetries() {
	slices.SortFunc(s.waiters, func(a, b waiter) int { return a.due.Compare(b.due) })
	for _, w := range s.waiters {
		if w.due.After(s.now) {
			if s.nextAttempt.IsZero() || w.due.Before(s.nextAttempt) {
				s.nextAttempt = w.due
			}
		}
	}
	if !s.nextAttempt.IsZero() {
		// Time is not watched: come back when the first retry falls due.
		s.requeueIn(s.nextAttempt.Sub(s.now))
	}
}

// heldBack reports whether this pass starts nothing at all: the Campaign
// ended, is suspended, has not started, or waits for the cache.
func (s *scope) heldBack() bool {
	switch {
	case s.ended:
		return true
	case s.c.Spec.Suspend:
		s.wait("Suspended", "spec.suspend is true: no new Calls and no retries; Calls in flight go on")
		return true
	case !s.sched.start.IsZero() && s.now.Before(s.sched.start):
		s.wait("NotStarted", "schedule.startTime is "+s.sched.start.UTC().Format(time.RFC3339))
		s.requeueIn(s.sched.start.Sub(s.now))
		s.nextWindow = s.sched.start
		return true
	case !s.expectationsMet:
		// The Calls created last time will show in the cache and their
		// create events wake this Campaign; the requeue only bounds a wait
		// for a Call deleted before it was seen.
		s.wait("WaitingForCache", "waiting for the cache to show the Calls just created")
		s.requeueIn(expectationTimeout)
		return true
	}
	return false
}

// grantPass plans the Calls one pass starts, within its limits.
type grantPass struct {
	s           *scope
	limit       int // Calls live at once
	limitReason string
	budget      int // starts this pass
	pacer       pacer
	tat         time.Time
	zones       map[*time.Location]bool // open now, by zone
	plan        []*voicev1alpha1.Call
	tats        []time.Time // the pacer's time after each planned Call
	fresh       []bool      // whether each planned Call is a first attempt
	full        bool        // no more starts this pass; the rest is only counted
}

func newGrantPass(s *scope) *grantPass {
	c := s.c
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
	return &grantPass{
		s: s, limit: limit, limitReason: limitReason,
		budget: min(limit-s.live(), maxCreatesPerPass),
		pacer:  newPacer(c.Spec.CallsPerMinute),
		tat:    paceTime(&c.Status),
		zones:  map[*time.Location]bool{},
	}
}

// isOpen reports whether e's calling window is open now, and keeps the
// first time a closed one opens.
func (g *grantPass) isOpen(e entry) bool {
	s := g.s
	zone := e.c.zone
	if zone == nil {
		zone = s.sched.zone
	}
	open, seen := g.zones[zone]
	if !seen {
		open = s.sched.open(s.now, zone)
		g.zones[zone] = open
		if !open {
			if next, ok := s.sched.nextOpen(s.now, zone); ok && (s.nextWindow.IsZero() || next.Before(s.nextWindow)) {
				s.nextWindow = next
			}
		}
	}
	return open
}

// try plans attempt n of e, when its window is open and the limits and the
// pacer allow; once they do not, the rest is only counted.
func (g *grantPass) try(e entry, n int32) {
	s, c := g.s, g.s.c
	if !g.isOpen(e) {
		s.outsideWindow++
		return
	}
	s.anyOpen = true
	if g.full {
		return
	}
	if len(g.plan) >= g.budget {
		g.full = true
		if len(g.plan) < g.limit-s.live() {
			// Only the per-pass cap: go on at once.
			s.requeueIn(time.Millisecond)
		} else {
			s.wait(g.limitReason, fmt.Sprintf("%d Calls in flight, limit %d", s.live(), g.limit))
		}
		return
	}
	next, ok := g.pacer.take(g.tat, s.now)
	if !ok {
		g.full = true
		// Time is not watched: come back when the bucket allows.
		s.requeueIn(g.pacer.wait(g.tat, s.now))
		s.wait("Pacing", fmt.Sprintf("callsPerMinute %d: %s", c.Spec.CallsPerMinute, g.pacer))
		return
	}
	g.tat = next
	g.plan = append(g.plan, buildCall(c, e, n))
	g.tats = append(g.tats, g.tat)
	g.fresh = append(g.fresh, n == 1)
}

// startPlanned creates the planned Calls and records what was started.
func (r *Reconciler) startPlanned(ctx context.Context, s *scope, g *grantPass) error {
	c := s.c
	made, err := r.createAll(ctx, s, g.plan)
	s.created = made
	for _, f := range g.fresh[:made] {
		if f {
			s.createdFresh++
		}
	}
	if made > 0 {
		setPaceTime(&c.Status, g.tats[made-1])
		if c.Status.StartTime == nil {
			c.Status.StartTime = ptr.To(metav1.NewTime(s.now))
		}
	}
	return createError(s, err)
}

// createError turns a failed create into what the Campaign reports.
func createError(s *scope, err error) error {
	if err == nil {
		return nil
	}
	var taken *errNameTaken
	switch {
	case errors.As(err, &taken) && taken.deleting:
		// The old Call's deletion is not watched by this Campaign (it is
		// not its owner): look again shortly.
		s.requeueIn(2 * time.Second)
		s.wait("NameInUse", taken.Error())
		return nil
	case errors.As(err, &taken):
		return &errStalled{"NameConflict", taken}
	case apierrors.IsInvalid(err):
		return &errStalled{"CallRejected", fmt.Errorf("the apiserver refused a Call: %w", err)}
	}
	return fmt.Errorf("creating a Call: %w", err)
}
