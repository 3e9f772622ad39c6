package main

import (
	"bufio"
	"context"
	"io"
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
	l.ReadHeaderTimeout, l.IdleTimeout, l.MaxConns = time.Second, 100*time.Millisecond, 200
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

// TestReceiverAnswersTrickledBodies: 100 clients post to a wrong token and
// trickle their bodies. Each gets its 401 (the token is checked before the
// body is read) and its connection closed, none is left hanging.
func TestReceiverAnswersTrickledBodies(t *testing.T) {
	l := httpserver.Defaults()
	l.ReadTimeout = 500 * time.Millisecond
	w := webhookServer("127.0.0.1:0", l, &webhook.Receiver{Token: "the-right-token-0123456789"})
	addr := make(chan net.Addr, 1)
	w.ready = func(a net.Addr) { addr <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Logf("webhook server: %v", err)
		}
	}()
	a := (<-addr).String()

	const n = 100
	results := make(chan string, n)
	for range n {
		go func() {
			c, err := net.Dial("tcp", a)
			if err != nil {
				results <- err.Error()
				return
			}
			defer func() { _ = c.Close() }()
			_ = c.SetDeadline(time.Now().Add(time.Minute))
			_, _ = io.WriteString(c, "POST "+webhook.PathPrefix+"wrong HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
			stop := make(chan struct{})
			defer close(stop)
			go func() { // trickle until the server gives up on us
				for {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
						if _, err := c.Write([]byte(" ")); err != nil {
							return
						}
					}
				}
			}()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				results <- "no answer: " + err.Error()
				return
			}
			_ = resp.Body.Close()
			results <- resp.Status
		}()
	}
	for range n {
		if got := <-results; got != "401 Unauthorized" {
			t.Fatalf("a trickling client got %q, want 401 Unauthorized", got)
		}
	}
}
