package piopiy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// webhookSeeds are bodies in every shape piopiy-api.md describes. They seed
// FuzzParseWebhook (as files in testdata/fuzz, written under -update) and
// drive TestParseWebhook.
var webhookSeeds = []struct{ name, body string }{
	{"event_numbers", `{"appid":2222222,"leg":"a","direction":"outbound","from":918071387000,"to":919876543210,"time":1700000000123,"cmiuuid":"c-1","conversation_uuid":"r-1","status":"out_answered","request_id":"r-1","callerid":918071387000,"vn":918071387000,"extra_params":"{\"call\":\"default/call-a\",\"attempt\":1}"}`},
	{"event_strings", `{"appid":"2222222","leg":"B","direction":"outbound","from":"918071387000","to":"+919876543210","time":"1700000000123","cmiuuid":"c-2","status":"out_bridged"}`},
	{"stream_disconnected", `{"status":"STREAM_DISCONNECTED","cmiuuid":"c-1","time":1700000000999,"ws_status":"{\"status\":\"disconnected\",\"message\":{\"code\":1006,\"reason\":\"Abnormal closure\"}}"}`},
	{"stream_connected_object", `{"status":"stream_connected","cmiuuid":"c-1","ws_status":{"status":"connected","message":{"cmi_code":"1000","reason":"ok"}}}`},
	{"ws_status_not_json", `{"status":"stream_connected","ws_status":"connected"}`},
	{"ws_status_message_string", `{"status":"stream_disconnected","ws_status":"{\"status\":\"disconnected\",\"code\":1001,\"message\":\"going away\"}"}`},
	{"misspelled_cmuuid", `{"status":"hangup","cmuuid":"c-3","from":"918071387000","to":919876543210}`},
	{"extra_params_object", `{"status":"ringing","extra_params":{"call":"default/call-a","n":2,"ok":true,"nil":null,"deep":{"a":[1]}}}`},
	{"extra_params_free_text", `{"status":"started","extra_params":"campaign spring"}`},
	{"unknown_status_and_fields", `{"status":"out_queued","cmiuuid":"c-4","new_field":{"x":[1,2]},"leg":"a"}`},
	{"cdr_answered", `{"type":"cdr","status":"answered","direction":"outbound","leg":"a","duration":"9","time":1700000000123,"start_time":"1700000000","answer_time":1700000005,"end_time":1700000014,"cmiuuid":"c-1","conversation_uuid":"r-1","request_id":"r-1","extra_params":"{\"call\":\"default/call-a\"}","call_rate":"0.50","balance":"12.25","from":918071387000,"to":"919876543210"}`},
	{"cdr_missed", `{"type":"CDR","status":"missed","direction":"inbound","duration":0,"start_time":1700000000,"answer_time":0,"end_time":1700000040,"call_rate":0,"balance":12.25,"cmiuuid":"c-5"}`},
	{"cdr_float_duration", `{"type":"cdr","status":"answered","duration":9.7,"call_rate":0.5}`},
	{"dtmf", `{"from":"918071387000","to":919876543210,"dtmf":"1234","cmiuuid":"c-1"}`},
	{"dtmf_misspelled_number", `{"from":918071387000,"to":919876543210,"dtmf":7,"cmuuid":"c-1"}`},
	{"inbound", `{"action":"inbound","from":919876543210,"to":918071387000,"time":1700000000123,"cmiuuid":"c-9"}`},
	{"not_object", `[{"status":"ringing"}]`},
	{"no_status", `{"cmiuuid":"c-1"}`},
	{"bad_number", `{"status":"ringing","from":{"n":1}}`},
}

func seedBody(t *testing.T, name string) []byte {
	t.Helper()
	for _, s := range webhookSeeds {
		if s.name == name {
			return []byte(s.body)
		}
	}
	t.Fatalf("no seed %q", name)
	return nil
}

