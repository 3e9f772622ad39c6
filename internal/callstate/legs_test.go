package callstate

import (
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// documented parses one of TeleCMI's samples (the README beside them names
// each page).
func documented(t *testing.T, name string) *piopiy.Webhook {
	t.Helper()
	b, err := os.ReadFile("../../pkg/piopiy/testdata/documented/" + name)
	if err != nil {
		t.Fatal(err)
	}
	wh, err := piopiy.ParseWebhook(b)
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

const sampleLeg = "c4ec9bd2-efad-4296-aa5b-eeafa6aeeea0" // the samples' cmiuuid

func TestDocumentedStreamEventsFindTheAttemptByLeg(t *testing.T) {
	cases := []struct {
		name      string
		legOf     func(c *voicev1alpha1.Call) // which attempt recorded the sample's leg id
		want      Result
		wantState voicev1alpha1.StreamPhase
	}{
		{"the current attempt's leg", func(c *voicev1alpha1.Call) { c.Status.Attempts[1].CMIUUID = sampleLeg }, Applied, voicev1alpha1.StreamPhaseConnected},
		{"an earlier attempt's leg", func(c *voicev1alpha1.Call) { c.Status.Attempts[0].CMIUUID = sampleLeg }, Duplicate, ""},
		{"a leg no event showed", func(*voicev1alpha1.Call) {}, Unmatched, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCall()
			c.Status.Attempts[0].State = voicev1alpha1.AttemptEnded
			c.Status.Attempts[0].CMIUUID = "leg-a-1"
			c.Status.Attempts[0].DialTime = &metav1.Time{Time: t0}
			c.Status.Attempts = append(c.Status.Attempts, voicev1alpha1.CallAttempt{Number: 2, ID: "uid.2", State: voicev1alpha1.AttemptDialed, RequestID: "req2", CMIUUID: "leg-a-2"})
			c.Status.Phase = voicev1alpha1.CallInProgress
			tc.legOf(c)
			if got := Apply(c, documented(t, "stream_connected.json")); got != tc.want {
				t.Fatalf("result %s, want %s", got, tc.want)
			}
			var state voicev1alpha1.StreamPhase
			if c.Status.Stream != nil {
				state = c.Status.Stream.State
			}
			if state != tc.wantState {
				t.Fatalf("stream %s, want %q", state, tc.wantState)
			}
			if h := c.Status.Handoff; h != nil {
				t.Fatalf("a leg-b stream event was taken for an agent's leg: %+v", h)
			}
		})
	}
}

func TestDocumentedStreamDisconnectRecordsAbnormalClosure(t *testing.T) {
	c := newCall()
	c.Status.Attempts[0].CMIUUID = sampleLeg
	// The samples are from 2024: the attempt must have lived then, or their
	// times are ignored as outside its lifetime (sanity.go).
	c.Status.Attempts[0].IntentTime = metav1.NewTime(time.UnixMilli(1725975496000).Add(-30 * time.Second))
	if got := Apply(c, documented(t, "stream_connected.json")); got != Applied {
		t.Fatalf("connected: %s", got)
	}
	if got := Apply(c, documented(t, "stream_disconnected.json")); got != Applied {
		t.Fatalf("disconnected: %s", got)
	}
	s := c.Status.Stream
	if s.State != voicev1alpha1.StreamPhaseDisconnected || s.CloseCode != 1006 || s.Reason != "Abnormal closure" || !s.DisconnectedTime.Time.Equal(time.UnixMilli(1725975496000)) {
		t.Fatalf("stream %+v", s)
	}
	// The same event again (Piopiy redelivers) changes nothing.
	if got := Apply(c, documented(t, "stream_disconnected.json")); got != Duplicate {
		t.Fatalf("again: %s", got)
	}
	// A thin event never fills in the request id it does not carry.
	if c.Status.Attempts[0].RequestID != "req1" {
		t.Fatalf("request id %q", c.Status.Attempts[0].RequestID)
	}
}

// A leg-b event that names its request is an agent's leg, not the stream's:
// the leg id is only a fallback for events that name nothing else.
func TestLegIDIsOnlyAFallback(t *testing.T) {
	c := newCall()
	c.Status.Attempts[0].CMIUUID = "leg-a"
	ev := &piopiy.Event{Status: piopiy.StatusStreamConnected, Leg: piopiy.LegB, RequestID: "other-request", CMIUUID: "leg-a", Time: t0}
	if got := Apply(c, &piopiy.Webhook{Kind: piopiy.KindEvent, Event: ev}); got != Unmatched {
		t.Fatalf("an event naming another request matched by leg id: %s", got)
	}
	if NamesOnlyLeg(ev) {
		t.Fatal("NamesOnlyLeg true for an event with a request id")
	}
	if got := CMIUUIDs(c); len(got) != 1 || got[0] != "leg-a" {
		t.Fatalf("index values %v", got)
	}
}
