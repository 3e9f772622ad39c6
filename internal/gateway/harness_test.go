package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callfleet/callfleet/test/harness"

	"github.com/coder/websocket"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/gateway"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/internal/streamtoken"
	"github.com/callfleet/callfleet/internal/testenv"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

const (
	ns       = "voice-e2e"
	endpoint = "bots"
	appID    = 5150001
	secret   = "gw-sim-secret"
	callerID = "918000000042"
	agentNum = "918000000777"
	podName  = "gw-test-0"
)

var (
	env    *testenv.Env
	k8s    client.Client
	simSrv *sim.Sim
	simURL string
	key    []byte
	bots   *testBot
	gw     *runningGateway // shared by the tests that do not stop it
)

// deadline bounds every wait: generous, because a loaded 2-core box is slow,
// and never an assertion about timing.
const deadline = 45 * time.Second

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	flag.Parse()
	ctrl.SetLogger(testLogger())
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	k8s = env.Client
	ctx := context.Background()
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	key = make([]byte, 32)
	_, _ = rand.Read(key)

	// Callees answer at once and never hang up; agents answer after 200ms.
	simSrv, err = sim.New(sim.Config{
		Apps:     []sim.App{{AppID: appID, Secret: secret}},
		Scenario: sim.Scenario{Default: sim.Behaviour{Outcome: sim.OutcomeAnswer}},
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if simURL, err = simSrv.Start("127.0.0.1:0"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = simSrv.Close(cctx)
	}()

	bots = newTestBot()
	defer bots.srv.Close()

	if gw, err = startGateway(bots.url, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := gw.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the shared gateway:", err)
		}
	}()
	return m.Run()
}

func testLogger() logr.Logger {
	if testing.Verbose() || os.Getenv("GATEWAY_TEST_LOG") != "" {
		return logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.Level(-1)}))
	}
	return logr.Discard()
}

// runningGateway is a gateway.Run in this process.
type runningGateway struct {
	url    string // ws://127.0.0.1:port
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error

	stopOnce sync.Once
	stopErr  error
}

func startGateway(botURL string, mut func(*gateway.RunOptions)) (*runningGateway, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &runningGateway{url: "ws://" + ln.Addr().String(), reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	started := make(chan struct{})
	o := gateway.RunOptions{
		Options: gateway.Options{
			Namespace:    ns,
			Endpoint:     endpoint,
			BotURL:       botURL,
			TokenKey:     key,
			PodName:      podName,
			PingInterval: 2 * time.Second,
			Registerer:   g.reg,
			Logger:       testLogger().WithName("gateway"),
		},
		Listener:           ln,
		MetricsBindAddress: "0",
		Started:            func(net.Addr) { close(started) },
	}
	if mut != nil {
		mut(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() { g.done <- gateway.Run(ctx, env.Config, o) }()
	select {
	case <-started:
		return g, nil
	case err := <-g.done:
		cancel()
		return nil, fmt.Errorf("gateway exited: %v", err)
	case <-time.After(deadline):
		cancel()
		return nil, fmt.Errorf("gateway did not start")
	}
}

func (g *runningGateway) stop() error {
	g.stopOnce.Do(func() {
		g.cancel()
		select {
		case g.stopErr = <-g.done:
		case <-time.After(deadline):
			g.stopErr = fmt.Errorf("gateway did not stop")
		}
	})
	return g.stopErr
}

// counter reads a metric's value from the gateway's registry.
func (g *runningGateway) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	v, err := harness.MetricSum(g.reg, name, labels)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// testBot is a bot speaking the gateway's bot protocol. It hands each
// connection to the test of the Call named in the gateway's dial headers.
type testBot struct {
	srv *httptest.Server
	url string

	mu    sync.Mutex
	conns map[string]chan *botConn // by namespace/name
	all   []*websocket.Conn
}

type botConn struct {
	c     *websocket.Conn
	start gateway.StartMessage

	mu        sync.Mutex
	frames    int
	bytes     int
	sizes     map[int]int
	nonSilent int
	texts     []string
	closeErr  error
	closed    chan struct{}
}

func newTestBot() *testBot {
	b := &testBot{conns: map[string]chan *botConn{}}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	b.url = "ws" + strings.TrimPrefix(b.srv.URL, "http") + "/"
	return b
}

// newTestBotOn is a test bot serving on ln: a bot process started again on
// the address of one that was killed.
func newTestBotOn(ln net.Listener) *testBot {
	b := &testBot{conns: map[string]chan *botConn{}}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(b.serve))
	_ = b.srv.Listener.Close()
	b.srv.Listener = ln
	b.srv.Start()
	b.url = "ws" + strings.TrimPrefix(b.srv.URL, "http") + "/"
	return b
}

// kill ends the bot as a crash does: its sockets drop without a close
// frame and nothing listens any more.
func (b *testBot) kill() {
	b.srv.Close() // the listener; upgraded sockets are not the server's any more
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.all {
		_ = c.CloseNow()
	}
}

func (b *testBot) ch(call string) chan *botConn {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.conns[call]
	if !ok {
		c = make(chan *botConn, 4)
		b.conns[call] = c
	}
	return c
}

func (b *testBot) serve(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(1 << 20)
	b.mu.Lock()
	b.all = append(b.all, c)
	b.mu.Unlock()
	ctx := context.Background()
	typ, data, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText {
		_ = c.Close(websocket.StatusProtocolError, "want start")
		return
	}
	bc := &botConn{c: c, sizes: map[int]int{}, closed: make(chan struct{})}
	if err := json.Unmarshal(data, &bc.start); err != nil {
		_ = c.Close(websocket.StatusProtocolError, "bad start")
		return
	}
	bc.texts = append(bc.texts, string(data))
	b.ch(r.Header.Get("X-Callfleet-Call")) <- bc
	defer close(bc.closed)
	for {
		typ, data, err := c.Read(ctx)
		bc.mu.Lock()
		if err != nil {
			bc.closeErr = err
			bc.mu.Unlock()
			return
		}
		if typ == websocket.MessageBinary {
			bc.frames++
			bc.bytes += len(data)
			bc.sizes[len(data)]++
			for i := 0; i+1 < len(data); i += 2 {
				if binary.LittleEndian.Uint16(data[i:]) != 0 {
					bc.nonSilent++
					break
				}
			}
		} else {
			bc.texts = append(bc.texts, string(data))
		}
		bc.mu.Unlock()
	}
}

// wait returns the bot socket the gateway opened for call.
func (b *testBot) wait(t *testing.T, call string) *botConn {
	t.Helper()
	select {
	case bc := <-b.ch(ns + "/" + call):
		return bc
	case <-time.After(deadline):
		t.Fatalf("no bot connection for %s", call)
		return nil
	}
}

func (bc *botConn) stats() (frames, nBytes, nonSilent int, sizes map[int]int) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	s := map[int]int{}
	for k, v := range bc.sizes {
		s[k] = v
	}
	return bc.frames, bc.bytes, bc.nonSilent, s
}

// events returns the JSON messages of a type the bot received after start.
func (bc *botConn) events(typ string) []map[string]any {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	var out []map[string]any
	for _, s := range bc.texts[1:] {
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) == nil && m["type"] == typ {
			out = append(out, m)
		}
	}
	return out
}

