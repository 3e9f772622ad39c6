package agentpool

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// IndexPool indexes Calls by the AgentPool of their spec.handoff.
const IndexPool = "spec.handoff.agentPoolRef.name"

var registered sync.Map

// registerIndex adds IndexPool to the manager's cache once per cache.
func registerIndex(ctx context.Context, idx client.FieldIndexer) error {
	if _, done := registered.LoadOrStore(idx, true); done {
		return nil
	}
	err := idx.IndexField(ctx, &voicev1alpha1.Call{}, IndexPool, func(o client.Object) []string {
		if p := poolOf(o.(*voicev1alpha1.Call)); p != "" {
			return []string{p}
		}
		return nil
	})
	if err != nil {
		registered.Delete(idx)
		return fmt.Errorf("indexing Calls by %s: %w", IndexPool, err)
	}
	return nil
}

// poolOf is the AgentPool a Call hands off to.
func poolOf(c *voicev1alpha1.Call) string {
	if c.Spec.Handoff == nil {
		return ""
	}
	return c.Spec.Handoff.AgentPoolRef.Name
}

// callsOfPool lists the Calls handing off to a pool, from the cache.
func callsOfPool(ctx context.Context, c client.Reader, ns, pool string) ([]voicev1alpha1.Call, error) {
	var list voicev1alpha1.CallList
	if err := c.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{IndexPool: pool}); err != nil {
		return nil, err
	}
	return list.Items, nil
}

func request(ns, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}
