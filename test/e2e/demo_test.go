package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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
	demo := demoBinaries(t)

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
		t.Fatalf("demo --smoke still running after 3m (%v); output:\n%s", <-done, tail(out.String(), 16384))
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

// demoBinaries builds the demo program and the binaries it runs into a
// directory kept in the user's cache (one per clone), so that a run with
// nothing changed links nothing: linking five binaries takes a minute or
// more on a loaded 2-core machine. A file lock held until the test ends
// keeps two test runs from relinking a binary the other is running.
func demoBinaries(t *testing.T) string {
	t.Helper()
	root := testenv.RepoRoot()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(cache, "callfleet", "e2e-demo-"+hex.EncodeToString(sum[:6]))
	must(t, os.MkdirAll(dir, 0o755))
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	must(t, err)
	t.Cleanup(func() { _ = lock.Close() }) // closing releases the lock
	if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		t.Logf("waiting for another demo test using %s", dir)
		must(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	}
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"./cmd/manager", "./cmd/stream-gateway", "./cmd/console", "./cmd/piopiy-sim", "./examples/bots/echo", "./hack/demo")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the demo: %v\n%s", err, out)
	}
	t.Logf("binaries in %s (go build took %s)", dir, time.Since(start).Round(100*time.Millisecond))
	return filepath.Join(dir, "demo")
}
