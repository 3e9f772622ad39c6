package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Outcome is what happens when the sim dials a destination number.
type Outcome string

const (
	OutcomeAnswer    Outcome = "answer"    // answered after AnswerDelay
	OutcomeBusy      Outcome = "busy"      // fails busy after AnswerDelay, never rings
	OutcomeNoAnswer  Outcome = "noanswer"  // rings for RingTimeout, then gives up
	OutcomeReject    Outcome = "reject"    // rings, then the callee declines after AnswerDelay
	OutcomeVoicemail Outcome = "voicemail" // answered by a voicemail box after AnswerDelay
)

// DefaultRingTimeout is how long a noanswer destination rings when its
// Behaviour sets no RingTimeout (v2 make-call carries no ring timeout).
const DefaultRingTimeout = 30 * time.Second

// Behaviour is how one destination number (the make-call "to") behaves.
// Zero durations mean "at once", except HangupAfter where zero means the
// callee never hangs up (the call then ends by duration, PCMO or API).
type Behaviour struct {
	Outcome     Outcome       // "" means answer
	RingDelay   time.Duration // dial → ringing
	AnswerDelay time.Duration // ringing → answered (or busy / rejected)
	RingTimeout time.Duration // noanswer: how long it rings (0 = DefaultRingTimeout)
	HangupAfter time.Duration // answered → the callee hangs up (0 = never)
	DTMF        string        // digits the callee types at an input / play_get_input action ("" = none: the input times out)
}

// AgentBehaviour is how a number reached by a PCMO bridge (or a SIP user of a
// connect action) behaves.
type AgentBehaviour struct {
	AnswerDelay time.Duration // ringing → answered
	NoAnswer    bool          // never answers: rings until the bridge timeout
	Busy        bool          // fails busy after AnswerDelay
	TalkFor     time.Duration // answered → the agent hangs up (0 = stays until the call ends)
}

// Scenario decides every call's fate.
type Scenario struct {
	Default      Behaviour                 // numbers not listed in Numbers
	Numbers      map[string]Behaviour      // by destination number, digits only
	DefaultAgent AgentBehaviour            // agents not listed in Agents
	Agents       map[string]AgentBehaviour // by agent number (bridge) or SIP user (connect)
	Files        []string                  // files "uploaded" to the account; when non-empty, play with another file_name fails 404
}

// DefaultBehaviour answers after 200ms; the callee hangs up 3s later.
func DefaultBehaviour() Behaviour {
	return Behaviour{Outcome: OutcomeAnswer, AnswerDelay: 200 * time.Millisecond, HangupAfter: 3 * time.Second}
}

// DefaultAgentBehaviour answers after 200ms and stays until the call ends.
func DefaultAgentBehaviour() AgentBehaviour {
	return AgentBehaviour{AnswerDelay: 200 * time.Millisecond}
}

// DefaultScenario is what the sim runs when given nothing else.
func DefaultScenario() Scenario {
	return Scenario{Default: DefaultBehaviour(), DefaultAgent: DefaultAgentBehaviour()}
}

// normalize fills unset defaults so a zero Scenario{} behaves like DefaultScenario.
// A completely zero Default is taken as "not given" because "answer at once and
// never hang up" is almost never what a caller of the Go API meant.
func (sc Scenario) normalize() Scenario {
	if sc.Default == (Behaviour{}) {
		sc.Default = DefaultBehaviour()
	}
	if sc.DefaultAgent == (AgentBehaviour{}) {
		sc.DefaultAgent = DefaultAgentBehaviour()
	}
	return sc
}

// Validate reports the first invalid field.
func (sc Scenario) Validate() error {
	if err := sc.Default.validate(); err != nil {
		return fmt.Errorf("default: %w", err)
	}
	for n, b := range sc.Numbers {
		if !isDigits(n) {
			return fmt.Errorf("numbers: key %q is not a digit string", n)
		}
		if err := b.validate(); err != nil {
			return fmt.Errorf("numbers[%s]: %w", n, err)
		}
	}
	if err := sc.DefaultAgent.validate(); err != nil {
		return fmt.Errorf("defaultAgent: %w", err)
	}
	for n, a := range sc.Agents {
		if err := a.validate(); err != nil {
			return fmt.Errorf("agents[%s]: %w", n, err)
		}
	}
	return nil
}

func (b Behaviour) validate() error {
	switch b.Outcome {
	case "", OutcomeAnswer, OutcomeBusy, OutcomeNoAnswer, OutcomeReject, OutcomeVoicemail:
	default:
		return fmt.Errorf("unknown outcome %q (want answer|busy|noanswer|reject|voicemail)", b.Outcome)
	}
	for _, d := range []time.Duration{b.RingDelay, b.AnswerDelay, b.RingTimeout, b.HangupAfter} {
		if d < 0 {
			return fmt.Errorf("negative duration %v", d)
		}
	}
	if b.DTMF != "" && strings.Trim(b.DTMF, "0123456789*#") != "" {
		return fmt.Errorf("dtmf %q: only 0-9 * #", b.DTMF)
	}
	return nil
}

func (a AgentBehaviour) validate() error {
	if a.AnswerDelay < 0 || a.TalkFor < 0 {
		return fmt.Errorf("negative duration")
	}
	if a.NoAnswer && a.Busy {
		return fmt.Errorf("noAnswer and busy are exclusive")
	}
	return nil
}

// behaviour returns the Behaviour for a destination number.
func (sc Scenario) behaviour(to string) Behaviour {
	if b, ok := sc.Numbers[to]; ok {
		return b
	}
	return sc.Default
}

