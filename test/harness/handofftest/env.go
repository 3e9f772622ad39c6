// Package handofftest runs everything a handoff touches in one process, for
// the agentpool tests and the handoff benchmark: a real kube-apiserver
// (envtest), piopiy-sim, the Call controller and webhook receiver
// (test/harness), the AgentPool and handoff controllers, the stream gateway
// and a bot speaking the gateway's bot protocol.
package handofftest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/controller/agentpool"
	"github.com/callfleet/callfleet/internal/controller/call"
	"github.com/callfleet/callfleet/internal/controller/handoff"
	"github.com/callfleet/callfleet/internal/gateway"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/pkg/piopiy"
	piopiyv3 "github.com/callfleet/callfleet/pkg/piopiy/v3"
	"github.com/callfleet/callfleet/test/harness"
)

// Endpoint is the StreamEndpoint every Call of the Env streams to.
const Endpoint = "bots"

// Options tune the Env.
type Options struct {
	// Namespace of the Calls and pools; the gateway serves this one only.
	Namespace string
	// CallWorkers of the Call controller (harness default 8).
	CallWorkers int
	// HandoffWorkers of the handoff controller.
	HandoffWorkers int
	// Logger for the gateway and the controllers; the zero value is silent.
	Logger logr.Logger
	// Gateway, when set, adjusts the gateway's options (another bot, a
	// monitor key) before it starts.
	Gateway func(*gateway.RunOptions)
}

// Env is a running control plane, sim, manager, gateway and bot.
type Env struct {
	H         *harness.Harness
	K8s       client.Client
	Sim       *sim.Sim
	Namespace string
	Bot       *Bot
	// GatewayURL is the ws:// address of the in-process gateway.
	GatewayURL string
	// GatewayMetrics is the gateway's private registry.
	GatewayMetrics *prometheus.Registry

	clients  *lazyClients
	v3       *lazyV3
	opts     Options
	mu       sync.Mutex
	scenario sim.Scenario
	closers  []func()
}

// lazyClients is the handoff controller's Piopiy client cache, filled once
// the sim's address is known (after the harness has started).
type lazyClients struct {
	cache atomic.Pointer[call.ClientCache]
}

func (l *lazyClients) For(c piopiy.Credentials) (call.PiopiyAPI, error) {
	cc := l.cache.Load()
	if cc == nil {
		return nil, errors.New("handofftest: the Piopiy client is not ready")
	}
	return cc.For(c)
}

// lazyV3 is the handoff controller's Piopiy v3 backend, filled like
// lazyClients.
type lazyV3 struct {
	backend atomic.Pointer[call.V3Backend]
}

func (l *lazyV3) For(token string) (call.V3API, error) {
	b := l.backend.Load()
	if b == nil {
		return nil, errors.New("handofftest: the Piopiy v3 client is not ready")
	}
	return b.For(token)
}

// setup registers the AgentPool and handoff controllers on a manager.
func (e *Env) setup(ctx context.Context, mgr ctrl.Manager) error {
	pools := &agentpool.PoolReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("callfleet-agentpool"),
	}
	if err := pools.SetupWithManager(ctx, mgr); err != nil {
		return err
	}
	handoffs := &handoff.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("callfleet-handoff"),
		Accounts: &account.Resolver{Reader: mgr.GetAPIReader(), Default: types.NamespacedName{Namespace: harness.AccountNamespace, Name: harness.AccountName}},
		Piopiy:   e.clients,
		V3:       e.v3,
		Workers:  e.opts.HandoffWorkers,
	}
	return handoffs.SetupWithManager(ctx, mgr)
}

