package gateway

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/go-logr/logr"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// How a session ended (the ended_by label and the teardown it needs).
const (
	endedByPlatform = "platform"
	endedByBot      = "bot"
	endedByShutdown = "shutdown"
	endedByTimeout  = "timeout"
)

// endCause is the first reason a session ended.
type endCause struct {
	by     string
	code   websocket.StatusCode // the platform socket's close code, as reported in status
	reason string
	// closePlatform: the gateway ends the platform socket with code/reason;
	// otherwise the platform already closed it (or it is dead).
	closePlatform bool
	botCode       websocket.StatusCode // how the bot socket is closed
	// botGone: the bot's socket ended while the platform's is up; the
	// gateway may reconnect to the bot instead of ending the call.
	botGone bool
}

// session is one Piopiy stream socket and its bot socket.
type session struct {
	g    *Gateway
	key  sessionKey
	log  logr.Logger
	rate int

	platform *websocket.Conn
	toBot    *botQueue
	mon      *monitorHub // listen-in and the assist feed

	botMu      sync.Mutex
	bot        *websocket.Conn // the bot socket now; nil while reconnecting
	botClosed  bool            // teardown closed the bot: no new socket
	reconnects int             // bot sockets opened again for this call

	done    chan struct{} // closed by finish
	endOnce sync.Once
	cause   endCause // set before done closes

	stopSent atomic.Bool // stop went to Piopiy: no more audio to it
	drained  atomic.Bool // the drain hung the call up
	// handoffBusy is set while a bot handoff request is being recorded.
	handoffBusy atomic.Bool

	mu    sync.Mutex // control state below; serializes control frames
	ctl   controlState
	rep   streamReport  // what status.stream should say
	wrote *streamReport // what it was last patched to (nil: never)

	statusMu sync.Mutex // one status patch at a time, in order

	results resultWriter // status.result reports (result.go)
}

func newSession(g *Gateway, key sessionKey, call *voicev1alpha1.Call, platform, bot *websocket.Conn, log logr.Logger) *session {
	rate := sampleRate(call)
	s := &session{
		g:        g,
		key:      key,
		log:      log,
		rate:     rate,
		platform: platform,
		bot:      bot,
		done:     make(chan struct{}),
		mon:      g.newMonitor(call),
	}
	// A 20 ms frame at the call's rate; larger frames grow their buffer once.
	s.toBot = newBotQueue(g.opts.MaxBufferedFrames, rate/50*2, g.metrics.droppedToBot.Inc)
	s.ctl = newControlState(call)
	s.rep = streamReport{
		State:         voicev1alpha1.StreamPhaseConnected,
		Pod:           g.opts.PodName,
		Attempt:       key.Attempt,
		Connected:     g.opts.Now(),
		Announcements: s.ctl.playedList(),
		VoicemailTime: voicemailOf(call, key.Attempt),
	}
	return s
}

// finish records why the session ends (first caller wins) and wakes run.
func (s *session) finish(c endCause) {
	s.endOnce.Do(func() {
		s.cause = c
		close(s.done)
	})
}

func (s *session) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// run relays until either side ends, then tears down and reports. call is
// the Call as read when the socket was accepted.
func (s *session) run(ctx context.Context, call *voicev1alpha1.Call) {
	m := s.g.metrics
	m.active.Inc()
	defer m.active.Dec()
	s.log.Info("stream connected")

	var wg sync.WaitGroup
	spawn := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	spawn(func() { s.finish(s.readPlatform()) })
	botDone := make(chan struct{})
	spawn(func() {
		defer close(botDone)
		if c, lost := s.botLoop(ctx, call, spawn); lost {
			s.finish(c)
		}
	})
	spawn(func() { s.keepalive(s.platform, "platform") })

	// Control that was already asked for (paused, announcements, ...) is
	// applied at once; the connect report goes out with it in one patch.
	// The Call is read again: a change made after the socket was checked but
	// before the session was registered triggered no reconcile for it.
	fresh := &voicev1alpha1.Call{}
	if err := s.g.client.Get(ctx, s.key.NamespacedName, fresh); err == nil {
		call = fresh
	}
	if !s.ended() {
		if err := s.apply(ctx, call); err != nil {
			s.log.Error(err, "applying call control on connect")
		}
	}

	<-s.done
	c := s.cause
	s.log.Info("stream ending", "endedBy", c.by, "code", int(c.code), "reason", c.reason)
	s.mon.close(c.reason)
	s.teardown(c, &wg, botDone)

	by := c.by
	if s.drained.Load() && by == endedByPlatform {
		by = endedByDrain
	}
	m.streams.WithLabelValues(by).Inc()
	s.reportClosed(ctx, c)
}

