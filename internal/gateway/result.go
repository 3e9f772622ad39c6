package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// Bounds of a reported result: what status.result's schema allows, so a
// report is cut to fit instead of being refused by the apiserver mid-call.
const (
	maxDisposition = 63
	maxSummary     = 1024 // bytes; never more runes than that
	maxDataPairs   = 16
	maxDataKey     = 63
	maxDataValue   = 256
)

// boundResult turns a bot's result message into a CallResult that fits
// status.result, and names the fields it had to cut.
func boundResult(m BotMessage) (voicev1alpha1.CallResult, []string) {
	var cut []string
	r := voicev1alpha1.CallResult{}

	d := strings.Map(func(c rune) rune {
		if c < utf8.RuneSelf && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return c
		}
		return '_'
	}, m.Disposition)
	d = strings.TrimLeft(d, "_.-") // the schema wants a letter or digit first
	if len(d) > maxDisposition {
		d = d[:maxDisposition]
	}
	if d != m.Disposition {
		cut = append(cut, "disposition")
	}
	r.Disposition = d

	if r.Summary = truncateUTF8(m.Summary, maxSummary); r.Summary != m.Summary {
		cut = append(cut, "summary")
	}

	if len(m.Data) > 0 {
		keys := make([]string, 0, len(m.Data))
		for k := range m.Data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dataCut := len(keys) > maxDataPairs
		r.Data = make(map[string]string, min(len(keys), maxDataPairs))
		for _, k := range keys[:min(len(keys), maxDataPairs)] {
			v := m.Data[k]
			bk, bv := truncateUTF8(k, maxDataKey), truncateUTF8(v, maxDataValue)
			if bk != k || bv != v {
				dataCut = true
			}
			if bk == "" {
				continue
			}
			r.Data[bk] = bv
		}
		if dataCut {
			cut = append(cut, "data")
		}
	}
	return r, cut
}

// truncateUTF8 cuts s to at most n bytes of valid UTF-8, on a rune boundary.
func truncateUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// resultWriter writes a session's latest result report. Reports that arrive
// while a write is in flight replace each other: only the last is written,
// so a chatty bot costs one status write at a time, never a queue.
type resultWriter struct {
	mu      sync.Mutex
	pending *voicev1alpha1.CallResult
	running bool
}

// reportResult records a bot's result message on the Call.
func (s *session) reportResult(ctx context.Context, m BotMessage) {
	r, cut := boundResult(m)
	for _, f := range cut {
		s.g.metrics.truncated.WithLabelValues(f).Inc()
	}
	if len(cut) > 0 {
		s.log.Info("bot result cut to fit status.result", "fields", cut)
	}
	now := metav1.NewTime(s.g.opts.Now())
	r.ReportedAt, r.ReportedBy = &now, voicev1alpha1.ReportedByBot

	w := &s.results
	w.mu.Lock()
	w.pending = &r
	start := !w.running
	w.running = true
	w.mu.Unlock()
	if start {
		// The report must land even when the bot hangs up right after it.
		go s.writeResults(context.WithoutCancel(ctx))
	}
}

