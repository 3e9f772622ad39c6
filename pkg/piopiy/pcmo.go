package piopiy

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// PCMO is a Piopiy Call Management Object: the list of actions a call runs in
// order. It is a slice so that it marshals to the bare JSON array Piopiy wants
// (the official SDK hands out a JSON string instead, which v2 rejects), and its
// elements can only come from this package's constructors.
type PCMO []Action

// Action is one step of a PCMO. Build actions with Stream, PlayFile, PlayURL,
// Speak, Param, Record, Hangup, Bridge, ConnectSIP, Input and PlayGetInput;
// the unexported method keeps other packages from inventing their own.
type Action interface {
	// Name returns the wire name of the action, such as "stream" or "bridge".
	Name() string
	validate() error
}

// MarshalJSON writes the actions as a JSON array; an empty PCMO is [] rather
// than null.
func (p PCMO) MarshalJSON() ([]byte, error) {
	if len(p) == 0 {
		return []byte("[]"), nil
	}
	return marshal([]Action(p))
}

// Validate reports the first problem that Piopiy would reject, naming the
// action by its position. The error matches ErrValidation.
func (p PCMO) Validate() error {
	if len(p) == 0 {
		return validationError("pcmo", "no actions")
	}
	for i, a := range p {
		if a == nil {
			return validationError("pcmo", "action %d is nil", i)
		}
		if err := a.validate(); err != nil {
			return validationError("pcmo", "action %d (%s): %v", i, a.Name(), err)
		}
	}
	return nil
}

// ListenMode picks whose voice a stream carries.
type ListenMode string

// Listen modes of the stream action.
const (
	ListenCaller ListenMode = "caller"
	ListenCallee ListenMode = "callee"
	ListenBoth   ListenMode = "both"
)

// VoiceQuality is a stream's sample rate in Hz.
type VoiceQuality int

// Sample rates Piopiy streams at. 32000 appears only in older documentation.
const (
	VoiceQuality8000  VoiceQuality = 8000
	VoiceQuality16000 VoiceQuality = 16000
	VoiceQuality32000 VoiceQuality = 32000
)

// Valid reports whether q is a rate Piopiy knows.
func (q VoiceQuality) Valid() bool {
	return q == VoiceQuality8000 || q == VoiceQuality16000 || q == VoiceQuality32000
}

// MarshalJSON writes the rate as a JSON string ("8000"), the form the official
// SDK sends by default.
func (q VoiceQuality) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.Itoa(int(q)) + `"`), nil
}

// UnmarshalJSON accepts the rate as a string or a number, as Piopiy does.
func (q *VoiceQuality) UnmarshalJSON(b []byte) error {
	var f flexInt
	if err := f.UnmarshalJSON(b); err != nil {
		return fmt.Errorf("voice quality: %w", err)
	}
	*q = VoiceQuality(f.v)
	return nil
}

// Defaults the official SDKs apply; Piopiy's own defaults are undocumented,
// so they are always sent explicitly.
const (
	DefaultCallDurationSeconds = 5400
	DefaultRingTimeoutSeconds  = 40
	DefaultBridgeLoop          = 1
	DefaultInputMaxDigit       = 1
	DefaultInputTimeoutSeconds = 5
	DefaultInputMaxRetry       = 1
)

// StreamOptions configure the stream action, which makes Piopiy open a
// WebSocket to WSURL and send the call audio there.
type StreamOptions struct {
	// WSURL is the ws:// or wss:// URL Piopiy connects to. Put the call's
	// identity in its query: Piopiy sends no call id on the socket.
	WSURL string
	// ListenMode picks whose voice is streamed; empty leaves it to Piopiy.
	ListenMode ListenMode
	// VoiceQuality is the sample rate; zero means 8000.
	VoiceQuality VoiceQuality
	// StreamOnAnswer delays the socket until the call is answered.
	StreamOnAnswer bool
}

type streamAction struct {
	Action         string       `json:"action"`
	WSURL          string       `json:"ws_url"`
	ListenMode     ListenMode   `json:"listen_mode,omitempty"`
	VoiceQuality   VoiceQuality `json:"voice_quality"`
	StreamOnAnswer bool         `json:"stream_on_answer"`
}

// Stream streams the call audio to a WebSocket (full duplex: the socket can
// send audio and control frames back).
func Stream(opts StreamOptions) Action {
	q := opts.VoiceQuality
	if q == 0 {
		q = VoiceQuality8000
	}
	return &streamAction{Action: "stream", WSURL: opts.WSURL, ListenMode: opts.ListenMode, VoiceQuality: q, StreamOnAnswer: opts.StreamOnAnswer}
}

func (a *streamAction) Name() string { return a.Action }

func (a *streamAction) validate() error {
	if err := checkURL(a.WSURL, "ws_url", "ws", "wss"); err != nil {
		return err
	}
	switch a.ListenMode {
	case "", ListenCaller, ListenCallee, ListenBoth:
	default:
		return fmt.Errorf("listen_mode %q is not caller, callee or both", a.ListenMode)
	}
	if !a.VoiceQuality.Valid() {
		return fmt.Errorf("voice_quality %d is not 8000, 16000 or 32000", int(a.VoiceQuality))
	}
	return nil
}