func (sc Scenario) agent(number string) AgentBehaviour {
	if a, ok := sc.Agents[number]; ok {
		return a
	}
	return sc.DefaultAgent
}

// LoadScenario reads a YAML (or JSON) scenario file. See ParseScenario.
func LoadScenario(path string) (Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, fmt.Errorf("read scenario: %w", err)
	}
	sc, err := ParseScenario(b)
	if err != nil {
		return Scenario{}, fmt.Errorf("scenario %s: %w", path, err)
	}
	return sc, nil
}

// ParseScenario parses YAML or JSON. Unknown keys are errors (a typo must not
// silently fall back to the default). An absent default / defaultAgent keeps the
// built-in one; a present one is taken exactly as written.
func ParseScenario(b []byte) (Scenario, error) {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return Scenario{}, fmt.Errorf("yaml: %w", err)
	}
	var sc Scenario
	if len(bytes.TrimSpace(j)) > 0 && string(bytes.TrimSpace(j)) != "null" {
		if err := strictUnmarshal(j, &sc); err != nil {
			return Scenario{}, err
		}
	} else {
		sc = DefaultScenario()
	}
	if err := sc.Validate(); err != nil {
		return Scenario{}, err
	}
	return sc, nil
}

// The wire (YAML/JSON) forms: durations are Go duration strings so tests can use milliseconds.

type scenarioJSON struct {
	Default      *Behaviour                `json:"default,omitempty"`
	Numbers      map[string]Behaviour      `json:"numbers,omitempty"`
	DefaultAgent *AgentBehaviour           `json:"defaultAgent,omitempty"`
	Agents       map[string]AgentBehaviour `json:"agents,omitempty"`
	Files        []string                  `json:"files,omitempty"`
}

func (sc Scenario) MarshalJSON() ([]byte, error) {
	return json.Marshal(scenarioJSON{Default: &sc.Default, Numbers: sc.Numbers, DefaultAgent: &sc.DefaultAgent, Agents: sc.Agents, Files: sc.Files})
}

func (sc *Scenario) UnmarshalJSON(b []byte) error {
	var w scenarioJSON
	if err := strictUnmarshal(b, &w); err != nil {
		return err
	}
	def := DefaultScenario()
	*sc = Scenario{Default: def.Default, DefaultAgent: def.DefaultAgent, Numbers: w.Numbers, Agents: w.Agents, Files: w.Files}
	if w.Default != nil {
		sc.Default = *w.Default
	}
	if w.DefaultAgent != nil {
		sc.DefaultAgent = *w.DefaultAgent
	}
	return nil
}

type behaviourJSON struct {
	Outcome     Outcome  `json:"outcome,omitempty"`
	RingDelay   Duration `json:"ringDelay,omitempty"`
	AnswerDelay Duration `json:"answerDelay,omitempty"`
	RingTimeout Duration `json:"ringTimeout,omitempty"`
	HangupAfter Duration `json:"hangupAfter,omitempty"`
	DTMF        string   `json:"dtmf,omitempty"`
}

func (b Behaviour) MarshalJSON() ([]byte, error) {
	return json.Marshal(behaviourJSON{b.Outcome, Duration(b.RingDelay), Duration(b.AnswerDelay), Duration(b.RingTimeout), Duration(b.HangupAfter), b.DTMF})
}

func (b *Behaviour) UnmarshalJSON(data []byte) error {
	var w behaviourJSON
	if err := strictUnmarshal(data, &w); err != nil {
		return err
	}
	*b = Behaviour{w.Outcome, time.Duration(w.RingDelay), time.Duration(w.AnswerDelay), time.Duration(w.RingTimeout), time.Duration(w.HangupAfter), w.DTMF}
	return nil
}

type agentJSON struct {
	AnswerDelay Duration `json:"answerDelay,omitempty"`
	NoAnswer    bool     `json:"noAnswer,omitempty"`
	Busy        bool     `json:"busy,omitempty"`
	TalkFor     Duration `json:"talkFor,omitempty"`
}

func (a AgentBehaviour) MarshalJSON() ([]byte, error) {
	return json.Marshal(agentJSON{Duration(a.AnswerDelay), a.NoAnswer, a.Busy, Duration(a.TalkFor)})
}

func (a *AgentBehaviour) UnmarshalJSON(data []byte) error {
	var w agentJSON
	if err := strictUnmarshal(data, &w); err != nil {
		return err
	}
	*a = AgentBehaviour{time.Duration(w.AnswerDelay), w.NoAnswer, w.Busy, time.Duration(w.TalkFor)}
	return nil
}

// Duration is a time.Duration that reads and writes Go duration strings ("200ms").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "0" || string(b) == "null" {
		*d = 0
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s: want a Go duration string such as \"200ms\" or \"3s\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// strictUnmarshal decodes refusing unknown keys. encoding/json matches keys
// case-insensitively even with DisallowUnknownFields, so for structs the keys
// are first checked exactly against the json tags: "hangupafter" is a typo.
func strictUnmarshal(b []byte, v any) error {
	_, custom := v.(json.Unmarshaler) // checks its own wire struct
	if t := reflect.TypeOf(v); !custom && t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(b, &keys); err == nil {
			known := map[string]bool{}
			for i := 0; i < t.Elem().NumField(); i++ {
				name, _, _ := strings.Cut(t.Elem().Field(i).Tag.Get("json"), ",")
				known[name] = true
			}
			for k := range keys {
				if !known[k] {
					return fmt.Errorf("decode: unknown field %q", k)
				}
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if dec.More() {
		return fmt.Errorf("decode: trailing data")
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
