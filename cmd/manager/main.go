// Command manager runs callfleet's controllers and the Piopiy webhook
// receiver.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/cachescope"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/internal/controller/call"
	"github.com/callfleet/callfleet/internal/httpserver"
	"github.com/callfleet/callfleet/internal/monitortoken"
	"github.com/callfleet/callfleet/internal/scheme"
	"github.com/callfleet/callfleet/internal/streamtoken"
	"github.com/callfleet/callfleet/internal/webhook"
	"github.com/callfleet/callfleet/pkg/piopiy"
	piopiyv3 "github.com/callfleet/callfleet/pkg/piopiy/v3"
)

type options struct {
	metricsAddr, probeAddr, webhookAddr string
	leaderElect                         bool
	leaderElectionNamespace             string
	webhookTokenFile, streamKeyFile     string
	monitorKeyFile                      string
	defaultAccount                      string
	restURL, actionURL                  string
	v3URL                               string
	v3Poll                              time.Duration
	piopiyQPS                           float64
	piopiyBurst                         int
	settleTimeout, cdrGrace             time.Duration
	watchNamespaces                     string
	callWorkers                         int
	webhookMaxConns                     int
	metricsSecure                       bool
	gatewayImage                        string
	notify                              *notifyFlags
	// streamKeys: the signing root key, then the one gateways also accept
	// during a rotation ("previous" beside --stream-token-key-file).
	streamKeys streamtoken.Keys
	// monitorKeys: the console's root monitor key, then during a rotation
	// the previous one; empty: monitoring off.
	monitorKeys streamtoken.Keys
}

