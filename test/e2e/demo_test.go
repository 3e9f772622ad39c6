package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callfleet/callfleet/internal/testenv"
)

// TestDemoSmoke runs `make demo`'s program in smoke mode: control plane,
// piopiy-sim, manager, gateway and echo bot as processes, config/samples
// applied. It passes when the sample Call completed after the bot handed
// it to an agent. Every port is a free one, so it runs beside a real
// `make demo` and other tests; the samples' StreamEndpoint is then pointed
// at the gateway's port by an overlay the program writes.
func TestDemoSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system for about a minute")
	}
	// The binaries the demo runs, built once per test binary (shared with
	// the other e2e tests), and the demo program itself.
	for _, pkg := range []string{"cmd/manager", "cmd/stream-gateway", "cmd/piopiy-sim", "examples/bots/echo"} {
		binary(t, pkg)
	}
	demo := binary(t, "hack/demo")

	dir := t.TempDir()
	args := []string{
		"--smoke", "--timeout=150s", "--build=false",
		"--bin=" + filepath.Dir(demo), "--dir=" + dir,
		"--apiserver-addr=127.0.0.1:0",
		"--sim-addr=" + freeAddr(t), "--webhook-addr=" + freeAddr(t),
		"--metrics-addr=0", "--probe-addr=" + freeAddr(t),
		"--gateway-addr=" + freeAddr(t), "--gateway-metrics-addr=0",
		"--bot-addr=" + freeAddr(t),
	}
	cmd := exec.Command(demo, args...)
	cmd.Dir = testenv.RepoRoot()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	must(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("demo --smoke still running after 3m; output:\n%s", tail(out.String(), 16384))
	}
	text := out.String()
	if err != nil {
		t.Fatalf("demo --smoke failed after %s: %v; output:\n%s", time.Since(start).Round(time.Second), err, tail(text, 16384))
	}
	for _, want := range []string{"smoke: OK", "welcome-call", "HandedOff", "Completed", "stopping kube-apiserver"} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, tail(text, 8192))
		}
	}
	t.Logf("demo --smoke passed in %s", time.Since(start).Round(time.Second))
}
