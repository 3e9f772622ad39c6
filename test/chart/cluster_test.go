package chart_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/callfleet/callfleet/internal/testenv"
)

// cluster is a real kube-apiserver + etcd (envtest) with callfleet's CRDs,
// started by the first test that needs it and stopped by TestMain.
var cluster struct {
	once       sync.Once
	env        *testenv.Env
	kubeconfig string
	err        error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster.env != nil {
		if err := cluster.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}
	if cluster.kubeconfig != "" {
		_ = os.RemoveAll(filepath.Dir(cluster.kubeconfig))
	}
	_ = os.RemoveAll(toolHome())
	os.Exit(code)
}

// kubeconfig starts the control plane once and returns the path of a
// kubeconfig for its admin user.
func kubeconfig(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"kube-apiserver", "etcd", "kubectl"} {
		tool(t, name)
	}
	cluster.once.Do(func() {
		env, err := testenv.Start()
		if err != nil {
			cluster.err = err
			return
		}
		cluster.env = env
		cluster.kubeconfig, cluster.err = writeKubeconfig(env)
		if cluster.err == nil {
			cluster.err = installStubCRDs()
		}
	})
	if cluster.err != nil {
		t.Fatalf("control plane: %v", cluster.err)
	}
	return cluster.kubeconfig
}

// writeKubeconfig writes env's admin credentials as a kubeconfig file.
func writeKubeconfig(env *testenv.Env) (string, error) {
	c := env.Config
	if len(c.CertData) == 0 || len(c.KeyData) == 0 {
		return "", fmt.Errorf("envtest config has no client certificate (host %s)", c.Host)
	}
	server := c.Host
	if !strings.Contains(server, "://") {
		server = "https://" + server
	}
	cfg := map[string]any{
		"apiVersion":      "v1",
		"kind":            "Config",
		"current-context": "envtest",
		"clusters": []any{map[string]any{"name": "envtest", "cluster": map[string]any{
			"server":                     server,
			"certificate-authority-data": c.CAData,
		}}},
		"users": []any{map[string]any{"name": "envtest-admin", "user": map[string]any{
			"client-certificate-data": c.CertData,
			"client-key-data":         c.KeyData,
		}}},
		"contexts": []any{map[string]any{"name": "envtest", "context": map[string]any{
			"cluster": "envtest", "user": "envtest-admin",
		}}},
	}
	// []byte marshals as base64, which is what the *-data fields hold.
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "callfleet-chart-kubeconfig-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, b, 0o600)
}

// stubCRDs stand in for prometheus-operator's CRDs so ServiceMonitor,
// PodMonitor and PrometheusRule manifests can be dry-run applied; they accept any spec.
const stubCRDs = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: podmonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: PodMonitor, listKind: PodMonitorList, plural: podmonitors, singular: podmonitor}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: prometheusrules.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: PrometheusRule, listKind: PrometheusRuleList, plural: prometheusrules, singular: prometheusrule}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

func installStubCRDs() error {
	f, err := os.CreateTemp("", "callfleet-stub-crds-*.yaml")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if _, err := f.WriteString(stubCRDs); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	kubectlPath := filepath.Join(toolsDir(), "kubectl")
	if out, errOut, err := runPath(kubectlPath, "--kubeconfig", cluster.kubeconfig, "apply", "-f", f.Name()); err != nil {
		return fmt.Errorf("installing stub CRDs: %v\n%s%s", err, out, errOut)
	}
	_, errOut, err := runPath(kubectlPath, "--kubeconfig", cluster.kubeconfig, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/servicemonitors.monitoring.coreos.com", "crd/podmonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com")
	if err != nil {
		return fmt.Errorf("waiting for stub CRDs: %v\n%s", err, errOut)
	}
	return nil
}

// kubectl runs kubectl against the control plane.
func kubectl(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return run(t, "kubectl", append([]string{"--kubeconfig", kubeconfig(t)}, args...)...)
}

func mustKubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, err := kubectl(t, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// helm runs helm against the control plane.
func helm(t testing.TB, args ...string) string {
	t.Helper()
	return mustRun(t, "helm", append([]string{"--kubeconfig", kubeconfig(t)}, args...)...)
}

// createNamespace makes a namespace that enforces and warns on the
// restricted Pod Security Standard, so applying a pod template that breaks
// it shows a warning the tests turn into a failure.
func createNamespace(t testing.TB, name string) {
	t.Helper()
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
    pod-security.kubernetes.io/audit: restricted
`, name)
	applyStdin(t, manifest, "apply", "-f", "-")
}

// applyStdin runs kubectl with manifest on stdin.
func applyStdin(t testing.TB, manifest string, args ...string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "manifest-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(manifest); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for i, a := range args {
		if a == "-" {
			args[i] = f.Name()
		}
	}
	return mustKubectl(t, args...)
}

// serverDryRun applies manifests (a file, or -k dir) with
// --dry-run=server and fails on errors and on warnings (Pod Security,
// deprecated APIs, unknown fields).
func serverDryRun(t testing.TB, args ...string) string {
	t.Helper()
	all := append([]string{"apply", "--dry-run=server", "--validate=strict"}, args...)
	out, errOut, err := kubectl(t, all...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(all, " "), err, out, errOut)
	}
	if w := warnings(errOut); len(w) > 0 {
		t.Errorf("kubectl %s warned:\n%s", strings.Join(all, " "), strings.Join(w, "\n"))
	}
	return out
}

// warnings are the apiserver's and kubectl's warnings in stderr, except
// kubectl's note that objects created by envtest (the CRDs) lack its
// last-applied annotation.
func warnings(stderr string) []string {
	var w []string
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "Warning") && !strings.Contains(line, "last-applied-configuration") {
			w = append(w, line)
		}
	}
	return w
}
