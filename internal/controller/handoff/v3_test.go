package handoff

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/controller/call"
	"github.com/callfleet/callfleet/internal/scheme"
	piopiyv3 "github.com/callfleet/callfleet/pkg/piopiy/v3"
)

// fakeV3 is a Piopiy v3 account whose transfers answer as told.
type fakeV3 struct {
	sent     []piopiyv3.TransferRequest
	startErr error
	status   *piopiyv3.TransferStatus
	getErr   error
	hungUp   []string
}

func (f *fakeV3) For(string) (call.V3API, error) { return f, nil }

func (f *fakeV3) AICall(context.Context, piopiyv3.AICallRequest) (*piopiyv3.CallCreated, error) {
	return nil, errors.New("not used")
}

func (f *fakeV3) PCMOCall(context.Context, piopiyv3.PCMOCallRequest) (*piopiyv3.CallCreated, error) {
	return nil, errors.New("not used")
}

func (f *fakeV3) GetCall(context.Context, string) (*piopiyv3.CallInfo, error) {
	return nil, errors.New("not used")
}

func (f *fakeV3) Hangup(_ context.Context, id string, _ piopiyv3.HangupRequest) (*piopiyv3.ActionAccepted, error) {
	f.hungUp = append(f.hungUp, id)
	return &piopiyv3.ActionAccepted{RequestID: "h-1"}, nil
}

func (f *fakeV3) Transfer(_ context.Context, _ string, req piopiyv3.TransferRequest) (*piopiyv3.ActionAccepted, error) {
	f.sent = append(f.sent, req)
	if f.startErr != nil {
		return nil, f.startErr
	}
	return &piopiyv3.ActionAccepted{RequestID: "tr-new"}, nil
}

func (f *fakeV3) GetTransfer(context.Context, string) (*piopiyv3.TransferStatus, error) {
	return f.status, f.getErr
}

const v3CallID = "6f1d2c1e-8a4b-4c3e-9d2f-1a2b3c4d5e6f"

// ringingV3Call is a live v3 Call whose handoff rings agent a (assignment
// 1), with the transfer requestID when set.
func ringingV3Call(requestID string) *voicev1alpha1.Call {
	c := liveCall(voicev1alpha1.OnNoAgentReturnToBot)
	c.Spec.Agent = &voicev1alpha1.CallAgent{ID: "bdd32bcb-767c-40a5-be4a-5f45eeb348a6"}
	c.Spec.AccountRef = &voicev1alpha1.SecretRef{Name: "v3"}
	c.Status.Attempts[0].CMIUUID, c.Status.Attempts[0].CallID, c.Status.Attempts[0].From = "", v3CallID, "918000000001"
	c.Status.Result = &voicev1alpha1.CallResult{Summary: "wants the annual plan"}
	at := metav1.NewTime(t0)
	c.Status.Handoff = &voicev1alpha1.CallHandoffStatus{Phase: voicev1alpha1.HandoffRinging, Source: voicev1alpha1.HandoffSourceSpec,
		Agent: "a", Number: "919000000001", Assignment: 1, RequestedTime: &at, AgentAssignedTime: &at, TransferRequestID: requestID}
	if requestID != "" {
		c.Status.Handoff.BridgeSentTime = &at
	}
	return c
}

// v3Reconciler runs ringingV3 over a fake apiserver holding the Call (as
// stored), its pool and its v3 account Secret.
func v3Reconciler(t *testing.T, stored *voicev1alpha1.Call, v3 V3Clients) *Reconciler {
	t.Helper()
	pool := &voicev1alpha1.AgentPool{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pool"}}
	pool.Spec.RingTimeoutSeconds = 15
	pool.Spec.Queue.HoldAudioURL = "https://example.com/hold.mp3"
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "v3"},
		Data: map[string][]byte{account.KeyToken: []byte("tok"), account.KeyAppID: []byte("app"), account.KeyFrom: []byte("918000000001")}}
	cl := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(stored, pool, secret).WithStatusSubresource(stored).Build()
	return &Reconciler{Client: cl, APIReader: cl, Accounts: &account.Resolver{Reader: cl, Default: types.NamespacedName{}},
		V3: v3, BridgeWait: DefaultBridgeWait, RingSlack: DefaultRingSlack, Now: func() time.Time { return t0 }}
}

