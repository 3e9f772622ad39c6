package sim

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// stream is the sim's client side of one stream action's WebSocket.
type stream struct {
	c      *call
	spec   streamSpec
	ctx    context.Context
	cancel context.CancelFunc
	paused atomic.Bool

	// Fixed at start from the Shapes in force.
	cmiuuid     string // what its stream events carry
	dialURL     string // ws_url as the platform dials it
	abnormalEnd bool   // the call's end drops the socket (1006), as documented
	hearPerson  bool   // listen_mode carries leg a
	hearBridged bool   // listen_mode carries the bridged party

	framesSent atomic.Int64
	bytesSent  atomic.Int64
	framesRecv atomic.Int64

	machine machineClock // where a voicemail box is in its greeting (voicemail.go)

	// under c.mu
	rec        StreamRecord
	closed     bool
	simClose   *websocket.CloseError // set when the sim closes the socket itself
	conn       *websocket.Conn
	playingEnd time.Time // when the audio queued for playing runs out (for break)
}

// maxNotes bounds the rejected/ignored notes kept per stream; a chatty
// client must not grow the sim without limit.
const maxNotes = 100

var wsDialClient = &http.Client{Transport: &http.Transport{
	Proxy: nil, // ws_url targets are local in every use of the sim
	DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &deadlineConn{Conn: c}, nil
	},
}}

// startStream dials the ws_url in the background (the platform is the client).
func (c *call) startStream(spec *streamSpec, source string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	ctx, cancel := context.WithCancel(c.ctx)
	sh := c.s.CurrentShapes()
	st := &stream{c: c, spec: *spec, ctx: ctx, cancel: cancel, cmiuuid: c.legA, dialURL: sh.dialURL(spec.WSURL), abnormalEnd: !sh.Rich}
	if sh.StreamCMIUUID == StreamCMIUUIDOwn {
		st.cmiuuid = newCMIUUID()
	}
	st.hearPerson, st.hearBridged = sh.hears(spec.ListenMode)
	st.rec = StreamRecord{WSURL: spec.WSURL, DialedURL: st.dialURL, CMIUUID: st.cmiuuid, ListenMode: spec.ListenMode, SampleRate: spec.SampleRate, OnAnswer: spec.OnAnswer, Source: source, DialedAt: time.Now()}
	c.streams = append(c.streams, st)
	c.bg.Add(1)
	go st.run()
}

func (st *stream) run() {
	c := st.c
	defer c.bg.Done()
	defer st.cancel()
	dctx, dcancel := context.WithTimeout(st.ctx, 10*time.Second)
	conn, resp, err := websocket.Dial(dctx, st.dialURL, &websocket.DialOptions{HTTPClient: wsDialClient, CompressionMode: websocket.CompressionDisabled})
	dcancel()
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		now := time.Now()
		c.mu.Lock()
		st.closed = true
		st.rec.DialError, st.rec.DisconnectedAt = err.Error(), &now
		st.rec.CloseCode, st.rec.CloseReason = int(websocket.StatusAbnormalClosure), "Abnormal closure"
		c.mu.Unlock()
		c.s.log.Info("stream dial failed", "request_id", c.id, "url", redactURL(st.dialURL), "err", err)
		failed := "disconnected" // the only documented disconnect status
		if !st.abnormalEnd {
			failed = "failed"
		}
		c.emitStream(st, "STREAM_DISCONNECTED", failed, int(websocket.StatusAbnormalClosure), "Abnormal closure")
		return
	}
	conn.SetReadLimit(16 << 20)
	now := time.Now()
	c.mu.Lock()
	st.conn = conn
	st.rec.ConnectedAt = &now
	c.mu.Unlock()
	c.emitStream(st, "stream_connected", "connected", 101, "Switching Protocols")

	// The call ending (or Close) closes the socket: documented, by dropping
	// it (the peer sees 1006); with rich shapes, with a normal closure.
	stopClose := context.AfterFunc(st.ctx, func() {
		if st.abnormalEnd {
			st.closeBySim(websocket.StatusAbnormalClosure, "Abnormal closure")
			return
		}
		st.closeBySim(websocket.StatusNormalClosure, "call ended")
	})
	defer stopClose()
	rp := c.s.audio.rates[st.spec.SampleRate]
	ss := &sendState{st: st, conn: conn, rp: rp, scratch: make([]byte, rp.frameBytes), next: time.Now().Add(FrameInterval), done: make(chan struct{})}
	if c.s.shared != nil {
		c.s.shared.add(ss)
	} else {
		go perStreamSend(ss)
	}
	readErr := st.read(conn)
	stopClose() // before cancel: a peer's close must not be mistaken for ours
	st.cancel()
	_ = conn.CloseNow()
	<-ss.done

	code, reason, by := int(websocket.StatusAbnormalClosure), "Abnormal closure", "peer"
	c.mu.Lock()
	if st.simClose != nil {
		code, reason, by = int(st.simClose.Code), closeText(st.simClose.Code, st.simClose.Reason), "sim"
	} else if ce := (websocket.CloseError{}); errors.As(readErr, &ce) {
		code, reason = int(ce.Code), closeText(ce.Code, ce.Reason)
	}
	end := time.Now()
	st.closed = true
	st.rec.DisconnectedAt, st.rec.CloseCode, st.rec.CloseReason, st.rec.ClosedBy = &end, code, reason, by
	if n := len(st.rec.Pauses); n > 0 && st.rec.Pauses[n-1].ResumedAt == nil {
		st.rec.Pauses[n-1].ResumedAt = &end
	}
	c.mu.Unlock()
	c.emitStream(st, "STREAM_DISCONNECTED", "disconnected", code, reason)
}

