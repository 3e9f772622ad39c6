package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

func TestSignVerify(t *testing.T) {
	key, body := []byte("k3y"), []byte(`{"id":"x"}`)
	at := time.Unix(1_800_000_000, 0)
	h := Sign(key, body, at)
	if !strings.HasPrefix(h, "t=1800000000,v1=") {
		t.Fatalf("header %q", h)
	}
	for _, tc := range []struct {
		name   string
		key    []byte
		body   []byte
		header string
		now    time.Time
		want   error
	}{
		{"valid", key, body, h, at.Add(time.Minute), nil},
		{"other key", []byte("nope"), body, h, at, ErrBadSignature},
		{"body changed", key, []byte(`{"id":"y"}`), h, at, ErrBadSignature},
		{"timestamp changed", key, body, strings.Replace(h, "t=1800000000", "t=1800000001", 1), at, ErrBadSignature},
		{"too old", key, body, h, at.Add(time.Hour), ErrStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(tc.key, tc.body, tc.header, tc.now, 5*time.Minute); err != tc.want {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if err := Verify(key, body, "v1=abc", at, 0); err == nil {
		t.Error("a header without t= verified")
	}
}

func TestSenderClassifiesAnswers(t *testing.T) {
	ev := cloudevents.NewEvent()
	ev.SetID("id-1")
	ev.SetType(TypeCallCompleted)
	ev.SetSource("/x")
	for _, tc := range []struct {
		status        int
		wantErr, perm bool
	}{
		{200, false, false}, {202, false, false},
		{400, true, true}, {404, true, true}, {410, true, true},
		{408, true, false}, {429, true, false}, {500, true, false}, {503, true, false},
	} {
		var got *http.Request
		var body string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = r
			b := make([]byte, 4096)
			n, _ := r.Body.Read(b)
			body = string(b[:n])
			w.WriteHeader(tc.status)
		}))
		err := (&Sender{}).Send(context.Background(), Sink{URL: srv.URL, Key: []byte("k")}, ev)
		srv.Close()
		if (err != nil) != tc.wantErr || IsRejected(err) != tc.perm {
			t.Errorf("HTTP %d: err %v (rejected %v), want error %v rejected %v", tc.status, err, IsRejected(err), tc.wantErr, tc.perm)
		}
		if got.Header.Get("Content-Type") != "application/cloudevents+json" {
			t.Errorf("content type %q", got.Header.Get("Content-Type"))
		}
		if err := Verify([]byte("k"), []byte(body), got.Header.Get(SignatureHeader), time.Now(), time.Minute); err != nil {
			t.Errorf("HTTP %d: signature: %v", tc.status, err)
		}
	}
}

func cond(typ string, st metav1.ConditionStatus, reason string, at int64) metav1.Condition {
	return metav1.Condition{Type: typ, Status: st, Reason: reason, LastTransitionTime: metav1.Unix(at, 0), ObservedGeneration: 1}
}

func condGen(c metav1.Condition, gen int64) metav1.Condition {
	c.ObservedGeneration = gen
	return c
}

// TestLedgerDerive: events follow the Campaign's status, with ids from the
// status facts, and a resume is told only after a suspension was seen.
func TestLedgerDerive(t *testing.T) {
	start := metav1.Unix(100, 0)
	c := &voicev1alpha1.Campaign{ObjectMeta: metav1.ObjectMeta{Name: "spring", Namespace: "ns", UID: "u1"}}
	steps := []struct {
		name  string
		set   func(st *voicev1alpha1.CampaignStatus)
		wantN int
		want  string // id of the newest entry, when one was added
	}{
		{"new: nothing yet", func(st *voicev1alpha1.CampaignStatus) {
			st.Conditions = []metav1.Condition{cond(campaignSuspended, metav1.ConditionFalse, "NotSuspended", 90)}
		}, 0, ""},
		{"first Call", func(st *voicev1alpha1.CampaignStatus) { st.StartTime = &start }, 1, "u1.started"},
		{"same status again: nothing new", func(*voicev1alpha1.CampaignStatus) {}, 1, ""},
		{"suspended", func(st *voicev1alpha1.CampaignStatus) {
			st.Conditions = []metav1.Condition{condGen(cond(campaignSuspended, metav1.ConditionTrue, "Suspended", 200), 2)}
		}, 2, "u1.suspended.200"},
		{"a stale read of the False from before the suspension is no resume", func(st *voicev1alpha1.CampaignStatus) {
			st.Conditions = []metav1.Condition{cond(campaignSuspended, metav1.ConditionFalse, "NotSuspended", 200)}
		}, 2, ""},
		{"resumed in the same second", func(st *voicev1alpha1.CampaignStatus) {
			st.Conditions = []metav1.Condition{condGen(cond(campaignSuspended, metav1.ConditionFalse, "NotSuspended", 200), 3)}
		}, 3, "u1.resumed.200"},
		{"a later edit does not resume again", func(st *voicev1alpha1.CampaignStatus) {
			st.Conditions = []metav1.Condition{condGen(cond(campaignSuspended, metav1.ConditionFalse, "NotSuspended", 200), 4)}
		}, 3, ""},
		{"an unknown condition is ignored", func(st *voicev1alpha1.CampaignStatus) {
			st.Conditions = append(st.Conditions, cond("SomethingNew", metav1.ConditionTrue, "X", 310))
		}, 3, ""},
		{"completed", func(st *voicev1alpha1.CampaignStatus) {
			st.Conditions = append(st.Conditions, cond(voicev1alpha1.ConditionReady, metav1.ConditionTrue, reasonCompleted, 400))
		}, 4, "u1.completed.400"},
		{"stopped (its own condition)", func(st *voicev1alpha1.CampaignStatus) {
			st.Conditions = append(st.Conditions, cond(campaignStopped, metav1.ConditionTrue, "Stopped", 500))
		}, 5, "u1.stopped.500"},
	}
	var l ledger
	for _, s := range steps {
		s.set(&c.Status)
		added := l.derive(c)
		if len(l) != s.wantN || added != (s.want != "") || (s.want != "" && l[len(l)-1].ID != s.want) {
			t.Fatalf("%s: ledger %+v", s.name, l)
		}
	}
	// Resumed without a suspension seen (a Campaign's first NotSuspended):
	fresh := &voicev1alpha1.Campaign{ObjectMeta: metav1.ObjectMeta{UID: "u2"}}
	fresh.Status.Conditions = []metav1.Condition{cond(campaignSuspended, metav1.ConditionFalse, "NotSuspended", 50)}
	var l2 ledger
	if l2.derive(fresh) {
		t.Errorf("resumed without a suspension: %+v", l2)
	}
	// Stopped as a Ready reason.
	fresh.Status.Conditions = []metav1.Condition{cond(voicev1alpha1.ConditionReady, metav1.ConditionFalse, campaignStopped, 60)}
	if !l2.derive(fresh) || l2[0].ID != "u2.stopped.60" {
		t.Errorf("stopped as Ready reason: %+v", l2)
	}
}

func TestLedgerTrimKeepsPendingAndNewest(t *testing.T) {
	var l ledger
	for i := 0; i < 50; i++ {
		st := stateDelivered
		if i == 3 {
			st = statePending
		}
		l = append(l, ledgerEntry{ID: string(rune('A' + i)), Type: TypeCampaignSuspended, Time: metav1.Unix(int64(i), 0), State: st})
	}
	out := l.trim()
	if len(out) != maxLedger || out[0].ID != l[3].ID || out[len(out)-1].ID != l[49].ID {
		t.Fatalf("trim kept %d: first %s last %s", len(out), out[0].ID, out[len(out)-1].ID)
	}
}
