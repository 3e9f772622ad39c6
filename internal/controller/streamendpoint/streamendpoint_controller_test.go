package streamendpoint

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/streamtoken"
)

func container(spec corev1.PodSpec, name string) *corev1.Container {
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	return nil
}

func envValue(c *corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func waitForDeployment(t *testing.T, ns, name string, ok func(*appsv1.Deployment) error) *appsv1.Deployment {
	t.Helper()
	dep := &appsv1.Deployment{}
	eventually(t, func() error {
		if err := k8s.Get(context.Background(), key(ns, name), dep); err != nil {
			return err
		}
		if ok == nil {
			return nil
		}
		return ok(dep)
	})
	return dep
}

func waitForEvent(t *testing.T, ns, regarding, reason string) *eventsv1.Event {
	t.Helper()
	var found *eventsv1.Event
	eventually(t, func() error {
		var list eventsv1.EventList
		if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		var seen []string
		for i := range list.Items {
			e := &list.Items[i]
			if e.Regarding.Name == regarding && e.Reason == reason {
				found = e
				return nil
			}
			seen = append(seen, e.Regarding.Name+"/"+e.Reason)
		}
		return fmt.Errorf("no %s event for %s; events: %v", reason, regarding, seen)
	})
	return found
}

func TestDeploymentRunsBotAndGateway(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ep := managedEndpoint(ns, "support-bot", func(ep *voicev1alpha1.StreamEndpoint) {
		ep.Spec.Replicas = ptr.To[int32](3)
		ep.Spec.Port = 9000
		ep.Spec.Env = []corev1.EnvVar{{Name: "MODEL", Value: "small"}}
		ep.Spec.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("512Mi"),
		}}
		ep.Spec.Audio = voicev1alpha1.AudioDefaults{SampleRate: 16000, ListenMode: voicev1alpha1.ListenBoth}
		ep.Spec.Gateway.Port = 8500
	})
	create(t, ep)
	dep := waitForDeployment(t, ns, "support-bot", nil)

	wantLabels := map[string]string{
		"app.kubernetes.io/name":              "callfleet-stream-endpoint",
		"app.kubernetes.io/instance":          "support-bot",
		"app.kubernetes.io/managed-by":        "callfleet",
		"voice.callfleet.dev/stream-endpoint": "support-bot",
	}
	var problems []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for k, v := range wantLabels {
		check(dep.Labels[k] == v, "Deployment label %s=%q, want %q", k, dep.Labels[k], v)
		check(dep.Spec.Template.Labels[k] == v, "pod label %s=%q, want %q", k, dep.Spec.Template.Labels[k], v)
	}
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	check(err == nil, "selector: %v", err)
	check(err == nil && sel.Matches(labels.Set(dep.Spec.Template.Labels)), "selector %v does not match the pod labels", dep.Spec.Selector)
	check(ptr.Deref(dep.Spec.Replicas, 0) == 3, "replicas %v, want 3", dep.Spec.Replicas)

	pod := dep.Spec.Template.Spec
	check(len(pod.Containers) == 2, "containers: %d, want bot and gateway", len(pod.Containers))
	check(pod.ServiceAccountName == "support-bot-gateway", "serviceAccountName %q", pod.ServiceAccountName)
	check(pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken, "pod automountServiceAccountToken %v, want false", pod.AutomountServiceAccountToken)

	bot := container(pod, ContainerBot)
	if bot == nil {
		t.Fatalf("no bot container in %+v", pod.Containers)
	}
	check(bot.Image == "ghcr.io/example/bot:v1", "bot image %q", bot.Image)
	check(reflect.DeepEqual(bot.Ports, []corev1.ContainerPort{{Name: "bot", ContainerPort: 9000, Protocol: corev1.ProtocolTCP}}), "bot ports %+v", bot.Ports)
	for name, want := range map[string]string{"CALLFLEET_SAMPLE_RATE": "16000", "CALLFLEET_LISTEN_MODE": "both", "MODEL": "small"} {
		got, ok := envValue(bot, name)
		check(ok && got == want, "bot env %s=%q (set: %v), want %q", name, got, ok, want)
	}
	check(equality.Semantic.DeepEqual(bot.Resources, ep.Spec.Resources), "bot resources %+v, want %+v", bot.Resources, ep.Spec.Resources)
	check(slices.ContainsFunc(bot.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" && m.Name == "tmp" }), "bot has no /tmp mount: %+v", bot.VolumeMounts)
	check(len(bot.VolumeMounts) == 1, "bot mounts more than /tmp (credentials are the gateway's): %+v", bot.VolumeMounts)

	gw := container(pod, ContainerGateway)
	if gw == nil {
		t.Fatalf("no gateway container in %+v", pod.Containers)
	}
	check(gw.Image == testGatewayImage, "gateway image %q, want the manager's %q", gw.Image, testGatewayImage)
	wantArgs := []string{
		"--listen=:8500",
		"--bot-url=ws://127.0.0.1:9000/",
		"--endpoint=support-bot",
		"--namespace=" + ns,
		"--token-key-file=/var/run/callfleet/stream-token/key",
		"--pod-name=$(POD_NAME)",
		"--metrics-bind-address=:9090",
		"--max-streams=20",
		"--shutdown-drain=600s",
		"--goodbye-lead=10s",
		"--bot-reconnect=30s",
	}
	check(reflect.DeepEqual(gw.Args, wantArgs), "gateway args\n got %q\nwant %q", gw.Args, wantArgs)
	check(len(gw.Env) == 1 && gw.Env[0].Name == "POD_NAME" && gw.Env[0].ValueFrom != nil &&
		gw.Env[0].ValueFrom.FieldRef != nil && gw.Env[0].ValueFrom.FieldRef.FieldPath == "metadata.name",
		"gateway env %+v, want POD_NAME from metadata.name", gw.Env)
	check(reflect.DeepEqual(gw.Ports, []corev1.ContainerPort{
		{Name: "gateway", ContainerPort: 8500, Protocol: corev1.ProtocolTCP},
		{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
	}), "gateway ports %+v", gw.Ports)
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readiness", gw.ReadinessProbe, "/readyz"}, {"liveness", gw.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			check(false, "gateway %s probe %+v, want HTTP GET %s", p.name, p.probe, p.path)
			continue
		}
		check(p.probe.HTTPGet.Path == p.path, "gateway %s probe path %q, want %q", p.name, p.probe.HTTPGet.Path, p.path)
		check(resolvePort(gw, p.probe.HTTPGet.Port) == 8500, "gateway %s probe port %v is not the gateway port", p.name, p.probe.HTTPGet.Port)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range gw.VolumeMounts {
		mounts[m.Name] = m
	}
	check(mounts["stream-token"].MountPath == "/var/run/callfleet/stream-token" && mounts["stream-token"].ReadOnly,
		"gateway stream-token mount %+v", mounts["stream-token"])
	check(mounts["kube-api-access"].MountPath == "/var/run/secrets/kubernetes.io/serviceaccount" && mounts["kube-api-access"].ReadOnly,
		"gateway API credentials mount %+v", mounts["kube-api-access"])

	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	secret := vols["stream-token"].Secret
	// The whole Secret: "previous" appears beside "key" during a rotation.
	check(secret != nil && secret.SecretName == "support-bot-stream-token" && len(secret.Items) == 0, "stream-token volume %+v", vols["stream-token"])
	check(vols["tmp"].EmptyDir != nil, "tmp volume %+v, want emptyDir", vols["tmp"])
	projected := vols["kube-api-access"].Projected
	check(projected != nil && slices.ContainsFunc(projected.Sources, func(s corev1.VolumeProjection) bool { return s.ServiceAccountToken != nil }),
		"kube-api-access volume %+v, want a projected service account token", vols["kube-api-access"])

	if err := errorsf(problems); err != nil {
		t.Error(err)
	}
	waitForEvent(t, ns, "support-bot", "Created")
}

func resolvePort(c *corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

// restrictedProblems lists how spec falls short of the restricted Pod
// Security Standard, and of our own rule that only the gateway holds API
// credentials.
func restrictedProblems(spec corev1.PodSpec) []string {
	var p []string
	psc := spec.SecurityContext
	if psc == nil || !ptr.Deref(psc.RunAsNonRoot, false) {
		p = append(p, "pod: runAsNonRoot is not true")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		p = append(p, "pod: seccompProfile is not RuntimeDefault")
	}
	if ptr.Deref(spec.AutomountServiceAccountToken, true) {
		p = append(p, "pod: the service account token is mounted into every container")
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		sc := c.SecurityContext
		if sc == nil {
			p = append(p, c.Name+": no securityContext")
			continue
		}
		if !ptr.Deref(sc.RunAsNonRoot, false) {
			p = append(p, c.Name+": runAsNonRoot is not true")
		}
		if !ptr.Deref(sc.ReadOnlyRootFilesystem, false) {
			p = append(p, c.Name+": readOnlyRootFilesystem is not true")
		}
		if ptr.Deref(sc.AllowPrivilegeEscalation, true) {
			p = append(p, c.Name+": allowPrivilegeEscalation is not false")
		}
		if ptr.Deref(sc.Privileged, false) {
			p = append(p, c.Name+": privileged")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			p = append(p, c.Name+": capabilities do not drop ALL (or add some)")
		}
		if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			p = append(p, c.Name+": seccompProfile is not RuntimeDefault")
		}
		for _, m := range c.VolumeMounts {
			if m.MountPath == serviceAccountDir && c.Name != ContainerGateway {
				p = append(p, c.Name+": holds the service account token")
			}
		}
	}
	return p
}

func TestPodsMeetRestrictedPodSecurity(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)

	// A Pod without any hardening is refused in these namespaces: the
	// apiserver's PodSecurity admission is really checking.
	bare := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bare"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if err := k8s.Create(context.Background(), bare); !apierrors.IsForbidden(err) {
		t.Fatalf("creating an unhardened Pod in a restricted namespace: %v, want Forbidden", err)
	}

	for _, tc := range []struct {
		name string
		opt  func(*voicev1alpha1.StreamEndpoint)
	}{
		{"gateway on", func(*voicev1alpha1.StreamEndpoint) {}},
		{"gateway off", func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.Gateway.Enabled = ptr.To(false) }},
		{"own gateway image", func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.Gateway.Image = "registry.example/gw:1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			create(t, managedEndpoint(ns, name, tc.opt))
			dep := waitForDeployment(t, ns, name, nil)
			if p := restrictedProblems(dep.Spec.Template.Spec); len(p) > 0 {
				t.Errorf("pod template is not restricted:\n%s", strings.Join(p, "\n"))
			}
			// The apiserver's verdict on a Pod made from the template.
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-pod", Labels: dep.Spec.Template.Labels},
				Spec:       dep.Spec.Template.Spec,
			}
			if err := k8s.Create(context.Background(), pod); err != nil {
				t.Errorf("the restricted namespace refused a Pod from the template: %v", err)
			}
		})
	}
}

