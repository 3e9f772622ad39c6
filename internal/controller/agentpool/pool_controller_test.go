package agentpool_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/controller/agentpool"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/internal/testenv"
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
	want := []string{"Agents=.status.total", "Available=.status.available", "Busy=.status.busy", "Queued=.status.queued", "Age=.metadata.creationTimestamp"}
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
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := env.NewCall(fmt.Sprintf("hundred-%03d", i), pool.Name, func(c *voicev1alpha1.Call) {
				c.Labels = map[string]string{"test": "hundred"}
				c.Spec.Handoff.Requested = true
				c.Spec.Handoff.OnNoAgent = agentpool.OnNoAgentHangup
				c.Spec.Stream.ListenMode = voicev1alpha1.ListenCaller
			})
			if err := env.K8s.Create(ctx, c); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		_ = env.K8s.DeleteAllOf(context.Background(), &voicev1alpha1.Call{}, client.InNamespace(env.Namespace), client.MatchingLabels{"test": "hundred"})
	})

	var calls voicev1alpha1.CallList
	outcomes := map[string]int{}
	err := func() error {
		end := time.Now().Add(6 * time.Minute)
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
				return fmt.Errorf("%d of %d calls ended; phases %v", done, n, outcomes)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("100 handoffs on 10 agents, two managers: all ended in %s: %v", time.Since(start).Round(time.Second), outcomes)
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
