package streamendpoint

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/callfleet/callfleet/internal/callstate"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/streamtoken"
)

// ControllerName names the controller in logs, metrics and as the reporting
// controller of its Events.
const ControllerName = "streamendpoint"

// Reconciler reconciles StreamEndpoints.
type Reconciler struct {
	client.Client
	Scheme *runtime.Scheme
	// Recorder emits Events about the endpoint; SetupWithManager fills it
	// from the manager when nil.
	Recorder events.EventRecorder
	// GatewayImage is the gateway image for endpoints that do not set
	// spec.gateway.image (the manager's --gateway-image).
	GatewayImage string
	// StreamTokenKeys are the manager's root stream token keys: the one it
	// signs with, then (during a rotation) the other one gateways accept.
	// Each endpoint's gateway gets keys derived from them, never these.
	StreamTokenKeys streamtoken.Keys
	// MonitorTokenKeys are the root monitor token keys the console signs
	// listen-in tokens with (the same as its --monitor-key-file): the current
	// one, then (during a rotation) the previous one. Each endpoint's gateway
	// gets keys derived from them, never these. Empty: monitoring is off and
	// the gateways get no monitor key.
	MonitorTokenKeys [][]byte
	// APIReader lists the endpoint's pods straight from the apiserver (their
	// readiness and whether they are draining), so the manager caches no
	// Pods; Client when nil.
	APIReader client.Reader
	// HTTPClient checks external handlers' health; http.DefaultClient when
	// nil. Each check has its own 2 s deadline.
	HTTPClient *http.Client
	// Now is the clock for condition transition times; time.Now when nil.
	Now func() time.Time
}

// phase is one step of a reconcile. It records what it observes in the scope.
type phase func(ctx context.Context, s *scope) (ctrl.Result, error)

// The manager needs every right it grants the gateway's Role (RBAC forbids
// escalation), hence calls get/list/watch, calls/status patch and agentpools
// get.
// streamendpoints/finalizers update lets the children's owner references
// block the endpoint's deletion until they are gone (foreground deletion).
// There is no update or patch on streamendpoints: the controller never writes
// spec.
//
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=streamendpoints,verbs=get;list;watch
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=streamendpoints/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=streamendpoints/finalizers,verbs=update
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=calls,verbs=get;list;watch
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=calls/status,verbs=patch
// +kubebuilder:rbac:groups=voice.callfleet.dev,resources=agentpools,verbs=get
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=core,resources=services;serviceaccounts,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=core,resources=pods,verbs=list
// +kubebuilder:rbac:groups=core,resources=secrets,verbs=get;create;update;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=core,resources=events,verbs=create;patch

// Reconcile makes the endpoint's children match its spec and reports what
// runs in its status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	ep := &voicev1alpha1.StreamEndpoint{}
	if err := r.Get(ctx, req.NamespacedName, ep); err != nil {
		// Gone: the children's owner references let the garbage collector
		// remove them.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ep.DeletionTimestamp.IsZero() {
		// Nothing outside the cluster to clean up, hence no finalizer: the
		// garbage collector deletes the children.
		return ctrl.Result{}, nil
	}

	s := &scope{endpoint: ep}
	before := ep.DeepCopy()
	defer func() {
		s.err = retErr
		if err := r.patchStatus(ctx, s, before); err != nil {
			// Retried with backoff; a requeue interval would be ignored.
			res, retErr = ctrl.Result{}, kerrors.NewAggregate([]error{retErr, err})
		}
	}()

	if ep.Spec.External != nil {
		return r.runPhases(ctx, s,
			r.preflightExternal,
			r.deleteManagedChildren,
			r.reconcileHealth,
		)
	}
	return r.runPhases(ctx, s,
		r.preflightManaged,
		r.reconcileGatewayAccess,
		r.reconcileStreamKey,
		r.reconcileDeployment,
		r.reconcileDisruptionBudget,
		r.reconcileService,
		r.reconcileIngress,
	)
}

