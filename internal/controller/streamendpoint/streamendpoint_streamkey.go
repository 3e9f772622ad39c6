package streamendpoint

import (
	"bytes"
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/monitortoken"
	"github.com/callfleet/callfleet/internal/streamtoken"
)

// streamKeySecretName is the endpoint's own Secret holding the key its
// gateway verifies ws_url tokens with and, when monitoring is on, the key it
// verifies the console's monitor tokens with: each derived from its root key
// for this namespace and endpoint, so it signs nothing anywhere else.
func streamKeySecretName(ep *voicev1alpha1.StreamEndpoint) string {
	return ep.Name + "-stream-token"
}

// streamKeyData is the Secret's content: "key" derived from the root the
// manager signs with and, during a rotation, "previous" derived from the
// other root the manager was given (the gateway verifies with both).
func streamKeyData(roots streamtoken.Keys, ep *voicev1alpha1.StreamEndpoint) (map[string][]byte, error) {
	data := map[string][]byte{}
	for i, root := range roots[:min(len(roots), 2)] {
		k, err := streamtoken.DeriveKey(root, ep.Namespace, ep.Name)
		if err != nil {
			return nil, err
		}
		name := StreamTokenSecretKey
		if i == 1 {
			name = streamtoken.PreviousKeyFile
		}
		data[name] = k
	}
	return data, nil
}

// monitorKeyData is the monitor half of the Secret: MonitorTokenSecretKey
// derived from the root the console signs with and, during a rotation,
// MonitorPreviousSecretKey from the other one. No roots: none (monitoring
// off, and the gateway mounts nothing).
func monitorKeyData(roots [][]byte, ep *voicev1alpha1.StreamEndpoint) (map[string][]byte, error) {
	data := map[string][]byte{}
	for i, root := range roots[:min(len(roots), 2)] {
		k, err := monitortoken.DeriveKey(root, ep.Namespace, ep.Name)
		if err != nil {
			return nil, err
		}
		name := MonitorTokenSecretKey
		if i == 1 {
			name = MonitorPreviousSecretKey
		}
		data[name] = k
	}
	return data, nil
}

// reconcileStreamKey writes the endpoint's derived key Secret. Secrets are
// read with the API reader, never through the cache: caching Secrets would
// hold every Secret of the cluster in the manager.
func (r *Reconciler) reconcileStreamKey(ctx context.Context, s *scope) (ctrl.Result, error) {
	ep := s.endpoint
	if !gatewayEnabled(ep) {
		return ctrl.Result{}, r.deleteOwnedSecret(ctx, s)
	}
	if len(r.StreamTokenKeys) == 0 {
		return ctrl.Result{}, stalled(ReasonMissingStreamKey, "the manager has no stream token key to derive this endpoint's key from")
	}
	want, err := streamKeyData(r.StreamTokenKeys, ep)
	if err != nil {
		return ctrl.Result{}, stalled(ReasonMissingStreamKey, "deriving the endpoint's stream token key: %v", err)
	}
	mon, err := monitorKeyData(r.MonitorTokenKeys, ep)
	if err != nil {
		return ctrl.Result{}, stalled(ReasonMissingStreamKey, "deriving the endpoint's monitor token key: %v", err)
	}
	maps.Copy(want, mon)
	sec := &corev1.Secret{}
	err = r.reader().Get(ctx, client.ObjectKey{Namespace: ep.Namespace, Name: streamKeySecretName(ep)}, sec)
	switch {
	case apierrors.IsNotFound(err):
		sec = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ep.Namespace, Name: streamKeySecretName(ep), Labels: endpointLabels(ep)},
			Type:       corev1.SecretTypeOpaque,
			Data:       want,
		}
		if err := controllerutil.SetControllerReference(ep, sec, r.Scheme); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.Create(ctx, sec); err != nil {
			return ctrl.Result{}, fmt.Errorf("creating Secret %s: %w", sec.Name, err)
		}
		ctrl.LoggerFrom(ctx).Info("Created child", "kind", "Secret", "child", klog.KObj(sec))
		r.event(ep, sec, corev1.EventTypeNormal, "Created", "Create", "Created Secret %s", sec.Name)
		return ctrl.Result{}, nil
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("reading Secret %s: %w", streamKeySecretName(ep), err)
	}
	if !metav1.IsControlledBy(sec, ep) {
		return ctrl.Result{}, stalled(ReasonNameConflict, "Secret %s exists and is not owned by this StreamEndpoint; delete or rename it", sec.Name)
	}
	if maps.EqualFunc(sec.Data, want, bytes.Equal) {
		return ctrl.Result{}, nil
	}
	sec.Data = want
	sec.Labels = withEntries(sec.Labels, endpointLabels(ep))
	if err := r.Update(ctx, sec); err != nil {
		return ctrl.Result{}, fmt.Errorf("updating Secret %s: %w", sec.Name, err)
	}
	// The keys are never logged; the count says whether an overlap is on
	// (and whether monitoring is).
	ctrl.LoggerFrom(ctx).Info("Updated the endpoint's stream token keys", "child", klog.KObj(sec), "keys", len(want))
	r.event(ep, sec, corev1.EventTypeNormal, "Updated", "Update", "Updated Secret %s (%d keys)", sec.Name, len(want))
	return ctrl.Result{}, nil
}

// deleteOwnedSecret removes the key Secret of an endpoint that no longer
// runs the gateway.
func (r *Reconciler) deleteOwnedSecret(ctx context.Context, s *scope) error {
	ep := s.endpoint
	sec := &corev1.Secret{}
	if err := r.reader().Get(ctx, client.ObjectKey{Namespace: ep.Namespace, Name: streamKeySecretName(ep)}, sec); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(sec, ep) {
		return nil
	}
	uid := sec.UID
	if err := r.Delete(ctx, sec, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting Secret %s: %w", sec.Name, err)
	}
	return nil
}

func (r *Reconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}