func TestParseWebhookEvents(t *testing.T) {
	ms := time.UnixMilli(1700000000123).UTC()
	for _, tc := range []struct {
		seed string
		want Event
	}{
		{"event_numbers", Event{
			Status: StatusOutAnswered, RawStatus: "out_answered", AppID: 2222222, Leg: LegA, Direction: DirectionOutbound,
			From: "918071387000", To: "919876543210", Time: ms, CMIUUID: "c-1", ConversationUUID: "r-1", RequestID: "r-1",
			CallerID: "918071387000", VN: "918071387000",
			ExtraParams:    map[string]string{"call": "default/call-a", "attempt": "1"},
			RawExtraParams: `{"call":"default/call-a","attempt":1}`,
		}},
		{"event_strings", Event{
			Status: StatusOutBridged, RawStatus: "out_bridged", AppID: 2222222, Leg: LegB, Direction: DirectionOutbound,
			From: "918071387000", To: "919876543210", Time: ms, CMIUUID: "c-2",
		}},
		{"stream_disconnected", Event{
			Status: StatusStreamDisconnected, RawStatus: "STREAM_DISCONNECTED", CMIUUID: "c-1", Time: time.UnixMilli(1700000000999).UTC(),
			WSStatus: &WSStatus{Status: "disconnected", Code: 1006, Reason: "Abnormal closure",
				Raw: `{"status":"disconnected","message":{"code":1006,"reason":"Abnormal closure"}}`},
		}},
		{"stream_connected_object", Event{
			Status: StatusStreamConnected, RawStatus: "stream_connected", CMIUUID: "c-1",
			WSStatus: &WSStatus{Status: "connected", Code: 1000, Reason: "ok", Raw: `{"status":"connected","message":{"cmi_code":"1000","reason":"ok"}}`},
		}},
		{"ws_status_not_json", Event{
			Status: StatusStreamConnected, RawStatus: "stream_connected", WSStatus: &WSStatus{Status: "connected", Raw: "connected"},
		}},
		{"ws_status_message_string", Event{
			Status: StatusStreamDisconnected, RawStatus: "stream_disconnected",
			WSStatus: &WSStatus{Status: "disconnected", Code: 1001, Reason: "going away", Raw: `{"status":"disconnected","code":1001,"message":"going away"}`},
		}},
		{"misspelled_cmuuid", Event{Status: StatusHangup, RawStatus: "hangup", CMIUUID: "c-3", From: "918071387000", To: "919876543210"}},
		{"extra_params_object", Event{
			Status: StatusRinging, RawStatus: "ringing",
			ExtraParams:    map[string]string{"call": "default/call-a", "n": "2", "ok": "true", "nil": "", "deep": `{"a":[1]}`},
			RawExtraParams: `{"call":"default/call-a","n":2,"ok":true,"nil":null,"deep":{"a":[1]}}`,
		}},
		{"extra_params_free_text", Event{Status: StatusStarted, RawStatus: "started", RawExtraParams: "campaign spring"}},
		{"unknown_status_and_fields", Event{Status: "out_queued", RawStatus: "out_queued", CMIUUID: "c-4", Leg: LegA}},
	} {
		t.Run(tc.seed, func(t *testing.T) {
			w, err := ParseWebhook(seedBody(t, tc.seed))
			if err != nil {
				t.Fatal(err)
			}
			if w.Kind != KindEvent || w.Event == nil || w.CDR != nil {
				t.Fatalf("parsed as %+v", w)
			}
			if !reflect.DeepEqual(*w.Event, tc.want) {
				t.Errorf("event\n got %#v\nwant %#v", *w.Event, tc.want)
				if w.Event.WSStatus != nil {
					t.Errorf("ws_status %+v", *w.Event.WSStatus)
				}
			}
			if w.Event.Status.Known() != (tc.seed != "unknown_status_and_fields") {
				t.Errorf("Known() = %v", w.Event.Status.Known())
			}
		})
	}
}

func TestParseWebhookCDRs(t *testing.T) {
	w, err := ParseWebhook(seedBody(t, "cdr_answered"))
	if err != nil {
		t.Fatal(err)
	}
	if w.Kind != KindCDR || w.CDR == nil || w.Event != nil {
		t.Fatalf("parsed as %+v", w)
	}
	want := CDR{
		Status: CDRAnswered, Direction: DirectionOutbound, Leg: LegA, Duration: 9 * time.Second,
		Time: time.UnixMilli(1700000000123).UTC(), StartTime: time.Unix(1700000000, 0).UTC(),
		AnswerTime: time.Unix(1700000005, 0).UTC(), EndTime: time.Unix(1700000014, 0).UTC(),
		CMIUUID: "c-1", ConversationUUID: "r-1", RequestID: "r-1",
		ExtraParams: map[string]string{"call": "default/call-a"}, RawExtraParams: `{"call":"default/call-a"}`,
		CallRate: "0.50", Balance: "12.25", From: "918071387000", To: "919876543210",
	}
	if !reflect.DeepEqual(*w.CDR, want) {
		t.Errorf("cdr\n got %+v\nwant %+v", *w.CDR, want)
	}

	w, err = ParseWebhook(seedBody(t, "cdr_missed"))
	if err != nil {
		t.Fatal(err)
	}
	c := w.CDR
	if c.Status != CDRMissed || !c.AnswerTime.IsZero() || c.Duration != 0 || c.Balance != "12.25" || c.CallRate != "0" || c.Outcome() != "in_missed" {
		t.Errorf("missed cdr %+v, outcome %q", *c, c.Outcome())
	}

	w, err = ParseWebhook(seedBody(t, "cdr_float_duration"))
	if err != nil || w.CDR.Duration != 9*time.Second || w.CDR.CallRate != "0.5" {
		t.Errorf("float duration: %+v, %v", w, err)
	}
	if (&CDR{Status: CDRAnswered}).Outcome() != "" || (&CDR{Direction: DirectionOutbound, Status: "x"}).Outcome() != "" {
		t.Error("Outcome of an incomplete CDR is not empty")
	}
}

