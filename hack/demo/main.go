// Command demo runs callfleet on one machine without a cluster or a
// container runtime (`make demo`): a real kube-apiserver and etcd with the
// CRDs, piopiy-sim standing in for Piopiy, the manager, the stream gateway
// and the echo bot as processes; it applies config/samples and shows the
// Calls progressing until Ctrl-C, which stops everything in reverse order.
//
// With --smoke it exits 0 as soon as the sample Call has completed and was
// handed off to an agent, and non-zero with a diagnostic dump at --timeout.
// See docs/demo.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/callfleet/callfleet/internal/scheme"
)

type config struct {
	root, dir, binDir, kubeBin, samplesDir, scenarioFile, namespace string

	apiserverAddr, simAddr, webhookAddr, metricsAddr, probeAddr string
	gatewayAddr, gatewayMetricsAddr, botAddr                    string
	consoleAddr                                                 string

	build             bool
	smoke             bool
	timeout           time.Duration
	handoffAfterTurns int
	talk              time.Duration
	poll              time.Duration
	printScenario     bool
}

func main() {
	var c config
	fs := flag.CommandLine
	registerFlags(fs, &c)
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "demo: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}

	if c.printScenario {
		if err := printScenario(c, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "demo: %v\n", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, c, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo: %v\n", err)
		os.Exit(1)
	}
}

// registerFlags binds the demo's flags to c.
func registerFlags(fs *flag.FlagSet, c *config) {
	fs.StringVar(&c.dir, "dir", "", "where the kubeconfig, scenario and logs/ go (default <repo>/bin/demo)")
	fs.StringVar(&c.binDir, "bin", "", "where manager, stream-gateway, piopiy-sim and echo are (default <repo>/bin)")
	fs.StringVar(&c.kubeBin, "kube-bin", os.Getenv("KUBEBUILDER_ASSETS"), "where kube-apiserver, etcd and kubectl are (default $KUBEBUILDER_ASSETS, else <repo>/bin/k8s)")
	fs.BoolVar(&c.build, "build", true, "go build the binaries into --bin first (a no-op when they are up to date)")
	fs.StringVar(&c.samplesDir, "samples", "", "kustomization applied (default <repo>/config/samples)")
	fs.StringVar(&c.scenarioFile, "scenario", "", "piopiy-sim scenario file (default: written from the samples into --dir)")
	fs.StringVar(&c.namespace, "namespace", "demo", "namespace the samples go into")
	fs.StringVar(&c.apiserverAddr, "apiserver-addr", "127.0.0.1:6443", "kube-apiserver address (port 0: any free port)")
	fs.StringVar(&c.simAddr, "sim-addr", "127.0.0.1:7060", "piopiy-sim address (Piopiy's REST API and /sim/)")
	fs.StringVar(&c.webhookAddr, "webhook-addr", "127.0.0.1:9443", "manager's Piopiy webhook receiver")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "127.0.0.1:9080", "manager's /metrics (0: off)")
	fs.StringVar(&c.probeAddr, "probe-addr", "127.0.0.1:9081", "manager's /healthz and /readyz")
	fs.StringVar(&c.gatewayAddr, "gateway-addr", "", "stream gateway address (default: host:port of the sample StreamEndpoint's publicURL, 127.0.0.1:8443)")
	fs.StringVar(&c.gatewayMetricsAddr, "gateway-metrics-addr", "127.0.0.1:9090", "stream gateway's /metrics (0: off)")
	fs.StringVar(&c.botAddr, "bot-addr", "127.0.0.1:8080", "echo bot address (the gateway's --bot-url)")
	fs.StringVar(&c.consoleAddr, "console-addr", "127.0.0.1:8090", "supervisor console address")
	fs.BoolVar(&c.smoke, "smoke", false, "exit 0 once the sample Call completed and was handed off to an agent; non-zero with a diagnostic dump at --timeout")
	fs.DurationVar(&c.timeout, "timeout", 4*time.Minute, "with --smoke: deadline of the whole run")
	fs.IntVar(&c.handoffAfterTurns, "handoff-after-turns", 3, "the echo bot asks for a human after this many turns (0: never)")
	fs.DurationVar(&c.talk, "talk", 25*time.Second, "how long the sample Call's callee talks before hanging up (scenario)")
	fs.DurationVar(&c.poll, "poll", 500*time.Millisecond, "how often piopiy-sim's record is read for the event lines")
	fs.BoolVar(&c.printScenario, "print-scenario", false, "print the piopiy-sim scenario made from the samples and exit (hack/demo-kind.sh uses it)")
}

