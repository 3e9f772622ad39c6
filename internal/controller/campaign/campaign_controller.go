package campaign

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

const (
	// Finalizer on a Campaign: deleting it first releases and deletes its
	// Calls (a real cluster's garbage collector would delete them too, but
	// not release their count finalizers, and envtest has no collector).
	Finalizer = "voice.callfleet.dev/campaign"
	// CountFinalizer is on every Call a Campaign makes until the Campaign
	// has counted its outcome, so no outcome is lost to a TTL or a user
	// deleting the Call.
	CountFinalizer = "voice.callfleet.dev/campaign-count"
	// LabelCampaign names the Campaign on its Calls (hashed when the name is
	// longer than a label value may be).
	LabelCampaign = "voice.callfleet.dev/campaign"
	// AnnotationContactIndex is the contact index of a Call.
	AnnotationContactIndex = "voice.callfleet.dev/contact-index"
	// AnnotationCounted is set, in the same write that removes
	// CountFinalizer, once a Call's outcome is in the Campaign's counts; its
	// value is "succeeded" or "failed".
	AnnotationCounted = "voice.callfleet.dev/counted"

	// IndexCallCampaign indexes Calls by the name of the Campaign that
	// controls them.
	IndexCallCampaign = "metadata.controller.campaign"
	indexConfigMaps   = "campaign.configMaps"
	indexEndpoint     = "campaign.callTemplate.streamEndpointRef.name"
)

// Condition types specific to Campaigns.
const (
	ConditionSuspended = "Suspended"
	ConditionInWindow  = "InWindow"
)

// conflictRetry is how soon a status write refused for a stale view is
// tried again; the Campaign's own status writes are filtered from its watch.
const conflictRetry = 200 * time.Millisecond

