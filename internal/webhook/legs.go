package webhook

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/callstate"
)

// findByLeg locates the Call of an event that names only its leg, as the
// documented stream events do, by the cmiuuid an earlier event of the call
// recorded (see callstate.IndexCMIUUID for what that can and cannot find).
//
// That earlier event's status write may not be in the cache yet (Piopiy
// sends stream_connected right after out_answered), so a miss is asked
// again until CacheWait. A leg no Call recorded is not ours, or its stream
// carries an id of its own; it is answered "ignored".
func (rc *Receiver) findByLeg(ctx context.Context, cmiuuid string) (types.NamespacedName, bool, error) {
	deadline := time.Now().Add(rc.CacheWait)
	for {
		var calls voicev1alpha1.CallList
		if err := rc.Client.List(ctx, &calls, client.MatchingFields{callstate.IndexCMIUUID: cmiuuid}); err != nil {
			return types.NamespacedName{}, false, fmt.Errorf("looking up Call by %s: %w", callstate.IndexCMIUUID, err)
		}
		if len(calls.Items) > 0 {
			return client.ObjectKeyFromObject(&calls.Items[0]), true, nil
		}
		if time.Now().After(deadline) {
			return types.NamespacedName{}, false, nil
		}
		select {
		case <-ctx.Done():
			return types.NamespacedName{}, false, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
