package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/coder/websocket"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/streamtoken"
)

// Gateway serves Piopiy stream sockets. Create it with New, serve Handler,
// register its Call reconciler with SetupWithManager, and call Shutdown on
// the way out (Run does all of that).
type Gateway struct {
	opts      Options
	client    client.Client // reads from the cache; writes status
	apiReader client.Reader // reads the apiserver: checks before shared writes
	metrics   *metrics
	mon       *monitorMetrics
	log       logr.Logger
	reg       *registry
	botHTTP   *http.Client

	ready    atomic.Bool // the Call cache has synced
	stopping atomic.Bool // draining: readyz fails, no new stream
	drain    *drainState
	lm       *lifecycleMetrics
	keyFile  *streamtoken.KeyFile // nil: opts.TokenKey alone
	// monKeyFile holds the mounted monitor keys (nil: opts.MonitorKey
	// alone). The file format and the rotation are the stream key's.
	monKeyFile *streamtoken.KeyFile
}

// New returns a Gateway. c should read from a cache of the namespace's
// Calls; apiReader (nil: c) reads the apiserver directly.
func New(c client.Client, apiReader client.Reader, opts Options) (*Gateway, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("gateway: a Kubernetes client is required")
	}
	if apiReader == nil {
		apiReader = c
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	mm, err := newMonitorMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	lm, err := newLifecycleMetrics(opts.Registerer, opts.MaxStreams)
	if err != nil {
		return nil, err
	}
	var kf *streamtoken.KeyFile
	if opts.TokenKeyFile != "" {
		if kf, err = streamtoken.LoadKeyFile(opts.TokenKeyFile); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		lm.tokenKeys.Set(float64(len(kf.Keys())))
	} else {
		lm.tokenKeys.Set(1)
	}
	var mkf *streamtoken.KeyFile
	if opts.MonitorKeyFile != "" {
		if mkf, err = streamtoken.LoadKeyFile(opts.MonitorKeyFile); err != nil {
			return nil, fmt.Errorf("gateway: monitor key: %w", err)
		}
	}
	return &Gateway{
		drain:      newDrainState(),
		lm:         lm,
		keyFile:    kf,
		monKeyFile: mkf,
		opts:       opts,
		client:     c,
		apiReader:  apiReader,
		metrics:    m,
		mon:        mm,
		log:        opts.Logger,
		reg:        newRegistry(),
		// The bot is on localhost: never through a proxy from the environment.
		botHTTP: &http.Client{Transport: &http.Transport{
			Proxy:       nil,
			DialContext: (&net.Dialer{Timeout: opts.BotDialTimeout}).DialContext,
		}},
	}, nil
}

// SetReady marks the Call cache synced; /readyz answers 200 from then on
// until Shutdown.
func (g *Gateway) SetReady(ready bool) { g.ready.Store(ready) }

// ActiveStreams is the number of sockets open (or being opened) now.
func (g *Gateway) ActiveStreams() int { return g.reg.len() }

// Handler serves /healthz, /readyz and, on every other path, the stream
// WebSocket Piopiy dials.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !g.ready.Load() || g.stopping.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET "+MonitorPath+"{namespace}/{call}", g.serveMonitor)
	mux.HandleFunc("/", g.serveStream)
	return mux
}

func (g *Gateway) refuse(w http.ResponseWriter, log logr.Logger, r *rejection) {
	g.metrics.rejections.WithLabelValues(r.reason).Inc()
	log.Info("stream refused", "status", r.status, "reason", r.reason)
	http.Error(w, http.StatusText(r.status)+": "+r.reason, r.status)
}

