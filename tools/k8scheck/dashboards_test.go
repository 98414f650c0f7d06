package k8scheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// TestDashboards: every dashboard of k8s/monitoring/dashboards is a valid
// Grafana dashboard (strict decoding by the Grafana Foundation SDK, with the
// panel and query plugins it knows: an unknown field or a wrong type fails),
// has an environment variable and logs from Loki, and is provisioned by a
// ConfigMap with the sidecar's label; together they are the architecture's
// dashboards plus hospital operations. Their queries are TestPromQL's.
func TestDashboards(t *testing.T) {
	fixture(t)
	plugins.RegisterDefaultPlugins()
	files, err := filepath.Glob(filepath.Join(repoRoot, "k8s", "monitoring", "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	cm := bundles["monitoring"].configMap("grafana-dashboards-hospital-erp")
	if cm == nil || cm.Labels["grafana_dashboard"] != "1" {
		t.Fatal(`no ConfigMap grafana-dashboards-hospital-erp labelled grafana_dashboard: "1"`)
	}
	titles := map[string]bool{}
	uids := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard.Dashboard
		if err := d.UnmarshalJSONStrict(raw); err != nil {
			// A successful strict parse returns a typed nil list.
			if errs, ok := err.(cog.BuildErrors); !ok || len(errs) > 0 {
				t.Errorf("%s: not a valid dashboard: %v", name, err)
				continue
			}
		}
		if err := d.Validate(); err != nil {
			if errs, ok := err.(cog.BuildErrors); !ok || len(errs) > 0 {
				t.Errorf("%s: %v", name, err)
			}
		}
		if d.Uid == nil || uids[*d.Uid] {
			t.Errorf("%s: missing or duplicate uid", name)
		} else {
			uids[*d.Uid] = true
		}
		titles[*d.Title] = true
		if cm.Data[name] != string(raw) {
			t.Errorf("%s: not carried unchanged by ConfigMap %s", name, cm.Name)
		}
		hasEnv := false
		for _, v := range d.Templating.List {
			hasEnv = hasEnv || v.Name == "namespace"
		}
		if !hasEnv {
			t.Errorf("%s: no environment (namespace) variable", name)
		}
		var generic map[string]any
		json.Unmarshal(raw, &generic)
		lokiPanels := 0
		for _, q := range dashboardQueries(t, name, generic) {
			if q.lang == "logql" {
				lokiPanels++
			}
			if q.lang == "promql" && !strings.Contains(q.expr, `namespace="$namespace"`) && !strings.HasPrefix(q.where, "dashboards/"+name+": variable") {
				t.Errorf("%s: not limited to the chosen environment: %s", q.where, q.expr)
			}
		}
		if lokiPanels == 0 {
			t.Errorf("%s: no panel queries Loki", name)
		}
	}
	for _, want := range []string{"Hospital ERP / Application overview", "Hospital ERP / Kubernetes cluster", "Hospital ERP / Database performance", "Hospital ERP / Hospital operations"} {
		if !titles[want] {
			t.Errorf("dashboard %q is missing", want)
		}
	}
	if len(cm.Data) != len(files) {
		t.Errorf("ConfigMap %s carries %d dashboards, the directory has %d", cm.Name, len(cm.Data), len(files))
	}
}