// stack stops what was started, last first.
type stack struct {
	mu    sync.Mutex
	items []stackItem
	procs []*proc
}

type stackItem struct {
	name string
	stop func() error
}

func (s *stack) push(name string, stop func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = append(s.items, stackItem{name, stop})
}

func (s *stack) addProc(p *proc) {
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	s.push(p.name, func() error { return p.stop(30 * time.Second) })
}

func (s *stack) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items) == 0
}

func (s *stack) unwind(out io.Writer) {
	s.mu.Lock()
	items := s.items
	s.items = nil
	s.mu.Unlock()
	for i := len(items) - 1; i >= 0; i-- {
		sayf(out, "  stopping %-20s", items[i].name)
		start := time.Now()
		if err := items[i].stop(); err != nil {
			sayf(out, " %v\n", err)
		} else {
			sayf(out, " done (%s)\n", time.Since(start).Round(100*time.Millisecond))
		}
	}
}

// killAll is the second Ctrl-C: no more waiting.
func (s *stack) killAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.procs {
		p.kill()
	}
}

func (s *stack) unexpectedExit() *proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.procs {
		if p.exitedUnexpectedly() {
			return p
		}
	}
	return nil
}

func run(ctx context.Context, c config, out io.Writer) (err error) {
	began := time.Now()
	if c.smoke {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	if err := c.defaults(); err != nil {
		return err
	}
	d := &demoRun{
		c:          c,
		out:        out,
		logDir:     filepath.Join(c.dir, "logs"),
		kubeconfig: filepath.Join(c.dir, "kubeconfig"),
		kubectl:    filepath.Join(c.kubeBin, "kubectl"),
	}
	if err := os.MkdirAll(d.logDir, 0o755); err != nil {
		return err
	}
	unlock, err := lockDir(c.dir)
	if err != nil {
		return err
	}
	defer unlock()
	// A kubeconfig left by an earlier run names certificates that are gone;
	// it is written again once the apiserver is up, and removed at the end
	// (not there when the apiserver never came up: nothing to report).
	_ = os.Remove(d.kubeconfig)
	defer func() { _ = os.Remove(d.kubeconfig) }()
	for _, b := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(c.kubeBin, b)); err != nil {
			return fmt.Errorf("%s not found in %s: run `make kube-bins` (hack/build-kube.sh builds it from Go modules), or set --kube-bin", b, c.kubeBin)
		}
	}
	d.p = &printer{out: out}
	defer d.stopAll()

	if err := d.findBinaries(ctx); err != nil {
		return err
	}
	applyDir, scenario, err := d.prepare()
	if err != nil {
		return err
	}
	d.webhookToken, d.streamKey, d.monitorKey = randomHex(16), randomHex(32), randomHex(32)
	k8s, err := d.startControlPlane(ctx)
	if err != nil {
		return err
	}
	simURL, err := d.startProcesses(ctx, scenario)
	if err != nil {
		return err
	}
	con, err := startConsole(ctx, c, &d.st, d.logDir, d.bins["console"], d.kubeconfig, d.kubectl, d.monitorKey)
	if err != nil {
		return err
	}
	if err := d.applySamples(ctx, applyDir); err != nil {
		return err
	}
	printHowTo(out, c, d.kubeconfig, d.smp)
	con.print(out)
	d.p.raw("\n" + callHeader())
	return d.watch(ctx, k8s, simURL, began)
}

// demoRun is what the steps of one run share.
type demoRun struct {
	c                                   config
	out                                 io.Writer
	p                                   *printer
	st                                  stack // what was started, stopped by stopAll
	logDir, kubeconfig, kubectl         string
	bins                                map[string]string
	smp                                 *samples
	webhookToken, streamKey, monitorKey string
}

// sayf writes the demo's progress to out, the terminal: a failed write there
// has nowhere better to be reported, so it is not checked.
func sayf(out io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(out, format, args...)
}

// stopAll stops everything on the way out, in reverse order; a second
// Ctrl-C kills what is left.
func (d *demoRun) stopAll() {
	d.p.close()
	if d.st.empty() {
		return
	}
	sayf(d.out, "\nStopping (Ctrl-C again to kill at once):\n")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	unwound := make(chan struct{})
	go func() {
		select {
		case <-sig:
			sayf(d.out, "  killing everything\n")
			d.st.killAll()
		case <-unwound:
		}
	}()
	d.st.unwind(d.out)
	close(unwound)
	signal.Stop(sig)
	sayf(d.out, "Stopped. Logs are in %s\n", d.logDir)
}