func (bc *botConn) send(t *testing.T, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.c.Write(context.Background(), websocket.MessageText, b); err != nil {
		t.Fatalf("bot send: %v", err)
	}
}

// sendAudio sends ms of a 440 Hz-ish square wave in chunks of chunk bytes.
func (bc *botConn) sendAudio(t *testing.T, rate, ms, chunk int) {
	t.Helper()
	pcm := make([]byte, rate*ms/1000*2)
	for i := 0; i < len(pcm)/2; i++ {
		v := int16(8000)
		if (i/9)%2 == 0 {
			v = -8000
		}
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	for off := 0; off < len(pcm); off += chunk {
		end := min(off+chunk, len(pcm))
		if err := bc.c.Write(context.Background(), websocket.MessageBinary, pcm[off:end]); err != nil {
			t.Fatalf("bot audio: %v", err)
		}
	}
}

// closedNow reports whether the socket has ended.
func (bc *botConn) closedNow() bool {
	select {
	case <-bc.closed:
		return true
	default:
		return false
	}
}

func (bc *botConn) waitClosed(t *testing.T) error {
	t.Helper()
	select {
	case <-bc.closed:
		bc.mu.Lock()
		defer bc.mu.Unlock()
		return bc.closeErr
	case <-time.After(deadline):
		t.Fatal("bot socket not closed")
		return nil
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newCall creates a Call streaming to the test endpoint, with attempt 1
// recorded as the Call controller would before dialing.
func newCall(t *testing.T, name string, mut func(*voicev1alpha1.Call)) *voicev1alpha1.Call {
	t.Helper()
	ctx := context.Background()
	c := &voicev1alpha1.Call{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: voicev1alpha1.CallSpec{
			To: "919800000001",
			CallParameters: voicev1alpha1.CallParameters{
				From:              callerID,
				StreamEndpointRef: &voicev1alpha1.LocalRef{Name: endpoint},
				Stream:            voicev1alpha1.CallStream{ListenMode: voicev1alpha1.ListenBoth, VoiceQuality: 8000},
				Variables:         map[string]string{"customer": "Asha"},
			},
		},
	}
	if mut != nil {
		mut(c)
	}
	if err := k8s.Create(ctx, c); err != nil {
		t.Fatalf("create call: %v", err)
	}
	c.Status = voicev1alpha1.CallStatus{
		Phase: voicev1alpha1.CallDialing,
		Attempts: []voicev1alpha1.CallAttempt{{
			Number: 1, ID: name + "-1", State: voicev1alpha1.AttemptDialed,
			CMIUUID: "cmi-" + name, IntentTime: metav1.Now(),
		}},
		Stream: &voicev1alpha1.CallStreamStatus{State: voicev1alpha1.StreamPhasePending},
	}
	if err := k8s.Status().Update(ctx, c); err != nil {
		t.Fatalf("record attempt: %v", err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), c) })
	return c
}

// streamURL is the ws_url the Call controller would put in the PCMO.
func streamURL(t *testing.T, base, namespace, name string, attempt int32, expires time.Time) string {
	t.Helper()
	return signedURL(t, key, base, namespace, name, attempt, expires)
}

func signedURL(t *testing.T, key []byte, base, namespace, name string, attempt int32, expires time.Time) string {
	t.Helper()
	full, _, err := streamtoken.URL(base+"/stream", key, streamtoken.Claims{Namespace: namespace, Call: name, Attempt: attempt, Expires: expires})
	if err != nil {
		t.Fatal(err)
	}
	return full
}

// dial places the call on the sim as the Call controller would: make-call
// with a PCMO whose stream action points at the gateway. It returns the
// sim's request id.
func dial(t *testing.T, c *voicev1alpha1.Call, wsURL string) string {
	t.Helper()
	pcmo := piopiy.PCMO{piopiy.Stream(piopiy.StreamOptions{
		WSURL:          wsURL,
		ListenMode:     piopiy.ListenMode(c.Spec.Stream.ListenMode),
		VoiceQuality:   piopiy.VoiceQuality(c.Spec.Stream.VoiceQuality),
		StreamOnAnswer: true,
	})}
	from, _ := strconv.ParseInt(c.Spec.From, 10, 64)
	to, _ := strconv.ParseInt(c.Spec.To, 10, 64)
	body, err := json.Marshal(map[string]any{
		"appid": appID, "secret": secret, "from": from, "to": to, "duration": 600,
		"extra_params": map[string]string{"callfleet_attempt": c.Name + "-1"}, "pcmo": pcmo,
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(simURL+"/v2/ind_pcmo_make_call", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("make-call: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		RequestID string `json:"request_id"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil || out.RequestID == "" {
		t.Fatalf("make-call: %d %s", resp.StatusCode, raw)
	}
	return out.RequestID
}

func simCall(t *testing.T, id string) sim.CallRecord {
	t.Helper()
	for _, c := range simSrv.Calls() {
		if c.RequestID == id {
			return c
		}
	}
	t.Fatalf("sim has no call %s", id)
	return sim.CallRecord{}
}

// waitSim polls the sim's record of a call's first stream.
func waitSim(t *testing.T, id, what string, cond func(sim.CallRecord, sim.StreamRecord) bool) sim.CallRecord {
	t.Helper()
	var c sim.CallRecord
	eventually(t, what, func() bool {
		c = simCall(t, id)
		return len(c.Streams) > 0 && cond(c, c.Streams[0])
	})
	return c
}

func getCall(t *testing.T, name string) *voicev1alpha1.Call {
	t.Helper()
	c := &voicev1alpha1.Call{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, c); err != nil {
		t.Fatalf("get call: %v", err)
	}
	return c
}

// waitStatus polls the Call until cond holds.
func waitStatus(t *testing.T, name, what string, cond func(*voicev1alpha1.Call) bool) *voicev1alpha1.Call {
	t.Helper()
	var c *voicev1alpha1.Call
	eventually(t, what, func() bool { c = getCall(t, name); return cond(c) })
	return c
}

func streamState(c *voicev1alpha1.Call) voicev1alpha1.StreamPhase {
	if c.Status.Stream == nil {
		return ""
	}
	return c.Status.Stream.State
}

// editSpec changes the Call's spec as a user would (kubectl patch).
func editSpec(t *testing.T, name string, mut func(*voicev1alpha1.Call)) {
	t.Helper()
	c := getCall(t, name)
	base := c.DeepCopy()
	mut(c)
	if err := k8s.Patch(context.Background(), c, client.MergeFrom(base)); err != nil {
		t.Fatalf("patch spec: %v", err)
	}
}

// setHandoff plays the Call controller's part in a handoff.
func setHandoff(t *testing.T, name string, mut func(*voicev1alpha1.CallHandoffStatus)) {
	t.Helper()
	c := getCall(t, name)
	base := c.DeepCopy()
	if c.Status.Handoff == nil {
		c.Status.Handoff = &voicev1alpha1.CallHandoffStatus{}
	}
	mut(c.Status.Handoff)
	if err := k8s.Status().Patch(context.Background(), c, client.MergeFrom(base)); err != nil {
		t.Fatalf("patch handoff: %v", err)
	}
}
