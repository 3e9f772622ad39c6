package streamendpoint

import (
	"context"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// reconcileDisruptionBudget keeps voluntary disruptions (node drains,
// cluster upgrades) to one bot pod at a time: each evicted pod drains its
// calls, and the rest keep taking new ones meanwhile.
func (r *Reconciler) reconcileDisruptionBudget(ctx context.Context, s *scope) (ctrl.Result, error) {
	ep := s.endpoint
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: ep.Name, Namespace: ep.Namespace}}
	return ctrl.Result{}, r.apply(ctx, s, pdb, func() { mutateDisruptionBudget(pdb, ep) })
}

func mutateDisruptionBudget(pdb *policyv1.PodDisruptionBudget, ep *voicev1alpha1.StreamEndpoint) {
	pdb.Labels = withEntries(pdb.Labels, endpointLabels(ep))
	pdb.Spec = policyv1.PodDisruptionBudgetSpec{
		Selector:       &metav1.LabelSelector{MatchLabels: selectorLabels(ep)},
		MaxUnavailable: ptr.To(intstr.FromInt32(1)),
		// A pod that is not ready holds no calls worth protecting (a crash
		// loop, a bad image): it must not block a node drain.
		UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
	}
}
