package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	piopiyv3 "github.com/callfleet/callfleet/pkg/piopiy/v3"
)

const (
	v3Token = "v3-token"
	v3App   = "app-7"
	v3Agent = "bdd32bcb-767c-40a5-be4a-5f45eeb348a6"
)

func newV3Harness(t *testing.T, sc Scenario) (*harness, *piopiyv3.Client) {
	t.Helper()
	h := newHarness(t, func(c *Config) {
		c.V3 = []V3Account{{Token: v3Token, AppID: v3App}}
		c.Scenario = sc
	})
	cl, err := piopiyv3.NewClient(v3Token, piopiyv3.WithBaseURL(h.url+"/v3"), piopiyv3.WithRetries(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	return h, cl
}

// v3Post sends a raw body with the token and returns status and reply.
func (h *harness) v3Post(path string, body []byte) (int, map[string]any) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.url+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+v3Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func v3Golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "pkg", "piopiy", "v3", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}

func (h *harness) v3Call(id string) V3CallRecord {
	for _, c := range h.sim.V3Calls() {
		if c.CallID == id {
			return c
		}
	}
	h.t.Fatalf("no v3 call %s", id)
	return V3CallRecord{}
}

// liveAICall places a call to a person who answers and stays on.
func liveAICall(t *testing.T, cl *piopiyv3.Client, to string) string {
	t.Helper()
	res, err := cl.AICall(context.Background(), piopiyv3.AICallRequest{CallerID: "918071387000", ToNumber: to, AgentID: v3Agent})
	if err != nil {
		t.Fatal(err)
	}
	return res.CallID
}

func waitStatus(t *testing.T, cl *piopiyv3.Client, id, want string) {
	t.Helper()
	eventually(t, "call "+id+" "+want, func() bool {
		info, err := cl.GetCall(context.Background(), id)
		if want == "" {
			return errors.Is(err, piopiyv3.ErrNotFound)
		}
		return err == nil && info.Status == want
	})
}

var stayOn = Behaviour{Outcome: OutcomeAnswer, AnswerDelay: 20 * time.Millisecond}

// TestV3GoldenBodiesAccepted: every request body of piopiy-api.md's v3
// section, as pkg/piopiy/v3 produces it, is accepted by the sim.
func TestV3GoldenBodiesAccepted(t *testing.T) {
	h, cl := newV3Harness(t, Scenario{Default: stayOn})
	for _, name := range []string{"ai_call.json", "pcmo_call.json"} {
		path := map[string]string{"ai_call.json": "/v3/voice/ai/call", "pcmo_call.json": "/v3/voice/pcmo/call"}[name]
		code, reply := h.v3Post(path, v3Golden(t, name))
		if code != http.StatusOK || reply["call_id"] == "" {
			t.Fatalf("%s: %d %v", name, code, reply)
		}
	}
	for _, name := range []string{"transfer_blind.json", "transfer_warm.json", "call_hangup.json"} {
		id := liveAICall(t, cl, "919876543210")
		waitStatus(t, cl, id, piopiyv3.CallAnswered)
		action := map[string]string{"transfer_blind.json": "transfer", "transfer_warm.json": "transfer", "call_hangup.json": "hangup"}[name]
		if code, reply := h.v3Post("/v3/calls/"+id+"/actions/"+action, v3Golden(t, name)); code != http.StatusOK || reply["request_id"] == "" {
			t.Fatalf("%s: %d %v", name, code, reply)
		}
	}
	for name, path := range map[string]string{"voice_hangup.json": "/v3/voice/call/hangup", "pcmo_transfer.json": "/v3/voice/pcmo/transfer"} {
		id := liveAICall(t, cl, "919876543211")
		waitStatus(t, cl, id, piopiyv3.CallAnswered)
		body := bytes.ReplaceAll(v3Golden(t, name), []byte("4a4c8f1e-2d7b-4b43-9b55-0d7f7e9c1a10"), []byte(id))
		if code, reply := h.v3Post(path, body); code != http.StatusOK {
			t.Fatalf("%s: %d %v", name, code, reply)
		}
	}
	if n := len(h.sim.V3Calls()); n != 7 {
		t.Fatalf("%d v3 calls recorded, want 7", n)
	}
}

// TestV3MalformedRefusedWithSDKMessages: the sim refuses each malformed
// body with 400 and the SDK's message, and places nothing.
func TestV3MalformedRefusedWithSDKMessages(t *testing.T) {
	h, cl := newV3Harness(t, Scenario{Default: stayOn})
	id := liveAICall(t, cl, "919876543210")
	var cases []struct {
		Endpoint string          `json:"endpoint"`
		Body     json.RawMessage `json:"body"`
		Message  string          `json:"message"`
	}
	if err := json.Unmarshal(v3Golden(t, "invalid.json"), &cases); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		path := strings.TrimPrefix(c.Endpoint, "POST ")
		path = "/v3" + strings.ReplaceAll(path, "{call_id}", id)
		code, reply := h.v3Post(path, c.Body)
		if code != http.StatusBadRequest || reply["error"] != "validation_error" || reply["message"] != c.Message {
			t.Errorf("case %d %s: %d %v, want 400 %q", i, path, code, reply, c.Message)
		}
	}
	if n := len(h.sim.V3Calls()); n != 1 {
		t.Fatalf("%d v3 calls placed, want 1", n)
	}
}

