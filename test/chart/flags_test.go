package chart_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// pendingFlags are flags the chart already passes for work in flight; each
// is checked like any other once cmd/manager defines it.
var pendingFlags = map[string]string{
	"gateway-image": "the StreamEndpoint controller's default gateway image",
}

// managerFlags reads the flag names cmd/manager defines from its source:
// every flag.XxxVar(&v, "name", ...) and flag.Xxx("name", ...), plus the
// zap flags when it binds them.
func managerFlags(t testing.TB) map[string]bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, "cmd", "manager", "*.go"))
	flags := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if sel.Sel.Name == "BindFlags" {
				for _, z := range []string{"zap-devel", "zap-encoder", "zap-log-level", "zap-stacktrace-level", "zap-time-encoding"} {
					flags[z] = true
				}
				return true
			}
			pos := -1
			switch sel.Sel.Name {
			case "StringVar", "BoolVar", "IntVar", "Int64Var", "UintVar", "Uint64Var", "Float64Var", "DurationVar", "TextVar", "Func", "BoolFunc":
				pos = 1
				if sel.Sel.Name == "Func" || sel.Sel.Name == "BoolFunc" {
					pos = 0
				}
			case "String", "Bool", "Int", "Int64", "Uint", "Uint64", "Float64", "Duration":
				pos = 0
			}
			if pos >= 0 && len(call.Args) > pos {
				if lit, ok := call.Args[pos].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if name, err := strconv.Unquote(lit.Value); err == nil {
						flags[name] = true
					}
				}
			}
			return true
		})
	}
	if !flags["webhook-token-file"] {
		t.Fatalf("found no manager flags in cmd/manager (got %v)", flags)
	}
	return flags
}

// TestManifestsPassOnlyManagerFlags: every flag the chart (with each values
// set) and config/manager give the manager exists, so a renamed flag fails
// here rather than as a crash-looping pod.
func TestManifestsPassOnlyManagerFlags(t *testing.T) {
	flags := managerFlags(t)
	check := func(where string, args []string) {
		t.Helper()
		for _, a := range args {
			if !strings.HasPrefix(a, "--") {
				t.Errorf("%s: argument %q is not a flag", where, a)
				continue
			}
			name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if flags[name] {
				continue
			}
			if why, ok := pendingFlags[name]; ok {
				t.Logf("%s: --%s (%s) is not in cmd/manager yet; allowed as pending", where, name, why)
				continue
			}
			t.Errorf("%s passes --%s, which cmd/manager does not define", where, name)
		}
	}
	for _, v := range variants(t) {
		dep := find(t, decode(t, render(t, "callfleet-system", v.args...)), "Deployment", "")
		check("chart ("+v.name+")", stringList(get(dep, "spec", "template", "spec", "containers", 0, "args")))
	}
	dep := find(t, decode(t, mustRun(t, "kubectl", "kustomize", "config/default")), "Deployment", "")
	check("config/default", stringList(get(dep, "spec", "template", "spec", "containers", 0, "args")))
}
