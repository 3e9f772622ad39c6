package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/metrics"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

const (
	appA, appB     = 1001, 2002
	tokenA, tokenB = "tenant-a-token-0123456789abcdef", "tenant-b-token-0123456789abcdef"
	tokenBOld      = "tenant-b-old-token-0123456789ab"
)

func accountSecret(ns string, appID int, tokens ...string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "piopiy"}, Data: map[string][]byte{
		account.KeyAppID: []byte(json.Number(itoa(appID))), account.KeySecret: []byte("s"),
	}}
	keys := []string{account.KeyWebhookToken, account.KeyWebhookTokenPrevious}
	for i, t := range tokens {
		s.Data[keys[i]] = []byte(t)
	}
	return s
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// answeredCall is tenant B's Call, answered and live.
func answeredCall() *voicev1alpha1.Call {
	c := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-b", Name: "asha", UID: "ub"}}
	c.Spec.To = "919876543210"
	c.Spec.RingTimeoutSeconds = 30
	c.Spec.AccountRef = &voicev1alpha1.SecretRef{Name: "piopiy"}
	c.Status.Phase = voicev1alpha1.CallInProgress
	start := time.Now().Add(-time.Minute)
	c.Status.Attempts = []voicev1alpha1.CallAttempt{{
		Number: 1, ID: "ub.1", RequestID: "REQ-B", CMIUUID: "leg-b", State: voicev1alpha1.AttemptDialed,
		IntentTime: metav1.NewTime(start), DialTime: &metav1.Time{Time: start},
		RingTime: &metav1.Time{Time: start.Add(time.Second)}, AnswerTime: &metav1.Time{Time: start.Add(5 * time.Second)},
	}}
	return c
}

