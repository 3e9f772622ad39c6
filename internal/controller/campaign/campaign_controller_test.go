package campaign_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callfleet/callfleet/test/harness"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/controller/campaign"
	"github.com/callfleet/callfleet/internal/sim"
)

// TestConcurrencyAndCounts: twelve contacts at concurrency 3. The sim's
// timeline never holds more than three live calls, every number is rung once,
// and status counts every outcome.
func TestConcurrencyAndCounts(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	numbers := newNumbers(12)
	setBehaviour(quick(600*time.Millisecond), numbers...)
	busy := []string{numbers[2], numbers[7], numbers[11]}
	setBehaviour(sim.Behaviour{Outcome: sim.OutcomeBusy, AnswerDelay: 200 * time.Millisecond}, busy...)
	create(t, newCampaign(ns, "conc", numbers, func(c *voicev1alpha1.Campaign) {
		c.Spec.Concurrency = 3
		c.Spec.CallTemplate.Spec.Variables = map[string]string{"campaign": "conc", "greeting": "hi"}
		c.Spec.Contacts[0].Variables = map[string]string{"greeting": "hello", "name": "Asha"}
		c.Spec.CallTemplate.Labels = map[string]string{"team": "sales"}
	}))
	c := waitReady(t, ns, "conc", 2*time.Minute)

	st := c.Status
	if st.Total != 12 || st.Succeeded != 9 || st.Failed != 3 || st.Skipped != 0 || st.Active != 0 || st.Pending != 0 || st.Results == nil || st.Results.Recorded != 12 {
		t.Fatalf("counts: %s", describe(c))
	}
	if st.StartTime == nil || st.CompletionTime == nil || condition(c, voicev1alpha1.ConditionReady).Reason != "Completed" {
		t.Fatalf("times or Ready: %s", describe(c))
	}
	assertEachDialedOnce(t, numbers...)
	recs := simCalls(numbers...)
	if got := maxOverlap(recs); got > 3 {
		t.Fatalf("%d calls live at once, concurrency is 3", got)
	} else {
		t.Logf("at most %d calls live at once (concurrency 3)", got)
	}

	first := getCall(t, ns, campaign.CallName("conc", numbers[0], 1))
	if v := first.Spec.Variables; v["campaign"] != "conc" || v["greeting"] != "hello" || v["name"] != "Asha" {
		t.Errorf("contact variables not merged over the template's: %v", v)
	}
	if v := getCall(t, ns, campaign.CallName("conc", numbers[1], 1)).Spec.Variables; v["greeting"] != "hi" || len(v) != 2 {
		t.Errorf("template variables: %v", v)
	}
	waitEvents(t, ns, "conc", func(r map[string]int) bool { return r["Started"] == 1 && r["Completed"] == 1 })
	calls := listCalls(t, ns)
	if len(calls) != 12 {
		t.Fatalf("%d Calls, want 12", len(calls))
	}
	for _, call := range calls {
		if key := keyOf(t, &call); call.Name != campaign.CallName("conc", key, 1) {
			t.Errorf("Call %s has contact key %s", call.Name, key)
		}
		ref := metav1.GetControllerOf(&call)
		if ref == nil || ref.Kind != "Campaign" || ref.Name != "conc" || ref.UID != c.UID || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("Call %s controller reference %+v", call.Name, ref)
		}
		if call.Labels[voicev1alpha1.LabelCampaign] != "conc" || call.Labels["team"] != "sales" {
			t.Errorf("Call %s labels %v", call.Name, call.Labels)
		}
		if call.Annotations[voicev1alpha1.AnnotationCounted] == "" || slices.Contains(call.Finalizers, campaign.CountFinalizer) {
			t.Errorf("Call %s not released after counting: %v %v", call.Name, call.Annotations, call.Finalizers)
		}
	}
}

func getCall(t *testing.T, ns, name string) *voicev1alpha1.Call {
	t.Helper()
	c := &voicev1alpha1.Call{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, c); err != nil {
		t.Fatalf("get call %s/%s: %v", ns, name, err)
	}
	return c
}

