package gateway

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/scheme"
)

// gatedReader holds every Get until the gate opens, counting them.
type gatedReader struct {
	client.Reader
	gets atomic.Int32
	gate chan struct{}
}

func (r *gatedReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	r.gets.Add(1)
	select {
	case <-r.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}

// TestBotHandoffBurstIsSingleFlight is issue #20 item 5: a bot that sends
// thousands of handoff messages while the first is being recorded gets one
// apiserver read and one goroutine, not one per message; the rest are
// counted as ignored, and the request is recorded once.
func TestBotHandoffBurstIsSingleFlight(t *testing.T) {
	nn := types.NamespacedName{Namespace: "tenant", Name: "burst"}
	call := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{Namespace: nn.Namespace, Name: nn.Name}}
	call.Spec.To = "919800000001"
	call.Spec.Handoff = &voicev1alpha1.CallHandoff{AgentPoolRef: voicev1alpha1.LocalRef{Name: "agents"}}
	call.Status.Attempts = []voicev1alpha1.CallAttempt{{Number: 1, ID: "u.1", State: voicev1alpha1.AttemptDialed}}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(call).WithStatusSubresource(call).Build()
	reader := &gatedReader{Reader: c, gate: make(chan struct{})}
	g, err := New(c, reader, Options{
		Namespace: nn.Namespace, TokenKey: make([]byte, 32), PodName: "gw-0",
		// The gate is held while the test counts: no deadline may fire first.
		ControlTimeout: 10 * time.Minute,
		Registerer:     prometheus.NewRegistry(), Logger: logr.Discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(g, sessionKey{NamespacedName: nn, Attempt: 1}, call, nil, nil, logr.Discard())
	ctx := context.Background()

	before := runtime.NumGoroutine()
	const burst = 5000
	for range burst {
		s.onBotMessage(ctx, []byte(`{"type":"handoff","reason":"wants a human"}`))
	}
	waitUntil(t, "the first request reaches the apiserver", func() bool { return reader.gets.Load() == 1 })
	// One goroutine holds the request; the slack is for the suite's own
	// background goroutines (its gateway and clients), never near burst.
	if extra := runtime.NumGoroutine() - before; extra > 50 {
		t.Fatalf("%d more goroutines after %d handoff messages, want about 1", extra, burst)
	}
	ignored := testutil.ToFloat64(g.metrics.botEvents.WithLabelValues("handoff_ignored"))
	if ignored != burst-1 || reader.gets.Load() != 1 {
		t.Fatalf("%v of %d handoff messages ignored and %d apiserver reads, want %d and 1", ignored, burst, reader.gets.Load(), burst-1)
	}

	close(reader.gate)
	waitUntil(t, "the request recorded", func() bool { return !s.handoffBusy.Load() })
	got := &voicev1alpha1.Call{}
	if err := c.Get(ctx, nn, got); err != nil {
		t.Fatal(err)
	}
	if h := got.Status.Handoff; h == nil || h.Phase != voicev1alpha1.HandoffRequested || h.Source != voicev1alpha1.HandoffSourceBot {
		t.Fatalf("status.handoff %+v, want one Requested by the Bot", h)
	}
	// Once it is done, the next message is heard again (and finds the
	// handoff under way).
	s.onBotMessage(ctx, []byte(`{"type":"handoff"}`))
	waitUntil(t, "the second request read", func() bool { return reader.gets.Load() == 2 && !s.handoffBusy.Load() })
}

// waitUntil polls cond with a deadline generous for a loaded machine.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
