package gateway

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/go-logr/logr"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// Monitor sockets: a supervisor's browser listens to a live call and reads
// the bot's assist and transcript lines, through the console (which signs a
// monitortoken for one user and one Call after the cluster authorized it).
//
// The relay must never wait for a listener. Each listener has a bounded
// queue that the relay fills without blocking; a listener whose queue is
// full has stopped reading (or reads slower than the call talks) and is cut
// off at once. The call and the bot never notice.

// Monitor wire format. Audio is a binary message: one source byte, then the
// L16 (16-bit signed little-endian mono) samples as relayed. Everything else
// is a JSON text message (MonitorMessage).
const (
	// MonitorSourceCall is audio from Piopiy: the customer, and after a
	// handoff with listenMode both the customer and the agent mixed.
	MonitorSourceCall byte = 0
	// MonitorSourceBot is audio the bot plays into the call.
	MonitorSourceBot byte = 1
)

// Monitor message types (besides the bot's assist and transcript lines).
const (
	MonitorHello = "hello" // first message: the call and its audio format
	MonitorEnded = "ended" // the stream ended; the socket closes next
)

// MonitorMessage is a JSON message on a monitor socket.
type MonitorMessage struct {
	Type       string    `json:"type"` // hello, assist, transcript, ended
	Call       string    `json:"call,omitempty"`
	Namespace  string    `json:"namespace,omitempty"`
	Attempt    int32     `json:"attempt,omitempty"`
	SampleRate int       `json:"sampleRate,omitempty"`
	ListenMode string    `json:"listenMode,omitempty"`
	Speaker    string    `json:"speaker,omitempty"` // transcript: customer, agent, bot
	Text       string    `json:"text,omitempty"`
	Reason     string    `json:"reason,omitempty"` // ended
	Time       time.Time `json:"time,omitzero"`
}

// Bounds of the monitor fan-out.
const (
	// monitorQueue is how many messages a listener may fall behind: about
	// 0.6 s of both directions of 20 ms frames. Beyond it the listener is
	// dropped, not the audio delayed.
	monitorQueue = 64
	// maxLineBytes bounds one assist or transcript text kept in the ring.
	maxLineBytes = 4 << 10
	// monitorWriteTimeout bounds one write to a listener; a browser that
	// cannot take a frame in this long is gone.
	monitorWriteTimeout = 5 * time.Second
	// endedGrace is how long a listener has to take the ended message once
	// the stream is over.
	endedGrace = 2 * time.Second

	whySlow = "listener too slow"
)

// monitorHub fans one session's audio and lines out to its listeners and
// keeps the last lines for listeners that join late.
type monitorHub struct {
	n          atomic.Int32 // listeners: the relay's only cost when zero
	dropped    func()       // a listener was cut off for being slow (metric)
	listenMode string       // the call's, for hello

	mu     sync.Mutex
	subs   map[*listener]struct{}
	lines  [][]byte // ring of encoded assist/transcript messages
	head   int      // index of the oldest line once the ring is full
	closed bool
	ended  []byte // the ended message, once closed
}

func newMonitorHub(lines int, dropped func()) *monitorHub {
	if lines < 1 {
		lines = 1
	}
	if dropped == nil {
		dropped = func() {}
	}
	return &monitorHub{subs: map[*listener]struct{}{}, lines: make([][]byte, 0, lines), dropped: dropped}
}

// newMonitor is a session's hub.
func (g *Gateway) newMonitor(call *voicev1alpha1.Call) *monitorHub {
	h := newMonitorHub(g.opts.MonitorLines, g.mon.dropped.Inc)
	h.listenMode = string(call.Spec.Stream.ListenMode)
	if h.listenMode == "" {
		h.listenMode = string(voicev1alpha1.ListenCaller) // the CRD default
	}
	return h
}

// listener is one monitor socket's queue.
type listener struct {
	q    chan monitorItem
	gone chan struct{} // closed when the hub drops it (slow, or the call ended)
	once sync.Once
	why  string // set before gone closes
	// abort cancels the socket's writes: at once for a slow listener (a
	// write blocked on it ends now), after endedGrace when the call ended.
	ctx   context.Context
	abort context.CancelFunc
}

type monitorItem struct {
	text bool
	b    []byte // shared by every listener: never modified after send
}

func (l *listener) drop(why string) {
	l.once.Do(func() {
		l.why = why
		close(l.gone)
		if why == whySlow {
			l.abort()
		} else {
			time.AfterFunc(endedGrace, l.abort)
		}
	})
}

// audio hands a frame to every listener without waiting. data is the
// relay's buffer and is copied (once, for all listeners) only when someone
// listens.
func (h *monitorHub) audio(source byte, data []byte) {
	if h.n.Load() == 0 || len(data) == 0 {
		return
	}
	b := make([]byte, 1+len(data))
	b[0] = source
	copy(b[1:], data)
	h.publish(monitorItem{b: b})
}

