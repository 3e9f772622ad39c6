package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/scheme"
)

// TestCallReconcilerDelivery: what the sink answers decides what is stored:
// 2xx marks the Call delivered and lets it go; a 4xx marks it failed and is
// not retried; 5xx keeps it owed (finalizer kept) and retries with backoff.
func TestCallReconcilerDelivery(t *testing.T) {
	for _, tc := range []struct {
		status      int
		wantMark    string // "" = none
		wantFinal   bool
		wantRequeue bool
	}{
		{http.StatusAccepted, "uid-1.completed", false, false},
		{http.StatusBadRequest, "failed: rejected", false, false},
		{http.StatusServiceUnavailable, "", true, true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tc.status) }))
		call := &voicev1alpha1.Call{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: "uid-1", Finalizers: []string{Finalizer}},
			Spec:       voicev1alpha1.CallSpec{To: "919800000001"},
			Status: voicev1alpha1.CallStatus{Phase: voicev1alpha1.CallCompleted, Conditions: []metav1.Condition{{
				Type: voicev1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Completed", LastTransitionTime: metav1.Now(),
			}}},
		}
		key := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "sys", Name: "hook"}, Data: map[string][]byte{DefaultKey: []byte("k")}}
		cl := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(call, key).WithStatusSubresource(call).Build()
		r := &CallReconciler{Options: Options{Client: cl, Sinks: &Resolver{Reader: cl,
			Default: &Default{URL: srv.URL, Secret: types.NamespacedName{Namespace: "sys", Name: "hook"}}}}}
		r.defaults()
		res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "c"}})
		srv.Close()
		if err != nil {
			t.Fatalf("HTTP %d: %v", tc.status, err)
		}
		got := &voicev1alpha1.Call{}
		if err := cl.Get(context.Background(), types.NamespacedName{Namespace: "ns", Name: "c"}, got); err != nil {
			t.Fatal(err)
		}
		hasFinal := len(got.Finalizers) == 1
		if got.Annotations[AnnotationDelivered] != tc.wantMark || hasFinal != tc.wantFinal || (res.RequeueAfter > 0) != tc.wantRequeue {
			t.Errorf("HTTP %d: annotation %q finalizer %v requeue %v; want %q %v %v", tc.status,
				got.Annotations[AnnotationDelivered], hasFinal, res.RequeueAfter, tc.wantMark, tc.wantFinal, tc.wantRequeue)
		}
	}
}