func main() {
	var o options
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint (0 disables).")
	flag.BoolVar(&o.metricsSecure, "metrics-secure", true, "Serve /metrics over HTTPS to callers the apiserver authenticates and authorizes (get on the /metrics non-resource URL); false serves plain HTTP to anyone, for a trusted network only.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz.")
	flag.StringVar(&o.webhookAddr, "webhook-bind-address", ":9443", "Address of the Piopiy webhook receiver (POST /piopiy/accounts/<namespace>/<secret>/<token>, and /piopiy/events/<token> when a global token is set).")
	flag.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader so only one manager replica reconciles.")
	flag.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the manager's).")
	flag.StringVar(&o.webhookTokenFile, "webhook-token-file", "", "File holding the secret path token of the global webhook URL, the fallback for accounts without a webhookToken (env CALLFLEET_WEBHOOK_TOKEN otherwise; unset turns the global URL off).")
	flag.StringVar(&o.streamKeyFile, "stream-token-key-file", "", "File holding the key that signs ws_url tokens, shared with the gateways (env CALLFLEET_STREAM_TOKEN_KEY otherwise).")
	flag.StringVar(&o.monitorKeyFile, "monitor-token-key-file", "", "File holding the console's root monitor token key (its --monitor-key-file), from which each StreamEndpoint's gateway gets a derived key for listen-in; \"previous\" beside it during a rotation (env CALLFLEET_MONITOR_TOKEN_KEY otherwise; neither: monitoring off).")
	flag.StringVar(&o.defaultAccount, "default-account", "", "namespace/name of the Secret with the default Piopiy account (appId, secret, from).")
	flag.StringVar(&o.restURL, "piopiy-rest-url", piopiy.DefaultRESTBaseURL, "Base URL of Piopiy's call API (make-call).")
	flag.StringVar(&o.actionURL, "piopiy-action-url", piopiy.DefaultActionBaseURL, "Base URL of Piopiy's call-action and CDR API.")
	flag.StringVar(&o.v3URL, "piopiy-v3-url", piopiyv3.DefaultBaseURL, "Base URL of Piopiy's v3 API, used by Calls with spec.agent on v3 account Secrets.")
	flag.DurationVar(&o.v3Poll, "piopiy-v3-poll-interval", call.DefaultV3PollInterval, "How often a ringing v3 call's status is polled (answered calls: 2.5x as long); polls share --piopiy-qps.")
	flag.Float64Var(&o.piopiyQPS, "piopiy-qps", 20, "Client-side limit on Piopiy requests per second, shared by all Calls.")
	flag.IntVar(&o.piopiyBurst, "piopiy-burst", 40, "Burst above --piopiy-qps.")
	flag.DurationVar(&o.settleTimeout, "settle-timeout", call.DefaultSettleTimeout, "How long an ambiguous create waits for Piopiy to show the call before it is ended as Failed (never redialled).")
	flag.DurationVar(&o.cdrGrace, "cdr-grace", call.DefaultCDRGrace, "How long after a hangup to wait for the CDR webhook before looking it up.")
	flag.StringVar(&o.watchNamespaces, "namespaces", "", "Comma-separated namespaces to watch (default: all). Shard managers by namespace with this.")
	flag.StringVar(&o.gatewayImage, "gateway-image", "ghcr.io/callfleet/stream-gateway:v0.1.0", "Stream gateway image for StreamEndpoints that do not set spec.gateway.image.")
	flag.IntVar(&o.callWorkers, "call-workers", 16, "Calls reconciled in parallel.")
	flag.IntVar(&o.webhookMaxConns, "webhook-max-connections", httpserver.Defaults().MaxConns, "Connections the webhook receiver serves at once; more wait in the listen backlog.")
	zapOpts := zap.Options{Development: false}
	o.notify = bindNotifyFlags(flag.CommandLine)
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := run(ctrl.SetupSignalHandler(), o); err != nil {
		ctrl.Log.Error(err, "Manager exited")
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	log := ctrl.Log.WithName("setup")
	// The global webhook URL is a fallback for accounts without a
	// webhookToken of their own; without a global token it is off.
	webhookToken, err := secretValue(o.webhookTokenFile, "CALLFLEET_WEBHOOK_TOKEN")
	if err != nil && (o.webhookTokenFile != "" || !errors.Is(err, errUnset)) {
		return fmt.Errorf("webhook token: %w", err)
	}
	streamKey, err := secretValue(o.streamKeyFile, "CALLFLEET_STREAM_TOKEN_KEY")
	if err != nil {
		return fmt.Errorf("stream token key: %w", err)
	}
	o.streamKeys = streamtoken.Keys{streamKey}
	if o.streamKeyFile != "" {
		kf, err := streamtoken.LoadKeyFile(o.streamKeyFile)
		if err != nil {
			return fmt.Errorf("stream token key: %w", err)
		}
		o.streamKeys = kf.Keys()
	}
	if o.monitorKeys, err = monitorKeys(o.monitorKeyFile); err != nil {
		return fmt.Errorf("monitor token key: %w", err)
	}
	log.Info("Monitor token keys", "keys", len(o.monitorKeys))
	var defaultAccount types.NamespacedName
	if o.defaultAccount != "" {
		ns, name, ok := strings.Cut(o.defaultAccount, "/")
		if !ok {
			return fmt.Errorf("--default-account must be namespace/name, got %q", o.defaultAccount)
		}
		defaultAccount = types.NamespacedName{Namespace: ns, Name: name}
	}

	mgr, err := newManager(ctrl.GetConfigOrDie(), o)
	if err != nil {
		return err
	}
	// One memory of this process's Call writes for the controller and the
	// receiver, so neither works from a cache that lags the other.
	recent := &callstate.Recent{}
	if err := setupControllers(ctx, mgr, o, streamKey, defaultAccount, recent); err != nil {
		return err
	}

	receiver := &webhook.Receiver{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Token: string(webhookToken), CacheWait: 500 * time.Millisecond,
		Recent: recent,
		// Its own resolver: a URL names the Secret to read, so a stranger's
		// made-up URLs must not cost more than a few reads a second.
		Accounts: &account.Resolver{Reader: mgr.GetAPIReader(), Default: defaultAccount, ReadLimit: rate.NewLimiter(20, 40)},
	}
	limits := httpserver.Defaults()
	limits.MaxConns = o.webhookMaxConns
	if err := mgr.Add(webhookServer(o.webhookAddr, limits, receiver)); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	log.Info("Starting manager", "webhook", o.webhookAddr, "piopiy", o.restURL)
	return mgr.Start(ctx)
}

// newManager makes the manager with callfleet's cache scope: only the
// objects callfleet made, ConfigMaps without data (cachescope), no Secrets,
// no managedFields.
func newManager(cfg *rest.Config, o options) (ctrl.Manager, error) {
	// The StreamEndpoint controller watches the kinds it makes; cache only
	// those it made, not every Deployment in the cluster.
	ours := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{"app.kubernetes.io/managed-by": "callfleet"})}
	cacheOpts := cachescope.Apply(cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}: ours, &corev1.Service{}: ours, &corev1.ServiceAccount{}: ours,
			&networkingv1.Ingress{}: ours, &rbacv1.Role{}: ours, &rbacv1.RoleBinding{}: ours,
		},
	})
	if o.watchNamespaces != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range strings.Split(o.watchNamespaces, ",") {
			cacheOpts.DefaultNamespaces[strings.TrimSpace(ns)] = cache.Config{}
		}
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 100, 200
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme.New(),
		Cache:                   cacheOpts,
		NewClient:               cachescope.NewClient,
		Metrics:                 metricsOptions(o),
		HealthProbeBindAddress:  o.probeAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "manager.callfleet.dev",
		LeaderElectionNamespace: o.leaderElectionNamespace,
		// A new leader must not start before the old one stopped dialing.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	return mgr, nil
}