// findBinaries builds the binaries with --build, and finds them.
func (d *demoRun) findBinaries(ctx context.Context) error {
	c := d.c
	if c.build {
		sayf(d.out, "Building manager, stream-gateway, piopiy-sim and the echo bot into %s ...\n", c.binDir)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", c.binDir+string(filepath.Separator), "./cmd/manager", "./cmd/stream-gateway", "./cmd/piopiy-sim", "./cmd/console", "./examples/bots/echo")
		cmd.Dir = c.root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v\n%s", err, b)
		}
	}
	d.bins = map[string]string{}
	for _, b := range []string{"manager", "stream-gateway", "piopiy-sim", "console", "echo"} {
		d.bins[b] = filepath.Join(c.binDir, b)
		if _, err := os.Stat(d.bins[b]); err != nil {
			return fmt.Errorf("%s not found: run `make build`, or this with --build", d.bins[b])
		}
	}
	return nil
}

// prepare reads the samples, checks the ports are free and writes the
// overlays to apply and piopiy-sim's scenario.
func (d *demoRun) prepare() (applyDir, scenario string, err error) {
	c := &d.c
	if d.smp, err = readSamples(d.kubectl, c.samplesDir); err != nil {
		return "", "", err
	}
	if c.gatewayAddr == "" {
		c.gatewayAddr = d.smp.defaultGatewayAt
	}
	if err := checkPorts([]portUser{
		{"kube-apiserver", "--apiserver-addr", c.apiserverAddr},
		{"piopiy-sim", "--sim-addr", c.simAddr},
		{"manager webhook receiver", "--webhook-addr", c.webhookAddr},
		{"manager metrics", "--metrics-addr", c.metricsAddr},
		{"manager probes", "--probe-addr", c.probeAddr},
		{"stream gateway", "--gateway-addr", c.gatewayAddr},
		{"stream gateway metrics", "--gateway-metrics-addr", c.gatewayMetricsAddr},
		{"echo bot", "--bot-addr", c.botAddr},
		{"console", "--console-addr", c.consoleAddr},
	}); err != nil {
		return "", "", err
	}
	if applyDir, err = d.smp.overlay(c.samplesDir, c.dir, c.gatewayAddr); err != nil {
		return "", "", err
	}
	if _, err := campaignOverlay(c.samplesDir, c.dir); err != nil {
		return "", "", err
	}
	scenario = c.scenarioFile
	if scenario == "" {
		scenario = filepath.Join(c.dir, "scenario.yaml")
		if err := os.WriteFile(scenario, []byte(d.smp.scenario(c.talk.String())), 0o644); err != nil {
			return "", "", err
		}
	}
	return applyDir, scenario, nil
}

// startControlPlane is step 1: kube-apiserver and etcd, the kubeconfig and
// the namespace.
func (d *demoRun) startControlPlane(ctx context.Context) (client.WithWatch, error) {
	sayf(d.out, "Starting kube-apiserver and etcd (envtest, CRDs from config/crd/bases) ...\n")
	env, err := startControlPlane(d.c, d.logDir)
	if err != nil {
		return nil, err
	}
	d.st.push("kube-apiserver+etcd", env.Stop)
	if err := writeKubeconfig(env, d.kubeconfig); err != nil {
		return nil, err
	}
	k8s, err := client.NewWithWatch(env.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, err
	}
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: d.c.namespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating namespace %s: %w", d.c.namespace, err)
	}
	sayf(d.out, "  apiserver %s, kubeconfig %s\n", env.Config.Host, d.kubeconfig)
	return k8s, nil
}

