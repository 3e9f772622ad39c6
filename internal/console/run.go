package console

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"k8s.io/client-go/rest"
)

// RunOptions configure Run: the console's Options plus the server.
type RunOptions struct {
	Options
	// Listen is the address to serve on.
	Listen string
	// Listener, when set, is used instead of Listen (tests).
	Listener net.Listener
	// TLSCertFile and TLSKeyFile serve HTTPS when both are set; usually TLS
	// ends at the Ingress in front.
	TLSCertFile, TLSKeyFile string
	// Started, when set, is called with the address once the console's
	// cache has synced.
	Started func(addr net.Addr)
}

// Run serves the console until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o RunOptions) error {
	c, err := New(cfg, o.Options)
	if err != nil {
		return err
	}
	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", o.Listen); err != nil {
			return fmt.Errorf("listening: %w", err)
		}
	}
	srv := &http.Server{
		Handler:           c.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// No WriteTimeout: event streams stay open (each ends on its own
		// after StreamTTL).
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		BaseContext:    func(net.Listener) context.Context { return ctx },
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() {
		if err := c.Start(ctx); err != nil {
			errc <- fmt.Errorf("console cache: %w", err)
		}
	}()
	if !c.WaitForSync(ctx) {
		return errors.Join(errors.New("console cache did not sync"), ctx.Err())
	}
	go func() {
		var err error
		if o.TLSCertFile != "" && o.TLSKeyFile != "" {
			err = srv.ServeTLS(ln, o.TLSCertFile, o.TLSKeyFile)
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serving: %w", err)
		}
	}()
	c.log.Info("console ready", "addr", ln.Addr().String())
	if o.Started != nil {
		o.Started(ln.Addr())
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	return runErr
}
