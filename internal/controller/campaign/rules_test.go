package campaign_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/controller/campaign"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/test/harness"
)

// clock is the Campaign controller's fixed clock for one sequential test.
type clock struct{ t time.Time }

func startClock(at time.Time) *clock {
	c := &clock{t: at}
	fixedNow.Store(&c.t)
	return c
}

func (c *clock) advance(d time.Duration) {
	t := c.t.Add(d)
	c.t = t
	fixedNow.Store(&t)
}

func (c *clock) stop() { fixedNow.Store(nil) }

// noAnswer rings and gives up before the Call's ring timeout: the attempt
// ends NoAnswer.
func noAnswer() sim.Behaviour {
	return sim.Behaviour{Outcome: sim.OutcomeNoAnswer, RingTimeout: 5 * time.Second}
}

// poke makes a harmless spec change so the controller reconciles at once
// (time is not watched, and its requeues follow the real clock).
func poke(t *testing.T, ns, name string) {
	t.Helper()
	updateCampaign(t, ns, name, func(c *voicev1alpha1.Campaign) {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations["test/poke"] = fmt.Sprint(time.Now().UnixNano())
		c.Spec.CallTemplate.Annotations = map[string]string{"test/poke": fmt.Sprint(time.Now().UnixNano())}
	})
}

// observed waits until the Campaign's status is computed from its current
// spec.
func observed(t *testing.T, ns, name, what string, cond func(*voicev1alpha1.Campaign) bool) *voicev1alpha1.Campaign {
	t.Helper()
	return waitCampaign(t, ns, name, what, time.Minute, func(c *voicev1alpha1.Campaign) bool {
		return c.Status.ObservedGeneration == c.Generation && cond(c)
	})
}

// totalDials is the number of sim dials to numbers.
func totalDials(numbers ...string) int { return len(simCalls(numbers...)) }

// settle waits for the Call controller and the sim to have done whatever
// they will do with the Calls made so far (no Call in flight), then checks
// the dial count: a check that nothing more happens.
func settle(t *testing.T, ns string) {
	t.Helper()
	harness.WaitFor(t, "no Call in flight in "+ns, slack*time.Minute, func() (bool, string) {
		for _, call := range listCalls(t, ns) {
			if done := call.Status.Phase == voicev1alpha1.CallCompleted || call.Status.Phase == voicev1alpha1.CallFailed; !done {
				return false, call.Name + " " + string(call.Status.Phase)
			}
		}
		return true, ""
	})
}

// localNoon returns a fixed-offset zone in which at reads 12:xx, so tests
// on a clock near the real time can place windows around it.
func localNoon(at time.Time) string {
	n := at.UTC().Hour() - 12 // Etc/GMT+N is UTC−N
	switch {
	case n == 0:
		return "Etc/GMT"
	case n > 0:
		return fmt.Sprintf("Etc/GMT+%d", n)
	default:
		return fmt.Sprintf("Etc/GMT%d", n)
	}
}