func closeText(code websocket.StatusCode, reason string) string {
	switch code {
	case websocket.StatusNormalClosure:
		return "Normal closure"
	case websocket.StatusGoingAway:
		return "Going away"
	case websocket.StatusAbnormalClosure:
		return "Abnormal closure"
	}
	return reason
}

// closeBySim closes the socket from the sim's side (stop, call end).
func (st *stream) closeBySim(code websocket.StatusCode, reason string) {
	st.c.mu.Lock()
	if st.simClose != nil {
		st.c.mu.Unlock()
		return
	}
	st.simClose = &websocket.CloseError{Code: code, Reason: reason}
	conn := st.conn
	st.c.mu.Unlock()
	switch {
	case conn == nil:
	case code == websocket.StatusAbnormalClosure:
		_ = conn.CloseNow() // 1006 is never sent: the connection just drops
	default:
		_ = conn.Close(code, reason)
	}
}

// frame picks frame n of what the listen_mode hears: the caller (leg a),
// the callee (a bridged agent) or both mixed. Silence before answer, on hold
// and when nobody is there.
func (st *stream) frame(rp *ratePatterns, n int64, scratch []byte) []byte {
	c := st.c
	var a, b []byte
	if st.hearPerson && c.answered.Load() && !c.held.Load() {
		if c.beh.Outcome == OutcomeVoicemail {
			a = st.machine.frame(rp, n)
		} else {
			a = rp.caller.frame(n, rp.frameBytes)
		}
	}
	if st.hearBridged {
		if ag := c.activeAgent.Load(); ag != nil && !ag.held.Load() {
			b = rp.agent.frame(n, rp.frameBytes)
		}
	}
	switch {
	case a != nil && b != nil:
		return mix(scratch, a, b)
	case a != nil:
		return a
	case b != nil:
		return b
	}
	return rp.silence
}

// read handles what the customer's server sends until the socket ends.
func (st *stream) read(conn *websocket.Conn) error {
	for {
		typ, data, err := conn.Read(context.Background())
		if err != nil {
			return err
		}
		st.framesRecv.Add(1)
		if typ != websocket.MessageText {
			st.note(false, "binary frame (only JSON text frames are read)", nil)
			continue
		}
		st.handleText(data)
	}
}

// streamAudioMsg is a text frame; only the fields Piopiy reads.
type streamAudioMsg struct {
	Type   string          `json:"type"`
	Action string          `json:"action"`
	Data   json.RawMessage `json:"data"`
}

type streamAudioData struct {
	AudioDataType string          `json:"audioDataType"`
	SampleRate    json.RawMessage `json:"sampleRate"`
	AudioData     string          `json:"audioData"`
}

func (st *stream) handleText(data []byte) {
	t := bytes.TrimSpace(data)
	if len(t) > 0 && t[0] == '[' {
		st.handlePCMO(t)
		return
	}
	var m streamAudioMsg
	if len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &m) != nil {
		st.note(false, "not a JSON object or array", data)
		return
	}
	switch {
	case m.Type == "streamAudio":
		st.handleAudio(m.Data, data)
	case m.Type == "" && m.Action != "":
		st.handleControl(m.Action, data)
	default:
		st.note(false, "unknown message", data)
	}
}

func (st *stream) handleControl(act string, raw []byte) {
	c := st.c
	now := time.Now()
	switch act {
	case "pause":
		c.mu.Lock()
		if !st.paused.Load() {
			st.paused.Store(true)
			st.rec.Pauses = append(st.rec.Pauses, Pause{PausedAt: now})
		}
		c.mu.Unlock()
	case "resume":
		c.mu.Lock()
		if st.paused.Load() {
			st.paused.Store(false)
			st.rec.Pauses[len(st.rec.Pauses)-1].ResumedAt = &now
		}
		c.mu.Unlock()
	case "stop":
		c.mu.Lock()
		st.rec.StoppedAt = &now
		c.mu.Unlock()
		// Streaming ends for good; the call itself goes on.
		go st.closeBySim(websocket.StatusNormalClosure, "stream stopped")
	case "break":
		c.mu.Lock()
		cut := st.playingEnd.Sub(now)
		if cut < 0 {
			cut = 0
		}
		st.playingEnd = now
		st.rec.Breaks = append(st.rec.Breaks, Break{At: now, CutMs: cut.Milliseconds()})
		c.mu.Unlock()
	default:
		st.note(false, fmt.Sprintf("unknown action %q", act), raw)
	}
}

