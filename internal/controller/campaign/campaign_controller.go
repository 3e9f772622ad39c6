package campaign

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/cachelag"
)

const (
	// Finalizer on a Campaign: deleting it first releases and deletes its
	// Calls (a real cluster's garbage collector would delete them too, but
	// not release their count finalizers, and envtest has no collector).
	Finalizer = "voice.callfleet.dev/campaign"
	// CountFinalizer is on every Call a Campaign makes until the Call is
	// accounted for (its contact recorded in the results record, or a later
	// attempt made), so no outcome is lost to a TTL or a user deleting it.
	CountFinalizer = "voice.callfleet.dev/campaign-count"

	// IndexCallCampaign indexes Calls by the name of the Campaign that
	// controls them.
	IndexCallCampaign = "metadata.controller.campaign"
	indexConfigMaps   = "campaign.configMaps"
	indexEndpoint     = "campaign.callTemplate.streamEndpointRef.name"
)

// conflictRetry is how soon a status write refused for a stale view is
// tried again; the Campaign's own status writes are filtered from its watch.
const conflictRetry = 200 * time.Millisecond

// cacheLagRetry is how soon a Campaign whose cache lags this process's own
// status write is looked at again.
const cacheLagRetry = 50 * time.Millisecond

// Results batching: a pass writes the finished contacts to the results
// record once resultsBatch are waiting, the oldest has waited
// resultsFlushInterval, or nothing is in flight (nothing more will come
// soon). The Calls wait meanwhile with their count finalizer; they hold no
// slot.
const (
	resultsBatch         = 64
	resultsFlushInterval = 2 * time.Second
)

// Reconciler reconciles Campaigns.
type Reconciler struct {
	// Client reads from the manager's cache. When nil, SetupWithManager
	// makes one with its own client-side rate limit, so the Campaign's few
	// writes (a suspend observed, a stop) never queue behind the Call
	// controller's many.
	client.Client
	// APIReader reads past the cache where a stale read could hide a Call
	// that exists (a create refused with AlreadyExists) and to load the
	// results record.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Now is the clock of calling windows, retries, pacing and TTLs (tests
	// fix it).
	Now func() time.Time
	// QPS and Burst of the client SetupWithManager makes (default: the
	// manager's, in a bucket of its own).
	QPS   float32
	Burst int

	cache   sourceCache
	expect  expectations
	recent  recentWrites
	results resultsStore
	batch   batchClock
	// lag knows the versions of each Campaign this process has written
	// over (its own status writes are filtered from its watch).
	lag cachelag.Tracker
}

// batchClock remembers, per Campaign, since when finished contacts have
// waited to be recorded (wall time: batching is about load, not rules).
type batchClock struct {
	mu sync.Mutex
	m  map[types.NamespacedName]time.Time
}

func (b *batchClock) since(key types.NamespacedName, now time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[types.NamespacedName]time.Time{}
	}
	t, ok := b.m[key]
	if !ok {
		b.m[key] = now
		return now
	}
	return t
}

func (b *batchClock) reset(key types.NamespacedName) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, key)
}

// errStalled is a problem only a change of spec or of a referenced object
// fixes: the Campaign reports Stalled with reason and waits for a watch
// event instead of retrying.
type errStalled struct {
	reason string
	err    error
}

func (e *errStalled) Error() string { return e.err.Error() }
func (e *errStalled) Unwrap() error { return e.err }

// contactCalls are the Calls of one contact.
type contactCalls struct {
	latest *voicev1alpha1.Call
	n      int32
	older  []*voicev1alpha1.Call
}

// waiter is a contact waiting for its next attempt.
type waiter struct {
	e   entry
	n   int32 // the attempt to make
	due time.Time
}

