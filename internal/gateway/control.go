package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/coder/websocket"
	"k8s.io/apimachinery/pkg/types"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// controlState is what this socket has already been told, so each change of
// the Call turns into exactly one frame however many times (and with
// whatever cache lag) it is reconciled. Status is a report of it, never the
// source of it.
type controlState struct {
	state      voicev1alpha1.StreamState // asked of Piopiy: Active, Paused or Stopped
	played     map[string]bool           // announcements sent (or played by an earlier socket)
	order      []string                  // played, in order
	skipped    map[string]bool           // announcements that can never be sent (logged once)
	hangupSent bool
	bridges    map[string]bool // handoff bridges sent, by agent number and assignment
	bridged    string          // handoff key the bot was told is bridged
	handoffOn  bool            // a handoff started while this socket was up
	held       string          // the queued handoff hold audio was tried for
	botStopped bool            // the bot got its stop event
}

func newControlState(call *voicev1alpha1.Call) controlState {
	c := controlState{
		state:   voicev1alpha1.StreamActive,
		played:  map[string]bool{},
		skipped: map[string]bool{},
		bridges: map[string]bool{},
	}
	// Announcements play at most once per Call, across sockets and pods.
	if st := call.Status.Stream; st != nil {
		for _, n := range st.AnnouncementsPlayed {
			if !c.played[n] {
				c.played[n] = true
				c.order = append(c.order, n)
			}
		}
	}
	return c
}

func (c *controlState) playedList() []string { return append([]string(nil), c.order...) }

// stopGrace is how long Piopiy has to close the socket after a stop.
const stopGrace = 5 * time.Second

// Pre-built control frames: sending one is then just a write.
var (
	framePause  = piopiy.PauseFrame()
	frameResume = piopiy.ResumeFrame()
	frameStop   = piopiy.StopFrame()
	frameBreak  = piopiy.BreakFrame()
	frameHangup = mustPCMO(piopiy.PCMO{piopiy.Hangup()})
)

func mustPCMO(p piopiy.PCMO) []byte {
	b, err := piopiy.PCMOFrame(p)
	if err != nil {
		panic(err)
	}
	return b
}

// send writes a control frame to Piopiy.
func (s *session) send(ctx context.Context, action string, b []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.g.opts.ControlTimeout)
	defer cancel()
	if err := s.platform.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("sending %s: %w", action, err)
	}
	s.g.metrics.control.WithLabelValues(action).Inc()
	s.log.V(1).Info("control frame sent", "action", action)
	return nil
}

func (s *session) event(e Event) { s.toBot.pushEvent(encodeEvent(e)) }

// apply turns the Call's desired state into frames this socket has not had
// yet, then reports in status.stream (one patch for all of it).
func (s *session) apply(ctx context.Context, call *voicev1alpha1.Call) error {
	var errs []error
	var bridgeSent *handoffKey
	s.mu.Lock()
	if !s.ended() {
		errs = append(errs, s.applyAnnouncements(ctx, call))
		var err error
		bridgeSent, err = s.applyHandoff(ctx, call)
		errs = append(errs, err)
		errs = append(errs, s.applyState(ctx, call))
		if call.Spec.Hangup && !s.ctl.hangupSent {
			errs = append(errs, s.hangupLocked(ctx))
		}
	}
	s.mu.Unlock()
	if bridgeSent != nil {
		errs = append(errs, s.g.markBridgeSent(ctx, s.key.NamespacedName, *bridgeSent))
	}
	errs = append(errs, s.syncStatus(ctx))
	return errors.Join(errs...)
}

func (s *session) applyAnnouncements(ctx context.Context, call *voicev1alpha1.Call) error {
	if s.ctl.state == voicev1alpha1.StreamStopped {
		return nil
	}
	for _, a := range call.Spec.Announcements {
		if s.ctl.played[a.Name] || s.ctl.skipped[a.Name] {
			continue
		}
		act := piopiy.PlayFile(a.FileName)
		if a.URL != "" {
			act = piopiy.PlayURL(a.URL)
		}
		b, err := piopiy.PCMOFrame(piopiy.PCMO{act})
		if err != nil {
			// The CRD validates announcements; one that still fails would
			// fail forever, so it is skipped, not retried.
			s.ctl.skipped[a.Name] = true
			s.log.Error(err, "announcement cannot be played", "announcement", a.Name)
			continue
		}
		if err := s.send(ctx, "play", b); err != nil {
			return err
		}
		s.ctl.played[a.Name] = true
		s.ctl.order = append(s.ctl.order, a.Name)
		s.rep.Announcements = s.ctl.playedList()
	}
	return nil
}

