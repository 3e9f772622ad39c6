package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// errBotSwitched stops the writer of a bot socket that is gone.
var errBotSwitched = errors.New("bot socket replaced")

// Backoff between bot redials while BotReconnect lasts.
const (
	redialFirst = 100 * time.Millisecond
	redialMax   = time.Second
)

func (s *session) currentBot() *websocket.Conn {
	s.botMu.Lock()
	defer s.botMu.Unlock()
	return s.bot
}

// closeBot closes the bot socket for good: a redial finishing later is
// closed at once instead of being used.
func (s *session) closeBot() {
	s.botMu.Lock()
	bot := s.bot
	s.botClosed = true
	s.botMu.Unlock()
	if bot != nil {
		_ = bot.CloseNow()
	}
}

// setBot installs a redialled socket; false if the session is ending.
func (s *session) setBot(c *websocket.Conn) bool {
	s.botMu.Lock()
	defer s.botMu.Unlock()
	if s.botClosed || s.ended() {
		return false
	}
	s.bot = c
	s.reconnects++
	return true
}

// botLoop serves the bot socket and, when it drops mid-call, opens a new
// one for up to BotReconnect (a bot container restarting, a crash): the
// new socket gets a start frame marked resumed, and the caller's audio of
// the gap is dropped, not replayed. It returns the cause that ends the
// call, or lost=false when the session ended for another reason.
func (s *session) botLoop(ctx context.Context, call *voicev1alpha1.Call, spawn func(func())) (endCause, bool) {
	bot := s.currentBot()
	resumed := false
	for {
		cause, lost := s.serveBot(ctx, bot, call, resumed, spawn)
		if !lost || s.ended() {
			return endCause{}, false
		}
		if !s.mayReconnect(cause) {
			return cause, true
		}
		s.log.Info("bot socket lost; reconnecting", "reason", cause.reason, "for", s.g.opts.BotReconnect.String())
		s.botMu.Lock()
		s.bot = nil
		s.botMu.Unlock()
		_ = bot.CloseNow()
		next, err := s.redialBot(ctx)
		if err != nil {
			if s.ended() {
				return endCause{}, false
			}
			s.g.lm.botReconnects.WithLabelValues("gave_up").Inc()
			s.log.Error(err, "bot did not come back")
			cause.reason = "bot connection lost; no reconnect within " + s.g.opts.BotReconnect.String()
			return cause, true
		}
		if !s.setBot(next) {
			_ = next.CloseNow()
			return endCause{}, false
		}
		s.g.lm.botReconnects.WithLabelValues("ok").Inc()
		// What the caller said while no bot listened is not replayed: a
		// new bot would hear stale audio out of context.
		s.toBot.dropAudio()
		bot, resumed = next, true
		s.log.Info("bot socket reopened")
	}
}

// mayReconnect reports whether a bot loss is worth a reconnect: the
// gateway is configured to, and the bot did not end the stream on purpose
// (a 1000 close; 1001 is a bot going away, as one restarting does).
func (s *session) mayReconnect(c endCause) bool {
	return s.g.opts.BotReconnect > 0 && c.botGone && c.botCode != websocket.StatusNormalClosure
}

// serveBot sends the start frame on bot and relays until that socket ends
// (lost=true, with why) or the session ends and the writer has handed the
// bot its last events (lost=false).
func (s *session) serveBot(ctx context.Context, bot *websocket.Conn, call *voicev1alpha1.Call, resumed bool, spawn func(func())) (endCause, bool) {
	if err := s.sendStart(ctx, bot, call, resumed); err != nil {
		c := endCause{by: endedByBot, code: websocket.StatusInternalError, reason: "bot did not take the start frame", closePlatform: true, botCode: websocket.StatusInternalError}
		// A reopened bot that fails at once may be still starting.
		c.botGone = resumed
		return c, true
	}
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopAll := func() { stopOnce.Do(func() { close(stop) }) }
	read := make(chan endCause, 1)
	write := make(chan error, 1)
	var pingCause endCause
	var pingMu sync.Mutex
	spawn(func() { read <- s.readBot(ctx, bot) })
	spawn(func() { write <- s.writeBot(bot, stop) })
	spawn(func() {
		if s.pingBot(bot, stop) {
			pingMu.Lock()
			pingCause = endCause{by: endedByTimeout, code: websocket.StatusInternalError, reason: "bot did not answer a ping", closePlatform: true, botCode: websocket.StatusGoingAway, botGone: true}
			pingMu.Unlock()
		}
	})
	var cause endCause
	select {
	case cause = <-read:
		stopAll()
	case err := <-write:
		stopAll()
		if err == nil {
			// The queue closed: the session is ending and teardown closes
			// the bot (whose reader then returns).
			return endCause{}, false
		}
		cause = s.botLost(err)
		_ = bot.CloseNow()
		<-read
	}
	pingMu.Lock()
	if pingCause.by != "" {
		cause = pingCause
	}
	pingMu.Unlock()
	// botGone is false when the reader stopped on the platform side (a
	// failed write to Piopiy): no reconnect for that.
	return cause, true
}

// sendStart writes the start frame, marked resumed on a reopened socket.
func (s *session) sendStart(ctx context.Context, bot *websocket.Conn, call *voicev1alpha1.Call, resumed bool) error {
	if resumed {
		// Variables may have changed since the accept; the cache is current
		// enough.
		fresh := &voicev1alpha1.Call{}
		if err := s.g.client.Get(ctx, s.key.NamespacedName, fresh); err == nil {
			call = fresh
		}
	}
	msg := s.g.startMessage(call, s.key.Attempt)
	msg.Resumed = resumed
	b, err := jsonMarshal(msg)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, s.g.opts.ControlTimeout)
	defer cancel()
	return bot.Write(wctx, websocket.MessageText, b)
}

// pingBot pings the bot socket until stop; a bot that does not answer in
// time is dead and its socket is closed (true).
func (s *session) pingBot(bot *websocket.Conn, stop <-chan struct{}) bool {
	t := time.NewTicker(s.g.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return false
		case <-s.done:
			return false
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.g.opts.PongTimeout)
		err := bot.Ping(ctx)
		cancel()
		if err == nil {
			continue
		}
		select {
		case <-stop:
			return false
		default:
		}
		if s.ended() {
			return false
		}
		_ = bot.CloseNow()
		return true
	}
}

// redialBot opens the bot socket again, retrying until BotReconnect has
// passed or the session ends.
func (s *session) redialBot(ctx context.Context) (*websocket.Conn, error) {
	until := time.Now().Add(s.g.opts.BotReconnect)
	wait := redialFirst
	for {
		c, err := s.g.dialBot(ctx, s.key)
		if err == nil {
			return c, nil
		}
		if !time.Now().Add(wait).Before(until) {
			return nil, err
		}
		select {
		case <-s.done:
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, redialMax)
	}
}
