package k8scheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// Data source uids of config/grafana-datasources.yml.
const (
	promUID = "hospital-erp-prometheus"
	lokiUID = "hospital-erp-loki"
)

// query is one PromQL or LogQL expression and where it was found.
type query struct {
	where string
	lang  string // "promql" or "logql"
	expr  string
}

// queries returns every expression of the rule file and of the dashboards.
func queries(t *testing.T) []query {
	t.Helper()
	var out []query
	for _, grp := range loadRules(t).Groups {
		for _, r := range grp.Rules {
			out = append(out, query{where: fmt.Sprintf("%s: %s%s", rulesFile, r.Alert, r.Record), lang: "promql", expr: r.Expr})
		}
	}
	files, err := filepath.Glob(filepath.Join(repoRoot, "k8s", "monitoring", "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, dashboardQueries(t, filepath.Base(f), d)...)
	}
	return out
}

// dashboardQueries walks a dashboard's panels and template variables for
// their targets' expressions, by data source.
func dashboardQueries(t *testing.T, name string, d map[string]any) []query {
	t.Helper()
	var out []query
	lang := func(ds any) string {
		m, _ := ds.(map[string]any)
		switch m["uid"] {
		case promUID:
			return "promql"
		case lokiUID:
			return "logql"
		}
		t.Errorf("dashboard %s: data source %v is not one of config/grafana-datasources.yml", name, ds)
		return ""
	}
	var panels func(ps []any)
	panels = func(ps []any) {
		for _, p := range ps {
			pm := p.(map[string]any)
			title, _ := pm["title"].(string)
			if sub, ok := pm["panels"].([]any); ok {
				panels(sub)
			}
			targets, _ := pm["targets"].([]any)
			if pm["type"] != "row" && pm["type"] != "text" && len(targets) == 0 {
				t.Errorf("dashboard %s: panel %q has no query", name, title)
			}
			for _, tg := range targets {
				tm := tg.(map[string]any)
				ds := tm["datasource"]
				if ds == nil {
					ds = pm["datasource"]
				}
				expr, _ := tm["expr"].(string)
				out = append(out, query{where: fmt.Sprintf("dashboards/%s: %q", name, title), lang: lang(ds), expr: expr})
			}
		}
	}
	ps, _ := d["panels"].([]any)
	panels(ps)
	tmpl, _ := d["templating"].(map[string]any)
	vars, _ := tmpl["list"].([]any)
	for _, v := range vars {
		vm := v.(map[string]any)
		if vm["type"] != "query" {
			continue
		}
		q := vm["definition"].(string)
		if m := regexp.MustCompile(`^label_values\((.*),\s*([a-z_]+)\)$`).FindStringSubmatch(q); m != nil {
			q = m[1]
		}
		out = append(out, query{where: fmt.Sprintf("dashboards/%s: variable %s", name, vm["name"]), lang: lang(vm["datasource"]), expr: q})
	}
	return out
}

// grafanaVars replaces Grafana's variables with values that parse: range
// variables with a duration, the others with their name.
var grafanaVars = regexp.MustCompile(`\$\{?(__rate_interval|__interval|__range|[a-z_]+)\}?`)

func substitute(expr string) string {
	return grafanaVars.ReplaceAllStringFunc(expr, func(v string) string {
		if strings.HasPrefix(strings.Trim(v, "${}"), "__") {
			return "5m"
		}
		return strings.Trim(v, "${}")
	})
}

// metricCatalogue is config/metrics.yml: metric name -> source.
func metricCatalogue(t *testing.T) map[string]string {
	t.Helper()
	var bySource map[string][]string
	if err := yaml.UnmarshalStrict(monitoringFile(t, "config/metrics.yml"), &bySource); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for src, names := range bySource {
		for _, n := range names {
			if prev, dup := out[n]; dup {
				t.Errorf("metrics.yml lists %s under %s and %s", n, prev, src)
			}
			out[n] = src
		}
	}
	return out
}

// TestPromQL: every PromQL expression of the alert and recording rules and of
// the dashboards parses with Prometheus' own parser, and every metric it
// reads is in config/metrics.yml (the application's names, which
// cmd/hospital-erp checks against a live scrape, or a named exporter's) or
// is a recording rule. LogQL has no parser here (Loki's is AGPL): its stream
// selectors may only use the labels Promtail sets.
func TestPromQL(t *testing.T) {
	fixture(t)
	catalogue := metricCatalogue(t)
	records := loadRules(t).records()
	known := func(name string) bool {
		if records[name] || catalogue[name] != "" {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && catalogue[base] != "" {
				return true
			}
		}
		return false
	}
	used := map[string]bool{}
	qs := queries(t)
	var promql, logql int
	for _, q := range qs {
		switch q.lang {
		case "promql":
			promql++
			expr, err := parser.ParseExpr(substitute(q.expr))
			if err != nil {
				t.Errorf("%s: %v\n  %s", q.where, err, q.expr)
				continue
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				name := vs.Name
				if name == "" {
					t.Errorf("%s: a selector without a metric name: %s", q.where, vs)
					return nil
				}
				used[name] = true
				if !known(name) {
					t.Errorf("%s: metric %s is neither in k8s/monitoring/config/metrics.yml nor a recording rule", q.where, name)
				}
				return nil
			})
		case "logql":
			logql++
			checkLogQL(t, q)
		}
	}
	for name := range records {
		if !used[name] {
			t.Errorf("recording rule %s is used by no dashboard or rule", name)
		}
	}
	t.Logf("%d PromQL and %d LogQL expressions", promql, logql)
	if promql < 40 {
		t.Errorf("only %d PromQL expressions found; are the dashboards there?", promql)
	}
}

