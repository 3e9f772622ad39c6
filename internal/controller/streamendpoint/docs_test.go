package streamendpoint

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/callfleet/callfleet/internal/testenv"
)

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestDocsExamplesApply applies every manifest in docs/streamendpoint.md, so
// the examples stay valid against the CRD and produce what the page says.
func TestDocsExamplesApply(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "streamendpoint.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := yamlBlock.FindAllSubmatch(doc, -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d yaml examples, want one per mode", len(blocks))
	}
	kinds := map[string]int{}
	for _, b := range blocks {
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b[1]), 4096)
		for {
			obj := &unstructured.Unstructured{}
			if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("decoding an example: %v", err)
			}
			if len(obj.Object) == 0 {
				continue
			}
			obj.SetNamespace(ns)
			if err := k8s.Create(context.Background(), obj); err != nil {
				t.Errorf("applying %s %s: %v", obj.GetKind(), obj.GetName(), err)
			}
			kinds[obj.GetKind()]++
		}
	}
	if kinds["StreamEndpoint"] < 2 {
		t.Errorf("examples hold %d StreamEndpoints, want one per mode", kinds["StreamEndpoint"])
	}
	// The managed example runs.
	eventually(t, func() error {
		return k8s.Get(context.Background(), key(ns, "support-bot"), &appsv1.Deployment{})
	})
}