func TestServicePorts(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	for _, tc := range []struct {
		name      string
		opt       func(*voicev1alpha1.StreamEndpoint)
		wantPorts map[string][2]int32 // name: port, target container port
	}{
		{"gateway", func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.Gateway.Port = 8600 },
			map[string][2]int32{"gateway": {8600, 8600}, "metrics": {9090, 9090}}},
		{"raw", func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.Gateway.Enabled = ptr.To(false); ep.Spec.Port = 7000 },
			map[string][2]int32{"bot": {7000, 7000}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			create(t, managedEndpoint(ns, tc.name, tc.opt))
			dep := waitForDeployment(t, ns, tc.name, nil)
			svc := &corev1.Service{}
			eventually(t, func() error { return k8s.Get(context.Background(), key(ns, tc.name), svc) })
			if svc.Spec.Type != corev1.ServiceTypeClusterIP {
				t.Errorf("type %s, want ClusterIP", svc.Spec.Type)
			}
			sel, _ := metav1.LabelSelectorAsMap(dep.Spec.Selector)
			if !reflect.DeepEqual(svc.Spec.Selector, sel) {
				t.Errorf("selector %v, want the Deployment's %v", svc.Spec.Selector, sel)
			}
			got := map[string][2]int32{}
			for _, p := range svc.Spec.Ports {
				var target int32
				for _, c := range dep.Spec.Template.Spec.Containers {
					if n := resolvePort(&c, p.TargetPort); n != 0 {
						target = n
					}
				}
				got[p.Name] = [2]int32{p.Port, target}
			}
			if !reflect.DeepEqual(got, tc.wantPorts) {
				t.Errorf("ports (port, container port) %v, want %v", got, tc.wantPorts)
			}
		})
	}
}