// TestCampaignRetriesObeyRules: every next attempt is granted by the
// Campaign under its rules, on a fixed clock near the real time (the Calls'
// end times are real). Four contacts, NoAnswer and Busy retried after 10
// minutes, callsPerMinute 3 (one start every 20 s on the fixed clock).
//
//  1. Pacing: with the clock still, one first attempt starts; each 20 s
//     step lets one more.
//  2. The retries fall due while the window is closed (it was moved away):
//     none is dialed; the status counts them outside their window.
//  3. The window opens but the Campaign is suspended: none is dialed.
//  4. A number is added to the do-not-call list while it waits; resumed,
//     it is never rung again and is recorded; the others are retried one
//     per 20 s step: retries count against callsPerMinute.
func TestCampaignRetriesObeyRules(t *testing.T) {
	base := time.Now().UTC().Truncate(time.Second)
	clk := startClock(base)
	defer clk.stop()
	zone := localNoon(base)
	ns := newNamespace(t)
	numbers := newNumbers(4)
	setBehaviour(noAnswer(), numbers[:3]...)
	setBehaviour(sim.Behaviour{Outcome: sim.OutcomeBusy, AnswerDelay: 50 * time.Millisecond}, numbers[3])
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dnc"}, Data: map[string]string{"list": ""}})
	create(t, newCampaign(ns, "rules", numbers, func(c *voicev1alpha1.Campaign) {
		c.Spec.CallsPerMinute = 3
		c.Spec.DoNotCallRef = &voicev1alpha1.LocalRef{Name: "dnc"}
		c.Spec.Schedule = &voicev1alpha1.CampaignSchedule{TimeZone: zone, Windows: []voicev1alpha1.CallingWindow{{Start: "00:00", End: "24:00"}}}
		c.Spec.Retry = &voicev1alpha1.CampaignRetry{Policies: []voicev1alpha1.CampaignRetryPolicy{
			{Outcome: voicev1alpha1.OutcomeNoAnswer, DelaySeconds: 600, MaxAttempts: 3},
			{Outcome: voicev1alpha1.OutcomeBusy, DelaySeconds: 600, MaxAttempts: 2},
		}}
	}))

	// 1. One start per 20 s of the fixed clock.
	for i := 1; i <= 4; i++ {
		harness.WaitFor(t, fmt.Sprintf("%d first attempts", i), slack*time.Minute, func() (bool, string) {
			n := totalDials(numbers...)
			return n == i, fmt.Sprintf("%d dials", n)
		})
		settle(t, ns)
		if n := totalDials(numbers...); n != i {
			t.Fatalf("%d dials with the clock still at +%s, want %d (callsPerMinute 3)", n, clk.t.Sub(base), i)
		}
		clk.advance(20 * time.Second)
		poke(t, ns, "rules")
	}
	observed(t, ns, "rules", "four contacts waiting for a retry", func(c *voicev1alpha1.Campaign) bool {
		return c.Status.Waiting == 4 && c.Status.Active == 0 && c.Status.NextAttemptTime != nil
	})

	// 2. The window moves away (it is 12:xx there); the retries fall due.
	updateCampaign(t, ns, "rules", func(c *voicev1alpha1.Campaign) {
		c.Spec.Schedule.Windows = []voicev1alpha1.CallingWindow{{Start: "20:00", End: "21:00"}}
	})
	clk.advance(11 * time.Minute)
	poke(t, ns, "rules")
	c := observed(t, ns, "rules", "retries due, outside the window", func(c *voicev1alpha1.Campaign) bool {
		w := condition(c, campaign.ConditionInWindow)
		return c.Status.WaitingForWindow == 4 && w != nil && w.Status == metav1.ConditionFalse
	})
	if c.Status.NextWindowTime == nil {
		t.Fatalf("no nextWindowTime: %s", describe(c))
	}
	settle(t, ns)
	if n := totalDials(numbers...); n != 4 {
		t.Fatalf("%d dials: a retry rang outside the calling window", n)
	}

	// 3. Window open again, but suspended.
	updateCampaign(t, ns, "rules", func(c *voicev1alpha1.Campaign) {
		c.Spec.Suspend = true
		c.Spec.Schedule.Windows = []voicev1alpha1.CallingWindow{{Start: "00:00", End: "24:00"}}
	})
	observed(t, ns, "rules", "suspended", func(c *voicev1alpha1.Campaign) bool {
		s := condition(c, campaign.ConditionSuspended)
		return s != nil && s.Status == metav1.ConditionTrue
	})
	settle(t, ns)
	if n := totalDials(numbers...); n != 4 {
		t.Fatalf("%d dials: a retry rang while suspended", n)
	}

	// 4. numbers[1] opts out while waiting; resume.
	dnc := &corev1.ConfigMap{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "dnc"}, dnc); err != nil {
		t.Fatal(err)
	}
	dnc.Data["list"] = numbers[1] + "\n"
	if err := k8s.Update(context.Background(), dnc); err != nil {
		t.Fatal(err)
	}
	updateCampaign(t, ns, "rules", func(c *voicev1alpha1.Campaign) { c.Spec.Suspend = false })
	harness.WaitFor(t, "one retry", slack*time.Minute, func() (bool, string) {
		n := totalDials(numbers...)
		return n == 5, fmt.Sprintf("%d dials", n)
	})
	settle(t, ns)
	if n := totalDials(numbers...); n != 5 {
		t.Fatalf("%d dials with the clock still: retries do not count against callsPerMinute", n)
	}
	for i := 6; i <= 7; i++ {
		clk.advance(20 * time.Second)
		poke(t, ns, "rules")
		harness.WaitFor(t, fmt.Sprintf("%d dials", i), slack*time.Minute, func() (bool, string) {
			n := totalDials(numbers...)
			return n == i, fmt.Sprintf("%d dials", n)
		})
		settle(t, ns)
	}
	got := dialCounts(numbers...)
	if got[numbers[0]] != 2 || got[numbers[1]] != 1 || got[numbers[2]] != 2 || got[numbers[3]] != 2 {
		t.Fatalf("dials %v: want 2, 1 (do-not-call), 2, 2", got)
	}
	c = observed(t, ns, "rules", "the opted-out contact recorded", func(c *voicev1alpha1.Campaign) bool {
		return c.Status.Results != nil && c.Status.Results.Recorded >= 2 // the opted-out one and the Busy one (2 of 2)
	})
	if c.Status.Outcomes[string(voicev1alpha1.OutcomeBusy)] != 1 {
		t.Fatalf("outcomes %v: Busy used its 2 attempts", c.Status.Outcomes)
	}
}

