package gateway

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/callfleet/callfleet/internal/streamtoken"
)

const (
	frameBytes    = 320 // 20 ms of 8 kHz L16
	frameInterval = 20 * time.Millisecond
	pacerShards   = 4
)

// stamp writes the send time and sequence number into a frame's first 16
// bytes; both ends of a stream live in this process, so the clock is shared.
func stamp(f []byte, seq uint64) {
	binary.LittleEndian.PutUint64(f[0:], uint64(time.Now().UnixNano()))
	binary.LittleEndian.PutUint64(f[8:], seq)
}

func unstamp(f []byte) (time.Duration, uint64, bool) {
	if len(f) < 16 {
		return 0, 0, false
	}
	sent := int64(binary.LittleEndian.Uint64(f[0:]))
	return time.Duration(time.Now().UnixNano() - sent), binary.LittleEndian.Uint64(f[8:]), true
}

// stats of one direction of a trial.
type dirStats struct {
	h    hist
	lost atomic.Int64 // sequence gaps while recording
}

// peer is one end of a stream in this process: a bench "platform" client
// or a bot connection. It sends stamped frames when its pacer says so and
// measures the stamped frames it receives.
type peer struct {
	c       *websocket.Conn
	seq     uint64
	lastIn  uint64
	dead    atomic.Bool
	scratch []byte
}

// pacer writes one frame to each of its peers every 20 ms, sharded over a
// few goroutines whose ticks are spread across the interval, as a platform
// serving many calls would.
type pacer struct {
	mu     sync.Mutex
	shards [pacerShards][]*peer
	next   int
}

func (p *pacer) add(pe *peer) {
	p.mu.Lock()
	p.shards[p.next%pacerShards] = append(p.shards[p.next%pacerShards], pe)
	p.next++
	p.mu.Unlock()
}

func (p *pacer) run(ctx context.Context) {
	for i := 0; i < pacerShards; i++ {
		go func(i int) {
			time.Sleep(time.Duration(i) * frameInterval / pacerShards)
			t := time.NewTicker(frameInterval)
			defer t.Stop()
			var snap []*peer
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				p.mu.Lock()
				snap = append(snap[:0], p.shards[i]...)
				p.mu.Unlock()
				for _, pe := range snap {
					if pe.dead.Load() {
						continue
					}
					pe.seq++
					stamp(pe.scratch, pe.seq)
					if err := pe.c.Write(context.Background(), websocket.MessageBinary, pe.scratch); err != nil {
						pe.dead.Store(true)
					}
				}
			}
		}(i)
	}
}

// recvLoop measures what a peer receives until its socket ends. decode
// turns a message into the stamped bytes (binary as is; the gateway's
// streamAudio JSON needs its base64 opened).
func recvLoop(pe *peer, rec *atomic.Bool, st *dirStats, gatewayJSON bool) {
	buf := make([]byte, 0, 1024)
	raw := make([]byte, 24)
	for {
		typ, r, err := pe.c.Reader(context.Background())
		if err != nil {
			pe.dead.Store(true)
			return
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				pe.dead.Store(true)
				return
			}
		}
		var f []byte
		switch {
		case typ == websocket.MessageBinary && !gatewayJSON:
			f = buf
		case typ == websocket.MessageText && gatewayJSON:
			i := strings.Index(string(buf), `"audioData":"`)
			if i < 0 || len(buf) < i+13+24 {
				continue
			}
			n, err := base64.StdEncoding.Decode(raw, buf[i+13:i+13+24])
			if err != nil || n < 16 {
				continue
			}
			f = raw[:n]
		default:
			continue // the start frame and events
		}
		lat, seq, ok := unstamp(f)
		if !ok {
			continue
		}
		if rec.Load() {
			st.h.observe(lat)
			if pe.lastIn != 0 && seq > pe.lastIn+1 {
				st.lost.Add(int64(seq - pe.lastIn - 1))
			}
		}
		pe.lastIn = seq
	}
}

// bench is the benchmark's world: a bot server, stats, and optionally the
// gateway child.
type bench struct {
	bot       *http.Server
	botURL    string
	rec       atomic.Bool
	p2b, b2p  *dirStats
	botPacer  atomic.Pointer[pacer]
	botConns  atomic.Int64
	botActive atomic.Int64
	key       []byte
	gw        *child
}