func TestParseWebhookDTMFAndInbound(t *testing.T) {
	w, err := ParseWebhook(seedBody(t, "dtmf"))
	if err != nil || w.Kind != KindDTMF {
		t.Fatalf("%+v, %v", w, err)
	}
	if want := (DTMF{From: "918071387000", To: "919876543210", Digits: "1234", CMIUUID: "c-1"}); *w.DTMF != want {
		t.Errorf("dtmf %+v", *w.DTMF)
	}
	w, err = ParseWebhook(seedBody(t, "dtmf_misspelled_number"))
	if err != nil || w.DTMF.Digits != "7" || w.DTMF.CMIUUID != "c-1" {
		t.Errorf("misspelled dtmf: %+v, %v", w, err)
	}
	w, err = ParseWebhook(seedBody(t, "inbound"))
	if err != nil || w.Kind != KindInbound {
		t.Fatalf("%+v, %v", w, err)
	}
	if want := (Inbound{From: "919876543210", To: "918071387000", Time: time.UnixMilli(1700000000123).UTC(), CMIUUID: "c-9"}); *w.Inbound != want {
		t.Errorf("inbound %+v", *w.Inbound)
	}
}

func TestParseWebhookRejects(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"array", string(seedBody(t, "not_object")), "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"string", `"status"`, "not a JSON object"},
		{"empty", ``, "not a JSON object"},
		{"truncated", `{"status":"ringing"`, "not a JSON object"},
		{"no status", string(seedBody(t, "no_status")), "neither a status nor type cdr"},
		{"blank status", `{"status":"  "}`, "neither a status nor type cdr"},
		{"status object", `{"status":{"a":1}}`, `field "status"`},
		{"number object", string(seedBody(t, "bad_number")), `field "from"`},
		{"float number", `{"status":"ringing","to":9.1e11}`, `field "to"`},
		{"bad duration", `{"type":"cdr","duration":"long"}`, `field "duration": invalid number`},
		{"huge duration", `{"type":"cdr","duration":1e300}`, `field "duration": number "1e300" out of range`},
		{"duration overflow", `{"type":"cdr","duration":9223372036854775}`, `field "duration"`},
		{"negative time", `{"status":"ringing","time":-5}`, `field "time"`},
		{"far future", `{"type":"cdr","end_time":253402300800}`, `field "end_time"`},
		{"extra_params array text ok but bad json", `{"status":"ringing","extra_params":[1,}`, "not a JSON object"},
		{"ws_status array", `{"status":"stream_connected","ws_status":[1]}`, `field "ws_status"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := ParseWebhook([]byte(tc.body))
			if err == nil {
				t.Fatalf("parsed %+v", w)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "piopiy: ") {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestWebhookJSONRoundTrip(t *testing.T) {
	for _, s := range webhookSeeds {
		w, err := ParseWebhook([]byte(s.body))
		if err != nil {
			continue
		}
		b, err := json.Marshal(w)
		if err != nil {
			t.Fatalf("%s: marshal: %v", s.name, err)
		}
		var back Webhook
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: re-parse %s: %v", s.name, b, err)
		}
		if !reflect.DeepEqual(*w, back) {
			t.Errorf("%s: round trip changed it\n got %+v\nwant %+v\njson %s", s.name, back, *w, b)
		}
	}
	// Event and CDR also decode on their own, as the lookups use them.
	var e Event
	if err := json.Unmarshal(seedBody(t, "stream_disconnected"), &e); err != nil || e.Status != StatusStreamDisconnected {
		t.Errorf("Event.UnmarshalJSON: %+v, %v", e, err)
	}
	if err := json.Unmarshal([]byte(`{"time":"x"}`), &e); err == nil {
		t.Error("Event.UnmarshalJSON accepted a bad time")
	}
	if err := json.Unmarshal([]byte(`[]`), &e); err == nil {
		t.Error("Event.UnmarshalJSON accepted an array")
	}
	if err := json.Unmarshal([]byte(`[]`), &[]CDR{}); err != nil {
		t.Errorf("empty CDR list: %v", err)
	}
	if err := json.Unmarshal([]byte(`5`), &Webhook{}); err == nil {
		t.Error("Webhook.UnmarshalJSON accepted a number")
	}
	if _, err := json.Marshal(Webhook{Kind: KindCDR}); err == nil {
		t.Error("marshalled a CDR webhook without a CDR")
	}
}

func TestEventMarshalsWireForm(t *testing.T) {
	e := Event{
		Status: StatusStreamDisconnected, CMIUUID: "c-1", From: "918071387000", To: "sip-user",
		Time:        time.UnixMilli(1700000000123),
		WSStatus:    &WSStatus{Status: "disconnected", Code: 1006, Reason: "Abnormal closure"},
		ExtraParams: map[string]string{"call": "default/call-a"},
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"from":918071387000,"to":"sip-user","time":1700000000123,"cmiuuid":"c-1","status":"stream_disconnected","ws_status":"{\"status\":\"disconnected\",\"message\":{\"code\":1006,\"reason\":\"Abnormal closure\"}}","extra_params":"{\"call\":\"default/call-a\"}"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(CDR{Status: CDRMissed, StartTime: time.Unix(1700000000, 0), Duration: 3 * time.Second})
	if want := `{"type":"cdr","status":"missed","duration":3,"start_time":1700000000}`; string(b) != want {
		t.Errorf("cdr got %s\nwant %s", b, want)
	}
}

func TestNumber(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		valid    bool
	}{
		{`919876543210`, "919876543210", true},
		{`"919876543210"`, "919876543210", true},
		{`"+14155550100"`, "14155550100", true},
		{`" 123 "`, "123", false},
		{`"agent_7"`, "agent_7", false},
		{`null`, "", false},
		{`true`, "true", false},
	} {
		var n Number
		if err := json.Unmarshal([]byte(tc.in), &n); err != nil || string(n) != tc.want || n.Valid() != tc.valid {
			t.Errorf("%s: got %q valid=%v err=%v, want %q valid=%v", tc.in, n, n.Valid(), err, tc.want, tc.valid)
		}
	}
	for _, bad := range []string{`1.5`, `-3`, `[1]`} {
		var n Number
		if err := json.Unmarshal([]byte(bad), &n); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	for n, want := range map[Number]string{"919876543210": `919876543210`, "0123": `"0123"`, "0": `0`, "": `""`, "a\"b": `"a\"b"`} {
		if b, _ := json.Marshal(n); string(b) != want {
			t.Errorf("marshal %q = %s, want %s", n, b, want)
		}
	}
	if Number("42").String() != "42" {
		t.Error("String")
	}
}

// corpusPath is where the seed of that name lives in Go's fuzz corpus.
func corpusPath(name string) string {
	return filepath.Join("testdata", "fuzz", "FuzzParseWebhook", "seed-"+name)
}

func corpusFile(body string) []byte {
	return []byte("go test fuzz v1\n[]byte(" + strconv.Quote(body) + ")\n")
}

// TestFuzzCorpusIsCurrent keeps the checked-in corpus equal to webhookSeeds
// (rewrite it with -update).
func TestFuzzCorpusIsCurrent(t *testing.T) {
	for _, s := range webhookSeeds {
		want := corpusFile(s.body)
		if *update {
			if err := os.WriteFile(corpusPath(s.name), want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(corpusPath(s.name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("corpus file %s is stale or missing (run with -update): %v", corpusPath(s.name), err)
		}
	}
}

// FuzzParseWebhook checks that no body makes the parser panic, and that what
// it accepts marshals to a body it accepts again, reaching a fixed point
// after one round (normalising is allowed once, drifting is not).
func FuzzParseWebhook(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := ParseWebhook(body)
		if err != nil {
			if w != nil {
				t.Fatal("non-nil webhook with an error")
			}
			return
		}
		b1, err := json.Marshal(w)
		if err != nil {
			t.Fatalf("marshal %+v: %v", w, err)
		}
		w2, err := ParseWebhook(b1)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", b1, err)
		}
		if w2.Kind != w.Kind {
			t.Fatalf("kind changed from %s to %s via %s", w.Kind, w2.Kind, b1)
		}
		b2, err := json.Marshal(w2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("not a fixed point:\n%s\n%s", b1, b2)
		}
	})
}
