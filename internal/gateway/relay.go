package gateway

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/coder/websocket"

	"github.com/callfleet/callfleet/pkg/piopiy"
)

// The audio paths use context.Background for socket reads and writes on
// purpose: coder/websocket arms a timer per call for a context that can be
// cancelled, which at 50 frames a second per direction per call is most of
// the relay's cost. Sockets are unblocked by closing them instead (teardown,
// keepalive).

// readPlatform moves platform audio into the bot queue until the socket ends.
// Each frame is read straight into a recycled buffer: one copy, no
// allocation.
func (s *session) readPlatform() endCause {
	m := s.g.metrics
	for {
		typ, r, err := s.platform.Reader(context.Background())
		if err != nil {
			return s.platformEnded(err)
		}
		f := s.toBot.get()
		f.data, err = readInto(r, f.data)
		if err != nil {
			s.toBot.put(f)
			return s.platformEnded(err)
		}
		if typ != websocket.MessageBinary || len(f.data) == 0 {
			// Piopiy sends no text frames today; tolerate any.
			s.toBot.put(f)
			continue
		}
		f.at = time.Now()
		m.fromPlatform.Inc()
		s.mon.audio(MonitorSourceCall, f.data) // before the queue owns f
		s.toBot.pushAudio(f)
	}
}

// writeBot hands queued events and audio to the bot socket. It returns nil
// when the queue is closed and drained of events, errBotSwitched when stop
// closes (that socket is gone; a reconnect may follow).
func (s *session) writeBot(bot *websocket.Conn, stop <-chan struct{}) error {
	m := s.g.metrics
	for {
		ev, f, ok := s.toBot.next(stop)
		if !ok {
			select {
			case <-stop:
				return errBotSwitched
			default:
				return nil
			}
		}
		if ev != nil {
			if err := bot.Write(context.Background(), websocket.MessageText, ev); err != nil {
				return err
			}
			continue
		}
		err := bot.Write(context.Background(), websocket.MessageBinary, f.data)
		if err == nil {
			m.toBot.Inc()
			m.latP2B.Observe(time.Since(f.at).Seconds())
		}
		s.toBot.put(f)
		if err != nil {
			return err
		}
	}
}

// readBot relays the bot's audio to Piopiy as streamAudio frames, encoded
// into one reused buffer, and acts on its JSON control frames.
func (s *session) readBot(ctx context.Context, bot *websocket.Conn) endCause {
	m := s.g.metrics
	in := make([]byte, 0, 4096)
	out := make([]byte, 0, 8192)
	var joined []byte
	var odd []byte // a byte left over when a bot splits a sample across messages
	for {
		typ, r, err := bot.Reader(context.Background())
		if err != nil {
			return s.botLost(err)
		}
		in, err = readInto(r, in[:0])
		if err != nil {
			return s.botLost(err)
		}
		at := time.Now()
		if typ == websocket.MessageText {
			s.onBotMessage(ctx, in)
			continue
		}
		m.fromBot.Inc()
		audio := in
		if len(odd) > 0 {
			joined = append(append(joined[:0], odd...), in...)
			audio, odd = joined, odd[:0]
		}
		if len(audio)%2 == 1 {
			odd = append(odd, audio[len(audio)-1])
			audio = audio[:len(audio)-1]
		}
		if len(audio) == 0 || s.stopSent.Load() {
			continue
		}
		s.mon.audio(MonitorSourceBot, audio)
		out, err = piopiy.AppendStreamAudioFrame(out[:0], piopiy.AudioRaw, s.rate, audio)
		if err != nil {
			s.log.Error(err, "encoding bot audio")
			continue
		}
		if err := s.platform.Write(context.Background(), websocket.MessageText, out); err != nil {
			if s.stopSent.Load() {
				continue // Piopiy is closing the socket after our stop
			}
			return endCause{by: endedByPlatform, code: websocket.StatusAbnormalClosure, reason: "platform connection lost"}
		}
		m.toPlatform.Inc()
		m.latB2P.Observe(time.Since(at).Seconds())
	}
}

// readInto reads a whole message into b[:0]'s storage, growing it if needed.
func readInto(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
