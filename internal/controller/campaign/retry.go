package campaign

import (
	"time"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// retryRule is how a contact whose last attempt ended with one outcome is
// recycled: delay(n) after attempt n ends, while n < maxAttempts.
type retryRule struct {
	maxAttempts int32
	delay       func(n int32) time.Duration
}

// retryRules are a Campaign's policies by outcome.
type retryRules map[voicev1alpha1.CallOutcome]retryRule

// parseRetry reads spec.retry, or converts callTemplate.spec.retry when it
// is unset: each of its outcomes (NoAnswer and Busy by default) gets its
// maxAttempts and its doubling backoff. The Campaign's Calls themselves are
// always single attempts.
func parseRetry(spec *voicev1alpha1.CampaignSpec) retryRules {
	rules := retryRules{}
	if spec.Retry != nil {
		for _, p := range spec.Retry.Policies {
			d := time.Duration(p.DelaySeconds) * time.Second
			rules[p.Outcome] = retryRule{maxAttempts: max(p.MaxAttempts, 1), delay: func(int32) time.Duration { return d }}
		}
		return rules
	}
	t := spec.CallTemplate.Spec.Retry
	if t.MaxAttempts <= 1 {
		return rules
	}
	backoff := time.Duration(max(t.BackoffSeconds, 1)) * time.Second
	ceiling := time.Duration(max(t.MaxBackoffSeconds, t.BackoffSeconds, 1)) * time.Second
	delay := func(n int32) time.Duration {
		d := backoff
		for i := int32(1); i < n && d < ceiling; i++ {
			d *= 2
		}
		return min(d, ceiling)
	}
	outcomes := t.Outcomes
	if len(outcomes) == 0 {
		outcomes = []voicev1alpha1.CallOutcome{voicev1alpha1.OutcomeNoAnswer, voicev1alpha1.OutcomeBusy}
	}
	for _, o := range outcomes {
		rules[o] = retryRule{maxAttempts: t.MaxAttempts, delay: delay}
	}
	return rules
}

// next says when attempt n+1 of a contact whose attempt n ended at ended
// with outcome may start; ok is false when the contact is done.
func (rr retryRules) next(outcome voicev1alpha1.CallOutcome, n int32, ended time.Time) (time.Time, bool) {
	rule, ok := rr[outcome]
	if !ok || n >= rule.maxAttempts {
		return time.Time{}, false
	}
	return ended.Add(rule.delay(n)), true
}
