package controllertest

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/controller/streamendpoint"
	"github.com/callfleet/callfleet/internal/gateway"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/test/harness"
)

const deadline = 60 * time.Second

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestCallControllerThroughGateway: a Call on an external StreamEndpoint
// served by the gateway is dialled by the real Call controller; the sim
// streams to the gateway with the controller's signed ws_url, the bot gets
// the call, an announcement set on the Call plays on connect, and when the
// callee hangs up the Call ends with the gateway's close report intact.
func TestCallControllerThroughGateway(t *testing.T) {
	h, err := harness.Start(harness.Options{Setup: func(_ context.Context, mgr ctrl.Manager) error {
		return (&streamendpoint.Reconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme()}).SetupWithManager(mgr)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	ctx := context.Background()
	k8s := h.Env.Client
	const ns, endpoint = "gw-int", "bots"
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}

	// The bot: records the start frame and counts audio.
	var start atomic.Pointer[gateway.StartMessage]
	var frames atomic.Int64
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		_, b, err := c.Read(r.Context())
		if err != nil {
			return
		}
		var m gateway.StartMessage
		if json.Unmarshal(b, &m) == nil {
			start.Store(&m)
		}
		for {
			typ, _, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if typ == websocket.MessageBinary {
				frames.Add(1)
			}
		}
	}))
	defer bot.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	gctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- gateway.Run(gctx, h.Env.Config, gateway.RunOptions{
			Options: gateway.Options{
				Namespace:    ns,
				Endpoint:     endpoint,
				BotURL:       "ws" + strings.TrimPrefix(bot.URL, "http") + "/",
				TokenRootKey: h.TokenKey, // the manager's root key
				PodName:      "gw-int-0",
				Registerer:   prometheus.NewRegistry(),
				Logger:       logr.Discard(),
			},
			Listener:           ln,
			MetricsBindAddress: "0",
		})
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	}()

	// External mode: Ready while the gateway's /readyz answers.
	ep := &voicev1alpha1.StreamEndpoint{
		ObjectMeta: metav1.ObjectMeta{Name: endpoint, Namespace: ns},
		Spec: voicev1alpha1.StreamEndpointSpec{
			External:  &voicev1alpha1.ExternalEndpoint{HealthURL: "http://" + addr + "/readyz"},
			PublicURL: "ws://" + addr + "/stream",
		},
	}
	if err := k8s.Create(ctx, ep); err != nil {
		t.Fatal(err)
	}
	// Once as TeleCMI documents Piopiy (the ws_url's query dropped, the
	// socket dropped at call end, thin stream events), once with the sim's
	// former, kinder shapes: both must work.
	for _, tc := range []struct {
		name, to  string
		shapes    sim.Shapes
		closeCode int32
	}{
		{"documented", "919800000123", sim.Shapes{}, 1006},
		{"rich", "919800000124", sim.Shapes{Rich: true, WSURLQuery: sim.WSURLQueryKept}, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := h.Sim.SetShapes(tc.shapes); err != nil {
				t.Fatal(err)
			}
			start.Store(nil)
			frames.Store(0)
			callThroughGateway(t, h, ns, endpoint, "renewal-"+tc.name, tc.to, tc.closeCode, start.Load, frames.Load)
		})
	}
}

// callThroughGateway runs one Call through the controller, the sim, the
// gateway and the bot, and checks what each saw.
func callThroughGateway(t *testing.T, h *harness.Harness, ns, endpoint, name, to string, closeCode int32, started func() *gateway.StartMessage, frames func() int64) {
	ctx := context.Background()
	k8s := h.Env.Client
	call := &voicev1alpha1.Call{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: voicev1alpha1.CallSpec{To: to, CallParameters: voicev1alpha1.CallParameters{
			StreamEndpointRef: &voicev1alpha1.LocalRef{Name: endpoint},
			Variables:         map[string]string{"plan": "gold"},
			Announcements:     []voicev1alpha1.Announcement{{Name: "recording-notice", URL: "https://audio.example.com/notice.wav"}},
		}},
	}
	if err := k8s.Create(ctx, call); err != nil {
		t.Fatal(err)
	}

	eventually(t, "the bot got the call", func() bool { return started() != nil })
	if m := started(); m.Call != name || m.Namespace != ns || m.Attempt != 1 || m.To != to ||
		m.Variables["plan"] != "gold" || m.SampleRate != 8000 || m.ListenMode != "caller" {
		t.Errorf("start %+v", m)
	}
	eventually(t, "audio at the bot", func() bool { return frames() >= 25 })

	// The sim's default callee hangs up after 3 s.
	get := func() *voicev1alpha1.Call {
		c := &voicev1alpha1.Call{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	var c *voicev1alpha1.Call
	eventually(t, "call completed and stream closed", func() bool {
		c = get()
		st := c.Status.Stream
		return c.Status.Phase == voicev1alpha1.CallCompleted && st != nil && st.State == voicev1alpha1.StreamPhaseDisconnected && st.Pod != ""
	})
	st := c.Status.Stream
	if st.Pod != "gw-int-0" || st.CloseCode != closeCode || st.ConnectedTime == nil || st.DisconnectedTime == nil ||
		len(st.AnnouncementsPlayed) != 1 || st.AnnouncementsPlayed[0] != "recording-notice" {
		t.Errorf("status.stream %+v", st)
	}
	plays := 0
	for _, rec := range h.Sim.Calls() {
		if rec.To != to {
			continue
		}
		// The token in the ws_url's path is what authenticated the stream
		// when the sim dropped the query.
		for _, s := range rec.Streams {
			if stripped := !strings.Contains(s.DialedURL, "?"); stripped != (h.Sim.CurrentShapes().WSURLQuery != sim.WSURLQueryKept) || !strings.Contains(s.WSURL, "token=") || !strings.Contains(s.DialedURL, "/s/") {
				t.Errorf("ws_url %q dialed as %q", s.WSURL, s.DialedURL)
			}
		}
		for _, p := range rec.Plays {
			if p.Source == "socket" && p.FileURL == "https://audio.example.com/notice.wav" {
				plays++
			}
		}
	}
	if plays != 1 {
		t.Errorf("announcement played %d times on the socket, want 1", plays)
	}
}
