package streamendpoint

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// cond is the part of a condition a test cares about.
type cond struct {
	typ    string
	status metav1.ConditionStatus
	reason string
}

func deployment(gen, observed int64, replicas, updated, ready, available int32, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "bot", Generation: gen},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: observed, Replicas: replicas, UpdatedReplicas: updated,
			ReadyReplicas: ready, AvailableReplicas: available, Conditions: conds,
		},
	}
}

func TestSetStatusConditions(t *testing.T) {
	managed := func(replicas int32) *voicev1alpha1.StreamEndpoint {
		return &voicev1alpha1.StreamEndpoint{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "bot", Generation: 4},
			Spec:       voicev1alpha1.StreamEndpointSpec{Image: "bot:1", Replicas: ptr.To(replicas), MaxStreamsPerReplica: 5},
		}
	}
	external := &voicev1alpha1.StreamEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ext", Generation: 2},
		Spec: voicev1alpha1.StreamEndpointSpec{
			PublicURL: "wss://x.example/", External: &voicev1alpha1.ExternalEndpoint{HealthURL: "http://h/", Capacity: 9},
		},
	}
	deadline := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: "timed out"}

	for _, tc := range []struct {
		name         string
		scope        scope
		want         []cond
		wantCapacity int32
		wantObserved bool
	}{
		{
			name:  "new endpoint, no deployment yet",
			scope: scope{endpoint: managed(2)},
			want: []cond{
				{"Ready", metav1.ConditionFalse, ReasonDeploymentMissing},
				{"Reconciling", metav1.ConditionTrue, ReasonRollingOut},
			},
			wantObserved: true,
		},
		{
			name:  "rolling out, no pod ready",
			scope: scope{endpoint: managed(2), deployment: deployment(1, 1, 2, 0, 0, 0)},
			want: []cond{
				{"Ready", metav1.ConditionFalse, ReasonNoReadyReplicas},
				{"Reconciling", metav1.ConditionTrue, ReasonRollingOut},
			},
			wantObserved: true,
		},
		{
			name:  "rolling out with one pod ready takes calls",
			scope: scope{endpoint: managed(2), deployment: deployment(2, 2, 2, 2, 1, 1)},
			want: []cond{
				{"Ready", metav1.ConditionTrue, ReasonReplicasReady},
				{"Reconciling", metav1.ConditionTrue, ReasonRollingOut},
			},
			wantCapacity: 5,
			wantObserved: true,
		},
		{
			name:         "rolled out",
			scope:        scope{endpoint: managed(2), deployment: deployment(2, 2, 2, 2, 2, 2)},
			want:         []cond{{"Ready", metav1.ConditionTrue, ReasonReplicasReady}},
			wantCapacity: 10,
			wantObserved: true,
		},
		{
			name:  "deployment controller has not seen the new template",
			scope: scope{endpoint: managed(2), deployment: deployment(3, 2, 2, 2, 2, 2)},
			want: []cond{
				{"Ready", metav1.ConditionTrue, ReasonReplicasReady},
				{"Reconciling", metav1.ConditionTrue, ReasonRollingOut},
			},
			wantCapacity: 10,
			wantObserved: true,
		},
		{
			name:  "rollout stuck while old pods serve",
			scope: scope{endpoint: managed(2), deployment: deployment(2, 2, 3, 1, 2, 2, deadline)},
			want: []cond{
				{"Ready", metav1.ConditionTrue, ReasonReplicasReady},
				{"Stalled", metav1.ConditionTrue, ReasonProgressDeadlineExceeded},
			},
			wantCapacity: 10,
			wantObserved: true,
		},
		{
			name:         "scaled to zero",
			scope:        scope{endpoint: managed(0), deployment: deployment(2, 2, 0, 0, 0, 0)},
			want:         []cond{{"Ready", metav1.ConditionFalse, ReasonScaledToZero}},
			wantObserved: true,
		},
		{
			name:  "error is retried, readiness still reported",
			scope: scope{endpoint: managed(1), deployment: deployment(1, 1, 1, 1, 1, 1), err: errors.New("boom")},
			want: []cond{
				{"Ready", metav1.ConditionTrue, ReasonReplicasReady},
				{"Reconciling", metav1.ConditionTrue, ReasonRetrying},
			},
			wantCapacity: 5,
		},
		{
			name:  "stalled spec",
			scope: scope{endpoint: managed(1), stalled: stalled(ReasonPortConflict, "ports")},
			want: []cond{
				{"Ready", metav1.ConditionFalse, ReasonPortConflict},
				{"Stalled", metav1.ConditionTrue, ReasonPortConflict},
			},
			wantObserved: true,
		},
		{
			name:         "external healthy",
			scope:        scope{endpoint: external, health: &healthResult{healthy: true, message: "ok"}},
			want:         []cond{{"Ready", metav1.ConditionTrue, ReasonHealthCheckSucceeded}},
			wantCapacity: 9,
			wantObserved: true,
		},
		{
			name:  "external unhealthy",
			scope: scope{endpoint: external, health: &healthResult{message: "503"}},
			want: []cond{
				{"Ready", metav1.ConditionFalse, ReasonHealthCheckFailed},
				{"Reconciling", metav1.ConditionTrue, ReasonWaitingForHealthy},
			},
			wantObserved: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.scope
			s.endpoint = s.endpoint.DeepCopy()
			// Conditions left from an earlier pass must go when they no
			// longer hold.
			s.endpoint.Status.Conditions = []metav1.Condition{
				{Type: "Stalled", Status: metav1.ConditionTrue, Reason: "Old", LastTransitionTime: metav1.Now()},
				{Type: "Reconciling", Status: metav1.ConditionTrue, Reason: "Old", LastTransitionTime: metav1.Now()},
			}
			setStatus(&s, time.Unix(1700000000, 0))

			var got []cond
			for _, c := range s.endpoint.Status.Conditions {
				got = append(got, cond{c.Type, c.Status, c.Reason})
				if c.ObservedGeneration != s.endpoint.Generation {
					t.Errorf("%s observedGeneration %d, want %d", c.Type, c.ObservedGeneration, s.endpoint.Generation)
				}
				if c.Message == "" {
					t.Errorf("%s has no message", c.Type)
				}
			}
			if !sameConds(got, tc.want) {
				t.Errorf("conditions\n got %v\nwant %v", got, tc.want)
			}
			if s.endpoint.Status.Capacity != tc.wantCapacity {
				t.Errorf("capacity %d, want %d", s.endpoint.Status.Capacity, tc.wantCapacity)
			}
			if observed := s.endpoint.Status.ObservedGeneration == s.endpoint.Generation; observed != tc.wantObserved {
				t.Errorf("observedGeneration %d (generation %d), want stamped=%v", s.endpoint.Status.ObservedGeneration, s.endpoint.Generation, tc.wantObserved)
			}
		})
	}
}

