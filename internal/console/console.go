package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/monitortoken"
	"github.com/callfleet/callfleet/internal/scheme"
)

//go:embed assets
var assets embed.FS

// Defaults of Options.
const (
	DefaultSessionTTL = 8 * time.Hour
	// DefaultStreamTTL bounds one event stream; the browser reconnects and
	// is authenticated and authorized again, so a revoked user stops
	// seeing updates within it.
	DefaultStreamTTL = 5 * time.Minute
)

// Options configure a Console.
type Options struct {
	// Namespaces the console watches (empty: all). A user still sees only
	// the namespaces RBAC lets them list Calls in.
	Namespaces []string
	// SessionKey seals sign-in cookies (at least 32 bytes; the same on every
	// replica).
	SessionKey []byte
	// MonitorRootKey is the root monitor key, the same the manager derives
	// each StreamEndpoint gateway's monitor key from: a token for a Call is
	// signed with the key derived for the Call's namespace and
	// streamEndpointRef (monitortoken.DeriveKey), which only that
	// endpoint's gateway holds. Nil: no listen-in.
	MonitorRootKey []byte
	// SessionTTL is how long a sign-in lasts (default 8h). The token itself
	// is reviewed again on every request.
	SessionTTL time.Duration
	// StreamTTL bounds one event stream (default DefaultStreamTTL).
	StreamTTL time.Duration
	// MonitorTTL is how long a monitor token opens a socket for.
	MonitorTTL time.Duration
	// SecureCookies marks the cookie Secure even on plain HTTP (behind a
	// TLS-terminating proxy that does not set X-Forwarded-Proto).
	SecureCookies bool
	Logger        logr.Logger
	Now           func() time.Time
}

// Console serves the supervisor console.
type Console struct {
	opts   Options
	cfg    *rest.Config
	rev    *Reviewer
	sess   *sessions
	cache  cache.Cache
	scheme *runtime.Scheme
	mapper meta.RESTMapper
	board  *broker
	pages  *template.Template
	log    logr.Logger
}

// New returns a Console acting with cfg (its own identity: token and access
// reviews, and reading Calls, Campaigns, StreamEndpoints and AgentPools).
func New(cfg *rest.Config, o Options) (*Console, error) {
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.StreamTTL <= 0 {
		o.StreamTTL = DefaultStreamTTL
	}
	if o.MonitorTTL <= 0 {
		o.MonitorTTL = monitortoken.DefaultTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MonitorRootKey != nil && len(o.MonitorRootKey) < monitortoken.MinKeyLen {
		return nil, fmt.Errorf("console: monitor key is %d bytes, want at least %d", len(o.MonitorRootKey), monitortoken.MinKeyLen)
	}
	sess, err := newSessions(o.SessionKey, o.SessionTTL, o.SecureCookies)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	sch := scheme.New()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return nil, err
	}
	co := cache.Options{Scheme: sch, Mapper: mapper, HTTPClient: hc, DefaultTransform: cache.TransformStripManagedFields()}
	if len(o.Namespaces) > 0 {
		co.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.Namespaces {
			co.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	ca, err := cache.New(cfg, co)
	if err != nil {
		return nil, err
	}
	pages, err := template.New("").Funcs(funcs).ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, err
	}
	return &Console{
		opts: o, cfg: cfg, sess: sess, cache: ca, scheme: sch, mapper: mapper, board: newBroker(), pages: pages,
		rev: &Reviewer{Client: cs, Now: o.Now},
		log: o.Logger,
	}, nil
}

// Start runs the console's watch until ctx ends. The board is fed from it.
func (c *Console) Start(ctx context.Context) error {
	for _, obj := range []client.Object{&voicev1alpha1.Call{}, &voicev1alpha1.Campaign{}} {
		inf, err := c.cache.GetInformer(ctx, obj)
		if err != nil {
			return err
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { c.changed(o, false) },
			UpdateFunc: func(_, o any) { c.changed(o, false) },
			DeleteFunc: func(o any) {
				if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
					o = t.Obj
				}
				c.changed(o, true)
			},
		}); err != nil {
			return err
		}
	}
	// Read lazily but known up front, so the first page need not wait.
	for _, obj := range []client.Object{&voicev1alpha1.StreamEndpoint{}, &voicev1alpha1.AgentPool{}} {
		if _, err := c.cache.GetInformer(ctx, obj); err != nil {
			return err
		}
	}
	return c.cache.Start(ctx)
}