type playAction struct {
	Action   string `json:"action"`
	FileName string `json:"file_name,omitempty"`
	FileURL  string `json:"file_url,omitempty"`
}

// PlayFile plays an audio file uploaded to Piopiy.
func PlayFile(name string) Action { return &playAction{Action: "play", FileName: name} }

// PlayURL plays an mp3 or wav file fetched from an http(s) URL.
func PlayURL(fileURL string) Action { return &playAction{Action: "play", FileURL: fileURL} }

func (a *playAction) Name() string { return a.Action }

func (a *playAction) validate() error { return checkAudioSource(a.FileName, a.FileURL) }

// checkAudioSource insists on exactly one of a file name and a file URL.
func checkAudioSource(name, fileURL string) error {
	switch {
	case name == "" && fileURL == "":
		return fmt.Errorf("needs file_name or file_url")
	case name != "" && fileURL != "":
		return fmt.Errorf("has both file_name and file_url")
	case fileURL != "":
		return checkURL(fileURL, "file_url", "http", "https")
	case strings.TrimSpace(name) == "":
		return fmt.Errorf("file_name is blank")
	}
	return nil
}

type textAction struct {
	Action string `json:"action"`
	Text   string `json:"text"`
}

// Speak reads text aloud with Piopiy's text to speech.
func Speak(text string) Action { return &textAction{Action: "speak", Text: text} }

// Param attaches a free string to the call; Piopiy echoes it to later
// webhooks as extra_params.
func Param(text string) Action { return &textAction{Action: "param", Text: text} }

func (a *textAction) Name() string { return a.Action }

func (a *textAction) validate() error {
	if strings.TrimSpace(a.Text) == "" {
		return fmt.Errorf("text is empty")
	}
	return nil
}

type bareAction struct {
	Action string `json:"action"`
}

// Record records the call.
func Record() Action { return &bareAction{Action: "record"} }

// Hangup ends the call.
func Hangup() Action { return &bareAction{Action: "hangup"} }

func (a *bareAction) Name() string    { return a.Action }
func (a *bareAction) validate() error { return nil }

// BridgeOptions configure the bridge action, which rings phone numbers and
// connects the first to answer (or, with RingGroup, rings them all at once).
type BridgeOptions struct {
	// From is the Piopiy number shown as caller id to the numbers rung.
	From string
	// Numbers are the phone numbers to ring, in order.
	Numbers []string
	// DurationSeconds caps the bridged call; zero means 5400.
	DurationSeconds int
	// TimeoutSeconds is how long each number rings; zero means 40.
	TimeoutSeconds int
	// Loop is how many times the list is tried; zero means 1.
	Loop int
	// RingGroup rings all numbers at once instead of in turn.
	RingGroup bool
}

type endpoint struct {
	Type   string `json:"type"`
	Number Number `json:"number,omitempty"`
	User   string `json:"user,omitempty"`
}

type connectAction struct {
	Action   string     `json:"action"`
	From     Number     `json:"from"`
	Connect  []endpoint `json:"connect"`
	Duration int        `json:"duration"`
	Timeout  int        `json:"timeout"`
	Loop     int        `json:"loop"`
	RingType string     `json:"ring_type,omitempty"`
}

// Bridge connects the call to PSTN numbers: the handoff to a human.
func Bridge(opts BridgeOptions) Action {
	eps := make([]endpoint, 0, len(opts.Numbers))
	for _, n := range opts.Numbers {
		eps = append(eps, endpoint{Type: "pstn", Number: Number(n)})
	}
	return newConnect("bridge", opts.From, eps, opts.DurationSeconds, opts.TimeoutSeconds, opts.Loop, opts.RingGroup)
}

// ConnectSIPOptions configure the connect action, which rings SIP users.
type ConnectSIPOptions struct {
	// From is the Piopiy number shown as caller id.
	From string
	// Users are the SIP user ids to ring.
	Users []string
	// DurationSeconds caps the connected call; zero means 5400.
	DurationSeconds int
	// TimeoutSeconds is how long each user rings; zero means 40.
	TimeoutSeconds int
	// Loop is how many times the list is tried; zero means 1.
	Loop int
	// RingGroup rings all users at once instead of in turn.
	RingGroup bool
}

// ConnectSIP connects the call to SIP users. It writes the endpoint list as
// "connect", the key the official SDKs send.
func ConnectSIP(opts ConnectSIPOptions) Action {
	eps := make([]endpoint, 0, len(opts.Users))
	for _, u := range opts.Users {
		eps = append(eps, endpoint{Type: "sip", User: u})
	}
	return newConnect("connect", opts.From, eps, opts.DurationSeconds, opts.TimeoutSeconds, opts.Loop, opts.RingGroup)
}

