// Command piopiy-sim is a stand-in for the Piopiy v2 voice API (see
// internal/sim and docs/piopiy-sim.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/callfleet/callfleet/internal/sim"
)

const scenarioHelp = `
Scenario file (--scenario, or PUT /sim/scenario at run time), YAML or JSON.
Durations are Go durations ("150ms", "3s"); unknown keys are errors.

  default:                 # numbers not listed (absent: answer after 200ms, hang up 3s later)
    outcome: answer        # answer | busy | noanswer | reject | voicemail
    ringDelay: 100ms       # dial -> ringing
    answerDelay: 2s        # ringing -> answered (or busy / rejected)
    ringTimeout: 30s       # noanswer: how long it rings (default 30s)
    hangupAfter: 20s       # answered -> the callee hangs up (absent: never)
    dtmf: "1"              # digits typed at input / play_get_input
  numbers:                 # by make-call "to", digits only
    "919000000002": {outcome: busy, answerDelay: 500ms}
  defaultAgent:            # bridge targets not listed (absent: answer after 200ms)
    answerDelay: 1s
  agents:                  # by bridge number or connect SIP user
    "919100000001": {answerDelay: 2s, talkFor: 1m}
    "919100000002": {noAnswer: true}      # rings until the bridge timeout
    "919100000003": {busy: true}
  files: [welcome.mp3]     # uploaded files; play of another file_name -> 404

Faults file (--faults, or PUT /sim/faults), YAML or JSON; probabilities 0..1:

  rest:            {latency: 200ms, latencyProb: 0.5, resetProb: 0, tooManyProb: 0,
                    serverErrProb: 0, serverErrCode: 503, ambiguousProb: 0.1,
                    ambiguousMode: close}        # close | 5xx | hang
  restNumbers:     {"919000000009": {ambiguousProb: 1}}   # make-call to this number
  delivery:        {delay: 1s, delayProb: 0, duplicateProb: 0.2, reorderProb: 0.2,
                    dropProb: 0.1, events: [hangup, cdr]}  # events: which statuses (empty: all)
  deliveryNumbers: {"919000000009": {dropProb: 1}}

Inspection and control: GET /sim/calls[?to=N&request_id=ID], GET /sim/calls/{id},
GET /sim/agents, GET /sim/stats, POST /sim/reset, GET|PUT /sim/scenario,
GET|PUT /sim/faults, GET|PUT /sim/webhook {"url": "..."}.
`

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "piopiy-sim:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("piopiy-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen          = fs.String("listen", "127.0.0.1:7060", "address to serve the Piopiy REST paths and /sim/ on")
		apps            = fs.String("apps", "1111111:secret", "comma-separated appid:secret pairs accepted as credentials")
		v3Tokens        = fs.String("v3-tokens", "", "comma-separated token:appid pairs accepted as v3 Bearer tokens (served under /v3)")
		webhookURL      = fs.String("webhook-url", "", "URL live events and CDRs are POSTed to (empty: none)")
		scenarioPath    = fs.String("scenario", "", "scenario file (YAML/JSON, format below); empty: built-in default")
		faultsPath      = fs.String("faults", "", "faults file (YAML/JSON, format below); the fault flags override it")
		redeliveryScale = fs.Float64("redelivery-scale", 1, "multiplies the 5/10/15-minute webhook redelivery schedule (0.001 = 300ms/600ms/900ms)")
		seed            = fs.Int64("seed", 1, "seed of the fault dice (same seed, same faults)")
		logLevel        = fs.String("log-level", "info", "debug | info | warn | error")
		logJSON         = fs.Bool("log-json", false, "log JSON lines instead of text")
		shutdown        = fs.Duration("shutdown-timeout", 10*time.Second, "how long SIGTERM waits to flush webhook deliveries")

		// Shapes: the documented ones by default; see docs/piopiy-sim.md.
		richShapes    = fs.Bool("rich-shapes", false, "send the former, undocumented richer shapes (stream events on leg a with every id, full CDRs from lookups, 420 on cmiuuid_cdr)")
		wsURLQuery    = fs.String("ws-url-query", sim.WSURLQueryStripped, "open question: does the platform keep the ws_url query? stripped | kept")
		listenReading = fs.String("listen-mode-reading", sim.ListenModeExamples, "open question: examples (caller = the person rung) | table (callee = the person rung)")
		streamCMIUUID = fs.String("stream-cmiuuid", sim.StreamCMIUUIDLegA, "open question: the cmiuuid of stream events: legA | own (a fresh id per stream)")
		cdrRedelivery = fs.String("cdr-redelivery", sim.CDRRedeliveryOnFailure, "open question: CDR resends at +5/+15/+30 min: onFailure | always")

		restLatency   = fs.Duration("rest-latency", 0, "fault: extra latency on every REST request")
		rest5xx       = fs.Float64("rest-5xx-prob", 0, "fault: probability of a 503 (nothing done)")
		rest429       = fs.Float64("rest-429-prob", 0, "fault: probability of a 429 (nothing done)")
		restReset     = fs.Float64("rest-reset-prob", 0, "fault: probability of a TCP reset (nothing done)")
		restAmbiguous = fs.Float64("rest-ambiguous-prob", 0, "fault: probability a make-call places the call and then loses the reply")
		ambiguousMode = fs.String("rest-ambiguous-mode", "close", "how the reply is lost: close (reset) | 5xx | hang")
		hookDelay     = fs.Duration("hook-delay", 0, "fault: delay before each webhook's first attempt")
		hookDup       = fs.Float64("hook-duplicate-prob", 0, "fault: probability a webhook is delivered twice")
		hookReorder   = fs.Float64("hook-reorder-prob", 0, "fault: probability a webhook is held back behind the call's next one")
		hookDrop      = fs.Float64("hook-drop-prob", 0, "fault: probability a webhook's first attempt is lost (then redelivered)")
	)
	fs.Usage = func() {
		// Help text on stderr: a failed write has nowhere to be reported.
		_, _ = fmt.Fprintf(fs.Output(), "Usage: piopiy-sim [flags]\n\nA faithful stand-in for the Piopiy v2 voice API: make-call, call action and CDR\nlookups, scripted call lifecycles, WebSocket audio streaming, webhooks, faults.\n\nFlags:\n")
		fs.PrintDefaults()
		_, _ = fmt.Fprint(fs.Output(), scenarioHelp)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	if *logJSON {
		log = slog.New(slog.NewJSONHandler(stderr, opts))
	} else {
		log = slog.New(slog.NewTextHandler(stderr, opts))
	}

	appList, err := parseApps(*apps)
	if err != nil {
		return fmt.Errorf("--apps: %w", err)
	}
	sc := sim.DefaultScenario()
	if *scenarioPath != "" {
		if sc, err = sim.LoadScenario(*scenarioPath); err != nil {
			return err
		}
	}
	var faults sim.Faults
	if *faultsPath != "" {
		b, err := os.ReadFile(*faultsPath)
		if err != nil {
			return fmt.Errorf("read faults: %w", err)
		}
		if faults, err = sim.ParseFaults(b); err != nil {
			return fmt.Errorf("faults %s: %w", *faultsPath, err)
		}
	}
	// Fault flags override the file only when given.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "rest-latency":
			faults.REST.Latency = *restLatency
		case "rest-5xx-prob":
			faults.REST.ServerErrProb = *rest5xx
		case "rest-429-prob":
			faults.REST.TooManyProb = *rest429
		case "rest-reset-prob":
			faults.REST.ResetProb = *restReset
		case "rest-ambiguous-prob":
			faults.REST.AmbiguousProb = *restAmbiguous
		case "rest-ambiguous-mode":
			faults.REST.AmbiguousMode = *ambiguousMode
		case "hook-delay":
			faults.Delivery.Delay = *hookDelay
		case "hook-duplicate-prob":
			faults.Delivery.DuplicateProb = *hookDup
		case "hook-reorder-prob":
			faults.Delivery.ReorderProb = *hookReorder
		case "hook-drop-prob":
			faults.Delivery.DropProb = *hookDrop
		}
	})

	s, err := sim.New(sim.Config{
		Apps: appList, V3: parseV3Tokens(*v3Tokens), WebhookURL: *webhookURL, Scenario: sc, Faults: faults,
		RedeliveryScale: *redeliveryScale, Logger: log, Seed: *seed,
		Shapes: sim.Shapes{Rich: *richShapes, WSURLQuery: *wsURLQuery, ListenMode: *listenReading, StreamCMIUUID: *streamCMIUUID, CDRRedelivery: *cdrRedelivery},
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	url, err := s.Start(*listen)
	if err != nil {
		return err
	}
	log.Info("piopiy-sim ready", "url", url, "apps", len(appList), "webhook_url", *webhookURL, "redelivery_scale", *redeliveryScale)
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), *shutdown)
	defer cancel()
	if err := s.Close(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// parseV3Tokens reads "token:appid,token:appid" (the app id may be empty).
func parseV3Tokens(v string) []sim.V3Account {
	var out []sim.V3Account
	for _, pair := range strings.Split(v, ",") {
		if pair = strings.TrimSpace(pair); pair != "" {
			tok, app, _ := strings.Cut(pair, ":")
			out = append(out, sim.V3Account{Token: tok, AppID: app})
		}
	}
	return out
}

// parseApps reads "appid:secret,appid:secret".
func parseApps(v string) ([]sim.App, error) {
	var out []sim.App
	for _, pair := range strings.Split(v, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		id, secret, ok := strings.Cut(pair, ":")
		if !ok || secret == "" {
			return nil, fmt.Errorf("%q: want appid:secret", pair)
		}
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q: app id must be a positive integer", pair)
		}
		out = append(out, sim.App{AppID: n, Secret: secret})
	}
	if len(out) == 0 {
		return nil, errors.New("no apps given")
	}
	return out, nil
}
