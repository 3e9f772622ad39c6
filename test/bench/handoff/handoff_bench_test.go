// Package handoff benchmarks the AI→human handoff end to end: from the
// request (spec.handoff.requested written, or the bot's handoff frame sent
// to the gateway) to the bridge PCMO arriving on the sim's stream socket,
// through the handoff controller's reservation, the Call status write, the
// gateway's watch and the socket. Everything runs in this process against a
// real kube-apiserver (envtest) and piopiy-sim; see
// test/harness/handofftest.
//
//	go test ./test/bench/handoff -run '^$' -bench . -benchtime 1x
package handoff

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/test/harness"
	"github.com/callfleet/callfleet/test/harness/handofftest"
)

var env *handofftest.Env

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		// No benchmark asked for: `go test ./...` should not pay for a
		// control plane it will not use.
		os.Exit(m.Run())
	}
	var err error
	if env, err = handofftest.Start(handofftest.Options{Namespace: "bench"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if env != nil {
			env.Stop()
		}
		os.Exit(1)
	}
	code := m.Run()
	env.Stop()
	os.Exit(code)
}

// BenchmarkRequestToBridge: how long from asking for a human to the bridge
// reaching Piopiy.
//
//   - burst: every Call asks at once (spec.handoff.requested) on a pool
//     with an agent for each: reservations race on one AgentPool.
//   - bot: one Call at a time asks through its bot (the gateway records the
//     request, the controller reserves, the gateway sends the bridge).
func BenchmarkRequestToBridge(b *testing.B) {
	for _, tc := range []struct {
		name  string
		calls int
		bot   bool
	}{{"burst50", 50, false}, {"bot_sequential20", 20, true}} {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				run(b, fmt.Sprintf("%s-%d", strings.ReplaceAll(tc.name, "_", ""), i), tc.calls, tc.bot)
			}
		})
	}
}

func run(b *testing.B, prefix string, n int, viaBot bool) {
	ctx := context.Background()
	pool := env.NewPool(prefix, n, func(p *voicev1alpha1.AgentPool) { p.Spec.RingTimeoutSeconds = 20 })
	agents := map[string]sim.AgentBehaviour{}
	for _, a := range pool.Spec.Agents {
		agents[a.Number] = sim.AgentBehaviour{AnswerDelay: 100 * time.Millisecond, TalkFor: time.Second}
	}
	env.SetScenario(nil, agents)
	if err := env.K8s.Create(ctx, pool); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.K8s.Delete(ctx, pool) }()

	names, err := env.LiveCalls(ctx, prefix, pool.Name, n, 20, 2*time.Minute, func(c *voicev1alpha1.Call) {
		c.Spec.Stream.ListenMode = voicev1alpha1.ListenCaller
	})
	defer func() { _ = env.DeleteCalls(context.Background(), prefix) }()
	if err != nil {
		b.Fatal(err)
	}
	to := map[string]string{}
	for _, name := range names {
		c, err := env.Call(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		to[name] = c.Spec.To
	}

	writesBefore := apiserverWrites(b)
	b.ResetTimer()
	asked := map[string]time.Time{}
	if viaBot {
		for _, name := range names {
			bc, err := env.Bot.Conn(name, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			asked[name] = time.Now()
			if err := bc.Send(map[string]any{"type": "handoff", "reason": "benchmark"}); err != nil {
				b.Fatal(err)
			}
			if _, err := bridgeAt(to[name], time.Minute); err != nil {
				b.Fatalf("%s: %v", name, err)
			}
		}
	} else if asked, err = env.RequestAll(ctx, names); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, n)
	bridged := map[string]time.Time{}
	for _, name := range names {
		at, err := bridgeAt(to[name], 2*time.Minute)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		bridged[name] = at
		lat = append(lat, at.Sub(asked[name]))
	}
	b.StopTimer()
	// Let the agents hang up so the writes cover whole handoffs.
	if err := handofftest.Eventually(2*time.Minute, func() error {
		p, err := env.Pool(ctx, pool.Name)
		if err != nil {
			return err
		}
		if p.Status.Busy > 0 {
			return fmt.Errorf("%d agents still busy", p.Status.Busy)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	writes := harness.WritesBetween(writesBefore, apiserverWrites(b))
	assigned, err := assignedTimes(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var toRinging, toBridge []time.Duration
	for _, name := range names {
		if r, ok := assigned[name]; ok {
			toRinging = append(toRinging, r.Sub(asked[name]))
			toBridge = append(toBridge, bridged[name].Sub(r))
		}
	}

	pct := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return d[int(p*float64(len(d)-1))].Round(time.Millisecond)
	}
	q := func(p float64) time.Duration { return pct(lat, p) }
	b.ReportMetric(float64(q(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(writes["calls/status"])/float64(n), "call-status-writes/handoff")
	b.ReportMetric(float64(writes["agentpools/status"])/float64(n), "pool-status-writes/handoff")
	how := fmt.Sprintf("%d Calls ask at once (spec.handoff.requested)", n)
	if viaBot {
		how = fmt.Sprintf("%d Calls ask one after another through their bot", n)
	}
	fmt.Printf("request → bridge PCMO at the sim: %s, pool of %d single-call agents (RoundRobin), 1 manager, in-process gateway, envtest apiserver, sim zero latency\n", how, n)
	fmt.Printf("  GOMAXPROCS=%d NumCPU=%d load average %s\n", runtime.GOMAXPROCS(0), runtime.NumCPU(), loadAvg())
	fmt.Printf("  latency: p50 %s  p99 %s  max %s\n", q(0.5).Round(time.Millisecond), q(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	fmt.Printf("  of which request → Ringing written (AgentAssigned event): p50 %s p99 %s; Ringing → bridge at the sim (gateway): p50 %s p99 %s (%d of %d events found)\n",
		pct(toRinging, .5), pct(toRinging, .99), pct(toBridge, .5), pct(toBridge, .99), len(toRinging), n)
	fmt.Printf("  apiserver writes per handoff (request to agent hangup, incl. webhooks and gateway): calls/status %.2f, agentpools/status %.2f, calls %.2f\n",
		float64(writes["calls/status"])/float64(n), float64(writes["agentpools/status"])/float64(n), float64(writes["calls"])/float64(n))
}

// bridgeAt waits for the sim to receive a bridge PCMO on the call's socket.
func bridgeAt(to string, timeout time.Duration) (time.Time, error) {
	var at time.Time
	err := handofftest.Eventually(timeout, func() error {
		rec, ok := env.SimCall(to)
		if !ok {
			return fmt.Errorf("no sim call to %s", to)
		}
		for _, s := range rec.Streams {
			for _, p := range s.PCMOs {
				if slices.Contains(p.Actions, "bridge") {
					at = p.At
					return nil
				}
			}
		}
		return fmt.Errorf("no bridge PCMO yet on the call to %s", to)
	})
	return at, err
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func apiserverWrites(b *testing.B) map[string]int {
	w, err := harness.APIServerWrites(env.H.Env.Config)
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// assignedTimes reads when the handoff controller bound each Call to its
// agent from its AgentAssigned Events (microsecond event times).
func assignedTimes(ctx context.Context) (map[string]time.Time, error) {
	var list eventsv1.EventList
	if err := env.K8s.List(ctx, &list, client.InNamespace(env.Namespace)); err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for _, e := range list.Items {
		if e.Reason == "AgentAssigned" && e.Regarding.Kind == "Call" {
			if t, ok := out[e.Regarding.Name]; !ok || e.EventTime.Time.Before(t) {
				out[e.Regarding.Name] = e.EventTime.Time
			}
		}
	}
	return out, nil
}