func newConnect(name, from string, eps []endpoint, duration, timeout, loop int, group bool) *connectAction {
	a := &connectAction{
		Action:   name,
		From:     Number(from),
		Connect:  eps,
		Duration: orDefault(duration, DefaultCallDurationSeconds),
		Timeout:  orDefault(timeout, DefaultRingTimeoutSeconds),
		Loop:     orDefault(loop, DefaultBridgeLoop),
	}
	if group {
		a.RingType = "group"
	}
	return a
}

func (a *connectAction) Name() string { return a.Action }

func (a *connectAction) validate() error {
	if !a.From.Valid() {
		return fmt.Errorf("from %q is not a phone number (7 to 16 digits)", string(a.From))
	}
	if len(a.Connect) == 0 {
		return fmt.Errorf("nothing to connect to")
	}
	for _, ep := range a.Connect {
		switch ep.Type {
		case "pstn":
			if !ep.Number.Valid() {
				return fmt.Errorf("number %q is not a phone number (7 to 16 digits)", string(ep.Number))
			}
		case "sip":
			if ep.User == "" || strings.ContainsAny(ep.User, " \t\r\n") {
				return fmt.Errorf("sip user %q is empty or has spaces", ep.User)
			}
		}
	}
	if err := checkNonNegative("duration", a.Duration); err != nil {
		return err
	}
	if err := checkNonNegative("timeout", a.Timeout); err != nil {
		return err
	}
	return checkNonNegative("loop", a.Loop)
}

// InputOptions configure the input action, which collects DTMF digits and
// posts them to ActionURL.
type InputOptions struct {
	// ActionURL receives the digits; it answers with the next PCMO.
	ActionURL string
	// MaxDigit is how many digits to collect; zero means 1.
	MaxDigit int
	// TimeoutSeconds is how long to wait for digits; zero means 5.
	TimeoutSeconds int
}

type inputAction struct {
	Action    string `json:"action"`
	ActionURL string `json:"action_url"`
	FileName  string `json:"file_name,omitempty"`
	FileURL   string `json:"file_url,omitempty"`
	MaxDigit  int    `json:"max_digit"`
	MaxRetry  int    `json:"max_retry,omitempty"`
	Timeout   int    `json:"timeout"`
}

// Input collects DTMF digits.
func Input(opts InputOptions) Action {
	return &inputAction{
		Action:    "input",
		ActionURL: opts.ActionURL,
		MaxDigit:  orDefault(opts.MaxDigit, DefaultInputMaxDigit),
		Timeout:   orDefault(opts.TimeoutSeconds, DefaultInputTimeoutSeconds),
	}
}

// PlayGetInputOptions configure the play_get_input action: play a prompt,
// then collect digits.
type PlayGetInputOptions struct {
	// ActionURL receives the digits; it answers with the next PCMO.
	ActionURL string
	// FileName is a prompt uploaded to Piopiy; set it or FileURL.
	FileName string
	// FileURL is an http(s) URL of the prompt; set it or FileName.
	FileURL string
	// MaxDigit is how many digits to collect; zero means 1.
	MaxDigit int
	// MaxRetry is how many times the prompt is replayed; zero means 1.
	MaxRetry int
	// TimeoutSeconds is how long to wait for digits; zero means 5.
	TimeoutSeconds int
}

// PlayGetInput plays a prompt and collects DTMF digits.
func PlayGetInput(opts PlayGetInputOptions) Action {
	return &inputAction{
		Action:    "play_get_input",
		ActionURL: opts.ActionURL,
		FileName:  opts.FileName,
		FileURL:   opts.FileURL,
		MaxDigit:  orDefault(opts.MaxDigit, DefaultInputMaxDigit),
		MaxRetry:  orDefault(opts.MaxRetry, DefaultInputMaxRetry),
		Timeout:   orDefault(opts.TimeoutSeconds, DefaultInputTimeoutSeconds),
	}
}

func (a *inputAction) Name() string { return a.Action }

func (a *inputAction) validate() error {
	if err := checkURL(a.ActionURL, "action_url", "http", "https"); err != nil {
		return err
	}
	if a.Action == "play_get_input" {
		if err := checkAudioSource(a.FileName, a.FileURL); err != nil {
			return err
		}
	}
	if a.MaxDigit < 1 {
		return fmt.Errorf("max_digit %d is less than 1", a.MaxDigit)
	}
	if err := checkNonNegative("max_retry", a.MaxRetry); err != nil {
		return err
	}
	return checkNonNegative("timeout", a.Timeout)
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func checkNonNegative(name string, v int) error {
	if v < 0 {
		return fmt.Errorf("%s %d is negative", name, v)
	}
	return nil
}

// checkURL insists on an absolute URL with a host and one of the schemes. Its
// messages never quote the URL: a ws_url carries a signed token in its query.
func checkURL(raw, field string, schemes ...string) error {
	if raw == "" {
		return fmt.Errorf("%s is empty", field)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s is not a valid URL", field)
	}
	for _, s := range schemes {
		if strings.EqualFold(u.Scheme, s) {
			if u.Host == "" {
				return fmt.Errorf("%s has no host", field)
			}
			return nil
		}
	}
	return fmt.Errorf("%s must start with %s://", field, strings.Join(schemes, ":// or "))
}
