package sim

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const (
	testApp    = 1111111
	testSecret = "secret"
	testFrom   = 918035000000
)

// hookRecv is a webhook receiver that records every POST.
type hookRecv struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	fail   atomic.Int64 // reply 500 to this many requests first
	// legs names the cmiuuids of a call's legs and streams: the documented
	// stream events carry no request id, only one of those.
	legs func(requestID string) map[string]bool
}

func newHookRecv(t *testing.T) *hookRecv {
	h := &hookRecv{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if h.fail.Add(-1) >= 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Errorf("webhook body is not a JSON object: %v: %s", err, b)
		}
		h.mu.Lock()
		h.bodies = append(h.bodies, m)
		h.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// events returns the received bodies for a request id, in arrival order.
func (h *hookRecv) events(requestID string) []map[string]any {
	var legs map[string]bool
	if h.legs != nil {
		legs = h.legs(requestID)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]any
	for _, b := range h.bodies {
		if rid, named := b["request_id"]; rid == requestID || (!named && legs[fmt.Sprint(b["cmiuuid"])]) {
			out = append(out, b)
		}
	}
	return out
}

// statuses lists "status" (or "cdr" for CDRs) of a call's received events.
func (h *hookRecv) statuses(requestID string) []string {
	var out []string
	for _, e := range h.events(requestID) {
		if e["type"] == "cdr" {
			out = append(out, "cdr:"+fmt.Sprint(e["leg"]))
			continue
		}
		out = append(out, fmt.Sprint(e["status"]))
	}
	return out
}

type harness struct {
	t     *testing.T
	sim   *Sim
	url   string
	hooks *hookRecv
}

// newHarness starts a sim on 127.0.0.1 with a webhook receiver. mut may edit the config.
func newHarness(t *testing.T, mut func(*Config)) *harness {
	t.Helper()
	hooks := newHookRecv(t)
	cfg := Config{
		Apps:            []App{{AppID: testApp, Secret: testSecret}, {AppID: 2222222, Secret: "s2"}},
		WebhookURL:      hooks.srv.URL + "/hook",
		RedeliveryScale: 0.0001, // 5 min → 30 ms
		Seed:            1,
		Sender:          os.Getenv("SIM_TEST_SENDER"), // run the suite against either sender
		Shapes:          testShapes(),
	}
	if mut != nil {
		mut(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	u, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	hooks.legs = func(id string) map[string]bool {
		legs := map[string]bool{}
		for _, c := range s.Calls() {
			if c.RequestID != id {
				continue
			}
			legs[c.CMIUUID] = true
			for _, st := range c.Streams {
				legs[st.CMIUUID] = true
			}
		}
		return legs
	}
	return &harness{t: t, sim: s, url: u, hooks: hooks}
}

var httpClient = &http.Client{Timeout: 20 * time.Second}

// post sends body (raw if []byte or string, else JSON-encoded) and decodes the reply.
func (h *harness) post(path string, body any) (int, map[string]any) {
	h.t.Helper()
	var b []byte
	switch v := body.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			h.t.Fatal(err)
		}
	}
	resp, err := httpClient.Post(h.url+path, "application/json", bytes.NewReader(b))
	if err != nil {
		h.t.Fatalf("POST %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		h.t.Fatalf("POST %s: reply %d is not JSON: %q", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

// callBody is a valid make-call body for to with the given PCMO.
func callBody(to int64, pcmo any) map[string]any {
	return map[string]any{
		"appid": testApp, "secret": testSecret, "from": testFrom, "to": to,
		"duration": 60, "extra_params": map[string]any{"attempt": "a-1", "call": "demo"}, "pcmo": pcmo,
	}
}

func speakPCMO() []any { return []any{map[string]any{"action": "speak", "text": "hello"}} }

func streamPCMO(wsURL string, extra map[string]any) []any {
	a := map[string]any{"action": "stream", "ws_url": wsURL, "listen_mode": "caller", "voice_quality": "8000", "stream_on_answer": true}
	for k, v := range extra {
		a[k] = v
	}
	return []any{a}
}

// dial places a call and returns its request id.
func (h *harness) dial(to int64, pcmo any) string {
	h.t.Helper()
	code, m := h.post("/v2/ind_pcmo_make_call", callBody(to, pcmo))
	if code != 200 {
		h.t.Fatalf("make-call: %d %v", code, m)
	}
	return m["request_id"].(string)
}

func (h *harness) call(id string) CallRecord {
	for _, c := range h.sim.Calls() {
		if c.RequestID == id {
			return c
		}
	}
	h.t.Fatalf("no call %s", id)
	return CallRecord{}
}

// waitCall polls until cond holds for the call (generous deadline: never a timing assertion).
func (h *harness) waitCall(id string, what string, cond func(CallRecord) bool) CallRecord {
	h.t.Helper()
	var c CallRecord
	eventually(h.t, what, func() bool { c = h.call(id); return cond(c) })
	return c
}

func (h *harness) waitEnded(id string) CallRecord {
	h.t.Helper()
	return h.waitCall(id, "call ended and events delivered", func(c CallRecord) bool {
		if c.State != "ended" {
			return false
		}
		for _, e := range c.Events {
			if !e.Delivered {
				return false
			}
		}
		return len(h.hooks.events(id)) >= len(c.Events)
	})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func eventStatuses(c CallRecord) []string {
	var out []string
	for _, e := range c.Events {
		s := e.Status
		if s == "cdr" {
			s = "cdr:" + e.Leg
		}
		out = append(out, s)
	}
	return out
}

// wsPeer is the customer's WebSocket server the sim dials.
type wsPeer struct {
	srv   *httptest.Server
	url   string
	conns chan *peerConn
}

type peerConn struct {
	c      *websocket.Conn
	path   string
	mu     sync.Mutex
	frames [][]byte // binary frames, copied
	texts  []string
	done   chan struct{}
	err    error
}

func newWSPeer(t *testing.T) *wsPeer {
	p := &wsPeer{conns: make(chan *peerConn, 16)}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		pc := &peerConn{c: c, path: r.URL.RequestURI(), done: make(chan struct{})}
		p.conns <- pc
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil {
				pc.mu.Lock()
				pc.err = err
				pc.mu.Unlock()
				close(pc.done)
				return
			}
			pc.mu.Lock()
			if typ == websocket.MessageBinary {
				pc.frames = append(pc.frames, b)
			} else {
				pc.texts = append(pc.texts, string(b))
			}
			pc.mu.Unlock()
		}
	}))
	t.Cleanup(p.srv.Close)
	p.url = "ws" + strings.TrimPrefix(p.srv.URL, "http") + "/ws"
	return p
}

func (p *wsPeer) accept(t *testing.T) *peerConn {
	t.Helper()
	select {
	case pc := <-p.conns:
		return pc
	case <-time.After(20 * time.Second):
		t.Fatal("the sim never dialled the ws_url")
		return nil
	}
}

func (pc *peerConn) frameCount() int {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return len(pc.frames)
}

// framesFrom returns a copy of binary frames [i:].
func (pc *peerConn) framesFrom(i int) [][]byte {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if i > len(pc.frames) {
		i = len(pc.frames)
	}
	return append([][]byte(nil), pc.frames[i:]...)
}

func (pc *peerConn) sendText(t *testing.T, v any) {
	t.Helper()
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	default:
		b, _ = json.Marshal(x)
	}
	if err := pc.c.Write(context.Background(), websocket.MessageText, b); err != nil {
		t.Fatalf("ws write: %v", err)
	}
}