// Reconciler reconciles Campaigns.
type Reconciler struct {
	client.Client
	// APIReader reads past the cache where a stale read could hide a Call
	// that exists (a create refused with AlreadyExists).
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Now is the clock of calling windows, pacing and TTLs (tests fix it).
	Now func() time.Time

	cache  sourceCache
	expect expectations
	recent recentWrites
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

// scope is what one reconcile knows about its Campaign.
type scope struct {
	c   *voicev1alpha1.Campaign
	key types.NamespacedName
	now time.Time

	// children are the Campaign's Calls by contact index: informer
	// objects, read only.
	children        map[int64]*voicev1alpha1.Call
	listed          bool
	expectationsMet bool
	inflight        int
	ownStreaming    int

	contacts *contactList
	dnc      map[string]struct{}
	sched    schedule
	endpoint *voicev1alpha1.StreamEndpoint

	// waitReason says why no more Calls start now ("" when nothing holds
	// them back); waitMessage explains.
	waitReason, waitMessage string
	// window is the head contact's calling window: nil when not looked at.
	window *windowState
	// created Calls this pass (made or found made).
	created int
	// skipped, succeeded and failed this pass, for metrics once written.
	skipped           map[string]int
	succeeded, failed int
	requeue           time.Duration
}

type windowState struct {
	open  bool
	next  time.Time
	index int64
	zone  string
}

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
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile counts the Campaign's finished Calls, deletes expired ones, and
// starts Calls for the next contacts as far as suspend, windows, pacing,
// concurrency and the StreamEndpoint's free slots allow.
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

	s := &scope{c: c, key: req.NamespacedName, now: r.Now(), skipped: map[string]int{}}
	began := time.Now()
	before := c.Status.DeepCopy()
	err := r.reconcileNormal(ctx, s)
	r.summarize(s, err)

	if needsWrite(before, &c.Status) {
		// Update, not patch: the resourceVersion makes a write computed from
		// a stale view fail instead of counting a Call twice or moving the
		// cursor back.
		if uerr := r.Status().Update(ctx, c); uerr != nil {
			if apierrors.IsConflict(uerr) {
				return ctrl.Result{RequeueAfter: conflictRetry}, nil
			}
			return ctrl.Result{}, errors.Join(err, uerr)
		}
		r.written(s, before)
	}
	// Only now that the counts are stored may the Calls lose their count
	// finalizer.
	if rerr := r.releaseCounted(ctx, s); rerr != nil {
		err = errors.Join(err, rerr)
	}

	log.FromContext(ctx).V(1).Info("Reconciled", "cursor", c.Status.Cursor, "created", s.created, "inflight", s.inflight,
		"counted", s.succeeded+s.failed, "expectationsMet", s.expectationsMet, "wait", s.waitReason, "requeueAfter", s.requeue, "took", time.Since(began))
	if stalled, ok := stalledOnly(err); ok {
		// Stalled waits for a watched object (spec, ConfigMap, endpoint) to
		// change, not for backoff.
		log.FromContext(ctx).Info("Campaign stalled", "reason", stalled.reason, "message", stalled.Error())
		err = nil
	}
	return ctrl.Result{RequeueAfter: s.requeue}, err
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

// reconcileNormal runs the phases in order. Counting and TTL come first so
// they go on whatever stops new Calls.
func (r *Reconciler) reconcileNormal(ctx context.Context, s *scope) error {
	if err := r.listCalls(ctx, s); err != nil {
		return err
	}
	r.countFinished(s)
	var errs []error
	if err := r.expireFinished(ctx, s); err != nil {
		errs = append(errs, err)
	}
	if err := r.loadInputs(ctx, s); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := r.startCalls(ctx, s); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// loadInputs reads the contact list, the do-not-call list, the schedule and
// the StreamEndpoint.
func (r *Reconciler) loadInputs(ctx context.Context, s *scope) error {
	c := s.c
	var err error
	if s.contacts, err = r.loadContacts(ctx, c); err != nil {
		return err
	}
	if s.dnc, err = r.loadDoNotCall(ctx, c); err != nil {
		return err
	}
	if s.sched, err = parseSchedule(c.Spec.Schedule); err != nil {
		return &errStalled{"InvalidSchedule", err}
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

// reconcileDelete releases and deletes the Campaign's Calls (deleting a Call
// hangs it up), then lets the Campaign go.
func (r *Reconciler) reconcileDelete(ctx context.Context, c *voicev1alpha1.Campaign) (ctrl.Result, error) {
	key := types.NamespacedName{Namespace: c.Namespace, Name: c.Name}
	if !controllerutil.ContainsFinalizer(c, Finalizer) {
		r.forget(key)
		return ctrl.Result{}, nil
	}
	// Read past the cache: a Call it has not shown yet would keep its count
	// finalizer for ever once the Campaign is gone.
	var list voicev1alpha1.CallList
	if err := r.APIReader.List(ctx, &list, client.InNamespace(c.Namespace), client.MatchingLabels{LabelCampaign: LabelValue(c.Name)}); err != nil {
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
	return ctrl.Result{}, nil
}

func (r *Reconciler) forget(key types.NamespacedName) {
	r.cache.forget(key)
	r.expect.forget(key)
	r.recent.forget(key)
}

func (r *Reconciler) event(c *voicev1alpha1.Campaign, kind, reason, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(c, nil, kind, reason, "Reconcile", note, args...)
	}
}

// needsWrite decides whether status changed enough to write. Dropping
// released indexes from countedCalls alone waits for the next write (it is
// only bookkeeping), unless the Campaign is done and nothing else will come.
func needsWrite(before, after *voicev1alpha1.CampaignStatus) bool {
	if equality.Semantic.DeepEqual(before, after) {
		return false
	}
	b := before.DeepCopy()
	b.CountedCalls = after.CountedCalls
	if !equality.Semantic.DeepEqual(b, after) {
		return true
	}
	return len(after.CountedCalls) > len(before.CountedCalls) || after.CompletionTime != nil
}

// SetupWithManager registers the controller and its indexes.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
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
			return of != nf ||
				o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero() ||
				o.Annotations[AnnotationCounted] != n.Annotations[AnnotationCounted]
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
