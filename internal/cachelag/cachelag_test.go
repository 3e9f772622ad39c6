package cachelag

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestTracker(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	tr := &Tracker{Now: func() time.Time { return now }}
	if tr.Behind("a", "5") {
		t.Fatal("nothing written, yet behind")
	}
	tr.Wrote("a", "5", "6")
	tr.Wrote("a", "6", "7")
	tr.Wrote("a", "7", "7") // a write that changed nothing
	for _, tc := range []struct {
		uid  types.UID
		rv   string
		want bool
	}{
		{"a", "5", true},  // two writes ago
		{"a", "6", true},  // the last write's base
		{"a", "7", false}, // the last write itself, or anything newer, even after a no-op write
		{"b", "5", false}, // another object
	} {
		if got := tr.Behind(tc.uid, tc.rv); got != tc.want {
			t.Errorf("Behind(%s, %s) = %v, want %v", tc.uid, tc.rv, got, tc.want)
		}
	}

	now = now.Add(TTL)
	if tr.Behind("a", "6") || tr.Len() != 0 {
		t.Fatalf("a write older than TTL still holds the object back (%d objects kept)", tr.Len())
	}

	for i := range 3 * perObject {
		tr.Wrote("c", fmt.Sprint(i), fmt.Sprint(i+1))
	}
	if tr.Behind("c", "0") || !tr.Behind("c", fmt.Sprint(3*perObject-1)) {
		t.Fatal("the versions kept per object are not the latest ones")
	}
	tr.Forget("c")
	tr.Wrote("", "1", "2")
	tr.Wrote("d", "", "1")
	if tr.Len() != 0 {
		t.Fatalf("%d objects kept after Forget and empty writes", tr.Len())
	}
}