func TestIngressRoutesPublicURL(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	for _, tc := range []struct {
		name       string
		publicURL  string
		ingress    voicev1alpha1.IngressSpec
		gatewayOff bool
		wantHost   string
		wantPath   string
		wantPort   int32
		wantTLS    []networkingv1.IngressTLS
	}{
		{
			name:      "wss-with-tls",
			publicURL: "wss://Bots.Example.com/stream/v1",
			ingress: voicev1alpha1.IngressSpec{
				ClassName: ptr.To("nginx"), TLSSecretName: "bots-tls",
				Annotations: map[string]string{"nginx.ingress.kubernetes.io/proxy-read-timeout": "3600"},
			},
			wantHost: "bots.example.com", wantPath: "/stream/v1", wantPort: 8443,
			wantTLS: []networkingv1.IngressTLS{{Hosts: []string{"bots.example.com"}, SecretName: "bots-tls"}},
		},
		{
			name: "ws-with-port", publicURL: "ws://bots.example.com:8080",
			wantHost: "bots.example.com", wantPath: "/", wantPort: 8443,
		},
		{
			name: "ip-address", publicURL: "ws://10.0.0.5/ws",
			wantHost: "", wantPath: "/ws", wantPort: 8443,
		},
		{
			name: "raw-bot", publicURL: "wss://raw.example.com/", gatewayOff: true,
			wantHost: "raw.example.com", wantPath: "/", wantPort: 8080,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			create(t, managedEndpoint(ns, tc.name, func(ep *voicev1alpha1.StreamEndpoint) {
				ep.Spec.PublicURL = tc.publicURL
				ep.Spec.Ingress = &tc.ingress
				if tc.gatewayOff {
					ep.Spec.Gateway.Enabled = ptr.To(false)
				}
			}))
			ing := &networkingv1.Ingress{}
			eventually(t, func() error { return k8s.Get(context.Background(), key(ns, tc.name), ing) })
			want := networkingv1.IngressSpec{
				IngressClassName: tc.ingress.ClassName,
				TLS:              tc.wantTLS,
				Rules: []networkingv1.IngressRule{{
					Host: tc.wantHost,
					IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
						Paths: []networkingv1.HTTPIngressPath{{
							Path: tc.wantPath, PathType: ptr.To(networkingv1.PathTypePrefix),
							Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
								Name: tc.name, Port: networkingv1.ServiceBackendPort{Number: tc.wantPort},
							}},
						}},
					}},
				}},
			}
			if !equality.Semantic.DeepEqual(ing.Spec, want) {
				t.Errorf("ingress spec\n got %+v\nwant %+v", ing.Spec, want)
			}
			if !equality.Semantic.DeepEqual(ing.Annotations, tc.ingress.Annotations) {
				t.Errorf("annotations %v, want %v", ing.Annotations, tc.ingress.Annotations)
			}
		})
	}
}

