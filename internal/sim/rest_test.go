package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

var requestIDRe = regexp.MustCompile(`^[0-9A-Za-z]{43}$`)

// quickScenario ends every call at once so validation tests leave nothing running.
func quickScenario(c *Config) {
	c.Scenario = Scenario{Default: Behaviour{Outcome: OutcomeBusy}}
}

func TestMakeCallSuccessIsExactlyPiopiysShape(t *testing.T) {
	t.Parallel()
	h := newHarness(t, quickScenario)
	for _, path := range []string{"/v2/ind_pcmo_make_call", "/v2/global_pcmo_make_call"} {
		b, _ := json.Marshal(callBody(919876543210, speakPCMO()))
		resp, err := httpClient.Post(h.url+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d: %s", path, resp.StatusCode, raw)
		}
		re := regexp.MustCompile(`^\{"data":\{"status":"progress","request_id":"([0-9A-Za-z]{43})"\},"status":"progress","request_id":"([0-9A-Za-z]{43})","code":200\}$`)
		m := re.FindStringSubmatch(string(raw))
		if m == nil || m[1] != m[2] {
			t.Fatalf("%s: reply not Piopiy's exact shape: %s", path, raw)
		}
		c := h.call(m[1])
		wantRoute := map[string]string{"/v2/ind_pcmo_make_call": "ind", "/v2/global_pcmo_make_call": "global"}[path]
		if c.Route != wantRoute || c.To != "919876543210" || c.From != "918035000000" || string(c.ExtraParams) != `{"attempt":"a-1","call":"demo"}` {
			t.Errorf("%s: recorded %+v", path, c)
		}
	}
}

func TestMakeCallValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, quickScenario)
	stream := func(kv ...any) []any {
		a := map[string]any{"action": "stream", "ws_url": "ws://127.0.0.1:1/ws"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(a, kv[i].(string))
				continue
			}
			a[kv[i].(string)] = kv[i+1]
		}
		return []any{a}
	}
	with := func(kv ...any) map[string]any {
		b := callBody(919876543210, speakPCMO())
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(b, kv[i].(string))
				continue
			}
			b[kv[i].(string)] = kv[i+1]
		}
		return b
	}
	bridge := func(number any) []any {
		return []any{map[string]any{"action": "bridge", "from": testFrom, "connect": []any{map[string]any{"type": "pstn", "number": number}}}}
	}
	cases := []struct {
		name string
		body any
		code int
	}{
		{"valid", with(), 200},
		{"second app", with("appid", 2222222, "secret", "s2"), 200},
		{"wrong secret", with("secret", "nope"), 420},
		{"unknown appid", with("appid", 9999999), 420},
		{"appid as digit string", with("appid", "1111111"), 420},
		{"secret not a string", with("secret", 123), 420},
		{"appid missing", with("appid", nil), 401},
		{"secret missing", with("secret", nil), 401},
		{"to missing", with("to", nil), 502},
		{"from missing", with("from", nil), 502},
		{"to as digit string", with("to", "919876543210"), 502},
		{"from as digit string", with("from", "918035000000"), 502},
		{"to fractional", with("to", 9198765432.5), 502},
		{"to negative", with("to", -5), 502},
		{"to 16 digits", with("to", int64(1234567890123456)), 502},
		{"duration string", with("duration", "60"), 502},
		{"duration zero", with("duration", 0), 502},
		{"duration absent is fine", with("duration", nil), 200},
		{"extra_params string", with("extra_params", `{"a":1}`), 502},
		{"extra_params absent is fine", with("extra_params", nil), 200},
		{"pcmo missing", with("pcmo", nil), 422},
		{"pcmo as JSON string (SDK PCMO() misuse)", with("pcmo", `[{"action":"speak","text":"hi"}]`), 422},
		{"pcmo object", with("pcmo", map[string]any{"action": "hangup"}), 422},
		{"pcmo empty", with("pcmo", []any{}), 422},
		{"unknown action", with("pcmo", []any{map[string]any{"action": "dance"}}), 422},
		{"action missing", with("pcmo", []any{map[string]any{"text": "x"}}), 422},
		{"speak without text", with("pcmo", []any{map[string]any{"action": "speak"}}), 422},
		{"stream ok", with("pcmo", stream("listen_mode", "both", "voice_quality", "16000")), 200},
		{"stream voice_quality int", with("pcmo", stream("voice_quality", 8000)), 200},
		{"stream voice_quality 32000", with("pcmo", stream("voice_quality", "32000")), 200},
		{"stream voice_quality 44100", with("pcmo", stream("voice_quality", "44100")), 422},
		{"stream voice_quality bool", with("pcmo", stream("voice_quality", true)), 422},
		{"stream without ws_url", with("pcmo", stream("ws_url", nil)), 422},
		{"stream http url", with("pcmo", stream("ws_url", "http://127.0.0.1/ws")), 422},
		{"stream wss url", with("pcmo", stream("ws_url", "wss://example.com/ws?call=1")), 200},
		{"stream bad listen_mode", with("pcmo", stream("listen_mode", "agent")), 422},
		{"stream_on_answer as string", with("pcmo", stream("stream_on_answer", "true")), 422},
		{"bridge ok", with("pcmo", bridge(919000000001)), 200},
		{"bridge number as string", with("pcmo", bridge("919000000001")), 422},
		{"bridge without from", with("pcmo", []any{map[string]any{"action": "bridge", "connect": []any{map[string]any{"type": "pstn", "number": 1}}}}), 422},
		{"bridge sip endpoint", with("pcmo", []any{map[string]any{"action": "bridge", "from": testFrom, "connect": []any{map[string]any{"type": "sip", "user": "a"}}}}), 422},
		{"connect sip via call list", with("pcmo", []any{map[string]any{"action": "connect", "call": []any{map[string]any{"type": "sip", "user": "agent1"}}, "call_type": "audio"}}), 200},
		{"bridge bad ring_type", with("pcmo", []any{map[string]any{"action": "bridge", "from": testFrom, "ring_type": "parallel", "connect": []any{map[string]any{"type": "pstn", "number": 1}}}}), 422},
		{"play without file", with("pcmo", []any{map[string]any{"action": "play"}}), 422},
		{"play file_url ftp", with("pcmo", []any{map[string]any{"action": "play", "file_url": "ftp://x/a.mp3"}}), 422},
		{"play file_url", with("pcmo", []any{map[string]any{"action": "play", "file_url": "https://x/a.mp3"}}), 200},
		{"input without action_url", with("pcmo", []any{map[string]any{"action": "input"}}), 422},
		{"not JSON", "appid=1", 400},
		{"JSON array body", `[1]`, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, m := h.post("/v2/ind_pcmo_make_call", tc.body)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %v", code, tc.code, m)
			}
			if code == 200 {
				if !requestIDRe.MatchString(m["request_id"].(string)) {
					t.Errorf("request_id %v", m["request_id"])
				}
				return
			}
			// Errors: {"code":n,"message":"..."} with the same HTTP status.
			if got, _ := m["code"].(json.Number).Int64(); int(got) != tc.code || len(m) != 2 || m["message"] == "" {
				t.Errorf("error body %v", m)
			}
		})
	}
	// Nothing invalid was placed: only the 200 cases dialled.
	want := 0
	for _, tc := range cases {
		if tc.code == 200 {
			want++
		}
	}
	if got := len(h.sim.Calls()); got != want {
		t.Errorf("%d calls placed, want %d", got, want)
	}
}

