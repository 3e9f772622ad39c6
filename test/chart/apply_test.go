package chart_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCRDsInstalled: the control plane serves callfleet's kinds (testenv
// installs config/crd/bases for real, which the dry runs below rely on).
func TestCRDsInstalled(t *testing.T) {
	out := mustKubectl(t, "api-resources", "--api-group=voice.callfleet.dev", "-o", "name")
	for _, r := range []string{"calls", "streamendpoints", "agentpools", "campaigns"} {
		if !strings.Contains(out, r+".voice.callfleet.dev") {
			t.Errorf("api-resources lacks %s:\n%s", r, out)
		}
	}
	// The chart's copies install too (server-side dry run of an update).
	serverDryRun(t, "-f", filepath.Join(chartDir, "crds"))
}

// TestPodSecurityIsChecked shows the dry runs below would catch a pod
// template outside the restricted Pod Security Standard: the apiserver
// warns, and serverDryRun's warnings() sees it.
func TestPodSecurityIsChecked(t *testing.T) {
	createNamespace(t, "pod-security")
	const rootPod = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: runs-as-root
spec:
  selector:
    matchLabels: {app: root}
  template:
    metadata:
      labels: {app: root}
    spec:
      containers:
        - name: c
          image: example.com/root:1
`
	f := filepath.Join(t.TempDir(), "root.yaml")
	if err := os.WriteFile(f, []byte(rootPod), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := kubectl(t, "apply", "--dry-run=server", "-n", "pod-security", "-f", f)
	if err != nil {
		t.Fatal(err)
	}
	if w := warnings(errOut); len(w) == 0 || !strings.Contains(strings.Join(w, " "), "PodSecurity") {
		t.Errorf("no PodSecurity warning for a root pod; stderr:\n%s", errOut)
	}
}

// TestChartAppliesToAPIServer renders the chart with each values set and
// applies it with --dry-run=server: the apiserver validates every object
// (strict field validation) and Pod Security admission (restricted) checks
// the manager's pod template.
func TestChartAppliesToAPIServer(t *testing.T) {
	for _, v := range variants(t) {
		t.Run(v.name, func(t *testing.T) {
			ns := "chart-" + v.name
			createNamespace(t, ns)
			manifests := render(t, ns, v.args...)
			for _, o := range decode(t, manifests) {
				if n := o.namespace(); n != "" && n != ns {
					createNamespace(t, n) // streamToken.namespaces
				}
			}
			f := filepath.Join(t.TempDir(), "rendered.yaml")
			if err := os.WriteFile(f, []byte(manifests), 0o600); err != nil {
				t.Fatal(err)
			}
			out := serverDryRun(t, "-f", f)
			if !strings.Contains(out, "deployment.apps/") || !strings.Contains(out, "(server dry run)") {
				t.Errorf("dry run did not apply the Deployment:\n%s", out)
			}
		})
	}
}

// TestKustomizeAppliesToAPIServer: config/default (and config/prometheus)
// apply with --dry-run=server, as a GitOps tool would apply them.
func TestKustomizeAppliesToAPIServer(t *testing.T) {
	createNamespace(t, "callfleet-system")
	out := serverDryRun(t, "-k", "config/default")
	for _, want := range []string{
		"customresourcedefinition.apiextensions.k8s.io/calls.voice.callfleet.dev",
		"clusterrole.rbac.authorization.k8s.io/callfleet-manager",
		"role.rbac.authorization.k8s.io/callfleet-leader-election",
		"serviceaccount/callfleet-manager",
		"deployment.apps/callfleet-manager",
		"service/callfleet-webhook",
		"poddisruptionbudget.policy/callfleet-manager",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply -k config/default lacks %s:\n%s", want, out)
		}
	}

	// config/prometheus as config/default would include it.
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, filepath.Join(root, "config", "prometheus"))
	if err != nil {
		t.Fatal(err)
	}
	k := "namespace: callfleet-system\nnamePrefix: callfleet-\nresources:\n  - " + rel + "\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	out = serverDryRun(t, "-k", dir)
	for _, want := range []string{"servicemonitor.monitoring.coreos.com/callfleet-manager", "podmonitor.monitoring.coreos.com/callfleet-stream-gateways", "prometheusrule.monitoring.coreos.com/callfleet-alerts"} {
		if !strings.Contains(out, want) {
			t.Errorf("config/prometheus lacks %s:\n%s", want, out)
		}
	}
}

// TestSamplesApply: each sample, and the samples kustomization, is valid
// for the CRDs' OpenAPI and CEL rules.
func TestSamplesApply(t *testing.T) {
	createNamespace(t, "samples")
	files, _ := filepath.Glob(filepath.Join(root, "config", "samples", "*.yaml"))
	applied := 0
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			serverDryRun(t, "-n", "samples", "-f", rel)
		})
		applied++
	}
	if applied < 4 {
		t.Errorf("%d samples, want at least a StreamEndpoint, a Call, an AgentPool and an account Secret", applied)
	}
	out := serverDryRun(t, "-n", "samples", "-k", "config/samples")
	for _, want := range []string{"streamendpoint.voice.callfleet.dev/demo-bot", "call.voice.callfleet.dev/welcome-call", "agentpool.voice.callfleet.dev/support-agents", "secret/piopiy-account"} {
		if !strings.Contains(out, want) {
			t.Errorf("config/samples lacks %s:\n%s", want, out)
		}
	}
}

// TestHelmInstallAndUpgradeKeepTokens installs the chart for real, then
// upgrades it: the generated webhook token and stream key survive (lookup),
// so the URL pasted into Piopiy stays valid and no rollout is caused; the
// notes show the webhook path and how to read the token, never the token.
func TestHelmInstallAndUpgradeKeepTokens(t *testing.T) {
	ns := "helm-install"
	createNamespace(t, ns)
	notes := helm(t, "install", releaseName, chartDir, "--namespace", ns,
		"--set", "webhook.ingress.enabled=true", "--set", "webhook.ingress.host=hooks.example.com")

	token := secretData(t, ns, "callfleet-webhook-token", "token")
	key := secretData(t, ns, "callfleet-stream-token", "key")
	if len(token) != 32 || len(key) < 32 {
		t.Fatalf("generated token %d and key %d characters, want 32 and 32+", len(token), len(key))
	}
	checksums := mustKubectl(t, "get", "deployment", "-n", ns, "callfleet", "-o", "jsonpath={.spec.template.metadata.annotations}")

	for _, want := range []string{
		"https://hooks.example.com/piopiy/events/${TOKEN}",
		"kubectl get secret --namespace " + ns + " callfleet-webhook-token -o jsonpath='{.data.token}' | base64 -d",
		"Piopiy dashboard",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("install notes lack %q:\n%s", want, notes)
		}
	}
	if strings.Contains(notes, token) || strings.Contains(notes, key) {
		t.Errorf("install notes print a secret:\n%s", notes)
	}

	notes = helm(t, "upgrade", releaseName, chartDir, "--namespace", ns, "--set", "piopiy.qps=5")
	if got := secretData(t, ns, "callfleet-webhook-token", "token"); got != token {
		t.Errorf("upgrade changed the webhook token")
	}
	if got := secretData(t, ns, "callfleet-stream-token", "key"); got != key {
		t.Errorf("upgrade changed the stream token key")
	}
	if got := mustKubectl(t, "get", "deployment", "-n", ns, "callfleet", "-o", "jsonpath={.spec.template.metadata.annotations}"); got != checksums {
		t.Errorf("upgrade changed the token checksums (a needless rollout): %s, was %s", got, checksums)
	}
	if !strings.Contains(notes, "kubectl port-forward --namespace "+ns+" service/callfleet-webhook 9443:9443") ||
		!strings.Contains(notes, "/piopiy/events/${TOKEN}") {
		t.Errorf("notes without an Ingress lack the port-forward recipe:\n%s", notes)
	}
	if strings.Contains(notes, token) {
		t.Errorf("upgrade notes print the token:\n%s", notes)
	}
	if !strings.Contains(mustKubectl(t, "get", "deployment", "-n", ns, "callfleet", "-o", "jsonpath={.spec.template.spec.containers[0].args}"), "--piopiy-qps=5") {
		t.Errorf("upgrade did not apply piopiy.qps")
	}
	helm(t, "uninstall", releaseName, "--namespace", ns)
}

// TestHelmConsoleSharesMonitorKey applies the chart with the console on
// (server dry run: strict validation, restricted Pod Security), then
// installs it: the manager's pod template mounts the console's Secret,
// which the apiserver holds with a generated monitor-key; an upgrade keeps
// the key and the manager's checksum of it (no rollout, gateways' derived
// keys unchanged).
func TestHelmConsoleSharesMonitorKey(t *testing.T) {
	ns := "helm-console"
	createNamespace(t, ns)
	f := filepath.Join(t.TempDir(), "rendered.yaml")
	if err := os.WriteFile(f, []byte(render(t, ns, "--set", "console.enabled=true")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := serverDryRun(t, "-f", f); !strings.Contains(out, "deployment.apps/"+releaseName+"-console") {
		t.Errorf("dry run did not apply the console Deployment:\n%s", out)
	}

	helm(t, "install", releaseName, chartDir, "--namespace", ns, "--set", "console.enabled=true")
	t.Cleanup(func() { helm(t, "uninstall", releaseName, "--namespace", ns) })

	consoleSecret := releaseName + "-console"
	key := secretData(t, ns, consoleSecret, "monitor-key")
	if len(key) < 32 {
		t.Fatalf("generated monitor key %d characters, want 32+", len(key))
	}
	volume := func() string {
		return mustKubectl(t, "get", "deployment", "-n", ns, releaseName, "-o",
			`jsonpath={.spec.template.spec.volumes[?(@.name=="monitor-token")].secret.secretName}`)
	}
	checksum := func() string {
		return mustKubectl(t, "get", "deployment", "-n", ns, releaseName, "-o",
			`jsonpath={.spec.template.metadata.annotations.checksum/monitor-token}`)
	}
	if got := volume(); got != consoleSecret {
		t.Errorf("manager monitor-token volume from Secret %q, want %q", got, consoleSecret)
	}
	sum := checksum()
	if sum != shortSum(key) {
		t.Errorf("manager checksum/monitor-token %q is not the stored key's", sum)
	}
	if !strings.Contains(mustKubectl(t, "get", "deployment", "-n", ns, releaseName, "-o", "jsonpath={.spec.template.spec.containers[0].args}"),
		"--monitor-token-key-file=/var/run/callfleet/monitor-token/key") {
		t.Error("installed manager has no --monitor-token-key-file")
	}

	helm(t, "upgrade", releaseName, chartDir, "--namespace", ns, "--set", "console.enabled=true", "--set", "piopiy.qps=5")
	if got := secretData(t, ns, consoleSecret, "monitor-key"); got != key {
		t.Error("upgrade changed the monitor key")
	}
	if got := checksum(); got != sum {
		t.Errorf("upgrade changed checksum/monitor-token to %q (a needless rollout)", got)
	}
}

func secretData(t testing.TB, ns, name, key string) string {
	t.Helper()
	enc := mustKubectl(t, "get", "secret", "-n", ns, name, "-o", "jsonpath={.data."+key+"}")
	dec, err := decodeBase64(enc)
	if err != nil {
		t.Fatalf("Secret %s/%s key %s: %v", ns, name, key, err)
	}
	return dec
}
