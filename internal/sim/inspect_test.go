package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func (h *harness) do(method, path, body string) (int, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.url+path, strings.NewReader(body))
	resp, err := httpClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestInspectionAPI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	// Drive behaviour at run time the way an out-of-process e2e test does.
	code, b := h.do("PUT", "/sim/scenario", `
default: {outcome: busy}
numbers:
  "919000000001": {outcome: answer, answerDelay: 10ms, hangupAfter: 20ms}
`)
	if code != 200 {
		t.Fatalf("PUT scenario: %d %s", code, b)
	}
	if code, b := h.do("PUT", "/sim/scenario", `numbers: {"1": {outcom: busy}}`); code != 400 {
		t.Errorf("typo accepted: %d %s", code, b)
	}
	id1 := h.dial(919000000001, speakPCMO())
	id2 := h.dial(919000000002, speakPCMO())
	h.waitEnded(id1)
	h.waitEnded(id2)

	var calls []CallRecord
	code, b = h.do("GET", "/sim/calls?to=919000000001", "")
	if err := json.Unmarshal(b, &calls); code != 200 || err != nil || len(calls) != 1 || calls[0].RequestID != id1 || calls[0].Outcome != "answered" {
		t.Fatalf("GET /sim/calls?to=: %d %s", code, b)
	}
	if calls[0].Events[0].Attempts[0].HTTPStatus != 200 || string(compactJSON(calls[0].ExtraParams)) != `{"attempt":"a-1","call":"demo"}` {
		t.Errorf("record %+v", calls[0])
	}
	code, b = h.do("GET", "/sim/calls", "")
	if err := json.Unmarshal(b, &calls); err != nil || len(calls) != 2 || calls[1].Outcome != "busy" {
		t.Errorf("GET /sim/calls: %d %s", code, b)
	}
	if code, _ := h.do("GET", "/sim/calls/"+id2, ""); code != 200 {
		t.Errorf("GET /sim/calls/{id}: %d", code)
	}

	code, b = h.do("PUT", "/sim/faults", `{"rest":{"serverErrProb":1}}`)
	if code != 200 {
		t.Fatalf("PUT faults: %d %s", code, b)
	}
	if code, _ := h.post("/v2/ind_pcmo_make_call", callBody(919000000003, speakPCMO())); code != 503 {
		t.Errorf("fault not applied: %d", code)
	}
	if code, b := h.do("PUT", "/sim/faults", `rest: {latency: 10ms}
deliveryNumbers: {"919000000003": {dropProb: 0.5, events: [hangup]}}`); code != 200 {
		t.Errorf("PUT faults yaml: %d %s", code, b)
	}
	if code, b := h.do("PUT", "/sim/faults", `{"rest":{"serverErrProb":2}}`); code != 400 {
		t.Errorf("bad probability accepted: %d %s", code, b)
	}
	if code, _ := h.do("PUT", "/sim/faults", ``); code != 200 {
		t.Errorf("clear faults: %d", code)
	}
	if code, b := h.do("PUT", "/sim/webhook", `{"url":"`+h.hooks.srv.URL+`/other"}`); code != 200 || h.sim.currentWebhookURL() != h.hooks.srv.URL+"/other" {
		t.Errorf("PUT webhook: %d %s", code, b)
	}

	if code, b := h.do("GET", "/sim/agents", ""); code != 200 || strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("GET /sim/agents: %d %s", code, b)
	}
	if code, b := h.do("GET", "/sim/stats", ""); code != 200 || !bytes.Contains(b, []byte(`"calls": 2`)) {
		t.Errorf("GET /sim/stats: %d %s", code, b)
	}
	if code, _ := h.do("POST", "/sim/reset", ""); code != 200 || len(h.sim.Calls()) != 0 {
		t.Errorf("reset: %d, %d calls left", code, len(h.sim.Calls()))
	}
	if code, _ := h.do("GET", "/nope", ""); code != 404 {
		t.Errorf("unknown path: %d", code)
	}
}

func TestResetEndsLiveCallsSilently(t *testing.T) {
	t.Parallel()
	h := newHarness(t, answerForever)
	id, pc := liveCall(t, h, nil)
	pc.waitFrames(t, 2)
	n := len(h.hooks.events(id))
	if code, _ := h.do("POST", "/sim/reset", ""); code != 200 {
		t.Fatal(code)
	}
	_ = pc.waitClosed(t) // how it closed is not what this test checks
	time.Sleep(100 * time.Millisecond)
	if got := len(h.hooks.events(id)); got > n+1 { // at most an event already in flight
		t.Errorf("%d events after reset", got-n)
	}
}

func TestScenarioFiles(t *testing.T) {
	t.Parallel()
	_, file, _, _ := runtime.Caller(0)
	sc, err := LoadScenario(filepath.Join(filepath.Dir(file), "../../examples/sim/scenario.yaml"))
	if err != nil {
		t.Fatalf("example scenario: %v", err)
	}
	if sc.Default.Outcome != OutcomeAnswer || len(sc.Numbers) == 0 || len(sc.Agents) == 0 {
		t.Errorf("example scenario %+v", sc)
	}
	for _, tc := range []struct {
		yaml string
		ok   bool
		want func(Scenario) bool
	}{
		{"", true, func(s Scenario) bool { return s.Default == DefaultBehaviour() }},
		{"numbers: {}", true, func(s Scenario) bool {
			return s.Default == DefaultBehaviour() && s.DefaultAgent == DefaultAgentBehaviour()
		}},
		{"default: {outcome: busy}", true, func(s Scenario) bool { return s.Default == Behaviour{Outcome: OutcomeBusy} }},
		{"default: {answerDelay: 1500ms}", true, func(s Scenario) bool { return s.Default.AnswerDelay == 1500*time.Millisecond }},
		{"agents: {'9100': {noAnswer: true}}", true, func(s Scenario) bool { return s.Agents["9100"].NoAnswer }},
		{"default: {answerDelay: 2}", false, nil},
		{"default: {outcome: maybe}", false, nil},
		{"default: {hangupafter: 1s}", false, nil},
		{"numbers: {'+91': {}}", false, nil},
		{"agents: {'1': {noAnswer: true, busy: true}}", false, nil},
	} {
		sc, err := ParseScenario([]byte(tc.yaml))
		if (err == nil) != tc.ok || (tc.ok && !tc.want(sc)) {
			t.Errorf("%q: %+v, %v", tc.yaml, sc, err)
		}
	}
	// Round trip through the wire form.
	in := Scenario{Default: Behaviour{Outcome: OutcomeReject, AnswerDelay: 5 * time.Millisecond}, Numbers: map[string]Behaviour{"1": {Outcome: OutcomeVoicemail, HangupAfter: time.Second}}, DefaultAgent: AgentBehaviour{TalkFor: time.Minute}}
	b, _ := json.Marshal(in)
	out, err := ParseScenario(b)
	if err != nil || out.Default != in.Default || out.Numbers["1"] != in.Numbers["1"] || out.DefaultAgent != in.DefaultAgent {
		t.Errorf("round trip %s → %+v %v", b, out, err)
	}
}