// line records an assist or transcript line for late joiners and sends it
// to every listener.
func (h *monitorHub) line(m MonitorMessage) {
	if len(m.Text) > maxLineBytes {
		m.Text = m.Text[:maxLineBytes]
	}
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	h.mu.Lock()
	if len(h.lines) < cap(h.lines) {
		h.lines = append(h.lines, b)
	} else {
		h.lines[h.head] = b
		h.head = (h.head + 1) % len(h.lines)
	}
	h.mu.Unlock()
	h.publish(monitorItem{text: true, b: b})
}

func (h *monitorHub) publish(it monitorItem) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for l := range h.subs {
		select {
		case l.q <- it:
		default:
			// Full: this listener stopped keeping up. Cut it off rather
			// than hold the relay or let its audio go stale.
			delete(h.subs, l)
			h.n.Add(-1)
			l.drop(whySlow)
			h.dropped()
		}
	}
}

// join adds a listener, first queueing hello and the lines so far. It
// returns nil when the stream has already ended.
func (h *monitorHub) join(hello []byte) *listener {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	// Room for the backlog on top of the queue: joining is never a drop.
	l := &listener{q: make(chan monitorItem, monitorQueue+len(h.lines)+1), gone: make(chan struct{})}
	l.ctx, l.abort = context.WithCancel(context.Background())
	l.q <- monitorItem{text: true, b: hello}
	for i := range h.lines {
		l.q <- monitorItem{text: true, b: h.lines[(h.head+i)%len(h.lines)]}
	}
	h.subs[l] = struct{}{}
	h.n.Add(1)
	return l
}

func (h *monitorHub) leave(l *listener) {
	h.mu.Lock()
	if _, ok := h.subs[l]; ok {
		delete(h.subs, l)
		h.n.Add(-1)
	}
	h.mu.Unlock()
}

// close ends every listener: they are sent ended (when their queue has
// room) and their sockets close.
func (h *monitorHub) close(reason string) {
	b, _ := json.Marshal(MonitorMessage{Type: MonitorEnded, Reason: reason})
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed, h.ended = true, b
	for l := range h.subs {
		delete(h.subs, l)
		h.n.Add(-1)
		l.drop(reason)
	}
}

func (h *monitorHub) listeners() int { return int(h.n.Load()) }

// serve writes a listener's queue to its socket until the socket fails,
// the browser goes away, or the hub drops the listener.
func (h *monitorHub) serve(c *websocket.Conn, l *listener, log logr.Logger) {
	defer h.leave(l)
	defer l.abort()
	// The browser sends nothing; CloseRead answers its pings and close.
	ctx := c.CloseRead(l.ctx)
	write := func(it monitorItem) error {
		typ := websocket.MessageBinary
		if it.text {
			typ = websocket.MessageText
		}
		wctx, cancel := context.WithTimeout(ctx, monitorWriteTimeout)
		defer cancel()
		return c.Write(wctx, typ, it.b)
	}
	for {
		select {
		case it := <-l.q:
			if err := write(it); err != nil {
				_ = c.CloseNow()
				return
			}
		case <-ctx.Done():
			_ = c.CloseNow()
			return
		case <-l.gone:
			h.mu.Lock()
			ended := h.ended
			h.mu.Unlock()
			if l.why == whySlow {
				log.Info("monitor listener dropped", "why", l.why)
				// No close handshake with a peer that does not read.
				_ = c.CloseNow()
				return
			}
			// The stream is over: what was queued, then ended, within
			// endedGrace (abort cuts a listener that does not take it).
			for drained := false; !drained; {
				select {
				case it := <-l.q:
					if write(it) != nil {
						return
					}
				default:
					drained = true
				}
			}
			if ended != nil {
				_ = write(monitorItem{text: true, b: ended})
			}
			_ = c.Close(websocket.StatusNormalClosure, l.why)
			return
		}
	}
}

// Transcript speakers.
var speakers = map[string]bool{"customer": true, "agent": true, "bot": true}

// monitorLine passes a bot's assist or transcript line to the listeners.
func (s *session) monitorLine(msg BotMessage) {
	if msg.Text == "" || (msg.Type == MsgTranscript && !speakers[msg.Speaker]) {
		s.log.V(1).Info("ignoring bot line", "type", msg.Type, "speaker", msg.Speaker)
		return
	}
	m := MonitorMessage{Type: msg.Type, Text: msg.Text, Time: s.g.opts.Now().UTC()}
	if msg.Type == MsgTranscript {
		m.Speaker = msg.Speaker
	}
	s.mon.line(m)
}
