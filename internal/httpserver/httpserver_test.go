package httpserver_test

import (
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/callfleet/callfleet/internal/httpserver"
	"github.com/callfleet/callfleet/internal/httpserver/httpservertest"
)

// TestIdleConnectionsClosedByTheIdleTimeout is issue #20 item 4: 1,000 idle
// connections (half after a keep-alive request, half silent) are all closed
// by the server, and never more than MaxConns are open at once.
func TestIdleConnectionsClosedByTheIdleTimeout(t *testing.T) {
	l := httpserver.Defaults()
	l.ReadHeaderTimeout, l.IdleTimeout, l.MaxConns = 100*time.Millisecond, 100*time.Millisecond, 200
	srv := l.Server(http.NotFoundHandler())
	var (
		mu         sync.Mutex
		open, peak int
	)
	srv.ConnState = func(_ net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			open++
			peak = max(peak, open)
		case http.StateClosed, http.StateHijacked:
			open--
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l.Listener(ln)) }()
	defer srv.Close()

	const n = 1000
	if closed := httpservertest.IdleConnections(t, ln.Addr().String(), n, 2*time.Minute); closed != n {
		t.Fatalf("the server closed %d of %d idle connections", closed, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if peak > l.MaxConns {
		t.Fatalf("%d connections open at once, cap %d", peak, l.MaxConns)
	}
}
