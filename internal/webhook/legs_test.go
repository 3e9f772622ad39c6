package webhook

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// sampleLeg is the cmiuuid of TeleCMI's documented stream-event samples.
const sampleLeg = "c4ec9bd2-efad-4296-aa5b-eeafa6aeeea0"

func documentedSample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../pkg/piopiy/testdata/documented/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The documented stream events (leg b, no request id, no extra_params) move
// status.stream once an earlier event of the call recorded its leg id.
func TestReceiverDocumentedStreamEvents(t *testing.T) {
	rc, c := newReceiver(t, dialedCall())
	get := func() *voicev1alpha1.Call {
		var call voicev1alpha1.Call
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: "sales", Name: "asha"}, &call); err != nil {
			t.Fatal(err)
		}
		return &call
	}
	answered := strings.NewReplacer(`"cmiuuid":"leg-a"`, `"cmiuuid":"`+sampleLeg+`"`, `"status":"ringing"`, `"status":"out_answered"`).Replace(ringing)
	if _, r := post(t, rc, http.MethodPost, PathPrefix+token, answered); r.Result != "applied" {
		t.Fatalf("out_answered: %+v", r)
	}
	if got := get().Status.Attempts[0].CMIUUID; got != sampleLeg {
		t.Fatalf("leg id not recorded: %q", got)
	}
	if code, r := post(t, rc, http.MethodPost, PathPrefix+token, documentedSample(t, "stream_connected.json")); code != http.StatusOK || r.Result != "applied" {
		t.Fatalf("documented stream_connected: %d %+v", code, r)
	}
	if s := get().Status.Stream; s == nil || s.State != voicev1alpha1.StreamPhaseConnected || s.ConnectedTime == nil {
		t.Fatalf("stream after stream_connected: %+v", s)
	}
	if _, r := post(t, rc, http.MethodPost, PathPrefix+token, documentedSample(t, "stream_disconnected.json")); r.Result != "applied" {
		t.Fatalf("documented STREAM_DISCONNECTED: %+v", r)
	}
	s := get().Status.Stream
	if s.State != voicev1alpha1.StreamPhaseDisconnected || s.CloseCode != 1006 || s.Reason != "Abnormal closure" {
		t.Fatalf("stream after STREAM_DISCONNECTED: %+v", s)
	}
}

// A thin event for a leg no Call recorded is someone else's (or a stream id
// of its own): ignored, nothing written.
func TestReceiverThinEventOfUnknownLegIgnored(t *testing.T) {
	rc, c := newReceiver(t, dialedCall())
	var before voicev1alpha1.Call
	_ = c.Get(context.Background(), client.ObjectKey{Namespace: "sales", Name: "asha"}, &before)
	if code, r := post(t, rc, http.MethodPost, PathPrefix+token, documentedSample(t, "stream_connected.json")); code != http.StatusOK || r.Result != "ignored" {
		t.Fatalf("got %d %+v, want ignored", code, r)
	}
	var after voicev1alpha1.Call
	_ = c.Get(context.Background(), client.ObjectKey{Namespace: "sales", Name: "asha"}, &after)
	if before.ResourceVersion != after.ResourceVersion || after.Status.Stream != nil {
		t.Fatalf("an unmatched event wrote: %s → %s, stream %+v", before.ResourceVersion, after.ResourceVersion, after.Status.Stream)
	}
}