func (st *stream) handleAudio(d json.RawMessage, raw []byte) {
	var a streamAudioData
	if len(d) == 0 || jsonKind(d) != "object" || json.Unmarshal(d, &a) != nil {
		st.note(true, "streamAudio: data must be an object", raw)
		return
	}
	switch a.AudioDataType {
	case "raw", "mp3", "wav", "ogg":
	default:
		st.note(true, fmt.Sprintf("streamAudio: audioDataType %q must be raw, mp3, wav or ogg", a.AudioDataType), raw)
		return
	}
	rate, err := positiveInt(a.SampleRate)
	if err != nil || (rate != 8000 && rate != 16000) {
		st.note(true, fmt.Sprintf("streamAudio: sampleRate must be the number 8000 or 16000, got %s", a.SampleRate), raw)
		return
	}
	pcm, err := base64.StdEncoding.DecodeString(a.AudioData)
	if err != nil || len(pcm) == 0 {
		st.note(true, "streamAudio: audioData is not non-empty standard base64", raw)
		return
	}
	var dur time.Duration
	switch a.AudioDataType {
	case "raw":
		if int(rate) != st.spec.SampleRate {
			st.note(true, fmt.Sprintf("streamAudio: raw sampleRate %d does not match the stream's voice_quality %d", rate, st.spec.SampleRate), raw)
			return
		}
		if len(pcm)%2 != 0 {
			st.note(true, "streamAudio: raw L16 audio has an odd number of bytes", raw)
			return
		}
		dur = time.Duration(len(pcm)/2) * time.Second / time.Duration(rate)
	case "wav":
		dur = wavDuration(pcm)
	}
	now := time.Now()
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	au := &st.rec.Audio
	au.Frames++
	au.Bytes += int64(len(pcm))
	au.PlayedMs += dur.Milliseconds()
	if au.BytesByType == nil {
		au.BytesByType = map[string]int64{}
	}
	au.BytesByType[a.AudioDataType] += int64(len(pcm))
	if !slices.Contains(au.SampleRates, int(rate)) {
		au.SampleRates = append(au.SampleRates, int(rate))
	}
	// Frames queue up behind each other, so a break can say how much it cut.
	st.playingEnd = later(st.playingEnd, now).Add(dur)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// wavDuration reads a canonical RIFF/WAVE header; 0 if it is not one.
func wavDuration(b []byte) time.Duration {
	if len(b) < 44 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return 0
	}
	byteRate := binary.LittleEndian.Uint32(b[28:32])
	if byteRate == 0 {
		return 0
	}
	return time.Duration(len(b)-44) * time.Second / time.Duration(byteRate)
}

// handlePCMO runs a PCMO array received mid-call. An invalid one is
// rejected (recorded); Piopiy sends nothing back on the socket.
func (st *stream) handlePCMO(raw []byte) {
	c := st.c
	acts, aerr := c.s.parsePCMO(raw)
	if aerr == nil {
		aerr = c.s.checkFiles(acts)
	}
	note := PCMONote{At: time.Now()}
	if aerr != nil {
		note.Error = aerr.Message
	} else {
		for _, a := range acts {
			note.Actions = append(note.Actions, a.Name)
		}
	}
	c.mu.Lock()
	st.rec.PCMOs = append(st.rec.PCMOs, note)
	c.mu.Unlock()
	if aerr != nil {
		st.note(true, "pcmo: "+aerr.Message, raw)
		return
	}
	c.runPCMOAsync(acts, "socket", nil)
}

// note records a rejected (malformed but meant for Piopiy) or ignored frame.
func (st *stream) note(rejected bool, reason string, frame []byte) {
	f := string(frame)
	if len(f) > 200 {
		f = f[:200] + "…"
	}
	n := Note{At: time.Now(), Reason: reason, Frame: strings.ToValidUTF8(f, "?")}
	st.c.mu.Lock()
	defer st.c.mu.Unlock()
	if rejected {
		if len(st.rec.Rejected) < maxNotes {
			st.rec.Rejected = append(st.rec.Rejected, n)
		}
		return
	}
	st.rec.IgnoredCount++
	if len(st.rec.Ignored) < maxNotes {
		st.rec.Ignored = append(st.rec.Ignored, n)
	}
}

// snapshotLocked copies the record; c.mu must be held.
func (st *stream) snapshotLocked() StreamRecord {
	r := st.rec
	r.FramesSent, r.BytesSent, r.FramesReceived = st.framesSent.Load(), st.bytesSent.Load(), st.framesRecv.Load()
	r.Rejected = slices.Clone(r.Rejected)
	r.Ignored = slices.Clone(r.Ignored)
	r.Pauses = slices.Clone(r.Pauses)
	r.Breaks = slices.Clone(r.Breaks)
	r.PCMOs = slices.Clone(r.PCMOs)
	r.Audio.SampleRates = slices.Clone(r.Audio.SampleRates)
	if r.Audio.BytesByType != nil {
		m := make(map[string]int64, len(r.Audio.BytesByType))
		for k, v := range r.Audio.BytesByType {
			m[k] = v
		}
		r.Audio.BytesByType = m
	}
	return r
}