func TestIngressRemovedWithSpec(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ep := managedEndpoint(ns, "bot", func(ep *voicev1alpha1.StreamEndpoint) {
		ep.Spec.PublicURL = "wss://bots.example.com/"
		ep.Spec.Ingress = &voicev1alpha1.IngressSpec{}
	})
	create(t, ep)
	ing := &networkingv1.Ingress{}
	eventually(t, func() error { return k8s.Get(context.Background(), key(ns, "bot"), ing) })
	update(t, ep, func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.Ingress = nil })
	eventually(t, func() error {
		if err := get(ing); !apierrors.IsNotFound(err) {
			return fmt.Errorf("ingress still there (%v)", err)
		}
		return nil
	})
	waitForEvent(t, ns, "bot", "Deleted")
}

func TestSpecChangesRollOut(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ep := managedEndpoint(ns, "bot")
	create(t, ep)
	waitForDeployment(t, ns, "bot", nil)

	update(t, ep, func(ep *voicev1alpha1.StreamEndpoint) {
		ep.Spec.Image = "ghcr.io/example/bot:v2"
		ep.Spec.Replicas = ptr.To[int32](4)
		ep.Spec.Env = []corev1.EnvVar{{Name: "GREETING", Value: "namaste"}}
		ep.Spec.Gateway.Image = "registry.example/gw:2"
	})
	waitForDeployment(t, ns, "bot", func(dep *appsv1.Deployment) error {
		pod := dep.Spec.Template.Spec
		bot, gw := container(pod, ContainerBot), container(pod, ContainerGateway)
		switch {
		case ptr.Deref(dep.Spec.Replicas, 0) != 4:
			return fmt.Errorf("replicas %v", dep.Spec.Replicas)
		case bot == nil || bot.Image != "ghcr.io/example/bot:v2":
			return fmt.Errorf("bot %+v", bot)
		case gw == nil || gw.Image != "registry.example/gw:2":
			return fmt.Errorf("gateway %+v", gw)
		}
		if v, _ := envValue(bot, "GREETING"); v != "namaste" {
			return fmt.Errorf("bot env %+v", bot.Env)
		}
		return nil
	})
	waitForEvent(t, ns, "bot", "Updated")

	// Turning the gateway off drops its container and its API access.
	update(t, ep, func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.Gateway.Enabled = ptr.To(false) })
	waitForDeployment(t, ns, "bot", func(dep *appsv1.Deployment) error {
		pod := dep.Spec.Template.Spec
		if len(pod.Containers) != 1 || pod.Containers[0].Name != ContainerBot {
			return fmt.Errorf("containers %+v, want the bot alone", pod.Containers)
		}
		if pod.ServiceAccountName != "default" {
			return fmt.Errorf("serviceAccountName %q", pod.ServiceAccountName)
		}
		return nil
	})
	for _, obj := range []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bot-gateway"}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bot-gateway"}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bot-gateway"}},
	} {
		eventually(t, func() error {
			if err := get(obj); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%T still there (%v)", obj, err)
			}
			return nil
		})
	}
}