// scope is what one reconcile knows about its Campaign.
type scope struct {
	c    *voicev1alpha1.Campaign
	key  types.NamespacedName
	now  time.Time // the rules' clock (Reconciler.Now)
	wall time.Time // the process's clock, for batching and write memory

	// calls are the Campaign's Calls (informer objects, read only), and
	// byKey the same by contact key.
	calls           []*voicev1alpha1.Call
	byKey           map[string]*contactCalls
	listed          bool
	expectationsMet bool
	inflightCalls   []*voicev1alpha1.Call
	// settling counts the inflightCalls whose call has ended at Piopiy and
	// whose outcome waits for its CDR: they hold no concurrency slot.
	settling     int
	ownStreaming int

	contacts *contactList
	dnc      map[string]struct{}
	sched    schedule
	rules    retryRules
	endpoint *voicev1alpha1.StreamEndpoint
	rec      *record

	// ended: stopped or past the deadline; no attempt will start again.
	ended      bool
	endReason  string
	waiters    []waiter
	finals     []*resultRow
	finalCalls map[string]*voicev1alpha1.Call
	releases   []released
	pending    []entry // never attempted, callable, in list order
	dncNow     int64   // never attempted, on the do-not-call list now
	// Window summary of the due contacts looked at.
	outsideWindow int64
	nextWindow    time.Time
	anyOpen       bool
	nextAttempt   time.Time
	unrecorded    int // finished contacts not yet in the record

	// waitReason says why no more Calls start now ("" when nothing holds
	// them back); waitMessage explains.
	waitReason, waitMessage string
	created, createdFresh   int
	requeue                 time.Duration
}

func (s *scope) inflight() int { return len(s.inflightCalls) }

// live is how many of the Campaign's Calls may be on the phone now.
func (s *scope) live() int { return len(s.inflightCalls) - s.settling }

func (s *scope) requeueIn(d time.Duration) {
	if d <= 0 {
		d = time.Millisecond
	}
	if s.requeue == 0 || d < s.requeue {
		s.requeue = d
	}
}

func (s *scope) wait(reason, msg string) {
	if s.waitReason == "" {
		s.waitReason, s.waitMessage = reason, msg
	}
}

// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=campaigns,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=campaigns/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=campaigns/finalizers,verbs=update
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=calls,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=streamendpoints,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile records finished contacts, grants the next attempts as far as
// the rules allow (suspend, stop, deadline, windows, do-not-call, pacing,
// concurrency, the endpoint's free slots), writes status once, then
// releases and expires the Calls that are accounted for.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c := &voicev1alpha1.Campaign{}
	if err := r.Get(ctx, req.NamespacedName, c); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, c)
	}
	// The finalizer goes on before the first Call, so deleting the Campaign
	// always reaches its Calls.
	if orig := c.DeepCopy(); controllerutil.AddFinalizer(c, Finalizer) {
		// A patch, not an update: an update would send the spec back as Go
		// types see it and drop what they omit (suspend: false), bumping the
		// generation for nothing.
		if err := r.Patch(ctx, c, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, err
		}
	}

	wall := time.Now()
	if r.lag.Behind(c.UID, c.ResourceVersion) {
		// The cache still shows the Campaign as it was before this process's
		// last status write. A pass from that view would read an old pacing
		// clock and start time and grant again what was just granted; the
		// write's own watch event is filtered, so look again shortly.
		return ctrl.Result{RequeueAfter: cacheLagRetry}, nil
	}

	s := &scope{c: c, key: req.NamespacedName, now: r.Now(), wall: wall}
	began := time.Now()
	before := c.Status.DeepCopy()
	err := r.reconcileNormal(ctx, s)
	r.summarize(s, err)

	if !equality.Semantic.DeepEqual(before, &c.Status) {
		from := c.ResourceVersion
		// Update, not patch: the resourceVersion makes a write computed from
		// a stale view fail instead of going backwards.
		uerr := r.Status().Update(ctx, c)
		if apierrors.IsConflict(uerr) {
			// A conflict whose fresh object holds the status this pass started
			// from means only the spec or metadata moved on (a user's edit):
			// the status computed here is still true of the generation it
			// names, so it is written over the fresh object and the pacing
			// clock and start time of the Calls just made are not lost.
			uerr = r.rewriteStatus(ctx, c, before)
			from = ""
		}
		if uerr != nil {
			if apierrors.IsConflict(uerr) || apierrors.IsNotFound(uerr) {
				return ctrl.Result{RequeueAfter: conflictRetry}, nil
			}
			return ctrl.Result{}, errors.Join(err, uerr)
		}
		if from != "" {
			r.lag.Wrote(c.UID, from, c.ResourceVersion)
		}
		r.written(s, before)
	}
	// Status is out (a suspend or stop is observed); now the bookkeeping.
	if aerr := r.afterWrite(ctx, s); aerr != nil {
		err = errors.Join(err, aerr)
	}

	log.FromContext(ctx).V(1).Info("Reconciled", "created", s.created, "inflight", s.inflight(), "waiting", len(s.waiters),
		"unrecorded", s.unrecorded, "expectationsMet", s.expectationsMet, "wait", s.waitReason, "requeueAfter", s.requeue, "took", time.Since(began))
	if stalled, ok := stalledOnly(err); ok {
		// Stalled waits for a watched object (spec, ConfigMap, endpoint) to
		// change, not for backoff.
		log.FromContext(ctx).Info("Campaign stalled", "reason", stalled.reason, "message", stalled.Error())
		err = nil
	}
	return ctrl.Result{RequeueAfter: s.requeue}, err
}

