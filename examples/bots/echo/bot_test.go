package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestEchoBot drives the bot as the gateway does: start, then caller audio
// in 20 ms frames. The bot greets, echoes the turn after the pause (then a
// mark), and asks for a human after the configured number of turns.
func TestEchoBot(t *testing.T) {
	for _, tc := range []struct {
		name        string
		rate        int
		handoffTurn int
		wantHandoff bool
	}{
		{"8k, handoff after one turn", 8000, 1, true},
		{"16k, never hands off", 16000, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultConfig()
			cfg.HandoffAfterTurns = tc.handoffTurn
			cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
			srv := httptest.NewServer(newBot(cfg))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.CloseNow() }()
			start, _ := json.Marshal(start{Type: "start", Call: "demo", Namespace: "ns", Attempt: 1, SampleRate: tc.rate, ListenMode: "caller"})
			if err := c.Write(ctx, websocket.MessageText, start); err != nil {
				t.Fatal(err)
			}
			frame := tc.rate / 50 * 2
			// 300 ms of speech, then 600 ms of silence: one turn.
			speech := tone(tc.rate, 440, 300)
			go func() {
				for off := 0; off < len(speech); off += frame {
					_ = c.Write(ctx, websocket.MessageBinary, speech[off:off+frame])
				}
				for i := 0; i < 30; i++ {
					_ = c.Write(ctx, websocket.MessageBinary, make([]byte, frame))
				}
			}()

			var audio int
			var marks []string
			lines := map[string]int{}
			handoff := false
			for len(marks) < 2 || (tc.wantHandoff && !handoff) {
				typ, data, err := c.Read(ctx)
				if err != nil {
					t.Fatalf("read: %v (marks %v, handoff %v)", err, marks, handoff)
				}
				if typ == websocket.MessageBinary {
					if len(data) > frame || len(data)%2 != 0 {
						t.Fatalf("audio message of %d bytes, want 20 ms frames", len(data))
					}
					audio += len(data)
					continue
				}
				var m message
				if err := json.Unmarshal(data, &m); err != nil {
					t.Fatal(err)
				}
				switch m.Type {
				case "assist":
					lines["assist"]++
				case "transcript":
					lines[m.Speaker]++
				case "mark":
					marks = append(marks, m.Name)
				case "handoff":
					handoff = true
					if m.Reason != "caller asked for a human" {
						t.Errorf("handoff reason %q", m.Reason)
					}
				}
			}
			if marks[0] != "greeting" || marks[1] != "turn-1" {
				t.Errorf("marks %v", marks)
			}
			wantBytes := len(greeting(tc.rate)) + len(speech)
			if audio != wantBytes {
				t.Errorf("bot sent %d bytes of audio, want greeting + echo = %d", audio, wantBytes)
			}
			// The greeting's transcript and assist, then the turn's
			// customer and bot lines (sent before the echo's mark).
			if lines["assist"] < 1 || lines["bot"] < 2 || lines["customer"] != 1 {
				t.Errorf("assist/transcript lines %v, want assist, two bot lines and one customer line", lines)
			}
			if handoff != tc.wantHandoff {
				t.Errorf("handoff %v, want %v", handoff, tc.wantHandoff)
			}
		})
	}
}
