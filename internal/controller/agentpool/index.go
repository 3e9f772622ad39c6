package agentpool

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// IndexPool indexes Calls by the AgentPool of their spec.handoff.
const IndexPool = "spec.handoff.agentPoolRef.name"

var registered sync.Map

// RegisterIndex adds IndexPool to the manager's cache once per cache.
func RegisterIndex(ctx context.Context, idx client.FieldIndexer) error {
	if _, done := registered.LoadOrStore(idx, true); done {
		return nil
	}
	err := idx.IndexField(ctx, &voicev1alpha1.Call{}, IndexPool, func(o client.Object) []string {
		if p := PoolOf(o.(*voicev1alpha1.Call)); p != "" {
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

// PoolOf is the AgentPool a Call hands off to.
func PoolOf(c *voicev1alpha1.Call) string {
	if c.Spec.Handoff == nil {
		return ""
	}
	return c.Spec.Handoff.AgentPoolRef.Name
}

// CallsOfPool lists the Calls handing off to a pool, from the cache. The
// items share memory with the cache: read them, never change them.
func CallsOfPool(ctx context.Context, c client.Reader, ns, pool string) ([]voicev1alpha1.Call, error) {
	var list voicev1alpha1.CallList
	if err := c.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{IndexPool: pool}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	return list.Items, nil
}

func request(ns, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}

// handoffChanged reports whether a Call update matters to a handoff: its
// spec, its handoff, whether it is answered or over, its stream's state.
// The stream gateway's and the Call controller's other writes do not.
func handoffChanged(o, n *voicev1alpha1.Call) bool {
	return o.Generation != n.Generation || !o.DeletionTimestamp.Equal(n.DeletionTimestamp) ||
		!equality.Semantic.DeepEqual(o.Status.Handoff, n.Status.Handoff) ||
		Answered(o) != Answered(n) || CallEnded(o) != CallEnded(n) || streamPhase(o) != streamPhase(n)
}

func streamPhase(c *voicev1alpha1.Call) voicev1alpha1.StreamPhase {
	if c.Status.Stream == nil {
		return ""
	}
	return c.Status.Stream.State
}

// CallPredicate passes Calls with a handoff, and of their updates those
// that matter to it.
func CallPredicate() predicate.Predicate {
	has := func(o client.Object) bool {
		c, ok := o.(*voicev1alpha1.Call)
		return ok && (c.Spec.Handoff != nil || c.Status.Handoff != nil)
	}
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return has(e.Object) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return has(e.Object) },
		GenericFunc: func(e event.GenericEvent) bool { return has(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*voicev1alpha1.Call)
			n, ok2 := e.ObjectNew.(*voicev1alpha1.Call)
			return ok1 && ok2 && (has(o) || has(n)) && handoffChanged(o, n)
		},
	}
}
