package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/internal/scheme"
)

const token = "s3cret-path-token"

func newReceiver(t *testing.T, objs ...client.Object) (*Receiver, client.Client) {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(scheme.New()).
		WithStatusSubresource(&voicev1alpha1.Call{}).
		WithObjects(objs...).
		WithIndex(&voicev1alpha1.Call{}, callstate.IndexRequestID, func(o client.Object) []string { return callstate.RequestIDs(o.(*voicev1alpha1.Call)) }).
		WithIndex(&voicev1alpha1.Call{}, callstate.IndexAttemptID, func(o client.Object) []string { return callstate.AttemptIDs(o.(*voicev1alpha1.Call)) }).
		WithIndex(&voicev1alpha1.Call{}, callstate.IndexCMIUUID, func(o client.Object) []string { return callstate.CMIUUIDs(o.(*voicev1alpha1.Call)) }).
		Build()
	return &Receiver{Client: c, APIReader: c, Token: token}, c
}

func dialedCall() *voicev1alpha1.Call {
	c := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{Namespace: "sales", Name: "asha", UID: "u1"}}
	c.Spec.To = "919876543210"
	c.Status.Phase = voicev1alpha1.CallDialing
	c.Status.Attempts = []voicev1alpha1.CallAttempt{{Number: 1, ID: "u1.1", State: voicev1alpha1.AttemptUnknown}}
	return c
}

const ringing = `{"appid":4242001,"leg":"a","direction":"outbound","from":918000000001,"to":919876543210,"time":1800000000000,
 "cmiuuid":"leg-a","conversation_uuid":"REQ","request_id":"REQ","status":"ringing",
 "extra_params":"{\"callfleet_attempt\":\"u1.1\",\"callfleet_call\":\"sales/asha\"}"}`

func post(t *testing.T, h http.Handler, method, path, body string) (int, reply) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), method, path, strings.NewReader(body)))
	var r reply
	_ = json.Unmarshal(rec.Body.Bytes(), &r)
	return rec.Code, r
}

func TestReceiver(t *testing.T) {
	cases := []struct {
		name, method, path, body string
		wantCode                 int
		wantResult               string
	}{
		{"wrong token", http.MethodPost, PathPrefix + "guess", ringing, http.StatusUnauthorized, "unauthorized"},
		{"missing token", http.MethodPost, PathPrefix, ringing, http.StatusUnauthorized, "unauthorized"},
		{"GET", http.MethodGet, PathPrefix + token, "", http.StatusMethodNotAllowed, "error"},
		{"not JSON", http.MethodPost, PathPrefix + token, "status=ringing", http.StatusBadRequest, "malformed"},
		{"JSON without status", http.MethodPost, PathPrefix + token, `{"appid":1}`, http.StatusBadRequest, "malformed"},
		{"someone else's call", http.MethodPost, PathPrefix + token, `{"status":"ringing","request_id":"other","leg":"a","time":1}`, http.StatusOK, "ignored"},
		{"our call", http.MethodPost, PathPrefix + token, ringing, http.StatusOK, "applied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc, c := newReceiver(t, dialedCall())
			code, r := post(t, rc, tc.method, tc.path, tc.body)
			if code != tc.wantCode || r.Result != tc.wantResult {
				t.Fatalf("got %d %+v, want %d %s", code, r, tc.wantCode, tc.wantResult)
			}
			var call voicev1alpha1.Call
			if err := c.Get(context.Background(), client.ObjectKey{Namespace: "sales", Name: "asha"}, &call); err != nil {
				t.Fatal(err)
			}
			settled := call.Status.Attempts[0].RequestID == "REQ"
			if settled != (tc.wantResult == "applied") {
				t.Fatalf("status changed = %v for result %s: %+v", settled, tc.wantResult, call.Status.Attempts[0])
			}
		})
	}
}

func TestReceiverDuplicateChangesNothing(t *testing.T) {
	rc, c := newReceiver(t, dialedCall())
	if _, r := post(t, rc, http.MethodPost, PathPrefix+token, ringing); r.Result != "applied" {
		t.Fatalf("first delivery: %+v", r)
	}
	var before voicev1alpha1.Call
	_ = c.Get(context.Background(), client.ObjectKey{Namespace: "sales", Name: "asha"}, &before)
	if _, r := post(t, rc, http.MethodPost, PathPrefix+token, ringing); r.Result != "duplicate" {
		t.Fatalf("second delivery: %+v", r)
	}
	var after voicev1alpha1.Call
	_ = c.Get(context.Background(), client.ObjectKey{Namespace: "sales", Name: "asha"}, &after)
	if before.ResourceVersion != after.ResourceVersion {
		t.Fatalf("duplicate caused a write: %s → %s", before.ResourceVersion, after.ResourceVersion)
	}
}

// staleReader serves a Call as the cache had it before the attempt existed.
type staleReader struct {
	client.Client
	stale *voicev1alpha1.Call
}

func (s staleReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	s.stale.DeepCopyInto(obj.(*voicev1alpha1.Call))
	return nil
}

func TestReceiverReadsPastAStaleCache(t *testing.T) {
	fresh := dialedCall()
	rc, c := newReceiver(t, fresh)
	stale := fresh.DeepCopy()
	stale.Status.Attempts = nil
	rc.Client = staleReader{Client: c, stale: stale}
	if code, r := post(t, rc, http.MethodPost, PathPrefix+token, ringing); code != http.StatusOK || r.Result != "applied" {
		t.Fatalf("event for an attempt the cache does not show yet: %d %+v", code, r)
	}
	var call voicev1alpha1.Call
	_ = c.Get(context.Background(), client.ObjectKey{Namespace: "sales", Name: "asha"}, &call)
	if call.Status.Attempts[0].RequestID != "REQ" {
		t.Fatalf("event not recorded: %+v", call.Status.Attempts[0])
	}
}
