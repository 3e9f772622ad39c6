package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BenchmarkConcurrentStreams holds N answered calls streaming 8 kHz L16 to a
// local WebSocket receiver in the same process and measures, for a window,
// how late each frame's write began against its 20 ms slot (sender side) and
// how late each frame arrived against the first frame's schedule (receiver
// side). The number to read is the largest N with max sender lateness
// under 5 ms.
//
//	go test ./internal/sim -run '^$' -bench ConcurrentStreams -benchtime 1x
//	SIMBENCH_STREAMS=1000,2000,4000 SIMBENCH_WINDOW=10s go test ...
func BenchmarkConcurrentStreams(b *testing.B) {
	counts := []int{250, 500, 1000, 2000, 4000}
	if v := os.Getenv("SIMBENCH_STREAMS"); v != "" {
		counts = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				b.Fatalf("SIMBENCH_STREAMS: %v", err)
			}
			counts = append(counts, n)
		}
	}
	window := 5 * time.Second
	if v := os.Getenv("SIMBENCH_WINDOW"); v != "" {
		var err error
		if window, err = time.ParseDuration(v); err != nil {
			b.Fatalf("SIMBENCH_WINDOW: %v", err)
		}
	}
	for _, n := range counts {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			for range b.N {
				benchStreams(b, n, window)
			}
		})
	}
}

// benchRecv accepts the sim's stream sockets and drains them, recording
// arrival lateness per frame against the socket's first frame.
type benchRecv struct {
	srv   *httptest.Server
	conns atomic.Int64
	late  *latencyHist
	on    atomic.Bool // measuring
}

func newBenchRecv() *benchRecv {
	r := &benchRecv{late: newLatencyHist()}
	mux := http.NewServeMux()
	// Control endpoints so the receiver can live in another process.
	mux.HandleFunc("/conns", func(w http.ResponseWriter, _ *http.Request) { _, _ = fmt.Fprint(w, r.conns.Load()) })
	mux.HandleFunc("/on", func(w http.ResponseWriter, _ *http.Request) { r.late.reset(); r.on.Store(true) })
	mux.HandleFunc("/off", func(w http.ResponseWriter, _ *http.Request) {
		r.on.Store(false)
		_ = json.NewEncoder(w).Encode(r.late.report())
	})
	mux.HandleFunc("/bot", func(w http.ResponseWriter, req *http.Request) {
		c, err := websocket.Accept(w, req, nil)
		if err != nil {
			return
		}
		defer func() { _ = c.CloseNow() }()
		r.conns.Add(1)
		buf := make([]byte, 4096)
		var first time.Time
		for k := int64(0); ; k++ {
			_, rd, err := c.Reader(context.Background())
			if err != nil {
				return
			}
			for {
				if _, err := rd.Read(buf); err != nil {
					break
				}
			}
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			if r.on.Load() {
				r.late.observe(now.Sub(first.Add(time.Duration(k) * FrameInterval)))
			}
		}
	})
	r.srv = httptest.NewServer(mux)
	return r
}

// TestMain lets the benchmark re-run this binary as an out-of-process
// receiver (SIMBENCH_EXTERNAL=1), so the receiver's CPU is not the sim's.
func TestMain(m *testing.M) {
	if os.Getenv("SIMBENCH_RECEIVER_MODE") == "1" {
		r := newBenchRecv()
		fmt.Println(r.srv.URL)
		select {} // killed by the benchmark
	}
	os.Exit(m.Run())
}

// receiver is where the streams go: in process, or a child process.
type receiver struct {
	url   string
	conns func() int64
	on    func()
	off   func() LatenessReport
	close func()
}

