// Command stream-gateway terminates Piopiy's stream WebSocket beside a bot in
// a StreamEndpoint pod: it authenticates the socket, relays audio to and from
// the bot on localhost, applies Call control on the live socket and reports
// the stream in the Call's status. See docs/gateway.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/callfleet/callfleet/internal/gateway"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "stream-gateway:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		o          gateway.RunOptions
		keyFile    string
		monKeyFile string
	)
	fs := flag.CommandLine // ctrl.GetConfig registered --kubeconfig here
	fs.StringVar(&o.Listen, "listen", ":8443", "address Piopiy dials (WebSocket on every path but /healthz and /readyz)")
	fs.StringVar(&o.BotURL, "bot-url", gateway.DefaultBotURL, "the bot's WebSocket on localhost")
	fs.StringVar(&o.Endpoint, "endpoint", "", "StreamEndpoint this gateway serves: Calls referencing another are refused (empty: any)")
	fs.StringVar(&o.PublicURL, "public-url", "", "ws(s) URL Piopiy reaches this gateway at; Calls whose spec.stream.url is under it are served too")
	fs.StringVar(&o.Namespace, "namespace", os.Getenv("POD_NAMESPACE"), "namespace whose Calls are served (default $POD_NAMESPACE)")
	fs.StringVar(&keyFile, "token-key-file", "", "file with this endpoint's stream token key, and \"previous\" beside it during a rotation (default: $"+gateway.TokenKeyEnv+"; $"+gateway.TokenRootKeyEnv+" holds the manager's root key instead, for a gateway the operator runs)")
	fs.StringVar(&monKeyFile, "monitor-key-file", "", "file with this endpoint's monitor token key, which opens listen-in sockets, and \"previous\" beside it during a rotation (default: $"+gateway.MonitorKeyEnv+"; $"+gateway.MonitorRootKeyEnv+" holds the console's root key instead, for a gateway the operator runs; none: monitoring off)")
	fs.StringVar(&o.PodName, "pod-name", podName(), "reported in status.stream.pod (default $POD_NAME, else the hostname)")
	fs.StringVar(&o.DefaultFrom, "default-from", os.Getenv("CALLFLEET_DEFAULT_FROM"), "caller id for handoff bridges of Calls without spec.from (default $CALLFLEET_DEFAULT_FROM)")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", ":9090", "Prometheus metrics address (\"0\" disables)")
	fs.IntVar(&o.MaxBufferedFrames, "max-buffered-frames", gateway.DefaultMaxBufferedFrames, "audio frames buffered for a slow bot before the oldest is dropped")
	fs.DurationVar(&o.PingInterval, "ping-interval", gateway.DefaultPingInterval, "ping both sockets this often; one silent for as long again is closed")
	fs.DurationVar(&o.ShutdownDrain, "shutdown-drain", 0, "on SIGTERM (or GET "+gateway.DrainPath+" on the metrics port), keep live calls this long, taking no new one, then hang up the rest politely")
	fs.StringVar(&o.GoodbyeURL, "goodbye-url", "", "audio file played to calls still up at the end of the drain, before the hangup")
	fs.DurationVar(&o.GoodbyeLead, "goodbye-lead", gateway.DefaultGoodbyeLead, "send the goodbye and hangup this long before the end of --shutdown-drain")
	fs.IntVar(&o.MaxStreams, "max-streams", 0, "streams this pod takes at once; one more is refused with 503 at_capacity (0: no limit)")
	fs.DurationVar(&o.BotReconnect, "bot-reconnect", 0, "when the bot's socket drops mid-call, try this long to open it again (start frame marked resumed) before ending the call (0: end at once)")
	fs.DurationVar(&o.KeyReloadInterval, "token-key-reload-interval", gateway.DefaultKeyReloadInterval, "reread --token-key-file and --monitor-key-file (and \"previous\" beside each) this often")
	fs.StringVar(&o.TLSCertFile, "tls-cert-file", "", "serve wss:// with this certificate (usually TLS ends at the Ingress)")
	fs.StringVar(&o.TLSKeyFile, "tls-key-file", "", "key of --tls-cert-file")
	zapOpts := zap.Options{Development: false}
	zapOpts.BindFlags(fs)
	flag.Parse()

	log := zap.New(zap.UseFlagOptions(&zapOpts))
	ctrl.SetLogger(log)
	o.Logger = log.WithName("stream-gateway")

	if o.Namespace == "" {
		return fmt.Errorf("--namespace (or $POD_NAMESPACE) is required")
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return fmt.Errorf("--tls-cert-file and --tls-key-file go together")
	}
	var err error
	if root := os.Getenv(gateway.TokenRootKeyEnv); root != "" {
		// A gateway the operator runs (the demo, an external handler):
		// it derives its endpoint's key as the manager does.
		o.TokenRootKey = []byte(root)
	} else if keyFile != "" {
		// Reread while running: a rotated Secret takes effect without a
		// restart, and its "previous" key keeps verifying meanwhile.
		o.TokenKeyFile = keyFile
	} else if o.TokenKey, err = gateway.LoadTokenKey(""); err != nil {
		return err
	}
	// The same order as the stream token key's.
	if root := os.Getenv(gateway.MonitorRootKeyEnv); root != "" {
		o.MonitorRootKey = []byte(root)
	} else if monKeyFile != "" {
		// Reread while running, like --token-key-file.
		o.MonitorKeyFile = monKeyFile
	} else if o.MonitorKey, err = gateway.LoadMonitorKey(""); err != nil {
		return err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubernetes config: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return gateway.Run(ctx, cfg, o)
}

func podName() string {
	if n := os.Getenv("POD_NAME"); n != "" {
		return n
	}
	n, _ := os.Hostname()
	return n
}