// TestCampaignRetryDoesNotHoldSlot: concurrency 1, two no-answer contacts
// retried after 10 minutes, and a third that answers. While the first two
// wait for their retries the third is called at once: a contact waiting
// for its next attempt holds no slot.
func TestCampaignRetryDoesNotHoldSlot(t *testing.T) {
	clk := startClock(time.Now().UTC())
	defer clk.stop()
	ns := newNamespace(t)
	numbers := newNumbers(3)
	setBehaviour(noAnswer(), numbers[:2]...)
	setBehaviour(quick(100*time.Millisecond), numbers[2])
	create(t, newCampaign(ns, "slot", numbers, func(c *voicev1alpha1.Campaign) {
		c.Spec.Concurrency = 1
		c.Spec.Retry = &voicev1alpha1.CampaignRetry{Policies: []voicev1alpha1.CampaignRetryPolicy{{Outcome: voicev1alpha1.OutcomeNoAnswer, DelaySeconds: 600, MaxAttempts: 2}}}
	}))
	c := observed(t, ns, "slot", "third contact answered while two wait", func(c *voicev1alpha1.Campaign) bool {
		return c.Status.Succeeded == 1 && c.Status.Waiting == 2
	})
	if c.Status.Active != 0 || c.Status.NextAttemptTime == nil {
		t.Fatalf("status: %s", describe(c))
	}
	if got := dialCounts(numbers...); got[numbers[0]] != 1 || got[numbers[1]] != 1 || got[numbers[2]] != 1 {
		t.Fatalf("dials %v", got)
	}
	clk.advance(11 * time.Minute)
	poke(t, ns, "slot")
	c = observed(t, ns, "slot", "done after the retries", func(c *voicev1alpha1.Campaign) bool {
		r := condition(c, voicev1alpha1.ConditionReady)
		return r != nil && r.Status == metav1.ConditionTrue
	})
	if c.Status.Failed != 2 || c.Status.Outcomes["NoAnswer"] != 2 {
		t.Fatalf("status: %s", describe(c))
	}
	if got := dialCounts(numbers...); got[numbers[0]] != 2 || got[numbers[1]] != 2 || got[numbers[2]] != 1 {
		t.Fatalf("dials %v", got)
	}
	if got := maxOverlap(simCalls(numbers...)); got > 1 {
		t.Fatalf("%d calls at once, concurrency 1", got)
	}
}

