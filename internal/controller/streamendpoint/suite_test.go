package streamendpoint

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2/textlogger"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/streamtoken"
	"github.com/callfleet/callfleet/internal/testenv"
)

const (
	// testGatewayImage is the manager's default gateway image in the tests.
	testGatewayImage = "ghcr.io/callfleet/stream-gateway:test"
	// timeout is how long a test waits for the controller: generous, as
	// the machine running the tests may be busy. Tests never assert timings.
	timeout = 90 * time.Second
)

var (
	// k8s talks to the apiserver directly (no cache), as a user would.
	k8s client.Client
	// testEnv is the running control plane.
	testEnv *testenv.Env
	// mgr runs the Reconciler under test.
	mgr ctrl.Manager
)

// testRootKey is the manager's root stream token key in these tests.
var testRootKey = []byte("root-key-of-the-test-manager-0123456789")

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// CALLFLEET_TEST_LOG=1 shows the controller's logs.
	logger := logr.Discard()
	if os.Getenv("CALLFLEET_TEST_LOG") != "" {
		logger = textlogger.NewLogger(textlogger.NewConfig(textlogger.Verbosity(1)))
	}
	ctrl.SetLogger(logger)

	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	testEnv, k8s = env, env.Client

	mgr, err = ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// As cmd/manager does.
		Cache: cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating manager:", err)
		return 1
	}
	r := &Reconciler{
		Client:          mgr.GetClient(),
		APIReader:       mgr.GetAPIReader(),
		StreamTokenKeys: streamtoken.Keys{testRootKey},
		Scheme:          mgr.GetScheme(),
		GatewayImage:    testGatewayImage,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, "setting up the controller:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		fmt.Fprintln(os.Stderr, "cache did not sync")
		cancel()
		return 1
	}

	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
	}
	return code
}

// eventually calls f until it returns nil, failing the test with f's last
// error after timeout.
func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// newNamespace makes a namespace for one test, enforcing the restricted Pod
// Security Standard so that any Pod made from our templates is checked by
// the apiserver's own admission.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "se-",
		Labels: map[string]string{
			"pod-security.kubernetes.io/enforce": "restricted",
			"pod-security.kubernetes.io/warn":    "restricted",
		},
	}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	// envtest runs no namespace controller, so namespaces are never removed;
	// each test gets its own instead.
	return ns.Name
}

// managedEndpoint is a managed-mode endpoint with the given changes.
func managedEndpoint(ns, name string, opts ...func(*voicev1alpha1.StreamEndpoint)) *voicev1alpha1.StreamEndpoint {
	ep := &voicev1alpha1.StreamEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       voicev1alpha1.StreamEndpointSpec{Image: "ghcr.io/example/bot:v1"},
	}
	for _, o := range opts {
		o(ep)
	}
	return ep
}

// externalEndpoint is an external-mode endpoint with the given changes.
// Its publicURL is on the health URL's host, where the handler runs (the
// controller checks no other host).
func externalEndpoint(ns, name, healthURL string, opts ...func(*voicev1alpha1.StreamEndpoint)) *voicev1alpha1.StreamEndpoint {
	u, err := url.Parse(healthURL)
	if err != nil {
		panic(err)
	}
	ep := &voicev1alpha1.StreamEndpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: voicev1alpha1.StreamEndpointSpec{
			PublicURL: "ws://" + u.Host + "/stream",
			External:  &voicev1alpha1.ExternalEndpoint{HealthURL: healthURL, Capacity: 7},
		},
	}
	for _, o := range opts {
		o(ep)
	}
	return ep
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// update re-reads ep, applies change and writes it, retrying on conflicts
// with the controller.
func update[T client.Object](t *testing.T, obj T, change func(T)) {
	t.Helper()
	eventually(t, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change(obj)
		return k8s.Update(context.Background(), obj)
	})
}

// get reads the object named like obj into obj.
func get(obj client.Object) error {
	return k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
}

func key(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

// waitForCondition waits until ep has condition typ with status and reason,
// computed for ep's current generation, and returns ep as read then.
func waitForCondition(t *testing.T, ep *voicev1alpha1.StreamEndpoint, typ string, status metav1.ConditionStatus, reason string) *voicev1alpha1.StreamEndpoint {
	t.Helper()
	got := &voicev1alpha1.StreamEndpoint{}
	eventually(t, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(ep), got); err != nil {
			return err
		}
		return hasCondition(got, typ, status, reason)
	})
	return got
}

func hasCondition(ep *voicev1alpha1.StreamEndpoint, typ string, status metav1.ConditionStatus, reason string) error {
	c := meta.FindStatusCondition(ep.Status.Conditions, typ)
	switch {
	case c == nil:
		return fmt.Errorf("no %s condition in %+v", typ, ep.Status.Conditions)
	case c.Status != status || c.Reason != reason:
		return fmt.Errorf("%s is %s/%s (%q), want %s/%s", typ, c.Status, c.Reason, c.Message, status, reason)
	case c.ObservedGeneration != ep.Generation:
		return fmt.Errorf("%s was computed for generation %d, the endpoint is at %d", typ, c.ObservedGeneration, ep.Generation)
	}
	return nil
}

// errorsf joins problems found in one check into one error, nil for none.
func errorsf(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = errors.New(p)
	}
	return errors.Join(errs...)
}
