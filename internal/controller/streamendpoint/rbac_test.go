package streamendpoint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

var rbacMarker = regexp.MustCompile(`\+kubebuilder:rbac:groups=([^,]*),resources=([^,]*),verbs=(\S+)`)

// markerRules are the rules of the +kubebuilder:rbac markers of the
// controller: what controller-gen puts in the manager's ClusterRole.
func markerRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	src, err := os.ReadFile("streamendpoint_controller.go")
	if err != nil {
		t.Fatal(err)
	}
	var rules []rbacv1.PolicyRule
	for _, m := range rbacMarker.FindAllStringSubmatch(string(src), -1) {
		groups := strings.Split(m[1], ";")
		for i, g := range groups {
			if g == "core" {
				groups[i] = ""
			}
		}
		rules = append(rules, rbacv1.PolicyRule{
			APIGroups: groups,
			Resources: strings.Split(m[2], ";"),
			Verbs:     strings.Split(m[3], ";"),
		})
	}
	if len(rules) == 0 {
		t.Fatal("no RBAC markers found")
	}
	return rules
}

// TestManagerRBACAllowsWhatTheControllerDoes runs the controller's writes as a
// user holding only the rules of its RBAC markers. Creating the gateway's Role
// and RoleBinding is where a missing rule shows: RBAC refuses to grant what
// the granter does not hold.
func TestManagerRBACAllowsWhatTheControllerDoes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	user := "callfleet-manager-" + ns
	create(t, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: markerRules(t)})
	create(t, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	})
	cfg := rest.CopyConfig(testEnv.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: testEnv.Scheme})
	if err != nil {
		t.Fatal(err)
	}

	// Reads and status writes, asked of the authorizer.
	for _, a := range []authorizationv1.ResourceAttributes{
		{Group: "voice.callfleet.dev", Resource: "streamendpoints", Verb: "watch"},
		{Group: "voice.callfleet.dev", Resource: "streamendpoints", Subresource: "status", Verb: "patch"},
		{Group: "voice.callfleet.dev", Resource: "streamendpoints", Subresource: "finalizers", Verb: "update"},
		{Group: "voice.callfleet.dev", Resource: "calls", Verb: "list"},
		{Group: "voice.callfleet.dev", Resource: "calls", Verb: "watch"},
		{Group: "apps", Resource: "deployments", Verb: "watch"},
		{Group: "", Resource: "services", Verb: "watch"},
		{Group: "", Resource: "serviceaccounts", Verb: "watch"},
		{Group: "networking.k8s.io", Resource: "ingresses", Verb: "watch"},
		{Group: "rbac.authorization.k8s.io", Resource: "roles", Verb: "watch"},
		{Group: "rbac.authorization.k8s.io", Resource: "rolebindings", Verb: "watch"},
		{Group: "events.k8s.io", Resource: "events", Verb: "create"},
		{Group: "policy", Resource: "poddisruptionbudgets", Verb: "watch"},
		{Group: "", Resource: "pods", Verb: "list"},
		{Group: "", Resource: "secrets", Verb: "create"},
		{Group: "", Resource: "secrets", Verb: "update"},
	} {
		a.Namespace = ns
		eventually(t, func() error {
			review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &a}}
			if err := c.Create(ctx, review); err != nil {
				return err
			}
			if !review.Status.Allowed {
				return fmt.Errorf("manager may not %s %s/%s %s", a.Verb, a.Group, a.Resource, a.Subresource)
			}
			return nil
		})
	}

	// Writes, done for real as that user. The endpoint exists only here, so
	// the suite's manager leaves its children alone.
	ep := managedEndpoint(ns, "rbac", func(ep *voicev1alpha1.StreamEndpoint) {
		ep.UID = types.UID("0c8d3d7e-5a43-4e4b-9d0e-7a1c2b3d4e5f")
		ep.Spec.PublicURL = "wss://bots.example.com/"
		ep.Spec.Ingress = &voicev1alpha1.IngressSpec{}
	})
	r := &Reconciler{Client: c, Scheme: testEnv.Scheme, GatewayImage: testGatewayImage}
	run := func(phases ...phase) error {
		s := &scope{endpoint: ep}
		var errs []error
		for _, p := range phases {
			if _, err := p(ctx, s); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	eventually(t, func() error {
		return run(r.reconcileGatewayAccess, r.reconcileDeployment, r.reconcileService, r.reconcileIngress)
	})
	// Updates, then deletes.
	ep.Spec.Image = "ghcr.io/example/bot:v2"
	ep.Spec.Gateway.Enabled = ptr.To(false)
	ep.Spec.Ingress = nil
	if err := run(r.reconcileGatewayAccess, r.reconcileDeployment, r.reconcileService, r.reconcileIngress); err != nil {
		t.Errorf("updating and deleting as the manager: %v", err)
	}
	if err := run(r.deleteManagedChildren); err != nil {
		t.Errorf("switching to external as the manager: %v", err)
	}
}
