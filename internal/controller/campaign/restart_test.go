package campaign_test

import (
	"fmt"
	"testing"
	"time"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/internal/controller/campaign"
)

// TestRestartMidCampaignNoDuplicateDial stops the manager in the middle of a
// Campaign and starts a new one (new caches, expectations and parse cache,
// as after a crash or a leader change). The new manager resumes from
// status: exactly one Call per contact, no number dialed twice, and every
// Call's outcome counted exactly once.
//
// Stopping the manager cancels reconciles mid-flight, so a Call may be
// stopped between recording its dial intent and Piopiy's reply. The Call
// controller then never redials it (design.md, at-most-once) and, when
// Piopiy shows no call, ends it Failed; so a number is dialed at most once,
// and exactly once unless its Call says its attempt was never seen.
//
// It is not parallel: stopping the manager would stall the other tests.
// Go runs every sequential top-level test before the parallel ones start.
func TestRestartMidCampaignNoDuplicateDial(t *testing.T) {
	ns := newNamespace(t)
	const n = 24
	numbers := newNumbers(n)
	setBehaviour(quick(300*time.Millisecond), numbers...)
	create(t, newCampaign(ns, "restart", numbers, func(c *voicev1alpha1.Campaign) {
		c.Spec.Concurrency = 4
		c.Spec.CallsPerMinute = 600
		// A Call whose webhooks were lost while the manager was down looks
		// its CDR up after maxDurationSeconds.
		c.Spec.CallTemplate.Spec.MaxDurationSeconds = 10
	}))
	waitCampaign(t, ns, "restart", "a third of the contacts started", time.Minute, func(c *voicev1alpha1.Campaign) bool {
		return c.Status.Succeeded+c.Status.Failed+c.Status.Active >= n/3
	})
	stopManager()
	before := getCampaign(t, ns, "restart")
	t.Logf("stopped with %d succeeded, %d active, %d pending", before.Status.Succeeded, before.Status.Active, before.Status.Pending)
	// Calls in flight end while nobody watches; their webhooks are refused.
	time.Sleep(time.Second)
	if err := startManager(); err != nil {
		t.Fatal(err)
	}
	c := waitReady(t, ns, "restart", 2*time.Minute)

	calls := listCalls(t, ns)
	byIndex := map[string]voicev1alpha1.Call{}
	answered := 0
	for _, call := range calls {
		i := keyOf(t, &call)
		if _, dup := byIndex[i]; dup {
			t.Fatalf("two Calls for contact %s", i)
		}
		byIndex[i] = call
		if call.Name != campaign.CallName("restart", i, 1) {
			t.Fatalf("Call %s for contact %s", call.Name, i)
		}
		if a := call.Status.Attempts; len(a) > 0 && a[len(a)-1].Outcome == voicev1alpha1.OutcomeAnswered {
			answered++
		}
	}
	if len(byIndex) != n {
		t.Fatalf("%d Calls, want one per contact (%d)", len(byIndex), n)
	}
	st := c.Status
	if st.Pending != 0 || st.Skipped != 0 || st.Succeeded != int64(answered) || st.Succeeded+st.Failed != n {
		t.Fatalf("counts do not match the Calls' outcomes (%d answered): %s", answered, describe(c))
	}
	counts := dialCounts(numbers...)
	for i, num := range numbers {
		call := byIndex[num]
		switch got := counts[num]; {
		case got > 1:
			t.Errorf("contact %d (%s) dialed %d times", i, num, got)
		case got == 0 && !neverSeen(&call):
			t.Errorf("contact %d (%s) was not dialed but its Call says it was: %s", i, num, attempts(&call))
		case got == 0:
			t.Logf("contact %d: the manager stopped while dialing; Piopiy never saw it: not redialled", i)
		}
	}
}

// neverSeen reports whether a Call's only attempt ended because Piopiy
// never showed it.
func neverSeen(call *voicev1alpha1.Call) bool {
	a := call.Status.Attempts
	return len(a) == 1 && a[0].SettledBy == callstate.SettledByTimeout && a[0].RequestID == ""
}

func attempts(call *voicev1alpha1.Call) string {
	return fmt.Sprintf("%s %+v", call.Status.Phase, call.Status.Attempts)
}