func TestMethodAndContentType(t *testing.T) {
	t.Parallel()
	h := newHarness(t, quickScenario)
	resp, err := httpClient.Get(h.url + "/v2/ind_pcmo_make_call")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	b, _ := json.Marshal(callBody(919876543210, speakPCMO()))
	resp, err = httpClient.Post(h.url+"/v2/ind_pcmo_make_call", "text/plain", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: %d", resp.StatusCode)
	}
	if n := len(h.sim.Calls()); n != 0 {
		t.Errorf("%d calls placed", n)
	}
}

func TestMusicFileNotFound(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.Scenario = Scenario{Default: Behaviour{Outcome: OutcomeBusy}, Files: []string{"welcome.mp3"}}
	})
	play := func(f string) []any { return []any{map[string]any{"action": "play", "file_name": f}} }
	if code, m := h.post("/v2/ind_pcmo_make_call", callBody(919876543210, play("welcome.mp3"))); code != 200 {
		t.Fatalf("uploaded file: %d %v", code, m)
	}
	if code, m := h.post("/v2/ind_pcmo_make_call", callBody(919876543210, play("missing.mp3"))); code != 404 {
		t.Fatalf("missing file: %d %v", code, m)
	}
}

func TestCallAction(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.Scenario = Scenario{Default: Behaviour{Outcome: OutcomeAnswer}} // never hangs up by itself
	})
	id := h.dial(919876543210, streamPCMO("ws://127.0.0.1:1/unreachable", nil))
	c := h.waitCall(id, "answered", func(c CallRecord) bool { return c.State == "answered" })
	base := func(kv ...any) map[string]any {
		m := map[string]any{"appid": testApp, "secret": testSecret, "cmiuuid": c.CMIUUID, "action": "hold"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
				continue
			}
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name, path string
		body       map[string]any
		code       int
	}{
		{"hold", "/v1/call/action", base(), 200},
		{"unhold via global_action and cmiuid", "/v1/call/global_action", base("cmiuuid", nil, "cmiuid", c.CMIUUID, "action", "unhold"), 200},
		{"holdToggle", "/v1/call/action", base("action", "holdToggle"), 200},
		{"unknown action", "/v1/call/action", base("action", "transfer"), 502},
		{"action missing", "/v1/call/action", base("action", nil), 502},
		{"cmiuuid missing", "/v1/call/action", base("cmiuuid", nil), 502},
		{"unknown cmiuuid", "/v1/call/action", base("cmiuuid", "00000000-0000-4000-8000-000000000000"), 404},
		{"bad secret", "/v1/call/action", base("secret", "x"), 420},
		{"other app", "/v1/call/action", base("appid", 2222222, "secret", "s2"), 404},
		{"no credentials", "/v1/call/action", base("appid", nil, "secret", nil), 401},
	}
	for _, tc := range cases {
		if code, m := h.post(tc.path, tc.body); code != tc.code {
			t.Errorf("%s: %d %v, want %d", tc.name, code, m, tc.code)
		}
	}
	if code, m := h.post("/v1/call/action", base("action", "hangup")); code != 200 {
		t.Fatalf("hangup: %d %v", code, m)
	}
	c = h.waitEnded(id)
	if c.HangupCause != "api" {
		t.Errorf("hangup cause %q", c.HangupCause)
	}
	var acts []string
	for _, a := range c.Actions {
		acts = append(acts, a.Action)
	}
	if strings.Join(acts, ",") != "hold,unhold,holdToggle,hangup" {
		t.Errorf("recorded actions %v", acts)
	}
	if code, _ := h.post("/v1/call/action", base("action", "hangup")); code != 404 {
		t.Errorf("hangup of an ended call: %d", code)
	}
}

