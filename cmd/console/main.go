// Command console serves callfleet's supervisor console: a live board of
// Calls and Campaigns, listen-in, the assist feed and interventions made as
// the signed-in Kubernetes user. See docs/console.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/callfleet/callfleet/internal/console"
	"github.com/callfleet/callfleet/internal/gateway"
)

// SessionKeyEnv holds the cookie key when no file is given.
const SessionKeyEnv = "CALLFLEET_CONSOLE_SESSION_KEY"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "console:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		o                       console.RunOptions
		sessionFile, monKeyFile string
		namespaces              string
	)
	fs := flag.CommandLine // ctrl.GetConfig registered --kubeconfig here
	fs.StringVar(&o.Listen, "listen", ":8080", "address to serve the console on")
	fs.StringVar(&namespaces, "namespaces", "", "comma-separated namespaces to watch (empty: all the console may list)")
	fs.StringVar(&sessionFile, "session-key-file", "", "file with the key (32+ bytes) that seals sign-in cookies, the same on every replica (default $"+SessionKeyEnv+")")
	fs.StringVar(&monKeyFile, "monitor-key-file", "", "file with the root monitor token key, the manager's --monitor-token-key-file: tokens are signed with the key derived from it for the Call's StreamEndpoint (default $"+gateway.MonitorKeyEnv+"; neither: no listen-in)")
	fs.DurationVar(&o.SessionTTL, "session-ttl", console.DefaultSessionTTL, "how long a sign-in lasts")
	fs.BoolVar(&o.SecureCookies, "secure-cookies", false, "mark the cookie Secure even on plain HTTP (TLS ends at a proxy that sends no X-Forwarded-Proto)")
	fs.StringVar(&o.TLSCertFile, "tls-cert-file", "", "serve HTTPS with this certificate (usually TLS ends at the Ingress)")
	fs.StringVar(&o.TLSKeyFile, "tls-key-file", "", "key of --tls-cert-file")
	zapOpts := zap.Options{Development: false}
	zapOpts.BindFlags(fs)
	flag.Parse()

	log := zap.New(zap.UseFlagOptions(&zapOpts))
	ctrl.SetLogger(log)
	o.Logger = log.WithName("console")
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return fmt.Errorf("--tls-cert-file and --tls-key-file go together")
	}
	for _, ns := range strings.Split(namespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			o.Namespaces = append(o.Namespaces, ns)
		}
	}
	var err error
	if o.SessionKey, err = readKey(sessionFile, SessionKeyEnv); err != nil {
		return err
	}
	if o.MonitorRootKey, err = gateway.LoadMonitorKey(monKeyFile); err != nil {
		return err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubernetes config: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return console.Run(ctx, cfg, o)
}

func readKey(file, env string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading session key: %w", err)
		}
		return []byte(strings.TrimSpace(string(b))), nil
	}
	if v := os.Getenv(env); v != "" {
		return []byte(v), nil
	}
	return nil, fmt.Errorf("no session key: set --session-key-file or $%s", env)
}
