package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/controller/campaign"
	"github.com/callfleet/callfleet/internal/notify"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/test/harness"
)

const deadline = 120 * time.Second

var hmacKey = []byte("a-shared-secret-for-the-sink")

// sink is the user's receiver: down (503) or up, verifying each signature.
type sink struct {
	srv     *httptest.Server
	down    atomic.Bool
	refused atomic.Int64 // requests answered 503 while down
	bad     atomic.Int64 // requests whose signature did not verify

	mu     sync.Mutex
	byID   map[string][]cloudevents.Event
	byType map[string]map[string]bool // type -> ids
}

func newSink() *sink {
	s := &sink{byID: map[string][]cloudevents.Event{}, byType: map[string]map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if s.down.Load() {
			s.refused.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := notify.Verify(hmacKey, body, r.Header.Get(notify.SignatureHeader), time.Now(), 5*time.Minute); err != nil {
			s.bad.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev cloudevents.Event
		if err := json.Unmarshal(body, &ev); err != nil || ev.Validate() != nil {
			s.bad.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.byID[ev.ID()] = append(s.byID[ev.ID()], ev)
		if s.byType[ev.Type()] == nil {
			s.byType[ev.Type()] = map[string]bool{}
		}
		s.byType[ev.Type()][ev.ID()] = true
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	return s
}

func (s *sink) count(typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byType[typ])
}

// startManager runs what a restart of the manager restarts here: the
// Campaign controller and both notifiers. (The Call controller and the
// webhook receiver run on in the harness; they hold no events.)
func startManager(t *testing.T, h *harness.Harness) (stop func()) {
	t.Helper()
	mgr, err := ctrl.NewManager(h.Env.Config, ctrl.Options{
		Scheme:                 h.Env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
		Controller:             config.Controller{SkipNameValidation: ptrTo(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := (&campaign.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader()}).SetupWithManager(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	// Short backoff stands in for the production minutes.
	o := notify.Options{Client: mgr.GetClient(), Sinks: &notify.Resolver{Reader: mgr.GetAPIReader()},
		RetryBase: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond}
	if err := (&notify.CallReconciler{Options: o}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	if err := (&notify.CampaignReconciler{Options: o}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	return func() { cancel(); <-done }
}

func ptrTo[T any](v T) *T { return &v }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSinkDownAndManagerRestartLoseNothing: a Campaign with
// ttlSecondsAfterFinished 0 runs, is suspended and resumed and completes
// while its sink answers 503; the manager restarts in the middle. Once the
// sink is back it receives, signed, every expected event: campaign
// started, suspended, resumed, completed and one call.completed per
// contact, each id the same on every redelivery. The finished Calls are
// deleted only after their event was delivered.
func TestSinkDownAndManagerRestartLoseNothing(t *testing.T) {
	h, err := harness.Start(harness.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	h.Sim.SetScenario(sim.Scenario{Default: sim.Behaviour{Outcome: sim.OutcomeAnswer, AnswerDelay: 100 * time.Millisecond, HangupAfter: time.Second}})
	ctx := context.Background()
	k8s := h.Env.Client
	const ns = "notify"
	must(t, k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	must(t, k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sink-key"},
		Data: map[string][]byte{notify.DefaultKey: hmacKey}}))

	s := newSink()
	defer s.srv.Close()
	s.down.Store(true)
	stop := startManager(t, h)

	const contacts = 4
	c := &voicev1alpha1.Campaign{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "spring"}}
	c.Spec.CallTemplate.Spec.Stream.URL = h.StreamSink
	c.Spec.CallTemplate.Spec.MaxDurationSeconds = 60
	for i := 0; i < contacts; i++ {
		c.Spec.Contacts = append(c.Spec.Contacts, voicev1alpha1.Contact{Number: fmt.Sprintf("9198200000%02d", i)})
	}
	c.Spec.Concurrency = 1
	c.Spec.CallsPerMinute = 600
	c.Spec.TTLSecondsAfterFinished = ptrTo(int32(0))
	c.Spec.Notify = &voicev1alpha1.NotifySink{URL: s.srv.URL + "/events", SecretRef: voicev1alpha1.NotifySecretRef{Name: "sink-key"}}
	must(t, k8s.Create(ctx, c))
	key := types.NamespacedName{Namespace: ns, Name: "spring"}
	get := func() *voicev1alpha1.Campaign {
		cur := &voicev1alpha1.Campaign{}
		must(t, k8s.Get(ctx, key, cur))
		return cur
	}
	ledgerHas := func(typ string) bool {
		return strings.Contains(get().Annotations[notify.AnnotationLedger], `"type":"`+typ+`"`)
	}
	suspend := func(on bool) {
		cur := get()
		orig := cur.DeepCopy()
		cur.Spec.Suspend = on
		must(t, k8s.Patch(ctx, cur, client.MergeFrom(orig)))
	}

	waitFor(t, "NotifyReady", func() bool {
		return meta.IsStatusConditionTrue(get().Status.Conditions, voicev1alpha1.ConditionNotifyReady)
	})
	waitFor(t, "the first Call", func() bool { return get().Status.StartTime != nil })
	suspend(true)
	waitFor(t, "the suspension in the ledger", func() bool { return ledgerHas(notify.TypeCampaignSuspended) })
	suspend(false)
	waitFor(t, "the resume in the ledger", func() bool { return ledgerHas(notify.TypeCampaignResumed) })
	waitFor(t, "a Call to finish", func() bool { st := get().Status; return st.Succeeded+st.Failed >= 1 })

	// The manager restarts; the sink is still down.
	stop()
	waitFor(t, "the Calls in flight to end", func() bool {
		var calls voicev1alpha1.CallList
		must(t, k8s.List(ctx, &calls, client.InNamespace(ns)))
		for _, cl := range calls.Items {
			if _, done := notify.Finished(&cl); !done {
				return false
			}
		}
		return true
	})
	stop = startManager(t, h)
	defer func() { stop() }()
	waitFor(t, "the Campaign to complete", func() bool { return ledgerHas(notify.TypeCampaignCompleted) })
	if s.refused.Load() == 0 {
		t.Fatal("the sink refused nothing: it was never down")
	}

	s.down.Store(false)
	defer func() {
		if t.Failed() {
			s.mu.Lock()
			for typ, ids := range s.byType {
				t.Logf("sink got %s: %d ids", typ, len(ids))
			}
			s.mu.Unlock()
			t.Logf("ledger: %s", get().Annotations[notify.AnnotationLedger])
			var calls voicev1alpha1.CallList
			_ = k8s.List(ctx, &calls, client.InNamespace(ns))
			for _, cl := range calls.Items {
				t.Logf("call %s phase %s finalizers %v annotations %v deleting %v", cl.Name, cl.Status.Phase, cl.Finalizers, cl.Annotations, cl.DeletionTimestamp != nil)
			}
		}
	}()
	waitFor(t, "every event at the sink", func() bool {
		return s.count(notify.TypeCampaignStarted) == 1 && s.count(notify.TypeCampaignSuspended) == 1 &&
			s.count(notify.TypeCampaignResumed) == 1 && s.count(notify.TypeCampaignCompleted) == 1 &&
			s.count(notify.TypeCallCompleted) == contacts
	})
	waitFor(t, "the finished Calls deleted (TTL 0) once delivered", func() bool {
		var calls voicev1alpha1.CallList
		must(t, k8s.List(ctx, &calls, client.InNamespace(ns)))
		return len(calls.Items) == 0
	})

	if n := s.bad.Load(); n != 0 {
		t.Errorf("%d requests with a bad signature or body", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	subjects := map[string]bool{}
	for id, evs := range s.byID {
		for _, ev := range evs[1:] {
			if ev.Type() != evs[0].Type() || ev.Subject() != evs[0].Subject() || string(ev.Data()) != string(evs[0].Data()) {
				t.Errorf("event %s redelivered with other content: %v vs %v", id, ev, evs[0])
			}
		}
		if evs[0].Type() == notify.TypeCallCompleted {
			subjects[evs[0].Subject()] = true
			var d notify.CallCompletedData
			if err := json.Unmarshal(evs[0].Data(), &d); err != nil || d.Campaign != "spring" || d.Outcome != voicev1alpha1.OutcomeAnswered || d.Attempts != 1 {
				t.Errorf("call.completed %s data %+v (%v)", id, d, err)
			}
			if !strings.HasSuffix(id, ".completed") || evs[0].Source() != "/apis/voice.callfleet.dev/v1alpha1/namespaces/notify/calls/"+evs[0].Subject() {
				t.Errorf("call.completed id %s source %s", id, evs[0].Source())
			}
		}
	}
	if len(subjects) != contacts {
		t.Errorf("call.completed for %d distinct Calls, want %d", len(subjects), contacts)
	}
}

// TestBadSinkIsACondition: a sink URL that does not parse, or a key Secret
// that is missing, shows on the Campaign's NotifyReady condition.
func TestBadSinkIsACondition(t *testing.T) {
	h, err := harness.Start(harness.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	ctx := context.Background()
	k8s := h.Env.Client
	const ns = "notify-bad"
	must(t, k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	stop := startManager(t, h)
	defer stop()
	for _, tc := range []struct {
		name, url, secret, reason string
	}{
		{"bad-url", "http://exa mple.com/%zz", "sink-key", voicev1alpha1.ReasonInvalidSinkURL},
		{"no-secret", "https://hooks.example.com/callfleet", "nowhere", voicev1alpha1.ReasonSinkKeyNotFound},
	} {
		c := &voicev1alpha1.Campaign{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tc.name}}
		c.Spec.CallTemplate.Spec.Stream.URL = h.StreamSink
		c.Spec.Contacts = []voicev1alpha1.Contact{{Number: "919830000001"}}
		c.Spec.Suspend = true
		c.Spec.Notify = &voicev1alpha1.NotifySink{URL: tc.url, SecretRef: voicev1alpha1.NotifySecretRef{Name: tc.secret}}
		must(t, k8s.Create(ctx, c))
		waitFor(t, tc.name+": NotifyReady False "+tc.reason, func() bool {
			cur := &voicev1alpha1.Campaign{}
			must(t, k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: tc.name}, cur))
			cond := meta.FindStatusCondition(cur.Status.Conditions, voicev1alpha1.ConditionNotifyReady)
			return cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == tc.reason && cond.ObservedGeneration == cur.Generation
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