// runPhases runs the phases in order. A failing phase does not stop the ones
// after it (they are independent; an Ingress error should not keep a new
// image from rolling out) but a stall does: the spec has to change first.
func (r *Reconciler) runPhases(ctx context.Context, s *scope, phases ...phase) (ctrl.Result, error) {
	var res ctrl.Result
	var errs []error
	for _, p := range phases {
		pres, err := p(ctx, s)
		if stall := (*stalledError)(nil); errors.As(err, &stall) {
			s.stalled = stall
			res = ctrl.Result{RequeueAfter: stall.recheckAfter}
			break
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res = lowestNonZero(res, pres)
	}
	if len(errs) > 0 {
		// Errors are retried with backoff, which replaces any interval.
		return ctrl.Result{}, kerrors.NewAggregate(errs)
	}
	return res, nil
}

func lowestNonZero(a, b ctrl.Result) ctrl.Result {
	switch {
	case a.RequeueAfter == 0:
		return b
	case b.RequeueAfter == 0 || a.RequeueAfter < b.RequeueAfter:
		return a
	default:
		return b
	}
}

func (r *Reconciler) preflightManaged(_ context.Context, s *scope) (ctrl.Result, error) {
	return ctrl.Result{}, preflightManaged(s.endpoint, r.GatewayImage)
}

func (r *Reconciler) preflightExternal(_ context.Context, s *scope) (ctrl.Result, error) {
	return ctrl.Result{}, preflightExternal(s.endpoint)
}

// reconcileGatewayAccess gives the gateway a ServiceAccount that may read
// Calls and report their stream state, in the endpoint's namespace only.
func (r *Reconciler) reconcileGatewayAccess(ctx context.Context, s *scope) (ctrl.Result, error) {
	ep := s.endpoint
	named := metav1.ObjectMeta{Name: gatewayAccessName(ep), Namespace: ep.Namespace}
	sa := &corev1.ServiceAccount{ObjectMeta: named}
	role := &rbacv1.Role{ObjectMeta: named}
	rb := &rbacv1.RoleBinding{ObjectMeta: named}
	if !gatewayEnabled(ep) {
		return ctrl.Result{}, r.deleteOwned(ctx, s, rb, role, sa)
	}
	// In order: the binding names the account and the role.
	return ctrl.Result{}, stallOrAggregate(
		r.apply(ctx, s, sa, func() { mutateServiceAccount(sa, ep) }),
		r.apply(ctx, s, role, func() { mutateRole(role, ep) }),
		r.apply(ctx, s, rb, func() { mutateRoleBinding(rb, ep) }),
	)
}

// stallOrAggregate returns the first stall among errs (it decides what
// happens next), else all of them.
func stallOrAggregate(errs ...error) error {
	for _, err := range errs {
		if stall := (*stalledError)(nil); errors.As(err, &stall) {
			return stall
		}
	}
	return kerrors.NewAggregate(errs)
}

func (r *Reconciler) reconcileDeployment(ctx context.Context, s *scope) (ctrl.Result, error) {
	ep := s.endpoint
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: ep.Name, Namespace: ep.Namespace}}
	image := ep.Spec.Gateway.Image
	if image == "" {
		image = r.GatewayImage
	}
	monitor := len(r.MonitorTokenKeys) > 0
	err := r.apply(ctx, s, dep, func() { mutateDeployment(dep, ep, image, monitor) })
	// Even when the update failed, dep holds the status last read: readiness
	// does not depend on whether this write went through.
	if dep.ResourceVersion != "" && metav1.IsControlledBy(dep, ep) {
		s.deployment = dep
	}
	return ctrl.Result{}, err
}

func (r *Reconciler) reconcileService(ctx context.Context, s *scope) (ctrl.Result, error) {
	ep := s.endpoint
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: ep.Name, Namespace: ep.Namespace}}
	return ctrl.Result{}, r.apply(ctx, s, svc, func() { mutateService(svc, ep) })
}

func (r *Reconciler) reconcileIngress(ctx context.Context, s *scope) (ctrl.Result, error) {
	ep := s.endpoint
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: ep.Name, Namespace: ep.Namespace}}
	if ep.Spec.Ingress == nil {
		return ctrl.Result{}, r.deleteOwned(ctx, s, ing)
	}
	route, err := parsePublicURL(ep.Spec.PublicURL) // checked in preflight
	if err != nil {
		return ctrl.Result{}, stalled(ReasonInvalidPublicURL, "spec.publicURL: %v", err)
	}
	return ctrl.Result{}, r.apply(ctx, s, ing, func() { mutateIngress(ing, ep, route) })
}

// deleteManagedChildren removes what managed mode made, for an endpoint
// switched to external mode.
func (r *Reconciler) deleteManagedChildren(ctx context.Context, s *scope) (ctrl.Result, error) {
	ep := s.endpoint
	named := metav1.ObjectMeta{Name: ep.Name, Namespace: ep.Namespace}
	access := metav1.ObjectMeta{Name: gatewayAccessName(ep), Namespace: ep.Namespace}
	return ctrl.Result{}, kerrors.NewAggregate([]error{r.deleteOwnedSecret(ctx, s), r.deleteOwned(ctx, s,
		&networkingv1.Ingress{ObjectMeta: named},
		&corev1.Service{ObjectMeta: named},
		&policyv1.PodDisruptionBudget{ObjectMeta: named},
		&appsv1.Deployment{ObjectMeta: named},
		&rbacv1.RoleBinding{ObjectMeta: access},
		&rbacv1.Role{ObjectMeta: access},
		&corev1.ServiceAccount{ObjectMeta: access},
	)})
}

