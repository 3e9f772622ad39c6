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
	l.ReadHeaderTimeout, l.IdleTimeout, l.MaxConns = time.Second, 100*time.Millisecond, 200
	srv := l.Server(http.NotFoundHandler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingListener{Listener: l.Listener(ln)}
	go func() { _ = srv.Serve(counted) }()
	defer func() { _ = srv.Close() }()

	const n = 1000
	if closed := httpservertest.IdleConnections(t, ln.Addr().String(), n, 2*time.Minute); closed != n {
		t.Fatalf("the server closed %d of %d idle connections", closed, n)
	}
	if peak := counted.peak(); peak > l.MaxConns {
		t.Fatalf("%d connections open at once, cap %d", peak, l.MaxConns)
	}
}

// countingListener counts the connections the capped listener has handed
// out and not yet closed.
type countingListener struct {
	net.Listener
	mu         sync.Mutex
	open, high int
}

func (c *countingListener) Accept() (net.Conn, error) {
	conn, err := c.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.open++
	c.high = max(c.high, c.open)
	c.mu.Unlock()
	return &countedConn{Conn: conn, l: c}, nil
}

func (c *countingListener) peak() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.high
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

// Close counts the connection gone before the capped listener may hand
// out the next one.
func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
