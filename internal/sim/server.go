// Package sim is piopiy-sim: a stand-in for the Piopiy v2 voice API (and
// the v3 API under /v3, see v3.go), exactly as strict as piopiy-api.md
// describes it, that can misbehave on purpose.
//
// One Sim serves the REST paths of both Piopiy hosts (rest.telecmi.com and
// piopiy.telecmi.com), runs every placed call through a scripted lifecycle
// (Scenario), streams audio to the PCMO's ws_url as a WebSocket client,
// POSTs live events and CDRs to a webhook URL, and records everything for
// tests under /sim/.
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/callfleet/callfleet/internal/httpserver"
)

// App is one Piopiy application (account credentials).
type App struct {
	AppID  int64
	Secret string
}

// Config configures a Sim. Only Apps is required.
type Config struct {
	Apps            []App
	WebhookURL      string   // where live events and CDRs are POSTed ("" = none)
	Scenario        Scenario // zero = DefaultScenario()
	Faults          Faults   // zero = none
	RedeliveryScale float64  // multiplies the 5/10/15-minute redelivery schedule (0 = 1 = real)
	Logger          *slog.Logger
	Seed            int64 // deterministic fault rolls
	// Sender picks how stream frames are paced: SenderPerStream (default, a
	// goroutine and timer per stream) or SenderShared (a goroutine per CPU
	// over a due-time heap). Measured on 2 cores both cost ~17-19 µs of CPU
	// per frame, dominated by the write syscall; per-stream is the default
	// because a peer that stops reading only ever stalls its own stream.
	Sender string
	// Shapes chooses documented or former shapes and the reading of each
	// open question (zero = the documented shapes; see Shapes).
	Shapes Shapes
	// V3 are the accounts of the v3 API (served under /v3); none: every v3
	// request is refused 401.
	V3 []V3Account
}

// Sim is a running Piopiy stand-in. All methods are safe for concurrent use.
type Sim struct {
	log    *slog.Logger
	apps   map[int64]string
	scale  float64
	dice   *roller
	audio  *audioBank
	hooks  *deliverer
	shared *sharedSender // nil: a goroutine per stream
	late   *latencyHist
	mux    *http.ServeMux
	v3     *v3State
	ctx    context.Context // lives until Close; calls derive from it
	cancel context.CancelCauseFunc

	mu         sync.RWMutex // guards the fields below
	scenario   Scenario
	faults     Faults
	shapes     Shapes
	webhookURL string
	calls      map[string]*call // by request_id
	order      []*call          // dial order, for stable listings
	legs       map[string]legRef
	balance    map[int64]float64
	closed     bool

	callWG sync.WaitGroup // call lifecycles
	srv    *http.Server
}

// legRef finds a leg (a or b) by cmiuuid.
type legRef struct {
	c     *call
	agent *agentLeg // nil for leg a
}

// New validates cfg and returns a Sim that is not yet listening (see Start,
// or mount Handler on your own server).
func New(cfg Config) (*Sim, error) {
	if len(cfg.Apps) == 0 {
		return nil, errors.New("sim: at least one app is required")
	}
	apps := make(map[int64]string, len(cfg.Apps))
	balance := make(map[int64]float64, len(cfg.Apps))
	for _, a := range cfg.Apps {
		if a.AppID <= 0 || a.Secret == "" {
			return nil, fmt.Errorf("sim: app %d: app id must be positive and secret non-empty", a.AppID)
		}
		apps[a.AppID] = a.Secret
		balance[a.AppID] = 1000
	}
	sc := cfg.Scenario.normalize()
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("sim: scenario: %w", err)
	}
	if err := cfg.Faults.validate(); err != nil {
		return nil, fmt.Errorf("sim: faults: %w", err)
	}
	if err := cfg.Shapes.validate(); err != nil {
		return nil, fmt.Errorf("sim: shapes: %w", err)
	}
	if cfg.RedeliveryScale < 0 {
		return nil, errors.New("sim: redelivery scale must not be negative")
	}
	scale := cfg.RedeliveryScale
	if scale == 0 {
		scale = 1
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	s := &Sim{
		log:        log,
		apps:       apps,
		scale:      scale,
		dice:       newRoller(cfg.Seed),
		audio:      newAudioBank(),
		late:       newLatencyHist(),
		ctx:        ctx,
		cancel:     cancel,
		scenario:   sc,
		faults:     cfg.Faults,
		shapes:     cfg.Shapes,
		webhookURL: cfg.WebhookURL,
		calls:      map[string]*call{},
		legs:       map[string]legRef{},
		balance:    balance,
	}
	s.hooks = newDeliverer(s)
	v3, err := newV3State(cfg.V3)
	if err != nil {
		cancel(nil)
		return nil, err
	}
	s.v3 = v3
	switch cfg.Sender {
	case SenderShared:
		s.shared = newSharedSender(ctx, runtime.GOMAXPROCS(0))
	case "", SenderPerStream:
	default:
		cancel(nil)
		return nil, fmt.Errorf("sim: sender %q: want %s or %s", cfg.Sender, SenderShared, SenderPerStream)
	}
	s.mux = http.NewServeMux()
	s.routes()
	return s, nil
}

