package gateway

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/callfleet/callfleet/internal/streamtoken"
)

// Defaults of Options.
const (
	DefaultBotURL            = "ws://127.0.0.1:8080/"
	DefaultMaxBufferedFrames = 50 // 1 s of 20 ms frames
	DefaultPingInterval      = 10 * time.Second
	DefaultBotDialTimeout    = 5 * time.Second
	DefaultControlTimeout    = 5 * time.Second
	// DefaultBridgeTimeoutSeconds is the agent ring time when the AgentPool
	// cannot be read.
	DefaultBridgeTimeoutSeconds = 20
	// DefaultGoodbyeLead is how long before the end of ShutdownDrain the
	// calls still up get their goodbye and hangup.
	DefaultGoodbyeLead = 10 * time.Second
	// DefaultKeyReloadInterval is how often TokenKeyFile is reread. The
	// kubelet itself takes up to a minute or so to update a mounted Secret.
	DefaultKeyReloadInterval = 10 * time.Second
)

// TokenKeyEnv is the environment variable holding the stream token key when
// no key file is given.
const TokenKeyEnv = "CALLFLEET_STREAM_TOKEN_KEY"

// TokenRootKeyEnv holds the manager's root key for a gateway the operator
// runs (see Options.TokenRootKey).
const TokenRootKeyEnv = "CALLFLEET_STREAM_TOKEN_ROOT_KEY"

// MonitorRootKeyEnv holds the console's root monitor key for a gateway the
// operator runs (see Options.MonitorRootKey).
const MonitorRootKeyEnv = "CALLFLEET_MONITOR_TOKEN_ROOT_KEY"

// Options configure a Gateway. Namespace and TokenKey are required.
type Options struct {
	// Namespace whose Calls this gateway serves; tokens for other namespaces
	// are refused.
	Namespace string
	// Endpoint is the StreamEndpoint name: Calls whose streamEndpointRef names
	// another endpoint are refused. Empty accepts any.
	Endpoint string
	// PublicURL is the ws(s) URL this gateway is reached at; Calls with a
	// spec.stream.url under it are served as well as those of Endpoint.
	PublicURL string
	// BotURL is the bot's localhost WebSocket.
	BotURL string
	// TokenKey verifies ws_url tokens (streamtoken.Sign's key). Ignored when
	// TokenKeyFile is set.
	TokenKey []byte
	// MonitorKey verifies the console's monitor tokens (monitortoken.Sign's
	// key), which must differ from TokenKey. Nil (and no MonitorKeyFile or
	// MonitorRootKey): no monitor sockets.
	MonitorKey []byte
	// MonitorKeyFile, when set, is the mounted Secret's monitor key file (the
	// endpoint's derived key, monitortoken.DeriveKey); the key "previous"
	// beside it verifies too. Both are reread every KeyReloadInterval, like
	// TokenKeyFile. It replaces MonitorKey.
	MonitorKeyFile string
	// MonitorRootKey, when set, is the console's root monitor key, from which
	// the gateway derives its endpoint's key as the console does. Like
	// TokenRootKey, only for gateways the operator runs.
	MonitorRootKey []byte
	// MonitorLines is how many assist and transcript lines each call keeps
	// for monitor listeners that join late (default DefaultMonitorLines).
	MonitorLines int
	// TokenRootKey, when set, is the manager's root key, from which the
	// gateway derives its endpoint's key (streamtoken.DeriveKey with
	// Namespace and Endpoint). Only for gateways the operator runs (the demo,
	// a trusted external handler): a pod callfleet makes gets the derived key
	// alone, in TokenKeyFile.
	TokenRootKey []byte
	// TokenKeyFile, when set, is the mounted Secret's key file; the key
	// "previous" beside it verifies too (a rotation's overlap). Both are
	// reread every KeyReloadInterval while Run runs.
	TokenKeyFile      string
	KeyReloadInterval time.Duration
	// MaxStreams is how many streams this gateway holds at once (0: no
	// limit); one more is refused with 503 at_capacity before the upgrade.
	MaxStreams int
	// PodName is reported in status.stream.pod.
	PodName string
	// DefaultFrom is the caller id for the handoff bridge when the Call has
	// no spec.from (the account default that only the manager knows).
	DefaultFrom string
	// MaxBufferedFrames bounds the audio waiting for a slow bot; the oldest
	// is dropped beyond it.
	MaxBufferedFrames int
	// PingInterval is how often both sockets are pinged; a peer that does not
	// answer within PongTimeout is taken as dead and the stream ends.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// BotDialTimeout bounds opening the bot's socket.
	BotDialTimeout time.Duration
	// ControlTimeout bounds a control frame write and a status patch.
	ControlTimeout time.Duration
	// ShutdownDrain is how long Shutdown lets live streams go on (no new
	// one is taken) before ending the rest politely: GoodbyeLead before its
	// end, the calls still up get GoodbyeURL played and a hangup. 1001
	// (going away) is only the last resort for a socket Piopiy keeps open.
	ShutdownDrain time.Duration
	// GoodbyeURL is an audio file played to the calls a drain ends ("": a
	// bare hangup).
	GoodbyeURL string
	// GoodbyeLead is the time the goodbye and hangup get before the end of
	// ShutdownDrain (at most half of it when ShutdownDrain is shorter).
	GoodbyeLead time.Duration
	// BotReconnect is how long the gateway tries to open the bot's socket
	// again when it drops mid-call, instead of ending the call (0: never).
	BotReconnect time.Duration
	// Registerer takes the gateway's metrics (controller-runtime's
	// metrics.Registry in the binary). Nil: a private registry.
	Registerer prometheus.Registerer
	// Logger; the zero value logs nothing.
	Logger logr.Logger
	// Now is the clock for token expiry and status times (tests).
	Now func() time.Time
}

