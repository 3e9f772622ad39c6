package chart_test

import (
	"strings"
	"testing"
)

// TestChartConsole: the console is off by default; turned on, it is its own
// hardened Deployment and Service with a ServiceAccount whose ClusterRole is
// exactly files/console-role.yaml (reviews and reads, no writes), and a
// Secret with generated session and monitor keys.
func TestChartConsole(t *testing.T) {
	named := func(objs []object, kind string) []object {
		var out []object
		for _, o := range objs {
			if o.kind() == kind && strings.HasSuffix(o.name(), "-console") {
				out = append(out, o)
			}
		}
		return out
	}
	if n := len(named(decode(t, render(t, "callfleet-system")), "Deployment")); n != 0 {
		t.Fatalf("console rendered by default (%d Deployments)", n)
	}
	objs := decode(t, render(t, "callfleet-system", "--set", "console.enabled=true", "--set", "console.watchNamespaces={sales}"))
	for _, kind := range []string{"Deployment", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Secret"} {
		if n := len(named(objs, kind)); n != 1 {
			t.Fatalf("want one console %s, found %d", kind, n)
		}
	}
	dep := named(objs, "Deployment")[0]
	pod := get(dep, "spec", "template", "spec")
	c := get(pod, "containers", 0)
	if get(pod, "securityContext", "runAsNonRoot") != true || get(c, "securityContext", "readOnlyRootFilesystem") != true ||
		get(c, "securityContext", "allowPrivilegeEscalation") != false {
		t.Errorf("console pod not hardened: %v", get(c, "securityContext"))
	}
	if get(pod, "serviceAccountName") != named(objs, "ServiceAccount")[0].name() {
		t.Errorf("console runs as %v", get(pod, "serviceAccountName"))
	}
	args := strings.Join(stringList(get(c, "args")), " ")
	for _, want := range []string{"--session-key-file=", "--monitor-key-file=", "--namespaces=sales"} {
		if !strings.Contains(args, want) {
			t.Errorf("console args %q lack %s", args, want)
		}
	}
	role := named(objs, "ClusterRole")[0]
	if got, want := canonical(role["rules"]), canonical(readYAML(t, chartDir+"/files/console-role.yaml")["rules"]); got != want {
		t.Errorf("console ClusterRole rules %s, want files/console-role.yaml's %s", got, want)
	}
	if strings.Contains(canonical(role["rules"]), "impersonate") || strings.Contains(canonical(role["rules"]), "patch") {
		t.Errorf("the console's own role may write or impersonate: %s", canonical(role["rules"]))
	}
	sec := named(objs, "Secret")[0]
	for _, k := range []string{"session-key", "monitor-key"} {
		v, err := decodeBase64(get(sec, "data", k).(string))
		if err != nil || len(v) < 32 {
			t.Errorf("secret key %s: %d bytes (%v), want 32+", k, len(v), err)
		}
	}
}
