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
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2/textlogger"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
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

// testMonitorRoot is the root monitor token key of the second manager, the
// one given a monitor key (as the chart does when the console is on).
var testMonitorRoot = []byte("monitor-root-of-the-test-manager-012345")

// labelMonitorOn puts a StreamEndpoint under the second manager, whose
// Reconciler has MonitorTokenKeys; the first one (no monitor key) never
// sees it. Moving the label moves the endpoint between the two, as
// restarting the manager with or without the key would.
const labelMonitorOn = "test.callfleet.dev/monitor"

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

	monitorOff, err := labels.Parse(labelMonitorOn + "!=on")
	if err != nil {
		panic(err)
	}
	mgr, err = startManager(env, monitorOff, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	monitorMgr, err := startManager(env, labels.SelectorFromSet(labels.Set{labelMonitorOn: "on"}), [][]byte{testMonitorRoot})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	for _, mg := range []ctrl.Manager{mgr, monitorMgr} {
		go func() { done <- mg.Start(ctx) }()
		if !mg.GetCache().WaitForCacheSync(ctx) {
			fmt.Fprintln(os.Stderr, "cache did not sync")
			cancel()
			return 1
		}
	}

	code := m.Run()
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}
	return code
}

// startManager makes a manager running the Reconciler for the
// StreamEndpoints endpoints selects, with the given monitor root keys. The
// two managers of the suite select disjoint endpoints, so they never fight
// over one; the other's children wake a manager for an endpoint it does
// not see, which it ignores (not found).
func startManager(env *testenv.Env, endpoints labels.Selector, monitorKeys [][]byte) (ctrl.Manager, error) {
	m, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// As cmd/manager does.
		Cache: cache.Options{
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject:         map[client.Object]cache.ByObject{&voicev1alpha1.StreamEndpoint{}: {Label: endpoints}},
		},
		// Two controllers of one name in one process (one per manager).
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	r := &Reconciler{
		Client:           m.GetClient(),
		APIReader:        m.GetAPIReader(),
		StreamTokenKeys:  streamtoken.Keys{testRootKey},
		MonitorTokenKeys: monitorKeys,
		Scheme:           m.GetScheme(),
		GatewayImage:     testGatewayImage,
	}
	if err := r.SetupWithManager(m); err != nil {
		return nil, fmt.Errorf("setting up the controller: %w", err)
	}
	return m, nil
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
