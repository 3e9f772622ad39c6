package streamendpoint

import (
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// Condition reasons. Ready's reason says whether the endpoint takes calls
// and why not; Stalled's says what has to change.
const (
	// ReasonReplicasReady: at least one pod is ready (Ready=True).
	ReasonReplicasReady = "ReplicasReady"
	// ReasonNoReadyReplicas: no pod is ready yet.
	ReasonNoReadyReplicas = "NoReadyReplicas"
	// ReasonScaledToZero: spec.replicas is 0.
	ReasonScaledToZero = "ScaledToZero"
	// ReasonDeploymentMissing: the Deployment does not exist (yet).
	ReasonDeploymentMissing = "DeploymentMissing"
	// ReasonHealthCheckSucceeded: the external handler answered 2xx.
	ReasonHealthCheckSucceeded = "HealthCheckSucceeded"
	// ReasonHealthCheckFailed: the external handler did not answer 2xx in time.
	ReasonHealthCheckFailed = "HealthCheckFailed"
	// ReasonHealthCheckPending: no health check has run in this pass.
	ReasonHealthCheckPending = "HealthCheckPending"

	// ReasonRollingOut: the Deployment is rolling out the current spec.
	ReasonRollingOut = "RollingOut"
	// ReasonWaitingForHealthy: the external handler is not healthy yet.
	ReasonWaitingForHealthy = "WaitingForHealthy"
	// ReasonRetrying: the last reconcile failed and will be retried.
	ReasonRetrying = "RetryingAfterError"

	// ReasonInvalidName: the endpoint's name cannot name a Service.
	ReasonInvalidName = "InvalidName"
	// ReasonInvalidSpec: the spec is incomplete in a way CEL did not catch.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonMissingPublicURL: external mode without spec.publicURL.
	ReasonMissingPublicURL = "MissingPublicURL"
	// ReasonMissingStreamKey: the manager has no stream token key to derive
	// the endpoint's from.
	ReasonMissingStreamKey = "MissingStreamKey"
	// ReasonHealthURLNotAllowed: spec.external.healthURL points somewhere
	// other than the handler (publicURL's host or a Service of the namespace).
	ReasonHealthURLNotAllowed = "HealthURLNotAllowed"
	// ReasonInvalidPublicURL: spec.ingress with a publicURL that has no host.
	ReasonInvalidPublicURL = "InvalidPublicURL"
	// ReasonMissingGatewayImage: neither spec.gateway.image nor the manager's
	// default gateway image is set.
	ReasonMissingGatewayImage = "MissingGatewayImage"
	// ReasonPortConflict: two containers of the pod would listen on one port.
	ReasonPortConflict = "PortConflict"
	// ReasonNameConflict: an object the endpoint would own exists and belongs
	// to someone else.
	ReasonNameConflict = "NameConflict"
	// ReasonInvalidChild: the apiserver rejected an object built from the
	// spec; the message has its verdict.
	ReasonInvalidChild = "InvalidChild"
	// ReasonProgressDeadlineExceeded: the Deployment stopped progressing
	// (image pull errors, crash loops, missing Secret, quota).
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
)

// scope is what one reconcile learned, for the status computation.
type scope struct {
	endpoint *voicev1alpha1.StreamEndpoint
	// deployment is the endpoint's Deployment as last read; nil when there
	// is none or it was not read.
	deployment *appsv1.Deployment
	// health is the external handler's health check; nil when none ran.
	health *healthResult
	// activeStreams counts Calls streaming here; nil when counting failed.
	activeStreams *int32
	// streamsByPod counts them by the pod holding the socket.
	streamsByPod map[string]int32
	// pods are the endpoint's pods; nil when not read (external mode, or
	// listing failed).
	pods []corev1.Pod
	// stalled is the problem that stopped this pass, if any.
	stalled *stalledError
	// err is what failed in this pass and will be retried.
	err error
}

// setStatus computes ep's status from what this pass observed. All condition
// logic lives here.
func setStatus(s *scope, now time.Time) {
	ep := s.endpoint
	st := &ep.Status
	external := ep.Spec.External != nil

	if s.activeStreams != nil {
		st.ActiveStreams = *s.activeStreams
	}
	if external {
		st.URL = ep.Spec.PublicURL
		st.ReadyReplicas = 0
	} else {
		st.URL = ep.Spec.PublicURL
		if st.URL == "" {
			st.URL = serviceURL(ep)
		}
		st.ReadyReplicas = 0
		if s.deployment != nil {
			st.ReadyReplicas = s.deployment.Status.ReadyReplicas
		}
	}

	ready := readyCondition(s)
	// Capacity is what Campaigns may use now: nothing while not Ready.
	st.Capacity = 0
	if ready.Status == metav1.ConditionTrue {
		if external {
			st.Capacity = externalCapacity(ep)
		} else {
			st.Capacity = st.ReadyReplicas * maxStreamsPerReplica(ep)
		}
	}

	setLoad(s, ready.Status == metav1.ConditionTrue)

	stalledCond := stalledCondition(s)
	var reconciling *metav1.Condition
	if stalledCond == nil {
		reconciling = reconcilingCondition(s)
	}

	// Reconciling and Stalled are abnormal-true conditions (kstatus): present
	// while True, removed otherwise.
	setCondition(ep, &ready, now)
	for _, abnormal := range []struct {
		typ  string
		cond *metav1.Condition
	}{
		{voicev1alpha1.ConditionReconciling, reconciling},
		{voicev1alpha1.ConditionStalled, stalledCond},
	} {
		if abnormal.cond == nil {
			meta.RemoveStatusCondition(&st.Conditions, abnormal.typ)
			continue
		}
		setCondition(ep, abnormal.cond, now)
	}

	// observedGeneration says the controller reached a verdict on this
	// generation: done, or stalled until the spec changes. A pass that will
	// be retried has not.
	if s.err == nil {
		st.ObservedGeneration = ep.Generation
	}
}

// setLoad reports each pod's calls and the free slots pacing may use: those
// of ready pods that are not draining, nothing while the endpoint is not
// Ready.
func setLoad(s *scope, ready bool) {
	ep := s.endpoint
	st := &ep.Status
	if ep.Spec.External != nil {
		st.Pods, st.DrainingReplicas, st.FreeSlots = nil, 0, 0
		if ready {
			st.FreeSlots = max(0, st.Capacity-st.ActiveStreams)
		}
		return
	}
	if s.pods == nil {
		// Not read this pass: keep what was reported, but promise nothing.
		st.FreeSlots = 0
		return
	}
	pods := make([]voicev1alpha1.EndpointPodStatus, 0, len(s.pods))
	var draining, free int32
	for i := range s.pods {
		p := &s.pods[i]
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue // holds no sockets
		}
		ps := voicev1alpha1.EndpointPodStatus{
			Name:          p.Name,
			Draining:      !p.DeletionTimestamp.IsZero(),
			ActiveStreams: s.streamsByPod[p.Name],
		}
		ps.Ready = !ps.Draining && podReady(p)
		if ps.Draining {
			draining++
		}
		if ps.Ready {
			free += max(0, maxStreamsPerReplica(ep)-ps.ActiveStreams)
		}
		pods = append(pods, ps)
	}
	slices.SortFunc(pods, func(a, b voicev1alpha1.EndpointPodStatus) int { return strings.Compare(a.Name, b.Name) })
	if len(pods) == 0 {
		pods = nil
	}
	st.Pods, st.DrainingReplicas = pods, draining
	st.FreeSlots = 0
	if ready {
		st.FreeSlots = free
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func setCondition(ep *voicev1alpha1.StreamEndpoint, c *metav1.Condition, now time.Time) {
	c.ObservedGeneration = ep.Generation
	c.LastTransitionTime = metav1.NewTime(now)
	meta.SetStatusCondition(&ep.Status.Conditions, *c)
}

// readyCondition: True while the endpoint takes calls.
func readyCondition(s *scope) metav1.Condition {
	ep := s.endpoint
	c := func(status metav1.ConditionStatus, reason, format string, args ...any) metav1.Condition {
		return metav1.Condition{Type: voicev1alpha1.ConditionReady, Status: status, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	if s.stalled != nil {
		return c(metav1.ConditionFalse, s.stalled.reason, "%s", s.stalled.message)
	}
	if ep.Spec.External != nil {
		switch {
		case s.health == nil:
			return c(metav1.ConditionUnknown, ReasonHealthCheckPending, "the external handler's health has not been checked yet")
		case s.health.healthy:
			return c(metav1.ConditionTrue, ReasonHealthCheckSucceeded, "%s", s.health.message)
		default:
			return c(metav1.ConditionFalse, ReasonHealthCheckFailed, "%s", s.health.message)
		}
	}
	want := replicas(ep)
	switch {
	case want == 0:
		return c(metav1.ConditionFalse, ReasonScaledToZero, "spec.replicas is 0")
	case s.deployment == nil:
		return c(metav1.ConditionFalse, ReasonDeploymentMissing, "Deployment %s does not exist yet", ep.Name)
	case s.deployment.Status.ReadyReplicas >= 1:
		return c(metav1.ConditionTrue, ReasonReplicasReady, "%d of %d replicas ready", s.deployment.Status.ReadyReplicas, want)
	default:
		return c(metav1.ConditionFalse, ReasonNoReadyReplicas, "0 of %d replicas ready", want)
	}
}

// stalledCondition: a problem that waiting will not fix, or nil.
func stalledCondition(s *scope) *metav1.Condition {
	c := func(reason, message string) *metav1.Condition {
		return &metav1.Condition{Type: voicev1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: reason, Message: message}
	}
	if s.stalled != nil {
		return c(s.stalled.reason, s.stalled.message)
	}
	if s.err != nil {
		// Retrying: that is Reconciling, not Stalled.
		return nil
	}
	if dep := s.deployment; dep != nil && dep.Status.ObservedGeneration >= dep.Generation {
		if p := deploymentCondition(dep, appsv1.DeploymentProgressing); p != nil &&
			p.Status == corev1.ConditionFalse && p.Reason == "ProgressDeadlineExceeded" {
			return c(ReasonProgressDeadlineExceeded, fmt.Sprintf("Deployment %s: %s", dep.Name, p.Message))
		}
	}
	return nil
}

// reconcilingCondition: the controller is still working towards the spec,
// or nil.
func reconcilingCondition(s *scope) *metav1.Condition {
	c := func(reason, format string, args ...any) *metav1.Condition {
		return &metav1.Condition{Type: voicev1alpha1.ConditionReconciling, Status: metav1.ConditionTrue, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	if s.err != nil {
		return c(ReasonRetrying, "%v", s.err)
	}
	ep := s.endpoint
	if ep.Spec.External != nil {
		if s.health == nil || !s.health.healthy {
			return c(ReasonWaitingForHealthy, "waiting for the external handler's health check to pass")
		}
		return nil
	}
	if msg, done := rolloutStatus(s.deployment); !done {
		return c(ReasonRollingOut, "%s", msg)
	}
	return nil
}

// rolloutStatus says whether the Deployment runs its current template on all
// its replicas, as `kubectl rollout status` does.
func rolloutStatus(dep *appsv1.Deployment) (string, bool) {
	if dep == nil {
		return "waiting for the Deployment to be created", false
	}
	st := dep.Status
	want := int32(1)
	if dep.Spec.Replicas != nil {
		want = *dep.Spec.Replicas
	}
	switch {
	case st.ObservedGeneration < dep.Generation:
		return fmt.Sprintf("Deployment %s: waiting for the rollout to start", dep.Name), false
	case st.UpdatedReplicas < want:
		return fmt.Sprintf("Deployment %s: %d of %d replicas updated", dep.Name, st.UpdatedReplicas, want), false
	case st.Replicas > st.UpdatedReplicas:
		return fmt.Sprintf("Deployment %s: %d old replicas pending termination", dep.Name, st.Replicas-st.UpdatedReplicas), false
	case st.AvailableReplicas < st.UpdatedReplicas:
		return fmt.Sprintf("Deployment %s: %d of %d updated replicas available", dep.Name, st.AvailableReplicas, st.UpdatedReplicas), false
	}
	return "", true
}

func deploymentCondition(dep *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range dep.Status.Conditions {
		if dep.Status.Conditions[i].Type == t {
			return &dep.Status.Conditions[i]
		}
	}
	return nil
}