func (pc *peerConn) waitFrames(t *testing.T, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d binary frames", n), func() bool { return pc.frameCount() >= n })
}

func (pc *peerConn) waitClosed(t *testing.T) error {
	t.Helper()
	select {
	case <-pc.done:
		pc.mu.Lock()
		defer pc.mu.Unlock()
		return pc.err
	case <-time.After(20 * time.Second):
		t.Fatal("socket not closed")
		return nil
	}
}

// toneEnergy is the Goertzel power of hz in L16 little-endian frames,
// normalised per sample so different lengths compare.
func toneEnergy(frames [][]byte, rate int, hz float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*hz/float64(rate))
	var total float64
	var n int
	for _, f := range frames {
		var s1, s2 float64
		for i := 0; i+1 < len(f); i += 2 {
			x := float64(int16(binary.LittleEndian.Uint16(f[i:])))
			s0 := x + coeff*s1 - s2
			s2, s1 = s1, s0
		}
		total += s1*s1 + s2*s2 - coeff*s1*s2
		n += len(f) / 2
	}
	if n == 0 {
		return 0
	}
	return total / float64(n)
}

func allSilent(frames [][]byte) bool {
	for _, f := range frames {
		for _, b := range f {
			if b != 0 {
				return false
			}
		}
	}
	return true
}

// readDocumented reads one of TeleCMI's samples (pkg/piopiy/testdata/documented
// names the page of each).
func readDocumented(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../../pkg/piopiy/testdata/documented/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// sameShape checks got has exactly the sample's keys, each with the same
// JSON type (values differ, of course).
func sameShape(t *testing.T, what string, got, sample map[string]any) {
	t.Helper()
	for k, v := range sample {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: no %q, which the documented sample has", what, k)
			continue
		}
		if fmt.Sprintf("%T", g) != fmt.Sprintf("%T", v) {
			t.Errorf("%s: %q is %T (%v), the documented sample has %T", what, k, g, g, v)
		}
	}
	for k := range got {
		if _, ok := sample[k]; !ok {
			t.Errorf("%s: %q is not in the documented sample", what, k)
		}
	}
}

// checkCallEndClose checks how the peer saw the socket end when the call
// did, and returns the close code the sim records. Documented: the socket
// just drops (no close frame; Piopiy's event says 1006 "Abnormal closure").
// Rich shapes: a normal closure.
func (h *harness) checkCallEndClose(err error) int {
	h.t.Helper()
	if h.sim.CurrentShapes().Rich {
		if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
			h.t.Errorf("socket closed with %v, want a normal closure", err)
		}
		return 1000
	}
	if err == nil || websocket.CloseStatus(err) != -1 {
		h.t.Errorf("socket closed with %v, want it dropped without a close frame", err)
	}
	return 1006
}

// testShapes runs the suite with the documented shapes, or with
// SIM_TEST_SHAPES=rich with the former ones (the ws_url query kept, as
// before).
func testShapes() Shapes {
	if os.Getenv("SIM_TEST_SHAPES") == "rich" {
		return Shapes{Rich: true, WSURLQuery: WSURLQueryKept}
	}
	return Shapes{}
}
