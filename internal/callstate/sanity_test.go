package callstate

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/metrics"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// TestWebhooksNeverContradictStrongerFacts: a missed CDR, from a webhook or
// the CDR lookup, does not end an attempt seen answered; times outside the
// attempt's lifetime are not recorded, and are counted.
func TestWebhooksNeverContradictStrongerFacts(t *testing.T) {
	answered := func() *voicev1alpha1.Call {
		c := newCall()
		c.Spec.MaxDurationSeconds = 600
		if r := Apply(c, event(piopiy.StatusRinging, time.Second)); r != Applied {
			t.Fatalf("ringing: %s", r)
		}
		if r := Apply(c, event(piopiy.StatusOutAnswered, 3*time.Second)); r != Applied {
			t.Fatalf("answered: %s", r)
		}
		return c
	}
	for _, settledBy := range []string{SettledByWebhook, SettledByCDRLookup} {
		c := answered()
		before := c.Status.DeepCopy()
		if r := ApplyCDR(c, cdr(piopiy.CDRMissed, 0, 0, 20*time.Second).CDR, settledBy); r != Contradicted {
			t.Fatalf("%s: missed CDR after an answer: %s, want %s", settledBy, r, Contradicted)
		}
		if a := Current(&c.Status); a.State == voicev1alpha1.AttemptEnded || a.EndTime != nil || len(c.Status.Attempts) != len(before.Attempts) {
			t.Fatalf("%s: the contradicted CDR changed the attempt: %+v", settledBy, a)
		}
	}

	ignored := testutil.ToFloat64(metrics.WebhookTimesIgnored)
	cases := []struct {
		name string
		at   time.Duration
	}{
		{"1970", -time.Duration(t0.UnixNano())},
		{"a day before the dial", -24 * time.Hour},
		{"a year after", 365 * 24 * time.Hour},
	}
	for _, tc := range cases {
		c := answered()
		ring, answer := *Current(&c.Status).RingTime, *Current(&c.Status).AnswerTime
		Apply(c, event(piopiy.StatusRinging, tc.at))
		Apply(c, event(piopiy.StatusOutAnswered, tc.at))
		bad := cdr(piopiy.CDRAnswered, tc.at, 0, tc.at).CDR
		bad.AnswerTime = t0.Add(tc.at)
		ApplyCDR(c, bad, SettledByWebhook)
		a := Current(&c.Status)
		if !a.RingTime.Equal(&ring) || !a.AnswerTime.Equal(&answer) {
			t.Fatalf("%s: times moved: ring %v answer %v", tc.name, a.RingTime, a.AnswerTime)
		}
		if a.State != voicev1alpha1.AttemptEnded || a.Outcome != voicev1alpha1.OutcomeAnswered {
			t.Fatalf("%s: the CDR's fact was lost: %+v", tc.name, a)
		}
	}
	// Each case: ringing, answered, and the CDR's start, answer and end.
	if got := testutil.ToFloat64(metrics.WebhookTimesIgnored) - ignored; got != float64(5*len(cases)) {
		t.Fatalf("counted %v ignored times, want %d", got, 5*len(cases))
	}
}