// TestCallsPerMinuteSpacesDials: at 30 a minute the pacer lets one Call
// start every two seconds, so four dials span at least six seconds (minus
// the jitter of the create-to-dial path).
func TestCallsPerMinuteSpacesDials(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	numbers := newNumbers(4)
	setBehaviour(quick(100*time.Millisecond), numbers...)
	create(t, newCampaign(ns, "paced", numbers, func(c *voicev1alpha1.Campaign) { c.Spec.CallsPerMinute = 30 }))
	c := waitReady(t, ns, "paced", 2*time.Minute)
	if c.Status.Succeeded != 4 || c.Status.PaceTime == nil {
		t.Fatalf("status: %s", describe(c))
	}
	recs := simCalls(numbers...)
	if len(recs) != 4 {
		t.Fatalf("%d dials, want 4", len(recs))
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].To != numbers[i] {
			t.Fatalf("dial %d went to %s, want %s", i, recs[i].To, numbers[i])
		}
		t.Logf("dial %d at +%s", i, recs[i].DialedAt.Sub(recs[0].DialedAt).Round(time.Millisecond))
	}
	if span := recs[3].DialedAt.Sub(recs[0].DialedAt); span < 4500*time.Millisecond {
		t.Fatalf("4 dials at 30/min spanned %s, want about 6s", span)
	}
}

