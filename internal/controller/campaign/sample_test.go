package campaign_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/testenv"
)

// TestSampleCampaign applies config/samples/voice_v1alpha1_campaign.yaml to
// the apiserver (so the CRD's validation passes it) and checks the
// controller reads it as documented: 6 contacts, the do-not-call list and
// the CSV understood, waiting for its StreamEndpoint (not in this namespace).
func TestSampleCampaign(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "voice_v1alpha1_campaign.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		if len(u.Object) == 0 {
			continue
		}
		u.SetNamespace(ns)
		if err := k8s.Create(context.Background(), &u); err != nil {
			t.Fatalf("sample %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	c := waitCampaign(t, ns, "spring-renewals", "Stalled EndpointNotFound", 30*time.Second, func(c *voicev1alpha1.Campaign) bool {
		s := condition(c, voicev1alpha1.ConditionStalled)
		return s != nil && s.Reason == "EndpointNotFound" && c.Status.Total == 6
	})
	if len(c.Status.InvalidContacts) != 0 || c.Status.Active != 0 {
		t.Fatalf("status: %s", describe(c))
	}
	// Adding the finalizer must not rewrite the spec (suspend: false).
	if c.Generation != 1 {
		t.Fatalf("generation %d: the controller changed the spec", c.Generation)
	}
}

// TestDocsExampleCampaign applies the "Try it" manifest of docs/campaign.md
// (the heredoc) so the guide cannot drift from the CRD.
func TestDocsExampleCampaign(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "campaign.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "<<'EOF'\n")
	end := strings.Index(doc, "\nEOF\n")
	if start < 0 || end < start {
		t.Fatal("no heredoc manifest in docs/campaign.md")
	}
	var u unstructured.Unstructured
	if err := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(doc[start+len("<<'EOF'\n"):end]), 4096).Decode(&u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetNamespace(ns)
	if err := k8s.Create(context.Background(), &u); err != nil {
		t.Fatalf("docs example: %v", err)
	}
	waitCampaign(t, ns, u.GetName(), "read: 4 contacts, waiting for demo-bot", 30*time.Second, func(c *voicev1alpha1.Campaign) bool {
		s := condition(c, voicev1alpha1.ConditionStalled)
		return s != nil && s.Reason == "EndpointNotFound" && c.Status.Total == 4
	})

	// Every ```yaml fragment of the guide that starts with `spec:` (retry
	// policies, a schedule) is merged into that manifest and applied: the
	// apiserver must take it as written.
	fragments := 0
	for i, block := range strings.Split(doc, "```yaml\n")[1:] {
		body := block[:strings.Index(block, "```")]
		if !strings.HasPrefix(body, "spec:") {
			continue
		}
		var frag map[string]any
		if err := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(body), 4096).Decode(&frag); err != nil {
			t.Fatalf("yaml block %d: %v", i, err)
		}
		obj := u.DeepCopy()
		obj.SetName(fmt.Sprintf("fragment-%d", i))
		obj.SetResourceVersion("")
		spec := obj.Object["spec"].(map[string]any)
		for k, v := range frag["spec"].(map[string]any) {
			spec[k] = v
		}
		if err := k8s.Create(context.Background(), obj); err != nil {
			t.Fatalf("docs fragment %d:\n%s\n%v", i, body, err)
		}
		fragments++
	}
	if fragments < 2 {
		t.Fatalf("%d spec fragments found in docs/campaign.md, want the retry and schedule examples", fragments)
	}
}