// TestCampaignMixedZonesNoHeadOfLine: on a fixed clock, a list mixing a
// zone whose window is open with one whose window is closed keeps dialing
// the open zone, first row closed or not; status counts the waiting ones
// and says until when.
func TestCampaignMixedZonesNoHeadOfLine(t *testing.T) {
	clk := startClock(time.Date(2026, 6, 10, 6, 0, 0, 0, time.UTC)) // 11:30 in Kolkata, 02:00 in New York
	defer clk.stop()
	ns := newNamespace(t)
	numbers := newNumbers(6)
	setBehaviour(quick(100*time.Millisecond), numbers...)
	create(t, newCampaign(ns, "zones", numbers, func(c *voicev1alpha1.Campaign) {
		c.Spec.Schedule = &voicev1alpha1.CampaignSchedule{TimeZone: "Asia/Kolkata", Windows: []voicev1alpha1.CallingWindow{{Start: "09:00", End: "18:00"}}}
		for _, i := range []int{0, 2, 4} {
			c.Spec.Contacts[i].TimeZone = "America/New_York"
		}
	}))
	c := observed(t, ns, "zones", "Kolkata contacts done, New York waiting", func(c *voicev1alpha1.Campaign) bool {
		return c.Status.Succeeded == 3 && c.Status.WaitingForWindow == 3
	})
	if want := time.Date(2026, 6, 10, 13, 0, 0, 0, time.UTC); c.Status.NextWindowTime == nil || !c.Status.NextWindowTime.Time.Equal(want) {
		t.Fatalf("nextWindowTime %v, want %s (09:00 in New York)", c.Status.NextWindowTime, want)
	}
	got := dialCounts(numbers...)
	for i, n := range numbers {
		if want := i % 2; got[n] != want {
			t.Errorf("contact %d dialed %d times, want %d", i, got[n], want)
		}
	}
	clk.advance(7*time.Hour + time.Minute)
	poke(t, ns, "zones")
	waitReady(t, ns, "zones", time.Minute)
	assertEachDialedOnce(t, numbers...)
}

// TestCampaignStartDeadlineBlackout: on a fixed clock, nothing is dialed
// before schedule.startTime nor on a blackout date; once both are past the
// Campaign dials; after the deadline no further attempt starts and the
// Campaign is done (DeadlinePassed) with the rest never called.
func TestCampaignStartDeadlineBlackout(t *testing.T) {
	start := time.Date(2026, 12, 24, 9, 0, 0, 0, time.UTC)
	clk := startClock(start.Add(-time.Hour))
	defer clk.stop()
	ns := newNamespace(t)
	numbers := newNumbers(4)
	setBehaviour(quick(100*time.Millisecond), numbers[:2]...)
	setBehaviour(quick(15*time.Second), numbers[2:]...) // talks on past the deadline
	create(t, newCampaign(ns, "dates", numbers, func(c *voicev1alpha1.Campaign) {
		c.Spec.Concurrency = 1
		c.Spec.Schedule = &voicev1alpha1.CampaignSchedule{
			StartTime:     &metav1.Time{Time: start},
			Deadline:      &metav1.Time{Time: start.Add(48 * time.Hour)},
			BlackoutDates: []string{"2026-12-25"},
		}
	}))
	c := observed(t, ns, "dates", "waiting for startTime", func(c *voicev1alpha1.Campaign) bool {
		r := condition(c, voicev1alpha1.ConditionReady)
		return r != nil && r.Reason == "NotStarted"
	})
	if len(listCalls(t, ns)) != 0 || c.Status.NextWindowTime == nil || !c.Status.NextWindowTime.Time.Equal(start) {
		t.Fatalf("before startTime: %s", describe(c))
	}
	// Christmas Day: a blackout.
	clk.advance(25 * time.Hour)
	poke(t, ns, "dates")
	c = observed(t, ns, "dates", "blackout", func(c *voicev1alpha1.Campaign) bool {
		return c.Status.WaitingForWindow == 4
	})
	if want := time.Date(2026, 12, 26, 0, 0, 0, 0, time.UTC); c.Status.NextWindowTime == nil || !c.Status.NextWindowTime.Time.Equal(want) {
		t.Fatalf("nextWindowTime %v, want %s", c.Status.NextWindowTime, want)
	}
	if len(listCalls(t, ns)) != 0 {
		t.Fatal("a Call on a blackout date")
	}
	clk.advance(16 * time.Hour) // 26 Dec 01:00
	poke(t, ns, "dates")
	observed(t, ns, "dates", "two done, one live", func(c *voicev1alpha1.Campaign) bool {
		return c.Status.Succeeded == 2 && c.Status.Active == 1
	})
	clk.advance(8 * time.Hour) // past the deadline (26 Dec 09:00)
	poke(t, ns, "dates")
	c = observed(t, ns, "dates", "done at the deadline", func(c *voicev1alpha1.Campaign) bool {
		r := condition(c, voicev1alpha1.ConditionReady)
		return r != nil && r.Status == metav1.ConditionTrue && r.Reason == "DeadlinePassed"
	})
	if c.Status.Pending != 1 || c.Status.Succeeded != 3 {
		t.Fatalf("status: %s", describe(c))
	}
	if got := dialCounts(numbers...); got[numbers[3]] != 0 {
		t.Fatalf("a contact was dialed after the deadline: %v", got)
	}
}

