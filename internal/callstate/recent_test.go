package callstate

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

func version(rv string, phase voicev1alpha1.CallPhase) *voicev1alpha1.Call {
	return &voicev1alpha1.Call{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: "u1", ResourceVersion: rv},
		Status:     voicev1alpha1.CallStatus{Phase: phase},
	}
}

func TestRecentGivesTheWriteOverTheVersionItReplaced(t *testing.T) {
	var r Recent
	if got := r.Fresher(version("1", voicev1alpha1.CallPending)); got != nil {
		t.Fatalf("nothing written, yet %v", got)
	}
	r.Wrote("1", version("2", voicev1alpha1.CallDialing))
	got := r.Fresher(version("1", voicev1alpha1.CallPending))
	if got == nil || got.ResourceVersion != "2" || got.Status.Phase != voicev1alpha1.CallDialing {
		t.Fatalf("a cache at the replaced version: want version 2, got %v", got)
	}
	got.Status.Phase = voicev1alpha1.CallFailed // a copy: the memory is not changed
	if again := r.Newer(version("1", "")); again == nil || again.Status.Phase != voicev1alpha1.CallDialing {
		t.Fatalf("the remembered write was changed through a copy: %v", again)
	}
	// A version nothing here replaced (another writer's): the cache's.
	if got := r.Fresher(version("7", voicev1alpha1.CallRinging)); got != nil {
		t.Fatalf("a version not replaced here: want the cache's, got %v", got)
	}
	// The same Call name with another UID is another Call.
	other := version("1", "")
	other.UID = "u2"
	if got := r.Fresher(other); got != nil {
		t.Fatalf("another Call of the same name: got %v", got)
	}
	// The cache catches up: remembered no more.
	if got := r.Fresher(version("2", voicev1alpha1.CallDialing)); got != nil {
		t.Fatalf("a cache at the written version: got %v", got)
	}
	if got := r.Fresher(version("1", "")); got != nil {
		t.Fatalf("forgotten once the cache caught up, yet %v", got)
	}
}

func TestRecentKeepsTheNewestOfWritesRecordedOutOfOrder(t *testing.T) {
	var r Recent
	// The receiver's write 2 -> 3 is recorded before the controller's 1 -> 2.
	r.Wrote("2", version("3", voicev1alpha1.CallRinging))
	r.Wrote("1", version("2", voicev1alpha1.CallDialing))
	for _, cached := range []string{"1", "2"} {
		if got := r.Fresher(version(cached, "")); got == nil || got.ResourceVersion != "3" {
			t.Fatalf("cache at %s: want version 3, got %v", cached, got)
		}
	}
	r.Forget(types.NamespacedName{Namespace: "ns", Name: "c"})
	if got := r.Fresher(version("1", "")); got != nil {
		t.Fatalf("forgotten, yet %v", got)
	}
	var none *Recent
	none.Wrote("1", version("2", ""))
	if got := none.Fresher(version("1", "")); got != nil {
		t.Fatalf("a nil Recent remembers nothing, yet %v", got)
	}
}