// Start brings everything up. Call Stop when done, also after an error.
func Start(opts Options) (e *Env, err error) {
	if opts.Namespace == "" {
		opts.Namespace = "handoff"
	}
	e = &Env{Namespace: opts.Namespace, clients: &lazyClients{}, v3: &lazyV3{}, opts: opts}
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()
	e.H, err = harness.Start(harness.Options{Workers: opts.CallWorkers, Setup: e.setup})
	e.closers = append(e.closers, func() {
		if e.H != nil {
			e.H.Stop()
		}
	})
	if err != nil {
		return e, err
	}
	if opts.Logger.GetSink() != nil {
		ctrl.SetLogger(opts.Logger)
	}
	e.K8s, e.Sim = e.H.Env.Client, e.H.Sim
	e.clients.cache.Store(&call.ClientCache{Options: []piopiy.Option{
		piopiy.WithRESTBaseURL(e.H.SimURL), piopiy.WithActionBaseURL(e.H.SimURL)}})
	e.v3.backend.Store(&call.V3Backend{Options: []piopiyv3.Option{piopiyv3.WithBaseURL(e.H.SimURL + "/v3")}})
	// Callees answer at once and stay until the call is ended for them.
	e.SetScenario(nil, nil)

	ctx := context.Background()
	if err := e.K8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.Namespace}}); err != nil {
		return e, err
	}
	e.Bot = NewBot()
	e.closers = append(e.closers, e.Bot.Close)
	if err := e.startGateway(); err != nil {
		return e, err
	}
	return e, e.readyEndpoint(ctx)
}

func (e *Env) startGateway() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	e.GatewayURL = "ws://" + ln.Addr().String()
	e.GatewayMetrics = prometheus.NewRegistry()
	started := make(chan struct{})
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	logger := e.opts.Logger
	if logger.GetSink() == nil {
		logger = logr.Discard()
	}
	ro := gateway.RunOptions{
		Options: gateway.Options{
			Namespace:    e.Namespace,
			Endpoint:     Endpoint,
			BotURL:       e.Bot.URL,
			TokenRootKey: e.H.TokenKey,
			PodName:      "gateway-0",
			DefaultFrom:  harness.CallerID,
			PingInterval: 5 * time.Second,
			Registerer:   e.GatewayMetrics,
			Logger:       logger.WithName("gateway"),
		},
		Listener:           ln,
		MetricsBindAddress: "0",
		ShutdownTimeout:    5 * time.Second,
		Started:            func(net.Addr) { close(started) },
	}
	if e.opts.Gateway != nil {
		e.opts.Gateway(&ro)
	}
	go func() { done <- gateway.Run(ctx, e.H.Env.Config, ro) }()
	e.closers = append(e.closers, func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				logger.Error(err, "gateway stopped")
			}
		case <-time.After(30 * time.Second):
		}
	})
	select {
	case <-started:
		return nil
	case err := <-done:
		return fmt.Errorf("gateway exited: %v", err)
	case <-time.After(time.Minute):
		return errors.New("gateway did not start")
	}
}

// readyEndpoint makes the StreamEndpoint the Calls wait for, in external
// mode, and reports it Ready at the gateway's URL as its controller would.
func (e *Env) readyEndpoint(ctx context.Context) error {
	ep := &voicev1alpha1.StreamEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: Endpoint}}
	ep.Spec.PublicURL = e.GatewayURL + "/"
	ep.Spec.External = &voicev1alpha1.ExternalEndpoint{HealthURL: "http" + e.GatewayURL[2:] + "/healthz", Capacity: 1000}
	if err := e.K8s.Create(ctx, ep); err != nil {
		return err
	}
	ep.Status.URL = e.GatewayURL + "/"
	ep.Status.Capacity = 1000
	meta.SetStatusCondition(&ep.Status.Conditions, metav1.Condition{
		Type: voicev1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Healthy", Message: "handofftest gateway", ObservedGeneration: ep.Generation,
	})
	return e.K8s.Status().Update(ctx, ep)
}