// teardown closes both sockets: the bot hears "stop" first, the platform
// gets a close frame when the gateway ends the stream.
func (s *session) teardown(c endCause, wg *sync.WaitGroup, botDone <-chan struct{}) {
	s.notifyStop(c.reason)
	s.toBot.close()

	var closers sync.WaitGroup
	closers.Add(2)
	go func() {
		defer closers.Done()
		if c.closePlatform {
			_ = s.platform.Close(c.code, c.reason)
		} else {
			_ = s.platform.CloseNow()
		}
	}()
	go func() {
		defer closers.Done()
		// Let the writer hand the bot its stop event, but never wait on a
		// stuck bot for long.
		select {
		case <-botDone:
		case <-time.After(2 * time.Second):
		}
		code := c.botCode
		if code == 0 {
			code = websocket.StatusNormalClosure
		}
		if bot := s.currentBot(); bot != nil {
			_ = bot.Close(code, c.reason)
		}
	}()
	waitTimeout(&closers, 10*time.Second)
	// Close handshakes are bounded by the library (5 s); make sure every
	// goroutine sees a closed socket.
	_ = s.platform.CloseNow()
	s.closeBot()
	wg.Wait()
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(d):
	}
}

// keepalive pings a socket; one that does not answer in time is dead (a
// half-open TCP connection would otherwise hold the call's slot forever).
func (s *session) keepalive(c *websocket.Conn, side string) {
	t := time.NewTicker(s.g.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.g.opts.PongTimeout)
		err := c.Ping(ctx)
		cancel()
		if err == nil {
			continue
		}
		if s.ended() {
			return
		}
		reason := side + " did not answer a ping"
		if side == "platform" {
			s.finish(endCause{by: endedByTimeout, code: websocket.StatusAbnormalClosure, reason: reason})
		} else {
			s.finish(endCause{by: endedByTimeout, code: websocket.StatusInternalError, reason: reason, closePlatform: true, botCode: websocket.StatusGoingAway})
		}
		_ = c.CloseNow()
		return
	}
}

// platformEnded classifies the platform reader's error.
func (s *session) platformEnded(err error) endCause {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		reason := ce.Reason
		if reason == "" {
			reason = closeText(ce.Code)
		}
		return endCause{by: endedByPlatform, code: ce.Code, reason: reason}
	}
	// Piopiy ends a call by dropping the socket (its documented disconnect
	// is 1006), so after our own hangup a drop is the expected end.
	s.mu.Lock()
	hungUp := s.ctl.hangupSent
	s.mu.Unlock()
	if hungUp {
		return endCause{by: endedByPlatform, code: websocket.StatusAbnormalClosure, reason: "platform dropped the socket after the hangup"}
	}
	return endCause{by: endedByPlatform, code: websocket.StatusAbnormalClosure, reason: "platform connection lost"}
}

// botLost ends the stream when the bot goes away: a call without its bot
// has nobody to talk to, so the platform socket is closed too (unless the
// gateway reconnects to the bot, see botLoop).
func (s *session) botLost(err error) endCause {
	var ce websocket.CloseError
	if errors.As(err, &ce) && (ce.Code == websocket.StatusNormalClosure || ce.Code == websocket.StatusGoingAway) {
		return endCause{by: endedByBot, code: websocket.StatusNormalClosure, reason: "bot ended the stream", closePlatform: true, botCode: ce.Code, botGone: true}
	}
	return endCause{by: endedByBot, code: websocket.StatusInternalError, reason: "bot connection lost", closePlatform: true, botCode: websocket.StatusInternalError, botGone: true}
}

func closeText(code websocket.StatusCode) string {
	switch code {
	case websocket.StatusNormalClosure:
		return "normal closure"
	case websocket.StatusGoingAway:
		return "going away"
	case websocket.StatusAbnormalClosure:
		return "abnormal closure"
	}
	return code.String()
}

// notifyStop tells the bot the stream is over, once.
func (s *session) notifyStop(reason string) {
	s.mu.Lock()
	sent := s.ctl.botStopped
	s.ctl.botStopped = true
	s.mu.Unlock()
	if !sent {
		s.toBot.pushEvent(encodeEvent(Event{Type: MsgStop, Reason: reason}))
	}
}
