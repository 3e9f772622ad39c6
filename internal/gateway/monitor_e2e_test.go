package gateway_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/gateway"
	"github.com/callfleet/callfleet/internal/monitortoken"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/internal/streamtoken"
)

var monitorKey = []byte("monitor-key-for-tests-0123456789abcdef")

func monitorGateway(t *testing.T) *runningGateway {
	t.Helper()
	g, err := startGateway(bots.url, func(o *gateway.RunOptions) {
		o.MonitorKey = monitorKey
		o.MonitorLines = 8
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.stop() })
	return g
}

func monitorURL(t *testing.T, base, namespace, call, tokenCall string, k []byte, exp time.Time) string {
	t.Helper()
	tok, err := monitortoken.Sign(k, monitortoken.Claims{Namespace: namespace, Call: tokenCall, User: "supervisor", Expires: exp})
	if err != nil {
		t.Fatal(err)
	}
	return base + gateway.MonitorPath + namespace + "/" + call + "?" + monitortoken.ParamToken + "=" + tok
}

// dialStatus opens u and returns the HTTP status of a refusal (0: opened).
func dialStatus(t *testing.T, u string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, u, nil)
	if err == nil {
		_ = c.CloseNow()
		return 0
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	return resp.StatusCode
}

// TestMonitorListenIn: a listener with a token for the call hears both
// directions and reads the assist and transcript lines, including those
// sent before it joined; bad tokens and tokens for another call are refused
// before the upgrade; the listener is told when the stream ends.
func TestMonitorListenIn(t *testing.T) {
	g := monitorGateway(t)
	base := g.url
	a := newCall(t, "mon-a", nil)
	b := newCall(t, "mon-b", nil)
	dial(t, a, streamURL(t, base, ns, a.Name, 1, time.Now().Add(10*time.Minute)))
	dial(t, b, streamURL(t, base, ns, b.Name, 1, time.Now().Add(10*time.Minute)))
	botA := bots.wait(t, a.Name)
	bots.wait(t, b.Name)
	waitStatus(t, a.Name, "Connected", func(c *voicev1alpha1.Call) bool { return streamState(c) == voicev1alpha1.StreamPhaseConnected })
	waitStatus(t, b.Name, "Connected", func(c *voicev1alpha1.Call) bool { return streamState(c) == voicev1alpha1.StreamPhaseConnected })

	botA.send(t, map[string]string{"type": "assist", "text": "offer the 12-month plan"})
	botA.send(t, map[string]string{"type": "transcript", "speaker": "customer", "text": "how much is it?"})
	botA.send(t, map[string]string{"type": "transcript", "speaker": "nobody", "text": "dropped: not a speaker"})

	later := time.Now().Add(time.Minute)
	stream, _ := streamtoken.Sign(key, streamtoken.Claims{Namespace: ns, Call: a.Name, Attempt: 1, Expires: later})
	for name, tc := range map[string]struct {
		url  string
		want int
	}{
		"no token":               {base + gateway.MonitorPath + ns + "/" + a.Name, http.StatusUnauthorized},
		"expired":                {monitorURL(t, base, ns, a.Name, a.Name, monitorKey, time.Now().Add(-time.Second)), http.StatusUnauthorized},
		"other key":              {monitorURL(t, base, ns, a.Name, a.Name, key, later), http.StatusUnauthorized},
		"stream token":           {base + gateway.MonitorPath + ns + "/" + a.Name + "?token=" + stream, http.StatusUnauthorized},
		"token for A opening B":  {monitorURL(t, base, ns, b.Name, a.Name, monitorKey, later), http.StatusForbidden},
		"no such call":           {monitorURL(t, base, ns, "mon-nobody", "mon-nobody", monitorKey, later), http.StatusNotFound},
		"other namespace's call": {monitorURL(t, base, "elsewhere", a.Name, a.Name, monitorKey, later), http.StatusForbidden},
	} {
		if got := dialStatus(t, tc.url); got != tc.want {
			t.Errorf("%s: status %d, want %d", name, got, tc.want)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	mon, _, err := websocket.Dial(ctx, monitorURL(t, base, ns, a.Name, a.Name, monitorKey, later), nil)
	if err != nil {
		t.Fatalf("monitor dial: %v", err)
	}
	defer func() { _ = mon.CloseNow() }()
	mon.SetReadLimit(1 << 20)
	var texts []gateway.MonitorMessage
	loud := map[byte]int{}
	go func() {
		// The bot speaks once the listener is on.
		time.Sleep(200 * time.Millisecond)
		botA.sendAudio(t, 8000, 400, 320)
	}()
	for loud[gateway.MonitorSourceCall] == 0 || loud[gateway.MonitorSourceBot] == 0 || len(texts) < 3 {
		typ, data, err := mon.Read(ctx)
		if err != nil {
			t.Fatalf("monitor read: %v (texts %+v, loud frames %v)", err, texts, loud)
		}
		if typ == websocket.MessageText {
			var m gateway.MonitorMessage
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatalf("monitor text %q: %v", data, err)
			}
			texts = append(texts, m)
			continue
		}
		if len(data) > 1 && nonSilent(data[1:]) {
			loud[data[0]]++
		}
	}
	if h := texts[0]; h.Type != gateway.MonitorHello || h.Call != a.Name || h.SampleRate != 8000 || h.ListenMode != "both" || h.Attempt != 1 {
		t.Errorf("hello %+v", h)
	}
	if m := texts[1]; m.Type != "assist" || m.Text != "offer the 12-month plan" {
		t.Errorf("first line %+v", m)
	}
	if m := texts[2]; m.Type != "transcript" || m.Speaker != "customer" || m.Text != "how much is it?" {
		t.Errorf("second line %+v", m)
	}

	// The call ends: the listener hears ended, then a normal close.
	editSpec(t, a.Name, func(c *voicev1alpha1.Call) { c.Spec.Hangup = true })
	editSpec(t, b.Name, func(c *voicev1alpha1.Call) { c.Spec.Hangup = true })
	ended := false
	for {
		typ, data, err := mon.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Errorf("monitor closed with %v, want a normal closure", err)
			}
			break
		}
		if typ == websocket.MessageText && strings.Contains(string(data), `"type":"ended"`) {
			ended = true
		}
	}
	if !ended {
		t.Error("the listener was not told the stream ended")
	}
}