// reconcileHealth checks the external handler's health URL.
func (r *Reconciler) reconcileHealth(ctx context.Context, s *scope) (ctrl.Result, error) {
	c := r.HTTPClient
	if c == nil {
		c = http.DefaultClient
	}
	h := checkHealth(ctx, c, s.endpoint.Spec.External.HealthURL)
	s.health = &h
	ctrl.LoggerFrom(ctx).V(1).Info("Health check", "healthy", h.healthy, "detail", h.detail)
	// Nothing is watched for a handler outside the cluster: poll.
	if h.healthy {
		return ctrl.Result{RequeueAfter: healthyInterval}, nil
	}
	return ctrl.Result{RequeueAfter: unhealthyInterval}, nil
}

// apply creates obj or updates it to what mutate makes of it, owned by the
// endpoint.
func (r *Reconciler) apply(ctx context.Context, s *scope, obj client.Object, mutate func()) error {
	ep := s.endpoint
	kind := r.kindOf(obj)
	var readVersion string
	op, err := controllerutil.CreateOrUpdate(ctx, r.Client, obj, func() error {
		// Never take over an object someone else made: it could be theirs.
		if obj.GetResourceVersion() != "" && !metav1.IsControlledBy(obj, ep) {
			return &stalledError{
				reason:       ReasonNameConflict,
				message:      fmt.Sprintf("%s %s exists and is not owned by this StreamEndpoint; delete or rename it", kind, obj.GetName()),
				recheckAfter: time.Minute,
			}
		}
		readVersion = obj.GetResourceVersion()
		mutate()
		return controllerutil.SetControllerReference(ep, obj, r.Scheme)
	})
	switch {
	case apierrors.IsInvalid(err):
		// Built from the spec, so the same spec gets the same answer; but
		// an admission policy may be behind it, so look again now and then.
		stall := stalled(ReasonInvalidChild, "the apiserver rejected %s %s: %v", kind, obj.GetName(), err)
		stall.recheckAfter = time.Minute
		return stall
	case err != nil:
		return fmt.Errorf("applying %s %s: %w", kind, obj.GetName(), err)
	}

	log := ctrl.LoggerFrom(ctx)
	switch {
	case op == controllerutil.OperationResultCreated:
		log.Info("Created child", "kind", kind, "child", klog.KObj(obj))
		r.event(ep, obj, corev1.EventTypeNormal, "Created", "Create", "Created %s %s", kind, obj.GetName())
	case op == controllerutil.OperationResultUpdated && obj.GetResourceVersion() != readVersion:
		log.Info("Updated child", "kind", kind, "child", klog.KObj(obj))
		r.event(ep, obj, corev1.EventTypeNormal, "Updated", "Update", "Updated %s %s", kind, obj.GetName())
	case op == controllerutil.OperationResultUpdated:
		// The apiserver found nothing to change: a difference in a field it
		// normalises. Harmless, but worth knowing when reading verbose logs.
		log.V(1).Info("Update of child changed nothing", "kind", kind, "child", klog.KObj(obj))
	}
	return nil
}

// deleteOwned deletes those of objs (named, in the endpoint's namespace) that
// the endpoint controls, in order.
func (r *Reconciler) deleteOwned(ctx context.Context, s *scope, objs ...client.Object) error {
	ep := s.endpoint
	var errs []error
	for _, obj := range objs {
		kind := r.kindOf(obj)
		if err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("reading %s %s: %w", kind, obj.GetName(), err))
			}
			continue
		}
		if !metav1.IsControlledBy(obj, ep) {
			continue // not ours to delete
		}
		uid := obj.GetUID()
		if err := r.Delete(ctx, obj, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("deleting %s %s: %w", kind, obj.GetName(), err))
			continue
		}
		ctrl.LoggerFrom(ctx).Info("Deleted child", "kind", kind, "child", klog.KObj(obj))
		r.event(ep, obj, corev1.EventTypeNormal, "Deleted", "Delete", "Deleted %s %s: no longer in the spec", kind, obj.GetName())
	}
	return kerrors.NewAggregate(errs)
}

