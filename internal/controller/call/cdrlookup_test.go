package call

import (
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// endedCall is answeredCall hung up at t0+11s with no CDR webhook seen.
func endedCall() *voicev1alpha1.Call {
	c := answeredCall()
	at := metav1.NewTime(t0.Add(2 * time.Second))
	c.Status.Stream = &voicev1alpha1.CallStreamStatus{State: voicev1alpha1.StreamPhaseDisconnected, ConnectedTime: &at}
	end := metav1.NewTime(t0.Add(11 * time.Second))
	c.Status.Attempts[0].EndTime = &end
	return c
}

// The documented cmiuuid_cdr reply (pkg/piopiy/testdata/documented), as the
// request-id lookup returns it in a list: no ids, no times, rate not
// call_rate.
func documentedLookup(t *testing.T) []piopiy.CDR {
	t.Helper()
	b, err := os.ReadFile("../../../pkg/piopiy/testdata/documented/cmiuuid_cdr.json")
	if err != nil {
		t.Fatal(err)
	}
	cdrs, err := piopiy.ParseCDRResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	return cdrs
}

func TestDocumentedCDRLookupSettlesWithRate(t *testing.T) {
	f := newFixture(t, endedCall(), t0.Add(11*time.Second+20*time.Second)) // CDRGrace after the end
	f.api.cdrs = documentedLookup(t)
	_, got := f.reconcile(t)
	a := got.Status.Attempts[0]
	if a.State != voicev1alpha1.AttemptEnded || a.Outcome != voicev1alpha1.OutcomeAnswered || a.SettledBy != callstate.SettledByCDRLookup {
		t.Fatalf("attempt %+v", a)
	}
	if a.CallRate != "1.500000" || a.DurationSeconds != 9 || a.RequestID != "req-1" {
		t.Fatalf("rate %q duration %d request %q, want the documented 1.500000 and 9", a.CallRate, a.DurationSeconds, a.RequestID)
	}
	if f.api.lookups != 1 || len(f.api.sent()) != 0 {
		t.Fatalf("lookups %d, actions %v", f.api.lookups, f.api.sent())
	}
}

func TestCDRLookupTellsRefusedCredentialsFromNoCDRYet(t *testing.T) {
	notFound := &piopiy.Error{Kind: piopiy.KindNotFound, Op: "requestid_cdr", Code: 404, Message: "Invalid app id or secret, authentication failed, Missing parameter, cmiuuid not found"}
	refused := &piopiy.Error{Kind: piopiy.KindAuthentication, Op: "call action", Code: 420, Message: "invalid appid or secret"}
	cases := []struct {
		name             string
		lookupErr        error
		actionErr        error
		wantProbe        bool
		wantEndedRefused bool
	}{
		{"404, and the account is fine: no CDR yet, keep waiting", notFound, &piopiy.Error{Kind: piopiy.KindNotFound, Code: 404}, true, false},
		{"404, and the call action refuses the account", notFound, refused, true, true},
		{"the lookup itself refuses the account", refused, nil, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, endedCall(), t0.Add(11*time.Second+20*time.Second))
			f.api.lookupErr, f.api.actionErr = tc.lookupErr, tc.actionErr
			_, got := f.reconcile(t)
			a := got.Status.Attempts[0]
			cond := meta.FindStatusCondition(got.Status.Conditions, voicev1alpha1.ConditionCDRLookup)
			if probed := len(f.api.sent()) == 1 && f.api.sent()[0] == "hangup leg-a"; probed != tc.wantProbe {
				t.Fatalf("probe sent %v, want %v", f.api.sent(), tc.wantProbe)
			}
			if !tc.wantEndedRefused {
				if a.State == voicev1alpha1.AttemptEnded || cond != nil {
					t.Fatalf("ended without cause: attempt %+v condition %+v", a, cond)
				}
				// A later 404 does not probe again.
				f.now = f.now.Add(time.Minute)
				f.reconcile(t)
				if n := len(f.api.sent()); n != 1 {
					t.Fatalf("%d probes, want 1 per attempt", n)
				}
				return
			}
			if a.State != voicev1alpha1.AttemptEnded || a.SettledBy != callstate.SettledByTimeout || !strings.Contains(a.Message, "refused the account's credentials") {
				t.Fatalf("attempt %+v", a)
			}
			if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != voicev1alpha1.ReasonAccountRefused {
				t.Fatalf("condition %+v", cond)
			}
			if got.Status.Phase != voicev1alpha1.CallInProgress && got.Status.Phase != voicev1alpha1.CallFailed {
				t.Fatalf("phase %s", got.Status.Phase)
			}
		})
	}
}