func TestCDRLookups(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.Scenario = Scenario{Default: Behaviour{Outcome: OutcomeAnswer, HangupAfter: 100 * time.Millisecond}}
	})
	id := h.dial(919876543210, speakPCMO())
	creds := map[string]any{"appid": testApp, "secret": testSecret}
	req := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range creds {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	// While the call is up the request id is known but has no CDR yet. The
	// speak-only PCMO ends the call at once, so poll for it to be ended instead.
	c := h.waitEnded(id)
	code, m := h.post("/v1/piopiy/requestid_cdr", req("request_id", id))
	if code != 200 || m["count"] != json.Number("1") {
		t.Fatalf("requestid_cdr: %d %v", code, m)
	}
	rich := h.sim.CurrentShapes().Rich
	cdrs := m["cdr"].([]any)
	cdr := cdrs[0].(map[string]any)
	if cdr["leg"] != "a" || cdr["status"] != "answered" {
		t.Errorf("cdr %v", cdr)
	}
	if rich && (cdr["request_id"] != id || cdr["cmiuuid"] != c.CMIUUID) {
		t.Errorf("rich cdr %v: want the webhook CDR with its ids", cdr)
	}
	code, m = h.post("/v1/piopiy/cmiuuid_cdr", req("cmiuuid", c.CMIUUID))
	if code != 200 || m["cdr"].(map[string]any)["direction"] != "outbound" {
		t.Fatalf("cmiuuid_cdr: %d %v", code, m)
	}
	badCreds := 404 // the documented lookups say 404 for bad credentials too
	if rich {
		badCreds = 420
	} else {
		// Key for key and type for type TeleCMI's cmiuuid_cdr sample.
		sample := readDocumented(t, "cmiuuid_cdr.json")
		sameShape(t, "cmiuuid_cdr reply", m, sample)
		sameShape(t, "cmiuuid_cdr record", m["cdr"].(map[string]any), sample["cdr"].(map[string]any))
		sameShape(t, "requestid_cdr record", cdr, sample["cdr"].(map[string]any))
	}
	for name, tc := range map[string]struct {
		path string
		body map[string]any
		code int
	}{
		"requestid unknown":           {"/v1/piopiy/requestid_cdr", req("request_id", "nope"), 404},
		"requestid bad credentials":   {"/v1/piopiy/requestid_cdr", map[string]any{"appid": testApp, "secret": "x", "request_id": id}, 404},
		"requestid other app":         {"/v1/piopiy/requestid_cdr", map[string]any{"appid": 2222222, "secret": "s2", "request_id": id}, 404},
		"requestid missing":           {"/v1/piopiy/requestid_cdr", req(), 502},
		"cmiuuid unknown":             {"/v1/piopiy/cmiuuid_cdr", req("cmiuuid", "nope"), 404},
		"cmiuuid bad secret":          {"/v1/piopiy/cmiuuid_cdr", map[string]any{"appid": testApp, "secret": "x", "cmiuuid": c.CMIUUID}, badCreds},
		"cmiuuid missing":             {"/v1/piopiy/cmiuuid_cdr", req(), 502},
		"cmiuuid number not a string": {"/v1/piopiy/cmiuuid_cdr", req("cmiuuid", 5), 502},
	} {
		if code, m := h.post(tc.path, tc.body); code != tc.code {
			t.Errorf("%s: %d %v, want %d", name, code, m, tc.code)
		}
	}

	// In progress: count 0.
	h.sim.SetScenario(Scenario{Default: Behaviour{Outcome: OutcomeAnswer}})
	id2 := h.dial(919876543211, streamPCMO("ws://127.0.0.1:1/x", nil))
	h.waitCall(id2, "answered", func(c CallRecord) bool { return c.State == "answered" })
	if code, m := h.post("/v1/piopiy/requestid_cdr", req("request_id", id2)); code != 200 || m["count"] != json.Number("0") {
		t.Errorf("in-progress requestid_cdr: %d %v", code, m)
	}
}
