package piopiy

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The samples in testdata/documented are TeleCMI's own (the README names the
// page of each); these tests hold the parser to them.

func readDocumented(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "documented", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDocumentedStreamEvents(t *testing.T) {
	for _, tc := range []struct {
		file   string
		status EventStatus
		ws     WSStatus
	}{
		{"stream_connected.json", StatusStreamConnected, WSStatus{Status: "connected"}},
		{"stream_disconnected.json", StatusStreamDisconnected, WSStatus{Status: "disconnected", Code: 1006, Reason: "Abnormal closure"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			wh, err := ParseWebhook(readDocumented(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			ev := wh.Event
			if wh.Kind != KindEvent || ev == nil {
				t.Fatalf("kind %q, event %v: want a live event", wh.Kind, ev)
			}
			if ev.Status != tc.status || ev.Leg != LegB || ev.CMIUUID != "c4ec9bd2-efad-4296-aa5b-eeafa6aeeea0" || ev.From.String() != "440000000000" {
				t.Errorf("got status %q leg %q cmiuuid %q from %q", ev.Status, ev.Leg, ev.CMIUUID, ev.From)
			}
			if ev.RequestID != "" || ev.To.String() != "" || ev.ExtraParams != nil {
				t.Errorf("the documented event has no request id, to or extra_params; parsed %q %q %v", ev.RequestID, ev.To, ev.ExtraParams)
			}
			if ev.WSStatus == nil || ev.WSStatus.Status != tc.ws.Status || ev.WSStatus.Code != tc.ws.Code || ev.WSStatus.Reason != tc.ws.Reason {
				t.Errorf("ws_status = %+v, want %+v", ev.WSStatus, tc.ws)
			}
			if !ev.Time.Equal(time.UnixMilli(1725975496000)) {
				t.Errorf("time = %v", ev.Time)
			}
		})
	}
}

func TestDocumentedCDRLookupCarriesRate(t *testing.T) {
	cdrs, err := ParseCDRResponse(readDocumented(t, "cmiuuid_cdr.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cdrs) != 1 {
		t.Fatalf("%d cdrs, want 1", len(cdrs))
	}
	c := cdrs[0]
	if c.CallRate != "1.500000" || c.Balance != "44.809024" {
		t.Errorf("rate %q balance %q, want the documented 1.500000 and 44.809024", c.CallRate, c.Balance)
	}
	if c.Status != CDRAnswered || c.Leg != LegA || c.Duration != 9*time.Second || c.Outcome() != "out_answered" {
		t.Errorf("got %+v", c)
	}
	if c.CMIUUID != "" || c.RequestID != "" || !c.EndTime.IsZero() {
		t.Errorf("the documented lookup has no ids or end time; parsed %q %q %v", c.CMIUUID, c.RequestID, c.EndTime)
	}
}

func TestCallRateKeyPrecedence(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"type":"cdr","status":"answered","call_rate":"0.60"}`, "0.60"},
		{`{"type":"cdr","status":"answered","rate":"1.5"}`, "1.5"},
		{`{"type":"cdr","status":"missed","call_rate":0}`, "0"},
		{`{"type":"cdr","status":"answered","call_rate":"0.60","rate":"9"}`, "0.60"},
	} {
		var c CDR
		if err := c.UnmarshalJSON([]byte(tc.body)); err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if c.CallRate != tc.want {
			t.Errorf("%s: CallRate %q, want %q", tc.body, c.CallRate, tc.want)
		}
	}
}