// The labels Promtail gives log streams (config/promtail.yml).
var lokiLabels = map[string]bool{"namespace": true, "pod": true, "container": true, "component": true,
	"level": true, "status_class": true, "cluster": true, "stream": true}

func checkLogQL(t *testing.T, q query) {
	t.Helper()
	sel := regexp.MustCompile(`^\s*(sum|count|rate|count_over_time|sum by \([a-z_, ]+\)|\(|\s)*\{([^}]*)\}`).FindStringSubmatch(q.expr)
	if sel == nil {
		t.Errorf("%s: LogQL without a stream selector: %s", q.where, q.expr)
		return
	}
	for _, m := range regexp.MustCompile(`([a-z_]+)\s*(=~|!~|!=|=)\s*"`).FindAllStringSubmatch(sel[2], -1) {
		if !lokiLabels[m[1]] {
			t.Errorf("%s: stream label %q is not one Promtail sets (%v): %s", q.where, m[1], sortedKeys(lokiLabels), q.expr)
		}
	}
	if !strings.Contains(sel[2], "namespace") {
		t.Errorf("%s: LogQL must select an environment (namespace): %s", q.where, q.expr)
	}
	for _, field := range []string{"request_id", "user_id"} {
		if regexp.MustCompile(`\{[^}]*` + field).MatchString(q.expr) {
			t.Errorf("%s: %s is a field of the line, never a stream label: %s", q.where, field, q.expr)
		}
	}
}

// TestPromQLCatchesMistakes shows the check has teeth: an unknown metric and
// a syntax error are reported.
func TestPromQLCatchesMistakes(t *testing.T) {
	fixture(t)
	catalogue := metricCatalogue(t)
	if _, err := parser.ParseExpr(substitute(`sum(rate(http_requests_total{namespace="$namespace"}[$__rate_interval])`)); err == nil {
		t.Error("an unbalanced parenthesis parsed")
	}
	expr, err := parser.ParseExpr(substitute(`sum by (route) (rate(http_request_total{namespace=~"$namespace"}[$__rate_interval]))`))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	sort.Strings(names)
	if len(names) != 1 || catalogue[names[0]] != "" {
		t.Errorf("misspelt metric http_request_total found as %v in the catalogue", names)
	}
}