func (s *Sim) routes() {
	m := s.mux
	// rest.telecmi.com
	m.HandleFunc("/v2/ind_pcmo_make_call", s.handleMakeCall("ind"))
	m.HandleFunc("/v2/global_pcmo_make_call", s.handleMakeCall("global"))
	// piopiy.telecmi.com
	m.HandleFunc("/v1/call/action", s.handleCallAction)
	m.HandleFunc("/v1/call/global_action", s.handleCallAction)
	m.HandleFunc("/v1/piopiy/cmiuuid_cdr", s.handleCMIUUIDCDR)
	m.HandleFunc("/v1/piopiy/requestid_cdr", s.handleRequestIDCDR)
	// rest.piopiy.com/v3
	s.v3Routes(m)
	// inspection and control
	m.HandleFunc("GET /sim/calls", s.handleCalls)
	m.HandleFunc("GET /sim/calls/{id}", s.handleCall)
	m.HandleFunc("GET /sim/agents", s.handleAgents)
	m.HandleFunc("POST /sim/reset", s.handleReset)
	m.HandleFunc("GET /sim/scenario", s.handleGetScenario)
	m.HandleFunc("PUT /sim/scenario", s.handlePutScenario)
	m.HandleFunc("GET /sim/faults", s.handleGetFaults)
	m.HandleFunc("PUT /sim/faults", s.handlePutFaults)
	m.HandleFunc("GET /sim/webhook", s.handleGetWebhook)
	m.HandleFunc("PUT /sim/webhook", s.handlePutWebhook)
	m.HandleFunc("GET /sim/shapes", s.handleGetShapes)
	m.HandleFunc("PUT /sim/shapes", s.handlePutShapes)
	m.HandleFunc("GET /sim/stats", s.handleStats)
	m.HandleFunc("GET /sim/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errf(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
}

// Handler serves the Piopiy REST paths and /sim/ inspection.
func (s *Sim) Handler() http.Handler { return s.mux }

// Start listens on addr (e.g. "127.0.0.1:0") and returns the base URL.
func (s *Sim) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("sim: listen: %w", err)
	}
	s.mu.Lock()
	if s.srv != nil || s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return "", errors.New("sim: already started or closed")
	}
	// Bounded like the real thing's front door. Writes get longer: the
	// "hang" fault holds a reply until the client gives up.
	limits := httpserver.Defaults()
	limits.WriteTimeout = 2 * time.Minute
	s.srv = limits.Server(s.mux)
	s.srv.BaseContext = func(net.Listener) context.Context { return s.ctx }
	s.srv.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	srv := s.srv
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(limits.Listener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	s.log.Info("piopiy-sim listening", "addr", ln.Addr().String())
	return "http://" + ln.Addr().String(), nil
}

// errShutdown is the cancel cause of everything when the Sim closes.
var errShutdown = hangupCause("shutdown")

// Close stops the listener, ends every call without further events (closing
// their sockets), flushes webhook deliveries already queued until ctx ends,
// and drops scheduled redeliveries with a log line.
func (s *Sim) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv := s.srv
	s.mu.Unlock()

	s.cancel(errShutdown)
	var errs []error
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("sim: http shutdown: %w", err))
		}
	}
	done := make(chan struct{})
	go func() { s.callWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("sim: calls still ending: %w", ctx.Err()))
	}
	if err := s.hooks.close(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// SetScenario replaces the scenario for calls placed from now on.
func (s *Sim) SetScenario(sc Scenario) {
	sc = sc.normalize()
	s.mu.Lock()
	s.scenario = sc
	s.mu.Unlock()
}

// SetFaults replaces the faults from now on.
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// SetWebhookURL changes where events go ("" = nowhere), including redeliveries.
func (s *Sim) SetWebhookURL(u string) {
	s.mu.Lock()
	s.webhookURL = u
	s.mu.Unlock()
}

func (s *Sim) currentScenario() Scenario {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.scenario
}

func (s *Sim) currentWebhookURL() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.webhookURL
}

// Reset ends every call silently (no events), forgets all records and
// pending deliveries and clears the stream statistics. Scenario, faults and
// webhook URL stay.
func (s *Sim) Reset(ctx context.Context) error {
	s.mu.Lock()
	calls := s.order
	s.calls, s.order, s.legs = map[string]*call{}, nil, map[string]legRef{}
	s.mu.Unlock()
	for _, c := range calls {
		c.dead.Store(true)
		c.cancel(errReset)
	}
	for _, c := range calls {
		select {
		case <-c.done:
		case <-ctx.Done():
			return fmt.Errorf("sim: reset: %w", ctx.Err())
		}
	}
	s.late.reset()
	return s.resetV3(ctx)
}