// TestCampaignStop: stop ends the Campaign for good. With stopMode Hangup
// the live calls are hung up (the sim says by the API), the contacts not
// called stay uncalled, and the Campaign is Ready with reason Stopped. A
// stop cannot be undone.
func TestCampaignStop(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	numbers := newNumbers(5)
	setBehaviour(sim.Behaviour{Outcome: sim.OutcomeAnswer, AnswerDelay: 50 * time.Millisecond}, numbers...)
	create(t, newCampaign(ns, "stop", numbers, func(c *voicev1alpha1.Campaign) { c.Spec.Concurrency = 2 }))
	harness.WaitFor(t, "two live calls", slack*time.Minute, func() (bool, string) {
		live := 0
		for _, r := range simCalls(numbers...) {
			if r.State == "answered" {
				live++
			}
		}
		return live == 2, fmt.Sprintf("%d answered", live)
	})
	updateCampaign(t, ns, "stop", func(c *voicev1alpha1.Campaign) {
		c.Spec.Stop = true
		c.Spec.StopMode = voicev1alpha1.StopHangup
	})
	c := waitReady(t, ns, "stop", time.Minute)
	if r := condition(c, voicev1alpha1.ConditionReady); r.Reason != "Stopped" || c.Status.Pending != 3 || c.Status.Results.Recorded != 2 {
		t.Fatalf("status: %s", describe(c))
	}
	for _, r := range simCalls(numbers...) {
		if r.State != "ended" || r.HangupCause != "api" {
			t.Errorf("%s: %s %s, want hung up by the API", r.To, r.State, r.HangupCause)
		}
	}
	if n := totalDials(numbers...); n != 2 {
		t.Fatalf("%d dials, want 2", n)
	}
	err := k8s.Update(context.Background(), func() *voicev1alpha1.Campaign { c := getCampaign(t, ns, "stop"); c.Spec.Stop = false; return c }())
	if err == nil || !strings.Contains(err.Error(), "stop cannot be undone") {
		t.Fatalf("undoing stop: %v", err)
	}
}

