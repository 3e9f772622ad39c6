package piopiyv3

import (
	"encoding/json"
)

// Pipeline is a list of actions a PCMO call or a blind transfer runs in
// order. v3 has no stream action: AI audio goes to a hosted agent (a
// connect endpoint of type agent) or to LiveKit workers.
type Pipeline []Action

// Action is one pipeline step. The types in this package cover the
// vocabulary; RawAction carries anything else, validated all the same.
type Action interface{ actionName() string }

// Connect dials endpoints and bridges the first to answer (sequential) or
// rings them together (simultaneous). Agent endpoints go last, at most two.
type Connect struct {
	Params    ConnectParams
	Endpoints []ConnectEndpoint
}

// ConnectParams are the parameters of a connect action.
type ConnectParams struct {
	CallerID string          `json:"caller_id"`
	Strategy string          `json:"strategy,omitempty"` // sequential | simultaneous
	Options  *ConnectOptions `json:"options,omitempty"`
	Metadata map[string]any  `json:"metadata,omitempty"`
}

// ConnectOptions tune a connect action.
type ConnectOptions struct {
	MaxDurationSec   int        `json:"max_duration_sec,omitempty"` // 10-7200
	RingTimeoutSec   int        `json:"ring_timeout_sec,omitempty"` // 5-120
	MachineDetection *bool      `json:"machine_detection,omitempty"`
	Recording        *Recording `json:"recording,omitempty"`
	WaitingMusic     string     `json:"waiting_music,omitempty"`
}

// Recording configures a connect action's recording.
type Recording struct {
	Enabled  *bool  `json:"enabled,omitempty"`
	Channels string `json:"channels,omitempty"` // dual | single
	Format   string `json:"format,omitempty"`   // mp3 | wav
}

// ConnectEndpoint is a connect endpoint: PSTN(number), SIP(uri) or Agent(id).
type ConnectEndpoint struct {
	Type    string            `json:"type"`
	Number  string            `json:"number,omitempty"`
	URI     string            `json:"uri,omitempty"`
	ID      string            `json:"id,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// PSTN is a phone-number endpoint.
func PSTN(number string) ConnectEndpoint { return ConnectEndpoint{Type: "pstn", Number: number} }

// SIP is a SIP endpoint.
func SIP(uri string, headers map[string]string) ConnectEndpoint {
	return ConnectEndpoint{Type: "sip", URI: uri, Headers: headers}
}

// Agent is a Piopiy-hosted AI agent endpoint.
func Agent(id string) ConnectEndpoint { return ConnectEndpoint{Type: "agent", ID: id} }

func (Connect) actionName() string { return "connect" }

// MarshalJSON writes {"action":"connect","params":..,"endpoints":..}.
func (a Connect) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Action    string            `json:"action"`
		Params    ConnectParams     `json:"params"`
		Endpoints []ConnectEndpoint `json:"endpoints"`
	}{"connect", a.Params, a.Endpoints})
}

// Play plays a file uploaded to Piopiy.
type Play struct{ FileName string }

func (Play) actionName() string { return "play" }

// MarshalJSON writes {"action":"play","file_name":..}.
func (a Play) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Action   string `json:"action"`
		FileName string `json:"file_name"`
	}{"play", a.FileName})
}

// Param sets call data (at most 10 keys, strings at most 256 characters).
type Param struct{ Data map[string]any }

func (Param) actionName() string { return "param" }

// MarshalJSON writes {"action":"param","data":..}.
func (a Param) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Action string         `json:"action"`
		Data   map[string]any `json:"data"`
	}{"param", a.Data})
}

// Record records the rest of the call.
type Record struct {
	Format   string // mp3 | wav
	Channels string // single | dual
}

func (Record) actionName() string { return "record" }

// MarshalJSON writes {"action":"record",...}.
func (a Record) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Action   string `json:"action"`
		Format   string `json:"format,omitempty"`
		Channels string `json:"channels,omitempty"`
	}{"record", a.Format, a.Channels})
}

// Hangup ends the call.
type Hangup struct{}

func (Hangup) actionName() string { return "hangup" }

// MarshalJSON writes {"action":"hangup"}.
func (Hangup) MarshalJSON() ([]byte, error) { return []byte(`{"action":"hangup"}`), nil }

// RawAction is an action written as JSON (input, play_get_input, or one
// this package has no type for). It is validated like the others.
type RawAction json.RawMessage

func (RawAction) actionName() string { return "" }

// MarshalJSON returns the JSON as is.
func (a RawAction) MarshalJSON() ([]byte, error) { return json.RawMessage(a).MarshalJSON() }
