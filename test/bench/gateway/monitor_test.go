package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/callfleet/callfleet/internal/gateway"
	"github.com/callfleet/callfleet/internal/monitortoken"
	"github.com/callfleet/callfleet/test/harness"
)

// Trial modes with console listeners on every stream (see listen).
const (
	modeListening = "gateway+listener" // a listener that reads everything
	modeStalled   = "gateway+stalled"  // a listener that never reads
)

var benchMonitorKey = []byte("bench-monitor-key-bench-monitor-key-32")

// BenchmarkGatewayMonitor measures the relay with no listener, with a
// listener reading every stream, and with a stalled listener on every
// stream, in the same run and at the same load: the stalled listeners must
// be cut off (all of them) without the relay's latency or frame count
// moving.
//
//	go test ./test/bench/gateway -run '^$' -bench GatewayMonitor -benchtime 1x
func BenchmarkGatewayMonitor(b *testing.B) {
	counts := parseCounts(b, *flagMonitorStreams)
	maxN := 0
	for _, n := range counts {
		maxN = max(maxN, n)
	}
	// Long enough for a stalled listener's socket buffers and queue to fill
	// inside the measured window; the same for all three modes.
	d := max(*flagDuration, 6*time.Second)
	w := newBench(b, 1, maxN)
	defer w.close()
	printConditions(1)
	fmt.Printf("  monitor trials: %s each (overrides the above); a reading listener that the busy bench process cannot keep reading is dropped too, and counted\n", d)
	fmt.Printf("%-8s %-18s %-22s %-22s %-12s %s\n", "streams", "listeners", "platform→bot p50/p99", "bot→platform p50/p99", "frames/dir", "dropped")
	for _, n := range counts {
		b.Run("streams="+strconv.Itoa(n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				for _, mode := range []string{"gateway", modeListening, modeStalled} {
					before := w.gw.ask("dropped", "DROPPED")
					tr := w.run(b, mode, n, d)
					dropped := w.gw.ask("dropped", "DROPPED") - before
					label := map[string]string{"gateway": "none", modeListening: "reading", modeStalled: "stalled"}[mode]
					fmt.Printf("%-8d %-18s %-22s %-22s %-12s %d\n", n, label,
						us(tr.p2b50)+"/"+us(tr.p2b99), us(tr.b2p50)+"/"+us(tr.b2p99),
						fmt.Sprintf("%d/%d", tr.p2bN, tr.expectedPerDir), dropped)
					b.ReportMetric(float64(tr.p2b99.Microseconds()), "p99-µs-in-"+label)
					b.ReportMetric(float64(tr.b2p99.Microseconds()), "p99-µs-out-"+label)
					switch {
					case mode == modeStalled && dropped != int64(n):
						b.Errorf("%d of %d stalled listeners dropped", dropped, n)
					case mode == "gateway" && dropped != 0:
						b.Errorf("%d listeners dropped with none attached", dropped)
					case tr.connectFailures > 0:
						b.Errorf("%d streams failed to connect", tr.connectFailures)
					}
					var open int64
					for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
						if open = w.gw.ask("listeners", "LISTENERS"); open == 0 {
							break
						}
					}
					if open != 0 {
						b.Errorf("%d monitor listeners still open after the trial", open)
					}
				}
			}
		})
	}
	fmt.Println("dropped = stalled listeners cut off by the gateway during the trial (one per stream expected).")
}

// listen opens a monitor socket on each of the n streams as mode says and
// returns a func closing them. A stalled listener has the smallest receive
// window the kernel allows and never reads, so the gateway's writes to it
// block within a second or so.
func (b *bench) listen(tb testing.TB, mode string, n int) func() {
	tb.Helper()
	if mode != modeListening && mode != modeStalled {
		return func() {}
	}
	d := &net.Dialer{}
	if mode == modeStalled {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024) })
		}
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	var conns []*websocket.Conn
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		tok, err := monitortoken.Sign(benchMonitorKey, monitortoken.Claims{Namespace: benchNS, Call: callName(i), User: "bench", Expires: time.Now().Add(time.Minute)})
		if err != nil {
			tb.Fatal(err)
		}
		u := "ws://" + b.gw.addr + gateway.MonitorPath + benchNS + "/" + callName(i) + "?" + monitortoken.ParamToken + "=" + tok
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc, CompressionMode: websocket.CompressionDisabled})
		cancel()
		if err != nil {
			tb.Errorf("monitor listener %d: %v", i, err)
			continue
		}
		c.SetReadLimit(1 << 20)
		conns = append(conns, c)
		if mode == modeListening {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if _, _, err := c.Read(context.Background()); err != nil {
						return
					}
				}
			}()
		}
	}
	return func() {
		for _, c := range conns {
			_ = c.CloseNow()
		}
		wg.Wait()
	}
}

// monitorMetric reads the gateway's monitor metrics in the child.
func monitorMetric(reg prometheus.Gatherer, what string) int64 {
	name := "callfleet_gateway_monitor_dropped_total"
	if what == "listeners" {
		name = "callfleet_gateway_monitor_listeners"
	}
	v, _ := harness.MetricSum(reg, name, nil)
	return int64(v)
}