// WaitForSync reports whether the console's cache has synced.
func (c *Console) WaitForSync(ctx context.Context) bool { return c.cache.WaitForCacheSync(ctx) }

func (c *Console) changed(o any, deleted bool) {
	switch obj := o.(type) {
	case *voicev1alpha1.Call:
		r := callRow(obj)
		r.Deleted = deleted
		c.board.publish(obj.Namespace, newEvent("call", r))
	case *voicev1alpha1.Campaign:
		r := campaignRow(obj)
		r.Deleted = deleted
		c.board.publish(obj.Namespace, newEvent("campaign", r))
	}
}

// Handler serves the console.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(static)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /{$}", c.index)
	mux.HandleFunc("POST /login", c.login)
	mux.HandleFunc("POST /logout", c.logout)
	mux.HandleFunc("GET /ns/{ns}", c.authed(c.boardPage))
	mux.HandleFunc("GET /ns/{ns}/events", c.authed(c.events))
	mux.HandleFunc("GET /ns/{ns}/calls/{name}", c.authed(c.callPage))
	mux.HandleFunc("POST /ns/{ns}/calls/{name}/monitor", c.authed(c.csrf(c.monitorToken)))
	mux.HandleFunc("POST /ns/{ns}/calls/{name}/{action}", c.authed(c.csrf(c.act)))
	mux.HandleFunc("GET /ns/{ns}/campaigns/{name}", c.authed(c.campaignPage))
	return secureHeaders(mux)
}

// secureHeaders: no inline script or framing, no referrer leaking paths,
// bounded request bodies.
func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		// connect-src: the gateways' monitor sockets are on other origins.
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		// Forms are a token and a few short fields.
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		h.ServeHTTP(w, r)
	})
}

type handler func(w http.ResponseWriter, r *http.Request, u User)

// authed authenticates the request (bearer header, else the sign-in
// cookie) with a TokenReview; 401 when that fails.
func (c *Console) authed(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := c.user(r)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		h(w, r, u)
	}
}

func (c *Console) user(r *http.Request) (User, error) {
	if tok, ok := bearer(r); ok {
		return c.rev.Authenticate(r.Context(), tok)
	}
	s, err := c.sess.open(r, c.opts.Now())
	if err != nil {
		return User{}, err
	}
	u, err := c.rev.Authenticate(r.Context(), s.Token)
	if err != nil {
		return User{}, err
	}
	u.session, u.expires = s.Session, time.Unix(s.Expires, 0)
	return u, nil
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && (h[:7] == "Bearer " || h[:7] == "bearer ") {
		return h[7:], true
	}
	return "", false
}

func (c *Console) csrf(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, u User) {
		if err := c.sess.checkCSRF(r, u); err != nil {
			c.fail(w, r, err)
			return
		}
		h(w, r, u)
	}
}

// fail answers an error: 401 and the sign-in page, 403 with the reason, or
// 500 without details. Nothing of the resource is shown.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="callfleet-console"`)
		c.render(w, r, http.StatusUnauthorized, "login.html", loginData{Error: "Sign in with a Kubernetes token.", Namespace: r.PathValue("ns")})
	case errors.Is(err, ErrForbidden):
		c.render(w, r, http.StatusForbidden, "error.html", errorData{Status: http.StatusForbidden, Message: err.Error()})
	case errors.Is(err, errNotFound):
		c.render(w, r, http.StatusNotFound, "error.html", errorData{Status: http.StatusNotFound, Message: err.Error()})
	case errors.Is(err, errBadRequest):
		c.render(w, r, http.StatusBadRequest, "error.html", errorData{Status: http.StatusBadRequest, Message: err.Error()})
	default:
		c.log.Error(err, "console request failed", "path", r.URL.Path)
		c.render(w, r, http.StatusInternalServerError, "error.html", errorData{Status: http.StatusInternalServerError, Message: "the console could not do that; see its log"})
	}
}

var (
	errNotFound   = errors.New("not found")
	errBadRequest = errors.New("bad request")
)

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.pages.ExecuteTemplate(w, page, data); err != nil {
		c.log.Error(err, "rendering", "page", page, "path", r.URL.Path)
	}
}
