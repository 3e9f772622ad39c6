package agentpool_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/internal/testenv"
	"github.com/callfleet/callfleet/test/harness/handofftest"
)

// TestPoolStatus: status lists every agent in spec order with the counts and
// a Ready condition for the generation; removing an agent that is on a call
// leaves the call alone and keeps the agent listed until the call ends; the
// safety net releases a reservation whose Call does not exist.
func TestPoolStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := env.NewPool("status", 3)
	create(t, pool)
	p := waitPool(t, pool.Name, "status for generation 1", func(p *voicev1alpha1.AgentPool) bool {
		c := condition(p.Status.Conditions, voicev1alpha1.ConditionReady)
		return c != nil && c.ObservedGeneration == p.Generation && p.Status.ObservedGeneration == p.Generation
	})
	if st := p.Status; st.Total != 3 || st.Available != 3 || st.Busy != 0 || st.Queued != 0 || len(st.Agents) != 3 ||
		condition(st.Conditions, voicev1alpha1.ConditionReady).Status != metav1.ConditionTrue {
		t.Errorf("initial status %+v", st)
	}

	// A reservation for a Call that does not exist is reclaimed.
	if err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		p, err := env.Pool(ctx, pool.Name)
		if err != nil {
			return err
		}
		p.Status.Agents[2].Reservations = []voicev1alpha1.AgentReservation{{Call: "ghost", Since: metav1.Now(), CallResourceVersion: "1"}}
		return env.K8s.Status().Update(ctx, p)
	}); err != nil {
		t.Fatal(err)
	}
	waitPool(t, pool.Name, "the ghost reservation released", func(p *voicev1alpha1.AgentPool) bool {
		return reservations(p) == 0 && p.Status.Available == 3
	})

	// agent-1 takes a call and stays on it.
	env.SetScenario(nil, map[string]sim.AgentBehaviour{pool.Spec.Agents[1].Number: {AnswerDelay: 100 * time.Millisecond}})
	if err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		p, err := env.Pool(ctx, pool.Name)
		if err != nil {
			return err
		}
		p.Spec.Agents[0].Paused = true
		p.Spec.Agents[2].Paused = true
		return env.K8s.Update(ctx, p)
	}); err != nil {
		t.Fatal(err)
	}
	c := env.NewCall("status-1", pool.Name, func(c *voicev1alpha1.Call) { c.Spec.Handoff.Requested = true })
	connected(t, c)
	waitCall(t, c.Name, "bridged to agent-1", func(c *voicev1alpha1.Call) bool {
		return phase(c) == voicev1alpha1.HandoffBridged && c.Status.Handoff.Agent == "agent-1"
	})
	p = waitPool(t, pool.Name, "agent-1 busy", func(p *voicev1alpha1.AgentPool) bool { return p.Status.Busy == 1 })
	if st := p.Status; st.Total != 3 || st.Available != 0 || st.ObservedGeneration != p.Generation {
		t.Errorf("status with two paused and one busy %+v", st)
	}

	// Remove agent-1 from spec: its call goes on and it stays listed, last.
	if err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		p, err := env.Pool(ctx, pool.Name)
		if err != nil {
			return err
		}
		p.Spec.Agents = []voicev1alpha1.Agent{p.Spec.Agents[2], p.Spec.Agents[0]}
		return env.K8s.Update(ctx, p)
	}); err != nil {
		t.Fatal(err)
	}
	p = waitPool(t, pool.Name, "agent-1 listed after the spec agents", func(p *voicev1alpha1.AgentPool) bool {
		return p.Status.ObservedGeneration == p.Generation && len(p.Status.Agents) == 3 && p.Status.Agents[2].Name == "agent-1"
	})
	if st := p.Status; st.Total != 2 || st.Busy != 0 || st.Agents[0].Name != "agent-2" || st.Agents[1].Name != "agent-0" ||
		len(st.Agents[2].Reservations) != 1 || st.Agents[2].Reservations[0].Call != c.Name {
		t.Errorf("status after removing the busy agent %+v", st)
	}
	if r := condition(p.Status.Conditions, voicev1alpha1.ConditionReady); r.Status != metav1.ConditionFalse || r.Reason != "AllAgentsPaused" || !strings.Contains(r.Message, "") {
		t.Errorf("Ready %+v, want False AllAgentsPaused (both agents left are paused)", r)
	}
	time.Sleep(time.Second)
	if cur, _ := env.Call(ctx, c.Name); phase(cur) != voicev1alpha1.HandoffBridged || cur.Status.Phase != voicev1alpha1.CallHandedOff {
		t.Errorf("removing the agent disturbed its call: %s", describe(cur))
	}
	// The call ends: agent-1 is released and leaves status.
	hangUp(t, c.Name)
	waitPool(t, pool.Name, "agent-1 gone from status", func(p *voicev1alpha1.AgentPool) bool {
		return len(p.Status.Agents) == 2 && reservations(p) == 0
	})
}

