package piopiyv3_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	piopiyv3 "github.com/callfleet/callfleet/pkg/piopiy/v3"
)

const (
	token   = "tok-123"
	agentID = "bdd32bcb-767c-40a5-be4a-5f45eeb348a6"
	callID  = "4a4c8f1e-2d7b-4b43-9b55-0d7f7e9c1a10"
)

// recorder is a fake Piopiy that keeps the last request and answers with
// status and body.
type recorder struct {
	requests atomic.Int32
	method   string
	path     string
	auth     string
	body     []byte
	status   int
	reply    string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	r.method, r.path, r.auth = req.Method, req.URL.Path, req.Header.Get("Authorization")
	r.body, _ = io.ReadAll(req.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.status)
	_, _ = io.WriteString(w, r.reply)
}

func newClient(t *testing.T, h http.Handler) *piopiyv3.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := piopiyv3.NewClient(token, piopiyv3.WithBaseURL(srv.URL+"/v3"), piopiyv3.WithRetries(3, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}

func ptr[T any](v T) *T { return &v }

// TestRequestsMatchGolden: each method sends exactly the golden body of
// piopiy-api.md's v3 section, to the right path, with the Bearer token.
func TestRequestsMatchGolden(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		golden, method, path, reply string
		send                        func(*piopiyv3.Client) error
	}{
		{"ai_call.json", "POST", "/v3/voice/ai/call", `{"call_id":"` + callID + `","status":"queued"}`, func(c *piopiyv3.Client) error {
			_, err := c.AICall(ctx, piopiyv3.AICallRequest{CallerID: "918071387000", ToNumber: "919876543210", AgentID: agentID,
				Options:   &piopiyv3.CallOptions{MaxDurationSec: 600, RingTimeoutSec: 30, Record: ptr(true)},
				Variables: map[string]any{"callfleet_attempt": "ns/call-a/1", "customer": "Asha"}})
			return err
		}},
		{"pcmo_call.json", "POST", "/v3/voice/pcmo/call", `{"data":{"call_id":"` + callID + `"}}`, func(c *piopiyv3.Client) error {
			_, err := c.PCMOCall(ctx, piopiyv3.PCMOCallRequest{CallerID: "918071387000", ToNumber: "919876543210", AppID: "app-7",
				Pipeline: piopiyv3.Pipeline{
					piopiyv3.Record{Format: "mp3", Channels: "dual"},
					piopiyv3.Param{Data: map[string]any{"campaign": "renewals"}},
					piopiyv3.Play{FileName: "welcome.mp3"},
					piopiyv3.Connect{
						Params: piopiyv3.ConnectParams{CallerID: "918071387000", Strategy: "sequential", Options: &piopiyv3.ConnectOptions{
							MaxDurationSec: 600, RingTimeoutSec: 30, MachineDetection: ptr(true),
							Recording: &piopiyv3.Recording{Enabled: ptr(true), Channels: "dual", Format: "wav"}}},
						Endpoints: []piopiyv3.ConnectEndpoint{piopiyv3.PSTN("919800000001"), piopiyv3.Agent(agentID)},
					},
					piopiyv3.Hangup{},
				},
				Options:   &piopiyv3.CallOptions{MaxDurationSec: 900, RingTimeoutSec: 40},
				Variables: map[string]any{"callfleet_attempt": "ns/call-b/1"}})
			return err
		}},
		{"transfer_warm.json", "POST", "/v3/calls/" + callID + "/actions/transfer", `{"request_id":"tr-1","call_id":"` + callID + `"}`, func(c *piopiyv3.Client) error {
			_, err := c.Transfer(ctx, callID, piopiyv3.TransferRequest{ToNumber: "919800000002", CallerID: "918071387000", TimeoutSec: 25,
				HoldAudio: "https://example.com/hold.mp3", TransferSummary: "Wants to renew; asked for a discount.",
				Variables: map[string]any{"callfleet_handoff": "ns/call-a/1"}})
			return err
		}},
		{"transfer_blind.json", "POST", "/v3/calls/" + callID + "/actions/transfer", `{"request_id":"tr-2"}`, func(c *piopiyv3.Client) error {
			_, err := c.Transfer(ctx, callID, piopiyv3.TransferRequest{Pipeline: piopiyv3.Pipeline{piopiyv3.Play{FileName: "goodbye.mp3"}, piopiyv3.Hangup{}}})
			return err
		}},
		{"call_hangup.json", "POST", "/v3/calls/" + callID + "/actions/hangup", `{"request_id":"h-1"}`, func(c *piopiyv3.Client) error {
			_, err := c.Hangup(ctx, callID, piopiyv3.HangupRequest{Reason: "spec.hangup is true"})
			return err
		}},
		{"voice_hangup.json", "POST", "/v3/voice/call/hangup", `{}`, func(c *piopiyv3.Client) error {
			return c.VoiceHangup(ctx, callID, piopiyv3.HangupRequest{Reason: "done"})
		}},
		{"pcmo_transfer.json", "POST", "/v3/voice/pcmo/transfer", `{}`, func(c *piopiyv3.Client) error {
			return c.PCMOTransfer(ctx, callID, piopiyv3.Pipeline{piopiyv3.Connect{
				Params: piopiyv3.ConnectParams{CallerID: "918071387000"}, Endpoints: []piopiyv3.ConnectEndpoint{piopiyv3.Agent(agentID)}}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			rec := &recorder{status: 200, reply: tt.reply}
			if err := tt.send(newClient(t, rec)); err != nil {
				t.Fatal(err)
			}
			if rec.method != tt.method || rec.path != tt.path {
				t.Errorf("sent %s %s, want %s %s", rec.method, rec.path, tt.method, tt.path)
			}
			if rec.auth != "Bearer "+token {
				t.Errorf("Authorization = %q", rec.auth)
			}
			want := golden(t, tt.golden)
			if !jsonEqual(t, rec.body, want) {
				t.Errorf("body\n got %s\nwant %s", rec.body, want)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return bytes.Equal(xs, ys)
}

// TestValidateGoldenAndInvalid: the golden bodies pass the SDK's rules and
// each malformed one is refused with the SDK's message.
func TestValidateGoldenAndInvalid(t *testing.T) {
	for name, ep := range map[string]piopiyv3.Endpoint{
		"ai_call.json": piopiyv3.EndpointAICall, "pcmo_call.json": piopiyv3.EndpointPCMOCall,
		"transfer_warm.json": piopiyv3.EndpointTransfer, "transfer_blind.json": piopiyv3.EndpointTransfer,
		"call_hangup.json": piopiyv3.EndpointCallHangup, "voice_hangup.json": piopiyv3.EndpointHangup,
		"pcmo_transfer.json": piopiyv3.EndpointPCMOTransfer,
	} {
		if err := piopiyv3.Validate(ep, golden(t, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	var cases []struct {
		Endpoint piopiyv3.Endpoint `json:"endpoint"`
		Body     json.RawMessage   `json:"body"`
		Message  string            `json:"message"`
	}
	if err := json.Unmarshal(golden(t, "invalid.json"), &cases); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			err := piopiyv3.Validate(c.Endpoint, c.Body)
			var pe *piopiyv3.Error
			if !errors.As(err, &pe) || pe.Kind != piopiyv3.KindValidation {
				t.Fatalf("%s: got %v, want a validation error", c.Body, err)
			}
			if pe.Message != c.Message {
				t.Errorf("message %q, want %q", pe.Message, c.Message)
			}
		})
	}
}

// TestInvalidRequestNotSent: a request the SDK would refuse never leaves.
func TestInvalidRequestNotSent(t *testing.T) {
	rec := &recorder{status: 200, reply: `{"call_id":"` + callID + `"}`}
	c := newClient(t, rec)
	_, err := c.AICall(context.Background(), piopiyv3.AICallRequest{CallerID: "918071387000", ToNumber: "+919876543210", AgentID: agentID})
	if !errors.Is(err, piopiyv3.ErrValidation) || !strings.Contains(err.Error(), "to_number must match ^[1-9][0-9]{6,15}$.") {
		t.Fatalf("got %v", err)
	}
	if n := rec.requests.Load(); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

// TestErrorBodies: each documented error body maps to its kind.
func TestErrorBodies(t *testing.T) {
	tests := []struct {
		status int
		body   string
		create bool
		want   error
	}{
		{409, `{"error":"transfer_in_progress","message":"a transfer is in progress","request_id":"tr-9"}`, false, piopiyv3.ErrTransferInProgress},
		{403, `{"error":"ai_agent_not_running","message":"agent stopped","request_id":"r"}`, true, piopiyv3.ErrAgentNotRunning},
		{403, `{"error":"forbidden","message":"no"}`, true, piopiyv3.ErrAuthentication},
		{401, `{"error":"unauthorized"}`, false, piopiyv3.ErrAuthentication},
		{400, `{"error":"validation_error","message":"to_number invalid"}`, true, piopiyv3.ErrValidation},
		{422, `{}`, true, piopiyv3.ErrValidation},
		{404, `{"error":"not_found"}`, false, piopiyv3.ErrNotFound},
		{429, `{"error":"rate_limited"}`, true, piopiyv3.ErrRateLimited},
		{503, `{"error":"unavailable"}`, true, piopiyv3.ErrAmbiguous},
		{502, `not json`, true, piopiyv3.ErrAmbiguous},
		{503, `{"error":"unavailable"}`, false, piopiyv3.ErrServer},
		{418, `{}`, true, piopiyv3.ErrUnexpected},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s create=%v", tt.status, tt.body, tt.create), func(t *testing.T) {
			rec := &recorder{status: tt.status, reply: tt.body}
			c := newClient(t, rec)
			var err error
			if tt.create {
				_, err = c.AICall(context.Background(), piopiyv3.AICallRequest{CallerID: "918071387000", ToNumber: "919876543210", AgentID: agentID})
			} else {
				_, err = c.GetTransfer(context.Background(), "tr-9")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			var pe *piopiyv3.Error
			errors.As(err, &pe)
			if tt.status == 409 && pe.RequestID != "tr-9" {
				t.Errorf("request id %q, want the transfer in progress", pe.RequestID)
			}
		})
	}
}

// TestCreateNeverRetried: a create answered 5xx, or whose connection
// dies, is sent once and reported ambiguous, unlike the SDK's urllib3 Retry.
func TestCreateNeverRetried(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"503": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) },
		"reset": func(w http.ResponseWriter, _ *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			_ = conn.Close()
		},
		"no call_id": func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"status":"queued"}`) },
	} {
		t.Run(name, func(t *testing.T) {
			var n atomic.Int32
			c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1); h(w, r) }))
			_, err := c.AICall(context.Background(), piopiyv3.AICallRequest{CallerID: "918071387000", ToNumber: "919876543210", AgentID: agentID})
			if !piopiyv3.IsAmbiguous(err) {
				t.Fatalf("got %v, want ambiguous", err)
			}
			if n.Load() != 1 {
				t.Fatalf("create sent %d times", n.Load())
			}
		})
	}
}

// TestGetRetried: idempotent reads are retried on 5xx.
func TestGetRetried(t *testing.T) {
	var n atomic.Int32
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			w.WriteHeader(502)
			return
		}
		_, _ = io.WriteString(w, `{"call_id":"`+callID+`","status":"answered"}`)
	}))
	info, err := c.GetCall(context.Background(), callID)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Answered() || n.Load() != 3 {
		t.Fatalf("status %q after %d requests", info.Status, n.Load())
	}
}

// TestTokenNeverPrinted: neither the client nor an echoed error shows it.
func TestTokenNeverPrinted(t *testing.T) {
	rec := &recorder{status: 401, reply: `{"error":"unauthorized","message":"bad token tok-123"}`}
	c := newClient(t, rec)
	_, err := c.GetCall(context.Background(), callID)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%#v", c), fmt.Sprintf("%+v", c), err.Error()} {
		if strings.Contains(s, token) {
			t.Errorf("token printed: %s", s)
		}
	}
}

func TestTransferStatusReason(t *testing.T) {
	ts := piopiyv3.TransferStatus{Status: piopiyv3.TransferFailed, Reason: "no_answer_and_call_ended"}
	if ts.BaseReason() != piopiyv3.ReasonNoAnswer || !ts.CallEnded() {
		t.Fatalf("%q %v", ts.BaseReason(), ts.CallEnded())
	}
}
