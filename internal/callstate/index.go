package callstate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// ConflictBackoff is how writers of a Call's status retry conflicts: the
// webhook receiver, the Call controller, the handoff controller and the
// gateway all write it, so conflicts are normal under load, and giving up
// costs a redelivery (receiver) or a needless settle (controller). It spreads
// ten tries over about a second.
var ConflictBackoff = wait.Backoff{Steps: 10, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 0.2}

// IndexEndpoint indexes Calls by the StreamEndpoint they stream to.
const IndexEndpoint = "spec.streamEndpointRef.name"

// registered remembers the indexers RegisterIndexes has run on: several
// controllers need the same indexes and a cache refuses a second registration.
var registered sync.Map

// RegisterIndexes adds every Call field index callfleet uses to the
// manager's cache. It is safe to call from each controller's setup.
func RegisterIndexes(ctx context.Context, idx client.FieldIndexer) error {
	if _, done := registered.LoadOrStore(idx, true); done {
		return nil
	}
	byCall := func(f func(*voicev1alpha1.Call) []string) client.IndexerFunc {
		return func(o client.Object) []string { return f(o.(*voicev1alpha1.Call)) }
	}
	for name, f := range map[string]func(*voicev1alpha1.Call) []string{
		IndexRequestID: RequestIDs,
		IndexAttemptID: AttemptIDs,
		IndexCMIUUID:   CMIUUIDs,
		IndexEndpoint:  EndpointName,
	} {
		if err := idx.IndexField(ctx, &voicev1alpha1.Call{}, name, byCall(f)); err != nil {
			registered.Delete(idx)
			return fmt.Errorf("indexing Calls by %s: %w", name, err)
		}
	}
	return nil
}

// EndpointName returns the index value of IndexEndpoint.
func EndpointName(c *voicev1alpha1.Call) []string {
	if c.Spec.StreamEndpointRef == nil {
		return nil
	}
	return []string{c.Spec.StreamEndpointRef.Name}
}
