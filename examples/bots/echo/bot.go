package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Config tunes the echo bot.
type Config struct {
	HandoffAfterTurns int           // 0: never
	Silence           time.Duration // ends a turn
	MaxTurn           time.Duration // caller audio kept per turn
	BargeIn           bool
	Threshold         float64 // RMS above which a frame is speech
	// BeepHz is the answering-machine beep listened for (0: never); a tone
	// there for BeepMin makes the bot report voicemail.
	BeepHz  float64
	BeepMin time.Duration
	// Disposition is reported as the call's result after the first turn,
	// unless the Call's variables set `disposition`.
	Disposition string
	Log         *slog.Logger
}

func defaultConfig() Config {
	return Config{
		HandoffAfterTurns: 3,
		Silence:           400 * time.Millisecond,
		MaxTurn:           time.Second,
		Threshold:         500,
		BeepHz:            1000,
		BeepMin:           200 * time.Millisecond,
		Disposition:       "Echoed",
		Log:               slog.Default(),
	}
}

// The bot protocol's JSON messages (docs/gateway.md).
type start struct {
	Type       string            `json:"type"`
	Call       string            `json:"call"`
	Namespace  string            `json:"namespace"`
	Attempt    int               `json:"attempt"`
	CMIUUID    string            `json:"cmiuuid"`
	From       string            `json:"from"`
	To         string            `json:"to"`
	Variables  map[string]string `json:"variables"`
	SampleRate int               `json:"sampleRate"`
	ListenMode string            `json:"listenMode"`
}