// applyState sends pause, resume or stop when spec.stream.state changes.
func (s *session) applyState(ctx context.Context, call *voicev1alpha1.Call) error {
	want := call.Spec.Stream.State
	if want == "" {
		want = voicev1alpha1.StreamActive
	}
	if want == s.ctl.state || s.ctl.state == voicev1alpha1.StreamStopped {
		return nil // Stopped is final: Piopiy cannot resume a stopped stream
	}
	switch want {
	case voicev1alpha1.StreamStopped:
		return s.stopLocked(ctx, "stopped by spec.stream.state")
	case voicev1alpha1.StreamPaused:
		if err := s.send(ctx, "pause", framePause); err != nil {
			return err
		}
		s.ctl.state = voicev1alpha1.StreamPaused
		s.rep.State = voicev1alpha1.StreamPhasePaused
		s.event(Event{Type: MsgPaused})
	case voicev1alpha1.StreamActive:
		if err := s.send(ctx, "resume", frameResume); err != nil {
			return err
		}
		s.ctl.state = voicev1alpha1.StreamActive
		s.rep.State = voicev1alpha1.StreamPhaseConnected
		s.event(Event{Type: MsgResumed})
	}
	return nil
}

// stopLocked ends streaming for good; Piopiy then closes the socket.
func (s *session) stopLocked(ctx context.Context, reason string) error {
	if err := s.send(ctx, "stop", frameStop); err != nil {
		return err
	}
	s.stopSent.Store(true)
	// Piopiy closes the socket after a stop; if it does not, the gateway
	// does, rather than holding a socket nobody uses until the call ends.
	time.AfterFunc(stopGrace, func() {
		s.finish(endCause{by: endedByPlatform, code: websocket.StatusNormalClosure, reason: reason, closePlatform: true})
	})
	s.ctl.state = voicev1alpha1.StreamStopped
	s.rep.State = voicev1alpha1.StreamPhaseStopped
	s.rep.Reason = reason
	s.rep.Monitoring = false
	if !s.ctl.botStopped {
		s.ctl.botStopped = true
		s.event(Event{Type: MsgStop, Reason: reason})
	}
	return nil
}

func (s *session) hangupLocked(ctx context.Context) error {
	if err := s.send(ctx, "hangup", frameHangup); err != nil {
		return err
	}
	s.ctl.hangupSent = true
	s.rep.HangupSent = true
	return nil
}

// handoffKey identifies one agent assignment of a Call's handoffs: the
// controller counts them in status.handoff.assignment.
type handoffKey struct {
	number     string
	assignment int32
}

func (k handoffKey) String() string { return fmt.Sprintf("%s#%d", k.number, k.assignment) }

func keyOf(h *voicev1alpha1.CallHandoffStatus) handoffKey {
	return handoffKey{number: h.Number, assignment: h.Assignment}
}

func handoffTerminal(p voicev1alpha1.HandoffPhase) bool {
	switch p {
	case voicev1alpha1.HandoffEnded, voicev1alpha1.HandoffTimedOut, voicev1alpha1.HandoffFailed:
		return true
	}
	return false
}

// applyHandoff sends the bridge when the controller has an agent ringing,
// and follows the bridge's outcome. It returns the key of a bridge just
// sent, whose bridgeSentTime the caller records once s.mu is released.
func (s *session) applyHandoff(ctx context.Context, call *voicev1alpha1.Call) (*handoffKey, error) {
	h := call.Status.Handoff
	if h == nil || h.Phase == "" {
		return nil, nil
	}
	if !handoffTerminal(h.Phase) {
		s.ctl.handoffOn = true
	}
	k := keyOf(h)
	switch h.Phase {
	case voicev1alpha1.HandoffQueued:
		return nil, s.applyHold(ctx, call)
	case voicev1alpha1.HandoffRinging:
		if h.Number == "" || h.BridgeSentTime != nil || s.ctl.bridges[k.String()] || s.ctl.state == voicev1alpha1.StreamStopped {
			return nil, nil
		}
		from := s.g.callerID(call)
		if from == "" {
			s.ctl.bridges[k.String()] = true // would fail the same way every time
			s.rep.Reason = "handoff bridge not sent: the Call has no spec.from and the gateway no --default-from"
			s.log.Error(nil, "handoff bridge not sent: no caller id", "agent", h.Agent)
			return nil, nil
		}
		b, err := piopiy.PCMOFrame(piopiy.PCMO{piopiy.Bridge(piopiy.BridgeOptions{
			From:           from,
			Numbers:        []string{h.Number},
			TimeoutSeconds: s.g.ringTimeout(ctx, call),
		})})
		if err != nil {
			s.ctl.bridges[k.String()] = true
			s.rep.Reason = "handoff bridge not sent: " + err.Error()
			s.log.Error(err, "handoff bridge not sent", "agent", h.Agent)
			return nil, nil
		}
		if err := s.send(ctx, "bridge", b); err != nil {
			return nil, err
		}
		s.ctl.bridges[k.String()] = true
		s.log.Info("handoff bridge sent", "agent", h.Agent)
		return &k, nil
	case voicev1alpha1.HandoffBridged:
		if s.ctl.bridged == k.String() {
			return nil, nil
		}
		s.ctl.bridged = k.String()
		s.event(Event{Type: MsgHandoff, Phase: string(h.Phase), Agent: h.Agent, Number: h.Number})
		who := h.Agent
		if who == "" {
			who = h.Number
		}
		if call.Spec.Handoff != nil && call.Spec.Handoff.KeepStreaming {
			s.rep.Monitoring = true
			s.rep.Reason = "kept for monitoring after handoff to " + who
			return nil, nil
		}
		return nil, s.stopLocked(ctx, "stopped after handoff to "+who)
	default:
		if handoffTerminal(h.Phase) && s.ctl.handoffOn {
			// Tell the bot once that the human did not (or no longer) take
			// the call: with onNoAgent ReturnToBot it is the bot's turn again.
			s.ctl.handoffOn = false
			s.rep.Monitoring = false
			s.event(Event{Type: MsgHandoff, Phase: string(h.Phase), Agent: h.Agent, Number: h.Number, Reason: h.Reason})
		}
	}
	return nil, nil
}