func TestChildrenAreOwnedForCleanup(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ep := managedEndpoint(ns, "bot", func(ep *voicev1alpha1.StreamEndpoint) {
		ep.Spec.PublicURL = "wss://bots.example.com/"
		ep.Spec.Ingress = &voicev1alpha1.IngressSpec{}
	})
	create(t, ep)
	named := metav1.ObjectMeta{Namespace: ns, Name: "bot"}
	access := metav1.ObjectMeta{Namespace: ns, Name: "bot-gateway"}
	for _, obj := range []client.Object{
		&appsv1.Deployment{ObjectMeta: named},
		&corev1.Service{ObjectMeta: named},
		&networkingv1.Ingress{ObjectMeta: named},
		&corev1.ServiceAccount{ObjectMeta: access},
		&rbacv1.Role{ObjectMeta: access},
		&rbacv1.RoleBinding{ObjectMeta: access},
	} {
		t.Run(fmt.Sprintf("%T", obj), func(t *testing.T) {
			eventually(t, func() error { return get(obj) })
			want := []metav1.OwnerReference{{
				APIVersion: "voice.callfleet.dev/v1alpha1", Kind: "StreamEndpoint", Name: "bot", UID: ep.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}}
			if got := obj.GetOwnerReferences(); !reflect.DeepEqual(got, want) {
				t.Errorf("owner references %+v, want %+v", got, want)
			}
		})
	}

	// The gateway's access: its account, bound to a Role over Calls in this
	// namespace only.
	rb := &rbacv1.RoleBinding{ObjectMeta: access}
	role := &rbacv1.Role{ObjectMeta: access}
	if err := get(rb); err != nil {
		t.Fatal(err)
	}
	if err := get(role); err != nil {
		t.Fatal(err)
	}
	wantRef := rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "bot-gateway"}
	wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "bot-gateway", Namespace: ns}}
	if rb.RoleRef != wantRef || !reflect.DeepEqual(rb.Subjects, wantSubjects) {
		t.Errorf("role binding %+v %+v, want %+v %+v", rb.RoleRef, rb.Subjects, wantRef, wantSubjects)
	}
	allows := func(res, verb string) bool {
		for _, r := range role.Rules {
			if slices.Contains(r.APIGroups, "voice.callfleet.dev") && slices.Contains(r.Resources, res) && slices.Contains(r.Verbs, verb) {
				return true
			}
		}
		return false
	}
	for _, rv := range [][2]string{{"calls", "get"}, {"calls", "list"}, {"calls", "watch"}, {"calls/status", "patch"}} {
		if !allows(rv[0], rv[1]) {
			t.Errorf("gateway role does not allow %s %s: %+v", rv[1], rv[0], role.Rules)
		}
	}
	if allows("calls", "delete") || allows("calls", "update") {
		t.Errorf("gateway role allows more than it needs: %+v", role.Rules)
	}
}

// setDeploymentStatus plays the Deployment controller, which envtest lacks.
func setDeploymentStatus(t *testing.T, ns, name string, ready int32) {
	t.Helper()
	eventually(t, func() error {
		dep := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), key(ns, name), dep); err != nil {
			return err
		}
		n := ptr.Deref(dep.Spec.Replicas, 1)
		dep.Status = appsv1.DeploymentStatus{
			ObservedGeneration: dep.Generation,
			Replicas:           n, UpdatedReplicas: n, ReadyReplicas: ready, AvailableReplicas: ready,
		}
		return k8s.Status().Update(context.Background(), dep)
	})
}

func TestManagedStatusFollowsTheDeployment(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ep := managedEndpoint(ns, "bot", func(ep *voicev1alpha1.StreamEndpoint) {
		ep.Spec.Replicas = ptr.To[int32](2)
		ep.Spec.MaxStreamsPerReplica = 10
	})
	create(t, ep)

	got := waitForCondition(t, ep, voicev1alpha1.ConditionReady, metav1.ConditionFalse, ReasonNoReadyReplicas)
	if err := hasCondition(got, voicev1alpha1.ConditionReconciling, metav1.ConditionTrue, ReasonRollingOut); err != nil {
		t.Error(err)
	}
	if want := fmt.Sprintf("ws://bot.%s.svc:8443/", ns); got.Status.URL != want || got.Status.Capacity != 0 {
		t.Errorf("url %q capacity %d, want %q and 0", got.Status.URL, got.Status.Capacity, want)
	}

	setDeploymentStatus(t, ns, "bot", 2)
	got = waitForCondition(t, ep, voicev1alpha1.ConditionReady, metav1.ConditionTrue, ReasonReplicasReady)
	if got.Status.ReadyReplicas != 2 || got.Status.Capacity != 20 || got.Status.ObservedGeneration != got.Generation {
		t.Errorf("status %+v, want 2 ready replicas, capacity 20, observedGeneration %d", got.Status, got.Generation)
	}
	for _, typ := range []string{voicev1alpha1.ConditionReconciling, voicev1alpha1.ConditionStalled} {
		if c := meta.FindStatusCondition(got.Status.Conditions, typ); c != nil {
			t.Errorf("%s present once rolled out: %+v", typ, c)
		}
	}
	waitForEvent(t, ns, "bot", "Ready")

	update(t, ep, func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.PublicURL = "wss://bots.example.com/s" })
	eventually(t, func() error {
		if err := get(got); err != nil {
			return err
		}
		if got.Status.URL != "wss://bots.example.com/s" {
			return fmt.Errorf("url %q", got.Status.URL)
		}
		return nil
	})

	update(t, ep, func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.Replicas = ptr.To[int32](0) })
	got = waitForCondition(t, ep, voicev1alpha1.ConditionReady, metav1.ConditionFalse, ReasonScaledToZero)
	if got.Status.Capacity != 0 {
		t.Errorf("capacity %d when scaled to zero", got.Status.Capacity)
	}
	waitForEvent(t, ns, "bot", "NotReady")
}

