package piopiy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
)

func TestStreamAudioFrame(t *testing.T) {
	audio := make([]byte, 320)
	for i := range audio {
		audio[i] = byte(i)
	}
	b, err := StreamAudioFrame(AudioRaw, 8000, audio)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"streamAudio","data":{"audioDataType":"raw","sampleRate":8000,"audioData":"` + base64.StdEncoding.EncodeToString(audio) + `"}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	// It must also be what a JSON encoder would say.
	var frame struct {
		Type string `json:"type"`
		Data struct {
			AudioDataType string `json:"audioDataType"`
			SampleRate    int    `json:"sampleRate"`
			AudioData     []byte `json:"audioData"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &frame); err != nil {
		t.Fatal(err)
	}
	if frame.Type != "streamAudio" || frame.Data.SampleRate != 8000 || !bytes.Equal(frame.Data.AudioData, audio) {
		t.Errorf("decoded %+v", frame)
	}
}

func TestAppendStreamAudioFrameReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 1024)
	b, err := AppendStreamAudioFrame(buf, AudioMP3, 16000, []byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if &b[0] != &buf[:1][0] {
		t.Error("did not append in place although the buffer had room")
	}
	b2, _ := AppendStreamAudioFrame(b, AudioWAV, 8000, []byte{4})
	if !bytes.HasPrefix(b2, b) || len(b2) <= len(b) {
		t.Error("second append lost the first frame")
	}
}

func TestStreamAudioFrameRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		typ   AudioDataType
		rate  int
		audio []byte
	}{
		{"type", "flac", 8000, []byte{0, 0}},
		{"rate", AudioRaw, 44100, []byte{0, 0}},
		{"32000: streams at it once existed, streamAudio never played it", AudioRaw, 32000, []byte{0, 0}},
		{"empty", AudioRaw, 8000, nil},
		{"odd raw", AudioRaw, 8000, []byte{0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("keep")
			b, err := AppendStreamAudioFrame(dst, tc.typ, tc.rate, tc.audio)
			if !errors.Is(err, ErrValidation) {
				t.Errorf("err = %v, want ErrValidation", err)
			}
			if string(b) != "keep" {
				t.Errorf("dst changed to %q on error", b)
			}
		})
	}
}

func TestControlFrames(t *testing.T) {
	for _, tc := range []struct {
		frame func() []byte
		want  string
	}{
		{PauseFrame, `{"action":"pause"}`},
		{ResumeFrame, `{"action":"resume"}`},
		{StopFrame, `{"action":"stop"}`},
		{BreakFrame, `{"action":"break"}`},
	} {
		b := tc.frame()
		if string(b) != tc.want {
			t.Errorf("got %s, want %s", b, tc.want)
		}
		b[0] = 'X' // callers own the slice
		if string(tc.frame()) != tc.want {
			t.Errorf("mutating one frame changed the next: %s", tc.frame())
		}
	}
}

func TestPCMOFrame(t *testing.T) {
	b, err := PCMOFrame(PCMO{Bridge(BridgeOptions{From: "918071387000", Numbers: []string{"919876543210"}})})
	if err != nil {
		t.Fatal(err)
	}
	assertGolden(t, "frame_pcmo_bridge", b)
	if _, err := PCMOFrame(PCMO{}); !errors.Is(err, ErrValidation) {
		t.Errorf("empty PCMO frame: %v", err)
	}
}

func BenchmarkStreamAudioFrame(b *testing.B) {
	audio := make([]byte, 320) // 20 ms of 8 kHz L16
	b.SetBytes(int64(len(audio)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := StreamAudioFrame(AudioRaw, 8000, audio); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendStreamAudioFrame(b *testing.B) {
	audio := make([]byte, 320)
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(audio)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendStreamAudioFrame(buf[:0], AudioRaw, 8000, audio); err != nil {
			b.Fatal(err)
		}
	}
}