func cdrBody(t *testing.T, appID int64, status piopiy.CDRStatus, end time.Time) string {
	t.Helper()
	cdr := piopiy.CDR{
		Status: status, AppID: appID, Leg: piopiy.LegA, Direction: piopiy.DirectionOutbound,
		To: "919876543210", Time: end, StartTime: end.Add(-40 * time.Second), EndTime: end,
		CMIUUID: "leg-b", RequestID: "REQ-B",
		ExtraParams: map[string]string{"callfleet_attempt": "ub.1", "callfleet_call": "tenant-b/asha"},
	}
	if status == piopiy.CDRAnswered {
		cdr.AnswerTime = end.Add(-30 * time.Second)
	}
	b, err := cdr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func eventBody(t *testing.T, appID int64, status piopiy.EventStatus, at time.Time) string {
	t.Helper()
	b, err := piopiy.Event{
		Status: status, AppID: appID, Leg: piopiy.LegA, Direction: piopiy.DirectionOutbound, To: "919876543210",
		Time: at, CMIUUID: "leg-b", RequestID: "REQ-B",
		ExtraParams: map[string]string{"callfleet_attempt": "ub.1", "callfleet_call": "tenant-b/asha"},
	}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func accountPath(ns, token string) string { return AccountPathPrefix + ns + "/piopiy/" + token }

func tenantReceiver(t *testing.T, objs ...client.Object) (*Receiver, client.Client) {
	t.Helper()
	rc, c := newReceiver(t, append([]client.Object{
		accountSecret("tenant-a", appA, tokenA),
		accountSecret("tenant-b", appB, tokenB, tokenBOld),
		accountSecret("legacy", 3003),
		answeredCall(),
	}, objs...)...)
	rc.Accounts = &account.Resolver{Reader: c}
	return rc, c
}

// TestForgedCrossTenantCDR is the attack of issue #20 item 1: tenant A, or
// anyone holding the global token, posts a missed CDR for tenant B's live,
// answered Call. Nothing may change it; B's own URL still works.
func TestForgedCrossTenantCDR(t *testing.T) {
	end := time.Now()
	missed := cdrBody(t, appB, piopiy.CDRMissed, end)
	cases := []struct {
		name, path, body string
		wantCode         int
		wantResult       string
	}{
		{"A's URL, B's Call", accountPath("tenant-a", tokenA), cdrBody(t, appA, piopiy.CDRMissed, end), http.StatusOK, "refused"},
		{"A's URL, B's appid", accountPath("tenant-a", tokenA), missed, http.StatusOK, "refused"},
		{"A's token on B's URL", accountPath("tenant-b", tokenA), missed, http.StatusUnauthorized, "unauthorized"},
		{"global URL, B has its own", PathPrefix + token, missed, http.StatusOK, "refused"},
		{"B's URL, A's appid", accountPath("tenant-b", tokenB), cdrBody(t, appA, piopiy.CDRAnswered, end), http.StatusOK, "refused"},
		{"a Secret without a token", accountPath("legacy", ""), missed, http.StatusUnauthorized, "unauthorized"},
		{"no such Secret", accountPath("tenant-c", tokenA), missed, http.StatusUnauthorized, "unauthorized"},
		{"B's URL, missed after an answer", accountPath("tenant-b", tokenB), missed, http.StatusOK, "contradicted"},
		{"B's previous token, missed after an answer", accountPath("tenant-b", tokenBOld), missed, http.StatusOK, "contradicted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc, c := tenantReceiver(t)
			before := getCall(t, c, "tenant-b", "asha")
			code, r := post(t, rc, http.MethodPost, tc.path, tc.body)
			if code != tc.wantCode || r.Result != tc.wantResult {
				t.Fatalf("got %d %+v, want %d %s", code, r, tc.wantCode, tc.wantResult)
			}
			if after := getCall(t, c, "tenant-b", "asha"); after.ResourceVersion != before.ResourceVersion {
				t.Fatalf("the Call was written: %+v", after.Status.Attempts[0])
			}
		})
	}
	t.Run("B's URL, B's answered CDR", func(t *testing.T) {
		rc, c := tenantReceiver(t)
		code, r := post(t, rc, http.MethodPost, accountPath("tenant-b", tokenB), cdrBody(t, appB, piopiy.CDRAnswered, end))
		if code != http.StatusOK || r.Result != "applied" {
			t.Fatalf("got %d %+v", code, r)
		}
		a := getCall(t, c, "tenant-b", "asha").Status.Attempts[0]
		if a.State != voicev1alpha1.AttemptEnded || a.Outcome != voicev1alpha1.OutcomeAnswered {
			t.Fatalf("attempt not settled Answered: %+v", a)
		}
	})
}

// TestWebhookTimesOutsideTheAttempt: an event dated 1970 (or next year) for
// a real attempt keeps its fact but not its time.
func TestWebhookTimesOutsideTheAttempt(t *testing.T) {
	for _, at := range []time.Time{time.Unix(1, 0), time.Now().Add(365 * 24 * time.Hour)} {
		rc, c := tenantReceiver(t)
		before := getCall(t, c, "tenant-b", "asha").Status.Attempts[0]
		code, r := post(t, rc, http.MethodPost, accountPath("tenant-b", tokenB), eventBody(t, appB, piopiy.StatusHangup, at))
		if code != http.StatusOK || r.Result != "applied" {
			t.Fatalf("hangup at %s: %d %+v", at, code, r)
		}
		a := getCall(t, c, "tenant-b", "asha").Status.Attempts[0]
		if !a.RingTime.Equal(before.RingTime) || !a.AnswerTime.Equal(before.AnswerTime) || !a.DialTime.Equal(before.DialTime) {
			t.Fatalf("times moved: before %+v after %+v", before, a)
		}
		if a.EndTime == nil || a.EndTime.Before(before.AnswerTime) || a.EndTime.After(time.Now().Add(time.Minute)) {
			t.Fatalf("hangup not recorded at receipt: end %v", a.EndTime)
		}
	}
}

// TestAccountWebhookTokenRotation: during a rotation both tokens work; once
// the previous one is removed from the Secret it stops working within the
// resolver's TTL, without a restart.
func TestAccountWebhookTokenRotation(t *testing.T) {
	rc, c := tenantReceiver(t)
	now := time.Now()
	rc.Accounts.Now = func() time.Time { return now }
	ringing := eventBody(t, appB, piopiy.StatusRinging, time.Now())
	for _, tok := range []string{tokenB, tokenBOld} {
		if code, _ := post(t, rc, http.MethodPost, accountPath("tenant-b", tok), ringing); code != http.StatusOK {
			t.Fatalf("token %s during rotation: %d", tok[:12], code)
		}
	}
	var s corev1.Secret
	ctx := context.Background()
	if err := c.Get(ctx, types.NamespacedName{Namespace: "tenant-b", Name: "piopiy"}, &s); err != nil {
		t.Fatal(err)
	}
	delete(s.Data, account.KeyWebhookTokenPrevious)
	if err := c.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
	now = now.Add(11 * time.Second)
	if code, _ := post(t, rc, http.MethodPost, accountPath("tenant-b", tokenBOld), ringing); code != http.StatusUnauthorized {
		t.Fatalf("previous token after the rotation: %d, want 401", code)
	}
	if code, _ := post(t, rc, http.MethodPost, accountPath("tenant-b", tokenB), ringing); code != http.StatusOK {
		t.Fatalf("current token after the rotation: %d", code)
	}
}

// TestStatusLabelBounded is issue #20 item 5: 5,000 unique statuses leave
// the webhook metric's series bounded.
func TestStatusLabelBounded(t *testing.T) {
	rc, _ := newReceiver(t, dialedCall())
	seriesBefore := testutil.CollectAndCount(metrics.WebhookEvents)
	for i := range 5000 {
		body := `{"appid":4242001,"leg":"a","status":"made-up-` + itoa(i) + `","request_id":"x` + itoa(i) + `","time":1}`
		if code, _ := post(t, rc, http.MethodPost, PathPrefix+token, body); code != http.StatusOK {
			t.Fatalf("post %d: %d", i, code)
		}
	}
	if n := testutil.CollectAndCount(metrics.WebhookEvents); n > seriesBefore+2 {
		t.Fatalf("5,000 unique statuses made %d series (from %d)", n, seriesBefore)
	}
	if got := testutil.ToFloat64(metrics.WebhookEvents.WithLabelValues("other", "ignored")); got < 5000 {
		t.Fatalf("other/ignored counted %v, want the 5,000 posts", got)
	}
}

func getCall(t *testing.T, c client.Client, ns, name string) *voicev1alpha1.Call {
	t.Helper()
	var call voicev1alpha1.Call
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &call); err != nil {
		t.Fatal(err)
	}
	return &call
}
