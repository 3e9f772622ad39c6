// Package campaign_test benchmarks a Campaign end to end: a 5,000-contact
// CSV against piopiy-sim with zero latency, on a local kube-apiserver and
// etcd (envtest), with the Call and Campaign controllers and the webhook
// receiver in this process; and, in the same run, a plain loop placing the
// same number of calls straight through pkg/piopiy.
//
//	go test ./test/bench/campaign -run '^$' -bench . -benchtime 1x
//	CAMPAIGN_BENCH_CONTACTS=1000 CAMPAIGN_BENCH_CONCURRENCY=50 go test ...
package campaign_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/controller/call"
	"github.com/callfleet/callfleet/internal/controller/campaign"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/internal/testenv"
	"github.com/callfleet/callfleet/internal/webhook"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

const (
	appID     = 4242003
	appSecret = "sim-app-secret"
	callerID  = "918000000003"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// writeCounter counts the requests that write to the apiserver, by
// resource[/subresource] and verb.
type writeCounter struct {
	next  http.RoundTripper
	mu    sync.Mutex
	by    map[string]int
	paths map[string]int // writes by the code path that sent them (writePath)
	reads map[string]int
	lat   map[string]time.Duration
	all   atomic.Int64
}

func (w *writeCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	path := ""
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		path = writePath()
	}
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		w.all.Add(1)
		w.mu.Lock()
		w.by[resourceOf(req.URL.Path)+" "+req.Method]++
		w.paths[resourceOf(req.URL.Path)+" "+req.Method+" by "+path]++
		w.mu.Unlock()
	default:
		w.mu.Lock()
		w.reads[resourceOf(req.URL.Path)+" "+req.Method]++
		w.mu.Unlock()
	}
	t0 := time.Now()
	resp, err := w.next.RoundTrip(req)
	w.mu.Lock()
	if w.lat == nil {
		w.lat = map[string]time.Duration{}
	}
	w.lat[resourceOf(req.URL.Path)+" "+req.Method] += time.Since(t0)
	w.mu.Unlock()
	if err == nil && resp.StatusCode >= 400 && req.Method != http.MethodGet {
		w.mu.Lock()
		w.by[fmt.Sprintf("%s %s %d", resourceOf(req.URL.Path), req.Method, resp.StatusCode)]++
		if resp.StatusCode == http.StatusConflict {
			w.paths[resourceOf(req.URL.Path)+" "+req.Method+" 409 by "+path]++
		}
		w.mu.Unlock()
	}
	return resp, err
}

// writePath names the code that sent a write: the innermost two callfleet
// functions on the stack (client-go sends a request on its caller's
// goroutine), or the Event recorder, which writes from its own.
func writePath() string {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(3, pcs) // past runtime.Callers, writePath and RoundTrip
	frames := runtime.CallersFrames(pcs[:n])
	var names []string
	events := false
	for {
		f, more := frames.Next()
		const prefix = "github.com/callfleet/callfleet/internal/"
		switch {
		case strings.HasPrefix(f.Function, prefix):
			name := strings.TrimPrefix(f.Function, prefix)
			name = name[strings.LastIndex(name, "/")+1:]
			if len(names) == 0 || names[len(names)-1] != name {
				names = append(names, name)
			}
		case strings.Contains(f.Function, "k8s.io/client-go/tools/events") || strings.Contains(f.Function, "k8s.io/client-go/tools/record"):
			events = true
		}
		if len(names) == 2 || !more {
			break
		}
	}
	switch {
	case len(names) > 0:
		return strings.Join(names, " < ")
	case events:
		return "event recorder"
	}
	return "other"
}

func (w *writeCounter) snapshot() (int64, map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int, len(w.by))
	for k, v := range w.by {
		out[k] = v
	}
	return w.all.Load(), out
}

// resourceOf turns /apis/g/v/namespaces/ns/calls/name/status into
// calls/status.
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, p := range parts {
		if p == "namespaces" && i+2 < len(parts) {
			after := parts[i+2:]
			if len(after) >= 3 {
				return after[0] + "/" + after[2]
			}
			return after[0]
		}
	}
	return path
}

