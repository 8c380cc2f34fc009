package gateway

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"
)

// The files that use the metrics, from the package directory.
const (
	dashboardFile = "../deploy/grafana/upgate-dashboard.json"
	alertsFile    = "../deploy/prometheus/upgate-alerts.yml"
)

// metricRef matches the metric names an expression may use.
var metricRef = regexp.MustCompile(`\b(?:upgate|process|go)_[a-z0-9_]+\b`)

// exprMetrics adds the metric names expr refers to.
func exprMetrics(expr string, into map[string]bool) {
	for _, name := range metricRef.FindAllString(expr, -1) {
		into[name] = true
	}
}

// dashboardExprs returns the PromQL expressions of the dashboard: every
// "expr" (targets) and "query" (variables) string, at any depth.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "query") {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	return exprs
}

// alertRules is the part of a Prometheus rule file the test reads.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func alertExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f alertRules
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	var exprs []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Expr == "" {
				t.Errorf("%s: rule %q of group %q has no expr", alertsFile, r.Alert, g.Name)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	return exprs
}

// exposes reports whether fams has the family name refers to: its own, or
// a histogram's or summary's with a _bucket, _sum or _count suffix.
func exposes(fams map[string]*dto.MetricFamily, name string) bool {
	if fams[name] != nil {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			f := fams[base]
			if f != nil && (f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
				return suffix != "_bucket" || f.GetType() == dto.MetricType_HISTOGRAM
			}
		}
	}
	return false
}

// TestDeployMetricsExposed checks that every metric the Grafana dashboard
// and the alert rules use is exposed by a gateway with a bus or one with a
// TLS listener.
func TestDeployMetricsExposed(t *testing.T) {
	used := map[string]map[string]bool{dashboardFile: {}, alertsFile: {}}
	for _, e := range dashboardExprs(t) {
		exprMetrics(e, used[dashboardFile])
	}
	for _, e := range alertExprs(t) {
		exprMetrics(e, used[alertsFile])
	}
	fams := exposedFamilies(t)
	maps.Copy(fams, tlsFamilies(t))
	for file, names := range used {
		if len(names) == 0 {
			t.Errorf("%s uses no metric", file)
		}
		for name := range names {
			if !exposes(fams, name) {
				t.Errorf("%s uses %s, which no gateway exposes", file, name)
			}
		}
	}
}

// TestPromtoolCheckRules runs promtool check rules on the alert rules and
// on the dashboard's expressions. It skips when promtool is not on PATH, except in CI (CI=true), where
// scripts/test.sh installs it.
func TestPromtoolCheckRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not on PATH (CI=true): install Debian's prometheus package, as scripts/test.sh does")
		}
		t.Skip("promtool is not on PATH")
	}
	out, err := exec.Command(promtool, "check", "rules", alertsFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", alertsFile, err, out)
	}
	t.Logf("promtool check rules %s:\n%s", alertsFile, out)

	// The dashboard's expressions, as recording rules, for their syntax.
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range dashboardExprs(t) {
		if strings.HasPrefix(e, "label_values(") || e == "prometheus" {
			continue // a variable's query, not PromQL
		}
		e = strings.ReplaceAll(e, "$__rate_interval", "5m")
		q, _ := json.Marshal(e) // a JSON string is a YAML string
		fmt.Fprintf(&rules, "      - record: dashboard:expr%d\n        expr: %s\n", i, q)
	}
	file := filepath.Join(t.TempDir(), "dashboard.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the expressions of %s: %v\n%s", dashboardFile, err, out)
	}
}
