package gateway

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/gateway"
	"github.com/callfleet/callfleet/internal/scheme"
)

// The gateway child: this test binary re-executed with childEnv set.
const (
	childEnv    = "CALLFLEET_GWBENCH_CHILD"
	childCalls  = "CALLFLEET_GWBENCH_CALLS"
	childBotURL = "CALLFLEET_GWBENCH_BOT"
	childKey    = "CALLFLEET_GWBENCH_KEY"
	benchNS     = "bench"
)

func callName(i int) string { return "bench-" + strconv.Itoa(i) }

// TestGatewayChild serves the gateway over a fake Kubernetes client holding
// the benchmark's Calls: the Call watch and status writes are not what is
// measured. It prints its address, then answers commands on stdin:
// "rusage" (CPU ns used so far), "active" (open streams). EOF ends it.
func TestGatewayChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("only run as the benchmark's gateway process")
	}
	n, _ := strconv.Atoi(os.Getenv(childCalls))
	key, err := hex.DecodeString(os.Getenv(childKey))
	if err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(scheme.New()).WithStatusSubresource(&voicev1alpha1.Call{})
	for i := 0; i < n; i++ {
		b = b.WithObjects(&voicev1alpha1.Call{
			ObjectMeta: metav1.ObjectMeta{Name: callName(i), Namespace: benchNS},
			Spec: voicev1alpha1.CallSpec{To: "919800000001", CallParameters: voicev1alpha1.CallParameters{
				From:              "918000000001",
				StreamEndpointRef: &voicev1alpha1.LocalRef{Name: "bench"},
				Stream:            voicev1alpha1.CallStream{VoiceQuality: 8000, ListenMode: voicev1alpha1.ListenCaller},
			}},
			Status: voicev1alpha1.CallStatus{Attempts: []voicev1alpha1.CallAttempt{{Number: 1, ID: "a", State: voicev1alpha1.AttemptDialed, IntentTime: metav1.Now()}}},
		})
	}
	// Status writes are accepted and dropped: the fake client spends
	// milliseconds of CPU on each, which an apiserver would spend elsewhere,
	// and they are not the audio path being measured.
	c := interceptor.NewClient(b.Build(), interceptor.Funcs{
		SubResourcePatch: func(context.Context, client.Client, string, client.Object, client.Patch, ...client.SubResourcePatchOption) error {
			return nil
		},
	})
	reg := prometheus.NewRegistry()
	g, err := gateway.New(c, c, gateway.Options{
		Namespace:  benchNS,
		Endpoint:   "bench",
		BotURL:     os.Getenv(childBotURL),
		TokenKey:   key,
		MonitorKey: benchMonitorKey,
		PodName:    "bench",
		Registerer: reg,
		Logger:     logr.Discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	g.SetReady(true)
	if p := os.Getenv("CALLFLEET_GWBENCH_CPUPROFILE"); p != "" {
		// For looking into the gateway's cost: go tool pprof <file>.
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	if p := os.Getenv("CALLFLEET_GWBENCH_MEMPROFILE"); p != "" {
		// Allocations over the whole run: go tool pprof -sample_index=alloc_space.
		defer func() {
			f, err := os.Create(p)
			if err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				_ = f.Close()
			}
		}()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g.Handler(), ConnContext: gateway.ConnContext, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("ADDR %s\n", ln.Addr())

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "rusage":
			fmt.Printf("RUSAGE %d\n", cpuNanos())
		case "active":
			fmt.Printf("ACTIVE %d\n", g.ActiveStreams())
		case "dropped", "listeners":
			fmt.Printf("%s %d\n", strings.ToUpper(in.Text()), monitorMetric(reg, in.Text()))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.Shutdown(ctx)
	_ = srv.Close()
}

// cpuNanos is user+system CPU of this process so far.
func cpuNanos() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
