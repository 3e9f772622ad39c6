package campaign

import (
	"testing"
	"time"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// TestRetryRules decides, per outcome and attempt, whether and when a
// contact is tried again, for spec.retry and for the converted
// callTemplate.spec.retry.
func TestRetryRules(t *testing.T) {
	ended := time.Date(2026, 6, 10, 20, 55, 0, 0, time.UTC)
	policies := &voicev1alpha1.CampaignSpec{Retry: &voicev1alpha1.CampaignRetry{Policies: []voicev1alpha1.CampaignRetryPolicy{
		{Outcome: voicev1alpha1.OutcomeNoAnswer, DelaySeconds: 1800, MaxAttempts: 3},
		{Outcome: voicev1alpha1.OutcomeBusy, DelaySeconds: 300, MaxAttempts: 5},
		{Outcome: voicev1alpha1.OutcomeVoicemail, DelaySeconds: 3600, MaxAttempts: 2},
	}}}
	legacy := &voicev1alpha1.CampaignSpec{}
	legacy.CallTemplate.Spec.Retry = voicev1alpha1.RetryPolicy{MaxAttempts: 4, BackoffSeconds: 60, MaxBackoffSeconds: 150}
	cases := []struct {
		name    string
		spec    *voicev1alpha1.CampaignSpec
		outcome voicev1alpha1.CallOutcome
		n       int32
		wantIn  time.Duration // -1: no further attempt
	}{
		{"no answer, first attempt", policies, voicev1alpha1.OutcomeNoAnswer, 1, 30 * time.Minute},
		{"no answer, attempts used", policies, voicev1alpha1.OutcomeNoAnswer, 3, -1},
		{"busy has its own limit", policies, voicev1alpha1.OutcomeBusy, 4, 5 * time.Minute},
		{"voicemail retried on its schedule", policies, voicev1alpha1.OutcomeVoicemail, 1, time.Hour},
		{"answered is never retried", policies, voicev1alpha1.OutcomeAnswered, 1, -1},
		{"failed without a policy ends", policies, voicev1alpha1.OutcomeFailed, 1, -1},
		{"legacy: first backoff", legacy, voicev1alpha1.OutcomeBusy, 1, time.Minute},
		{"legacy: doubles", legacy, voicev1alpha1.OutcomeNoAnswer, 2, 2 * time.Minute},
		{"legacy: capped", legacy, voicev1alpha1.OutcomeNoAnswer, 3, 150 * time.Second},
		{"legacy: maxAttempts", legacy, voicev1alpha1.OutcomeNoAnswer, 4, -1},
		{"legacy: only its outcomes", legacy, voicev1alpha1.OutcomeFailed, 1, -1},
		{"no retry at all", &voicev1alpha1.CampaignSpec{}, voicev1alpha1.OutcomeNoAnswer, 1, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			due, ok := parseRetry(tc.spec).next(tc.outcome, tc.n, ended)
			switch {
			case tc.wantIn < 0 && ok:
				t.Fatalf("retry at %s, want none", due)
			case tc.wantIn >= 0 && !ok:
				t.Fatalf("no retry, want one after %s", tc.wantIn)
			case ok && !due.Equal(ended.Add(tc.wantIn)):
				t.Fatalf("due %s, want %s", due, ended.Add(tc.wantIn))
			}
		})
	}
}
