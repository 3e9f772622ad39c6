package gateway

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	flagDuration = flag.Duration("gwbench.duration", 2*time.Second, "measured time of each trial (after a 0.5 s warm-up)")
	flagStreams  = flag.String("gwbench.streams", "1,10,50,100", "stream counts of BenchmarkGateway")
	flagMax      = flag.Int("gwbench.max", 1600, "the most streams BenchmarkGatewayCapacity tries")
	flagBudget   = flag.Duration("gwbench.p99", 5*time.Millisecond, "p99 added latency a core must stay under (capacity)")
	// BenchmarkGatewayMonitor's stream counts.
	flagMonitorStreams = flag.String("gwbench.monitor-streams", "10,50", "stream counts of BenchmarkGatewayMonitor")
)

// BenchmarkGateway runs N concurrent 8 kHz streams straight to the bot and
// then through the gateway (a child process with GOMAXPROCS=1), and reports
// the latency the gateway adds per frame, both ways, and its CPU per stream.
func BenchmarkGateway(b *testing.B) {
	counts := parseCounts(b, *flagStreams)
	maxN := 0
	for _, n := range counts {
		maxN = max(maxN, n)
	}
	w := newBench(b, 1, maxN)
	defer w.close()
	printConditions(1)
	fmt.Printf("%-8s %-26s %-26s %-12s %-12s %s\n", "streams", "platform→bot p50/p99 (+)", "bot→platform p50/p99 (+)", "gw CPU/strm", "frames/dir", "lost")
	for _, n := range counts {
		b.Run("streams="+strconv.Itoa(n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				d := w.run(b, "direct", n, *flagDuration)
				g := w.run(b, "gateway", n, *flagDuration)
				add := added(d, g)
				fmt.Printf("%-8d %-26s %-26s %-12s %-12s %d\n", n,
					fmt.Sprintf("%s/%s (%s/%s)", us(g.p2b50), us(g.p2b99), us(add.p2b50), us(add.p2b99)),
					fmt.Sprintf("%s/%s (%s/%s)", us(g.b2p50), us(g.b2p99), us(add.b2p50), us(add.b2p99)),
					fmt.Sprintf("%.3f%%", 100*g.gatewayCPUPerStr),
					fmt.Sprintf("%d/%d", g.p2bN, g.expectedPerDir),
					g.lost+d.lost)
				b.ReportMetric(float64(add.p2b50.Microseconds()), "p50-added-µs-in")
				b.ReportMetric(float64(add.p2b99.Microseconds()), "p99-added-µs-in")
				b.ReportMetric(float64(add.b2p50.Microseconds()), "p50-added-µs-out")
				b.ReportMetric(float64(add.b2p99.Microseconds()), "p99-added-µs-out")
				b.ReportMetric(100*g.gatewayCPUPerStr, "%core/stream")
				if g.connectFailures > 0 || d.connectFailures > 0 {
					b.Errorf("%d streams failed to connect", g.connectFailures+d.connectFailures)
				}
			}
		})
	}
	fmt.Println("(+) = added by the gateway: the gateway path's quantile minus the direct path's at the same load.")
}

// BenchmarkGatewayCapacity finds the most streams one core (the gateway
// child at GOMAXPROCS=1) carries with p99 added latency under -gwbench.p99
// in both directions and no frame lost: doubling from 50, then bisecting.
func BenchmarkGatewayCapacity(b *testing.B) {
	w := newBench(b, 1, *flagMax)
	defer w.close()
	printConditions(1)
	ok := func(n int) bool {
		d := w.run(b, "direct", n, *flagDuration)
		g := w.run(b, "gateway", n, *flagDuration)
		add := added(d, g)
		worst := max(add.p2b99, add.b2p99)
		fed := g.p2bN >= g.expectedPerDir*95/100 && g.b2pN >= g.expectedPerDir*95/100 &&
			d.p2bN >= d.expectedPerDir*95/100
		pass := worst < *flagBudget && g.lost == 0 && g.connectFailures == 0 && fed
		verdict := "ok"
		switch {
		case !fed:
			// Not the gateway's limit, but no figure can be claimed past it.
			verdict = "over: the senders and bots could not keep pace (busy machine)"
		case !pass:
			verdict = "over"
		}
		fmt.Printf("  %5d streams: p99 added in %s out %s, gateway CPU %.0f%% of a core, bench CPU %.0f%%, frames %d+%d/%d, lost %d → %s\n",
			n, us(add.p2b99), us(add.b2p99), 100*g.gatewayCPU.Seconds()/g.d.Seconds(), 100*g.benchCPU.Seconds()/g.d.Seconds(),
			g.p2bN, g.b2pN, 2*g.expectedPerDir, g.lost, verdict)
		return pass
	}
	for i := 0; i < b.N; i++ {
		good, bad := 0, 0
		for n := 50; n <= *flagMax; n *= 2 {
			if !ok(n) {
				bad = n
				break
			}
			good = n
		}
		if bad == 0 {
			fmt.Printf("capacity: at least %d streams (the -gwbench.max limit)\n", good)
		} else {
			for step := 0; step < 3 && bad-good > max(10, good/10); step++ {
				mid := (good + bad) / 2
				if ok(mid) {
					good = mid
				} else {
					bad = mid
				}
			}
			fmt.Printf("capacity: %d streams on one core (p99 added < %s), %d not\n", good, *flagBudget, bad)
		}
		b.ReportMetric(float64(good), "streams/core")
	}
}

type delta struct{ p2b50, p2b99, b2p50, b2p99 time.Duration }

func added(direct, gw trial) delta {
	return delta{
		p2b50: gw.p2b50 - direct.p2b50, p2b99: gw.p2b99 - direct.p2b99,
		b2p50: gw.b2p50 - direct.b2p50, b2p99: gw.b2p99 - direct.b2p99,
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%dµs", d.Microseconds()) }

func parseCounts(tb testing.TB, s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			tb.Fatalf("-gwbench.streams %q: %v", s, err)
		}
		out = append(out, n)
	}
	return out
}

var printed bool

func printConditions(gatewayProcs int) {
	if printed {
		return
	}
	printed = true
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("conditions: %s %s/%s, %d CPUs (%s), load %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel(), strings.TrimSpace(string(load)))
	fmt.Printf("  gateway: child process, GOMAXPROCS=%d, fake Kubernetes client, buffer %d frames; senders and bots: this process, GOMAXPROCS=%d\n", gatewayProcs, 50, runtime.GOMAXPROCS(0))
	fmt.Printf("  streams: 8 kHz L16, %d-byte frames every %s each way, paced by %d shared tickers; each trial %s after 0.5 s warm-up; localhost TCP\n", frameBytes, frameInterval, pacerShards, *flagDuration)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
