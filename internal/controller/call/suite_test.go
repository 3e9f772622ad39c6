package call_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/test/harness"
)

var (
	h         *harness.Harness
	k8s       client.Client
	piopiySim *sim.Sim
	// streamSink takes any stream and discards it, standing in for a bot
	// where the test is about the call, not the audio.
	streamSink string
)

// settleTimeout is short so ambiguous creates the sim never
// placed end within the test; the sim's redeliveries come well before it.
const settleTimeout = 15 * time.Second

func TestMain(m *testing.M) {
	var err error
	h, err = harness.Start(harness.Options{SettleTimeout: settleTimeout})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		h.Stop()
		os.Exit(1)
	}
	k8s, piopiySim, streamSink = h.Env.Client, h.Sim, h.StreamSink
	code := m.Run()
	h.Stop()
	os.Exit(code)
}

func accountSecret(ns, name string) *corev1.Secret { return harness.AccountSecret(ns, name) }

// newNamespace makes a namespace for one test.
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

func newNumber() string { return fmt.Sprintf("9170%08d", numberSeq.Add(1)) }

// setBehaviour gives numbers a sim scenario, keeping every other number's.
var scenarioMu = make(chan struct{}, 1)

func setBehaviour(numbers map[string]sim.Behaviour, agents map[string]sim.AgentBehaviour) {
	scenarioMu <- struct{}{}
	defer func() { <-scenarioMu }()
	sc := currentScenario
	if sc.Numbers == nil {
		sc = sim.Scenario{Default: sim.DefaultBehaviour(), Numbers: map[string]sim.Behaviour{}, Agents: map[string]sim.AgentBehaviour{}}
	}
	for n, b := range numbers {
		sc.Numbers[n] = b
	}
	for n, b := range agents {
		sc.Agents[n] = b
	}
	currentScenario = sc
	piopiySim.SetScenario(sc)
}

var currentScenario sim.Scenario

func newCall(ns, name, to string, mutate ...func(*voicev1alpha1.Call)) *voicev1alpha1.Call {
	c := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	c.Spec.To = to
	c.Spec.Stream.URL = streamSink
	c.Spec.RingTimeoutSeconds = 5
	c.Spec.MaxDurationSeconds = 60
	for _, m := range mutate {
		m(c)
	}
	return c
}

func getCall(t *testing.T, ns, name string) *voicev1alpha1.Call {
	t.Helper()
	c := &voicev1alpha1.Call{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, c); err != nil {
		t.Fatalf("get call %s/%s: %v", ns, name, err)
	}
	return c
}

func waitForPhase(t *testing.T, ns, name string, timeout time.Duration, phases ...voicev1alpha1.CallPhase) *voicev1alpha1.Call {
	t.Helper()
	var c *voicev1alpha1.Call
	harness.WaitFor(t, fmt.Sprintf("Call %s/%s in %v", ns, name, phases), timeout, func() (bool, string) {
		c = getCall(t, ns, name)
		for _, p := range phases {
			if c.Status.Phase == p {
				return true, ""
			}
		}
		return false, describe(c)
	})
	return c
}

func describe(c *voicev1alpha1.Call) string {
	b, _ := json.Marshal(c.Status)
	return string(b)
}

// simCalls returns the sim's record of every call to a number.
func simCalls(to string) []sim.CallRecord {
	var out []sim.CallRecord
	for _, r := range piopiySim.Calls() {
		if r.To == to {
			out = append(out, r)
		}
	}
	return out
}

// attemptOf reads callfleet's attempt id out of a sim record's extra_params.
func attemptOf(r sim.CallRecord) string {
	var extra map[string]string
	_ = json.Unmarshal(r.ExtraParams, &extra)
	return extra["callfleet_attempt"]
}

func condition(c *voicev1alpha1.Call, typ string) *metav1.Condition {
	return meta.FindStatusCondition(c.Status.Conditions, typ)
}

func clientKey(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// updateSpec changes a Call's spec as a user would, retrying on conflicts
// with the controller's status writes.
func updateSpec(t *testing.T, ns, name string, mutate func(*voicev1alpha1.Call)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		c := getCall(t, ns, name)
		mutate(c)
		return k8s.Update(context.Background(), c)
	})
	if err != nil {
		t.Fatalf("updating Call %s/%s: %v", ns, name, err)
	}
}