func sameConds(a, b []cond) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || x == y
		}
		if !found {
			return false
		}
	}
	return true
}

func TestPreflightManaged(t *testing.T) {
	base := func(opts ...func(*voicev1alpha1.StreamEndpoint)) *voicev1alpha1.StreamEndpoint {
		return managedEndpoint("ns", "bot", opts...)
	}
	for _, tc := range []struct {
		name         string
		ep           *voicev1alpha1.StreamEndpoint
		gatewayImage string
		wantReason   string
	}{
		{"defaults pass", base(), "gw:1", ""},
		{"no gateway image anywhere", base(), "", ReasonMissingGatewayImage},
		{"own gateway image", base(func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.Gateway.Image = "gw:2" }), "", ""},
		{"gateway off needs no image", base(func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.Gateway.Enabled = ptr.To(false) }), "", ""},
		{"bot on gateway port", base(func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.Port = 8443 }), "gw:1", ReasonPortConflict},
		{"bot on metrics port", base(func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.Port = 9090 }), "gw:1", ReasonPortConflict},
		{"bot on 9090 without gateway", base(func(ep *voicev1alpha1.StreamEndpoint) {
			ep.Spec.Port = 9090
			ep.Spec.Gateway.Enabled = ptr.To(false)
		}), "", ""},
		{"name with a dot", base(func(ep *voicev1alpha1.StreamEndpoint) { ep.Name = "a.b" }), "gw:1", ReasonInvalidName},
		{"name starting with a digit", base(func(ep *voicev1alpha1.StreamEndpoint) { ep.Name = "1bot" }), "gw:1", ReasonInvalidName},
		{"no image", base(func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.Image = "" }), "gw:1", ReasonInvalidSpec},
		{"ingress without host", base(func(ep *voicev1alpha1.StreamEndpoint) {
			ep.Spec.Ingress = &voicev1alpha1.IngressSpec{}
			ep.Spec.PublicURL = "wss:///path"
		}), "gw:1", ReasonInvalidPublicURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := preflightManaged(tc.ep, tc.gatewayImage)
			var reason string
			if stall := (*stalledError)(nil); errors.As(err, &stall) {
				reason = stall.reason
			} else if err != nil {
				t.Fatalf("not a stall: %v", err)
			}
			if reason != tc.wantReason {
				t.Errorf("stall reason %q (%v), want %q", reason, err, tc.wantReason)
			}
		})
	}
}

