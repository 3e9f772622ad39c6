package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/httpserver"
	"github.com/callfleet/callfleet/internal/scheme"
)

// RunOptions configure Run: the gateway's Options plus the process around it.
type RunOptions struct {
	Options
	// Listen is the address Piopiy (and health checks) reach the gateway at.
	Listen string
	// Listener, when set, is used instead of Listen (tests).
	Listener net.Listener
	// TLSCertFile and TLSKeyFile serve wss:// directly when both are set;
	// usually TLS ends at the Ingress in front.
	TLSCertFile, TLSKeyFile string
	// MetricsBindAddress serves Prometheus metrics ("0": off).
	MetricsBindAddress string
	// ShutdownTimeout bounds closing streams and writing their status after
	// ctx ends (on top of ShutdownDrain).
	ShutdownTimeout time.Duration
	// Started, when set, is called with the listening address once the
	// Call cache has synced and streams are accepted.
	Started func(addr net.Addr)
	// Limits bound the server's connections (zero value: httpserver.Defaults).
	Limits httpserver.Limits
}

// DrainPath is where the metrics server takes the bot container's preStop
// hook: it starts the drain and answers once it is over.
const DrainPath = "/drain"

// Run serves the gateway until ctx ends (SIGTERM in the binary) or DrainPath
// is called, then shuts down in order: readyz fails and new streams are
// refused, live streams go on for ShutdownDrain and the rest are hung up
// politely (see Shutdown), each reporting its status while the Kubernetes
// client still works; then the listener and the Call watch stop.
func Run(ctx context.Context, cfg *rest.Config, o RunOptions) error {
	if o.Registerer == nil {
		o.Registerer = ctrlmetrics.Registry
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 25 * time.Second
	}
	if o.MetricsBindAddress == "" {
		o.MetricsBindAddress = "0"
	}
	if o.Limits == (httpserver.Limits{}) {
		o.Limits = httpserver.Defaults()
	}
	if o.Logger.GetSink() == nil {
		o.Logger = ctrl.Log.WithName("stream-gateway")
	}
	var g *Gateway
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme.New(),
		Logger: o.Logger,
		Cache: cache.Options{
			// Namespaced: the gateway's Role grants nothing cluster-wide.
			DefaultNamespaces: map[string]cache.Config{o.Namespace: {}},
			DefaultTransform:  cache.TransformStripManagedFields(),
		},
		Metrics: metricsserver.Options{BindAddress: o.MetricsBindAddress, ExtraHandlers: map[string]http.Handler{
			// Not on the stream port, which an Ingress may expose to the world.
			DrainPath: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.DrainHandler().ServeHTTP(w, r) }),
		}},
		HealthProbeBindAddress: "0", // health is served on the gateway's own port
		// Every replica acts on the sockets it holds: no leader.
		LeaderElection: false,
		Controller:     config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	g, err = New(mgr.GetClient(), mgr.GetAPIReader(), o.Options)
	if err != nil {
		return err
	}
	if err := g.SetupWithManager(mgr); err != nil {
		return err
	}

	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", o.Listen); err != nil {
			return fmt.Errorf("listening: %w", err)
		}
	}
	// Piopiy and anyone else on the internet connect here: bound every
	// phase and the number of sockets (streams are hijacked, so their own
	// lifetimes are not cut by these deadlines).
	srv := o.Limits.Server(g.Handler())
	ln = o.Limits.Listener(ln)
	srv.ConnContext = ConnContext

	mgrCtx, stopMgr := context.WithCancel(context.WithoutCancel(ctx))
	defer stopMgr()
	errc := make(chan error, 2)
	mgrDone := make(chan struct{})
	go func() {
		defer close(mgrDone)
		if err := mgr.Start(mgrCtx); err != nil {
			errc <- fmt.Errorf("manager: %w", err)
		}
	}()
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
	go g.watchKeys(mgrCtx)
	go g.watchMonitorKeys(mgrCtx)
	go func() {
		if mgr.GetCache().WaitForCacheSync(mgrCtx) {
			g.SetReady(true)
			o.Logger.Info("stream gateway ready", "addr", ln.Addr().String(), "namespace", o.Namespace, "endpoint", o.Endpoint)
			if o.Started != nil {
				o.Started(ln.Addr())
			}
		}
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case <-g.drain.begin:
	case runErr = <-errc:
	}
	o.Logger.Info("stream gateway shutting down", "streams", g.ActiveStreams())
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownDrain+o.ShutdownTimeout)
	defer cancel()
	if err := g.Shutdown(sctx); err != nil {
		o.Logger.Error(err, "closing streams")
	}
	if err := srv.Shutdown(sctx); err != nil {
		o.Logger.Error(err, "stopping the listener")
	}
	stopMgr()
	<-mgrDone
	return runErr
}

// SetupWithManager registers the reconciler that applies Call changes to
// the sockets this pod holds. Only Calls this gateway serves are watched for.
func (g *Gateway) SetupWithManager(mgr manager.Manager) error {
	r := callReconciler{g: g}
	return ctrl.NewControllerManagedBy(mgr).
		Named("stream-gateway").
		For(&voicev1alpha1.Call{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			call, ok := o.(*voicev1alpha1.Call)
			return ok && g.serves(call)
		}))).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			return reconcile.Result{}, r.reconcile(ctx, req.NamespacedName)
		}))
}