func (r *Reconciler) kindOf(obj client.Object) string {
	gvk, err := apiutil.GVKForObject(obj, r.Scheme)
	if err != nil {
		return fmt.Sprintf("%T", obj)
	}
	return gvk.Kind
}

func (r *Reconciler) event(ep *voicev1alpha1.StreamEndpoint, related runtime.Object, eventType, reason, action, note string, args ...any) {
	if r.Recorder == nil {
		return
	}
	r.Recorder.Eventf(ep, related, eventType, reason, action, note, args...)
}

func (r *Reconciler) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// patchStatus counts the endpoint's streams, computes its status and writes
// it when it changed.
func (r *Reconciler) patchStatus(ctx context.Context, s *scope, before *voicev1alpha1.StreamEndpoint) error {
	ep := s.endpoint
	var errs []error
	if n, byPod, err := r.countActiveStreams(ctx, ep); err != nil {
		errs = append(errs, err)
		s.err = kerrors.NewAggregate([]error{s.err, err})
	} else {
		s.activeStreams, s.streamsByPod = &n, byPod
	}
	if ep.Spec.External == nil {
		if pods, err := r.listPods(ctx, ep); err != nil {
			errs = append(errs, err)
			s.err = kerrors.NewAggregate([]error{s.err, err})
		} else {
			s.pods = pods
		}
	}
	if ep.Spec.External == nil && s.deployment == nil {
		// The phases stopped before the Deployment (a stall): still report
		// the readiness of what runs.
		dep := &appsv1.Deployment{}
		if err := r.Get(ctx, client.ObjectKeyFromObject(ep), dep); err == nil && metav1.IsControlledBy(dep, ep) {
			s.deployment = dep
		}
	}

	setStatus(s, r.now())
	r.recordTransitions(ctx, before, ep)
	if equality.Semantic.DeepEqual(before.Status, ep.Status) {
		return kerrors.NewAggregate(errs)
	}
	if err := r.Status().Patch(ctx, ep, client.MergeFrom(before)); err != nil {
		errs = append(errs, fmt.Errorf("patching status: %w", client.IgnoreNotFound(err)))
	}
	return kerrors.NewAggregate(errs)
}

// recordTransitions emits Events when the endpoint gains or loses readiness
// or stalls.
func (r *Reconciler) recordTransitions(ctx context.Context, before, after *voicev1alpha1.StreamEndpoint) {
	log := ctrl.LoggerFrom(ctx)
	oldReady := meta.FindStatusCondition(before.Status.Conditions, voicev1alpha1.ConditionReady)
	newReady := meta.FindStatusCondition(after.Status.Conditions, voicev1alpha1.ConditionReady)
	wasReady := oldReady != nil && oldReady.Status == metav1.ConditionTrue
	isReady := newReady != nil && newReady.Status == metav1.ConditionTrue
	switch {
	case isReady && !wasReady:
		r.event(after, nil, corev1.EventTypeNormal, "Ready", "Reconcile", "%s", newReady.Message)
	case wasReady && !isReady && newReady != nil:
		log.Info("StreamEndpoint is no longer ready", "reason", newReady.Reason, "message", newReady.Message)
		r.event(after, nil, corev1.EventTypeWarning, "NotReady", "Reconcile", "%s: %s", newReady.Reason, newReady.Message)
	}

	oldStalled := meta.FindStatusCondition(before.Status.Conditions, voicev1alpha1.ConditionStalled)
	newStalled := meta.FindStatusCondition(after.Status.Conditions, voicev1alpha1.ConditionStalled)
	if newStalled != nil && (oldStalled == nil || oldStalled.Reason != newStalled.Reason) {
		r.event(after, nil, corev1.EventTypeWarning, newStalled.Reason, "Reconcile", "%s", newStalled.Message)
	}
}

// SetupWithManager registers the Call index and the controller with mgr.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorder(ControllerName)
	}
	if err := callstate.RegisterIndexes(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		// Our own status writes change neither generation, labels nor
		// annotations, so they do not wake us; touching an annotation
		// does (a way to ask for a reconcile now).
		For(&voicev1alpha1.StreamEndpoint{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{},
			predicate.AnnotationChangedPredicate{},
			predicate.LabelChangedPredicate{},
		))).
		Owns(&appsv1.Deployment{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&corev1.Service{}).
		Owns(&networkingv1.Ingress{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Watches(&voicev1alpha1.Call{},
			handler.EnqueueRequestsFromMapFunc(endpointOfCall),
			builder.WithPredicates(streamActivityChanged())).
		Complete(r)
}
