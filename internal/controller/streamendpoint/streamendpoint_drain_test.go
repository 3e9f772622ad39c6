package streamendpoint

import (
	"bytes"
	"context"
	"fmt"
	"maps"
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
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/streamtoken"
)

// TestPodTemplateDrainsCalls: the pod template lets a stopping pod keep its
// calls. The grace period covers the drain; the gateway is told the drain,
// the goodbye and its per-pod capacity; the bot's preStop hook waits for
// the gateway's drain; readiness is the gateway's (it fails at once on
// SIGTERM); a rollout adds a pod before it takes one away. The apiserver
// admits a Pod made from it in a restricted namespace.
func TestPodTemplateDrainsCalls(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const goodbye = "https://audio.example.com/goodbye.wav"
	ep := managedEndpoint(ns, "long-calls", func(ep *voicev1alpha1.StreamEndpoint) {
		ep.Spec.MaxStreamsPerReplica = 8
		ep.Spec.Drain = voicev1alpha1.DrainPolicy{GracePeriodSeconds: ptr.To[int32](1800), GoodbyeURL: goodbye, GoodbyeSeconds: 20}
		ep.Spec.Gateway.BotReconnectSeconds = ptr.To[int32](45)
	})
	create(t, ep)
	dep := waitForDeployment(t, ns, "long-calls", nil)

	var problems []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	pod := dep.Spec.Template.Spec
	check(ptr.Deref(pod.TerminationGracePeriodSeconds, 0) == 1830, "terminationGracePeriodSeconds %v, want the drain 1800 + 30", pod.TerminationGracePeriodSeconds)
	ru := dep.Spec.Strategy.RollingUpdate
	check(dep.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType && ru != nil &&
		ru.MaxUnavailable != nil && ru.MaxUnavailable.IntValue() == 0 && ru.MaxSurge != nil && ru.MaxSurge.String() == "25%",
		"strategy %+v, want a rolling update with maxUnavailable 0", dep.Spec.Strategy)

	gw := container(pod, ContainerGateway)
	bot := container(pod, ContainerBot)
	if gw == nil || bot == nil {
		t.Fatalf("containers %+v", pod.Containers)
	}
	for _, arg := range []string{"--shutdown-drain=1800s", "--goodbye-lead=20s", "--goodbye-url=" + goodbye, "--max-streams=8", "--bot-reconnect=45s"} {
		check(slices.Contains(gw.Args, arg), "gateway args %q lack %s", gw.Args, arg)
	}
	check(gw.ReadinessProbe != nil && gw.ReadinessProbe.HTTPGet != nil && gw.ReadinessProbe.HTTPGet.Path == "/readyz",
		"gateway readiness %+v, want /readyz (unready from the first moment of the drain)", gw.ReadinessProbe)
	hook := bot.Lifecycle
	check(hook != nil && hook.PreStop != nil && hook.PreStop.HTTPGet != nil &&
		hook.PreStop.HTTPGet.Path == "/drain" && hook.PreStop.HTTPGet.Port == intstr.FromInt32(9090) &&
		hook.PreStop.HTTPGet.Scheme == corev1.URISchemeHTTP,
		"bot preStop %+v, want GET :9090/drain (the gateway's metrics port)", hook)
	check(gw.Lifecycle == nil, "gateway lifecycle %+v: SIGTERM is its drain", gw.Lifecycle)
	if err := errorsf(problems); err != nil {
		t.Error(err)
	}

	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "long-calls-pod", Labels: dep.Spec.Template.Labels},
		Spec:       dep.Spec.Template.Spec,
	}
	if err := k8s.Create(context.Background(), p); err != nil {
		t.Errorf("the restricted namespace refused a Pod from the template: %v", err)
	}

	// Defaults: a Call's default maximum duration, the bot reconnect of 30 s.
	def := managedEndpoint(ns, "defaults")
	create(t, def)
	dd := waitForDeployment(t, ns, "defaults", nil)
	if g := ptr.Deref(dd.Spec.Template.Spec.TerminationGracePeriodSeconds, 0); g != 630 {
		t.Errorf("default grace %d, want 600 + 30", g)
	}
	args := container(dd.Spec.Template.Spec, ContainerGateway).Args
	if !slices.Contains(args, "--shutdown-drain=600s") || slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--goodbye-url") }) {
		t.Errorf("default gateway args %q", args)
	}

	// A bot that speaks raw Piopiy drains itself: no hook, the same grace.
	raw := managedEndpoint(ns, "raw", func(ep *voicev1alpha1.StreamEndpoint) { ep.Spec.Gateway.Enabled = ptr.To(false) })
	create(t, raw)
	rd := waitForDeployment(t, ns, "raw", nil)
	if b := container(rd.Spec.Template.Spec, ContainerBot); b.Lifecycle != nil || ptr.Deref(rd.Spec.Template.Spec.TerminationGracePeriodSeconds, 0) != 630 {
		t.Errorf("raw bot lifecycle %+v grace %v", b.Lifecycle, rd.Spec.Template.Spec.TerminationGracePeriodSeconds)
	}
}

