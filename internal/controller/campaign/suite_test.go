package campaign_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
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
	piopiyv3 "github.com/callfleet/callfleet/pkg/piopiy/v3"
	"github.com/callfleet/callfleet/test/harness"
)

// The suite runs, in one process, a real kube-apiserver and etcd (envtest),
// piopiy-sim, the webhook receiver, and a manager with the Call and
// Campaign controllers, as internal/controller/call's suite does. The
// manager can be stopped and a new one started (restart_test.go).

const (
	appID     = 4242002
	appSecret = "sim-app-secret"
	callerID  = "918000000002"
)

var (
	env        *testenv.Env
	k8s        client.Client
	piopiySim  *sim.Sim
	streamSink string
	tokenKey   []byte
	// receiver is the webhook receiver of the running manager; the HTTP
	// server stays up across manager restarts.
	receiver atomic.Pointer[webhook.Receiver]
	mgrMu    sync.Mutex
	current  *runningManager
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// CAMPAIGN_TEST_LOG=<file> keeps the controllers' logs for debugging.
	logTo := io.Discard
	if path := os.Getenv("CAMPAIGN_TEST_LOG"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() { _ = f.Close() }()
		logTo = f
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(logTo), zap.UseDevMode(true)))
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	k8s = env.Client

	piopiySim, err = sim.New(sim.Config{
		Apps:            []sim.App{{AppID: appID, Secret: appSecret}},
		V3:              []sim.V3Account{{Token: v3Token, AppID: v3AppID}},
		RedeliveryScale: 0.0005,
		Seed:            11,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	simURL, err := piopiySim.Start("127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = piopiySim.Close(context.Background()) }()

	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.SetReadLimit(1 << 20)
		for {
			if _, _, err := c.Read(r.Context()); err != nil {
				return
			}
		}
	}))
	defer sink.Close()
	streamSink = "ws" + strings.TrimPrefix(sink.URL, "http") + "/stream"

	tokenKey = make([]byte, 32)
	_, _ = rand.Read(tokenKey)
	token := hex.EncodeToString(tokenKey[:8])
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := receiver.Load()
		if rc == nil {
			http.Error(w, "manager down", http.StatusServiceUnavailable)
			return
		}
		rc.ServeHTTP(w, r)
	}))
	defer hooks.Close()
	piopiySim.SetWebhookURL(hooks.URL + webhook.PathPrefix + token)

	v3Opts = []piopiyv3.Option{piopiyv3.WithBaseURL(simURL + "/v3"), piopiyv3.WithRetries(3, 50*time.Millisecond)}
	piopiyOpts = []piopiy.Option{piopiy.WithRESTBaseURL(simURL), piopiy.WithActionBaseURL(simURL), piopiy.WithLookupRetries(3, 50*time.Millisecond)}
	webhookToken = token
	if err := startManager(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stopManager()
	if err := createDefaultAccount(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

var (
	piopiyOpts   []piopiy.Option
	v3Opts       []piopiyv3.Option
	webhookToken string
)

// fixedNow, when set, is the Campaign controller's clock (a sequential
// test sets it; nothing else runs then).
var fixedNow atomic.Pointer[time.Time]

func campaignNow() time.Time {
	if t := fixedNow.Load(); t != nil {
		return *t
	}
	return time.Now()
}

type runningManager struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startManager starts a manager with the Call and Campaign controllers and
// points the webhook receiver at it.
func startManager() error {
	mgrMu.Lock()
	defer mgrMu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
		Controller:             config.Controller{SkipNameValidation: ptr(true)},
	})
	if err != nil {
		cancel()
		return err
	}
	calls := &call.Reconciler{
		Client:        mgr.GetClient(),
		APIReader:     mgr.GetAPIReader(),
		Recorder:      mgr.GetEventRecorder("callfleet-call"),
		Accounts:      &account.Resolver{Reader: mgr.GetAPIReader(), Default: types.NamespacedName{Namespace: "callfleet-system", Name: "piopiy"}},
		Piopiy:        &call.ClientCache{Options: piopiyOpts},
		V3:            &call.V3Backend{Options: v3Opts, PollInterval: 300 * time.Millisecond, AnsweredPollInterval: 500 * time.Millisecond},
		Limiter:       rate.NewLimiter(rate.Inf, 0),
		TokenKey:      tokenKey,
		SettleTimeout: 8 * time.Second,
		CDRGrace:      2 * time.Second,
		DialTimeout:   2 * time.Second,
		Workers:       8,
	}
	if err := calls.SetupWithManager(ctx, mgr); err != nil {
		cancel()
		return err
	}
	campaigns := &campaign.Reconciler{
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("callfleet-campaign"),
		Now:       campaignNow,
	}
	if err := campaigns.SetupWithManager(ctx, mgr); err != nil {
		cancel()
		return err
	}
	receiver.Store(&webhook.Receiver{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Token: webhookToken, CacheWait: 300 * time.Millisecond})
	rm := &runningManager{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rm.done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	current = rm
	return nil
}

// stopManager stops the running manager and waits until it has.
func stopManager() {
	mgrMu.Lock()
	defer mgrMu.Unlock()
	if current == nil {
		return
	}
	receiver.Store(nil)
	current.cancel()
	<-current.done
	current = nil
}

func createDefaultAccount(ctx context.Context) error {
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "callfleet-system"}}); err != nil {
		return err
	}
	return k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "callfleet-system", Name: "piopiy"},
		StringData: map[string]string{account.KeyAppID: fmt.Sprint(appID), account.KeySecret: appSecret, account.KeyFrom: callerID},
	})
}