// healthServer answers its health path with the status in code.
func healthServer(t *testing.T, code *atomic.Int32) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(code.Load()))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestExternalReadinessComesFromTheHealthURL(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)

	ok := &atomic.Int32{}
	ok.Store(http.StatusOK)
	unavailable := &atomic.Int32{}
	unavailable.Store(http.StatusServiceUnavailable)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * healthTimeout):
		}
	}))
	t.Cleanup(slow.Close)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "http://" + closed.Addr().String() + "/healthz"
	_ = closed.Close()

	for _, tc := range []struct {
		name        string
		healthURL   string
		wantStatus  metav1.ConditionStatus
		wantReason  string
		wantMessage string
	}{
		// One message whatever went wrong: status does not tell a tenant
		// what an address answered.
		{"healthy", healthServer(t, ok).URL + "/healthz", metav1.ConditionTrue, ReasonHealthCheckSucceeded, healthyMessage},
		{"unavailable", healthServer(t, unavailable).URL + "/healthz", metav1.ConditionFalse, ReasonHealthCheckFailed, unhealthyMessage},
		{"too-slow", slow.URL + "/healthz", metav1.ConditionFalse, ReasonHealthCheckFailed, unhealthyMessage},
		{"refused", refusedURL, metav1.ConditionFalse, ReasonHealthCheckFailed, unhealthyMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ep := externalEndpoint(ns, tc.name, tc.healthURL)
			create(t, ep)
			got := waitForCondition(t, ep, voicev1alpha1.ConditionReady, tc.wantStatus, tc.wantReason)
			ready := meta.FindStatusCondition(got.Status.Conditions, voicev1alpha1.ConditionReady)
			if ready.Message != tc.wantMessage {
				t.Errorf("Ready message %q, want %q", ready.Message, tc.wantMessage)
			}
			wantCapacity := int32(0)
			if tc.wantStatus == metav1.ConditionTrue {
				wantCapacity = 7
			}
			if got.Status.URL != ep.Spec.PublicURL || got.Status.Capacity != wantCapacity || got.Status.ReadyReplicas != 0 {
				t.Errorf("status %+v, want the publicURL and capacity %d", got.Status, wantCapacity)
			}
			if tc.wantStatus != metav1.ConditionTrue {
				if err := hasCondition(got, voicev1alpha1.ConditionReconciling, metav1.ConditionTrue, ReasonWaitingForHealthy); err != nil {
					t.Error(err)
				}
			}
			// Nothing runs in the cluster for an external handler.
			for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}} {
				if err := k8s.Get(context.Background(), key(ns, tc.name), obj); !apierrors.IsNotFound(err) {
					t.Errorf("%T for an external endpoint: %v", obj, err)
				}
			}
		})
	}
}

func TestExternalHealthIsPolled(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	code := &atomic.Int32{}
	code.Store(http.StatusInternalServerError)
	ep := externalEndpoint(ns, "bot", healthServer(t, code).URL+"/healthz")
	create(t, ep)
	waitForCondition(t, ep, voicev1alpha1.ConditionReady, metav1.ConditionFalse, ReasonHealthCheckFailed)

	// Nothing in the cluster changes from here: only polling can notice.
	code.Store(http.StatusNoContent)
	got := waitForCondition(t, ep, voicev1alpha1.ConditionReady, metav1.ConditionTrue, ReasonHealthCheckSucceeded)
	if got.Status.Capacity != 7 {
		t.Errorf("capacity %d, want spec.external.capacity 7", got.Status.Capacity)
	}
	code.Store(http.StatusBadGateway)
	waitForCondition(t, ep, voicev1alpha1.ConditionReady, metav1.ConditionFalse, ReasonHealthCheckFailed)
	waitForEvent(t, ns, "bot", "NotReady")
}

func TestExternalWithoutPublicURLStalls(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	code := &atomic.Int32{}
	code.Store(http.StatusOK)
	health := healthServer(t, code).URL
	ep := externalEndpoint(ns, "bot", health, func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.PublicURL = "" })
	create(t, ep)

	got := waitForCondition(t, ep, voicev1alpha1.ConditionStalled, metav1.ConditionTrue, ReasonMissingPublicURL)
	if err := hasCondition(got, voicev1alpha1.ConditionReady, metav1.ConditionFalse, ReasonMissingPublicURL); err != nil {
		t.Error(err)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, voicev1alpha1.ConditionReconciling); c != nil {
		t.Errorf("Reconciling while stalled: %+v", c)
	}
	if got.Status.ObservedGeneration != got.Generation {
		t.Errorf("observedGeneration %d, want %d: a stall is a verdict on the generation", got.Status.ObservedGeneration, got.Generation)
	}
	waitForEvent(t, ns, "bot", ReasonMissingPublicURL)

	// Fixing the spec clears the stall.
	update(t, ep, func(ep *voicev1alpha1.StreamEndpoint) {
		ep.Spec.PublicURL = "ws" + strings.TrimPrefix(health, "http") + "/"
	})
	got = waitForCondition(t, ep, voicev1alpha1.ConditionReady, metav1.ConditionTrue, ReasonHealthCheckSucceeded)
	if c := meta.FindStatusCondition(got.Status.Conditions, voicev1alpha1.ConditionStalled); c != nil {
		t.Errorf("still Stalled after the fix: %+v", c)
	}
}

