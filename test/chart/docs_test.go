package chart_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// documentedMetrics are the metric names docs/operations.md mentions.
func documentedMetrics(t testing.TB) (doc string, names map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	names = map[string]bool{}
	for _, m := range regexp.MustCompile("`([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{[^}`]*\\})?`").FindAllStringSubmatch(string(b), -1) {
		names[m[1]] = true
	}
	return string(b), names
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeywords = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan", "Inf", "NaN"}
)

// promMetrics returns the metric names a PromQL expression selects: what
// is left after removing strings, label matchers, ranges, grouping clauses,
// function calls, keywords and numbers.
func promMetrics(expr string) []string {
	e := promStrings.ReplaceAllString(expr, " ")
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRanges.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		name := e[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(e[loc[0]-1:loc[0]], "0123456789.$") {
			continue // inside a number (1e-9) or a variable
		}
		if strings.HasPrefix(strings.TrimLeft(e[loc[1]:], " \t\n"), "(") || slices.Contains(promKeywords, name) {
			continue // a function call or a keyword
		}
		out = append(out, name)
	}
	return out
}

// checkExprs fails for an expression that selects no metric, or one that
// docs/operations.md does not document (histogram series count as their
// histogram).
func checkExprs(t *testing.T, where string, exprs []string, documented map[string]bool) {
	t.Helper()
	if len(exprs) == 0 {
		t.Fatalf("%s has no expressions", where)
	}
	for _, expr := range exprs {
		metrics := promMetrics(expr)
		if len(metrics) == 0 {
			t.Errorf("%s: expression selects no metric: %s", where, expr)
		}
		for _, m := range metrics {
			base := m
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(m, suffix); ok && documented[b] {
					base = b
				}
			}
			if !documented[base] {
				t.Errorf("%s: %s is not documented in docs/operations.md (expression %s)", where, m, expr)
			}
		}
	}
}

func TestPromMetricsParser(t *testing.T) {
	got := promMetrics(`histogram_quantile(0.9, sum by (le) (rate(callfleet_a_bucket{x="y", z=~"$v"}[$__rate_interval]))) / clamp_min(sum(rate(callfleet_b[5m])), 1e-9) > 2 unless up == 0 or sum(callfleet_c)`)
	want := []string{"callfleet_a_bucket", "callfleet_b", "up", "callfleet_c"}
	if !slices.Equal(got, want) {
		t.Errorf("promMetrics = %v, want %v", got, want)
	}
}

// TestOperationsDocListsEveryMetric: each metric the manager (all its
// controllers) and the gateway register is documented, so the list cannot fall behind the code.
func TestOperationsDocListsEveryMetric(t *testing.T) {
	_, documented := documentedMetrics(t)
	defined := regexp.MustCompile(`Name:\s*"(callfleet_[a-z0-9_]+)"`)
	files := []string{"internal/metrics/metrics.go", "internal/gateway/metrics.go",
		"internal/controller/agentpool/metrics.go", "internal/controller/campaign/metrics.go", "internal/notify/metrics.go"}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range defined.FindAllStringSubmatch(string(b), -1) {
			n++
			if !documented[m[1]] {
				t.Errorf("%s registers %s; document it in docs/operations.md", f, m[1])
			}
		}
	}
	if n < 7 {
		t.Errorf("found %d metric definitions in %v, want the manager's seven at least", n, files)
	}
}

// TestGrafanaDashboard: docs/grafana-dashboard.json is valid JSON, and every
// panel query uses documented metrics.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "docs", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("docs/grafana-dashboard.json is not JSON: %v", err)
	}
	if title, _ := dash["title"].(string); title == "" {
		t.Error("dashboard has no title")
	}
	if panels, _ := dash["panels"].([]any); len(panels) == 0 {
		t.Error("dashboard has no panels")
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if e, ok := x["expr"].(string); ok {
				exprs = append(exprs, e)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(dash)
	_, documented := documentedMetrics(t)
	checkExprs(t, "docs/grafana-dashboard.json", exprs, documented)
}

// TestAlertRules: the PrometheusRule of config/prometheus uses documented
// metrics, and docs/operations.md names every alert.
func TestAlertRules(t *testing.T) {
	rule := readYAML(t, "config/prometheus/alerts.yaml")
	doc, documented := documentedMetrics(t)
	var exprs []string
	for _, g := range get(rule, "spec", "groups").([]any) {
		for _, r := range get(g, "rules").([]any) {
			exprs = append(exprs, get(r, "expr").(string))
			if name, _ := get(r, "alert").(string); !strings.Contains(doc, name) {
				t.Errorf("alert %s is not described in docs/operations.md", name)
			}
		}
	}
	checkExprs(t, "config/prometheus/alerts.yaml", exprs, documented)
}

// TestHelmDocListsEveryValue: docs/helm.md's table has a row for each value
// of values.yaml (maps are documented as a whole when empty or resources).
func TestHelmDocListsEveryValue(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "docs", "helm.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok && len(m) > 0 && prefix != "resources" {
			for k, c := range m {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, c)
			}
			return
		}
		if !strings.Contains(doc, "| `"+prefix+"` |") {
			t.Errorf("docs/helm.md has no row for value %s", prefix)
		}
	}
	walk("", map[string]any(readYAML(t, chartDir+"/values.yaml")))
}