// startProcesses is steps 2 to 4: piopiy-sim, the manager, the bot and the
// gateway in front of it, each waited for. It returns piopiy-sim's URL.
func (d *demoRun) startProcesses(ctx context.Context, scenario string) (string, error) {
	c, smp := d.c, d.smp
	// 2. piopiy-sim, posting webhooks to the manager.
	simURL := "http://" + c.simAddr
	webhookURL := "http://" + c.webhookAddr + "/piopiy/events/" + d.webhookToken
	if err := d.start(ctx, procSpec{name: "piopiy-sim", what: "piopiy-sim", bin: d.bins["piopiy-sim"],
		args: []string{"--listen=" + c.simAddr, fmt.Sprintf("--apps=%d:%s", smp.appID, smp.secret),
			"--webhook-url=" + webhookURL, "--scenario=" + scenario, "--redelivery-scale=0.01"},
		timeout: time.Minute, ready: httpOK(simURL + "/sim/stats")}); err != nil {
		return "", err
	}
	sayf(d.out, "  piopiy-sim %s (app %d from the sample Secret, scenario %s)\n", simURL, smp.appID, scenario)

	// 3. The manager.
	mgrEnv := []string{"KUBECONFIG=" + d.kubeconfig, "CALLFLEET_WEBHOOK_TOKEN=" + d.webhookToken, "CALLFLEET_STREAM_TOKEN_KEY=" + d.streamKey}
	if err := d.start(ctx, procSpec{name: "manager", what: "manager", bin: d.bins["manager"], env: mgrEnv,
		args: []string{"--kubeconfig=" + d.kubeconfig,
			"--metrics-bind-address=" + c.metricsAddr, "--metrics-secure=false", // loopback only
			"--health-probe-bind-address=" + c.probeAddr,
			"--webhook-bind-address=" + c.webhookAddr,
			"--piopiy-rest-url=" + simURL, "--piopiy-action-url=" + simURL,
			"--default-account=" + c.namespace + "/" + smp.accountName,
			"--cdr-grace=5s", "--zap-encoder=console"},
		timeout: 2 * time.Minute, ready: httpOK("http://" + c.probeAddr + "/readyz")}); err != nil {
		return "", err
	}
	sayf(d.out, "  manager: webhook %s/piopiy/events/<token>, metrics %s\n", "http://"+c.webhookAddr, orOff(c.metricsAddr))

	// 4. The bot, then the gateway in front of it.
	if err := d.start(ctx, procSpec{name: "echo-bot", what: "echo bot", bin: d.bins["echo"],
		args:    []string{"--listen=" + c.botAddr, "--handoff-after-turns=" + strconv.Itoa(c.handoffAfterTurns)},
		timeout: time.Minute, ready: tcpOpen(c.botAddr)}); err != nil {
		return "", err
	}
	gwEnv := []string{"CALLFLEET_STREAM_TOKEN_ROOT_KEY=" + d.streamKey, "CALLFLEET_MONITOR_TOKEN_ROOT_KEY=" + d.monitorKey}
	if err := d.start(ctx, procSpec{name: "stream-gateway", what: "stream gateway", bin: d.bins["stream-gateway"], env: gwEnv,
		args: []string{"--kubeconfig=" + d.kubeconfig, "--listen=" + c.gatewayAddr, "--bot-url=ws://" + c.botAddr + "/",
			"--endpoint=" + smp.endpoint.Name, "--namespace=" + c.namespace, "--public-url=ws://" + c.gatewayAddr + "/",
			"--pod-name=demo-gateway", "--default-from=" + smp.from,
			"--metrics-bind-address=" + c.gatewayMetricsAddr, "--zap-encoder=console"},
		timeout: 2 * time.Minute, ready: httpOK("http://" + c.gatewayAddr + "/readyz")}); err != nil {
		return "", err
	}
	sayf(d.out, "  echo bot ws://%s/ behind the stream gateway ws://%s/ (endpoint %s)\n", c.botAddr, c.gatewayAddr, smp.endpoint.Name)
	return simURL, nil
}

// procSpec is a process of the demo and how to tell it is ready.
type procSpec struct {
	name, what, bin string // what names it in a readiness error
	env, args       []string
	timeout         time.Duration
	ready           func() error
}

// start starts one process, puts it on the stack and waits until it is
// ready.
func (d *demoRun) start(ctx context.Context, s procSpec) error {
	p, err := startProc(d.logDir, s.name, s.bin, s.env, s.args...)
	if err != nil {
		return err
	}
	d.st.addProc(p)
	return waitReady(ctx, p, s.timeout, s.what, s.ready)
}

// applySamples is step 5: kubectl apply of the samples' overlay.
func (d *demoRun) applySamples(ctx context.Context, applyDir string) error {
	applyArgs := []string{"--kubeconfig", d.kubeconfig, "apply", "-k", applyDir, "-n", d.c.namespace}
	sayf(d.out, "Applying the samples: kubectl apply -k %s -n %s\n", rel(d.c.root, applyDir), d.c.namespace)
	b, err := exec.CommandContext(ctx, d.kubectl, applyArgs...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl apply: %v\n%s", err, b)
	}
	sayf(d.out, "%s", indent(strings.Split(strings.TrimSpace(string(b)), "\n")))
	return nil
}