func TestManagedStalls(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)

	// A Deployment someone else made, in the way of the "taken" endpoint.
	theirs := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "theirs"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "theirs"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "theirs:1"}}},
			},
		},
	}
	create(t, theirs)

	for _, tc := range []struct {
		name       string
		opt        func(*voicev1alpha1.StreamEndpoint)
		wantReason string
	}{
		{"same-port", func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.Port = 8443 }, ReasonPortConflict},
		{"metrics-port", func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.Gateway.Port = 9090 }, ReasonPortConflict},
		{"dotted.name", func(*voicev1alpha1.StreamEndpoint) {}, ReasonInvalidName},
		{"taken", func(*voicev1alpha1.StreamEndpoint) {}, ReasonNameConflict},
		// Ingress paths may not climb: the apiserver's verdict is a stall.
		{"bad-path", func(ep *voicev1alpha1.StreamEndpoint) {
			ep.Spec.PublicURL = "wss://bots.example.com/a/../b"
			ep.Spec.Ingress = &voicev1alpha1.IngressSpec{}
		}, ReasonInvalidChild},
	} {
		// Not parallel: the checks after the loop need these done.
		t.Run(tc.name, func(t *testing.T) {
			ep := managedEndpoint(ns, tc.name, tc.opt)
			create(t, ep)
			got := waitForCondition(t, ep, voicev1alpha1.ConditionStalled, metav1.ConditionTrue, tc.wantReason)
			if err := hasCondition(got, voicev1alpha1.ConditionReady, metav1.ConditionFalse, tc.wantReason); err != nil {
				t.Error(err)
			}
		})
	}

	if err := get(theirs); err != nil {
		t.Fatal(err)
	}
	if len(theirs.OwnerReferences) != 0 || theirs.Spec.Template.Spec.Containers[0].Image != "theirs:1" {
		t.Errorf("the controller took over a Deployment it does not own: %+v", theirs)
	}
	for _, name := range []string{"same-port", "metrics-port"} {
		if err := k8s.Get(context.Background(), key(ns, name), &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
			t.Errorf("Deployment %s made for a stalled spec: %v", name, err)
		}
	}
}

func newCall(ns, name, endpoint string) *voicev1alpha1.Call {
	return &voicev1alpha1.Call{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: voicev1alpha1.CallSpec{
			To: "919876543210",
			CallParameters: voicev1alpha1.CallParameters{
				StreamEndpointRef: &voicev1alpha1.LocalRef{Name: endpoint},
			},
		},
	}
}

func setStreamState(t *testing.T, call *voicev1alpha1.Call, state voicev1alpha1.StreamPhase) {
	t.Helper()
	eventually(t, func() error {
		if err := get(call); err != nil {
			return err
		}
		call.Status.Stream = &voicev1alpha1.CallStreamStatus{State: state}
		return k8s.Status().Update(context.Background(), call)
	})
}

func waitForActiveStreams(t *testing.T, ep *voicev1alpha1.StreamEndpoint, want int32) {
	t.Helper()
	got := &voicev1alpha1.StreamEndpoint{}
	eventually(t, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(ep), got); err != nil {
			return err
		}
		if got.Status.ActiveStreams != want {
			return fmt.Errorf("activeStreams %d, want %d", got.Status.ActiveStreams, want)
		}
		return nil
	})
}

