package transfer

import (
	"context"
	"errors"
	"testing"

	piopiyv3 "github.com/callfleet/callfleet/pkg/piopiy/v3"
)

type fakeAPI struct {
	sent     []piopiyv3.TransferRequest
	startErr error
	status   *piopiyv3.TransferStatus
	getErr   error
}

func (f *fakeAPI) Transfer(_ context.Context, _ string, req piopiyv3.TransferRequest) (*piopiyv3.ActionAccepted, error) {
	f.sent = append(f.sent, req)
	if f.startErr != nil {
		return nil, f.startErr
	}
	return &piopiyv3.ActionAccepted{RequestID: "tr-new"}, nil
}

func (f *fakeAPI) GetTransfer(context.Context, string) (*piopiyv3.TransferStatus, error) {
	return f.status, f.getErr
}

// TestStep: what each answer from Piopiy means for the handoff.
func TestStep(t *testing.T) {
	tests := []struct {
		name      string
		requestID string
		api       fakeAPI
		want      Progress
		wantErr   bool
	}{
		{"started", "", fakeAPI{}, Progress{State: Ringing, RequestID: "tr-new"}, false},
		{"409 adopts the transfer under way", "", fakeAPI{startErr: &piopiyv3.Error{Kind: piopiyv3.KindTransferInProgress, RequestID: "tr-old"}},
			Progress{State: Ringing, RequestID: "tr-old", Adopted: true}, false},
		{"ambiguous start is unsent", "", fakeAPI{startErr: &piopiyv3.Error{Kind: piopiyv3.KindAmbiguous}}, Progress{State: Unsent, Reason: "the transfer's reply was lost"}, false},
		{"call gone", "", fakeAPI{startErr: &piopiyv3.Error{Kind: piopiyv3.KindNotFound}}, Progress{State: CallEnded, Reason: "the call has ended"}, false},
		{"refused number", "", fakeAPI{startErr: &piopiyv3.Error{Kind: piopiyv3.KindValidation, Message: "to_number must match"}}, Progress{State: AgentFailed, Reason: "to_number must match"}, false},
		{"rate limited", "", fakeAPI{startErr: &piopiyv3.Error{Kind: piopiyv3.KindRateLimited}}, Progress{State: Unsent}, true},
		{"queued", "tr-1", fakeAPI{status: &piopiyv3.TransferStatus{RequestID: "tr-1", Status: "queued"}}, Progress{State: Ringing, RequestID: "tr-1"}, false},
		{"completed", "tr-1", fakeAPI{status: &piopiyv3.TransferStatus{RequestID: "tr-1", Status: "completed"}}, Progress{State: Connected, RequestID: "tr-1"}, false},
		{"busy", "tr-1", fakeAPI{status: &piopiyv3.TransferStatus{RequestID: "tr-1", Status: "failed", Reason: "busy"}}, Progress{State: AgentFailed, RequestID: "tr-1", Reason: "busy"}, false},
		{"no answer", "tr-1", fakeAPI{status: &piopiyv3.TransferStatus{RequestID: "tr-1", Status: "failed", Reason: "no_answer"}}, Progress{State: AgentFailed, RequestID: "tr-1", Reason: "no_answer"}, false},
		{"person left", "tr-1", fakeAPI{status: &piopiyv3.TransferStatus{RequestID: "tr-1", Status: "failed", Reason: "no_answer_and_call_ended"}}, Progress{State: CallEnded, RequestID: "tr-1", Reason: "no_answer_and_call_ended"}, false},
		{"expired", "tr-1", fakeAPI{getErr: &piopiyv3.Error{Kind: piopiyv3.KindNotFound}}, Progress{State: AgentFailed, RequestID: "tr-1", Reason: "transfer status expired at Piopiy"}, false},
		{"read failed", "tr-1", fakeAPI{getErr: &piopiyv3.Error{Kind: piopiyv3.KindServer}}, Progress{State: Ringing, RequestID: "tr-1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Step(context.Background(), &tt.api, Request{CallID: "c", ToNumber: "919800000001", TimeoutSec: 200, Summary: "s"}, tt.requestID)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if tt.requestID == "" && (len(tt.api.sent) != 1 || tt.api.sent[0].TimeoutSec != 120 || tt.api.sent[0].TransferSummary != "s") {
				t.Fatalf("sent %+v, want one transfer with the timeout clamped to 120", tt.api.sent)
			}
			if tt.requestID != "" && len(tt.api.sent) != 0 {
				t.Fatalf("a status read sent a transfer")
			}
		})
	}
}

func TestStepStartNeverRetries(t *testing.T) {
	api := &fakeAPI{startErr: errors.New("boom")}
	_, _ = Step(context.Background(), api, Request{CallID: "c", ToNumber: "919800000001"}, "")
	if len(api.sent) != 1 {
		t.Fatalf("sent %d", len(api.sent))
	}
}