// TestCampaignEditNeverRingsTwice edits a running Campaign every way the
// issue lists and counts dials per number at the sim: a row inserted above,
// one removed, the list reordered, a number listed twice, a source added.
// Nobody is rung twice, every new contact is rung, and a removed contact
// that was not dialed yet is not dialed.
func TestCampaignEditNeverRingsTwice(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	numbers := newNumbers(12)
	setBehaviour(quick(300*time.Millisecond), numbers...)
	csvOf := func(nums ...string) string { return "number\n" + strings.Join(nums, "\n") + "\n" }
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "leads"}, Data: map[string]string{"contacts.csv": csvOf(numbers[0:6]...)}})
	create(t, newCampaign(ns, "edit", nil, func(c *voicev1alpha1.Campaign) {
		c.Spec.Concurrency = 1
		c.Spec.CallsPerMinute = 20 // one every 3 s: the edit lands before numbers[5] is reached
		c.Spec.ContactsFrom = []voicev1alpha1.ContactSource{{ConfigMapRef: voicev1alpha1.LocalRef{Name: "leads"}}}
	}))
	waitCampaign(t, ns, "edit", "two contacts done", time.Minute, func(c *voicev1alpha1.Campaign) bool { return c.Status.Succeeded >= 2 })
	// Insert above, remove numbers[5] (not dialed yet at concurrency 1, 20
	// a minute), reorder, and list numbers[6] twice.
	setCSV := func(data string) {
		cm := &corev1.ConfigMap{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "leads"}, cm); err != nil {
			t.Fatal(err)
		}
		cm.Data["contacts.csv"] = data
		if err := k8s.Update(context.Background(), cm); err != nil {
			t.Fatal(err)
		}
	}
	if n := dialCounts(numbers[5])[numbers[5]]; n != 0 {
		t.Skipf("numbers[5] already dialed (%d): the machine is faster than this test assumes", n)
	}
	setCSV(csvOf(numbers[6], numbers[4], numbers[3], numbers[2], numbers[1], numbers[0], numbers[6], "+"+numbers[7]))
	// And a new source.
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "more"}, Data: map[string]string{"contacts.csv": csvOf(numbers[8], numbers[9], numbers[0])}})
	updateCampaign(t, ns, "edit", func(c *voicev1alpha1.Campaign) {
		c.Spec.ContactsFrom = append(c.Spec.ContactsFrom, voicev1alpha1.ContactSource{ConfigMapRef: voicev1alpha1.LocalRef{Name: "more"}})
		c.Spec.Contacts = []voicev1alpha1.Contact{{Number: numbers[10]}, {ID: "crm-11", Number: numbers[11]}}
	})
	c := waitReady(t, ns, "edit", 2*time.Minute)
	got := dialCounts(numbers...)
	for i, n := range numbers {
		want := 1
		if i == 5 {
			want = 0
		}
		if got[n] != want {
			t.Errorf("numbers[%d] dialed %d times, want %d", i, got[n], want)
		}
	}
	// 2 inline + 8 + 3 rows; numbers[6] twice and numbers[0] in both CSVs.
	if c.Status.Total != 13 || c.Status.Duplicates != 2 || c.Status.Succeeded < 11 {
		t.Fatalf("status: %s", describe(c))
	}
}

