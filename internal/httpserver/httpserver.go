// Package httpserver bounds callfleet's HTTP servers (the webhook receiver,
// the stream gateway, piopiy-sim) against slow and idle clients: every phase
// of a request has a deadline, idle keep-alive connections are closed, and
// the number of open connections is capped, so a client holding sockets open
// (slowloris) costs a bounded number of file descriptors and goroutines.
//
// WebSocket upgrades are not cut by these deadlines: net/http clears a
// connection's deadlines when it is hijacked.
package httpserver

import (
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// Limits bound one server.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers, from the first
	// byte a connection may send; a connection that sends nothing is closed
	// after it.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing the response, from the end of the
	// request's headers.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no new request.
	IdleTimeout time.Duration
	// MaxConns caps the connections served at once; more wait in the
	// listen backlog until one closes. 0 means no cap.
	MaxConns int
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes int
}

// Defaults are for a server taking small requests from machines: webhooks,
// REST calls and WebSocket upgrades.
func Defaults() Limits {
	return Limits{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxConns:          1024,
		MaxHeaderBytes:    16 << 10,
	}
}

// Server returns an http.Server serving h within l.
func (l Limits) Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}

// Listener caps ln at MaxConns open connections.
func (l Limits) Listener(ln net.Listener) net.Listener {
	if l.MaxConns <= 0 {
		return ln
	}
	return netutil.LimitListener(ln, l.MaxConns)
}
