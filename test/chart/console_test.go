package chart_test

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

// TestChartConsole: the console is off by default; turned on, it is its own
// hardened Deployment and Service with a ServiceAccount whose ClusterRole is
// exactly files/console-role.yaml (reviews and reads, no writes), and a
// Secret with generated session and monitor keys; the manager then reads
// the console's monitor key (see TestChartMonitorKeyShared).
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

// managerMonitorKey is how the manager Deployment among objs gets a monitor
// root key: its flag, whether its mount is read-only, the Secret and key
// its volume takes "key" from, and its pod checksum annotation ("" each
// when absent).
func managerMonitorKey(t *testing.T, objs []object) (flag string, readOnly bool, secret, key, checksum string) {
	t.Helper()
	dep := find(t, objs, "Deployment", releaseName)
	pod := get(dep, "spec", "template", "spec")
	c := get(pod, "containers", 0)
	for _, a := range stringList(get(c, "args")) {
		if strings.HasPrefix(a, "--monitor-token-key-file=") {
			flag = a
		}
	}
	mounts, _ := get(c, "volumeMounts").([]any)
	for _, m := range mounts {
		if get(m, "name") == "monitor-token" {
			readOnly = get(m, "readOnly") == true && get(m, "mountPath") == "/var/run/callfleet/monitor-token"
		}
	}
	vols, _ := get(pod, "volumes").([]any)
	for _, v := range vols {
		if get(v, "name") != "monitor-token" {
			continue
		}
		secret, _ = get(v, "secret", "secretName").(string)
		items, _ := get(v, "secret", "items").([]any)
		for _, it := range items {
			if get(it, "path") == "key" {
				key, _ = get(it, "key").(string)
			}
		}
	}
	checksum, _ = get(dep, "spec", "template", "metadata", "annotations", "checksum/monitor-token").(string)
	return flag, readOnly, secret, key, checksum
}

func shortSum(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:16]
}

// TestChartMonitorKeyShared: with the console on, the manager reads the
// root monitor key from the console's own Secret (one generated value, not
// a second copy), mounted read-only, and its pods roll when the key
// changes; a given console.monitorKey reaches both. With the console off
// the manager gets no monitor key, so gateways get none.
func TestChartMonitorKeyShared(t *testing.T) {
	if flag, _, secret, _, sum := managerMonitorKey(t, decode(t, render(t, "callfleet-system"))); flag != "" || secret != "" || sum != "" {
		t.Errorf("console off, yet the manager gets a monitor key: %q from %q (checksum %q)", flag, secret, sum)
	}

	objs := decode(t, render(t, "callfleet-system", "--set", "console.enabled=true"))
	flag, readOnly, secret, key, sum := managerMonitorKey(t, objs)
	if flag != "--monitor-token-key-file=/var/run/callfleet/monitor-token/key" || !readOnly {
		t.Errorf("manager monitor key flag %q, read-only mount %v", flag, readOnly)
	}
	if !managerFlags(t)["monitor-token-key-file"] {
		t.Error("cmd/manager defines no --monitor-token-key-file")
	}
	console := find(t, objs, "Secret", releaseName+"-console")
	if secret != console.name() || key != "monitor-key" {
		t.Errorf("manager reads the monitor key from Secret %q key %q, want the console's %q key monitor-key", secret, key, console.name())
	}
	if n := count(objs, "Secret"); n != 3 {
		t.Errorf("%d Secrets with the console on, want 3 (webhook, stream, console): no second monitor key", n)
	}
	generated := secretValue(t, console, "monitor-key")
	if sum != shortSum(generated) {
		t.Errorf("manager checksum/monitor-token %q is not the console's generated key's", sum)
	}
	consoleArgs := stringList(get(find(t, objs, "Deployment", releaseName+"-console"), "spec", "template", "spec", "containers", 0, "args"))
	if !slices.Contains(consoleArgs, "--monitor-key-file=/var/run/callfleet/console/monitor-key") {
		t.Errorf("console args %v: want its monitor key from its Secret", consoleArgs)
	}

	const given = "given-monitor-root-key-0123456789abcdef"
	objs = decode(t, render(t, "callfleet-system", "--set", "console.enabled=true", "--set", "console.monitorKey="+given))
	if got := secretValue(t, find(t, objs, "Secret", releaseName+"-console"), "monitor-key"); got != given {
		t.Errorf("console monitor-key %q, want the given one", got)
	}
	if _, _, _, _, sum := managerMonitorKey(t, objs); sum != shortSum(given) {
		t.Errorf("manager checksum/monitor-token %q is not the given key's", sum)
	}
}
