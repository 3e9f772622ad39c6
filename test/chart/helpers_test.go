package chart_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/callfleet/callfleet/internal/testenv"
)

// root is the repository root; the tests run tools with it as working
// directory, so paths in messages read as in the repository.
var root = testenv.RepoRoot()

const (
	chartDir    = "charts/callfleet"
	releaseName = "callfleet"
)

// toolsDir holds helm, kubectl, kube-apiserver and etcd: KUBEBUILDER_ASSETS
// when set (make test sets it), else bin/k8s.
func toolsDir() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	return filepath.Join(root, "bin", "k8s")
}

// tool returns the path of a binary from hack/build-kube.sh, or fails the
// test saying how to build it. Nothing is skipped.
func tool(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(toolsDir(), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found in %s: run hack/build-kube.sh (or make kube-bins), which builds it from Go modules", name, toolsDir())
	}
	return p
}

// toolHome isolates helm's and kubectl's config and caches from the user's.
var toolHome = sync.OnceValue(func() string {
	dir, err := os.MkdirTemp("", "callfleet-chart-test-home-")
	if err != nil {
		panic(err)
	}
	return dir
})

// run runs a tool from the repository root and returns stdout and stderr.
func run(t testing.TB, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runPath(tool(t, name), args...)
}

func runPath(path string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(path, args...)
	cmd.Dir = root
	home := toolHome()
	cmd.Env = append(os.Environ(),
		"HOME="+home,
		"HELM_CACHE_HOME="+filepath.Join(home, "helm-cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "helm-config"),
		"HELM_DATA_HOME="+filepath.Join(home, "helm-data"),
		"KUBECACHEDIR="+filepath.Join(home, "kube-cache"),
	)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// mustRun is run that fails the test on a non-zero exit.
func mustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// valuesFiles are the non-default values files of test/chart.
func valuesFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "test", "chart", "values-*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test/chart/values-*.yaml files (err %v)", err)
	}
	for i, f := range files {
		files[i], _ = filepath.Rel(root, f)
	}
	return files
}

// variant is one way of installing the chart: default values or a file.
type variant struct {
	name string
	args []string
}

func variants(t testing.TB) []variant {
	vs := []variant{{name: "default"}}
	for _, f := range valuesFiles(t) {
		vs = append(vs, variant{name: strings.TrimSuffix(filepath.Base(f), ".yaml"), args: []string{"-f", f}})
	}
	return vs
}

// render runs helm template for the release in namespace ns.
func render(t testing.TB, ns string, args ...string) string {
	t.Helper()
	return mustRun(t, "helm", append([]string{"template", releaseName, chartDir, "--namespace", ns}, args...)...)
}

// object is a decoded manifest.
type object map[string]any

func (o object) kind() string { s, _ := o["kind"].(string); return s }

func (o object) name() string {
	s, _ := get(o, "metadata", "name").(string)
	return s
}

func (o object) namespace() string {
	s, _ := get(o, "metadata", "namespace").(string)
	return s
}

// get walks nested maps (and list indexes given as ints).
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				if o, isObj := v.(object); isObj {
					m = o
				} else {
					return nil
				}
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// decode splits a multi-document YAML stream into objects.
func decode(t testing.TB, manifests string) []object {
	t.Helper()
	d := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var objs []object
	for {
		var o map[string]any
		if err := d.Decode(&o); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("decoding manifests: %v", err)
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
}

// find returns the one object of kind (and name, when not empty).
func find(t testing.TB, objs []object, kind, name string) object {
	t.Helper()
	var found []object
	for _, o := range objs {
		if o.kind() == kind && (name == "" || o.name() == name) {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s %q in the manifests, found %d", kind, name, len(found))
	}
	return found[0]
}

func count(objs []object, kind string) int {
	n := 0
	for _, o := range objs {
		if o.kind() == kind {
			n++
		}
	}
	return n
}

// readYAML reads a single-document YAML file of the repository.
func readYAML(t testing.TB, rel string) object {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	var o map[string]any
	if err := yaml.Unmarshal(b, &o); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return o
}

// canonical renders v as JSON for comparisons and messages.
func canonical(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func decodeBase64(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	return string(b), err
}