// TestRingingV3: how each answer of Piopiy v3 moves a Ringing handoff, one
// pass each, and that a transfer is started only when none is recorded.
func TestRingingV3(t *testing.T) {
	v3Err := func(k piopiyv3.ErrorKind) error { return &piopiyv3.Error{Kind: k} }
	cases := []struct {
		name      string
		requestID string
		stored    string // the transfer request id of the Call as stored (past the cache)
		ended     bool
		api       *fakeV3
		at        time.Duration // after the assignment
		check     func(t *testing.T, h *voicev1alpha1.CallHandoffStatus, s *scope, err error)
		sends     int
	}{
		{name: "starts the transfer", api: &fakeV3{}, sends: 1, check: func(t *testing.T, h *voicev1alpha1.CallHandoffStatus, s *scope, err error) {
			if err != nil || h.Phase != voicev1alpha1.HandoffRinging || h.TransferRequestID != "tr-new" || h.BridgeSentTime == nil {
				t.Fatalf("%v %+v", err, h)
			}
		}},
		{name: "adopts a transfer under way (409)", api: &fakeV3{startErr: &piopiyv3.Error{Kind: piopiyv3.KindTransferInProgress, RequestID: "tr-old"}}, sends: 1,
			check: func(t *testing.T, h *voicev1alpha1.CallHandoffStatus, s *scope, err error) {
				if err != nil || h.TransferRequestID != "tr-old" || h.BridgeSentTime == nil {
					t.Fatalf("%v %+v", err, h)
				}
			}},
		{name: "a transfer recorded past the cache is not sent again", stored: "tr-other", api: &fakeV3{}, sends: 0,
			check: func(t *testing.T, h *voicev1alpha1.CallHandoffStatus, s *scope, err error) {
				if err != nil || h.TransferRequestID != "tr-other" {
					t.Fatalf("%v %+v", err, h)
				}
			}},
		{name: "a lost reply waits, within BridgeWait", api: &fakeV3{startErr: v3Err(piopiyv3.KindAmbiguous)}, sends: 1, at: time.Second,
			check: func(t *testing.T, h *voicev1alpha1.CallHandoffStatus, s *scope, err error) {
				if err != nil || h.Phase != voicev1alpha1.HandoffRinging || h.TransferRequestID != "" || h.BridgeSentTime != nil {
					t.Fatalf("%v %+v", err, h)
				}
			}},
		{name: "no transfer within BridgeWait fails", api: &fakeV3{startErr: v3Err(piopiyv3.KindAmbiguous)}, sends: 1, at: DefaultBridgeWait,
			check: func(t *testing.T, h *voicev1alpha1.CallHandoffStatus, s *scope, err error) {
				if err != nil || h.Phase != voicev1alpha1.HandoffFailed || h.Outcome != voicev1alpha1.HandoffOutcomeFailed || !strings.Contains(h.Reason, "could not be started") {
					t.Fatalf("%v %+v", err, h)
				}
			}},
		{name: "rate limited is a TransferError", api: &fakeV3{startErr: v3Err(piopiyv3.KindRateLimited)}, sends: 1,
			check: func(t *testing.T, h *voicev1alpha1.CallHandoffStatus, s *scope, err error) {
				var te *TransferError
				if !errors.As(err, &te) || te.Agent != "a" || h.Phase != voicev1alpha1.HandoffRinging || h.TransferRequestID != "" {
					t.Fatalf("%v %+v", err, h)
				}
			}},
		{name: "queued keeps ringing", requestID: "tr-1", api: &fakeV3{status: &piopiyv3.TransferStatus{RequestID: "tr-1", Status: "queued"}},
			check: func(t *testing.T, h *voicev1alpha1.CallHandoffStatus, s *scope, err error) {
				if err != nil || h.Phase != voicev1alpha1.HandoffRinging || h.TransferRequestID != "tr-1" {
					t.Fatalf("%v %+v", err, h)
				}
			}},
		{name: "completed is Bridged", requestID: "tr-1", api: &fakeV3{status: &piopiyv3.TransferStatus{RequestID: "tr-1", Status: "completed"}},
			check: func(t *testing.T, h *voicev1alpha1.CallHandoffStatus, s *scope, err error) {
				if err != nil || h.Phase != voicev1alpha1.HandoffBridged || h.Outcome != voicev1alpha1.HandoffOutcomeBridged || h.BridgedTime == nil || s.release {
					t.Fatalf("%v %+v release %v", err, h, s.release)
				}
			}},
		{name: "busy tries the next agent", requestID: "tr-1", api: &fakeV3{status: &piopiyv3.TransferStatus{RequestID: "tr-1", Status: "failed", Reason: "busy"}},
			check: func(t *testing.T, h *voicev1alpha1.CallHandoffStatus, s *scope, err error) {
				if err != nil || h.Phase != voicev1alpha1.HandoffRequested || len(h.TriedAgents) != 1 || h.TriedAgents[0] != "a" ||
					h.Agent != "" || h.TransferRequestID != "" || h.BridgeSentTime != nil || !s.release {
					t.Fatalf("%v %+v release %v", err, h, s.release)
				}
			}},
		{name: "the caller left while the agent rang", requestID: "tr-1", api: &fakeV3{status: &piopiyv3.TransferStatus{RequestID: "tr-1", Status: "failed", Reason: "no_answer_and_call_ended"}},
			check: func(t *testing.T, h *voicev1alpha1.CallHandoffStatus, s *scope, err error) {
				if err != nil || h.Phase != voicev1alpha1.HandoffFailed || h.Outcome != voicev1alpha1.HandoffOutcomeAbandoned || h.OnNoAgent != "" {
					t.Fatalf("%v %+v", err, h)
				}
			}},
		{name: "a transfer that connected before the call ended is Bridged, then Ended", requestID: "tr-1", ended: true,
			api: &fakeV3{status: &piopiyv3.TransferStatus{RequestID: "tr-1", Status: "completed"}},
			check: func(t *testing.T, h *voicev1alpha1.CallHandoffStatus, s *scope, err error) {
				if err != nil || h.Phase != voicev1alpha1.HandoffEnded || h.Outcome != voicev1alpha1.HandoffOutcomeBridged || h.EndedTime == nil || !s.release {
					t.Fatalf("%v %+v", err, h)
				}
			}},
		{name: "an ended call with no transfer is Abandoned", ended: true, api: &fakeV3{},
			check: func(t *testing.T, h *voicev1alpha1.CallHandoffStatus, s *scope, err error) {
				if err != nil || h.Outcome != voicev1alpha1.HandoffOutcomeAbandoned {
					t.Fatalf("%v %+v", err, h)
				}
			}},
		{name: "no v3 backend fails the handoff", api: nil,
			check: func(t *testing.T, h *voicev1alpha1.CallHandoffStatus, s *scope, err error) {
				if err != nil || h.Outcome != voicev1alpha1.HandoffOutcomeFailed || !strings.Contains(h.Reason, "no Piopiy v3 backend") {
					t.Fatalf("%v %+v", err, h)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ringingV3Call(tc.requestID)
			if tc.ended {
				end := metav1.NewTime(t0.Add(time.Second))
				c.Status.Attempts[0].EndTime = &end
			}
			stored := c.DeepCopy()
			if tc.stored != "" {
				stored.Status.Handoff.TransferRequestID = tc.stored
			}
			var v3 V3Clients
			if tc.api != nil {
				v3 = tc.api
			}
			r := v3Reconciler(t, stored, v3)
			s := newScope(c, t0.Add(tc.at))
			_, err := r.ringingV3(t.Context(), s)
			tc.check(t, s.call.Status.Handoff, s, err)
			if tc.api != nil && len(tc.api.sent) != tc.sends {
				t.Fatalf("sent %d transfers, want %d", len(tc.api.sent), tc.sends)
			}
			if tc.api != nil && len(tc.api.sent) > 0 {
				req := tc.api.sent[0]
				if req.ToNumber != "919000000001" || req.TimeoutSec != 15 || req.HoldAudio != "https://example.com/hold.mp3" ||
					req.TransferSummary != "wants the annual plan" || req.CallerID != "918000000001" || req.Variables["callfleet_call"] != "ns/c" {
					t.Fatalf("transfer %+v", req)
				}
			}
		})
	}
}

// TestHangupV3: onNoAgent Hangup of a v3 Call uses v3's hangup action on
// the call id; without a v3 backend it is given up, not retried.
func TestHangupV3(t *testing.T) {
	c := ringingV3Call("")
	api := &fakeV3{}
	r := v3Reconciler(t, c.DeepCopy(), api)
	if _, err := r.hangup(t.Context(), c); err != nil || len(api.hungUp) != 1 || api.hungUp[0] != v3CallID {
		t.Fatalf("hangup: %v, hung up %v", err, api.hungUp)
	}
	r = v3Reconciler(t, c.DeepCopy(), nil)
	if res, err := r.hangup(t.Context(), c); err != nil || res.RequeueAfter != 0 {
		t.Fatalf("hangup without v3: %v %+v", err, res)
	}
}

// TestRecordTransferAfterAConflict: a transfer a pass started is written
// onto the latest Call even when the pass's own write conflicted, unless
// the Call has moved on to another assignment.
func TestRecordTransferAfterAConflict(t *testing.T) {
	for _, tc := range []struct {
		name       string
		assignment int32
		want       string
	}{
		{"same assignment", 1, "tr-new"},
		{"moved on", 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stored := ringingV3Call("")
			stored.Status.Handoff.Assignment = tc.assignment
			r := v3Reconciler(t, stored, &fakeV3{})
			s := newScope(ringingV3Call(""), t0)
			s.transferStarted("tr-new")
			if err := r.recordTransfer(t.Context(), s); err != nil {
				t.Fatal(err)
			}
			got := &voicev1alpha1.Call{}
			if err := r.APIReader.Get(t.Context(), types.NamespacedName{Namespace: "ns", Name: "c"}, got); err != nil {
				t.Fatal(err)
			}
			if h := got.Status.Handoff; h.TransferRequestID != tc.want || (tc.want != "" && h.BridgeSentTime == nil) {
				t.Fatalf("stored handoff %+v, want transfer %q", h, tc.want)
			}
		})
	}
}
