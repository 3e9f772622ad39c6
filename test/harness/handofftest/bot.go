package handofftest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/callfleet/callfleet/internal/gateway"
)

// Bot is a bot speaking the gateway's bot protocol: it takes every call,
// keeps the JSON events it is sent and, for the calls asked for, the audio
// with its arrival times. It never speaks unless told to.
type Bot struct {
	URL string
	srv *httptest.Server

	mu     sync.Mutex
	conns  map[string]*BotConn // by call name, the latest socket
	record map[string]bool
	wait   map[string][]chan *BotConn
}

// BotConn is one socket the gateway opened for a call.
type BotConn struct {
	Start gateway.StartMessage
	c     *websocket.Conn

	mu     sync.Mutex
	texts  []string
	frames []Frame
	count  int
	closed chan struct{}
}

// Frame is a binary audio frame as the bot received it.
type Frame struct {
	At   time.Time
	Data []byte
}

// NewBot starts a bot on a local port.
func NewBot() *Bot {
	b := &Bot{conns: map[string]*BotConn{}, record: map[string]bool{}, wait: map[string][]chan *BotConn{}}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	b.URL = "ws" + strings.TrimPrefix(b.srv.URL, "http") + "/"
	return b
}

// Close stops the bot.
func (b *Bot) Close() { b.srv.Close() }

// Record keeps the audio of the named call's sockets.
func (b *Bot) Record(call string) {
	b.mu.Lock()
	b.record[call] = true
	b.mu.Unlock()
}

func (b *Bot) serve(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(1 << 20)
	ctx := context.Background()
	typ, data, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText {
		_ = c.Close(websocket.StatusProtocolError, "want start")
		return
	}
	bc := &BotConn{c: c, closed: make(chan struct{}), texts: []string{string(data)}}
	if err := json.Unmarshal(data, &bc.Start); err != nil {
		_ = c.Close(websocket.StatusProtocolError, "bad start")
		return
	}
	defer close(bc.closed)
	b.mu.Lock()
	b.conns[bc.Start.Call] = bc
	rec := b.record[bc.Start.Call]
	for _, ch := range b.wait[bc.Start.Call] {
		ch <- bc
	}
	delete(b.wait, bc.Start.Call)
	b.mu.Unlock()
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		bc.mu.Lock()
		if typ == websocket.MessageBinary {
			bc.count++
			if rec {
				bc.frames = append(bc.frames, Frame{At: time.Now(), Data: data})
			}
		} else {
			bc.texts = append(bc.texts, string(data))
		}
		bc.mu.Unlock()
	}
}

// Conn waits for the gateway to open the named call's socket.
func (b *Bot) Conn(call string, timeout time.Duration) (*BotConn, error) {
	b.mu.Lock()
	if bc, ok := b.conns[call]; ok {
		b.mu.Unlock()
		return bc, nil
	}
	ch := make(chan *BotConn, 1)
	b.wait[call] = append(b.wait[call], ch)
	b.mu.Unlock()
	select {
	case bc := <-ch:
		return bc, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("the gateway opened no bot socket for %s within %s", call, timeout)
	}
}

// Send writes a JSON frame to the gateway.
func (bc *BotConn) Send(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return bc.c.Write(ctx, websocket.MessageText, data)
}

// Events returns the JSON messages of a type received after start.
func (bc *BotConn) Events(typ string) []map[string]any {
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

// Frames returns the count of audio frames received.
func (bc *BotConn) Frames() int {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	return bc.count
}

// AudioBetween returns the recorded L16 audio received in [from, to).
func (bc *BotConn) AudioBetween(from, to time.Time) []byte {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	var out []byte
	for _, f := range bc.frames {
		if !f.At.Before(from) && f.At.Before(to) {
			out = append(out, f.Data...)
		}
	}
	return out
}

// Closed reports whether the socket has ended.
func (bc *BotConn) Closed() bool {
	select {
	case <-bc.closed:
		return true
	default:
		return false
	}
}

// ToneLevel is the normalised Goertzel magnitude of hz in L16 little-endian
// audio at rate: about 0.3 × the share of samples a party at that tone
// talks in (the sim's voices are 0.3 of full scale), near 0 when absent.
func ToneLevel(pcm []byte, rate int, hz float64) float64 {
	n := len(pcm) / 2
	if n == 0 {
		return 0
	}
	w := 2 * math.Pi * hz / float64(rate)
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for i := 0; i < n; i++ {
		x := float64(int16(binary.LittleEndian.Uint16(pcm[2*i:]))) / math.MaxInt16
		s0 := x + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * math.Sqrt(math.Max(power, 0)) / float64(n)
}