// TestCampaignDoneSurvivesTTLAndRestart: with ttlSecondsAfterFinished 0
// the Calls go as soon as their contact is recorded; the manager is
// restarted; then the list is reordered with a new row on top. Only the
// new row is rung; the results record has every contact once.
//
// Sequential: it restarts the manager.
func TestCampaignDoneSurvivesTTLAndRestart(t *testing.T) {
	ns := newNamespace(t)
	numbers := newNumbers(9)
	setBehaviour(quick(100*time.Millisecond), numbers...)
	create(t, newCampaign(ns, "ttl-restart", numbers[:8], func(c *voicev1alpha1.Campaign) {
		c.Spec.TTLSecondsAfterFinished = ptr(int32(0))
		c.Spec.Concurrency = 4
	}))
	waitReady(t, ns, "ttl-restart", 2*time.Minute)
	harness.WaitFor(t, "Calls deleted by the TTL", slack*time.Minute, func() (bool, string) {
		n := len(listCalls(t, ns))
		return n == 0, fmt.Sprintf("%d Calls", n)
	})
	stopManager()
	if err := startManager(); err != nil {
		t.Fatal(err)
	}
	updateCampaign(t, ns, "ttl-restart", func(c *voicev1alpha1.Campaign) {
		var list []voicev1alpha1.Contact
		list = append(list, voicev1alpha1.Contact{Number: numbers[8]})
		for i := 7; i >= 0; i-- {
			list = append(list, voicev1alpha1.Contact{Number: numbers[i]})
		}
		c.Spec.Contacts = list
	})
	c := waitCampaign(t, ns, "ttl-restart", "the new contact done", 2*time.Minute, func(c *voicev1alpha1.Campaign) bool {
		r := condition(c, voicev1alpha1.ConditionReady)
		return c.Status.ObservedGeneration == c.Generation && r.Status == metav1.ConditionTrue && c.Status.Succeeded == 9
	})
	assertEachDialedOnce(t, numbers...)
	if c.Status.Results == nil || c.Status.Results.Recorded != 9 {
		t.Fatalf("results: %s", describe(c))
	}
}

// TestCampaignResultsCompleteWithTTL0: 1,000 contacts, TTL 0, a fast
// scenario: once done, the results record (read with the documented
// one-liner's logic: the shards' results.csv in name order) has every
// contact exactly once with its outcome, and the status counts per outcome
// match.
func TestCampaignResultsCompleteWithTTL0(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const n = 1000
	numbers := make([]string, n)
	var csv strings.Builder
	csv.WriteString("number\n")
	for i := range numbers {
		numbers[i] = fmt.Sprintf("9179%08d", numberSeq.Add(1))
		csv.WriteString(numbers[i] + "\n")
	}
	setBehaviour(sim.Behaviour{Outcome: sim.OutcomeAnswer, HangupAfter: time.Millisecond}, numbers[:900]...)
	setBehaviour(sim.Behaviour{Outcome: sim.OutcomeBusy}, numbers[900:]...)
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "many"}, Data: map[string]string{"contacts.csv": csv.String()}})
	create(t, newCampaign(ns, "many", nil, func(c *voicev1alpha1.Campaign) {
		c.Spec.ContactsFrom = []voicev1alpha1.ContactSource{{ConfigMapRef: voicev1alpha1.LocalRef{Name: "many"}}}
		c.Spec.TTLSecondsAfterFinished = ptr(int32(0))
		c.Spec.Concurrency = 50
	}))
	c := waitReady(t, ns, "many", 5*time.Minute)
	if c.Status.Outcomes["Answered"] != 900 || c.Status.Outcomes["Busy"] != 100 || c.Status.Results.Recorded != n {
		t.Fatalf("status: %s", describe(c))
	}
	var list corev1.ConfigMapList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{voicev1alpha1.LabelCampaignResults: "many"}); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(list.Items, func(a, b corev1.ConfigMap) int { return strings.Compare(a.Name, b.Name) })
	var all strings.Builder
	for _, cm := range list.Items {
		all.WriteString(cm.Data[campaign.ResultsKey])
	}
	lines := strings.Split(strings.TrimSpace(all.String()), "\n")
	if lines[0] != "key,number,attempts,outcome,disposition,summary,lastAttemptTime,recording" || len(lines) != n+1 {
		t.Fatalf("%d lines, header %q", len(lines), lines[0])
	}
	seen := map[string]bool{}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if seen[f[0]] {
			t.Fatalf("contact %s recorded twice", f[0])
		}
		seen[f[0]] = true
	}
	harness.WaitFor(t, "Calls deleted by the TTL", slack*time.Minute, func() (bool, string) {
		n := len(listCalls(t, ns))
		return n == 0, fmt.Sprintf("%d Calls", n)
	})
	assertEachDialedOnce(t, numbers...)
}

