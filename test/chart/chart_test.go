// Package chart_test checks the Helm chart (charts/callfleet) and the
// kustomize config (config/) against a real kube-apiserver: lint, render,
// schema, RBAC parity with controller-gen, server-side dry-run applies, a
// real install and upgrade, and the docs' metrics and dashboard.
//
// Run it with `go test ./test/chart/` or hack/test-chart.sh; it needs
// helm, kubectl, kube-apiserver and etcd from hack/build-kube.sh.
package chart_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestHelmLintIsClean(t *testing.T) {
	for _, v := range variants(t) {
		t.Run(v.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartDir}, v.args...)
			out := mustRun(t, "helm", args...)
			for _, bad := range []string{"[WARNING]", "[ERROR]"} {
				if strings.Contains(out, bad) {
					t.Errorf("helm %s reports problems:\n%s", strings.Join(args, " "), out)
				}
			}
		})
	}
}

// TestChartCRDsAreConfigCRDs: the chart installs the same CRDs as config/
// (hack/sync-chart-crds.sh copies them; make verify checks it too).
func TestChartCRDsAreConfigCRDs(t *testing.T) {
	want, _ := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	got, _ := filepath.Glob(filepath.Join(root, chartDir, "crds", "*.yaml"))
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("chart has %d CRD files, config/crd/bases %d: run hack/sync-chart-crds.sh", len(got), len(want))
	}
	for _, w := range want {
		a, _ := os.ReadFile(w)
		b, err := os.ReadFile(filepath.Join(root, chartDir, "crds", filepath.Base(w)))
		if err != nil || string(a) != string(b) {
			t.Errorf("%s/crds/%s differs from config/crd/bases: run hack/sync-chart-crds.sh", chartDir, filepath.Base(w))
		}
	}
}

// TestManagerRBACMatchesControllerGen: the ClusterRole of the chart and of
// config/default grant exactly the rules controller-gen derives from the
// controllers' markers (config/rbac/role.yaml), no more, no less.
func TestManagerRBACMatchesControllerGen(t *testing.T) {
	generated := readYAML(t, "config/rbac/role.yaml")
	want := generated["rules"]
	if want == nil {
		t.Fatal("config/rbac/role.yaml has no rules")
	}

	copyBytes, _ := os.ReadFile(filepath.Join(root, chartDir, "files", "manager-role.yaml"))
	roleBytes, _ := os.ReadFile(filepath.Join(root, "config", "rbac", "role.yaml"))
	if string(copyBytes) != string(roleBytes) {
		t.Errorf("%s/files/manager-role.yaml differs from config/rbac/role.yaml: run make manifests (or hack/sync-chart-crds.sh)", chartDir)
	}

	for _, v := range variants(t) {
		objs := decode(t, render(t, "callfleet-system", v.args...))
		if count(objs, "ClusterRole") == 0 {
			continue // rbac.create=false
		}
		// With watchNamespaces the rules are split between the ClusterRole
		// and a Role per namespace (TestChartLeastPrivilege): together they
		// are still exactly controller-gen's.
		got := managerRules(t, objs)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: chart ClusterRole rules differ from config/rbac/role.yaml\nchart:\n%s\nrole.yaml:\n%s", v.name, canonical(got), canonical(want))
		}
	}

	objs := decode(t, mustRun(t, "kubectl", "kustomize", "config/default"))
	role := find(t, objs, "ClusterRole", "callfleet-manager")
	if !reflect.DeepEqual(role["rules"], want) {
		t.Errorf("config/default ClusterRole rules differ from config/rbac/role.yaml")
	}
	binding := find(t, objs, "ClusterRoleBinding", "")
	if get(binding, "roleRef", "name") != "callfleet-manager" {
		t.Errorf("config/default ClusterRoleBinding roleRef %v, want callfleet-manager", get(binding, "roleRef"))
	}
}

