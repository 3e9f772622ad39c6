package piopiy

import (
	"encoding/base64"
	"fmt"
	"strconv"
)

// AudioDataType is the encoding of audio sent to Piopiy on the stream socket.
type AudioDataType string

// Audio encodings accepted in a streamAudio frame. AudioRaw is 16-bit signed
// little-endian PCM (L16), mono, at the frame's sample rate.
const (
	AudioRaw AudioDataType = "raw"
	AudioMP3 AudioDataType = "mp3"
	AudioWAV AudioDataType = "wav"
	AudioOGG AudioDataType = "ogg"
)

// Valid reports whether t is an encoding Piopiy plays.
func (t AudioDataType) Valid() bool {
	switch t {
	case AudioRaw, AudioMP3, AudioWAV, AudioOGG:
		return true
	}
	return false
}

const (
	audioFramePrefix = `{"type":"streamAudio","data":{"audioDataType":"`
	audioFrameRate   = `","sampleRate":`
	audioFrameData   = `,"audioData":"`
	audioFrameSuffix = `"}}`
)

// StreamAudioFrame builds the text frame that plays audio on the call:
//
//	{"type":"streamAudio","data":{"audioDataType":"raw","sampleRate":8000,"audioData":"<base64>"}}
//
// The sample rate must be one streamAudio plays (8000 or 16000: older docs
// let a stream run at 32000, but its audio cannot be answered), and raw
// audio must be whole 16-bit samples.
func StreamAudioFrame(dataType AudioDataType, sampleRate int, audio []byte) ([]byte, error) {
	return AppendStreamAudioFrame(nil, dataType, sampleRate, audio)
}

// AppendStreamAudioFrame is StreamAudioFrame appending to dst, so a gateway
// sending 50 frames a second per call can reuse one buffer.
func AppendStreamAudioFrame(dst []byte, dataType AudioDataType, sampleRate int, audio []byte) ([]byte, error) {
	if !dataType.Valid() {
		return dst, validationError("stream audio frame", "audio data type %q is not raw, mp3, wav or ogg", string(dataType))
	}
	if sampleRate != int(VoiceQuality8000) && sampleRate != int(VoiceQuality16000) {
		return dst, validationError("stream audio frame", "sample rate %d is not 8000 or 16000, the rates streamAudio plays", sampleRate)
	}
	if len(audio) == 0 {
		return dst, validationError("stream audio frame", "no audio")
	}
	if dataType == AudioRaw && len(audio)%2 != 0 {
		return dst, validationError("stream audio frame", "raw audio has an odd number of bytes (%d), not whole 16-bit samples", len(audio))
	}
	n := len(audioFramePrefix) + len(dataType) + len(audioFrameRate) + 6 +
		len(audioFrameData) + base64.StdEncoding.EncodedLen(len(audio)) + len(audioFrameSuffix)
	dst = grow(dst, n)
	dst = append(dst, audioFramePrefix...)
	dst = append(dst, dataType...) // validated above: no characters to escape
	dst = append(dst, audioFrameRate...)
	dst = strconv.AppendInt(dst, int64(sampleRate), 10)
	dst = append(dst, audioFrameData...)
	dst = base64.StdEncoding.AppendEncode(dst, audio)
	dst = append(dst, audioFrameSuffix...)
	return dst, nil
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}

// Control frames. Each call returns a fresh slice so a caller may keep or
// modify it.

// PauseFrame stops Piopiy sending call audio to the socket; the call goes on.
func PauseFrame() []byte { return []byte(`{"action":"pause"}`) }

// ResumeFrame resumes the audio paused by PauseFrame.
func ResumeFrame() []byte { return []byte(`{"action":"resume"}`) }

// StopFrame ends streaming for good; Piopiy closes the socket.
func StopFrame() []byte { return []byte(`{"action":"stop"}`) }

// BreakFrame interrupts audio being played to the caller (barge-in).
func BreakFrame() []byte { return []byte(`{"action":"break"}`) }

// PCMOFrame builds the text frame that runs a PCMO on the live call, such as
// a Bridge to hand the caller to a human. The PCMO is validated first.
func PCMOFrame(p PCMO) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	b, err := marshal(p)
	if err != nil {
		return nil, fmt.Errorf("piopiy: encode pcmo frame: %w", err)
	}
	return b, nil
}