// rewriteStatus writes c's status over the Campaign as it is now, provided
// its status is still before (what the pass computed from). Otherwise the
// pass worked from a stale view and its status is refused as a conflict.
func (r *Reconciler) rewriteStatus(ctx context.Context, c *voicev1alpha1.Campaign, before *voicev1alpha1.CampaignStatus) error {
	gr := voicev1alpha1.GroupVersion.WithResource("campaigns").GroupResource()
	fresh := &voicev1alpha1.Campaign{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(c), fresh); err != nil {
		return err
	}
	if fresh.UID != c.UID {
		return apierrors.NewNotFound(gr, c.Name)
	}
	if !equality.Semantic.DeepEqual(&fresh.Status, before) {
		return apierrors.NewConflict(gr, c.Name, errors.New("status moved on since this pass read it"))
	}
	from := fresh.ResourceVersion
	c.Status.DeepCopyInto(&fresh.Status)
	if err := r.Status().Update(ctx, fresh); err != nil {
		return err
	}
	r.lag.Wrote(fresh.UID, from, fresh.ResourceVersion)
	return nil
}

// afterWrite releases the Calls accounted for, deletes the expired ones and
// hangs up live ones of a Campaign stopped with stopMode Hangup, each
// bounded per pass.
func (r *Reconciler) afterWrite(ctx context.Context, s *scope) error {
	if !s.listed {
		return nil
	}
	var errs []error
	// A release this process made that the cache does not show yet is not
	// sent again (it would only fail its JSON patch test).
	var todo []released
	for _, rel := range s.releases {
		if !r.recent.has(s.key, "release/"+string(rel.call.UID), s.wall) {
			todo = append(todo, rel)
		}
	}
	if len(todo) > maxReleasesPerPass {
		todo = todo[:maxReleasesPerPass]
		s.requeueIn(time.Millisecond)
	}
	errs = append(errs, r.release(ctx, s, todo))
	errs = append(errs, r.expire(ctx, s))
	if s.c.Spec.Stop && s.c.Spec.StopMode == voicev1alpha1.StopHangup {
		errs = append(errs, r.hangUp(ctx, s))
	}
	return errors.Join(errs...)
}