// TestEndpointFreeSlotsLimitCalls: a template on a missing StreamEndpoint
// stalls the Campaign; once the endpoint exists with capacity 2, no more
// than two calls are live although concurrency is 10.
func TestEndpointFreeSlotsLimitCalls(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	numbers := newNumbers(6)
	setBehaviour(quick(700*time.Millisecond), numbers...)
	create(t, newCampaign(ns, "ep", numbers, func(c *voicev1alpha1.Campaign) {
		c.Spec.CallTemplate.Spec.Stream.URL = ""
		c.Spec.CallTemplate.Spec.StreamEndpointRef = &voicev1alpha1.LocalRef{Name: "bots"}
	}))
	c := waitCampaign(t, ns, "ep", "Stalled EndpointNotFound", 30*time.Second, func(c *voicev1alpha1.Campaign) bool {
		s := condition(c, voicev1alpha1.ConditionStalled)
		return s != nil && s.Status == metav1.ConditionTrue && s.Reason == "EndpointNotFound"
	})
	if r := condition(c, voicev1alpha1.ConditionReady); r.Status != metav1.ConditionFalse || r.Reason != "EndpointNotFound" {
		t.Fatalf("Ready: %+v", r)
	}
	if n := len(listCalls(t, ns)); n != 0 {
		t.Fatalf("%d Calls made for a missing endpoint", n)
	}

	// No StreamEndpoint controller runs here: the test plays its part and
	// reports a Ready endpoint with room for two streams.
	ep := &voicev1alpha1.StreamEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bots"}}
	ep.Spec.Image = "example.com/bot:1"
	create(t, ep)
	ep.Status.URL = streamSink
	ep.Status.Capacity = 2
	ep.Status.Conditions = []metav1.Condition{{Type: voicev1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", LastTransitionTime: metav1.Now()}}
	if err := k8s.Status().Update(ctx, ep); err != nil {
		t.Fatal(err)
	}
	c = waitReady(t, ns, "ep", 2*time.Minute)
	if c.Status.Succeeded != 6 {
		t.Fatalf("status: %s", describe(c))
	}
	assertEachDialedOnce(t, numbers...)
	if got := maxOverlap(simCalls(numbers...)); got > 2 {
		t.Fatalf("%d calls live at once, the endpoint has 2 slots", got)
	}
	if s := condition(c, voicev1alpha1.ConditionStalled); s.Status != metav1.ConditionFalse {
		t.Fatalf("still Stalled: %+v", s)
	}
}

// TestWindowClosedAcrossZones: windows are read in each contact's zone. On
// the Saturday (say) of Kiritimati (UTC+14), Pago Pago (UTC−11) is still on
// Friday: a window open only on Kiritimati's weekday lets a Kiritimati
// contact be called and holds a Pago Pago one, with nextWindowTime at the
// start of that weekday in Pago Pago. No head-of-line blocking: the later
// Kiritimati contact is called all the same. A Campaign
// whose only window is two days away makes no Call at all.
func TestWindowClosedAcrossZones(t *testing.T) {
	t.Parallel()
	kiri, pago := mustZone(t, "Pacific/Kiritimati"), mustZone(t, "Pacific/Pago_Pago")
	// Keep clear of the moment Kiritimati's date changes (10:00 UTC).
	for now := time.Now().UTC(); now.Hour() == 9 && now.Minute() >= 58 || now.Hour() == 10 && now.Minute() < 1; now = time.Now().UTC() {
		time.Sleep(10 * time.Second)
	}
	now := time.Now()
	day := now.In(kiri).Weekday().String()[:3]
	ns := newNamespace(t)
	numbers := newNumbers(3)
	setBehaviour(quick(100*time.Millisecond), numbers...)
	create(t, newCampaign(ns, "zones", numbers, func(c *voicev1alpha1.Campaign) {
		c.Spec.Schedule = &voicev1alpha1.CampaignSchedule{TimeZone: "Pacific/Kiritimati", Windows: []voicev1alpha1.CallingWindow{{Days: []string{day}, Start: "00:00", End: "24:00"}}}
		c.Spec.Contacts[1].TimeZone = "Pacific/Pago_Pago"
	}))
	c := waitCampaign(t, ns, "zones", "both Kiritimati contacts called, Pago Pago waiting", time.Minute, func(c *voicev1alpha1.Campaign) bool {
		w := condition(c, campaign.ConditionInWindow)
		return c.Status.Succeeded == 2 && w != nil && w.Status == metav1.ConditionFalse
	})
	want := nextWeekdayStart(now, pago, now.In(kiri).Weekday())
	if c.Status.NextWindowTime == nil || !c.Status.NextWindowTime.Equal(&metav1.Time{Time: want}) {
		t.Fatalf("nextWindowTime = %v, want %s (%s in Pago Pago)", c.Status.NextWindowTime, want.UTC(), want.In(pago))
	}
	if r := condition(c, voicev1alpha1.ConditionReady); r.Reason != "OutsideWindow" {
		t.Fatalf("Ready: %+v", r)
	}
	if got := dialCounts(numbers...); got[numbers[0]] != 1 || got[numbers[1]] != 0 || got[numbers[2]] != 1 {
		t.Fatalf("dials %v: want both Kiritimati contacts, not the Pago Pago one between them", got)
	}

	// Two days from now (in UTC) is never today.
	closed := now.UTC().AddDate(0, 0, 2).Weekday().String()[:3]
	later := newNumbers(2)
	create(t, newCampaign(ns, "closed", later, func(c *voicev1alpha1.Campaign) {
		c.Spec.Schedule = &voicev1alpha1.CampaignSchedule{Windows: []voicev1alpha1.CallingWindow{{Days: []string{closed}, Start: "09:00", End: "17:00"}}}
	}))
	c = waitCampaign(t, ns, "closed", "InWindow=False", 30*time.Second, func(c *voicev1alpha1.Campaign) bool {
		w := condition(c, campaign.ConditionInWindow)
		return w != nil && w.Status == metav1.ConditionFalse && c.Status.NextWindowTime != nil
	})
	y, m, d := now.UTC().AddDate(0, 0, 2).Date()
	if want := time.Date(y, m, d, 9, 0, 0, 0, time.UTC); !c.Status.NextWindowTime.Time.Equal(want) {
		t.Fatalf("nextWindowTime = %s, want %s", c.Status.NextWindowTime.UTC(), want)
	}
	for _, call := range listCalls(t, ns) {
		if strings.HasPrefix(call.Name, "closed-") {
			t.Fatalf("Call %s made outside the window", call.Name)
		}
	}
	if c.Status.Pending != 2 || c.Status.WaitingForWindow != 2 {
		t.Fatalf("status: %s", describe(c))
	}
	waitEvents(t, ns, "closed", func(r map[string]int) bool { return r["WaitingForWindow"] == 1 })
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// nextWeekdayStart is the next local midnight starting weekday wd in loc.
func nextWeekdayStart(now time.Time, loc *time.Location, wd time.Weekday) time.Time {
	lt := now.In(loc)
	for d := 0; d <= 7; d++ {
		t := time.Date(lt.Year(), lt.Month(), lt.Day()+d, 0, 0, 0, 0, loc)
		if t.Weekday() == wd && t.After(now) {
			return t
		}
	}
	return time.Time{}
}

// TestSuspendAndResume: a suspended Campaign makes no Call; resumed, it
// starts; suspended again mid-call, the live Call finishes and is counted
// but no new one starts; resumed, it completes with each number rung once.
func TestSuspendAndResume(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	numbers := newNumbers(4)
	setBehaviour(quick(100*time.Millisecond), numbers...)
	setBehaviour(quick(5*time.Second), numbers[0])
	create(t, newCampaign(ns, "pause", numbers, func(c *voicev1alpha1.Campaign) {
		c.Spec.Suspend = true
		c.Spec.Concurrency = 1
	}))
	c := waitCampaign(t, ns, "pause", "Suspended", 30*time.Second, func(c *voicev1alpha1.Campaign) bool {
		s := condition(c, campaign.ConditionSuspended)
		return s != nil && s.Status == metav1.ConditionTrue
	})
	if r := condition(c, voicev1alpha1.ConditionReady); r.Reason != "Suspended" || c.Status.Total != 4 || c.Status.Pending != 4 {
		t.Fatalf("status: %s", describe(c))
	}
	if n := len(listCalls(t, ns)); n != 0 {
		t.Fatalf("%d Calls made while suspended", n)
	}

	updateCampaign(t, ns, "pause", func(c *voicev1alpha1.Campaign) { c.Spec.Suspend = false })
	waitCampaign(t, ns, "pause", "first Call started", 30*time.Second, func(c *voicev1alpha1.Campaign) bool { return c.Status.Active == 1 })
	// The first call talks for 5 s; suspend while it is live.
	updateCampaign(t, ns, "pause", func(c *voicev1alpha1.Campaign) { c.Spec.Suspend = true })
	c = waitCampaign(t, ns, "pause", "first Call counted while suspended", time.Minute, func(c *voicev1alpha1.Campaign) bool {
		s := condition(c, campaign.ConditionSuspended)
		return c.Status.Succeeded == 1 && s.Status == metav1.ConditionTrue && s.ObservedGeneration == c.Generation
	})
	if c.Status.Pending != 3 || c.Status.Active != 0 {
		t.Fatalf("status: %s", describe(c))
	}
	if n := len(listCalls(t, ns)); n != 1 {
		t.Fatalf("%d Calls, want 1: a suspended Campaign started a Call", n)
	}

	updateCampaign(t, ns, "pause", func(c *voicev1alpha1.Campaign) { c.Spec.Suspend = false })
	c = waitReady(t, ns, "pause", time.Minute)
	if c.Status.Succeeded != 4 {
		t.Fatalf("status: %s", describe(c))
	}
	assertEachDialedOnce(t, numbers...)
	waitEvents(t, ns, "pause", func(r map[string]int) bool { return r["Suspended"] >= 2 && r["Resumed"] >= 2 })
}

// TestDoNotCall: numbers in the do-not-call ConfigMap (any key, '+' and
// spaces allowed) are skipped and counted, never dialed.
func TestDoNotCall(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	numbers := newNumbers(5)
	setBehaviour(quick(100*time.Millisecond), numbers...)
	create(t, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dnc"},
		Data: map[string]string{
			"opted-out": "# asked not to be called\n+" + numbers[1] + "\n",
			"legal":     "   " + numbers[3] + "  \n\n",
		},
	})
	create(t, newCampaign(ns, "dnc", numbers, func(c *voicev1alpha1.Campaign) {
		c.Spec.DoNotCallRef = &voicev1alpha1.LocalRef{Name: "dnc"}
	}))
	c := waitReady(t, ns, "dnc", time.Minute)
	if c.Status.Succeeded != 3 || c.Status.Skipped != 2 || c.Status.Total != 5 {
		t.Fatalf("status: %s", describe(c))
	}
	counts := dialCounts(numbers...)
	for i, n := range numbers {
		want := 1
		if i == 1 || i == 3 {
			want = 0
		}
		if counts[n] != want {
			t.Errorf("contact %d dialed %d times, want %d", i, counts[n], want)
		}
	}
	for _, call := range listCalls(t, ns) {
		if call.Name == campaign.CallName("dnc", numbers[1], 1) || call.Name == campaign.CallName("dnc", numbers[3], 1) {
			t.Errorf("Call %s made for a do-not-call number", call.Name)
		}
	}
}

// TestBadCSVRowsReported: contacts from a ConfigMap that appears after the
// Campaign (Stalled until then); bad rows are reported with their line
// numbers and skipped; indexes follow inline contacts then CSV rows.
func TestBadCSVRowsReported(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	numbers := newNumbers(4)
	setBehaviour(quick(100*time.Millisecond), numbers...)
	create(t, newCampaign(ns, "csv", numbers[:1], func(c *voicev1alpha1.Campaign) {
		c.Spec.ContactsFrom = []voicev1alpha1.ContactSource{{ConfigMapRef: voicev1alpha1.LocalRef{Name: "leads"}, Key: "leads.csv"}}
		c.Spec.CallTemplate.Spec.Variables = map[string]string{"campaign": "spring"}
	}))
	waitCampaign(t, ns, "csv", "Stalled ContactsNotFound", 30*time.Second, func(c *voicev1alpha1.Campaign) bool {
		s := condition(c, voicev1alpha1.ConditionStalled)
		return s != nil && s.Status == metav1.ConditionTrue && s.Reason == "ContactsNotFound"
	})
	csv := strings.Join([]string{
		"number,timezone,first_name",
		"+" + numbers[1] + ",Asia/Kolkata,Asha", // line 2 → index 1
		"not-a-number,,Bad",                     // 3 → index 2
		numbers[2] + ",UTC",                     // 4 → index 3: two columns
		numbers[2] + ",Atlantis/Capital,Zed",    // 5 → index 4
		numbers[3] + ",,Ravi",                   // 6 → index 5
	}, "\n")
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "leads"}, Data: map[string]string{"leads.csv": csv}})
	c := waitReady(t, ns, "csv", time.Minute)
	st := c.Status
	if st.Total != 6 || st.Skipped != 3 || st.Succeeded != 3 || st.Failed != 0 {
		t.Fatalf("status: %s", describe(c))
	}
	want := []struct {
		line   int32
		reason string
	}{{3, "number"}, {4, "columns"}, {5, "time zone"}}
	if len(st.InvalidContacts) != len(want) {
		t.Fatalf("invalidContacts: %+v", st.InvalidContacts)
	}
	for i, w := range want {
		got := st.InvalidContacts[i]
		if got.Source != "leads" || got.Line != w.line || !strings.Contains(got.Reason, w.reason) {
			t.Errorf("invalidContacts[%d] = %+v, want line %d about %s", i, got, w.line, w.reason)
		}
	}
	names := map[string]bool{}
	for _, call := range listCalls(t, ns) {
		names[call.Name] = true
	}
	if len(names) != 3 || !names[campaign.CallName("csv", numbers[0], 1)] || !names[campaign.CallName("csv", numbers[1], 1)] || !names[campaign.CallName("csv", numbers[3], 1)] {
		t.Fatalf("Calls %v, want one for each of contacts 0, 1 and 3", names)
	}
	csv1 := campaign.CallName("csv", numbers[1], 1)
	if v := getCall(t, ns, csv1).Spec.Variables; v["first_name"] != "Asha" || v["campaign"] != "spring" {
		t.Fatalf("variables of csv-1: %v", v)
	}
	if to := getCall(t, ns, csv1).Spec.To; to != numbers[1] {
		t.Fatalf("csv-1 rings %s, want %s", to, numbers[1])
	}
	assertEachDialedOnce(t, numbers[0], numbers[1], numbers[3])
	if n := dialCounts(numbers[2])[numbers[2]]; n != 0 {
		t.Fatalf("a number only on bad rows was dialed %d times", n)
	}
}

