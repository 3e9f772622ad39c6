package handoff

import (
	"context"
	"fmt"
	"time"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// Bridger carries out the bridge of a Call to the agent its handoff rings
// (status.handoff agent and number, assignment n): the one step that
// differs between ways of reaching an agent. It is called on each pass while
// the handoff is Ringing and bridgeSentTime is unset, with the pass's
// working copy of the Call, whose status it may change (it is written once
// at the end of the pass); it must be idempotent per assignment.
//
// When the bridge has gone out it sets status.handoff.bridgeSentTime: from
// then on the ring timeout applies and the agent's leg, as the webhook
// receiver folds it in, decides (Bridged, or back to Requested).
type Bridger interface {
	Bridge(ctx context.Context, c *voicev1alpha1.Call, pool *voicev1alpha1.AgentPool, now time.Time) (BridgeProgress, error)
}

// BridgeProgress is how carrying out a bridge stands.
type BridgeProgress struct {
	// Failed, when set, says why the bridge cannot be carried out: the
	// handoff fails with it.
	Failed string
	// CheckAfter is when to look again while the bridge has not gone out.
	CheckAfter time.Duration
}

// GatewayBridge is the Piopiy v2 way: the stream gateway that holds the
// Call's socket sends the bridge PCMO once per assignment and records
// bridgeSentTime. It only follows the gateway, failing the handoff when no
// live stream can carry the bridge or the gateway did not send it in Wait.
type GatewayBridge struct {
	Wait time.Duration
}

// Bridge implements Bridger.
func (g GatewayBridge) Bridge(_ context.Context, c *voicev1alpha1.Call, _ *voicev1alpha1.AgentPool, now time.Time) (BridgeProgress, error) {
	h := c.Status.Handoff
	if s := c.Status.Stream; s != nil && (s.State == voicev1alpha1.StreamPhaseStopped || s.State == voicev1alpha1.StreamPhaseDisconnected) {
		return BridgeProgress{Failed: fmt.Sprintf("no live stream to send the bridge to agent %s on (stream %s)", h.Agent, s.State)}, nil
	}
	assigned := now
	if h.AgentAssignedTime != nil {
		assigned = h.AgentAssignedTime.Time
	}
	due := assigned.Add(g.Wait)
	if now.Before(due) {
		return BridgeProgress{CheckAfter: due.Sub(now)}, nil
	}
	return BridgeProgress{Failed: fmt.Sprintf("the stream gateway did not send the bridge to agent %s within %s (is the Call streaming through a callfleet gateway?)", h.Agent, g.Wait)}, nil
}