// serveStream authenticates a stream request, opens the bot, upgrades and
// relays until the stream ends. Every refusal happens before the upgrade,
// as a plain HTTP status Piopiy reports in its stream event.
func (g *Gateway) serveStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// The token is never logged; the call and attempt in clear are.
	log := g.log.WithValues("call", q.Get("call"), "attempt", q.Get("attempt"), "remote", r.RemoteAddr)
	claims, rej := g.verifyStreamURL(r.URL)
	if rej != nil {
		g.refuse(w, log, rej)
		return
	}
	if g.stopping.Load() {
		g.refuse(w, log, reject(http.StatusServiceUnavailable, rejectDraining))
		return
	}
	if !g.ready.Load() {
		g.refuse(w, log, reject(http.StatusServiceUnavailable, rejectNotReady))
		return
	}
	ctx := r.Context()
	call, rej, err := g.lookupCall(ctx, claims)
	if err != nil {
		log.Error(err, "reading the Call")
		http.Error(w, "cannot read the call", http.StatusInternalServerError)
		return
	}
	if rej != nil {
		g.refuse(w, log, rej)
		return
	}
	key := sessionKey{NamespacedName: types.NamespacedName{Namespace: call.Namespace, Name: call.Name}, Attempt: claims.Attempt}
	switch g.reg.reserve(key, g.opts.MaxStreams) {
	case isDraining:
		g.refuse(w, log, reject(http.StatusServiceUnavailable, rejectDraining))
		return
	case isOpen:
		g.refuse(w, log, reject(http.StatusConflict, rejectDuplicate))
		return
	case isFull:
		g.refuse(w, log, reject(http.StatusServiceUnavailable, rejectAtCapacity))
		g.reportRefused(ctx, key, "gateway at capacity")
		return
	}
	defer g.reg.remove(key)
	// After the reservation, so that a second socket while the first is
	// open here is the more telling duplicate.
	if rej := checkSingleUse(call, claims.Attempt); rej != nil {
		g.refuse(w, log, rej)
		return
	}

	// The bot first: if it is not there, Piopiy gets a 503 (and reports the
	// stream failed) rather than a socket that goes nowhere.
	bot, err := g.dialBot(ctx, key)
	if err != nil {
		log.Error(err, "bot unavailable")
		g.refuse(w, log, reject(http.StatusServiceUnavailable, rejectBot))
		g.reportRefused(ctx, key, "bot unavailable")
		return
	}
	platform, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Piopiy is a server-side client, not a browser: the token, not the
		// Origin header, is what authenticates it.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		log.Error(err, "websocket upgrade")
		_ = bot.CloseNow()
		return
	}
	platform.SetReadLimit(maxPlatformFrame)
	s := newSession(g, key, call, platform, bot, log)
	g.reg.set(key, s)
	if g.inGoodbye() {
		// Accepted before the drain, connected after its goodbye round.
		go s.goodbye(context.WithoutCancel(ctx))
	}
	s.run(context.WithoutCancel(ctx), call)
}

func (g *Gateway) dialBot(ctx context.Context, key sessionKey) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, g.opts.BotDialTimeout)
	defer cancel()
	h := http.Header{}
	// For the bot's logs; the start frame carries the same.
	h.Set("X-Callfleet-Call", key.Namespace+"/"+key.Name)
	h.Set("X-Callfleet-Attempt", strconv.Itoa(int(key.Attempt)))
	c, resp, err := websocket.Dial(ctx, g.opts.BotURL, &websocket.DialOptions{
		HTTPClient:      g.botHTTP,
		HTTPHeader:      h,
		CompressionMode: websocket.CompressionDisabled,
	})
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dialing bot %s: %w", g.opts.BotURL, err)
	}
	// Bots send TTS audio in chunks of any size; bound them all the same.
	c.SetReadLimit(8 << 20)
	return c, nil
}

// reportRefused tells the Call why its stream was refused before it began.
func (g *Gateway) reportRefused(ctx context.Context, key sessionKey, reason string) {
	now := g.opts.Now()
	r := streamReport{
		State:        voicev1alpha1.StreamPhaseDisconnected,
		Pod:          g.opts.PodName,
		Attempt:      key.Attempt,
		Disconnected: &now,
		Reason:       reason,
	}
	body, err := r.patch()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.opts.ControlTimeout)
		defer cancel()
		err = g.patchStatus(ctx, key.NamespacedName, body)
	}
	if ignoreNotFound(err) != nil {
		g.log.Error(err, "reporting a refused stream", "call", key.String(), "reason", reason)
	}
}