// TestTTLDeletesFinishedCallsKeepsCounts: with ttlSecondsAfterFinished 0 the
// finished Calls go, and the counts stay, each outcome counted once; Busy is
// a success here because successOutcomes says so.
func TestTTLDeletesFinishedCallsKeepsCounts(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	numbers := newNumbers(8)
	setBehaviour(quick(200*time.Millisecond), numbers[:4]...)
	setBehaviour(sim.Behaviour{Outcome: sim.OutcomeBusy, AnswerDelay: 100 * time.Millisecond}, numbers[4:6]...)
	setBehaviour(sim.Behaviour{Outcome: sim.OutcomeReject, AnswerDelay: 100 * time.Millisecond}, numbers[6:]...)
	create(t, newCampaign(ns, "ttl", numbers, func(c *voicev1alpha1.Campaign) {
		c.Spec.TTLSecondsAfterFinished = ptr(int32(0))
		c.Spec.Concurrency = 3
		c.Spec.SuccessOutcomes = []voicev1alpha1.CallOutcome{voicev1alpha1.OutcomeAnswered, voicev1alpha1.OutcomeBusy}
	}))
	c := waitReady(t, ns, "ttl", 2*time.Minute)
	if c.Status.Succeeded != 6 || c.Status.Failed != 2 || c.Status.Total != 8 {
		t.Fatalf("status: %s", describe(c))
	}
	harness.WaitFor(t, "finished Calls deleted", time.Minute, func() (bool, string) {
		calls := listCalls(t, ns)
		return len(calls) == 0, fmt.Sprintf("%d Calls left", len(calls))
	})
	c = getCampaign(t, ns, "ttl")
	if c.Status.Succeeded != 6 || c.Status.Failed != 2 {
		t.Fatalf("counts changed after the Calls went: %s", describe(c))
	}
	assertEachDialedOnce(t, numbers...)
}