func ptr[T any](v T) *T { return &v }

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// numbers hands out destination numbers no other test uses, so the sim's
// per-number records belong to one test.
var numberSeq atomic.Int64

func newNumber() string { return fmt.Sprintf("9171%08d", numberSeq.Add(1)) }

func newNumbers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = newNumber()
	}
	return out
}

var (
	scenarioMu      sync.Mutex
	currentScenario = sim.Scenario{Default: sim.DefaultBehaviour(), Numbers: map[string]sim.Behaviour{}}
)

// setBehaviour gives numbers a sim scenario, keeping every other number's.
func setBehaviour(b sim.Behaviour, numbers ...string) {
	scenarioMu.Lock()
	defer scenarioMu.Unlock()
	for _, n := range numbers {
		currentScenario.Numbers[n] = b
	}
	piopiySim.SetScenario(currentScenario)
}

// quick is a call answered at once and hung up by the callee shortly after.
func quick(talk time.Duration) sim.Behaviour {
	return sim.Behaviour{Outcome: sim.OutcomeAnswer, AnswerDelay: 20 * time.Millisecond, HangupAfter: talk}
}

func newCampaign(ns, name string, numbers []string, mutate ...func(*voicev1alpha1.Campaign)) *voicev1alpha1.Campaign {
	c := &voicev1alpha1.Campaign{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	c.Spec.CallTemplate.Spec.Stream.URL = streamSink
	c.Spec.CallTemplate.Spec.RingTimeoutSeconds = 5
	c.Spec.CallTemplate.Spec.MaxDurationSeconds = 60
	c.Spec.Concurrency = 10
	c.Spec.CallsPerMinute = 60000
	for _, n := range numbers {
		c.Spec.Contacts = append(c.Spec.Contacts, voicev1alpha1.Contact{Number: n})
	}
	for _, m := range mutate {
		m(c)
	}
	return c
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := k8s.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func getCampaign(t *testing.T, ns, name string) *voicev1alpha1.Campaign {
	t.Helper()
	c := &voicev1alpha1.Campaign{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, c); err != nil {
		t.Fatalf("get campaign %s/%s: %v", ns, name, err)
	}
	return c
}

// waitCampaign waits until cond holds for the Campaign's status.
func waitCampaign(t *testing.T, ns, name, what string, timeout time.Duration, cond func(*voicev1alpha1.Campaign) bool) *voicev1alpha1.Campaign {
	t.Helper()
	// The timeouts only bound a wait; on a shared, loaded machine a Call's
	// life (dial, webhooks, status) can take tens of seconds.
	timeout *= slack
	var c *voicev1alpha1.Campaign
	harness.WaitFor(t, fmt.Sprintf("Campaign %s/%s: %s", ns, name, what), timeout, func() (bool, string) {
		c = getCampaign(t, ns, name)
		return cond(c), describe(c)
	})
	return c
}

// slack scales every wait of the suite.
const slack = 4

func waitReady(t *testing.T, ns, name string, timeout time.Duration) *voicev1alpha1.Campaign {
	t.Helper()
	return waitCampaign(t, ns, name, "Ready", timeout, func(c *voicev1alpha1.Campaign) bool {
		r := meta.FindStatusCondition(c.Status.Conditions, voicev1alpha1.ConditionReady)
		return r != nil && r.Status == metav1.ConditionTrue && r.ObservedGeneration == c.Generation
	})
}

func condition(c *voicev1alpha1.Campaign, typ string) *metav1.Condition {
	return meta.FindStatusCondition(c.Status.Conditions, typ)
}

func describe(c *voicev1alpha1.Campaign) string {
	st := c.Status.DeepCopy()
	for i := range st.Conditions {
		st.Conditions[i].LastTransitionTime = metav1.Time{}
	}
	b, _ := json.Marshal(st)
	return string(b)
}

// listCalls lists the Calls of a namespace straight from the apiserver.
func listCalls(t *testing.T, ns string) []voicev1alpha1.Call {
	t.Helper()
	var list voicev1alpha1.CallList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// simCalls returns the sim's records of calls to numbers, in dial order.
func simCalls(numbers ...string) []sim.CallRecord {
	want := map[string]bool{}
	for _, n := range numbers {
		want[n] = true
	}
	var out []sim.CallRecord
	for _, r := range piopiySim.Calls() {
		if want[r.To] {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DialedAt.Before(out[j].DialedAt) })
	return out
}

// dialCounts counts the sim's dials per number.
func dialCounts(numbers ...string) map[string]int {
	out := map[string]int{}
	for _, r := range simCalls(numbers...) {
		out[r.To]++
	}
	return out
}

// assertEachDialedOnce fails unless every number was dialed exactly once.
func assertEachDialedOnce(t *testing.T, numbers ...string) {
	t.Helper()
	counts := dialCounts(numbers...)
	for _, n := range numbers {
		if counts[n] != 1 {
			t.Errorf("number %s dialed %d times, want 1", n, counts[n])
		}
	}
}

// maxOverlap is the most sim calls live at once (dial to end).
func maxOverlap(recs []sim.CallRecord) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, r := range recs {
		end := time.Now()
		if r.EndedAt != nil {
			end = *r.EndedAt
		}
		edges = append(edges, edge{r.DialedAt, 1}, edge{end, -1})
	}
	// Ends sort before starts at the same instant.
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at.Equal(edges[j].at) {
			return edges[i].delta < edges[j].delta
		}
		return edges[i].at.Before(edges[j].at)
	})
	cur, best := 0, 0
	for _, e := range edges {
		cur += e.delta
		best = max(best, cur)
	}
	return best
}

// updateCampaign changes a Campaign's spec as a user would, retrying on
// conflicts with the controller's writes.
func updateCampaign(t *testing.T, ns, name string, mutate func(*voicev1alpha1.Campaign)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		c := getCampaign(t, ns, name)
		mutate(c)
		return k8s.Update(context.Background(), c)
	})
	if err != nil {
		t.Fatalf("updating Campaign %s/%s: %v", ns, name, err)
	}
}

// eventReasons lists the reasons of the Events about a Campaign.
func eventReasons(t *testing.T, ns, name string) map[string]int {
	t.Helper()
	var list eventsv1.EventList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range list.Items {
		if e.Regarding.Kind == "Campaign" && e.Regarding.Name == name {
			out[e.Reason]++
		}
	}
	return out
}

// waitEvents waits until the Events about a Campaign satisfy cond: the
// recorder writes them asynchronously.
func waitEvents(t *testing.T, ns, name string, cond func(map[string]int) bool) {
	t.Helper()
	harness.WaitFor(t, "events of Campaign "+name, 30*time.Second, func() (bool, string) {
		r := eventReasons(t, ns, name)
		return cond(r), fmt.Sprint(r)
	})
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
