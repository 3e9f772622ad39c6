// Package harness runs callfleet's Call controller and webhook receiver in
// process, against a real kube-apiserver (envtest) and piopiy-sim, for
// controller suites and benchmarks.
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/controller/call"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/internal/testenv"
	"github.com/callfleet/callfleet/internal/webhook"
	"github.com/callfleet/callfleet/pkg/piopiy"
	piopiyv3 "github.com/callfleet/callfleet/pkg/piopiy/v3"
)

// The sim account every harness uses; its Secret is the manager's default.
const (
	AppID     = 4242001
	AppSecret = "sim-app-secret"
	CallerID  = "918000000001"
	// AccountNamespace and AccountName locate the default account Secret.
	AccountNamespace = "callfleet-system"
	AccountName      = "piopiy"
	// V3Token and V3AppID are the sim's Piopiy v3 account (V3AccountSecret).
	V3Token = "sim-v3-token"
	V3AppID = "sim-v3-app"
)

// Options tune the harness.
type Options struct {
	// Workers reconciling Calls (default 8).
	Workers int
	// SettleTimeout for ambiguous creates (default 8s).
	SettleTimeout time.Duration
	// RedeliveryScale of the sim's webhook retries (default 0.005: Piopiy's
	// 5/10/15-minute retries come after 1.5, 4.5 and 9 s, long enough to
	// outlast a receiver busy under load, as Piopiy's do).
	RedeliveryScale float64
	// DialTimeout bounds one make-call request (default 2s).
	DialTimeout time.Duration
	// SimShapes are piopiy-sim's shapes (zero: the documented ones, as
	// make test runs them).
	SimShapes sim.Shapes
	// Now is the Call controller's clock (nil: time.Now).
	Now func() time.Time
	// Setup registers more controllers on the manager.
	Setup func(context.Context, ctrl.Manager) error
}

// Harness is a running control plane, sim, manager and receiver.
type Harness struct {
	Env    *testenv.Env
	Sim    *sim.Sim
	SimURL string
	// StreamSink is a WebSocket URL that takes any stream and discards it.
	StreamSink string
	// TokenKey signs stream tokens.
	TokenKey []byte
	// SinkStreams counts streams the sink accepted.
	SinkStreams atomic.Int64

	closers []func()
}

// Start brings everything up. Call Stop when done.
func Start(opts Options) (h *Harness, err error) {
	if opts.Workers == 0 {
		opts.Workers = 8
	}
	if opts.SettleTimeout == 0 {
		opts.SettleTimeout = 8 * time.Second
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 2 * time.Second
	}
	if opts.RedeliveryScale == 0 {
		opts.RedeliveryScale = 0.005
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	h = &Harness{}
	defer func() {
		if err != nil {
			h.Stop()
		}
	}()
	if h.Env, err = testenv.Start(); err != nil {
		return h, err
	}
	h.closers = append(h.closers, func() { _ = h.Env.Stop() })

	if h.Sim, err = sim.New(sim.Config{
		Apps:            []sim.App{{AppID: AppID, Secret: AppSecret}},
		V3:              []sim.V3Account{{Token: V3Token, AppID: V3AppID}},
		RedeliveryScale: opts.RedeliveryScale,
		Seed:            7,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		Shapes:          opts.SimShapes,
	}); err != nil {
		return h, err
	}
	if h.SimURL, err = h.Sim.Start("127.0.0.1:0"); err != nil {
		return h, err
	}
	h.closers = append(h.closers, func() { _ = h.Sim.Close(context.Background()) })

	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		h.SinkStreams.Add(1)
		for {
			if _, _, err := c.Read(r.Context()); err != nil {
				return
			}
		}
	}))
	h.closers = append(h.closers, sink.Close)
	h.StreamSink = "ws" + strings.TrimPrefix(sink.URL, "http") + "/stream"

	ctx, cancel := context.WithCancel(context.Background())
	h.closers = append(h.closers, cancel)
	mgr, err := ctrl.NewManager(h.Env.Config, ctrl.Options{
		Scheme:                 h.Env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
		Controller:             config.Controller{SkipNameValidation: ptr(true)},
	})
	if err != nil {
		return h, err
	}
	h.TokenKey = make([]byte, 32)
	_, _ = rand.Read(h.TokenKey)
	r := &call.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("callfleet-call"),
		Accounts:  &account.Resolver{Reader: mgr.GetAPIReader(), Default: types.NamespacedName{Namespace: AccountNamespace, Name: AccountName}},
		Piopiy: &call.ClientCache{Options: []piopiy.Option{piopiy.WithRESTBaseURL(h.SimURL), piopiy.WithActionBaseURL(h.SimURL),
			piopiy.WithLookupRetries(3, 50*time.Millisecond)}},
		V3: &call.V3Backend{Options: []piopiyv3.Option{piopiyv3.WithBaseURL(h.SimURL + "/v3"), piopiyv3.WithRetries(3, 50*time.Millisecond)},
			PollInterval: 300 * time.Millisecond, AnsweredPollInterval: 500 * time.Millisecond},
		Limiter:       rate.NewLimiter(rate.Inf, 0),
		TokenKey:      h.TokenKey,
		SettleTimeout: opts.SettleTimeout,
		CDRGrace:      2 * time.Second,
		DialTimeout:   opts.DialTimeout,
		Workers:       opts.Workers,
		Now:           opts.Now,
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return h, err
	}
	if opts.Setup != nil {
		if err := opts.Setup(ctx, mgr); err != nil {
			return h, err
		}
	}
	token := hex.EncodeToString(h.TokenKey[:8])
	receiver := httptest.NewServer(&webhook.Receiver{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Token: token, CacheWait: 300 * time.Millisecond, Accounts: r.Accounts, Recent: r.Recent})
	h.closers = append(h.closers, receiver.Close)
	h.Sim.SetWebhookURL(receiver.URL + webhook.PathPrefix + token)

	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Println("manager:", err)
		}
	}()
	h.closers = append(h.closers, func() { cancel(); <-done })
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return h, fmt.Errorf("manager cache did not sync")
	}

	if err := h.Env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: AccountNamespace}}); err != nil {
		return h, err
	}
	return h, h.Env.Client.Create(ctx, AccountSecret(AccountNamespace, AccountName))
}

// Stop tears everything down, newest first.
func (h *Harness) Stop() {
	for i := len(h.closers) - 1; i >= 0; i-- {
		h.closers[i]()
	}
	h.closers = nil
}

// AccountSecret is a Secret holding the sim account.
func AccountSecret(ns, name string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		StringData: map[string]string{account.KeyAppID: fmt.Sprint(AppID), account.KeySecret: AppSecret, account.KeyFrom: CallerID},
	}
}

func ptr[T any](v T) *T { return &v }

// V3AccountSecret is a Secret holding the sim's Piopiy v3 account.
func V3AccountSecret(ns, name string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		StringData: map[string]string{account.KeyToken: V3Token, account.KeyAppID: V3AppID, account.KeyFrom: CallerID},
	}
}
