package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// streamReport is what status.stream should say about a socket.
type streamReport struct {
	State         voicev1alpha1.StreamPhase
	Pod           string
	Attempt       int32
	Connected     time.Time
	Disconnected  *time.Time
	CloseCode     int32
	Reason        string
	Monitoring    bool
	Announcements []string
	HangupSent    bool
	VoicemailTime *time.Time // the bot reported a voicemail box (result.go)
}

func (r streamReport) clone() streamReport {
	r.Announcements = slices.Clone(r.Announcements)
	if r.Disconnected != nil {
		t := *r.Disconnected
		r.Disconnected = &t
	}
	if r.VoicemailTime != nil {
		t := *r.VoicemailTime
		r.VoicemailTime = &t
	}
	return r
}

func (r streamReport) equal(o streamReport) bool {
	return r.State == o.State && r.Pod == o.Pod && r.Attempt == o.Attempt && r.Connected.Equal(o.Connected) &&
		((r.Disconnected == nil) == (o.Disconnected == nil)) &&
		(r.Disconnected == nil || r.Disconnected.Equal(*o.Disconnected)) &&
		r.CloseCode == o.CloseCode && r.Reason == o.Reason && r.Monitoring == o.Monitoring &&
		slices.Equal(r.Announcements, o.Announcements) && r.HangupSent == o.HangupSent &&
		((r.VoicemailTime == nil) == (o.VoicemailTime == nil)) &&
		(r.VoicemailTime == nil || r.VoicemailTime.Equal(*o.VoicemailTime))
}

// streamPatch is status.stream as a JSON merge patch. Every field the
// gateway owns is written each time; an unset one is null, so a field left
// by an earlier socket of the Call (say disconnectedTime) is removed.
type streamPatch struct {
	State               voicev1alpha1.StreamPhase `json:"state"`
	Pod                 *string                   `json:"pod"`
	Attempt             *int32                    `json:"attempt"`
	ConnectedTime       *metav1.Time              `json:"connectedTime"`
	DisconnectedTime    *metav1.Time              `json:"disconnectedTime"`
	CloseCode           *int32                    `json:"closeCode"`
	Reason              *string                   `json:"reason"`
	Monitoring          *bool                     `json:"monitoring"`
	AnnouncementsPlayed []string                  `json:"announcementsPlayed"`
	HangupSent          *bool                     `json:"hangupSent"`
	VoicemailTime       *metav1.Time              `json:"voicemailTime"`
}