// TestDisruptionBudgetForBotPods: a PodDisruptionBudget lets a node drain
// evict one bot pod at a time, selects exactly the endpoint's pods, and is
// owned by the endpoint.
func TestDisruptionBudgetForBotPods(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ep := managedEndpoint(ns, "bot")
	create(t, ep)
	dep := waitForDeployment(t, ns, "bot", nil)
	pdb := &policyv1.PodDisruptionBudget{}
	eventually(t, func() error { return k8s.Get(context.Background(), key(ns, "bot"), pdb) })

	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil {
		t.Errorf("budget %+v, want maxUnavailable 1", pdb.Spec)
	}
	if ptr.Deref(pdb.Spec.UnhealthyPodEvictionPolicy, "") != policyv1.AlwaysAllow {
		t.Errorf("unhealthyPodEvictionPolicy %v, want AlwaysAllow (a crash-looping pod holds no calls)", pdb.Spec.UnhealthyPodEvictionPolicy)
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("selector %v does not select the endpoint's pods (%v)", pdb.Spec.Selector, err)
	}
	other := managedEndpoint(ns, "other")
	create(t, other)
	od := waitForDeployment(t, ns, "other", nil)
	if sel.Matches(labels.Set(od.Spec.Template.Labels)) {
		t.Errorf("selector %v selects another endpoint's pods", pdb.Spec.Selector)
	}
	got := &voicev1alpha1.StreamEndpoint{}
	if err := k8s.Get(context.Background(), key(ns, "bot"), got); err != nil {
		t.Fatal(err)
	}
	if !metav1.IsControlledBy(pdb, got) {
		t.Errorf("budget owners %+v", pdb.OwnerReferences)
	}
}

// TestStatusCountsDrainingPods: status reports each pod's calls, counts the
// pods draining, and offers pacing only the free slots of ready pods that
// are not draining.
func TestStatusCountsDrainingPods(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	ep := managedEndpoint(ns, "bot", func(ep *voicev1alpha1.StreamEndpoint) {
		ep.Spec.Replicas = ptr.To[int32](3)
		ep.Spec.MaxStreamsPerReplica = 3
	})
	create(t, ep)
	dep := waitForDeployment(t, ns, "bot", nil)

	// Three pods from the template, as the ReplicaSet controller would make
	// them; "bot-c" is being deleted (a finalizer keeps it, as the kubelet
	// does while the pod drains).
	for _, name := range []string{"bot-a", "bot-b", "bot-c"} {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: dep.Spec.Template.Labels},
			Spec:       dep.Spec.Template.Spec,
		}
		if name == "bot-c" {
			p.Finalizers = []string{"test.callfleet.dev/draining"}
		}
		create(t, p)
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		if err := k8s.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
		if name == "bot-c" {
			if err := k8s.Delete(ctx, p); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = k8s.Patch(context.Background(), p, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`)))
			})
		}
	}
	for _, c := range []struct{ name, pod string }{{"c1", "bot-a"}, {"c2", "bot-a"}, {"c3", "bot-b"}, {"c4", "bot-c"}} {
		call := newCall(ns, c.name, "bot")
		create(t, call)
		eventually(t, func() error {
			if err := get(call); err != nil {
				return err
			}
			call.Status.Stream = &voicev1alpha1.CallStreamStatus{State: voicev1alpha1.StreamPhaseConnected, Pod: c.pod, Attempt: 1}
			return k8s.Status().Update(ctx, call)
		})
	}
	// Two ready: bot-c turned unready when its drain began.
	setDeploymentStatus(t, ns, "bot", 2)

	want := []voicev1alpha1.EndpointPodStatus{
		{Name: "bot-a", Ready: true, ActiveStreams: 2},
		{Name: "bot-b", Ready: true, ActiveStreams: 1},
		{Name: "bot-c", Draining: true, ActiveStreams: 1},
	}
	got := &voicev1alpha1.StreamEndpoint{}
	eventually(t, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(ep), got); err != nil {
			return err
		}
		st := got.Status
		if !reflect.DeepEqual(st.Pods, want) || st.DrainingReplicas != 1 || st.FreeSlots != (3-2)+(3-1) || st.ActiveStreams != 4 {
			// Pods are not watched: nudge a reconcile as a status change of
			// the Deployment would.
			touch(t, ep)
			return fmt.Errorf("status pods %+v draining %d free %d active %d", st.Pods, st.DrainingReplicas, st.FreeSlots, st.ActiveStreams)
		}
		return nil
	})
	if got.Status.Capacity != 2*3 {
		t.Errorf("capacity %d, want the ready pods' 6", got.Status.Capacity)
	}
}

// touch changes an annotation: the controller reconciles on that.
func touch(t *testing.T, ep *voicev1alpha1.StreamEndpoint) {
	t.Helper()
	cur := &voicev1alpha1.StreamEndpoint{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(ep), cur); err != nil {
		t.Fatal(err)
	}
	base := cur.DeepCopy()
	if cur.Annotations == nil {
		cur.Annotations = map[string]string{}
	}
	cur.Annotations["test.callfleet.dev/touch"] = fmt.Sprint(time.Now().UnixNano())
	if err := k8s.Patch(context.Background(), cur, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
}

// TestHealthURLOnLoopbackRefused: an external endpoint whose health URL
// points at the manager's loopback (etcd, say) rather than at its handler
// stalls, and the controller never sends it a request.
func TestHealthURLOnLoopbackRefused(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	hits := &atomic.Int32{}
	probe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"etcdserver":"3.6.16"}`))
	}))
	t.Cleanup(probe.Close)
	ep := externalEndpoint(ns, "scanner", probe.URL+"/version", func(ep *voicev1alpha1.StreamEndpoint) {
		ep.Spec.PublicURL = "wss://bots.example.com/stream"
	})
	create(t, ep)
	got := waitForCondition(t, ep, voicev1alpha1.ConditionStalled, metav1.ConditionTrue, ReasonHealthURLNotAllowed)
	if err := hasCondition(got, voicev1alpha1.ConditionReady, metav1.ConditionFalse, ReasonHealthURLNotAllowed); err != nil {
		t.Error(err)
	}
	for _, c := range got.Status.Conditions {
		if strings.Contains(c.Message, "etcd") || strings.Contains(c.Message, "200") {
			t.Errorf("condition %s echoes the response: %q", c.Type, c.Message)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the controller sent %d requests to the refused health URL", n)
	}
	if got.Status.Capacity != 0 || got.Status.FreeSlots != 0 {
		t.Errorf("capacity %d free %d for a stalled endpoint", got.Status.Capacity, got.Status.FreeSlots)
	}
}

