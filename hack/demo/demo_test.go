package main

import (
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/internal/testenv"
)

// TestDocsListEveryFlag keeps docs/demo.md's flag table in step with the
// program.
func TestDocsListEveryFlag(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "demo.md"))
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	registerFlags(fs, &config{})
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(string(b), "`--"+f.Name+"`") {
			t.Errorf("docs/demo.md does not mention `--%s`", f.Name)
		}
	})
}

// TestSamples reads config/samples as the demo does, and checks the
// scenario it writes loads in piopiy-sim and scripts the sample numbers,
// and the overlay for another gateway port renders.
func TestSamples(t *testing.T) {
	root := testenv.RepoRoot()
	kubectl := filepath.Join(root, "bin", "k8s", "kubectl")
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		kubectl = filepath.Join(d, "kubectl")
	}
	if _, err := os.Stat(kubectl); err != nil {
		t.Skipf("no kubectl (make kube-bins): %v", err)
	}
	samplesDir := filepath.Join(root, "config", "samples")
	smp, err := readSamples(kubectl, samplesDir)
	if err != nil {
		t.Fatal(err)
	}
	if smp.appID == 0 || smp.secret == "" || smp.from == "" {
		t.Errorf("account not read from the samples: %+v", smp)
	}
	if _, _, err := net.SplitHostPort(smp.defaultGatewayAt); err != nil {
		t.Errorf("gateway address %q: %v", smp.defaultGatewayAt, err)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(path, []byte(smp.scenario("25s")), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := sim.LoadScenario(path)
	if err != nil {
		t.Fatalf("scenario does not load: %v\n%s", err, smp.scenario("25s"))
	}
	for _, c := range smp.calls {
		if b, ok := sc.Numbers[c.Spec.To]; !ok || b.Outcome != sim.OutcomeAnswer || b.HangupAfter.String() != "25s" {
			t.Errorf("scenario for %s (%s): %+v", c.Name, c.Spec.To, b)
		}
	}
	for _, p := range smp.pools {
		for _, a := range p.Spec.Agents {
			if b, ok := sc.Agents[a.Number]; !ok || b.NoAnswer || b.Busy {
				t.Errorf("scenario for agent %s (%s): %+v", a.Name, a.Number, b)
			}
		}
	}

	if got, err := smp.overlay(samplesDir, dir, smp.defaultGatewayAt); err != nil || got != samplesDir {
		t.Errorf("overlay at the samples' own address = %q, %v; want the samples as they are", got, err)
	}
	od, err := smp.overlay(samplesDir, dir, "127.0.0.1:18443")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "kustomize", od).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", od, err, out)
	}
	for _, want := range []string{"publicURL: ws://127.0.0.1:18443/", "healthURL: http://127.0.0.1:18443/healthz", "name: welcome-call"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("overlay lacks %q:\n%s", want, out)
		}
	}
}