func TestV3BearerAuth(t *testing.T) {
	h, _ := newV3Harness(t, Scenario{})
	for _, auth := range []string{"", "Bearer wrong", v3Token} {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/v3/voice/ai/call", bytes.NewReader(v3Golden(t, "ai_call.json")))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || m["error"] != "unauthorized" || m["request_id"] == "" {
			t.Errorf("auth %q: %d %v", auth, resp.StatusCode, m)
		}
	}
	if n := len(h.sim.V3Calls()); n != 0 {
		t.Fatalf("%d calls placed without a valid token", n)
	}
}

// TestV3CallOutcomes: each person's behaviour runs its course and the call
// answers 404 once it has ended.
func TestV3CallOutcomes(t *testing.T) {
	sc := Scenario{Numbers: map[string]Behaviour{
		"919000000001": {Outcome: OutcomeAnswer, AnswerDelay: 50 * time.Millisecond, HangupAfter: 300 * time.Millisecond},
		"919000000002": {Outcome: OutcomeBusy, AnswerDelay: 50 * time.Millisecond},
		"919000000003": {Outcome: OutcomeNoAnswer, RingTimeout: 100 * time.Millisecond},
		"919000000004": {Outcome: OutcomeReject, AnswerDelay: 50 * time.Millisecond},
	}}
	h, cl := newV3Harness(t, sc)
	want := map[string]string{"919000000001": V3EndCompleted, "919000000002": V3EndBusy, "919000000003": V3EndNoAnswer, "919000000004": V3EndRejected}
	for to, reason := range want {
		id := liveAICall(t, cl, to)
		if reason == V3EndCompleted {
			waitStatus(t, cl, id, piopiyv3.CallAnswered)
		}
		waitStatus(t, cl, id, "")
		if r := h.v3Call(id); r.EndReason != reason || (r.Answered != nil) != (reason == V3EndCompleted) {
			t.Errorf("%s: ended %q answered=%v, want %q", to, r.EndReason, r.Answered != nil, reason)
		}
		_, err := cl.Hangup(context.Background(), id, piopiyv3.HangupRequest{})
		if !errors.Is(err, piopiyv3.ErrNotFound) {
			t.Errorf("%s: hangup of an ended call: %v, want not found", to, err)
		}
	}
}

// TestV3Transfers: warm transfers end busy, no_answer or completed by the
// agent's behaviour; a second one while the first is queued gets 409
// naming it; an ended call's transfer is 404.
func TestV3Transfers(t *testing.T) {
	sc := Scenario{Default: stayOn, Agents: map[string]AgentBehaviour{
		"919100000001": {Busy: true, AnswerDelay: 300 * time.Millisecond},
		"919100000002": {NoAnswer: true},
		"919100000003": {AnswerDelay: 50 * time.Millisecond, TalkFor: 200 * time.Millisecond},
	}}
	h, cl := newV3Harness(t, sc)
	ctx := context.Background()
	id := liveAICall(t, cl, "919876543210")
	waitStatus(t, cl, id, piopiyv3.CallAnswered)

	first, err := cl.Transfer(ctx, id, piopiyv3.TransferRequest{ToNumber: "919100000001", TimeoutSec: 5})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Transfer(ctx, id, piopiyv3.TransferRequest{ToNumber: "919100000003", TimeoutSec: 5})
	var pe *piopiyv3.Error
	if !errors.As(err, &pe) || pe.Kind != piopiyv3.KindTransferInProgress || pe.RequestID != first.RequestID {
		t.Fatalf("second transfer: %v, want 409 naming %s", err, first.RequestID)
	}
	waitTransfer := func(rid string) *piopiyv3.TransferStatus {
		var st *piopiyv3.TransferStatus
		eventually(t, "transfer "+rid+" done", func() bool {
			st, err = cl.GetTransfer(ctx, rid)
			return err == nil && st.Status != piopiyv3.TransferQueued
		})
		return st
	}
	if st := waitTransfer(first.RequestID); st.Status != piopiyv3.TransferFailed || st.Reason != piopiyv3.ReasonBusy {
		t.Fatalf("busy agent: %+v", st)
	}
	second, err := cl.Transfer(ctx, id, piopiyv3.TransferRequest{ToNumber: "919100000002", TimeoutSec: 5})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitTransfer(second.RequestID); st.Status != piopiyv3.TransferFailed || st.Reason != piopiyv3.ReasonNoAnswer {
		t.Fatalf("agent who never answers: %+v", st)
	}
	third, err := cl.Transfer(ctx, id, piopiyv3.TransferRequest{ToNumber: "919100000003", TimeoutSec: 5, TransferSummary: "wants a refund"})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitTransfer(third.RequestID); st.Status != piopiyv3.TransferCompleted {
		t.Fatalf("answering agent: %+v", st)
	}
	// The agent talks 200ms, then the call ends and is gone.
	waitStatus(t, cl, id, "")
	if _, err := cl.Transfer(ctx, id, piopiyv3.TransferRequest{ToNumber: "919100000003"}); !errors.Is(err, piopiyv3.ErrNotFound) {
		t.Fatalf("transfer of an ended call: %v", err)
	}
	if r := h.v3Call(id); len(r.Transfers) != 3 || r.EndReason != V3EndCompleted {
		t.Fatalf("record: %+v", r)
	}
}

