package main

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/callfleet/callfleet/internal/testenv"
	"github.com/callfleet/callfleet/test/harness"
)

// TestUnrelatedConfigMapsDoNotMoveTheHeap is issue #20 item 2: another
// tenant stores 200 MB of ConfigMaps the manager has no use for. The manager
// as main builds it (same cache options, every controller) must see them in
// its cache (it watches ConfigMaps for Campaigns) without holding their
// data, and a ConfigMap a Campaign references must still read whole, and
// fresh after an update.
func TestUnrelatedConfigMapsDoNotMoveTheHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200 MB to etcd")
	}
	ctrl.SetLogger(logr.Discard())
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := options{
		metricsAddr: "0", probeAddr: "0", restURL: "http://127.0.0.1:1", actionURL: "http://127.0.0.1:1",
		piopiyQPS: 1, piopiyBurst: 1, callWorkers: 1, gatewayImage: "gateway:test",
	}
	mgr, err := newManager(env.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := setupControllers(ctx, mgr, o, []byte("0123456789abcdef0123456789abcdef"), types.NamespacedName{}, nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Error(err)
		}
	}()
	defer func() { cancel(); <-done }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
	for _, ns := range []string{"tenant", "noise"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	ours := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "contacts"}, Data: map[string]string{"contacts.csv": "number\n919876543210\n"}}
	if err := env.Client.Create(ctx, ours); err != nil {
		t.Fatal(err)
	}
	readOurs := func(want string) {
		t.Helper()
		harness.WaitFor(t, "the referenced ConfigMap read whole", 30*time.Second, func() (bool, string) {
			var cm corev1.ConfigMap
			if err := mgr.GetClient().Get(ctx, client.ObjectKeyFromObject(ours), &cm); err != nil {
				return false, err.Error()
			}
			return cm.Data["contacts.csv"] == want, cm.Data["contacts.csv"]
		})
	}
	readOurs("number\n919876543210\n")

	before := heap()
	const n, size = 200, 1 << 20
	blob := strings.Repeat("x", size-1024)
	for i := range n {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "noise", Name: "blob-" + itoa(i)}, Data: map[string]string{"blob": blob}}
		if err := env.Client.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}
	harness.WaitFor(t, "the manager's cache shows every unrelated ConfigMap", 2*time.Minute, func() (bool, string) {
		var l corev1.ConfigMapList
		if err := mgr.GetCache().List(ctx, &l, client.InNamespace("noise")); err != nil {
			return false, err.Error()
		}
		return len(l.Items) == n, itoa(len(l.Items))
	})
	after := heap()
	grew := int64(after) - int64(before)
	t.Logf("heap in use: %d MiB before, %d MiB after %d MiB of unrelated ConfigMaps (%+d MiB)", before>>20, after>>20, n*size>>20, grew>>20)
	if grew > 20<<20 {
		t.Fatalf("the heap grew %d MiB for %d MiB of ConfigMaps the manager does not use", grew>>20, n*size>>20)
	}

	// Nothing lost: ours still reads whole, and an update is seen.
	readOurs("number\n919876543210\n")
	ours.Data["contacts.csv"] = "number\n919876543211\n"
	if err := env.Client.Update(ctx, ours); err != nil {
		t.Fatal(err)
	}
	readOurs("number\n919876543211\n")
}

// heap is the live heap after a full collection.
func heap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func itoa(i int) string { return strconv.Itoa(i) }