// setupControllers registers every controller on mgr.
func setupControllers(ctx context.Context, mgr ctrl.Manager, o options, streamKey []byte, defaultAccount types.NamespacedName, recent *callstate.Recent) error {
	// Every controller that talks to Piopiy shares the accounts, the
	// clients (and their connection pools) and one rate limit.
	pio := piopiyDeps{
		accounts: &account.Resolver{Reader: mgr.GetAPIReader(), Default: defaultAccount},
		clients:  &call.ClientCache{Options: []piopiy.Option{piopiy.WithRESTBaseURL(o.restURL), piopiy.WithActionBaseURL(o.actionURL)}},
		limiter:  rate.NewLimiter(rate.Limit(o.piopiyQPS), o.piopiyBurst),
		v3: &call.V3Backend{Options: []piopiyv3.Option{piopiyv3.WithBaseURL(o.v3URL)},
			PollInterval: o.v3Poll, AnsweredPollInterval: o.v3Poll * 5 / 2},
	}
	calls := &call.Reconciler{
		Client:        mgr.GetClient(),
		APIReader:     mgr.GetAPIReader(),
		Recorder:      mgr.GetEventRecorder("callfleet-call"),
		Accounts:      pio.accounts,
		Piopiy:        pio.clients,
		V3:            pio.v3,
		Limiter:       pio.limiter,
		TokenKey:      streamKey,
		SettleTimeout: o.settleTimeout,
		CDRGrace:      o.cdrGrace,
		Workers:       o.callWorkers,
		Recent:        recent,
	}
	if err := calls.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up Call controller: %w", err)
	}
	if err := setupOtherControllers(ctx, mgr, o, pio); err != nil {
		return err
	}
	return setupNotify(mgr, o.notify)
}

// metricsOptions serves /metrics behind controller-runtime's authn/authz
// filter (TokenReview and SubjectAccessReview) unless --metrics-secure=false.
func metricsOptions(o options) metricsserver.Options {
	if !o.metricsSecure {
		return metricsserver.Options{BindAddress: o.metricsAddr}
	}
	return metricsserver.Options{
		BindAddress:    o.metricsAddr,
		SecureServing:  true,
		FilterProvider: filters.WithAuthenticationAndAuthorization,
	}
}

// webhookRunnable serves the Piopiy receiver on every replica (not only the
// leader): any replica can take a webhook, the write goes to the apiserver.
// It faces the internet, so every phase of a connection is bounded.
type webhookRunnable struct {
	addr   string
	limits httpserver.Limits
	srv    *http.Server
	// ready, when set, receives the listening address (tests).
	ready func(net.Addr)
}

func webhookServer(addr string, limits httpserver.Limits, h http.Handler) *webhookRunnable {
	mux := http.NewServeMux()
	mux.Handle(webhook.PathPrefix, h)
	mux.Handle(webhook.AccountPathPrefix, h)
	return &webhookRunnable{addr: addr, limits: limits, srv: limits.Server(mux)}
}

func (w *webhookRunnable) NeedLeaderElection() bool { return false }

func (w *webhookRunnable) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", w.addr)
	if err != nil {
		return fmt.Errorf("webhook receiver: %w", err)
	}
	if w.ready != nil {
		w.ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- w.srv.Serve(w.limits.Listener(ln)) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// secretValue reads a secret from a file (a mounted Secret) or the environment.
func secretValue(file, env string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return nil, fmt.Errorf("%s is empty", file)
		}
		return []byte(v), nil
	}
	if v := os.Getenv(env); v != "" {
		return []byte(v), nil
	}
	return nil, fmt.Errorf("%w: set a file flag or %s", errUnset, env)
}

// monitorKeys reads the optional root monitor key: from file, with
// "previous" beside it, else from CALLFLEET_MONITOR_TOKEN_KEY. Unset is no
// error: listen-in is off and gateways get no monitor key.
func monitorKeys(file string) (streamtoken.Keys, error) {
	if file != "" {
		// The stream key's reader: the same trimming, length check and
		// rotation layout.
		kf, err := streamtoken.LoadKeyFile(file)
		if err != nil {
			return nil, err
		}
		return kf.Keys(), nil
	}
	k, err := secretValue("", "CALLFLEET_MONITOR_TOKEN_KEY")
	if errors.Is(err, errUnset) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(k) < monitortoken.MinKeyLen {
		return nil, fmt.Errorf("CALLFLEET_MONITOR_TOKEN_KEY is %d bytes, want at least %d", len(k), monitortoken.MinKeyLen)
	}
	return streamtoken.Keys{k}, nil
}

// errUnset: neither the file flag nor the environment variable is set.
var errUnset = errors.New("not set")
