package gateway_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/callfleet/callfleet/internal/gateway"
	"github.com/callfleet/callfleet/internal/monitortoken"
)

// monitorRoot is the console's root monitor key in these tests; gateways
// get keys derived from it.
var monitorRoot = []byte("monitor-root-key-for-tests-0123456789ab")

func derivedMonitorKey(t *testing.T, namespace, endpoint string) []byte {
	t.Helper()
	k, err := monitortoken.DeriveKey(monitorRoot, namespace, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeKeyFile replaces dir/name whole, as the kubelet updates a mounted
// Secret.
func writeKeyFile(t *testing.T, dir, name string, k []byte) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, append(k, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// TestMonitorDerivedKeyFile: a gateway given its endpoint's derived monitor
// key (the file the StreamEndpoint controller mounts) accepts the tokens the
// console signs with that key, and refuses tokens signed with the root or
// with the key of another namespace's or another endpoint's gateway: a
// tenant who reads its own pod's key opens nothing elsewhere, and a token
// for namespace A is refused by namespace B's gateway. The mounted key is
// reread: a rotation's new key verifies, the previous one until it goes.
//
// A token that passes is answered 404 no_stream (no live call of that name
// here); one that does not is 401 before anything else is looked at.
func TestMonitorDerivedKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	own := derivedMonitorKey(t, ns, endpoint)
	writeKeyFile(t, dir, "key", own)
	g, err := startGateway(bots.url, func(o *gateway.RunOptions) {
		o.PodName = "gw-monitor-key-0"
		o.MonitorKeyFile = filepath.Join(dir, "key")
		o.KeyReloadInterval = 50 * time.Millisecond
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.stop() })

	later := time.Now().Add(time.Hour)
	status := func(call string, k []byte) int {
		return dialStatus(t, monitorURL(t, g.url, ns, call, call, k, later))
	}
	if got := status("mon-key-none", own); got != http.StatusNotFound {
		t.Fatalf("token signed with the endpoint's own derived key: %d, want 404 (accepted, no stream)", got)
	}
	for name, k := range map[string][]byte{
		"the root key":                     monitorRoot,
		"another namespace's endpoint":     derivedMonitorKey(t, "elsewhere", endpoint),
		"another endpoint, same namespace": derivedMonitorKey(t, ns, "other-bots"),
	} {
		if got := status("mon-key-none", k); got != http.StatusUnauthorized {
			t.Errorf("token signed with %s: %d, want 401", name, got)
		}
	}
	// Namespace B's gateway (this one, seen from "elsewhere") refuses a
	// token namespace A's console key signed for A's own call, even on
	// A's path: the signature fails before the namespace is compared.
	if got := dialStatus(t, monitorURL(t, g.url, "elsewhere", "mon-key-none", "mon-key-none", derivedMonitorKey(t, "elsewhere", endpoint), later)); got != http.StatusUnauthorized {
		t.Errorf("token of namespace elsewhere at this gateway: %d, want 401", got)
	}

	// A rotation: the manager writes the new root's key as "key" and the
	// old one as "previous"; both verify until "previous" is removed.
	newRoot := []byte("monitor-root-key-rotated-0123456789abcd")
	rotated, err := monitortoken.DeriveKey(newRoot, ns, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	writeKeyFile(t, dir, "key", rotated)
	writeKeyFile(t, dir, "previous", own)
	eventually(t, "the rotated key verifies", func() bool { return status("mon-key-none", rotated) == http.StatusNotFound })
	if got := status("mon-key-none", own); got != http.StatusNotFound {
		t.Errorf("the previous key during the overlap: %d, want 404", got)
	}
	if err := os.Remove(filepath.Join(dir, "previous")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the previous key refused", func() bool { return status("mon-key-none", own) == http.StatusUnauthorized })
	if got := status("mon-key-none", rotated); got != http.StatusNotFound {
		t.Errorf("the current key after the overlap: %d, want 404", got)
	}
}

// TestMonitorRootKeyDerives: a gateway the operator runs with the root
// monitor key (the demo) derives its endpoint's key as the console does,
// and so refuses a token signed with the root itself.
func TestMonitorRootKeyDerives(t *testing.T) {
	t.Parallel()
	g, err := startGateway(bots.url, func(o *gateway.RunOptions) {
		o.PodName = "gw-monitor-root-0"
		o.MonitorRootKey = monitorRoot
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.stop() })
	later := time.Now().Add(time.Hour)
	if got := dialStatus(t, monitorURL(t, g.url, ns, "mon-root-none", "mon-root-none", derivedMonitorKey(t, ns, endpoint), later)); got != http.StatusNotFound {
		t.Errorf("token signed with the derived key: %d, want 404 (accepted, no stream)", got)
	}
	if got := dialStatus(t, monitorURL(t, g.url, ns, "mon-root-none", "mon-root-none", monitorRoot, later)); got != http.StatusUnauthorized {
		t.Errorf("token signed with the root: %d, want 401", got)
	}
}