func newBench(tb testing.TB, gatewayProcs int, calls int) *bench {
	tb.Helper()
	b := &bench{p2b: &dirStats{}, b2p: &dirStats{}, key: []byte("bench-key-bench-key-bench-key-32")}
	b.botPacer.Store(&pacer{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", b.serveBot)
	ln, err := listenLocal()
	if err != nil {
		tb.Fatal(err)
	}
	b.bot = &http.Server{Handler: mux}
	go func() { _ = b.bot.Serve(ln) }()
	b.botURL = "ws://" + ln.Addr().String() + "/"
	if gatewayProcs > 0 {
		b.gw = startChild(tb, b.botURL, hex.EncodeToString(b.key), calls, gatewayProcs)
	}
	return b
}

func (b *bench) close() {
	if b.gw != nil {
		b.gw.stop()
	}
	_ = b.bot.Close()
}

func (b *bench) serveBot(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	c.SetReadLimit(1 << 20)
	pe := &peer{c: c, scratch: make([]byte, frameBytes)}
	b.botPacer.Load().add(pe)
	b.botConns.Add(1)
	b.botActive.Add(1)
	defer b.botActive.Add(-1)
	recvLoop(pe, &b.rec, b.p2b, false)
	_ = c.CloseNow()
}

// trial is one measurement of n streams for d.
type trial struct {
	mode             string // direct | gateway
	n                int
	d                time.Duration
	p2b50, p2b99     time.Duration
	b2p50, b2p99     time.Duration
	p2bN, b2pN       int64
	lost             int64
	gatewayCPU       time.Duration // child process, during d
	benchCPU         time.Duration // this process, during d
	expectedPerDir   int64
	connectFailures  int
	gatewayCPUPerStr float64 // fraction of a core per stream
}

func (b *bench) run(tb testing.TB, mode string, n int, d time.Duration) trial {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.p2b.h.reset()
	b.b2p.h.reset()
	b.p2b.lost.Store(0)
	b.b2p.lost.Store(0)
	b.botConns.Store(0)
	bp := &pacer{}
	b.botPacer.Store(bp)
	pp := &pacer{}

	gw := mode != "direct"
	peers := make([]*peer, n)
	var failures atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			target := b.botURL
			if gw {
				target = b.streamURL(tb, i)
			}
			dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
			defer dcancel()
			c, _, err := websocket.Dial(dctx, target, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
			if err != nil {
				failures.Add(1)
				return
			}
			c.SetReadLimit(1 << 20)
			pe := &peer{c: c, scratch: make([]byte, frameBytes)}
			peers[i] = pe
			pp.add(pe)
			go recvLoop(pe, &b.rec, b.b2p, gw)
		}(i)
	}
	wg.Wait()
	want := int64(n) - failures.Load()
	for end := time.Now().Add(20 * time.Second); b.botConns.Load() < want && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	if gw {
		defer b.listen(tb, mode, n)() // monitor listeners, if the mode has them
	}
	pp.run(ctx)
	bp.run(ctx)
	time.Sleep(500 * time.Millisecond) // warm up: connections settle, buffers grow once
	b.p2b.h.reset()
	b.b2p.h.reset()
	var gw0 int64
	if gw {
		gw0 = b.gw.ask("rusage", "RUSAGE")
	}
	self0 := cpuNanos()
	b.rec.Store(true)
	time.Sleep(d)
	b.rec.Store(false)
	self1 := cpuNanos()
	var gw1 int64
	if gw {
		gw1 = b.gw.ask("rusage", "RUSAGE")
	}
	cancel()
	for _, pe := range peers {
		if pe != nil {
			_ = pe.c.CloseNow()
		}
	}
	// Stream names are reused by the next trial: wait until the gateway
	// has let go of them, and the bot of its sockets.
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if b.botActive.Load() == 0 && (!gw || b.gw.ask("active", "ACTIVE") == 0) {
			break
		}
	}
	t := trial{
		mode: mode, n: n, d: d,
		p2b50: b.p2b.h.quantile(0.50), p2b99: b.p2b.h.quantile(0.99),
		b2p50: b.b2p.h.quantile(0.50), b2p99: b.b2p.h.quantile(0.99),
		p2bN: b.p2b.h.n.Load(), b2pN: b.b2p.h.n.Load(),
		lost:            b.p2b.lost.Load() + b.b2p.lost.Load(),
		benchCPU:        time.Duration(self1 - self0),
		gatewayCPU:      time.Duration(gw1 - gw0),
		expectedPerDir:  int64(n) * int64(d/frameInterval),
		connectFailures: int(failures.Load()),
	}
	if gw && n > 0 {
		t.gatewayCPUPerStr = t.gatewayCPU.Seconds() / d.Seconds() / float64(n)
	}
	return t
}

func (b *bench) streamURL(tb testing.TB, i int) string {
	tok, err := streamtoken.Sign(b.key, streamtoken.Claims{Namespace: benchNS, Call: callName(i), Attempt: 1, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		tb.Fatal(err)
	}
	q := url.Values{}
	q.Set(streamtoken.ParamCall, benchNS+"/"+callName(i))
	q.Set(streamtoken.ParamAttempt, "1")
	q.Set(streamtoken.ParamToken, tok)
	return "ws://" + b.gw.addr + "/stream?" + q.Encode()
}

// child is the gateway process.
type child struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	addr string
	mu   sync.Mutex
}

func startChild(tb testing.TB, botURL, keyHex string, calls, procs int) *child {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestGatewayChild$", "-test.count=1", "-test.timeout=0")
	cmd.Env = append(os.Environ(),
		childEnv+"=1",
		childCalls+"="+strconv.Itoa(calls),
		childBotURL+"="+botURL,
		childKey+"="+keyHex,
		"GOMAXPROCS="+strconv.Itoa(procs),
	)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	c.addr = c.line("ADDR")
	if c.addr == "" {
		tb.Fatal("gateway child did not start")
	}
	return c
}

// line returns the rest of the next output line starting with prefix.
func (c *child) line(prefix string) string {
	for c.out.Scan() {
		if rest, ok := strings.CutPrefix(c.out.Text(), prefix+" "); ok {
			return rest
		}
	}
	return ""
}

func (c *child) ask(cmd, prefix string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		// The child is gone: its answer is 0, as a missing line is (its
		// stderr says why).
		return 0
	}
	v, _ := strconv.ParseInt(c.line(prefix), 10, 64)
	return v
}

func (c *child) stop() {
	_ = c.in.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}
