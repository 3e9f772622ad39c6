package campaign

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/callstate"
)

// TestClassify decides each contact's state from its latest attempt, the
// results record, the do-not-call list as it stands, the list and whether
// the Campaign has ended.
func TestClassify(t *testing.T) {
	ended := time.Date(2026, 6, 10, 10, 0, 0, 0, time.UTC)
	attempt := func(n int32, phase voicev1alpha1.CallPhase, outcome voicev1alpha1.CallOutcome) *voicev1alpha1.Call {
		call := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{Name: CallName("c", "919800000001", n), Finalizers: []string{CountFinalizer}}}
		call.Spec.To = "919800000001"
		call.Status.Phase = phase
		if outcome != "" {
			call.Status.Attempts = []voicev1alpha1.CallAttempt{{Number: 1, Outcome: outcome, EndTime: &metav1.Time{Time: ended}}}
		}
		return call
	}
	// Hung up at Piopiy, the outcome waiting for the CDR.
	hungUp := attempt(1, voicev1alpha1.CallInProgress, "")
	hungUp.Status.Attempts = []voicev1alpha1.CallAttempt{{Number: 1, State: voicev1alpha1.AttemptDialed, EndTime: &metav1.Time{Time: ended}}}
	// Ambiguous create, never seen at Piopiy: it may have rung.
	unsettledCall := attempt(1, voicev1alpha1.CallFailed, voicev1alpha1.OutcomeFailed)
	unsettledCall.Status.Attempts[0].SettledBy = callstate.SettledByTimeout
	retryFailed := &voicev1alpha1.CampaignSpec{Retry: &voicev1alpha1.CampaignRetry{Policies: []voicev1alpha1.CampaignRetryPolicy{{Outcome: voicev1alpha1.OutcomeFailed, DelaySeconds: 60, MaxAttempts: 2}}}}
	retry := &voicev1alpha1.CampaignSpec{Retry: &voicev1alpha1.CampaignRetry{Policies: []voicev1alpha1.CampaignRetryPolicy{{Outcome: voicev1alpha1.OutcomeNoAnswer, DelaySeconds: 60, MaxAttempts: 2}}}}
	cases := []struct {
		name     string
		spec     *voicev1alpha1.CampaignSpec // default: retry
		calls    []*voicev1alpha1.Call
		recorded bool
		dnc      bool
		removed  bool
		ended    bool
		want     string // inflight, settling, waiting, final, recorded, pending, dnc
		releases int
	}{
		{name: "never attempted", want: "pending"},
		{name: "never attempted, on the list", dnc: true, want: "dnc"},
		{name: "dialing", calls: []*voicev1alpha1.Call{attempt(1, voicev1alpha1.CallRinging, "")}, want: "inflight"},
		{name: "failed, a retry left", spec: retryFailed, calls: []*voicev1alpha1.Call{attempt(1, voicev1alpha1.CallFailed, voicev1alpha1.OutcomeFailed)}, want: "waiting"},
		{name: "ambiguous create never settled: never retried", spec: retryFailed, calls: []*voicev1alpha1.Call{unsettledCall}, want: "final"},
		{name: "hung up, outcome not settled: no slot held", calls: []*voicev1alpha1.Call{hungUp}, want: "settling"},
		{name: "no answer, a retry left", calls: []*voicev1alpha1.Call{attempt(1, voicev1alpha1.CallCompleted, voicev1alpha1.OutcomeNoAnswer)}, want: "waiting"},
		{name: "no answer, attempts used", calls: []*voicev1alpha1.Call{attempt(1, voicev1alpha1.CallCompleted, voicev1alpha1.OutcomeNoAnswer), attempt(2, voicev1alpha1.CallCompleted, voicev1alpha1.OutcomeNoAnswer)}, want: "final", releases: 1},
		{name: "opted out while waiting", calls: []*voicev1alpha1.Call{attempt(1, voicev1alpha1.CallCompleted, voicev1alpha1.OutcomeNoAnswer)}, dnc: true, want: "final"},
		{name: "removed while waiting", calls: []*voicev1alpha1.Call{attempt(1, voicev1alpha1.CallCompleted, voicev1alpha1.OutcomeNoAnswer)}, removed: true, want: "final"},
		{name: "stopped while waiting", calls: []*voicev1alpha1.Call{attempt(1, voicev1alpha1.CallCompleted, voicev1alpha1.OutcomeNoAnswer)}, ended: true, want: "final"},
		{name: "answered", calls: []*voicev1alpha1.Call{attempt(1, voicev1alpha1.CallCompleted, voicev1alpha1.OutcomeAnswered)}, want: "final"},
		{name: "recorded: released", calls: []*voicev1alpha1.Call{attempt(1, voicev1alpha1.CallCompleted, voicev1alpha1.OutcomeAnswered)}, recorded: true, want: "recorded", releases: 1},
		{name: "recorded, Calls gone", recorded: true, want: "recorded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := retry.DeepCopy()
			if tc.spec != nil {
				spec = tc.spec.DeepCopy()
			}
			if !tc.removed {
				spec.Contacts = []voicev1alpha1.Contact{{Number: "919800000001"}}
			}
			s := &scope{
				c:        &voicev1alpha1.Campaign{Spec: *spec},
				byKey:    map[string]*contactCalls{},
				contacts: buildList([]*source{parseInline(spec)}),
				rules:    parseRetry(spec),
				rec:      &record{rows: map[string]*resultRow{}},
				ended:    tc.ended,
			}
			for _, call := range tc.calls {
				cc := s.byKey["919800000001"]
				if cc == nil {
					cc = &contactCalls{}
					s.byKey["919800000001"] = cc
				}
				n := cc.n + 1
				if cc.latest != nil {
					cc.older = append(cc.older, cc.latest)
				}
				cc.latest, cc.n = call, n
			}
			if tc.recorded {
				s.rec.rows["919800000001"] = &resultRow{key: "919800000001"}
			}
			if tc.dnc {
				s.dnc = map[string]struct{}{"919800000001": {}}
			}
			classify(s)
			got := "recorded"
			switch {
			case len(s.inflightCalls) == 1 && s.live() == 0:
				got = "settling"
			case len(s.inflightCalls) == 1:
				got = "inflight"
			case len(s.waiters) == 1:
				got = "waiting"
				if want := ended.Add(time.Minute); !s.waiters[0].due.Equal(want) || s.waiters[0].n != 2 {
					t.Errorf("waiter %+v, want attempt 2 due %s", s.waiters[0], want)
				}
			case len(s.finals) == 1:
				got = "final"
			case len(s.pending) == 1:
				got = "pending"
			case s.dncNow == 1:
				got = "dnc"
			}
			if got != tc.want {
				t.Fatalf("state %s, want %s", got, tc.want)
			}
			if len(s.releases) != tc.releases {
				t.Fatalf("%d releases, want %d", len(s.releases), tc.releases)
			}
		})
	}
}