func TestBotEnvUserOverridesDefaults(t *testing.T) {
	ep := managedEndpoint("ns", "bot", func(ep *voicev1alpha1.StreamEndpoint) {
		ep.Spec.Env = []corev1.EnvVar{{Name: "CALLFLEET_LISTEN_MODE", Value: "caller"}, {Name: "X", Value: "1"}}
	})
	env := botEnv(ep)
	var names []string
	for _, e := range env {
		names = append(names, e.Name+"="+e.Value)
	}
	want := []string{"CALLFLEET_SAMPLE_RATE=8000", "CALLFLEET_PORT=8080", "CALLFLEET_LISTEN_MODE=caller", "X=1"}
	if len(names) != len(want) {
		t.Fatalf("env %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("env %v, want %v", names, want)
		}
	}
}

func TestParsePublicURL(t *testing.T) {
	for _, tc := range []struct {
		in       string
		want     ingressRoute
		wantFail bool
	}{
		{in: "wss://Bots.Example.com/a/b", want: ingressRoute{host: "bots.example.com", path: "/a/b"}},
		{in: "ws://bots.example.com:8080", want: ingressRoute{host: "bots.example.com", path: "/"}},
		{in: "wss://bots.example.com./", want: ingressRoute{host: "bots.example.com", path: "/"}},
		{in: "ws://[::1]:80/x", want: ingressRoute{host: "", path: "/x"}},
		{in: "https://bots.example.com/", wantFail: true},
		{in: "wss:///x", wantFail: true},
	} {
		got, err := parsePublicURL(tc.in)
		if (err != nil) != tc.wantFail || (!tc.wantFail && got != tc.want) {
			t.Errorf("parsePublicURL(%q) = %+v, %v; want %+v (fail: %v)", tc.in, got, err, tc.want, tc.wantFail)
		}
	}
}

func TestHealthMessageHidesPassword(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	u := strings.Replace(srv.URL, "http://", "http://probe:s3cret@", 1) + "/healthz?x=1"
	h := checkHealth(context.Background(), srv.Client(), u)
	if h.healthy || h.message != unhealthyMessage || strings.Contains(h.detail, "s3cret") || !strings.Contains(h.detail, "418") {
		t.Errorf("checkHealth = %+v, want unhealthy, the status in the detail only, and no password", h)
	}
}

func TestHealthURLAllowed(t *testing.T) {
	for _, tc := range []struct {
		name, publicURL, healthURL string
		ok                         bool
	}{
		{"publicURL's host", "wss://bots.example.com/stream", "https://bots.example.com/healthz", true},
		{"publicURL's host, another port", "wss://bots.example.com/stream", "http://bots.example.com:8080/healthz", true},
		{"a Service of the namespace", "wss://bots.example.com/", "http://bot-health.tenant.svc:8080/ready", true},
		{"a Service of the namespace, full name", "wss://bots.example.com/", "http://bot-health.tenant.svc.cluster.local/ready", true},
		// The demo: handler processes on loopback, publicURL there too.
		{"loopback where the handler is", "ws://127.0.0.1:18443/", "http://127.0.0.1:18443/healthz", true},
		{"loopback elsewhere", "wss://bots.example.com/", "http://127.0.0.1:2379/version", false},
		{"localhost elsewhere", "wss://bots.example.com/", "http://localhost:2379/version", false},
		{"another namespace's Service", "wss://bots.example.com/", "http://etcd.kube-system.svc:2379/version", false},
		{"a Service's pod subdomain", "wss://bots.example.com/", "http://a.b.tenant.svc/", false},
		{"metadata address", "wss://bots.example.com/", "http://169.254.169.254/latest/meta-data/", false},
		{"metadata address as publicURL too", "ws://169.254.169.254/", "http://169.254.169.254/latest/", false},
		{"another host", "wss://bots.example.com/", "https://intranet.example.com/", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := &voicev1alpha1.StreamEndpoint{}
			ep.Namespace = "tenant"
			ep.Spec.PublicURL = tc.publicURL
			ep.Spec.External = &voicev1alpha1.ExternalEndpoint{HealthURL: tc.healthURL}
			if err := healthURLAllowed(ep); (err == nil) != tc.ok {
				t.Errorf("healthURLAllowed = %v, want allowed %v", err, tc.ok)
			}
		})
	}
}