// stalledOnly reports whether err is made of stalled errors only (a
// flat errors.Join or a single one), returning the first.
func stalledOnly(err error) (*errStalled, bool) {
	if err == nil {
		return nil, false
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var first *errStalled
	for _, e := range errs {
		var st *errStalled
		if !errors.As(e, &st) {
			return nil, false
		}
		if first == nil {
			first = st
		}
	}
	return first, first != nil
}

// reconcileNormal runs the phases in order. Recording comes before
// granting so a contact's outcome is stored whatever stops new Calls.
func (r *Reconciler) reconcileNormal(ctx context.Context, s *scope) error {
	if err := r.listCalls(ctx, s); err != nil {
		return err
	}
	if err := r.loadInputs(ctx, s); err != nil {
		return err
	}
	classify(s)
	var errs []error
	if err := r.record(ctx, s); err != nil {
		errs = append(errs, err)
	}
	if err := r.grant(ctx, s); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// loadInputs reads the contact list, the do-not-call list, the schedule,
// the retry policies, the results record and the StreamEndpoint.
func (r *Reconciler) loadInputs(ctx context.Context, s *scope) error {
	c := s.c
	var err error
	if s.rec, err = r.loadRecord(ctx, c); err != nil {
		return err
	}
	if s.contacts, err = r.loadContacts(ctx, c); err != nil {
		return err
	}
	if s.dnc, err = r.loadDoNotCall(ctx, c); err != nil {
		return err
	}
	if s.sched, err = parseSchedule(c.Spec.Schedule); err != nil {
		return &errStalled{"InvalidSchedule", err}
	}
	s.rules = parseRetry(&c.Spec)
	switch {
	case c.Spec.Stop:
		s.ended, s.endReason = true, "Stopped"
	case !s.sched.deadline.IsZero() && !s.now.Before(s.sched.deadline):
		s.ended, s.endReason = true, "DeadlinePassed"
	}
	if ref := c.Spec.CallTemplate.Spec.StreamEndpointRef; ref != nil {
		ep := &voicev1alpha1.StreamEndpoint{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: ref.Name}, ep); err != nil {
			if apierrors.IsNotFound(err) {
				return &errStalled{"EndpointNotFound", errors.New("StreamEndpoint " + ref.Name + " of callTemplate does not exist; no Call starts until it does")}
			}
			return err
		}
		s.endpoint = ep
	}
	return nil
}

// listCalls reads the Campaign's Calls, groups them by contact and checks
// the cache has caught up with the creates this process made.
func (r *Reconciler) listCalls(ctx context.Context, s *scope) error {
	calls, err := r.ownCalls(ctx, s.c)
	if err != nil {
		return err
	}
	s.byKey = make(map[string]*contactCalls, len(calls))
	names := make(map[string]struct{}, len(calls))
	for i := range calls {
		call := &calls[i]
		names[call.Name] = struct{}{}
		s.calls = append(s.calls, call)
		key, n, ok := attemptOf(call)
		if !ok {
			continue
		}
		cc := s.byKey[key]
		if cc == nil {
			cc = &contactCalls{}
			s.byKey[key] = cc
		}
		if n > cc.n {
			if cc.latest != nil {
				cc.older = append(cc.older, cc.latest)
			}
			cc.latest, cc.n = call, n
		} else {
			cc.older = append(cc.older, call)
		}
	}
	s.listed = true
	r.recent.sweep(s.key, s.wall)
	s.expectationsMet, _ = r.expect.satisfied(s.key, func(n string) bool { _, ok := names[n]; return ok }, s.wall)
	return nil
}

// reconcileDelete releases and deletes the Campaign's Calls (deleting a Call
// hangs it up), then lets the Campaign go.
func (r *Reconciler) reconcileDelete(ctx context.Context, c *voicev1alpha1.Campaign) (ctrl.Result, error) {
	key := types.NamespacedName{Namespace: c.Namespace, Name: c.Name}
	if !controllerutil.ContainsFinalizer(c, Finalizer) {
		r.forget(key)
		r.lag.Forget(c.UID)
		return ctrl.Result{}, nil
	}
	// Read past the cache: a Call it has not shown yet would keep its count
	// finalizer for ever once the Campaign is gone.
	var list voicev1alpha1.CallList
	if err := r.APIReader.List(ctx, &list, client.InNamespace(c.Namespace), client.MatchingLabels{voicev1alpha1.LabelCampaign: LabelValue(c.Name)}); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing Calls of Campaign: %w", err)
	}
	var calls []voicev1alpha1.Call
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], c) {
			calls = append(calls, list.Items[i])
		}
	}
	var errs []error
	for i := range calls {
		call := &calls[i]
		if controllerutil.ContainsFinalizer(call, CountFinalizer) {
			if err := r.patchFinalizer(ctx, call, nil); client.IgnoreNotFound(err) != nil {
				errs = append(errs, err)
			}
		}
		if call.DeletionTimestamp.IsZero() {
			if err := r.Delete(ctx, call, client.Preconditions{UID: &call.UID}); client.IgnoreNotFound(err) != nil {
				errs = append(errs, err)
			}
		}
	}
	// The results record goes with the Campaign (the garbage collector would
	// do it too), so a new Campaign of the same name starts a fresh one.
	var shards corev1.ConfigMapList
	if err := r.APIReader.List(ctx, &shards, client.InNamespace(c.Namespace), client.MatchingLabels{voicev1alpha1.LabelCampaignResults: LabelValue(c.Name)}); err != nil {
		errs = append(errs, err)
	}
	for i := range shards.Items {
		if cm := &shards.Items[i]; metav1.IsControlledBy(cm, c) {
			if err := r.Delete(ctx, cm, client.Preconditions{UID: &cm.UID}); client.IgnoreNotFound(err) != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return ctrl.Result{}, errors.Join(errs...)
	}
	if len(calls) > 0 {
		r.event(c, corev1.EventTypeNormal, "Deleting", "deleting %d Call(s) of the Campaign", len(calls))
	}
	orig := c.DeepCopy()
	controllerutil.RemoveFinalizer(c, Finalizer)
	if err := r.Patch(ctx, c, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, err
	}
	r.forget(key)
	r.lag.Forget(c.UID)
	return ctrl.Result{}, nil
}