// TestPrinterColumns: kubectl get shows the counts.
func TestPrinterColumns(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", "voice.callfleet.dev_agentpools.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		cols = append(cols, c.Name+"="+c.JSONPath)
	}
	want := []string{"Agents=.status.total", "Available=.status.available", "Busy=.status.busy", "Queued=.status.queued", "Abandoned=.status.abandoned", "Age=.metadata.creationTimestamp"}
	if !slices.Equal(cols, want) {
		t.Errorf("printer columns %v, want %v", cols, want)
	}
}

// TestHundredCallsTenAgents: 100 Calls ask for a human at once from a pool
// of 10 single-call agents who each talk briefly then hang up. Two managers
// race for reservations. No agent is ever on two calls at once (the sim's
// own record of every agent leg), and every call ends handed off or with
// the queue-timeout outcome.
func TestHundredCallsTenAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("100 calls")
	}
	ctx := context.Background()
	const n = 100
	pool := env.NewPool("hundred", 10, func(p *voicev1alpha1.AgentPool) {
		p.Spec.Queue = voicev1alpha1.QueueSpec{MaxSize: n, MaxWaitSeconds: 240}
	})
	agents := map[string]sim.AgentBehaviour{}
	numbers := map[string]bool{}
	for _, a := range pool.Spec.Agents {
		agents[a.Number] = sim.AgentBehaviour{AnswerDelay: 100 * time.Millisecond, TalkFor: 700 * time.Millisecond}
		numbers[a.Number] = true
	}
	env.SetScenario(nil, agents)
	create(t, pool)
	// The Calls are dialed at a steady pace and answered first; then all
	// 100 ask for a human at once. Their streams are paused: audio is the
	// gateway benchmark's business, this is about reservations.
	names, err := env.LiveCalls(ctx, "hundred", pool.Name, n, 25, 3*time.Minute, func(c *voicev1alpha1.Call) {
		c.Spec.Handoff.OnNoAgent = voicev1alpha1.OnNoAgentHangup
		c.Spec.Stream.ListenMode = voicev1alpha1.ListenCaller
		c.Spec.Stream.State = voicev1alpha1.StreamPaused
	})
	t.Cleanup(func() { _ = env.DeleteCalls(context.Background(), "hundred") })
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := env.RequestAll(ctx, names); err != nil {
		t.Fatal(err)
	}

	var calls voicev1alpha1.CallList
	outcomes := map[string]int{}
	err = func() error {
		end, last := time.Now().Add(6*time.Minute), time.Now()
		for {
			if err := env.K8s.List(ctx, &calls, client.InNamespace(env.Namespace)); err != nil {
				return err
			}
			clear(outcomes)
			done := 0
			for i := range calls.Items {
				c := &calls.Items[i]
				if !strings.HasPrefix(c.Name, "hundred-") {
					continue
				}
				outcomes[string(c.Status.Phase)+"/"+string(phase(c))]++
				if ended(c) && (phase(c) == voicev1alpha1.HandoffEnded || phase(c) == voicev1alpha1.HandoffTimedOut || phase(c) == voicev1alpha1.HandoffFailed || phase(c) == "") {
					done++
				}
			}
			if done == n {
				return nil
			}
			if time.Now().After(end) {
				for i := range calls.Items {
					if c := &calls.Items[i]; strings.HasPrefix(c.Name, "hundred-") && !ended(c) {
						rec, _ := env.SimCall(c.Spec.To)
						t.Logf("%s not ended: %s; sim: state %s outcome %s streams %d bridges %d events %d", c.Name, describe(c), rec.State, rec.Outcome, len(rec.Streams), len(rec.Bridges), len(rec.Events))
						for _, e := range rec.Events {
							t.Logf("  sim event %d %s leg %s created %s delivered %v gave up %v attempts %+v", e.Seq, e.Status, e.Leg, e.CreatedAt.Format("15:04:05.000"), e.Delivered, e.GaveUp, e.Attempts)
						}
						logEvents(t, c.Name)
						break
					}
				}
				if mfs, err := ctrlmetrics.Registry.Gather(); err == nil {
					for _, mf := range mfs {
						if mf.GetName() == "callfleet_webhook_events_total" {
							for _, m := range mf.GetMetric() {
								t.Logf("webhooks %v: %v", m.GetLabel(), m.GetCounter().GetValue())
							}
						}
					}
				}
				return fmt.Errorf("%d of %d calls ended; phases %v", done, n, outcomes)
			}
			if time.Since(last) > 15*time.Second {
				last = time.Now()
				t.Logf("%s: %v", time.Since(start).Round(time.Second), outcomes)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("100 handoffs on 10 agents, two managers: all ended in %s: %v", time.Since(start).Round(time.Second), outcomes)
	// Deliveries the receiver refused under load are redelivered later,
	// behind the call's later events: the out-of-order case the handoff
	// must get right (TestAgentAnswerOvertakenByItsHangup).
	t.Logf("webhook deliveries answered with an error (redelivered later): %v",
		metric(t, "callfleet_webhook_events_total", map[string]string{"result": "error"}))
	bridged := 0
	for i := range calls.Items {
		c := &calls.Items[i]
		if !strings.HasPrefix(c.Name, "hundred-") {
			continue
		}
		h := c.Status.Handoff
		switch {
		case h != nil && h.Phase == voicev1alpha1.HandoffEnded && h.BridgedTime != nil && c.Status.Phase == voicev1alpha1.CallCompleted:
			bridged++
		case h != nil && h.Phase == voicev1alpha1.HandoffTimedOut && c.Status.Phase == voicev1alpha1.CallCompleted:
		default:
			t.Errorf("Call %s ended neither handed off nor timed out: %s", c.Name, describe(c))
		}
	}
	if bridged == 0 {
		t.Error("no call was handed off")
	}
	logAgentGaps(t, calls.Items)

	// The sim's record of every agent leg: never two at once, rung or talking.
	legs := 0
	for _, a := range env.Sim.Agents() {
		if !numbers[a.Number] {
			continue
		}
		legs += len(a.Legs)
		if a.MaxConcurrentRung > 1 || a.MaxConcurrent > 1 {
			t.Errorf("agent %s was on %d calls at once (%d rung at once)", a.Number, a.MaxConcurrent, a.MaxConcurrentRung)
		}
	}
	if legs < bridged {
		t.Errorf("the sim saw %d agent legs for %d bridged calls", legs, bridged)
	}
	p := waitPool(t, pool.Name, "every agent free", func(p *voicev1alpha1.AgentPool) bool { return reservations(p) == 0 && p.Status.Queued == 0 })
	if p.Status.Busy != 0 || p.Status.Available != 10 {
		t.Errorf("final pool status %+v", p.Status)
	}
	t.Logf("bridged %d, timed out %d; utilisation gauge now %v", bridged, n-bridged,
		metric(t, "callfleet_agentpool_utilisation_ratio", map[string]string{"namespace": env.Namespace, "pool": pool.Name}))
}

// logAgentGaps logs how long agents sat free between calls (previous
// call's endedTime to the next agentAssignedTime, one-second resolution):
// the handoff pipeline's own overhead.
func logAgentGaps(t *testing.T, calls []voicev1alpha1.Call) {
	by := map[string][]*voicev1alpha1.CallHandoffStatus{}
	for i := range calls {
		if h := calls[i].Status.Handoff; h != nil && h.AgentAssignedTime != nil && h.EndedTime != nil {
			by[h.Agent] = append(by[h.Agent], h)
		}
	}
	var gaps, rings []time.Duration
	for _, hs := range by {
		sort.Slice(hs, func(i, j int) bool { return hs[i].AgentAssignedTime.Before(hs[j].AgentAssignedTime) })
		for i := range hs {
			if hs[i].BridgedTime != nil {
				rings = append(rings, hs[i].BridgedTime.Sub(hs[i].AgentAssignedTime.Time))
			}
			if i > 0 {
				gaps = append(gaps, hs[i].AgentAssignedTime.Sub(hs[i-1].EndedTime.Time))
			}
		}
	}
	q := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return d[int(p*float64(len(d)-1))].Round(10 * time.Millisecond)
	}
	t.Logf("agent free between calls (ended → next assigned): p50 %s p90 %s max %s; assigned → bridged: p50 %s p90 %s max %s",
		q(gaps, .5), q(gaps, .9), q(gaps, 1), q(rings, .5), q(rings, .9), q(rings, 1))
}

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestDocsExamplesApply applies the manifests of docs/agentpool.md and the
// AgentPool sample, so they stay valid against the CRDs.
func TestDocsExamplesApply(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "docs-"}}
	if err := env.K8s.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "agentpool.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range yamlBlock.FindAllSubmatch(doc, -1) {
		docs = append(docs, m[1])
	}
	sample, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "voice_v1alpha1_agentpool.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for i, d := range append(docs, sample) {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(d, &obj.Object); err != nil {
			t.Fatalf("manifest %d: %v", i, err)
		}
		obj.SetNamespace(ns.Name)
		if i == len(docs) {
			obj.SetName("sample-" + obj.GetName())
		}
		if err := env.K8s.Create(ctx, obj); err != nil {
			t.Errorf("applying %s %s: %v", obj.GetKind(), obj.GetName(), err)
			continue
		}
		kinds[obj.GetKind()]++
		t.Cleanup(func() { _ = env.K8s.Delete(context.Background(), obj) })
	}
	if kinds["AgentPool"] != 2 || kinds["Call"] != 1 {
		t.Errorf("applied %v, want the docs' AgentPool and Call and the sample AgentPool", kinds)
	}
	// The sample pool is reconciled like any other.
	p := &voicev1alpha1.AgentPool{}
	if err := handofftest.Eventually(deadline, func() error {
		if err := env.K8s.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "sample-support-agents"}, p); err != nil {
			return err
		}
		if p.Status.ObservedGeneration != p.Generation || p.Status.Total != 2 || p.Status.Available != 2 {
			return fmt.Errorf("status %+v", p.Status)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
