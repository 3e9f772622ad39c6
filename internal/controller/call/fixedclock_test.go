package call

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/scheme"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// These tests drive one Reconcile pass at a time on a fixed clock, with a
// fake Piopiy that records what it is asked: decisions that hinge on time
// are tested without waiting for it.

// fakeAPI is a Piopiy account: it records call actions and answers CDR
// lookups and call actions as told.
type fakeAPI struct {
	mu        sync.Mutex
	actions   []string // "hangup leg-a"
	actionErr error
	lookups   int
	cdrs      []piopiy.CDR
	lookupErr error
}

func (f *fakeAPI) MakeCall(context.Context, piopiy.MakeCallRequest) (*piopiy.MakeCallResponse, error) {
	return nil, errors.New("fakeAPI: no dialing in these tests")
}

func (f *fakeAPI) CallAction(_ context.Context, cmiuuid string, act piopiy.CallActionKind) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, string(act)+" "+cmiuuid)
	return f.actionErr
}

func (f *fakeAPI) CDRsByRequestID(context.Context, string) ([]piopiy.CDR, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	return f.cdrs, f.lookupErr
}

func (f *fakeAPI) For(piopiy.Credentials) (PiopiyAPI, error) { return f, nil }

func (f *fakeAPI) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.actions...)
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// answeredCall is attempt 1 of a Call, placed at t0 and answered at t0+2s.
func answeredCall() *voicev1alpha1.Call {
	c := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{Namespace: "sales", Name: "asha", UID: "u1", Finalizers: []string{Finalizer}, Generation: 1}}
	c.Spec.To = "919876543210"
	c.Spec.Stream.URL = "wss://bots.example/stream"
	c.Spec.RingTimeoutSeconds = 30
	c.Spec.MaxDurationSeconds = 600
	c.Spec.Stream.ConnectTimeoutSeconds = 10
	dial, answer := metav1.NewTime(t0), metav1.NewTime(t0.Add(2*time.Second))
	c.Status.Phase = voicev1alpha1.CallInProgress
	c.Status.Attempts = []voicev1alpha1.CallAttempt{{
		Number: 1, ID: "u1.1", State: voicev1alpha1.AttemptDialed, RequestID: "req-1", CMIUUID: "leg-a",
		IntentTime: dial, DialTime: &dial, AnswerTime: &answer,
	}}
	c.Status.Stream = &voicev1alpha1.CallStreamStatus{State: voicev1alpha1.StreamPhasePending}
	return c
}

type fixture struct {
	r   *Reconciler
	k8s client.Client
	api *fakeAPI
	rec *events.FakeRecorder
	now time.Time
}

func newFixture(t *testing.T, call *voicev1alpha1.Call, now time.Time) *fixture {
	t.Helper()
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "callfleet-system", Name: "piopiy"},
		Data:       map[string][]byte{account.KeyAppID: []byte("4242001"), account.KeySecret: []byte("s3cret"), account.KeyFrom: []byte("918000000001")},
	}
	k8s := fake.NewClientBuilder().WithScheme(scheme.New()).WithStatusSubresource(&voicev1alpha1.Call{}).WithObjects(call, secret).Build()
	f := &fixture{k8s: k8s, api: &fakeAPI{}, rec: events.NewFakeRecorder(32), now: now}
	f.r = &Reconciler{
		Client: k8s, APIReader: k8s, Recorder: f.rec,
		Accounts:      &account.Resolver{Reader: k8s, Default: types.NamespacedName{Namespace: "callfleet-system", Name: "piopiy"}, Now: func() time.Time { return f.now }},
		Piopiy:        f.api,
		Limiter:       rate.NewLimiter(rate.Inf, 0),
		TokenKey:      make([]byte, 32),
		SettleTimeout: 35 * time.Minute,
		CDRGrace:      20 * time.Second,
		DialTimeout:   time.Second,
		Now:           func() time.Time { return f.now },
	}
	return f
}

func (f *fixture) reconcile(t *testing.T) (ctrl.Result, *voicev1alpha1.Call) {
	t.Helper()
	res, err := f.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "sales", Name: "asha"}})
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	c := &voicev1alpha1.Call{}
	if err := f.k8s.Get(context.Background(), types.NamespacedName{Namespace: "sales", Name: "asha"}, c); err != nil {
		t.Fatal(err)
	}
	return res, c
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}
