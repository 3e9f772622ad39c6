package call_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callfleet/callfleet/test/harness"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/sim"
)

// TestAtMostOnceUnderFaults places 200 Calls while 30% of Piopiy requests
// fail (latency, resets, 429, 5xx, and creates whose reply is lost after the
// call was placed) and webhooks are duplicated, reordered, delayed and
// dropped. The sim's record must show no attempt dialed twice, and each Call
// must end in the phase the sim's record implies.
func TestAtMostOnceUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("200 calls under faults")
	}
	ns := newNamespace(t)
	ctx := context.Background()
	const n = 200
	numbers := make([]string, n)
	behaviours := map[string]sim.Behaviour{}
	restFaults := map[string]sim.RESTFaults{}
	deliveryFaults := map[string]sim.DeliveryFaults{}
	for i := range numbers {
		numbers[i] = newNumber()
		b := sim.Behaviour{Outcome: sim.OutcomeAnswer, AnswerDelay: 100 * time.Millisecond, HangupAfter: 400 * time.Millisecond}
		if i%4 == 3 {
			b = sim.Behaviour{Outcome: sim.OutcomeBusy, AnswerDelay: 100 * time.Millisecond}
		}
		behaviours[numbers[i]] = b
		restFaults[numbers[i]] = sim.RESTFaults{
			Latency: 300 * time.Millisecond, LatencyProb: 0.1,
			ResetProb: 0.05, TooManyProb: 0.05, ServerErrProb: 0.05,
			AmbiguousProb: 0.15, AmbiguousMode: []string{sim.AmbiguousClose, sim.Ambiguous5xx}[i%2],
		}
		deliveryFaults[numbers[i]] = sim.DeliveryFaults{
			Delay: 200 * time.Millisecond, DelayProb: 0.1,
			DuplicateProb: 0.2, ReorderProb: 0.2, DropProb: 0.05,
		}
	}
	setBehaviour(behaviours, nil)
	piopiySim.SetFaults(sim.Faults{RESTNumbers: restFaults, DeliveryNumbers: deliveryFaults})
	defer piopiySim.SetFaults(sim.Faults{})

	retry := voicev1alpha1.RetryPolicy{MaxAttempts: 2, BackoffSeconds: 1, MaxBackoffSeconds: 1,
		Outcomes: []voicev1alpha1.CallOutcome{voicev1alpha1.OutcomeBusy, voicev1alpha1.OutcomeFailed}}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, to := range numbers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- k8s.Create(ctx, newCall(ns, fmt.Sprintf("f%03d", i), to, func(c *voicev1alpha1.Call) { c.Spec.Retry = retry }))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	var calls voicev1alpha1.CallList
	harness.WaitFor(t, "every Call terminal", 4*time.Minute, func() (bool, string) {
		if err := k8s.List(ctx, &calls); err != nil {
			return false, err.Error()
		}
		open := 0
		var example string
		for _, c := range calls.Items {
			if c.Namespace == ns && c.Status.Phase != voicev1alpha1.CallCompleted && c.Status.Phase != voicev1alpha1.CallFailed {
				open++
				example = c.Name + " " + describe(&c)
			}
		}
		return open == 0, fmt.Sprintf("%d open, e.g. %s", open, example)
	})

	dials := map[string]int{}     // attempt id → dials seen by the sim
	answered := map[string]bool{} // number → the sim saw an answer
	for _, r := range piopiySim.Calls() {
		dials[attemptOf(r)]++
		if r.AnsweredAt != nil {
			answered[r.To] = true
		}
	}
	stats := map[string]int{}
	for _, c := range calls.Items {
		if c.Namespace != ns {
			continue
		}
		for _, a := range c.Status.Attempts {
			if dials[a.ID] > 1 {
				t.Errorf("%s attempt %d was dialed %d times", c.Name, a.Number, dials[a.ID])
			}
			stats["settledBy="+a.SettledBy]++
		}
		stats[string(c.Status.Phase)]++
		want := voicev1alpha1.CallFailed
		if answered[c.Spec.To] {
			want = voicev1alpha1.CallCompleted
		}
		if c.Status.Phase != want {
			t.Errorf("%s ended %s but the sim's record implies %s: %s", c.Name, c.Status.Phase, want, describe(&c))
		}
	}
	t.Logf("200 Calls under faults: %v", stats)
}