// StartSecondManager runs the AgentPool and handoff controllers once more
// in a manager of their own, as a second replica without leader election
// would: reservations must still never double-book an agent.
func (e *Env) StartSecondManager() error {
	mgr, err := ctrl.NewManager(e.H.Env.Config, ctrl.Options{
		Scheme:                 e.H.Env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := e.setup(ctx, mgr); err != nil {
		cancel()
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = mgr.Start(ctx)
	}()
	e.mu.Lock()
	e.closers = append(e.closers, func() { cancel(); <-done })
	e.mu.Unlock()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return errors.New("second manager's cache did not sync")
	}
	return nil
}

// Stop tears everything down, newest first.
func (e *Env) Stop() {
	e.mu.Lock()
	closers := e.closers
	e.closers = nil
	e.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
}

// SetScenario adds callee and agent behaviours to the sim's scenario,
// keeping what earlier calls set. Callees not listed answer after 100ms and
// never hang up; agents not listed answer after 200ms and stay.
func (e *Env) SetScenario(callees map[string]sim.Behaviour, agents map[string]sim.AgentBehaviour) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.scenario.Numbers == nil {
		e.scenario = sim.Scenario{
			Default:      sim.Behaviour{Outcome: sim.OutcomeAnswer, AnswerDelay: 100 * time.Millisecond},
			DefaultAgent: sim.DefaultAgentBehaviour(),
			Numbers:      map[string]sim.Behaviour{},
			Agents:       map[string]sim.AgentBehaviour{},
		}
	}
	// The sim keeps the maps it is given: never change them afterwards.
	e.scenario.Numbers = maps.Clone(e.scenario.Numbers)
	e.scenario.Agents = maps.Clone(e.scenario.Agents)
	for n, b := range callees {
		e.scenario.Numbers[n] = b
	}
	for n, b := range agents {
		e.scenario.Agents[n] = b
	}
	e.Sim.SetScenario(e.scenario)
}

var numberSeq atomic.Int64

// Number returns a phone number no other caller of Number gets.
func Number(prefix string) string {
	return fmt.Sprintf("%s%08d", prefix, numberSeq.Add(1))
}

// NewCall returns a Call streaming through the gateway, handing off to
// pool (not yet requested), with listenMode both.
func (e *Env) NewCall(name, pool string, mut ...func(*voicev1alpha1.Call)) *voicev1alpha1.Call {
	c := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: name}}
	c.Spec.To = Number("9172")
	c.Spec.From = harness.CallerID
	c.Spec.StreamEndpointRef = &voicev1alpha1.LocalRef{Name: Endpoint}
	c.Spec.Stream.ListenMode = voicev1alpha1.ListenBoth
	c.Spec.Stream.VoiceQuality = 8000
	c.Spec.RingTimeoutSeconds = 20
	c.Spec.MaxDurationSeconds = 600
	c.Spec.Handoff = &voicev1alpha1.CallHandoff{AgentPoolRef: voicev1alpha1.LocalRef{Name: pool}, OnNoAgent: voicev1alpha1.OnNoAgentReturnToBot}
	for _, m := range mut {
		m(c)
	}
	return c
}

// NewPool returns an AgentPool of n agents with fresh numbers.
func (e *Env) NewPool(name string, n int, mut ...func(*voicev1alpha1.AgentPool)) *voicev1alpha1.AgentPool {
	p := &voicev1alpha1.AgentPool{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: name}}
	p.Spec.Strategy = agentpool.StrategyRoundRobin
	p.Spec.RingTimeoutSeconds = 5
	p.Spec.Queue = voicev1alpha1.QueueSpec{MaxSize: 100, MaxWaitSeconds: 120}
	for i := 0; i < n; i++ {
		p.Spec.Agents = append(p.Spec.Agents, voicev1alpha1.Agent{
			Name: fmt.Sprintf("agent-%d", i), Number: Number("9173"), MaxConcurrentCalls: 1,
		})
	}
	for _, m := range mut {
		m(p)
	}
	return p
}

// Call reads a Call from the apiserver.
func (e *Env) Call(ctx context.Context, name string) (*voicev1alpha1.Call, error) {
	c := &voicev1alpha1.Call{}
	return c, e.K8s.Get(ctx, types.NamespacedName{Namespace: e.Namespace, Name: name}, c)
}

