package gateway

import (
	"encoding/json"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// StartMessage is the first frame the gateway sends a bot, as JSON text.
type StartMessage struct {
	Type       string            `json:"type"` // "start"
	Call       string            `json:"call"`
	Namespace  string            `json:"namespace"`
	Attempt    int32             `json:"attempt"`
	CMIUUID    string            `json:"cmiuuid"` // "" until Piopiy's answer event is recorded
	From       string            `json:"from"`
	To         string            `json:"to"`
	Variables  map[string]string `json:"variables"` // never null
	SampleRate int               `json:"sampleRate"`
	ListenMode string            `json:"listenMode"`
	// Resumed is true on a bot socket the gateway opened again mid-call
	// (the previous one dropped): the call is already under way.
	Resumed bool `json:"resumed,omitempty"`
}

// Event is a JSON event the gateway sends a bot after start: paused, resumed,
// handoff, stop. (mark is echoed back as the bot sent it.)
type Event struct {
	Type   string `json:"type"`
	Phase  string `json:"phase,omitempty"`  // handoff: Bridged, Ended, TimedOut, Failed
	Agent  string `json:"agent,omitempty"`  // handoff
	Number string `json:"number,omitempty"` // handoff
	Reason string `json:"reason,omitempty"` // stop, handoff
}

// BotMessage is a JSON frame from the bot.
type BotMessage struct {
	Type    string `json:"type"`              // clear, handoff, hangup, mark, assist, transcript, result, voicemail
	Reason  string `json:"reason,omitempty"`  // handoff
	Name    string `json:"name,omitempty"`    // mark (echoed back verbatim anyway)
	Text    string `json:"text,omitempty"`    // assist, transcript
	Speaker string `json:"speaker,omitempty"` // transcript: customer, agent, bot

	// result (bounded by boundResult before it is stored)
	Disposition string            `json:"disposition,omitempty"`
	Summary     string            `json:"summary,omitempty"`
	Data        map[string]string `json:"data,omitempty"`
}

// Message types of the bot protocol.
const (
	MsgStart   = "start"
	MsgPaused  = "paused"
	MsgResumed = "resumed"
	MsgHandoff = "handoff"
	MsgStop    = "stop"
	MsgClear   = "clear"
	MsgHangup  = "hangup"
	MsgMark    = "mark"
	// Lines for the supervisor console, never stored in etcd.
	MsgAssist     = "assist"
	MsgTranscript = "transcript"
	// MsgResult reports the call's disposition, summary and data.
	MsgResult = "result"
	// MsgVoicemail reports that a voicemail box answered.
	MsgVoicemail = "voicemail"
)

func encodeEvent(e Event) []byte {
	b, _ := json.Marshal(e) // a struct of strings always marshals
	return b
}

// startMessage builds the start frame from the Call.
func (g *Gateway) startMessage(call *voicev1alpha1.Call, attempt int32) StartMessage {
	m := StartMessage{
		Type:       MsgStart,
		Call:       call.Name,
		Namespace:  call.Namespace,
		Attempt:    attempt,
		From:       g.callerID(call),
		To:         call.Spec.To,
		Variables:  call.Spec.Variables,
		SampleRate: sampleRate(call),
		ListenMode: string(call.Spec.Stream.ListenMode),
	}
	if m.Variables == nil {
		m.Variables = map[string]string{}
	}
	if m.ListenMode == "" {
		m.ListenMode = string(voicev1alpha1.ListenCaller) // the CRD default
	}
	for _, a := range call.Status.Attempts {
		if a.Number == attempt {
			m.CMIUUID = a.CMIUUID
		}
	}
	return m
}

// callerID is the Piopiy number the call was placed from: what the Call
// controller recorded on the attempt, else spec.from, else --default-from.
func (g *Gateway) callerID(call *voicev1alpha1.Call) string {
	if n := len(call.Status.Attempts); n > 0 && call.Status.Attempts[n-1].From != "" {
		return call.Status.Attempts[n-1].From
	}
	if call.Spec.From != "" {
		return call.Spec.From
	}
	return g.opts.DefaultFrom
}

// sampleRate is the L16 rate of the call's stream (the CRD defaults 8000).
func sampleRate(call *voicev1alpha1.Call) int {
	switch q := int(call.Spec.Stream.VoiceQuality); q {
	case 8000, 16000, 32000:
		return q
	}
	return 8000
}