type message struct {
	Type    string `json:"type"`
	Name    string `json:"name,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Phase   string `json:"phase,omitempty"`
	Agent   string `json:"agent,omitempty"`
	Text    string `json:"text,omitempty"`    // assist, transcript
	Speaker string `json:"speaker,omitempty"` // transcript: customer, agent, bot
	// result
	Disposition string            `json:"disposition,omitempty"`
	Summary     string            `json:"summary,omitempty"`
	Data        map[string]string `json:"data,omitempty"`
}

type bot struct{ cfg Config }

func newBot(cfg Config) http.Handler { return &bot{cfg: cfg} }

func (b *bot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		b.cfg.Log.Warn("not a websocket", "err", err)
		return
	}
	c.SetReadLimit(1 << 20)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	typ, data, err := c.Read(ctx)
	var st start
	if err != nil || typ != websocket.MessageText || json.Unmarshal(data, &st) != nil || st.Type != "start" {
		_ = c.Close(websocket.StatusProtocolError, "expected a start frame")
		return
	}
	if st.SampleRate == 0 {
		st.SampleRate = 8000
	}
	log := b.cfg.Log.With("call", st.Namespace+"/"+st.Call, "attempt", st.Attempt)
	log.Info("start", "from", st.From, "to", st.To, "sampleRate", st.SampleRate, "listenMode", st.ListenMode, "variables", st.Variables)
	s := &session{cfg: b.cfg, log: log, c: c, rate: st.SampleRate, play: newPlayer(ctx, c, st.SampleRate, log),
		disposition: b.cfg.Disposition,
		beep:        beepDetector{rate: st.SampleRate, hz: b.cfg.BeepHz, minMs: int(b.cfg.BeepMin.Milliseconds()), floor: b.cfg.Threshold}}
	if d := st.Variables["disposition"]; d != "" {
		s.disposition = d
	}
	s.play.enqueue(greeting(st.SampleRate), "greeting")
	// The echo bot has no speech recognition: its transcript lines say what
	// it heard and did, so the console's feed shows the protocol at work.
	s.send(ctx, message{Type: "transcript", Speaker: "bot", Text: "[greeting tones]"})
	s.send(ctx, message{Type: "assist", Text: fmt.Sprintf("New call to %s: the bot greets, then echoes each turn.", st.To)})
	err = s.listen(ctx)
	if websocket.CloseStatus(err) == -1 && ctx.Err() == nil {
		log.Warn("socket lost", "err", err)
	}
	_ = c.Close(websocket.StatusNormalClosure, "bye")
}

// session is one call.
type session struct {
	cfg  Config
	log  *slog.Logger
	c    *websocket.Conn
	rate int
	play *player

	turn     []byte // caller audio of the current turn
	silentMs int    // silence since the caller last spoke
	turns    int
	handoff  bool

	disposition string
	beep        beepDetector
	voicemail   bool
}

func (s *session) listen(ctx context.Context) error {
	frameMs := 20
	for {
		typ, data, err := s.c.Read(ctx)
		if err != nil {
			return err
		}
		if typ == websocket.MessageText {
			if done := s.onEvent(ctx, data); done {
				return nil
			}
			continue
		}
		if len(data) > 0 {
			frameMs = max(1, len(data)/2*1000/s.rate)
		}
		s.onAudio(ctx, data, frameMs)
	}
}

// onAudio is a simple energy VAD: speech accumulates a turn; a pause (or a
// full buffer) ends it and the bot says it back.
func (s *session) onAudio(ctx context.Context, pcm []byte, frameMs int) {
	if s.voicemail {
		return // the gateway deals with the box now
	}
	if s.beep.feed(pcm, frameMs) {
		s.voicemail = true
		s.play.clear()
		s.log.Info("voicemail beep heard")
		s.send(ctx, message{Type: "voicemail"})
		return
	}
	speech := rms(pcm) > s.cfg.Threshold
	if speech && s.cfg.BargeIn && s.play.busy() {
		s.log.Info("barge-in: caller talks over the bot")
		s.play.clear()
		s.send(ctx, message{Type: "clear"})
	}
	switch {
	case speech:
		s.silentMs = 0
		if len(s.turn) < int(s.cfg.MaxTurn.Seconds()*float64(s.rate))*2 {
			s.turn = append(s.turn, pcm...)
		}
	case len(s.turn) > 0:
		s.silentMs += frameMs
		if time.Duration(s.silentMs)*time.Millisecond >= s.cfg.Silence {
			s.endTurn(ctx)
		}
	}
}

func (s *session) endTurn(ctx context.Context) {
	s.turns++
	name := fmt.Sprintf("turn-%d", s.turns)
	s.log.Info("caller turn", "turn", s.turns, "ms", len(s.turn)/2*1000/s.rate)
	ms := len(s.turn) / 2 * 1000 / s.rate
	s.play.enqueue(s.turn, name)
	s.turn, s.silentMs = nil, 0
	s.send(ctx, message{Type: "transcript", Speaker: "customer", Text: fmt.Sprintf("[%d ms of speech]", ms)})
	s.send(ctx, message{Type: "transcript", Speaker: "bot", Text: fmt.Sprintf("[echoes turn %d]", s.turns)})
	if s.turns == 1 && s.disposition != "" {
		s.send(ctx, message{Type: "result", Disposition: s.disposition,
			Summary: "the caller spoke and the bot echoed it", Data: map[string]string{"turns": "1"}})
	}
	n := s.cfg.HandoffAfterTurns
	if n > 0 && s.turns == n-1 {
		s.send(ctx, message{Type: "assist", Text: "The customer will be handed to an agent after the next turn."})
	}
	if n > 0 && s.turns >= n && !s.handoff {
		s.handoff = true
		s.log.Info("asking for a human", "turns", s.turns)
		s.send(ctx, message{Type: "assist", Text: fmt.Sprintf("Handing off after %d turns: greet the customer by name.", s.turns)})
		s.send(ctx, message{Type: "handoff", Reason: "caller asked for a human"})
	}
}

// onEvent logs the gateway's events; it reports true when the stream ends.
func (s *session) onEvent(ctx context.Context, data []byte) bool {
	var m message
	if err := json.Unmarshal(data, &m); err != nil {
		s.log.Warn("unreadable event", "err", err)
		return false
	}
	switch m.Type {
	case "mark":
		s.log.Info("mark: audio sent", "name", m.Name)
	case "paused", "resumed":
		s.log.Info(m.Type)
	case "handoff":
		s.log.Info("handoff", "phase", m.Phase, "agent", m.Agent, "reason", m.Reason)
		if m.Phase == "Bridged" {
			s.send(ctx, message{Type: "assist", Text: fmt.Sprintf("Agent %s is on the call; the bot keeps listening.", m.Agent)})
		}
	case "stop":
		s.log.Info("stop", "reason", m.Reason)
		return true
	default:
		s.log.Info("event", "type", m.Type)
	}
	return false
}

func (s *session) send(ctx context.Context, m message) {
	b, _ := json.Marshal(m)
	if err := s.c.Write(ctx, websocket.MessageText, b); err != nil {
		s.log.Warn("send", "type", m.Type, "err", err)
	}
}

// player sends queued clips paced in real time, 20 ms a frame, then a mark
// named after the clip, so the gateway's echo of the mark says it was sent.
type player struct {
	ctx  context.Context
	c    *websocket.Conn
	rate int
	log  *slog.Logger

	mu      sync.Mutex
	queue   []clip
	playing bool
	gen     int // bumped by clear: the clip being played stops
	wake    chan struct{}
}

type clip struct {
	pcm  []byte
	name string
}

func newPlayer(ctx context.Context, c *websocket.Conn, rate int, log *slog.Logger) *player {
	p := &player{ctx: ctx, c: c, rate: rate, log: log, wake: make(chan struct{}, 1)}
	go p.run()
	return p
}

func (p *player) enqueue(pcm []byte, name string) {
	p.mu.Lock()
	p.queue = append(p.queue, clip{pcm: pcm, name: name})
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *player) busy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.playing || len(p.queue) > 0
}

func (p *player) clear() {
	p.mu.Lock()
	p.queue = nil
	p.gen++
	p.mu.Unlock()
}

func (p *player) run() {
	frame := p.rate / 50 * 2
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.playing = false
			p.mu.Unlock()
			select {
			case <-p.wake:
				continue
			case <-p.ctx.Done():
				return
			}
		}
		cl := p.queue[0]
		p.queue = p.queue[1:]
		p.playing = true
		gen := p.gen
		p.mu.Unlock()

		for off := 0; off < len(cl.pcm); off += frame {
			select {
			case <-tick.C:
			case <-p.ctx.Done():
				return
			}
			p.mu.Lock()
			cut := p.gen != gen
			p.mu.Unlock()
			if cut {
				break
			}
			if err := p.c.Write(p.ctx, websocket.MessageBinary, cl.pcm[off:min(off+frame, len(cl.pcm))]); err != nil {
				return
			}
		}
		b, _ := json.Marshal(message{Type: "mark", Name: cl.name})
		if err := p.c.Write(p.ctx, websocket.MessageText, b); err != nil {
			return
		}
		p.log.Info("played", "clip", cl.name, "ms", len(cl.pcm)/2*1000/p.rate)
	}
}