func TestActiveStreamsCountStreamingCalls(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ep := managedEndpoint(ns, "bot")
	create(t, ep)
	create(t, managedEndpoint(ns, "other"))
	waitForCondition(t, ep, voicev1alpha1.ConditionReady, metav1.ConditionFalse, ReasonNoReadyReplicas)

	calls := map[string]*voicev1alpha1.Call{}
	for _, c := range []struct {
		name, endpoint string
		state          voicev1alpha1.StreamPhase
	}{
		{"connected", "bot", voicev1alpha1.StreamPhaseConnected},
		{"paused", "bot", voicev1alpha1.StreamPhasePaused},
		{"disconnected", "bot", voicev1alpha1.StreamPhaseDisconnected},
		{"pending", "bot", voicev1alpha1.StreamPhasePending},
		{"no-stream-yet", "bot", ""},
		{"elsewhere", "other", voicev1alpha1.StreamPhaseConnected},
	} {
		call := newCall(ns, c.name, c.endpoint)
		create(t, call)
		if c.state != "" {
			setStreamState(t, call, c.state)
		}
		calls[c.name] = call
	}
	waitForActiveStreams(t, ep, 2)

	setStreamState(t, calls["pending"], voicev1alpha1.StreamPhaseConnected)
	waitForActiveStreams(t, ep, 3)
	setStreamState(t, calls["connected"], voicev1alpha1.StreamPhaseStopped)
	waitForActiveStreams(t, ep, 2)
	if err := k8s.Delete(context.Background(), calls["paused"]); err != nil {
		t.Fatal(err)
	}
	waitForActiveStreams(t, ep, 1)
	waitForActiveStreams(t, &voicev1alpha1.StreamEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"}}, 1)
}

func TestSwitchToExternalRemovesManagedChildren(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	code := &atomic.Int32{}
	code.Store(http.StatusOK)
	ep := managedEndpoint(ns, "bot", func(ep *voicev1alpha1.StreamEndpoint) {
		ep.Spec.PublicURL = "wss://bots.example.com/"
		ep.Spec.Ingress = &voicev1alpha1.IngressSpec{}
	})
	create(t, ep)
	named := metav1.ObjectMeta{Namespace: ns, Name: "bot"}
	access := metav1.ObjectMeta{Namespace: ns, Name: "bot-gateway"}
	children := []client.Object{
		&appsv1.Deployment{ObjectMeta: named},
		&policyv1.PodDisruptionBudget{ObjectMeta: named},
		&corev1.Service{ObjectMeta: named},
		&networkingv1.Ingress{ObjectMeta: named},
		&corev1.ServiceAccount{ObjectMeta: access},
		&rbacv1.Role{ObjectMeta: access},
		&rbacv1.RoleBinding{ObjectMeta: access},
	}
	for _, obj := range children {
		eventually(t, func() error { return get(obj) })
	}

	healthURL := healthServer(t, code).URL
	update(t, ep, func(ep *voicev1alpha1.StreamEndpoint) {
		ep.Spec.Image = ""
		ep.Spec.Ingress = nil
		// The handler runs where Piopiy is sent: the health URL's host.
		ep.Spec.PublicURL = "ws" + strings.TrimPrefix(healthURL, "http") + "/stream"
		ep.Spec.External = &voicev1alpha1.ExternalEndpoint{HealthURL: healthURL}
	})
	for _, obj := range children {
		eventually(t, func() error {
			if err := get(obj); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%T still there (%v)", obj, err)
			}
			return nil
		})
	}
	got := waitForCondition(t, ep, voicev1alpha1.ConditionReady, metav1.ConditionTrue, ReasonHealthCheckSucceeded)
	if got.Status.Capacity != 100 {
		t.Errorf("capacity %d, want the default 100", got.Status.Capacity)
	}
}

// countingClient counts the writes a reconcile makes.
type countingClient struct {
	client.Client
	writes atomic.Int32
}

func (c *countingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.writes.Add(1)
	return c.Client.Create(ctx, obj, opts...)
}

func (c *countingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.writes.Add(1)
	return c.Client.Update(ctx, obj, opts...)
}

func (c *countingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.writes.Add(1)
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c *countingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.writes.Add(1)
	return c.Client.Delete(ctx, obj, opts...)
}

func (c *countingClient) Status() client.SubResourceWriter {
	return &countingStatus{SubResourceWriter: c.Client.Status(), c: c}
}

type countingStatus struct {
	client.SubResourceWriter
	c *countingClient
}

func (s *countingStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	s.c.writes.Add(1)
	return s.SubResourceWriter.Update(ctx, obj, opts...)
}

func (s *countingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.c.writes.Add(1)
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

func TestSteadyStateReconcileWritesNothing(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ep := managedEndpoint(ns, "bot", func(ep *voicev1alpha1.StreamEndpoint) {
		ep.Spec.PublicURL = "wss://bots.example.com/"
		ep.Spec.Ingress = &voicev1alpha1.IngressSpec{Annotations: map[string]string{"a": "b"}, TLSSecretName: "tls"}
		ep.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("0.5Gi")}
		// Fields the apiserver would default, were they not filled in.
		ep.Spec.Env = []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"},
		}}}
	})
	create(t, ep)
	waitForCondition(t, ep, voicev1alpha1.ConditionReady, metav1.ConditionFalse, ReasonNoReadyReplicas)
	waitForEvent(t, ns, "bot", "Created")

	c := &countingClient{Client: mgr.GetClient()}
	r := &Reconciler{Client: c, APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(), GatewayImage: testGatewayImage, StreamTokenKeys: streamtoken.Keys{testRootKey}}
	req := ctrl.Request{NamespacedName: key(ns, "bot")}
	reconcileOnce := func() (int32, error) {
		c.writes.Store(0)
		_, err := r.Reconcile(context.Background(), req)
		return c.writes.Load(), err
	}
	// The cache may still be catching up with the manager's own writes;
	// once it has, a reconcile has nothing to do.
	eventually(t, func() error {
		n, err := reconcileOnce()
		if err != nil || n != 0 {
			return fmt.Errorf("reconcile made %d writes (%v)", n, err)
		}
		return nil
	})
	for range 3 {
		if n, err := reconcileOnce(); err != nil || n != 0 {
			t.Fatalf("steady-state reconcile made %d writes (%v)", n, err)
		}
	}
}