// TestMonitorStalledListenerDropped: a listener that stops reading is cut
// off while the bot's audio keeps reaching Piopiy in full, and its
// goroutines are gone afterwards.
func TestMonitorStalledListenerDropped(t *testing.T) {
	g := monitorGateway(t)
	base := g.url
	c := newCall(t, "mon-stall", nil)
	id := dial(t, c, streamURL(t, base, ns, c.Name, 1, time.Now().Add(10*time.Minute)))
	bot := bots.wait(t, c.Name)
	waitStatus(t, c.Name, "Connected", func(c *voicev1alpha1.Call) bool { return streamState(c) == voicev1alpha1.StreamPhaseConnected })

	// A listener that never reads, with the smallest receive window the
	// kernel gives, so the gateway's writes to it block soon.
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024) })
	}}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	stalled, _, err := websocket.Dial(ctx, monitorURL(t, base, ns, c.Name, c.Name, monitorKey, time.Now().Add(time.Minute)),
		&websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stalled.CloseNow() }()
	eventually(t, "the listener attached", func() bool {
		return g.counter(t, "callfleet_gateway_monitor_listeners", nil) == 1 && monitorGoroutines() == 1
	})

	// 20 s of bot audio as fast as the bot can send it: far more than the
	// listener's queue and socket buffers hold.
	const ms, chunk = 20000, 320
	bot.sendAudio(t, 8000, ms, chunk)
	want := int64(8000 * ms / 1000 * 2 / chunk)
	waitSim(t, id, "every bot frame relayed to Piopiy", func(_ sim.CallRecord, s sim.StreamRecord) bool { return s.Audio.Frames >= want })
	eventually(t, "the stalled listener dropped", func() bool {
		return g.counter(t, "callfleet_gateway_monitor_dropped_total", nil) == 1 && g.counter(t, "callfleet_gateway_monitor_listeners", nil) == 0
	})
	if s := streamState(getCall(t, c.Name)); s != voicev1alpha1.StreamPhaseConnected {
		t.Errorf("stream %s after the listener was dropped, want Connected", s)
	}
	eventually(t, "the listener's goroutines gone", func() bool { return monitorGoroutines() == 0 })
	editSpec(t, c.Name, func(c *voicev1alpha1.Call) { c.Spec.Hangup = true })
}

// monitorGoroutines counts goroutines serving monitor sockets.
func monitorGoroutines() int {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Count(b.String(), "gateway.(*Gateway).serveMonitor(")
}

func nonSilent(pcm []byte) bool {
	for i := 0; i+1 < len(pcm); i += 2 {
		if int16(binary.LittleEndian.Uint16(pcm[i:])) != 0 {
			return true
		}
	}
	return false
}
