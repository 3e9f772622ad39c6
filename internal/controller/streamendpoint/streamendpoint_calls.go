package streamendpoint

import (
	"context"
	"fmt"

	"github.com/callfleet/callfleet/internal/callstate"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// IndexCallByEndpoint is the field index on Calls by the name of the
// StreamEndpoint they stream to, registered by callstate.RegisterIndexes.
const IndexCallByEndpoint = callstate.IndexEndpoint

func endpointName(obj client.Object) string {
	call, ok := obj.(*voicev1alpha1.Call)
	if !ok || call.Spec.StreamEndpointRef == nil {
		return ""
	}
	return call.Spec.StreamEndpointRef.Name
}

// streaming reports whether call holds a stream now (connected, or paused
// with the socket open): what activeStreams counts.
func streaming(obj client.Object) bool {
	call, ok := obj.(*voicev1alpha1.Call)
	if !ok || call.Status.Stream == nil {
		return false
	}
	switch call.Status.Stream.State {
	case voicev1alpha1.StreamPhaseConnected, voicev1alpha1.StreamPhasePaused:
		return true
	}
	return false
}

// endpointOfCall maps a Call to the endpoint it streams to. On updates the
// handler maps the old and the new object, so both endpoints are counted
// again.
func endpointOfCall(_ context.Context, obj client.Object) []reconcile.Request {
	name := endpointName(obj)
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

// streamActivityChanged passes only the Call events that change an
// endpoint's activeStreams: a Call starting or stopping to stream, or a
// streaming Call created, deleted or pointed elsewhere. Calls change often
// (every webhook, every attempt) and most changes do not matter here.
func streamActivityChanged() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return streaming(e.Object) },
		DeleteFunc: func(e event.DeleteEvent) bool { return streaming(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			was, is := streaming(e.ObjectOld), streaming(e.ObjectNew)
			return was != is || (is && endpointName(e.ObjectOld) != endpointName(e.ObjectNew))
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// countActiveStreams counts the Calls streaming to ep now, in all and by
// the pod holding the socket (as the gateway reports it).
func (r *Reconciler) countActiveStreams(ctx context.Context, ep *voicev1alpha1.StreamEndpoint) (int32, map[string]int32, error) {
	var calls voicev1alpha1.CallList
	// Read-only use of the cache's objects: skip the deep copy of each Call.
	if err := r.List(ctx, &calls,
		client.InNamespace(ep.Namespace),
		client.MatchingFields{IndexCallByEndpoint: ep.Name},
		client.UnsafeDisableDeepCopy,
	); err != nil {
		return 0, nil, fmt.Errorf("listing Calls of the endpoint: %w", err)
	}
	var n int32
	byPod := map[string]int32{}
	for i := range calls.Items {
		if c := &calls.Items[i]; streaming(c) {
			n++
			if p := c.Status.Stream.Pod; p != "" {
				byPod[p]++
			}
		}
	}
	return n, byPod, nil
}

// listPods reads the endpoint's pods from the apiserver. Pods are not
// cached: a cache of Pods would hold every pod of the cluster, and a pod
// that starts or stops draining changes its Deployment's status, which is
// watched.
func (r *Reconciler) listPods(ctx context.Context, ep *voicev1alpha1.StreamEndpoint) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := r.reader().List(ctx, &pods, client.InNamespace(ep.Namespace), client.MatchingLabels(selectorLabels(ep))); err != nil {
		return nil, fmt.Errorf("listing the endpoint's pods: %w", err)
	}
	return pods.Items, nil
}