// onBotMessage acts on a JSON frame from the bot. It runs on the bot reader,
// so slow work (API calls) goes to the background.
func (s *session) onBotMessage(ctx context.Context, raw []byte) {
	var msg BotMessage
	if err := json.Unmarshal(raw, &msg); err != nil {
		s.g.metrics.botEvents.WithLabelValues("unknown").Inc()
		s.log.V(1).Info("ignoring bot frame that is not JSON")
		return
	}
	switch msg.Type {
	case MsgClear, MsgMark, MsgHangup, MsgHandoff, MsgAssist, MsgTranscript, MsgResult, MsgVoicemail:
		s.g.metrics.botEvents.WithLabelValues(msg.Type).Inc()
	default:
		s.g.metrics.botEvents.WithLabelValues("unknown").Inc()
		s.log.V(1).Info("ignoring unknown bot message", "type", msg.Type)
		return
	}
	switch msg.Type {
	case MsgClear:
		if !s.stopSent.Load() {
			if err := s.send(ctx, "break", frameBreak); err != nil {
				s.log.Error(err, "barge-in")
			}
		}
	case MsgMark:
		// Audio the bot sent before the mark has been written to Piopiy by
		// now (this goroutine writes it in order), so the mark goes straight
		// back. raw is a reused buffer: copy it.
		if !s.toBot.pushEcho(append([]byte(nil), raw...)) {
			s.g.metrics.botEvents.WithLabelValues("mark_dropped").Inc()
		}
	case MsgHangup:
		s.mu.Lock()
		var err error
		first := !s.ctl.hangupSent
		if first {
			err = s.hangupLocked(ctx)
		}
		s.mu.Unlock()
		if err != nil {
			s.log.Error(err, "bot hangup")
			return
		}
		if !first {
			return // one status sync per hangup, however often the bot asks
		}
		s.log.Info("bot hung up the call")
		go s.syncStatusRetrying(ctx)
	case MsgHandoff:
		// One request in flight per stream: a bot repeating itself must not
		// start a goroutine and an API read per message.
		if !s.handoffBusy.CompareAndSwap(false, true) {
			s.g.metrics.botEvents.WithLabelValues("handoff_ignored").Inc()
			return
		}
		go func() {
			defer s.handoffBusy.Store(false)
			s.requestHandoff(ctx, msg.Reason)
		}()
	case MsgAssist, MsgTranscript:
		s.monitorLine(msg)
	case MsgResult:
		s.reportResult(ctx, msg)
	case MsgVoicemail:
		go s.onVoicemail(ctx)
	}
}

// requestHandoff asks the controller for a human, as the bot wants.
func (s *session) requestHandoff(ctx context.Context, reason string) {
	refused, err := s.g.requestHandoff(ctx, s.key.NamespacedName, reason)
	switch {
	case err != nil:
		s.log.Error(err, "requesting handoff")
		s.event(Event{Type: MsgHandoff, Phase: string(voicev1alpha1.HandoffFailed), Reason: "the gateway could not record the request"})
	case refused != "":
		s.log.Info("bot handoff not requested", "why", refused)
		s.event(Event{Type: MsgHandoff, Phase: string(voicev1alpha1.HandoffFailed), Reason: refused})
	default:
		s.log.Info("bot requested a handoff")
		s.mu.Lock()
		s.ctl.handoffOn = true
		s.mu.Unlock()
	}
}

// callReconciler applies Call changes to the sockets this pod holds.
type callReconciler struct{ g *Gateway }

func (r callReconciler) reconcile(ctx context.Context, nn types.NamespacedName) error {
	g := r.g
	sessions := g.reg.forCall(nn)
	if len(sessions) == 0 {
		return nil
	}
	call := &voicev1alpha1.Call{}
	if err := g.client.Get(ctx, nn, call); err != nil {
		return ignoreNotFound(err) // deleted: the manager's finalizer hangs up
	}
	var errs []error
	cur := currentAttempt(call)
	for _, s := range sessions {
		if s.key.Attempt == cur {
			errs = append(errs, s.apply(ctx, call))
		}
	}
	return errors.Join(errs...)
}