// TestCampaignSuspendObservedUnderLoad: 100 Calls in flight (answered,
// talking for 15 minutes), the apiserver kept busy by other writers and the
// Call controller kept busy by changes to every Call. A suspend, then a
// stop, are observed (observedGeneration and the condition) while the 100
// calls are still live, so the observation did not wait for the load to
// pass; the time taken is logged (the issue asks for 2 s; the test asserts
// the fact, not the figure).
func TestCampaignSuspendObservedUnderLoad(t *testing.T) {
	// Not parallel: the load it makes on purpose (every Call patched in a
	// loop, 100 live calls) would starve the other tests' Calls, notably
	// the v3 ones, whose answer is known only to a poll that runs in time.
	ns := newNamespace(t)
	const n = 100
	numbers := newNumbers(n + 20)
	// The calls talk far longer than a loaded machine takes to bring all
	// 100 up, so the first answered is still live when the last answers.
	setBehaviour(sim.Behaviour{Outcome: sim.OutcomeAnswer, AnswerDelay: 20 * time.Millisecond, HangupAfter: 15 * time.Minute}, numbers...)
	create(t, newCampaign(ns, "load", numbers, func(c *voicev1alpha1.Campaign) {
		c.Spec.Concurrency = n
		c.Spec.CallTemplate.Spec.MaxDurationSeconds = 1200
	}))
	// Deleting the Campaign deletes its Calls, which hangs them up.
	t.Cleanup(func() {
		_ = k8s.Delete(context.Background(), &voicev1alpha1.Campaign{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "load"}})
	})
	harness.WaitFor(t, "100 live calls", slack*3*time.Minute, func() (bool, string) {
		live := 0
		for _, r := range simCalls(numbers...) {
			if r.State == "answered" {
				live++
			}
		}
		return live == n, fmt.Sprintf("%d answered", live)
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	// Busy apiserver: writers of ConfigMaps, and annotations on every Call
	// (each a Call event and a Call reconcile).
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("noise-%d", w)}}
			_ = k8s.Create(ctx, cm)
			for i := 0; ctx.Err() == nil; i++ {
				cm.Data = map[string]string{"x": fmt.Sprint(i, strings.Repeat("x", 4096))}
				if err := k8s.Update(ctx, cm); err != nil {
					_ = k8s.Get(ctx, client.ObjectKeyFromObject(cm), cm)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			for _, call := range listCalls(t, ns) {
				patch := fmt.Appendf(nil, `{"metadata":{"annotations":{"test/noise":"%d"}}}`, i)
				_ = k8s.Patch(ctx, &call, client.RawPatch(types.MergePatchType, patch))
			}
		}
	}()
	time.Sleep(2 * time.Second) // let the load build up

	for _, step := range []struct {
		what   string
		mutate func(*voicev1alpha1.Campaign)
		cond   string
	}{
		{"suspend", func(c *voicev1alpha1.Campaign) { c.Spec.Suspend = true }, campaign.ConditionSuspended},
		{"stop", func(c *voicev1alpha1.Campaign) { c.Spec.Stop = true }, campaign.ConditionStopped},
	} {
		written := time.Now()
		updateCampaign(t, ns, "load", step.mutate)
		c := waitCampaign(t, ns, "load", step.what+" observed", time.Minute, func(c *voicev1alpha1.Campaign) bool {
			s := condition(c, step.cond)
			return c.Status.ObservedGeneration == c.Generation && s != nil && s.Status == metav1.ConditionTrue && s.ObservedGeneration == c.Generation
		})
		took := time.Since(written)
		live := 0
		for _, r := range simCalls(numbers...) {
			if r.State == "answered" {
				live++
			}
		}
		t.Logf("%s observed %s after the write, %d calls live, %d Calls active", step.what, took.Round(time.Millisecond), live, c.Status.Active)
		if live < n {
			t.Fatalf("%s observed only after %d of the %d calls ended", step.what, n-live, n)
		}
	}
	if got := totalDials(numbers...); got != n {
		t.Fatalf("%d dials, want %d: a Call started after the suspend", got, n)
	}
}