func startReceiver(b *testing.B) receiver {
	if os.Getenv("SIMBENCH_EXTERNAL") != "1" {
		r := newBenchRecv()
		return receiver{
			url: r.srv.URL, conns: r.conns.Load,
			on:    func() { r.late.reset(); r.on.Store(true) },
			off:   func() LatenessReport { r.on.Store(false); return r.late.report() },
			close: r.srv.Close,
		}
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "SIMBENCH_RECEIVER_MODE=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("receiver process: %v", err)
	}
	u := strings.TrimSpace(line)
	get := func(path string) []byte {
		resp, err := http.Get(u + path)
		if err != nil {
			b.Fatalf("receiver %s: %v", path, err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return body
	}
	return receiver{
		url:   u,
		conns: func() int64 { n, _ := strconv.ParseInt(string(get("/conns")), 10, 64); return n },
		on:    func() { get("/on") },
		off: func() LatenessReport {
			var r LatenessReport
			_ = json.Unmarshal(get("/off"), &r)
			return r
		},
		close: func() { _ = cmd.Process.Kill(); _ = cmd.Wait() },
	}
}

func benchStreams(b *testing.B, n int, window time.Duration) {
	recv := startReceiver(b)
	defer recv.close()
	s, err := New(Config{
		Apps:     []App{{AppID: testApp, Secret: testSecret}},
		Scenario: Scenario{Default: Behaviour{Outcome: OutcomeAnswer}}, // answer at once, never hang up
		Sender:   os.Getenv("SIMBENCH_SENDER"),
	})
	if err != nil {
		b.Fatal(err)
	}
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = s.Close(ctx)
	}()
	wsURL := "ws" + strings.TrimPrefix(recv.url, "http") + "/bot"
	body, _ := json.Marshal(callBody(919876543210, streamPCMO(wsURL, nil)))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	// Place the calls from a few workers; connecting is not what is measured.
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				resp, err := client.Post(base+"/v2/ind_pcmo_make_call", "application/json", strings.NewReader(string(body)))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(2 * time.Minute)
	for recv.conns() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d streams connected", recv.conns(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Let connection setup settle, then measure a clean window.
	time.Sleep(time.Second)
	s.late.reset()
	recv.on()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := processCPU()
	// The canary is one more 20 ms timer doing nothing else: its lateness is
	// the floor this machine (and the Go scheduler under this load) gives any
	// timer, so a late tail the canary shares is not the sim's own doing.
	canary := newLatencyHist()
	cctx, ccancel := context.WithCancel(context.Background())
	go func() {
		t := time.NewTimer(time.Hour)
		next := time.Now()
		for {
			next = next.Add(FrameInterval)
			t.Reset(time.Until(next))
			select {
			case <-t.C:
				canary.observe(time.Since(next))
			case <-cctx.Done():
				return
			}
		}
	}()
	b.ResetTimer()
	time.Sleep(window)
	b.StopTimer()
	ccancel()
	cpu := processCPU() - cpu0
	runtime.ReadMemStats(&ms1)
	snd, rcv := s.late.report(), recv.off()
	expected := int64(n) * int64(window/FrameInterval)
	b.ReportMetric(float64(n), "streams")
	b.ReportMetric(float64(snd.P99.Microseconds()), "p99-late-µs")
	b.ReportMetric(float64(snd.Max.Microseconds()), "max-late-µs")
	b.ReportMetric(float64(snd.Over5ms), "frames>5ms")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(max(snd.Frames, 1)), "allocs/frame")
	b.ReportMetric(float64(cpu.Microseconds())/float64(max(snd.Frames, 1)), "cpu-µs/frame")
	where := "in process"
	if os.Getenv("SIMBENCH_EXTERNAL") == "1" {
		where = "separate process"
	}
	sender := os.Getenv("SIMBENCH_SENDER")
	if sender == "" {
		sender = SenderPerStream
	}
	b.Logf("sender %s, receiver %s; GOMAXPROCS=%d NumCPU=%d streams=%d window=%v frames=%d (expected %d, %.1f%%)",
		sender, where, runtime.GOMAXPROCS(0), runtime.NumCPU(), n, window, snd.Frames, expected, 100*float64(snd.Frames)/float64(expected))
	b.Logf("sender lateness:   p50=%v p99=%v p99.9=%v max=%v frames>5ms=%d", snd.P50, snd.P99, snd.P999, snd.Max, snd.Over5ms)
	b.Logf("receiver arrival:  p50=%v p99=%v p99.9=%v max=%v frames>5ms=%d (vs first frame's schedule, includes the receiver's own scheduling)", rcv.P50, rcv.P99, rcv.P999, rcv.Max, rcv.Over5ms)
	cn := canary.report()
	b.Logf("canary timer:      p50=%v p99=%v max=%v (noise floor: one idle 20 ms timer in the same process)", cn.P50, cn.P99, cn.Max)
	b.Logf("process CPU: %v over %v = %.0f%% of one core, %.1f µs per frame (the receiver's share too when in process)",
		cpu.Round(time.Millisecond), window, 100*cpu.Seconds()/window.Seconds(), float64(cpu.Microseconds())/float64(max(snd.Frames, 1)))
	b.Logf("allocations per frame sent (whole process, incl. receiver): %.2f", float64(ms1.Mallocs-ms0.Mallocs)/float64(max(snd.Frames, 1)))
}

// processCPU is user+system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
