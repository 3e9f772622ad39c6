package piopiy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const wsURL = "wss://gw.example.com/stream?call=default/call-a&token=abc"

// pcmoGoldens is every action constructor with typical options; each has a
// golden file of its wire form.
var pcmoGoldens = []struct {
	name   string
	action Action
}{
	{"stream", Stream(StreamOptions{WSURL: wsURL, ListenMode: ListenCaller, VoiceQuality: VoiceQuality16000, StreamOnAnswer: true})},
	{"stream_defaults", Stream(StreamOptions{WSURL: "ws://127.0.0.1:9000/s"})},
	{"play_file", PlayFile("welcome.wav")},
	{"play_url", PlayURL("https://cdn.example.com/hold.mp3")},
	{"speak", Speak("Hello from callfleet")},
	{"param", Param(`{"attempt":"call-a/1"}`)},
	{"record", Record()},
	{"hangup", Hangup()},
	{"bridge", Bridge(BridgeOptions{From: "918071387000", Numbers: []string{"919876543210"}})},
	{"bridge_group", Bridge(BridgeOptions{From: "918071387000", Numbers: []string{"919876543210", "14155550100"}, DurationSeconds: 600, TimeoutSeconds: 20, Loop: 2, RingGroup: true})},
	{"connect_sip", ConnectSIP(ConnectSIPOptions{From: "918071387000", Users: []string{"agent_1", "agent_2"}})},
	{"input", Input(InputOptions{ActionURL: "https://hooks.example.com/dtmf"})},
	{"play_get_input", PlayGetInput(PlayGetInputOptions{ActionURL: "https://hooks.example.com/dtmf", FileURL: "https://cdn.example.com/menu.mp3", MaxDigit: 4, MaxRetry: 2, TimeoutSeconds: 10})},
}

func TestPCMOActionsMatchGolden(t *testing.T) {
	for _, tc := range pcmoGoldens {
		t.Run(tc.name, func(t *testing.T) {
			if err := (PCMO{tc.action}).Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			b, err := marshal(tc.action)
			if err != nil {
				t.Fatal(err)
			}
			assertGolden(t, "pcmo_"+tc.name, b)
		})
	}
}