// defaults checks the options and fills in the defaults.
func (o *Options) defaults() error {
	if err := o.streamTokenKey(); err != nil {
		return err
	}
	if err := checkMonitorKey(o); err != nil {
		return err
	}
	if o.MaxStreams < 0 {
		return fmt.Errorf("gateway: max streams %d is negative", o.MaxStreams)
	}
	if err := o.checkURLs(); err != nil {
		return err
	}
	o.fillDefaults()
	return nil
}

// streamTokenKey derives the endpoint's stream token key from a root key,
// and checks the key is long enough unless it is read from a file.
func (o *Options) streamTokenKey() error {
	if o.Namespace == "" {
		return errors.New("gateway: namespace is required")
	}
	if len(o.TokenRootKey) > 0 {
		if o.Endpoint == "" {
			return errors.New("gateway: a root token key needs the endpoint name to derive the endpoint's key")
		}
		k, err := streamtoken.DeriveKey(o.TokenRootKey, o.Namespace, o.Endpoint)
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		o.TokenKey, o.TokenRootKey = k, nil
	}
	if o.TokenKeyFile == "" && len(o.TokenKey) < streamtoken.MinKeyLen {
		return fmt.Errorf("gateway: stream token key is %d bytes, want at least %d", len(o.TokenKey), streamtoken.MinKeyLen)
	}
	return nil
}

// checkURLs checks the goodbye, bot (DefaultBotURL when unset) and public
// URLs.
func (o *Options) checkURLs() error {
	if o.GoodbyeURL != "" {
		if u, err := url.Parse(o.GoodbyeURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("gateway: goodbye url %q must be an http:// or https:// URL", o.GoodbyeURL)
		}
	}
	if o.BotURL == "" {
		o.BotURL = DefaultBotURL
	}
	u, err := url.Parse(o.BotURL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("gateway: bot url %q must be a ws:// or wss:// URL", o.BotURL)
	}
	if o.PublicURL != "" {
		if _, err := url.Parse(o.PublicURL); err != nil {
			return fmt.Errorf("gateway: public url: %w", err)
		}
	}
	return nil
}

// fillDefaults sets the unset durations, sizes, registry and clock.
func (o *Options) fillDefaults() {
	if o.GoodbyeLead <= 0 {
		o.GoodbyeLead = DefaultGoodbyeLead
	}
	if o.KeyReloadInterval <= 0 {
		o.KeyReloadInterval = DefaultKeyReloadInterval
	}
	if o.MaxBufferedFrames <= 0 {
		o.MaxBufferedFrames = DefaultMaxBufferedFrames
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.PongTimeout <= 0 {
		o.PongTimeout = o.PingInterval
	}
	if o.BotDialTimeout <= 0 {
		o.BotDialTimeout = DefaultBotDialTimeout
	}
	if o.ControlTimeout <= 0 {
		o.ControlTimeout = DefaultControlTimeout
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// LoadTokenKey reads the stream token key from file, or from the
// CALLFLEET_STREAM_TOKEN_KEY environment variable when file is empty, the
// same way the manager reads the signing key: a file's surrounding
// whitespace is trimmed (a key written by echo or kubectl keeps a trailing
// newline), the variable is taken as is.
func LoadTokenKey(file string) ([]byte, error) {
	var key []byte
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading token key: %w", err)
		}
		key = []byte(strings.TrimSpace(string(b)))
	} else {
		key = []byte(os.Getenv(TokenKeyEnv))
		if len(key) == 0 {
			return nil, fmt.Errorf("no stream token key: set --token-key-file or %s", TokenKeyEnv)
		}
	}
	if len(key) < streamtoken.MinKeyLen {
		return nil, fmt.Errorf("stream token key is %d bytes, want at least %d", len(key), streamtoken.MinKeyLen)
	}
	return key, nil
}