func (s *session) writeResults(ctx context.Context) {
	w := &s.results
	backoff := 200 * time.Millisecond
	tries := 0
	for {
		w.mu.Lock()
		r := w.pending
		if r == nil {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.pending = nil
		w.mu.Unlock()

		err := s.g.writeResult(ctx, s.key.NamespacedName, r)
		if err == nil || ignoreNotFound(err) == nil {
			tries, backoff = 0, 200*time.Millisecond
			continue
		}
		tries++
		s.log.Error(err, "writing status.result", "try", tries)
		w.mu.Lock()
		if w.pending == nil && tries < 8 {
			w.pending = r // retry unless a newer report replaced it
		}
		w.mu.Unlock()
		time.Sleep(backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
}

// writeResult replaces status.result in one patch. A JSON patch "add"
// replaces the whole value, so keys of an earlier report's data go too (a
// merge patch would keep them).
func (g *Gateway) writeResult(ctx context.Context, nn types.NamespacedName, r *voicev1alpha1.CallResult) error {
	body, err := json.Marshal([]map[string]any{{"op": "add", "path": "/status/result", "value": r}})
	if err != nil {
		return fmt.Errorf("encoding status.result: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, g.opts.ControlTimeout)
	defer cancel()
	call := &voicev1alpha1.Call{}
	call.Name, call.Namespace = nn.Name, nn.Namespace
	if err := g.client.Status().Patch(ctx, call, client.RawPatch(types.JSONPatchType, body)); err != nil {
		g.metrics.statusWrite.WithLabelValues("error").Inc()
		return err
	}
	g.metrics.statusWrite.WithLabelValues("ok").Inc()
	return nil
}

// onVoicemail acts on the bot's report that a voicemail box answered: it
// records status.stream.voicemailTime (which makes the attempt's outcome
// Voicemail) before anything ends the call, then, as spec.voicemail says,
// leaves the message (a PCMO play, then hangup) or just hangs up.
func (s *session) onVoicemail(ctx context.Context) {
	s.mu.Lock()
	if s.rep.VoicemailTime != nil {
		s.mu.Unlock()
		return // reported already
	}
	now := s.g.opts.Now()
	s.rep.VoicemailTime = &now
	s.mu.Unlock()
	s.log.Info("bot reported a voicemail box")

	// The CDR that follows the hangup is folded into the outcome only with
	// voicemailTime stored, so the hangup waits for the write (bounded).
	for try := 0; try < 5; try++ {
		err := s.syncStatus(ctx)
		if err == nil || ignoreNotFound(err) == nil {
			break
		}
		s.log.Error(err, "recording voicemail; will retry")
		time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
	}

	call := &voicev1alpha1.Call{}
	policy := voicev1alpha1.VoicemailPolicy{Action: voicev1alpha1.VoicemailHangup}
	if err := s.g.client.Get(ctx, s.key.NamespacedName, call); err == nil && call.Spec.Voicemail != nil {
		policy = *call.Spec.Voicemail
	}

	s.mu.Lock()
	var err error
	if !s.ctl.hangupSent {
		err = s.leaveVoicemailLocked(ctx, policy)
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Error(err, "ending a voicemail call")
		return
	}
	s.syncStatusRetrying(ctx)
}

// leaveVoicemailLocked plays the message (when asked) and hangs up, in one
// PCMO so Piopiy hangs up only after the play.
func (s *session) leaveVoicemailLocked(ctx context.Context, p voicev1alpha1.VoicemailPolicy) error {
	if p.Action != voicev1alpha1.VoicemailLeaveMessage || p.AudioURL == "" {
		return s.hangupLocked(ctx)
	}
	b, err := piopiy.PCMOFrame(piopiy.PCMO{piopiy.PlayURL(p.AudioURL), piopiy.Hangup()})
	if err != nil {
		s.log.Error(err, "voicemail message cannot be played; hanging up")
		return s.hangupLocked(ctx)
	}
	if err := s.send(ctx, "play", b); err != nil {
		return err
	}
	s.g.metrics.control.WithLabelValues("hangup").Inc()
	s.ctl.hangupSent = true
	s.rep.HangupSent = true
	s.log.Info("voicemail message left; hangup sent")
	return nil
}

// voicemailOf is the voicemail time an earlier socket of the same attempt
// recorded, so a reconnect does not erase it.
func voicemailOf(call *voicev1alpha1.Call, attempt int32) *time.Time {
	st := call.Status.Stream
	if st == nil || st.VoicemailTime == nil {
		return nil
	}
	for _, a := range call.Status.Attempts {
		if a.Number == attempt && !st.VoicemailTime.Before(&a.IntentTime) {
			t := st.VoicemailTime.Time
			return &t
		}
	}
	return nil
}