// TestEndpointGetsItsOwnDerivedKey: the gateway's Secret holds the key
// derived for this namespace and endpoint, never the manager's root, and
// only the gateway container mounts it.
func TestEndpointGetsItsOwnDerivedKey(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, managedEndpoint(ns, "bot"))
	dep := waitForDeployment(t, ns, "bot", nil)
	sec := &corev1.Secret{}
	eventually(t, func() error { return k8s.Get(context.Background(), key(ns, "bot-stream-token"), sec) })
	want, err := streamtoken.DeriveKey(testRootKey, ns, "bot")
	if err != nil {
		t.Fatal(err)
	}
	if len(sec.Data) != 1 || !bytes.Equal(sec.Data["key"], want) {
		t.Errorf("Secret data keys %v: want only the derived key", slices.Collect(maps.Keys(sec.Data)))
	}
	for name, v := range sec.Data {
		if bytes.Contains(v, testRootKey) {
			t.Errorf("Secret key %s holds the root key", name)
		}
	}
	other, _ := streamtoken.DeriveKey(testRootKey, "another-namespace", "bot")
	if bytes.Equal(want, other) {
		t.Error("two namespaces share a key")
	}
	if sec.Labels[LabelStreamEndpoint] != "bot" || len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].Kind != "StreamEndpoint" {
		t.Errorf("Secret labels %v owners %+v", sec.Labels, sec.OwnerReferences)
	}
	for _, c := range dep.Spec.Template.Spec.Containers {
		mounts := slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "stream-token" })
		if mounts != (c.Name == ContainerGateway) {
			t.Errorf("container %s mounts the key: %v", c.Name, mounts)
		}
	}
}

func TestStreamKeyDataDuringRotation(t *testing.T) {
	ep := &voicev1alpha1.StreamEndpoint{}
	ep.Namespace, ep.Name = "tenant", "bots"
	cur := bytes.Repeat([]byte("c"), 32)
	prev := bytes.Repeat([]byte("p"), 32)
	data, err := streamKeyData(streamtoken.Keys{cur, prev}, ep)
	if err != nil {
		t.Fatal(err)
	}
	wantCur, _ := streamtoken.DeriveKey(cur, "tenant", "bots")
	wantPrev, _ := streamtoken.DeriveKey(prev, "tenant", "bots")
	if len(data) != 2 || !bytes.Equal(data["key"], wantCur) || !bytes.Equal(data["previous"], wantPrev) {
		t.Errorf("data %v", slices.Collect(maps.Keys(data)))
	}
	if _, err := streamKeyData(streamtoken.Keys{[]byte("short")}, ep); err == nil {
		t.Error("a short root key was accepted")
	}
}
