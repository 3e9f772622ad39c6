package gateway

import (
	"context"

	"k8s.io/apimachinery/pkg/types"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// applyHold plays the AgentPool's queue.holdAudioURL once when the Call's
// handoff becomes Queued: a PCMO play on the live socket, like an
// announcement. s.mu is held.
func (s *session) applyHold(ctx context.Context, call *voicev1alpha1.Call) error {
	h := call.Status.Handoff
	if h.Phase != voicev1alpha1.HandoffQueued || s.ctl.state == voicev1alpha1.StreamStopped || call.Spec.Handoff == nil {
		return nil
	}
	key := "queued" // one handoff is queued once: keyed by its request
	if h.RequestedTime != nil {
		key += "@" + h.RequestedTime.UTC().String()
	}
	if s.ctl.held == key {
		return nil
	}
	url := s.g.holdAudioURL(ctx, call)
	s.ctl.held = key // one try per queued handoff, whatever the outcome
	if url == "" {
		return nil
	}
	b, err := piopiy.PCMOFrame(piopiy.PCMO{piopiy.PlayURL(url)})
	if err != nil {
		s.log.Error(err, "hold audio cannot be played", "url", url)
		return nil
	}
	if err := s.send(ctx, "play", b); err != nil {
		return err
	}
	s.log.Info("hold audio played while queued")
	return nil
}

// holdAudioURL is the Call's AgentPool's spec.queue.holdAudioURL, when the
// gateway may read the pool (an optional Role rule).
func (g *Gateway) holdAudioURL(ctx context.Context, call *voicev1alpha1.Call) string {
	if call.Spec.Handoff.AgentPoolRef.Name == "" {
		return ""
	}
	pool := &voicev1alpha1.AgentPool{}
	if err := g.apiReader.Get(ctx, types.NamespacedName{Namespace: call.Namespace, Name: call.Spec.Handoff.AgentPoolRef.Name}, pool); err != nil {
		return ""
	}
	return pool.Spec.Queue.HoldAudioURL
}
