package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callfleet/callfleet/internal/testenv"
)

// TestCampaignOverlayOpensWindows renders the demo's Campaign overlay with
// kubectl: the sample Campaign, without its calling windows and blackout
// dates, everything else as it is.
func TestCampaignOverlayOpensWindows(t *testing.T) {
	root := testenv.RepoRoot()
	kubectl := filepath.Join(root, "bin", "k8s", "kubectl")
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		kubectl = filepath.Join(d, "kubectl")
	}
	if _, err := os.Stat(kubectl); err != nil {
		t.Skipf("no kubectl (make kube-bins): %v", err)
	}
	dir, err := campaignOverlay(filepath.Join(root, "config", "samples"), t.TempDir())
	if err != nil || dir == "" {
		t.Fatalf("overlay %q: %v", dir, err)
	}
	out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
	got := string(out)
	if strings.Contains(got, "windows:") || strings.Contains(got, "blackoutDates:") {
		t.Fatalf("windows still in the rendered Campaign:\n%s", got)
	}
	for _, want := range []string{"kind: Campaign", "name: spring-renewals", "timeZone: Asia/Kolkata", "listenMode: caller", "outcome: NoAnswer"} {
		if !strings.Contains(got, want) {
			t.Errorf("rendered overlay lacks %q:\n%s", want, got)
		}
	}
}
