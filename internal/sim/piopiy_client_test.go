package sim_test

// These tests drive the sim with the real client, pkg/piopiy, the way the
// operator will. The sim itself never imports pkg/piopiy: a client bug must
// not hide behind shared code.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

type clientEnv struct {
	sim    *sim.Sim
	base   string
	client *piopiy.Client
	mu     sync.Mutex
	hooks  []*piopiy.Webhook
	bad    []string
}

func newClientEnv(t *testing.T, cfg sim.Config) *clientEnv {
	t.Helper()
	env := &clientEnv{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		wh, err := piopiy.ParseWebhook(b)
		env.mu.Lock()
		if err != nil {
			env.bad = append(env.bad, err.Error()+": "+string(b))
		} else {
			env.hooks = append(env.hooks, wh)
		}
		env.mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	cfg.Apps = []sim.App{{AppID: 1111111, Secret: "secret"}}
	cfg.WebhookURL = recv.URL
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	c, err := piopiy.NewClient(piopiy.Credentials{AppID: 1111111, Secret: "secret"},
		piopiy.WithRESTBaseURL(base), piopiy.WithActionBaseURL(base),
		piopiy.WithHTTPClient(&http.Client{Timeout: 2 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	env.sim, env.client, env.base = s, c, base
	return env
}

// events are a call's webhooks: by request id, or for the documented stream
// events, which name no request, by the cmiuuid of one of its streams.
func (e *clientEnv) events(id string) []*piopiy.Webhook {
	legs := map[string]bool{}
	if c, ok := callByID(e.sim, id); ok {
		for _, st := range c.Streams {
			legs[st.CMIUUID] = true
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*piopiy.Webhook
	for _, w := range e.hooks {
		if (w.Event != nil && w.Event.RequestID == id) || (w.CDR != nil && w.CDR.RequestID == id) ||
			(w.Event != nil && w.Event.RequestID == "" && legs[w.Event.CMIUUID]) {
			out = append(out, w)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func callByID(s *sim.Sim, id string) (sim.CallRecord, bool) {
	for _, c := range s.Calls() {
		if c.RequestID == id {
			return c, true
		}
	}
	return sim.CallRecord{}, false
}

func TestClientFullCall(t *testing.T) {
	t.Parallel()
	env := newClientEnv(t, sim.Config{Scenario: sim.Scenario{
		Default:      sim.Behaviour{Outcome: sim.OutcomeAnswer},
		DefaultAgent: sim.AgentBehaviour{AnswerDelay: time.Millisecond},
	}})
	// The bot side: accept the stream, then drive it with the client's frame builders.
	conns := make(chan *websocket.Conn, 1)
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		conns <- c
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	defer bot.Close()
	ctx := context.Background()
	resp, err := env.client.MakeCall(ctx, piopiy.MakeCallRequest{
		From: "918035000000", To: "919876543210", DurationSeconds: 120,
		ExtraParams: map[string]string{"attempt": "ns/call-1/1"},
		PCMO: piopiy.PCMO{piopiy.Stream(piopiy.StreamOptions{
			WSURL: "ws" + strings.TrimPrefix(bot.URL, "http") + "/ws?call=call-1", ListenMode: piopiy.ListenBoth, StreamOnAnswer: true,
		})},
	})
	if err != nil {
		t.Fatalf("MakeCall: %v", err)
	}
	var conn *websocket.Conn
	select {
	case conn = <-conns:
	case <-time.After(20 * time.Second):
		t.Fatal("no stream")
	}
	send := func(b []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	send(piopiy.StreamAudioFrame(piopiy.AudioRaw, 8000, make([]byte, 3200)))
	send(piopiy.PauseFrame(), nil)
	send(piopiy.ResumeFrame(), nil)
	send(piopiy.BreakFrame(), nil)
	send(piopiy.PCMOFrame(piopiy.PCMO{piopiy.Bridge(piopiy.BridgeOptions{From: "918035000000", Numbers: []string{"919100000001"}, TimeoutSeconds: 10})}))
	waitFor(t, "bridged", func() bool {
		c, _ := callByID(env.sim, resp.RequestID)
		return len(c.Bridges) == 1 && c.Bridges[0].Answered
	})
	c, _ := callByID(env.sim, resp.RequestID)
	st := c.Streams[0]
	if st.Audio.Frames != 1 || st.Audio.PlayedMs != 200 || len(st.Pauses) != 1 || len(st.Breaks) != 1 || len(st.Rejected) != 0 || st.IgnoredCount != 0 {
		t.Errorf("the sim did not accept the client's frames as Piopiy would: %+v", st)
	}
	if err := env.client.CallAction(ctx, c.CMIUUID, piopiy.ActionHangup); err != nil {
		t.Fatalf("CallAction: %v", err)
	}
	waitFor(t, "ended", func() bool { c, _ := callByID(env.sim, resp.RequestID); return c.State == "ended" })
	// Every webhook parses; leg b and stream events (string numbers) included.
	waitFor(t, "webhooks", func() bool {
		c, _ := callByID(env.sim, resp.RequestID)
		return len(env.events(resp.RequestID)) == len(c.Events)
	})
	env.mu.Lock()
	if len(env.bad) > 0 {
		t.Errorf("unparseable webhooks: %v", env.bad)
	}
	env.mu.Unlock()
	sawB, sawStream := false, false
	for _, w := range env.events(resp.RequestID) {
		if w.Event != nil {
			sawB = sawB || w.Event.Leg == piopiy.LegB
			sawStream = sawStream || w.Event.WSStatus != nil
			if w.Event.RequestID != "" && w.Event.ExtraParams["attempt"] != "ns/call-1/1" {
				t.Errorf("%s: extra_params %v", w.Event.RawStatus, w.Event.RawExtraParams)
			}
		}
	}
	if !sawB || !sawStream {
		t.Errorf("leg b events %v, stream events %v", sawB, sawStream)
	}
	cdrs, err := env.client.CDRsByRequestID(ctx, resp.RequestID)
	if err != nil || len(cdrs) != 2 {
		t.Fatalf("CDRsByRequestID: %v %+v", err, cdrs)
	}
	cdr, err := env.client.CDRByCMIUUID(ctx, c.CMIUUID)
	if err != nil || cdr.Status != piopiy.CDRAnswered || cdr.Leg != piopiy.LegA {
		t.Fatalf("CDRByCMIUUID: %v %+v", err, cdr)
	}
}

// The client must report an ambiguous create as such and must not retry it:
// the person is rung exactly once.
func TestClientAmbiguousCreateRingsOnce(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{sim.AmbiguousClose, sim.Ambiguous5xx, sim.AmbiguousHang} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			env := newClientEnv(t, sim.Config{
				Scenario: sim.Scenario{Default: sim.Behaviour{Outcome: sim.OutcomeBusy}},
				Faults:   sim.Faults{REST: sim.RESTFaults{AmbiguousProb: 1, AmbiguousMode: mode}},
			})
			_, err := env.client.MakeCall(context.Background(), piopiy.MakeCallRequest{
				From: "918035000000", To: "919876543210", PCMO: piopiy.PCMO{piopiy.Speak("hi")},
			})
			if !piopiy.IsAmbiguous(err) {
				t.Fatalf("err %v is not ambiguous", err)
			}
			if n := len(env.sim.Calls()); n != 1 {
				t.Fatalf("rung %d times", n)
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	env := newClientEnv(t, sim.Config{Faults: sim.Faults{RESTNumbers: map[string]sim.RESTFaults{"919000000009": {ServerErrProb: 1}}}})
	bad, _ := piopiy.NewClient(piopiy.Credentials{AppID: 1111111, Secret: "wrong"},
		piopiy.WithRESTBaseURL(env.base), piopiy.WithActionBaseURL(env.base))
	_, err := bad.MakeCall(context.Background(), piopiy.MakeCallRequest{From: "918035000000", To: "919876543210", PCMO: piopiy.PCMO{piopiy.Speak("hi")}})
	var pe *piopiy.Error
	if !errors.As(err, &pe) || pe.Code != 420 || piopiy.IsAmbiguous(err) {
		t.Errorf("bad secret: %v", err)
	}
	// A 503 before anything was done: the sim placed nothing.
	_, err = env.client.MakeCall(context.Background(), piopiy.MakeCallRequest{From: "918035000000", To: "919000000009", PCMO: piopiy.PCMO{piopiy.Speak("hi")}})
	if err == nil {
		t.Error("503 not reported")
	}
	if n := len(env.sim.Calls()); n != 0 {
		t.Errorf("%d calls placed", n)
	}
}