func nonZero[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

func (r streamReport) patch() ([]byte, error) {
	p := streamPatch{
		State:               r.State,
		Pod:                 nonZero(r.Pod),
		Attempt:             nonZero(r.Attempt),
		CloseCode:           nonZero(r.CloseCode),
		Reason:              nonZero(r.Reason),
		Monitoring:          nonZero(r.Monitoring),
		AnnouncementsPlayed: r.Announcements,
		HangupSent:          nonZero(r.HangupSent),
	}
	if !r.Connected.IsZero() {
		p.ConnectedTime = &metav1.Time{Time: r.Connected}
	}
	if r.Disconnected != nil {
		p.DisconnectedTime = &metav1.Time{Time: *r.Disconnected}
	}
	if r.VoicemailTime != nil {
		p.VoicemailTime = &metav1.Time{Time: *r.VoicemailTime}
	}
	return json.Marshal(map[string]any{"status": map[string]any{"stream": p}})
}

// syncStatus patches status.stream when the report changed since the last
// successful patch. No resourceVersion is sent: the gateway alone writes
// status.stream, and the Call controller's optimistic updates retry on the
// conflicts these patches cause.
func (s *session) syncStatus(ctx context.Context) error {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	s.mu.Lock()
	r := s.rep.clone()
	s.mu.Unlock()
	if s.wrote != nil && s.wrote.equal(r) {
		return nil
	}
	body, err := r.patch()
	if err != nil {
		return fmt.Errorf("encoding stream status: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.g.opts.ControlTimeout)
	defer cancel()
	if err := s.g.patchStatus(ctx, s.key.NamespacedName, body); err != nil {
		return fmt.Errorf("patching status.stream: %w", err)
	}
	s.wrote = &r
	return nil
}

// syncStatusRetrying is syncStatus for changes no reconcile will follow
// (those the bot made): it retries with backoff while the socket lives.
func (s *session) syncStatusRetrying(ctx context.Context) {
	backoff := 200 * time.Millisecond
	for {
		err := s.syncStatus(ctx)
		if err == nil || ignoreNotFound(err) == nil {
			return
		}
		s.log.Error(err, "writing stream status; will retry")
		select {
		case <-s.done:
			return // the close report carries everything
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// reportClosed writes the final status.stream. The Call may be gone (its
// deletion hung the call up), which is fine.
func (s *session) reportClosed(ctx context.Context, c endCause) {
	now := s.g.opts.Now()
	s.mu.Lock()
	if s.ctl.state == voicev1alpha1.StreamStopped {
		s.rep.State = voicev1alpha1.StreamPhaseStopped
		if s.rep.Reason == "" {
			s.rep.Reason = c.reason
		}
	} else {
		s.rep.State = voicev1alpha1.StreamPhaseDisconnected
		s.rep.Reason = c.reason
	}
	s.rep.Disconnected = &now
	s.rep.CloseCode = int32(c.code)
	s.rep.Monitoring = false
	s.mu.Unlock()

	// The request context may be ending with the process; the report must
	// still go out, within bounds.
	ctx = context.WithoutCancel(ctx)
	for i := 0; i < 3; i++ {
		err := s.syncStatus(ctx)
		if err == nil || ignoreNotFound(err) == nil {
			return
		}
		s.log.Error(err, "writing final stream status")
		time.Sleep(time.Duration(i+1) * 200 * time.Millisecond)
	}
}

func (g *Gateway) patchStatus(ctx context.Context, nn types.NamespacedName, body []byte) error {
	call := &voicev1alpha1.Call{}
	call.Name, call.Namespace = nn.Name, nn.Namespace
	err := g.client.Status().Patch(ctx, call, client.RawPatch(types.MergePatchType, body))
	if err != nil {
		g.metrics.statusWrite.WithLabelValues("error").Inc()
		return err
	}
	g.metrics.statusWrite.WithLabelValues("ok").Inc()
	return nil
}

// patchStatusAt is patchStatus with an optimistic lock: it fails with a
// conflict if the Call changed since resourceVersion. Handoff fields are
// shared with the Call controller, so the gateway writes them only on the
// state it checked.
func (g *Gateway) patchStatusAt(ctx context.Context, nn types.NamespacedName, resourceVersion string, status map[string]any) error {
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": resourceVersion},
		"status":   status,
	})
	if err != nil {
		return err
	}
	return g.patchStatus(ctx, nn, body)
}

// requestHandoff records a bot's handoff request in status.handoff unless a
// handoff is already under way. It returns why it did not (for the bot).
func (g *Gateway) requestHandoff(ctx context.Context, nn types.NamespacedName, reason string) (refused string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*g.opts.ControlTimeout)
	defer cancel()
	for try := 0; try < 5; try++ {
		call := &voicev1alpha1.Call{}
		if err := g.apiReader.Get(ctx, nn, call); err != nil {
			return "", err
		}
		if call.Spec.Handoff == nil {
			return "the Call has no spec.handoff (no agent pool to hand off to)", nil
		}
		if h := call.Status.Handoff; h != nil && h.Phase != "" && !handoffTerminal(h.Phase) {
			return "", nil // already under way: the bot's wish is granted
		}
		now := metav1.NewTime(g.opts.Now())
		// A new handoff: clear what an earlier one left behind.
		err := g.patchStatusAt(ctx, nn, call.ResourceVersion, map[string]any{"handoff": map[string]any{
			"phase":             voicev1alpha1.HandoffRequested,
			"source":            voicev1alpha1.HandoffSourceBot,
			"reason":            nonZero(reason),
			"requestedTime":     now,
			"agent":             nil,
			"number":            nil,
			"triedAgents":       nil,
			"agentAssignedTime": nil,
			"bridgeSentTime":    nil,
			"bridgedTime":       nil,
			"endedTime":         nil,
			"outcome":           nil,
			"onNoAgent":         nil,
			"missed":            nil,
		}})
		if apierrors.IsConflict(err) {
			continue
		}
		return "", err
	}
	return "", fmt.Errorf("requesting handoff: the Call kept changing")
}

// markBridgeSent records status.handoff.bridgeSentTime for the assignment k,
// unless the handoff has moved on to another assignment (or none) meanwhile.
func (g *Gateway) markBridgeSent(ctx context.Context, nn types.NamespacedName, k handoffKey) error {
	ctx, cancel := context.WithTimeout(ctx, 2*g.opts.ControlTimeout)
	defer cancel()
	now := metav1.NewTime(g.opts.Now())
	for try := 0; try < 5; try++ {
		call := &voicev1alpha1.Call{}
		if err := g.apiReader.Get(ctx, nn, call); err != nil {
			return ignoreNotFound(err)
		}
		h := call.Status.Handoff
		// The agent may have answered (Bridged, even Ended) before this
		// write: the bridge of this very assignment still went out then.
		live := h != nil && (h.Phase == voicev1alpha1.HandoffRinging || h.Phase == voicev1alpha1.HandoffBridged || h.Phase == voicev1alpha1.HandoffEnded)
		if !live || keyOf(h) != k || h.BridgeSentTime != nil {
			return nil
		}
		err := g.patchStatusAt(ctx, nn, call.ResourceVersion, map[string]any{"handoff": map[string]any{"bridgeSentTime": now}})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("recording bridgeSentTime: %w", err)
		}
		return nil
	}
	return fmt.Errorf("recording bridgeSentTime: the Call kept changing")
}

// ringTimeout is how long the bridge rings the agent: the AgentPool's
// ringTimeoutSeconds when the gateway may read it (an optional Role rule),
// else DefaultBridgeTimeoutSeconds.
func (g *Gateway) ringTimeout(ctx context.Context, call *voicev1alpha1.Call) int {
	if call.Spec.Handoff == nil || call.Spec.Handoff.AgentPoolRef.Name == "" {
		return DefaultBridgeTimeoutSeconds
	}
	pool := &voicev1alpha1.AgentPool{}
	err := g.apiReader.Get(ctx, types.NamespacedName{Namespace: call.Namespace, Name: call.Spec.Handoff.AgentPoolRef.Name}, pool)
	if err != nil || pool.Spec.RingTimeoutSeconds <= 0 {
		return DefaultBridgeTimeoutSeconds
	}
	return int(pool.Spec.RingTimeoutSeconds)
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
