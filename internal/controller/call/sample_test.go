package call_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/controller/call"
	"github.com/callfleet/callfleet/internal/testenv"
	"github.com/callfleet/callfleet/test/harness"
)

// TestSampleCallKeepsSpec applies config/samples/voice_v1alpha1_call.yaml as
// it is and checks that reconciling it (the finalizer, the wait for its
// endpoint) leaves the spec as written: generation 1 and the explicit
// `handoff.requested: false` still there, so GitOps tools see no drift.
func TestSampleCallKeepsSpec(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "voice_v1alpha1_call.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(b, &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetNamespace(ns)
	if err := k8s.Create(context.Background(), u); err != nil {
		t.Fatalf("sample: %v", err)
	}
	gvk := schema.GroupVersionKind{Group: voicev1alpha1.GroupVersion.Group, Version: voicev1alpha1.GroupVersion.Version, Kind: "Call"}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(gvk)
	harness.WaitFor(t, "the sample Call reconciled (finalizer on, endpoint wait reported)", 60*time.Second, func() (bool, string) {
		if err := k8s.Get(context.Background(), clientKey(ns, u.GetName()), got); err != nil {
			return false, err.Error()
		}
		c := getCall(t, ns, u.GetName())
		reconciled := slices.Contains(got.GetFinalizers(), call.Finalizer) && c.Status.ObservedGeneration == c.Generation
		return reconciled, describe(c)
	})
	if got.GetGeneration() != 1 {
		t.Fatalf("generation %d: the controller rewrote the spec", got.GetGeneration())
	}
	requested, found, err := unstructured.NestedBool(got.Object, "spec", "handoff", "requested")
	if err != nil || !found || requested {
		t.Fatalf("spec.handoff.requested = %v (found %v, %v): the explicit false was dropped", requested, found, err)
	}
}