// Pool reads an AgentPool from the apiserver.
func (e *Env) Pool(ctx context.Context, name string) (*voicev1alpha1.AgentPool, error) {
	p := &voicev1alpha1.AgentPool{}
	return p, e.K8s.Get(ctx, types.NamespacedName{Namespace: e.Namespace, Name: name}, p)
}

// UpdateSpec changes a Call's spec as a user would, retrying on conflicts.
func (e *Env) UpdateSpec(ctx context.Context, name string, mut func(*voicev1alpha1.Call)) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		c, err := e.Call(ctx, name)
		if err != nil {
			return err
		}
		mut(c)
		return e.K8s.Update(ctx, c)
	})
}

// SimCall returns the sim's record of the call to number (the last one).
func (e *Env) SimCall(to string) (sim.CallRecord, bool) {
	var out sim.CallRecord
	found := false
	for _, r := range e.Sim.Calls() {
		if r.To == to {
			out, found = r, true
		}
	}
	return out, found
}

// Eventually polls cond until it returns nil or timeout passes, returning
// the last error. Deadlines bound hung tests; they never measure speed.
func Eventually(timeout time.Duration, cond func() error) error {
	end := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(end) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LiveCalls creates n Calls named prefix-000… handing off to pool (not yet
// requested), at most perSecond a second, and waits until every one is
// answered with its stream at the gateway. Pacing keeps the dials from
// swamping a small machine: what is measured and tested is the handoff.
func (e *Env) LiveCalls(ctx context.Context, prefix, pool string, n, perSecond int, timeout time.Duration, mut ...func(*voicev1alpha1.Call)) ([]string, error) {
	names := make([]string, n)
	tick := time.NewTicker(time.Second / time.Duration(max(perSecond, 1)))
	defer tick.Stop()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range names {
		names[i] = fmt.Sprintf("%s-%03d", prefix, i)
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.NewCall(names[i], pool, mut...)
			if c.Labels == nil {
				c.Labels = map[string]string{}
			}
			c.Labels["handofftest"] = prefix
			if err := e.K8s.Create(ctx, c); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return names, err
	}
	err := Eventually(timeout, func() error {
		var list voicev1alpha1.CallList
		if err := e.K8s.List(ctx, &list, client.InNamespace(e.Namespace), client.MatchingLabels{"handofftest": prefix}); err != nil {
			return err
		}
		live, phases := 0, map[string]int{}
		for _, c := range list.Items {
			s := c.Status.Stream
			if c.Status.Phase == voicev1alpha1.CallInProgress && s != nil && s.ConnectedTime != nil && s.DisconnectedTime == nil {
				live++
			}
			phases[string(c.Status.Phase)]++
		}
		if live < n {
			return fmt.Errorf("%d of %d Calls live with their stream connected; phases %v", live, n, phases)
		}
		return nil
	})
	return names, err
}

// RequestAll sets spec.handoff.requested on every named Call at once and
// returns when each write has landed, with the time it was sent.
func (e *Env) RequestAll(ctx context.Context, names []string) (map[string]time.Time, error) {
	var mu sync.Mutex
	sent := make(map[string]time.Time, len(names))
	errs := make(chan error, len(names))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := e.UpdateSpec(ctx, name, func(c *voicev1alpha1.Call) {
				mu.Lock()
				sent[name] = time.Now()
				mu.Unlock()
				c.Spec.Handoff.Requested = true
			})
			if err != nil {
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	return sent, <-errs
}

// DeleteCalls deletes the Calls LiveCalls made with prefix.
func (e *Env) DeleteCalls(ctx context.Context, prefix string) error {
	return e.K8s.DeleteAllOf(ctx, &voicev1alpha1.Call{}, client.InNamespace(e.Namespace), client.MatchingLabels{"handofftest": prefix})
}