func (r *Reconciler) forget(key types.NamespacedName) {
	r.cache.forget(key)
	r.expect.forget(key)
	r.recent.forget(key)
	r.results.forget(key)
	r.batch.reset(key)
}

func (r *Reconciler) event(c *voicev1alpha1.Campaign, kind, reason, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(c, nil, kind, reason, "Reconcile", note, args...)
	}
}

// SetupWithManager registers the controller and its indexes.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if r.Client == nil {
		cfg := rest.CopyConfig(mgr.GetConfig())
		if r.QPS > 0 {
			cfg.QPS, cfg.Burst = r.QPS, max(r.Burst, int(r.QPS))
		}
		// The same limits as the manager's, but a bucket of its own (a
		// RateLimiter in the config would be shared); reads still come from
		// the manager's cache.
		cfg.RateLimiter = nil
		cl, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), Cache: &client.CacheOptions{Reader: mgr.GetCache()}})
		if err != nil {
			return fmt.Errorf("making the Campaign controller's client: %w", err)
		}
		r.Client = cl
	}
	r.cache = sourceCache{sources: map[string]*parsedSource{}, dnc: map[string]*doNotCall{}}
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &voicev1alpha1.Call{}, IndexCallCampaign, indexCallByCampaign); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &voicev1alpha1.Campaign{}, indexConfigMaps, func(o client.Object) []string {
		c := o.(*voicev1alpha1.Campaign)
		var out []string
		for _, f := range c.Spec.ContactsFrom {
			out = append(out, f.ConfigMapRef.Name)
		}
		if c.Spec.DoNotCallRef != nil {
			out = append(out, c.Spec.DoNotCallRef.Name)
		}
		return out
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &voicev1alpha1.Campaign{}, indexEndpoint, func(o client.Object) []string {
		if ref := o.(*voicev1alpha1.Campaign).Spec.CallTemplate.Spec.StreamEndpointRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&voicev1alpha1.Campaign{}, builder.WithPredicates(campaignChanged())).
		Owns(&voicev1alpha1.Call{}, builder.WithPredicates(callChanged())).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.campaignsBy(indexConfigMaps)),
			builder.WithPredicates(predicate.ResourceVersionChangedPredicate{})).
		Watches(&voicev1alpha1.StreamEndpoint{}, handler.EnqueueRequestsFromMapFunc(r.campaignsBy(indexEndpoint)),
			builder.WithPredicates(predicate.ResourceVersionChangedPredicate{})).
		Named("campaign").
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(r)
}

func indexCallByCampaign(o client.Object) []string {
	if ref := controllerOf(o); ref != "" {
		return []string{ref}
	}
	return nil
}

// controllerOf returns the name of the Campaign controlling o, or "".
func controllerOf(o client.Object) string {
	for _, ref := range o.GetOwnerReferences() {
		if ref.Controller != nil && *ref.Controller && ref.Kind == "Campaign" && ref.APIVersion == voicev1alpha1.GroupVersion.String() {
			return ref.Name
		}
	}
	return ""
}

// campaignChanged passes spec changes and deletion, not the Campaign's own
// status writes.
func campaignChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
				e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
		},
	}
}

// callChanged passes the Call events a Campaign acts on: created (the
// cache now shows it), deleted, finished, being deleted, or released.
func callChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*voicev1alpha1.Call), e.ObjectNew.(*voicev1alpha1.Call)
			of, _ := finished(o)
			nf, _ := finished(n)
			return of != nf || settling(o) != settling(n) ||
				o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero() ||
				o.Annotations[voicev1alpha1.AnnotationCounted] != n.Annotations[voicev1alpha1.AnnotationCounted]
		},
	}
}

// campaignsBy maps a ConfigMap or StreamEndpoint to the Campaigns that use
// it.
func (r *Reconciler) campaignsBy(index string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list voicev1alpha1.CampaignList
		if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: o.GetName()}); err != nil {
			log.FromContext(ctx).Error(err, "Listing Campaigns", "object", klog.KObj(o))
			return nil
		}
		out := make([]reconcile.Request, 0, len(list.Items))
		for i := range list.Items {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: list.Items[i].Namespace, Name: list.Items[i].Name}})
		}
		return out
	}
}

// Condition types specific to Campaigns (defined in the API package).
const (
	ConditionSuspended = voicev1alpha1.ConditionSuspended
	ConditionStopped   = voicev1alpha1.ConditionStopped
	ConditionInWindow  = voicev1alpha1.ConditionInWindow
)
