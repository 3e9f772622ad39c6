// Command echo is callfleet's reference bot: it speaks the stream gateway's
// bot protocol (docs/gateway.md) on a localhost WebSocket. It greets the
// caller with a tone pattern, echoes each thing the caller says after they
// pause, and after a few turns asks for a human. It has no AI in it: it shows
// the protocol, and it is what `make demo` runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	cfg := defaultConfig()
	listen := flag.String("listen", defaultListen(), "address to serve the bot protocol on (the gateway dials ws://<this>/)")
	flag.IntVar(&cfg.HandoffAfterTurns, "handoff-after-turns", cfg.HandoffAfterTurns, "ask for a human after this many echoed turns (0: never)")
	flag.DurationVar(&cfg.Silence, "silence", cfg.Silence, "a pause this long ends the caller's turn")
	flag.DurationVar(&cfg.MaxTurn, "max-turn", cfg.MaxTurn, "the most caller audio buffered per turn")
	flag.Float64Var(&cfg.BeepHz, "beep-hz", cfg.BeepHz, "report voicemail when a steady tone at this frequency (an answering machine's beep) is heard (0: never)")
	flag.DurationVar(&cfg.BeepMin, "beep-min", cfg.BeepMin, "how long the beep must last")
	flag.StringVar(&cfg.Disposition, "disposition", cfg.Disposition, "disposition reported after the caller's first turn (the Call variable `disposition` overrides it; empty: none)")
	flag.BoolVar(&cfg.BargeIn, "barge-in", cfg.BargeIn, "when the caller talks over the bot, stop its audio (sends clear)")
	flag.Parse()

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg.Log = log
	srv := &http.Server{Addr: *listen, Handler: newBot(cfg), ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	log.Info("echo bot listening", "addr", ln.Addr().String(), "handoffAfterTurns", cfg.HandoffAfterTurns)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
}

// defaultListen follows the StreamEndpoint's bot port (CALLFLEET_PORT).
func defaultListen() string {
	if p := os.Getenv("CALLFLEET_PORT"); p != "" {
		return fmt.Sprintf("127.0.0.1:%s", p)
	}
	return "127.0.0.1:8080"
}
