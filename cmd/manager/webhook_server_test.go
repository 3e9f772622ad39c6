package main

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/callfleet/callfleet/internal/httpserver"
	"github.com/callfleet/callfleet/internal/httpserver/httpservertest"
	"github.com/callfleet/callfleet/internal/webhook"
)

// TestReceiverClosesIdleConnections is issue #20 item 4 on the webhook
// receiver as the manager runs it: 1,000 idle connections are closed by its
// timeouts (short here; the defaults are seconds).
func TestReceiverClosesIdleConnections(t *testing.T) {
	l := httpserver.Defaults()
	l.ReadHeaderTimeout, l.IdleTimeout, l.MaxConns = 100*time.Millisecond, 100*time.Millisecond, 200
	w := webhookServer("127.0.0.1:0", l, &webhook.Receiver{})
	addr := make(chan net.Addr, 1)
	w.ready = func(a net.Addr) { addr <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && err != http.ErrServerClosed {
			t.Error(err)
		}
	}()
	var a net.Addr
	select {
	case a = <-addr:
	case err := <-done:
		t.Fatal(err)
	}
	const n = 1000
	if closed := httpservertest.IdleConnections(t, a.String(), n, 2*time.Minute); closed != n {
		t.Fatalf("the receiver closed %d of %d idle connections", closed, n)
	}
}
