package campaign_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/controller/campaign"
)

// TestWindowOnAFixedClockAcrossDST runs the Campaign controller on a fixed
// clock: 2026-03-08 06:30 UTC is 01:30 in New York, half an hour before
// clocks spring forward from 02:00 EST to 03:00 EDT. A window 02:30-04:00
// New York time starts in the skipped hour, so it opens at the jump, 07:00
// UTC: no Call before, nextWindowTime says 07:00 UTC. Moved to 07:00:01, the
// New York contact is called and a Tokyo contact waits for its window, whose
// 02:30 comes at 17:30 UTC.
//
// Sequential: the clock is the whole suite's.
func TestWindowOnAFixedClockAcrossDST(t *testing.T) {
	setClock := func(s string) {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		fixedNow.Store(&v)
	}
	setClock("2026-03-08T06:30:00Z")
	defer fixedNow.Store(nil)

	ns := newNamespace(t)
	numbers := newNumbers(2)
	setBehaviour(quick(100*time.Millisecond), numbers...)
	create(t, newCampaign(ns, "dst", numbers, func(c *voicev1alpha1.Campaign) {
		c.Spec.Schedule = &voicev1alpha1.CampaignSchedule{TimeZone: "America/New_York", Windows: []voicev1alpha1.CallingWindow{{Start: "02:30", End: "04:00"}}}
		c.Spec.Contacts[1].TimeZone = "Asia/Tokyo"
	}))
	c := waitCampaign(t, ns, "dst", "waiting for the window", 30*time.Second, func(c *voicev1alpha1.Campaign) bool {
		return c.Status.NextWindowTime != nil
	})
	if got, want := c.Status.NextWindowTime.UTC(), time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("nextWindowTime = %s, want %s (03:00 EDT, the jump)", got, want)
	}
	if w := condition(c, campaign.ConditionInWindow); w.Status != metav1.ConditionFalse || c.Status.Pending != 2 || len(listCalls(t, ns)) != 0 {
		t.Fatalf("a Call before the window opened: %s", describe(c))
	}

	setClock("2026-03-08T07:00:01Z")
	// Time is not watched and the controller's requeue is an hour away on
	// this clock: a spec change wakes it.
	updateCampaign(t, ns, "dst", func(c *voicev1alpha1.Campaign) { c.Spec.Concurrency = 3 })
	c = waitCampaign(t, ns, "dst", "first contact called, Tokyo waiting", time.Minute, func(c *voicev1alpha1.Campaign) bool {
		return c.Status.Succeeded == 1 && c.Status.Pending == 1 && c.Status.NextWindowTime != nil
	})
	if got, want := c.Status.NextWindowTime.UTC(), time.Date(2026, 3, 8, 17, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("nextWindowTime = %s, want %s (02:30 in Tokyo)", got, want)
	}
	if got := dialCounts(numbers...); got[numbers[0]] != 1 || got[numbers[1]] != 0 {
		t.Fatalf("dials %v", got)
	}
}
