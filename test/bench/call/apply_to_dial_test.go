// Package call benchmarks the Call controller against a real kube-apiserver
// and piopiy-sim: apply-to-dial latency at a given creation rate, and the
// apiserver writes one Call's life costs.
//
//	go test ./test/bench/call -run '^$' -bench ApplyToDial -benchtime 1x
package call

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"

	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/test/harness"
)

var h *harness.Harness

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		// No benchmark asked for: `go test ./...` should not pay for a
		// control plane it will not use.
		os.Exit(m.Run())
	}
	var err error
	if h, err = harness.Start(harness.Options{Workers: 16, DialTimeout: 15 * time.Second}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		h.Stop()
		os.Exit(1)
	}
	code := m.Run()
	h.Stop()
	os.Exit(code)
}

func BenchmarkApplyToDial(b *testing.B) {
	for _, tc := range []struct {
		rate  int // Calls created per second
		calls int
	}{{2, 20}, {20, 200}, {100, 500}} {
		b.Run(fmt.Sprintf("%dcalls_per_s", tc.rate), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				run(b, tc.rate, tc.calls, fmt.Sprintf("r%d-%d", tc.rate, i))
			}
		})
	}
}

var numberSeq int

func run(b *testing.B, rate, n int, nsName string) {
	ctx := context.Background()
	k8s := h.Env.Client
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName}}); err != nil {
		b.Fatal(err)
	}
	numbers := make([]string, n)
	sc := sim.Scenario{Default: sim.DefaultBehaviour(), Numbers: map[string]sim.Behaviour{}}
	for i := range numbers {
		numberSeq++
		numbers[i] = fmt.Sprintf("9171%08d", numberSeq)
		sc.Numbers[numbers[i]] = sim.Behaviour{Outcome: sim.OutcomeAnswer, AnswerDelay: 50 * time.Millisecond, HangupAfter: 500 * time.Millisecond}
	}
	h.Sim.SetScenario(sc)

	writesBefore := apiserverWrites(b)
	created := make([]time.Time, n)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	start := time.Now()
	for i := range n {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{Namespace: nsName, Name: fmt.Sprintf("c%04d", i)}}
			c.Spec.To = numbers[i]
			c.Spec.Stream.URL = h.StreamSink
			created[i] = time.Now()
			if err := k8s.Create(ctx, c); err != nil {
				b.Error(err)
			}
		}()
	}
	tick.Stop()
	wg.Wait()
	offered := float64(n) / time.Since(start).Seconds()

	// Wait until every Call has ended, so the writes cover whole lives.
	deadline := time.Now().Add(5 * time.Minute)
	phases := map[voicev1alpha1.CallPhase]int{}
	for {
		var calls voicev1alpha1.CallList
		if err := k8s.List(ctx, &calls, client.InNamespace(nsName)); err != nil {
			b.Fatal(err)
		}
		clear(phases)
		for _, c := range calls.Items {
			phases[c.Status.Phase]++
		}
		if phases[voicev1alpha1.CallCompleted]+phases[voicev1alpha1.CallFailed] == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("Calls not all ended after 5 minutes: %v", phases)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if phases[voicev1alpha1.CallFailed] > 0 {
		b.Errorf("%d of %d Calls failed (the sim answers every one): %v", phases[voicev1alpha1.CallFailed], n, phases)
	}
	writes := harness.WritesBetween(writesBefore, apiserverWrites(b))

	dialed := map[string]time.Time{}
	for _, r := range h.Sim.Calls() {
		dialed[r.To] = r.DialedAt
	}
	lat := make([]time.Duration, 0, n)
	for i, to := range numbers {
		d, ok := dialed[to]
		if !ok {
			b.Fatalf("%s never dialed", to)
		}
		lat = append(lat, d.Sub(created[i]))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }

	perCall := func(keys ...string) float64 {
		t := 0
		for _, k := range keys {
			t += writes[k]
		}
		return float64(t) / float64(n)
	}
	callWrites := perCall("calls") - 1 // the benchmark's own create
	statusWrites := perCall("calls/status")
	eventWrites := perCall("events")
	b.ReportMetric(float64(p(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(callWrites+statusWrites, "call-writes/call")
	b.ReportMetric(eventWrites, "event-writes/call")
	fmt.Printf("apply-to-dial: %d Calls offered at %.0f/s (target %d/s), GOMAXPROCS=%d, 16 workers, sim zero-latency, envtest apiserver\n", n, offered, rate, runtime.GOMAXPROCS(0))
	fmt.Printf("  latency create→sim dial: p50 %s  p99 %s  max %s\n", p(0.5).Round(time.Millisecond), p(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	fmt.Printf("  apiserver writes per answered+streamed Call life (excl. the user's create): calls %.2f, calls/status %.2f, events %.2f\n", callWrites, statusWrites, eventWrites)
}

func apiserverWrites(b *testing.B) map[string]int {
	w, err := harness.APIServerWrites(h.Env.Config)
	if err != nil {
		b.Fatal(err)
	}
	return w
}