// watch prints the Calls and piopiy-sim's record as they move until ctx
// ends, a process exits, or (with --smoke) the smoke run is decided.
func (d *demoRun) watch(ctx context.Context, k8s client.WithWatch, simURL string, began time.Time) error {
	c, out := d.c, d.out
	w := newWatcher(k8s, c.namespace, d.p)
	sw := newSimWatcher(simURL, d.p)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go w.run(wctx)
	go sw.run(wctx, c.poll, false)

	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if c.smoke && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				stopWatch()
				dump(out, c, k8s, sw, d.logDir)
				return fmt.Errorf("smoke: not done within --timeout %s (see the dump above and %s)", c.timeout, d.logDir)
			}
			return nil
		case <-tick.C:
		}
		if p := d.st.unexpectedExit(); p != nil {
			stopWatch()
			return fmt.Errorf("%s exited unexpectedly (%v); last lines of %s:\n%s", p.name, p.err, p.logPath, indent(tailFile(p.logPath, 20)))
		}
		if !c.smoke {
			continue
		}
		switch ok, why := smokeDone(w, sw, d.smp); {
		case ok:
			stopWatch()
			sayf(out, "\nsmoke: OK in %s: %s\n", time.Since(began).Round(time.Second), why)
			return nil
		case why != "":
			stopWatch()
			dump(out, c, k8s, sw, d.logDir)
			return fmt.Errorf("smoke: %s", why)
		}
	}
}

func printScenario(c config, out io.Writer) error {
	if err := c.defaults(); err != nil {
		return err
	}
	smp, err := readSamples(filepath.Join(c.kubeBin, "kubectl"), c.samplesDir)
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, smp.scenario(c.talk.String()))
	return err
}

func (c *config) defaults() error {
	if c.root == "" {
		root, err := repoRoot()
		if err != nil {
			return err
		}
		c.root = root
	}
	abs := func(p *string, def string) {
		if *p == "" {
			*p = def
		}
		if !filepath.IsAbs(*p) {
			*p, _ = filepath.Abs(*p)
		}
	}
	abs(&c.dir, filepath.Join(c.root, "bin", "demo"))
	abs(&c.binDir, filepath.Join(c.root, "bin"))
	abs(&c.kubeBin, filepath.Join(c.root, "bin", "k8s"))
	abs(&c.samplesDir, filepath.Join(c.root, "config", "samples"))
	if c.scenarioFile != "" {
		abs(&c.scenarioFile, "")
	}
	if c.metricsAddr == "" {
		c.metricsAddr = "0"
	}
	if c.gatewayMetricsAddr == "" {
		c.gatewayMetricsAddr = "0"
	}
	return nil
}

// repoRoot walks up from the working directory to callfleet's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/callfleet/callfleet\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("run the demo inside the callfleet repository (no go.mod of github.com/callfleet/callfleet above %s)", dir)
		}
	}
}

// startControlPlane runs kube-apiserver and etcd (envtest) on
// --apiserver-addr with the CRDs installed, logging to logDir.
func startControlPlane(c config, logDir string) (*envtest.Environment, error) {
	host, port, err := net.SplitHostPort(c.apiserverAddr)
	if err != nil {
		return nil, fmt.Errorf("--apiserver-addr: %w", err)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    c.kubeBin,
		CRDDirectoryPaths:        []string{filepath.Join(c.root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		Scheme:                   scheme.New(),
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	api := env.ControlPlane.GetAPIServer()
	api.Address = host
	if port != "0" {
		api.Port = port
	}
	for _, w := range []struct {
		name     string
		out, err *io.Writer
	}{{"kube-apiserver", &api.Out, &api.Err}} {
		f, err := os.Create(filepath.Join(logDir, w.name+".log"))
		if err != nil {
			return nil, err
		}
		*w.out, *w.err = f, f
	}
	// envtest logs through controller-runtime's logger.
	envLog, err := os.Create(filepath.Join(logDir, "envtest.log"))
	if err != nil {
		return nil, err
	}
	logf.SetLogger(zap.New(zap.WriteTo(envLog)))
	etcdLog, err := os.Create(filepath.Join(logDir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	env.ControlPlane.Etcd = &envtest.Etcd{Out: etcdLog, Err: etcdLog}
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd: %w (see %s)", err, filepath.Join(logDir, "kube-apiserver.log"))
	}
	env.Config.QPS, env.Config.Burst = 100, 200
	return env, nil
}

// lockDir keeps two demos from sharing --dir (kubeconfig and logs).
func lockDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close() // the lock is the error; the file was only opened for it
		return nil, fmt.Errorf("another demo is running with --dir %s (stop it with Ctrl-C, or pass another --dir and other ports)", dir)
	}
	return func() { _ = f.Close() }, nil // closing releases the lock; nothing was written
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func orOff(addr string) string {
	if addr == "0" {
		return "off"
	}
	return "http://" + addr + "/metrics"
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}
