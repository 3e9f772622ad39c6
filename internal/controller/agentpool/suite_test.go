package agentpool_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/callfleet/callfleet/test/harness"

	"github.com/go-logr/logr"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/test/harness/handofftest"
)

// env runs envtest, piopiy-sim, the Call controller and receiver, the
// stream gateway and a bot, with the AgentPool and handoff controllers in
// two managers at once (two replicas without leader election): every test
// also checks that racing reconcilers never double-book an agent.
var env *handofftest.Env

// deadline bounds every wait. It is generous because the box is small and
// shared; no test asserts how fast anything happens.
const deadline = 90 * time.Second

func TestMain(m *testing.M) {
	flag.Parse()
	opts := handofftest.Options{}
	if os.Getenv("HANDOFF_TEST_LOG") != "" {
		opts.Logger = logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.Level(-2)}))
	}
	var err error
	env, err = handofftest.Start(opts)
	if err == nil {
		err = env.StartSecondManager()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if env != nil {
			env.Stop()
		}
		os.Exit(1)
	}
	code := m.Run()
	env.Stop()
	os.Exit(code)
}

func create(t *testing.T, o client.Object) {
	t.Helper()
	if err := env.K8s.Create(context.Background(), o); err != nil {
		t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
	}
	t.Cleanup(func() { _ = env.K8s.Delete(context.Background(), o) })
}

func describe(c *voicev1alpha1.Call) string {
	b, _ := json.Marshal(c.Status)
	return string(b)
}

// waitCall polls the Call until cond holds.
func waitCall(t *testing.T, name, what string, cond func(*voicev1alpha1.Call) bool) *voicev1alpha1.Call {
	t.Helper()
	var c *voicev1alpha1.Call
	err := handofftest.Eventually(deadline, func() error {
		var err error
		if c, err = env.Call(context.Background(), name); err != nil {
			return err
		}
		if !cond(c) {
			return fmt.Errorf("status %s", describe(c))
		}
		return nil
	})
	if err != nil {
		logEvents(t, name)
		t.Fatalf("Call %s: timed out waiting for %s: %v", name, what, err)
	}
	return c
}

func waitPool(t *testing.T, name, what string, cond func(*voicev1alpha1.AgentPool) bool) *voicev1alpha1.AgentPool {
	t.Helper()
	var p *voicev1alpha1.AgentPool
	err := handofftest.Eventually(deadline, func() error {
		var err error
		if p, err = env.Pool(context.Background(), name); err != nil {
			return err
		}
		if !cond(p) {
			b, _ := json.Marshal(p.Status)
			return fmt.Errorf("status %s", b)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("AgentPool %s: timed out waiting for %s: %v", name, what, err)
	}
	return p
}

func waitSim(t *testing.T, to, what string, cond func(sim.CallRecord) bool) sim.CallRecord {
	t.Helper()
	var r sim.CallRecord
	err := handofftest.Eventually(deadline, func() error {
		var ok bool
		if r, ok = env.SimCall(to); !ok || !cond(r) {
			b, _ := json.Marshal(r)
			return fmt.Errorf("sim record %s", b)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("sim call to %s: timed out waiting for %s: %v", to, what, err)
	}
	return r
}

func phase(c *voicev1alpha1.Call) voicev1alpha1.HandoffPhase {
	if c.Status.Handoff == nil {
		return ""
	}
	return c.Status.Handoff.Phase
}

func streamState(c *voicev1alpha1.Call) voicev1alpha1.StreamPhase {
	if c.Status.Stream == nil {
		return ""
	}
	return c.Status.Stream.State
}

func ended(c *voicev1alpha1.Call) bool {
	return c.Status.Phase == voicev1alpha1.CallCompleted || c.Status.Phase == voicev1alpha1.CallFailed
}

// reservations counts every reservation in the pool's status.
func reservations(p *voicev1alpha1.AgentPool) int {
	n := 0
	for _, a := range p.Status.Agents {
		n += len(a.Reservations)
	}
	return n
}

// connected creates the Call and waits for its stream to reach the bot.
func connected(t *testing.T, c *voicev1alpha1.Call) *handofftest.BotConn {
	t.Helper()
	create(t, c)
	bc, err := env.Bot.Conn(c.Name, deadline)
	if err != nil {
		t.Fatal(err)
	}
	waitCall(t, c.Name, "stream Connected", func(c *voicev1alpha1.Call) bool {
		return c.Status.Phase == voicev1alpha1.CallInProgress && streamState(c) == voicev1alpha1.StreamPhaseConnected
	})
	return bc
}

// hangUp ends a call the test leaves live, as a user would.
func hangUp(t *testing.T, name string) {
	t.Helper()
	if err := env.UpdateSpec(context.Background(), name, func(c *voicev1alpha1.Call) { c.Spec.Hangup = true }); err != nil {
		t.Fatal(err)
	}
	waitCall(t, name, "the call to end", ended)
}

func condition(conds []metav1.Condition, typ string) *metav1.Condition {
	return meta.FindStatusCondition(conds, typ)
}

// metric sums a metric of controller-runtime's registry whose labels match.
func metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	v, err := harness.MetricSum(ctrlmetrics.Registry, name, labels)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// logEvents logs the Events about an object, for a failing test's story.
func logEvents(t *testing.T, name string) {
	t.Helper()
	var list eventsv1.EventList
	if err := env.K8s.List(context.Background(), &list, client.InNamespace(env.Namespace)); err != nil {
		t.Logf("listing events: %v", err)
		return
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].EventTime.Before(&list.Items[j].EventTime) })
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			t.Logf("event %s %s %s/%s: %s", e.EventTime.Format("15:04:05.000"), e.ReportingController, e.Type, e.Reason, e.Note)
		}
	}
}