// TestDeleteCampaignDeletesCalls: deleting a Campaign deletes its Calls
// (hanging up live ones) through its finalizer: envtest has no garbage
// collector, and the count finalizers must be released anyway.
func TestDeleteCampaignDeletesCalls(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	numbers := newNumbers(3)
	setBehaviour(sim.Behaviour{Outcome: sim.OutcomeAnswer, AnswerDelay: 50 * time.Millisecond}, numbers...)
	create(t, newCampaign(ns, "bye", numbers))
	harness.WaitFor(t, "three live calls", time.Minute, func() (bool, string) {
		recs := simCalls(numbers...)
		live := 0
		for _, r := range recs {
			if r.State == "answered" {
				live++
			}
		}
		return live == 3, fmt.Sprintf("%d answered", live)
	})
	c := getCampaign(t, ns, "bye")
	for _, call := range listCalls(t, ns) {
		if !metav1.IsControlledBy(&call, c) {
			t.Fatalf("Call %s not controlled by the Campaign", call.Name)
		}
	}
	if err := k8s.Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "Campaign and Calls gone", time.Minute, func() (bool, string) {
		err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "bye"}, &voicev1alpha1.Campaign{})
		calls := listCalls(t, ns)
		return isNotFound(err) && len(calls) == 0, fmt.Sprintf("campaign: %v; %d Calls", err, len(calls))
	})
	harness.WaitFor(t, "calls hung up", 30*time.Second, func() (bool, string) {
		recs := simCalls(numbers...)
		for _, r := range recs {
			if r.State != "ended" || r.HangupCause != "api" {
				return false, fmt.Sprintf("%s: %s %s", r.To, r.State, r.HangupCause)
			}
		}
		return len(recs) == 3, ""
	})
}

// TestLongCampaignName: Call names stay valid (63 characters, hashed) for a
// long Campaign name, and the label value too.
func TestLongCampaignName(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	numbers := newNumbers(2)
	setBehaviour(quick(100*time.Millisecond), numbers...)
	name := "a-very-long-campaign-name-for-the-spring-sale-in-the-southern-region-2026"
	create(t, newCampaign(ns, name, numbers))
	waitReady(t, ns, name, time.Minute)
	for _, call := range listCalls(t, ns) {
		if len(call.Name) > 63 || call.Name != campaign.CallName(name, keyOf(t, &call), 1) {
			t.Errorf("Call name %q", call.Name)
		}
		if call.Labels[voicev1alpha1.LabelCampaign] != campaign.LabelValue(name) {
			t.Errorf("label %q", call.Labels[voicev1alpha1.LabelCampaign])
		}
	}
	assertEachDialedOnce(t, numbers...)
}

func keyOf(t *testing.T, call *voicev1alpha1.Call) string {
	t.Helper()
	key := call.Annotations[voicev1alpha1.AnnotationContactKey]
	if key == "" {
		t.Fatalf("Call %s has no contact key", call.Name)
	}
	return key
}