// TestV3TransferFailsWhenCallEnds: the person hanging up while the agent
// rings fails the transfer with the _and_call_ended suffix.
func TestV3TransferFailsWhenCallEnds(t *testing.T) {
	sc := Scenario{Default: Behaviour{Outcome: OutcomeAnswer, AnswerDelay: 20 * time.Millisecond, HangupAfter: 400 * time.Millisecond},
		Agents: map[string]AgentBehaviour{"919100000002": {NoAnswer: true}}}
	_, cl := newV3Harness(t, sc)
	id := liveAICall(t, cl, "919876543210")
	waitStatus(t, cl, id, piopiyv3.CallAnswered)
	tr, err := cl.Transfer(context.Background(), id, piopiyv3.TransferRequest{ToNumber: "919100000002", TimeoutSec: 30})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "transfer failed", func() bool {
		st, err := cl.GetTransfer(context.Background(), tr.RequestID)
		return err == nil && st.Status == piopiyv3.TransferFailed && st.CallEnded()
	})
}

func TestV3AgentNotRunning(t *testing.T) {
	h, cl := newV3Harness(t, Scenario{})
	h.sim.SetStoppedAgents(v3Agent)
	_, err := cl.AICall(context.Background(), piopiyv3.AICallRequest{CallerID: "918071387000", ToNumber: "919876543210", AgentID: v3Agent})
	if !errors.Is(err, piopiyv3.ErrAgentNotRunning) {
		t.Fatalf("got %v", err)
	}
	if n := len(h.sim.V3Calls()); n != 0 {
		t.Fatalf("%d calls placed to a stopped agent", n)
	}
}

// TestV3Faults: REST faults hit v3 like v2; an ambiguous create places the
// call and loses the reply.
func TestV3Faults(t *testing.T) {
	h, cl := newV3Harness(t, Scenario{Default: stayOn})
	ctx := context.Background()
	for i, tt := range []struct {
		f      RESTFaults
		want   error
		placed int
	}{
		{RESTFaults{ServerErrProb: 1}, piopiyv3.ErrAmbiguous, 0},
		{RESTFaults{TooManyProb: 1}, piopiyv3.ErrRateLimited, 0},
		{RESTFaults{AmbiguousProb: 1}, piopiyv3.ErrAmbiguous, 1},
		{RESTFaults{AmbiguousProb: 1, AmbiguousMode: Ambiguous5xx}, piopiyv3.ErrAmbiguous, 1},
		{RESTFaults{ResetProb: 1}, piopiyv3.ErrAmbiguous, 0},
	} {
		to := fmt.Sprintf("91980000000%d", i)
		h.sim.SetFaults(Faults{RESTNumbers: map[string]RESTFaults{to: tt.f}})
		_, err := cl.AICall(ctx, piopiyv3.AICallRequest{CallerID: "918071387000", ToNumber: to, AgentID: v3Agent})
		if !errors.Is(err, tt.want) {
			t.Errorf("%+v: %v, want %v", tt.f, err, tt.want)
		}
		placed := 0
		for _, c := range h.sim.V3Calls() {
			if c.To == to {
				placed++
			}
		}
		if placed != tt.placed {
			t.Errorf("%+v: %d calls placed, want %d", tt.f, placed, tt.placed)
		}
	}
}
