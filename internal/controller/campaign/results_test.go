package campaign

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// countingClient counts the writes that reach the (fake) apiserver.
type countingClient struct {
	client.Client
	writes int
}

func (c *countingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.writes++
	return c.Client.Create(ctx, obj, opts...)
}

func (c *countingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.writes++
	return c.Client.Update(ctx, obj, opts...)
}

// TestResultsRecord100kFitsShards writes 100,000 contacts to a results
// record in batches of resultsBatch, each with a disposition, a short
// summary and a recording reference, and checks: every shard stays under
// shardLimit (under etcd's ~1.5 MiB), the record read back from the
// apiserver has every contact exactly as written, and the writes are one
// per batch (plus one per extra shard). It logs the size.
func TestResultsRecord100kFitsShards(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	_ = voicev1alpha1.AddToScheme(scheme)
	fc := fake.NewClientBuilder().WithScheme(scheme).Build()
	cc := &countingClient{Client: fc}
	r := &Reconciler{Client: cc, APIReader: fc}
	c := &voicev1alpha1.Campaign{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "big", UID: "u1"}}
	ctx := context.Background()
	rec, err := r.loadRecord(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100000
	at := time.Date(2026, 6, 10, 9, 0, 0, 0, time.UTC)
	var batch []*resultRow
	for i := range n {
		batch = append(batch, &resultRow{
			key: fmt.Sprintf("9180%08d", i), number: fmt.Sprintf("9180%08d", i), attempts: int32(1 + i%3),
			outcome: voicev1alpha1.OutcomeAnswered, disposition: "Interested", summary: "wants a call back, next week",
			lastAttempt: at.Add(time.Duration(i) * time.Second), recording: fmt.Sprintf("rec-%08d.mp3", i),
		})
		if len(batch) == resultsBatch || i == n-1 {
			if got, err := r.appendResults(ctx, c, rec, batch); err != nil || got != len(batch) {
				t.Fatalf("append: %d of %d, %v", got, len(batch), err)
			}
			batch = nil
		}
	}
	var list corev1.ConfigMapList
	if err := fc.List(ctx, &list); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, cm := range list.Items {
		size := len(cm.Data[ResultsKey])
		total += size
		if size > shardLimit {
			t.Errorf("shard %s holds %d bytes, limit %d", cm.Name, size, shardLimit)
		}
	}
	batches := (n + resultsBatch - 1) / resultsBatch
	if cc.writes != batches+len(list.Items)-1 && cc.writes != batches+len(list.Items) {
		t.Errorf("%d writes for %d batches over %d shards", cc.writes, batches, len(list.Items))
	}
	t.Logf("100,000 contacts: %d shards, %d bytes of CSV in all (%.0f bytes a contact), largest shard limit %d; %d writes (%.4f per contact)",
		len(list.Items), total, float64(total)/n, shardLimit, cc.writes, float64(cc.writes)/n)

	// A new process reads it back.
	r2 := &Reconciler{Client: fc, APIReader: fc}
	back, err := r2.loadRecord(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.rows) != n {
		t.Fatalf("read back %d contacts, want %d", len(back.rows), n)
	}
	if row := back.rows["918000012345"]; row == nil || row.disposition != "Interested" || row.recording != "rec-00012345.mp3" || !row.lastAttempt.Equal(at.Add(12345*time.Second)) {
		t.Fatalf("row read back: %+v", row)
	}
	// The shards concatenated in name order are one CSV with one header.
	var all strings.Builder
	for _, cm := range list.Items {
		all.WriteString(cm.Data[ResultsKey])
	}
	if got := strings.Count(all.String(), "key,number,attempts"); got != 1 {
		t.Fatalf("%d headers in the concatenated record", got)
	}
}