// TestChartManagerPodIsHardened checks what a reviewer of the Deployment
// would: restricted security, probes, leader election, the token files
// mounted from Secrets, and a PDB exactly when there is more than one replica.
func TestChartManagerPodIsHardened(t *testing.T) {
	for _, v := range variants(t) {
		t.Run(v.name, func(t *testing.T) {
			objs := decode(t, render(t, "callfleet-system", v.args...))
			dep := find(t, objs, "Deployment", "")
			pod := get(dep, "spec", "template", "spec")
			c := get(pod, "containers", 0)
			check := func(ok bool, format string, args ...any) {
				t.Helper()
				if !ok {
					t.Errorf(format, args...)
				}
			}

			check(get(pod, "securityContext", "runAsNonRoot") == true, "pod runAsNonRoot not true")
			check(get(pod, "securityContext", "seccompProfile", "type") == "RuntimeDefault", "pod seccomp not RuntimeDefault")
			sc := get(c, "securityContext")
			check(get(sc, "runAsNonRoot") == true, "container runAsNonRoot not true")
			check(get(sc, "readOnlyRootFilesystem") == true, "readOnlyRootFilesystem not true")
			check(get(sc, "allowPrivilegeEscalation") == false, "allowPrivilegeEscalation not false")
			check(reflect.DeepEqual(get(sc, "capabilities", "drop"), []any{"ALL"}), "capabilities.drop %v, want [ALL]", get(sc, "capabilities", "drop"))
			check(get(sc, "seccompProfile", "type") == "RuntimeDefault", "container seccomp not RuntimeDefault")
			check(get(c, "resources") != nil || v.name == "values-minimal", "no resources")

			check(get(c, "livenessProbe", "httpGet", "path") == "/healthz", "liveness probe %v", get(c, "livenessProbe"))
			check(get(c, "readinessProbe", "httpGet", "path") == "/readyz", "readiness probe %v", get(c, "readinessProbe"))
			ports := map[string]float64{}
			for _, p := range get(c, "ports").([]any) {
				ports[get(p, "name").(string)] = get(p, "containerPort").(float64)
			}
			check(ports["health"] == 8081 && ports["webhook"] == 9443, "ports %v", ports)
			check(get(c, "livenessProbe", "httpGet", "port") == "health", "liveness probe not on the health port (8081)")

			args := stringList(get(c, "args"))
			replicas := get(dep, "spec", "replicas").(float64)
			if replicas > 1 {
				check(slices.Contains(args, "--leader-elect"), "%v replicas without --leader-elect: %v", replicas, args)
			}
			check(slices.Contains(args, "--webhook-token-file=/var/run/callfleet/webhook-token/token"), "no --webhook-token-file in %v", args)
			check(slices.Contains(args, "--stream-token-key-file=/var/run/callfleet/stream-token/key"), "no --stream-token-key-file in %v", args)

			mounts := map[string]any{}
			for _, m := range get(c, "volumeMounts").([]any) {
				mounts[get(m, "name").(string)] = m
			}
			for name, secret := range map[string]string{"webhook-token": "token", "stream-token": "key"} {
				check(get(mounts[name], "readOnly") == true, "%s mount %v not read-only", name, mounts[name])
				var vol any
				for _, vv := range get(pod, "volumes").([]any) {
					if get(vv, "name") == name {
						vol = vv
					}
				}
				check(get(vol, "secret", "items", 0, "key") == secret, "volume %s %v: want a Secret with key %q", name, vol, secret)
			}

			pdbs := count(objs, "PodDisruptionBudget")
			check((replicas > 1) == (pdbs == 1), "%v replicas and %d PodDisruptionBudgets", replicas, pdbs)
			if pdbs == 1 {
				check(get(find(t, objs, "PodDisruptionBudget", ""), "spec", "minAvailable") == float64(1), "PDB minAvailable not 1")
			}
		})
	}
}

// TestChartSecrets: the chart makes the token Secrets when none are given,
// long enough, and takes given values and existing Secrets as they are.
func TestChartSecrets(t *testing.T) {
	objs := decode(t, render(t, "callfleet-system"))
	token := secretValue(t, find(t, objs, "Secret", "callfleet-webhook-token"), "token")
	if len(token) != 32 {
		t.Errorf("generated webhook token has %d characters, want 32", len(token))
	}
	key := secretValue(t, find(t, objs, "Secret", "callfleet-stream-token"), "key")
	if len(key) < 32 {
		t.Errorf("generated stream token key has %d characters, want at least 32", len(key))
	}
	if count(objs, "Secret") != 2 {
		t.Errorf("default values make %d Secrets, want 2 (no account without values)", count(objs, "Secret"))
	}

	objs = decode(t, render(t, "voice-system", "-f", "test/chart/values-full.yaml"))
	if got := secretValue(t, find(t, objs, "Secret", "voice-webhook-token"), "token"); got != "fake-token-0123456789abcdef" {
		t.Errorf("webhook token %q, want the one in values", got)
	}
	account := find(t, objs, "Secret", "voice-piopiy-account")
	if get(account, "stringData", "appId") != "4471234" || get(account, "stringData", "from") != "919000000000" {
		t.Errorf("account Secret %v: want appId and from as digit strings", get(account, "stringData"))
	}
	copies := 0
	for _, o := range objs {
		if o.kind() == "Secret" && o.name() == "callfleet-stream-token" {
			copies++
			if secretValue(t, o, "key") != "fake-stream-token-key-0123456789abcdef0123456789" {
				t.Errorf("stream token copy in %s holds another key", o.namespace())
			}
		}
	}
	if copies != 2 {
		t.Errorf("%d stream token copies, want one in each of team-a and team-b", copies)
	}
	dep := find(t, objs, "Deployment", "")
	args := stringList(get(dep, "spec", "template", "spec", "containers", 0, "args"))
	if !slices.Contains(args, "--default-account=voice-system/voice-piopiy-account") {
		t.Errorf("args %v: want --default-account naming the chart's account Secret", args)
	}

	objs = decode(t, render(t, "callfleet-system", "-f", "test/chart/values-minimal.yaml"))
	if n := count(objs, "Secret"); n != 0 {
		t.Errorf("values-minimal (existing Secrets) renders %d Secrets, want 0", n)
	}
	dep = find(t, objs, "Deployment", "")
	vols := get(dep, "spec", "template", "spec", "volumes")
	if get(vols, 0, "secret", "secretName") != "piopiy-webhook-token" || get(vols, 1, "secret", "secretName") != "callfleet-stream-token" {
		t.Errorf("volumes %v: want the existing Secrets", vols)
	}
}

func secretValue(t testing.TB, secret object, key string) string {
	t.Helper()
	if v, ok := get(secret, "stringData", key).(string); ok {
		return v
	}
	enc, _ := get(secret, "data", key).(string)
	dec, err := decodeBase64(enc)
	if err != nil || dec == "" {
		t.Fatalf("Secret %s has no %q: %v", secret.name(), key, get(secret, "data"))
	}
	return dec
}

func stringList(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, s := range l {
		out = append(out, s.(string))
	}
	return out
}
