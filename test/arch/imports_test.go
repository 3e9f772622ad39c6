// Package arch guards the architecture: the code that ships never builds the
// stand-in or the test scaffolding.
package arch

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/callfleet/callfleet/internal/testenv"
)

const module = "github.com/callfleet/callfleet/"

// testOnly are the packages that exist for tests, the demo and the sim
// binary; everything else is production code.
var testOnly = []string{
	module + "internal/sim",
	module + "internal/testenv",
	module + "cmd/piopiy-sim",
	module + "test/",
	module + "hack/",
	module + "examples/",
}

// forbidden are what production code must never depend on.
var forbidden = []string{
	module + "internal/sim",
	module + "internal/testenv",
	module + "test/",
	"sigs.k8s.io/controller-runtime/pkg/envtest",
}

func hasPrefix(pkg string, prefixes []string) bool {
	for _, p := range prefixes {
		if pkg == strings.TrimSuffix(p, "/") || strings.HasPrefix(pkg, p) && strings.HasSuffix(p, "/") {
			return true
		}
	}
	return false
}

// TestProductionNeverImportsTestCode lists every package's dependencies
// (`go list -deps`, test files excluded) and fails on a production package
// that reaches the sim, envtest or test/... .
func TestProductionNeverImportsTestCode(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...")
	cmd.Dir = testenv.RepoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkg, deps := fields[0], fields[1:]
		if hasPrefix(pkg, testOnly) {
			continue
		}
		checked++
		for _, d := range deps {
			if hasPrefix(d, forbidden) {
				t.Errorf("production package %s depends on %s", pkg, d)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d production packages found: the listing is wrong", checked)
	}
}

// TestHasPrefix pins the matching rule the check relies on.
func TestHasPrefix(t *testing.T) {
	for _, tc := range []struct {
		pkg  string
		want bool
	}{
		{module + "internal/sim", true},
		{module + "internal/simulator", false},
		{module + "test/harness", true},
		{module + "internal/controller/call", false},
		{"sigs.k8s.io/controller-runtime/pkg/envtest", true},
	} {
		if got := hasPrefix(tc.pkg, forbidden); got != tc.want {
			t.Errorf("hasPrefix(%q) = %v, want %v", tc.pkg, got, tc.want)
		}
	}
}
