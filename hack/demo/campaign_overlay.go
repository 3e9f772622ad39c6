package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// campaignSample is the sample Campaign's file in the samples directory.
const campaignSample = "voice_v1alpha1_campaign.yaml"

// campaignOverlay writes dir/campaign: a kustomization applying the sample
// Campaign (copied, since kustomize reads no file outside its root) with
// its calling windows and blackout dates removed, so that it dials at
// whatever hour the demo runs. It returns the directory, or "" when the
// samples have no Campaign.
func campaignOverlay(samplesDir, dir string) (string, error) {
	src, err := os.ReadFile(filepath.Join(samplesDir, campaignSample))
	if os.IsNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	od := filepath.Join(dir, "campaign")
	if err := os.MkdirAll(od, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(od, campaignSample), src, 0o644); err != nil {
		return "", err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `# Written by hack/demo: %s with its calling windows and
# blackout dates removed (a demo overlay), so the sample Campaign dials at any
# hour. Apply it with kubectl apply -k.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - %s
patches:
  - target:
      kind: Campaign
    patch: |-
      - op: remove
        path: /spec/schedule/windows
      - op: remove
        path: /spec/schedule/blackoutDates
`, filepath.Join(samplesDir, campaignSample), campaignSample)
	return od, os.WriteFile(filepath.Join(od, "kustomization.yaml"), b.Bytes(), 0o644)
}