func TestPCMOMarshalsToABareArray(t *testing.T) {
	b, err := json.Marshal(PCMO{Speak("hi"), Hangup()})
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"action":"speak","text":"hi"},{"action":"hangup"}]`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
	if b, _ := json.Marshal(PCMO(nil)); string(b) != "[]" {
		t.Errorf("nil PCMO marshals to %s, want []", b)
	}
	// A PCMO nested in a struct must stay an array too (the SDK bug this
	// type exists to prevent is a string in this place).
	b, _ = json.Marshal(struct {
		PCMO PCMO `json:"pcmo"`
	}{PCMO{Record()}})
	if string(b) != `{"pcmo":[{"action":"record"}]}` {
		t.Errorf("nested: %s", b)
	}
}

func TestVoiceQualityMarshalsAsStringAndReadsBoth(t *testing.T) {
	b, _ := json.Marshal(VoiceQuality8000)
	if string(b) != `"8000"` {
		t.Errorf("marshal = %s", b)
	}
	for _, in := range []string{`"16000"`, `16000`} {
		var q VoiceQuality
		if err := json.Unmarshal([]byte(in), &q); err != nil || q != VoiceQuality16000 {
			t.Errorf("unmarshal %s = %d, %v", in, q, err)
		}
	}
	var q VoiceQuality
	if err := json.Unmarshal([]byte(`"fast"`), &q); err == nil {
		t.Error("unmarshal of a word succeeded")
	}
}

func TestPCMOValidateRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		pcmo PCMO
		want string
	}{
		{"empty", PCMO{}, "no actions"},
		{"nil action", PCMO{nil}, "action 0 is nil"},
		{"http stream url", PCMO{Stream(StreamOptions{WSURL: "https://x.example.com"})}, "ws_url must start with ws:// or wss://"},
		{"empty stream url", PCMO{Stream(StreamOptions{})}, "ws_url is empty"},
		{"bad stream url", PCMO{Stream(StreamOptions{WSURL: "ws://bad host\x7f"})}, "ws_url is not a valid URL"},
		{"stream url without host", PCMO{Stream(StreamOptions{WSURL: "wss:///path"})}, "ws_url has no host"},
		{"listen mode", PCMO{Stream(StreamOptions{WSURL: wsURL, ListenMode: "everyone"})}, `listen_mode "everyone"`},
		{"voice quality", PCMO{Stream(StreamOptions{WSURL: wsURL, VoiceQuality: 44100})}, "voice_quality 44100"},
		{"play nothing", PCMO{PlayFile("")}, "needs file_name or file_url"},
		{"play blank", PCMO{PlayFile("  ")}, "file_name is blank"},
		{"play ftp", PCMO{PlayURL("ftp://x.example.com/a.mp3")}, "file_url must start with http:// or https://"},
		{"speak empty", PCMO{Speak(" ")}, "text is empty"},
		{"param empty", PCMO{Param("")}, "text is empty"},
		{"bridge from", PCMO{Bridge(BridgeOptions{From: "+918071387000", Numbers: []string{"919876543210"}})}, `from "+918071387000"`},
		{"bridge nobody", PCMO{Bridge(BridgeOptions{From: "918071387000"})}, "nothing to connect to"},
		{"bridge number", PCMO{Bridge(BridgeOptions{From: "918071387000", Numbers: []string{"12ab"}})}, `number "12ab"`},
		{"bridge short", PCMO{Bridge(BridgeOptions{From: "918071387000", Numbers: []string{"123456"}})}, `number "123456"`},
		{"bridge leading zero", PCMO{Bridge(BridgeOptions{From: "918071387000", Numbers: []string{"0919876543210"}})}, `number "0919876543210"`},
		{"bridge duration", PCMO{Bridge(BridgeOptions{From: "918071387000", Numbers: []string{"919876543210"}, DurationSeconds: -1})}, "duration -1 is negative"},
		{"bridge timeout", PCMO{Bridge(BridgeOptions{From: "918071387000", Numbers: []string{"919876543210"}, TimeoutSeconds: -1})}, "timeout -1 is negative"},
		{"bridge loop", PCMO{Bridge(BridgeOptions{From: "918071387000", Numbers: []string{"919876543210"}, Loop: -1})}, "loop -1 is negative"},
		{"sip user", PCMO{ConnectSIP(ConnectSIPOptions{From: "918071387000", Users: []string{"a b"}})}, `sip user "a b"`},
		{"input url", PCMO{Input(InputOptions{ActionURL: "/relative"})}, "action_url must start with http:// or https://"},
		{"input digits", PCMO{Input(InputOptions{ActionURL: "https://h.example.com", MaxDigit: -2})}, "max_digit -2"},
		{"input timeout", PCMO{Input(InputOptions{ActionURL: "https://h.example.com", TimeoutSeconds: -2})}, "timeout -2"},
		{"pgi both", PCMO{PlayGetInput(PlayGetInputOptions{ActionURL: "https://h.example.com", FileName: "a", FileURL: "https://h.example.com/a.mp3"})}, "both file_name and file_url"},
		{"pgi retry", PCMO{PlayGetInput(PlayGetInputOptions{ActionURL: "https://h.example.com", FileName: "a", MaxRetry: -1})}, "max_retry -1"},
		{"second action", PCMO{Speak("hi"), Speak("")}, "action 1 (speak)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.pcmo.Validate()
			if err == nil {
				t.Fatal("Validate succeeded")
			}
			if !errors.Is(err, ErrValidation) {
				t.Errorf("%v does not match ErrValidation", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "token=abc") {
				t.Errorf("error %q quotes the ws_url token", err)
			}
		})
	}
}

func TestActionNames(t *testing.T) {
	want := map[string]string{
		"stream": "stream", "stream_defaults": "stream", "play_file": "play", "play_url": "play", "speak": "speak",
		"param": "param", "record": "record", "hangup": "hangup", "bridge": "bridge", "bridge_group": "bridge",
		"connect_sip": "connect", "input": "input", "play_get_input": "play_get_input",
	}
	for _, tc := range pcmoGoldens {
		if got := tc.action.Name(); got != want[tc.name] {
			t.Errorf("%s: Name() = %q, want %q", tc.name, got, want[tc.name])
		}
	}
}
