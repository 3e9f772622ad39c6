package chart_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// managerRules returns the manager's rules as rendered: the ClusterRole's,
// followed by those of one namespace's Role when the chart splits them.
func managerRules(t testing.TB, objs []object) any {
	t.Helper()
	var cluster, namespaced []any
	for _, o := range objs {
		if !strings.HasSuffix(o.name(), "-manager") {
			continue
		}
		rules, _ := o["rules"].([]any)
		switch o.kind() {
		case "ClusterRole":
			cluster = append(cluster, rules...)
		case "Role":
			if namespaced == nil {
				namespaced = rules
			}
		}
	}
	all := append(cluster, namespaced...)
	// controller-gen sorts rules by group; so does role.yaml.
	slices.SortStableFunc(all, func(a, b any) int {
		return strings.Compare(canonical(get(a, "apiGroups")), canonical(get(b, "apiGroups")))
	})
	return all
}

// TestChartLeastPrivilege is issue #20 item 7: with watchNamespaces the
// manager may touch nothing outside them (its ClusterRole grants only the
// cluster-scoped reviews the metrics filter makes), metrics are behind
// authentication unless switched off, and a NetworkPolicy closes every port
// but the webhook's and the metrics'.
func TestChartLeastPrivilege(t *testing.T) {
	t.Run("watchNamespaces", func(t *testing.T) {
		objs := decode(t, render(t, "callfleet-system", "--set", "watchNamespaces={team-a,team-b}", "--set", "piopiy.account.appId=4471234", "--set", "piopiy.account.secret=x"))
		cr := find(t, objs, "ClusterRole", "callfleet-manager")
		for _, r := range cr["rules"].([]any) {
			for _, g := range get(r, "apiGroups").([]any) {
				if g != "authentication.k8s.io" && g != "authorization.k8s.io" {
					t.Errorf("the ClusterRole grants %v cluster-wide although the manager watches two namespaces", r)
				}
			}
		}
		roles := map[string]bool{}
		for _, o := range objs {
			if o.kind() == "Role" && o.name() == "callfleet-manager" {
				roles[o.namespace()] = true
				if len(o["rules"].([]any)) == 0 {
					t.Errorf("Role in %s has no rules", o.namespace())
				}
			}
			if o.kind() == "RoleBinding" && o.name() == "callfleet-manager" && get(o, "subjects", 0, "namespace") != "callfleet-system" {
				t.Errorf("RoleBinding in %s binds %v", o.namespace(), get(o, "subjects"))
			}
		}
		if !reflect.DeepEqual(roles, map[string]bool{"team-a": true, "team-b": true}) {
			t.Errorf("manager Roles in %v, want team-a and team-b", roles)
		}
		acct := find(t, objs, "Role", "callfleet-default-account")
		if got := canonical(acct["rules"]); !strings.Contains(got, "callfleet-piopiy-account") || strings.Contains(got, "list") {
			t.Errorf("default-account Role should get only that Secret: %s", got)
		}
	})
	t.Run("all namespaces", func(t *testing.T) {
		objs := decode(t, render(t, "callfleet-system"))
		if n := count(objs, "Role"); n != 1 { // leader election only
			t.Errorf("%d Roles without watchNamespaces, want the leader-election one", n)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		for _, tc := range []struct {
			args   []string
			secure bool
		}{{nil, true}, {[]string{"--set", "metrics.secure=false"}, false}} {
			objs := decode(t, render(t, "callfleet-system", append(tc.args, "--set", "metrics.serviceMonitor.enabled=true")...))
			args := stringList(get(find(t, objs, "Deployment", ""), "spec", "template", "spec", "containers", 0, "args"))
			want := "--metrics-secure=false"
			if tc.secure {
				want = "--metrics-secure=true"
			}
			if !slices.Contains(args, want) {
				t.Errorf("secure=%v: no %s in %v", tc.secure, want, args)
			}
			sm := find(t, objs, "ServiceMonitor", "")
			if scheme := get(sm, "spec", "endpoints", 0, "scheme"); (scheme == "https") != tc.secure {
				t.Errorf("secure=%v: ServiceMonitor scheme %v", tc.secure, scheme)
			}
			readers := 0
			for _, o := range objs {
				if o.kind() == "ClusterRole" && o.name() == "callfleet-metrics-reader" {
					readers++
				}
			}
			if (readers == 1) != tc.secure {
				t.Errorf("secure=%v: %d metrics-reader ClusterRoles", tc.secure, readers)
			}
		}
	})
	t.Run("NetworkPolicy", func(t *testing.T) {
		objs := decode(t, render(t, "callfleet-system"))
		np := find(t, objs, "NetworkPolicy", "callfleet-manager")
		if got := get(np, "spec", "podSelector", "matchLabels", "app.kubernetes.io/name"); got != "callfleet" {
			t.Errorf("NetworkPolicy selects %v", get(np, "spec", "podSelector"))
		}
		var ports []string
		for _, rule := range get(np, "spec", "ingress").([]any) {
			for _, p := range get(rule, "ports").([]any) {
				ports = append(ports, get(p, "port").(string))
			}
		}
		slices.Sort(ports)
		if !reflect.DeepEqual(ports, []string{"metrics", "webhook"}) {
			t.Errorf("NetworkPolicy opens %v, want only metrics and webhook", ports)
		}
		if objs := decode(t, render(t, "callfleet-system", "--set", "networkPolicy.enabled=false")); count(objs, "NetworkPolicy") != 0 {
			t.Error("networkPolicy.enabled=false still renders a NetworkPolicy")
		}
	})
}