// peakSampler records the peak of the Go heap while it runs.
type peakSampler struct {
	stop chan struct{}
	done chan struct{}
	peak atomic.Uint64
}

func startPeakSampler() *peakSampler {
	p := &peakSampler{stop: make(chan struct{}), done: make(chan struct{})}
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(p.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(samples)
			if v := samples[0].Value.Uint64(); v > p.peak.Load() {
				p.peak.Store(v)
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *peakSampler) finish() uint64 {
	close(p.stop)
	<-p.done
	return p.peak.Load()
}

// peakRSS reads the process's peak resident set (VmHWM), which
// resetPeakRSS sets back to the current RSS.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:"))
		}
	}
	return "n/a"
}

func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func BenchmarkCampaign5000(b *testing.B) {
	for range b.N {
		benchCampaign(b)
	}
}

func benchCampaign(b *testing.B) {
	contacts := envInt("CAMPAIGN_BENCH_CONTACTS", 5000)
	concurrency := envInt("CAMPAIGN_BENCH_CONCURRENCY", 100)
	cpm := envInt("CAMPAIGN_BENCH_CPM", 60000)
	workers := envInt("CAMPAIGN_BENCH_CALL_WORKERS", 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logTo := io.Discard
	if path := os.Getenv("CAMPAIGN_BENCH_LOG"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		logTo = f
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(logTo), zap.UseDevMode(true)))

	env, err := testenv.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()

	// Zero latency: answered at once, hung up by the callee 1 ms later.
	s, err := sim.New(sim.Config{
		Apps:            []sim.App{{AppID: appID, Secret: appSecret}},
		Scenario:        sim.Scenario{Default: sim.Behaviour{Outcome: sim.OutcomeAnswer, HangupAfter: time.Millisecond}},
		RedeliveryScale: 0.001,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	simURL, err := s.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Close(context.Background()) }()
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		for {
			if _, _, err := c.Read(r.Context()); err != nil {
				return
			}
		}
	}))
	defer sink.Close()
	streamURL := "ws" + strings.TrimPrefix(sink.URL, "http") + "/stream"

	// 1. The plain loop: the same number of calls, straight through
	// pkg/piopiy, one after another and then `concurrency` at a time.
	discard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer discard.Close()
	s.SetWebhookURL(discard.URL)
	pc, err := piopiy.NewClient(piopiy.Credentials{AppID: appID, Secret: appSecret}, piopiy.WithRESTBaseURL(simURL), piopiy.WithActionBaseURL(simURL))
	if err != nil {
		b.Fatal(err)
	}
	place := func(i int) error {
		_, err := pc.MakeCall(ctx, piopiy.MakeCallRequest{
			From: callerID, To: fmt.Sprintf("9172%08d", i), DurationSeconds: 60,
			PCMO: piopiy.PCMO{piopiy.Stream(piopiy.StreamOptions{WSURL: streamURL, StreamOnAnswer: true})},
		})
		return err
	}
	start := time.Now()
	for i := range contacts {
		if err := place(i); err != nil {
			b.Fatal(err)
		}
	}
	plainSeq := time.Since(start)
	start = time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var plainErr atomic.Value
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < contacts; i = int(next.Add(1)) - 1 {
				if err := place(contacts + i); err != nil {
					plainErr.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	plainPar := time.Since(start)
	if err, _ := plainErr.Load().(error); err != nil {
		b.Fatal(err)
	}

	// 2. The manager, its writes counted.
	counter := &writeCounter{by: map[string]int{}, reads: map[string]int{}, paths: map[string]int{}}
	cfg := rest.CopyConfig(env.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter })
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
		Controller:             config.Controller{SkipNameValidation: new(true)},
	})
	if err != nil {
		b.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	calls := &call.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("callfleet-call"),
		Accounts:  &account.Resolver{Reader: mgr.GetAPIReader(), Default: types.NamespacedName{Namespace: "callfleet-system", Name: "piopiy"}},
		Piopiy:    &call.ClientCache{Options: []piopiy.Option{piopiy.WithRESTBaseURL(simURL), piopiy.WithActionBaseURL(simURL)}},
		Limiter:   rate.NewLimiter(rate.Inf, 0),
		TokenKey:  key,
		Workers:   workers,
	}
	if err := calls.SetupWithManager(ctx, mgr); err != nil {
		b.Fatal(err)
	}
	campaigns := &campaign.Reconciler{APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("callfleet-campaign")}
	if err := campaigns.SetupWithManager(ctx, mgr); err != nil {
		b.Fatal(err)
	}
	token := hex.EncodeToString(key[:8])
	hooks := httptest.NewServer(&webhook.Receiver{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Token: token, CacheWait: 300 * time.Millisecond, Recent: calls.Recent})
	defer hooks.Close()
	s.SetWebhookURL(hooks.URL + webhook.PathPrefix + token)
	go func() { _ = mgr.Start(ctx) }()

	k8s := env.Client
	must(b, k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "callfleet-system"}}))
	must(b, k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "callfleet-system", Name: "piopiy"},
		StringData: map[string]string{account.KeyAppID: fmt.Sprint(appID), account.KeySecret: appSecret, account.KeyFrom: callerID},
	}))
	must(b, k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}))
	var csv strings.Builder
	csv.WriteString("number,name\n")
	numbers := make([]string, contacts)
	for i := range contacts {
		numbers[i] = fmt.Sprintf("9173%08d", i)
		fmt.Fprintf(&csv, "%s,contact%d\n", numbers[i], i)
	}
	must(b, k8s.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "contacts"}, Data: map[string]string{"contacts.csv": csv.String()}}))
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		b.Fatal("cache did not sync")
	}
	c := &voicev1alpha1.Campaign{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "bench"}}
	c.Spec.CallTemplate.Spec.Stream.URL = streamURL
	c.Spec.CallTemplate.Spec.MaxDurationSeconds = 60
	c.Spec.ContactsFrom = []voicev1alpha1.ContactSource{{ConfigMapRef: voicev1alpha1.LocalRef{Name: "contacts"}}}
	c.Spec.Concurrency = int32(concurrency)
	c.Spec.CallsPerMinute = int32(cpm)
	c.Spec.TTLSecondsAfterFinished = new(int32(0))

	runtime.GC()
	baseline := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(baseline)
	resetPeakRSS()
	heap := startPeakSampler()
	writes0, _ := counter.snapshot()
	b.ResetTimer()
	start = time.Now()
	must(b, k8s.Create(ctx, c))
	// The budget keeps the benchmark under 3 minutes on a small or busy
	// machine: when it runs out the Campaign is suspended, the Calls in
	// flight finish, and the figures cover the contacts started. The time
	// until the suspend is observed (observedGeneration and Suspended) is
	// printed.
	budget := time.Duration(envInt("CAMPAIGN_BENCH_BUDGET_SECONDS", 80)) * time.Second
	deadline := time.Now().Add(budget)
	lastProgress := time.Now()
	partial := false
	var suspendWritten time.Time
	var suspendSeen time.Duration
	var suspendActive int64
	for {
		must(b, k8s.Get(ctx, client.ObjectKeyFromObject(c), c))
		if r := meta.FindStatusCondition(c.Status.Conditions, voicev1alpha1.ConditionReady); r != nil && r.Status == metav1.ConditionTrue {
			break
		}
		if !partial && time.Now().After(deadline) {
			partial = true
			c.Spec.Suspend = true
			if err := k8s.Update(ctx, c); err != nil {
				partial = false
				continue // a conflict with the controller: read and try again
			}
			suspendWritten = time.Now()
			deadline = time.Now().Add(time.Minute)
		}
		if partial && suspendSeen == 0 && c.Status.ObservedGeneration == c.Generation && c.Spec.Suspend {
			if s := meta.FindStatusCondition(c.Status.Conditions, voicev1alpha1.ConditionSuspended); s != nil && s.Status == metav1.ConditionTrue && s.ObservedGeneration == c.Generation {
				suspendSeen, suspendActive = time.Since(suspendWritten), c.Status.Active
			}
		}
		if partial && c.Status.Active == 0 && c.Status.ObservedGeneration == c.Generation {
			break
		}
		if partial && time.Now().After(deadline) {
			b.Fatalf("Calls did not drain after suspending: %+v", c.Status)
		}
		if os.Getenv("CAMPAIGN_BENCH_PROGRESS") != "" && time.Since(lastProgress) > 5*time.Second {
			lastProgress = time.Now()
			n, by := counter.snapshot()
			fmt.Printf("%s pending %d succeeded %d active %d writes %d %v\n", time.Since(start).Round(time.Second), c.Status.Pending, c.Status.Succeeded, c.Status.Active, n, by)
		}
		if partial {
			time.Sleep(20 * time.Millisecond) // to time the suspend's observation closely
		} else {
			time.Sleep(200 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	done := int(c.Status.Succeeded + c.Status.Failed)
	// Writes go on after Ready: the last Calls' deletion. Count them too.
	for drain := time.Now().Add(time.Minute); time.Now().Before(drain); {
		var left voicev1alpha1.CallList
		must(b, k8s.List(ctx, &left, client.InNamespace("bench"), client.Limit(1)))
		if len(left.Items) == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	heapPeak := heap.finish()
	if path := os.Getenv("CAMPAIGN_BENCH_HEAPPROFILE"); path != "" {
		f, err := os.Create(path)
		must(b, err)
		must(b, pprof.WriteHeapProfile(f))
		_ = f.Close()
	}
	rss := peakRSS()
	writes, by := counter.snapshot()
	writes -= writes0

	// The sim's record: the campaign's dials, each number once.
	want := map[string]bool{}
	for _, n := range numbers {
		want[n] = true
	}
	var dials []time.Time
	seen := map[string]int{}
	for _, r := range s.Calls() {
		if want[r.To] {
			dials = append(dials, r.DialedAt)
			seen[r.To]++
		}
	}
	dialed := 0
	for i, n := range numbers {
		if seen[n] > 1 {
			b.Fatalf("contact %d (%s) dialed %d times", i, n, seen[n])
		}
		dialed += seen[n]
	}
	if c.Status.Results == nil || int(c.Status.Results.Recorded) != dialed || dialed != done {
		b.Fatalf("%d numbers dialed, %d counted, results record %+v", dialed, done, c.Status.Results)
	}
	sort.Slice(dials, func(i, j int) bool { return dials[i].Before(dials[j]) })
	dialSpan := dials[len(dials)-1].Sub(dials[0])

	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("\nCampaign benchmark: %d contacts, concurrency %d, callsPerMinute %d, ttlSecondsAfterFinished 0\n", contacts, concurrency, cpm)
	fmt.Printf("  machine: GOMAXPROCS %d, NumCPU %d, %s, load average %s; Call controller workers %d; apiserver+etcd: envtest on this machine; piopiy-sim in process, zero latency\n",
		runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.Version(), strings.Join(strings.Fields(string(load))[:3], " "), workers)
	if partial {
		fmt.Printf("  PARTIAL: the %s budget ran out (CAMPAIGN_BENCH_BUDGET_SECONDS); suspended with %d contacts pending and let the Calls in flight finish; figures cover those %d\n", budget, c.Status.Pending, done)
		fmt.Printf("  suspend: observed (observedGeneration, Suspended=True) %s after the write, with %d Calls in flight\n", suspendSeen.Round(time.Millisecond), suspendActive)
	}
	fmt.Printf("  campaign:   %d succeeded, %d failed in %s = %.1f calls/s end to end (first to last dial %s = %.1f dials/s)\n",
		c.Status.Succeeded, c.Status.Failed, elapsed.Round(time.Millisecond), float64(done)/elapsed.Seconds(), dialSpan.Round(time.Millisecond), float64(len(dials)-1)/dialSpan.Seconds())
	fmt.Printf("  plain loop: pkg/piopiy MakeCall x%d sequential %s = %.0f calls/s; %d at a time %s = %.0f calls/s\n",
		contacts, plainSeq.Round(time.Millisecond), float64(contacts)/plainSeq.Seconds(), concurrency, plainPar.Round(time.Millisecond), float64(contacts)/plainPar.Seconds())
	campaignRate := float64(done) / elapsed.Seconds()
	fmt.Printf("  ratio:      campaign end to end / plain loop sequential = %.3f; / plain loop %d at a time = %.3f\n",
		campaignRate/(float64(contacts)/plainSeq.Seconds()), concurrency, campaignRate/(float64(contacts)/plainPar.Seconds()))
	fmt.Printf("  apiserver writes by the manager: %d = %.2f per call (requests, refused ones included)\n", writes, float64(writes)/float64(done))
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	// Most written first; "calls/status PUT 409" right under "calls/status PUT".
	sort.Slice(keys, func(i, j int) bool {
		bi, bj := strings.Join(strings.Fields(keys[i])[:2], " "), strings.Join(strings.Fields(keys[j])[:2], " ")
		if bi != bj {
			return by[bi] > by[bj]
		}
		return len(keys[i]) < len(keys[j])
	})
	for _, k := range keys {
		counter.mu.Lock()
		lat := counter.lat[k]
		counter.mu.Unlock()
		if strings.Count(k, " ") == 2 {
			fmt.Printf("      of which refused %-8s %7d  %.2f/call\n", k[strings.LastIndex(k, " ")+1:], by[k], float64(by[k])/float64(done))
			continue
		}
		fmt.Printf("    %-28s %7d  %.2f/call  mean latency %s\n", k, by[k], float64(by[k])/float64(done), (lat / time.Duration(max(by[k], 1))).Round(time.Millisecond))
	}
	conflicts := 0
	for k, v := range by {
		if strings.HasSuffix(k, " 409") {
			conflicts += v
		}
	}
	fmt.Printf("  409 Conflict: %d = %.2f per call\n", conflicts, float64(conflicts)/float64(done))
	counter.mu.Lock()
	paths := make([]string, 0, len(counter.paths))
	for k := range counter.paths {
		paths = append(paths, k)
	}
	sort.Slice(paths, func(i, j int) bool {
		if counter.paths[paths[i]] != counter.paths[paths[j]] {
			return counter.paths[paths[i]] > counter.paths[paths[j]]
		}
		return paths[i] < paths[j]
	})
	fmt.Printf("  writes by code path (setup included, refused ones included):\n")
	for _, k := range paths {
		fmt.Printf("    %7d  %.2f/call  %s\n", counter.paths[k], float64(counter.paths[k])/float64(done), k)
	}
	counter.mu.Unlock()
	own := 0
	for _, k := range []string{"calls POST", "calls PATCH", "calls DELETE", "campaigns/status PUT", "campaigns PUT", "configmaps PUT", "configmaps POST"} {
		own += by[k]
	}
	results := by["configmaps PUT"] + by["configmaps POST"]
	fmt.Printf("  results record: %d writes (ConfigMap creates and updates) for %d contacts = %.3f per call; %d shard(s)\n",
		results, c.Status.Results.Recorded, float64(results)/float64(max(done, 1)), len(c.Status.Results.ConfigMaps))
	fmt.Printf("  of these, the Campaign controller's (Call create, count release, TTL delete, Campaign status, results record): %.2f per call; the rest is each Call's own lifecycle\n", float64(own)/float64(done))
	fmt.Printf("  memory (whole test process: manager, webhook receiver, piopiy-sim and its records of every call, harness): peak RSS %s, peak Go heap %.1f MiB (%.1f MiB live before the Campaign)\n",
		rss, float64(heapPeak)/(1<<20), float64(baseline[0].Value.Uint64())/(1<<20))

	b.ReportMetric(float64(done)/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(writes)/float64(done), "writes/call")
	b.ReportMetric(float64(results)/float64(max(done, 1)), "results-writes/call")
	b.ReportMetric(float64(contacts)/plainSeq.Seconds(), "plain-calls/s")
	b.ReportMetric(campaignRate/(float64(contacts)/plainSeq.Seconds()), "ratio")
	b.ReportMetric(float64(conflicts)/float64(done), "conflicts/call")
	b.ReportMetric(float64(heapPeak)/(1<<20), "peak-heap-MiB")
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
