package k8scheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// InstallAlertmanager is what to run when amtool or Alertmanager is missing
// ("make test" installs it as root).
const InstallAlertmanager = "apt-get install -y prometheus-alertmanager"

// The tools' own files of k8s/monitoring (config/), which the rendered
// objects carry or mirror.
func monitoringFile(t *testing.T, rel string) []byte {
	t.Helper()
	fixture(t)
	b, err := os.ReadFile(filepath.Join(repoRoot, "k8s", "monitoring", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ruleGroups is a Prometheus rule file.
type ruleGroups struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	} `json:"groups"`
}

type rule struct {
	Record      string            `json:"record,omitempty"`
	Alert       string            `json:"alert,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

const rulesFile = "config/rules/hospital-erp.rules.yml"

func loadRules(t *testing.T) ruleGroups {
	t.Helper()
	var g ruleGroups
	if err := yaml.UnmarshalStrict(monitoringFile(t, rulesFile), &g); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return g
}

func (g ruleGroups) alerts() []rule {
	var out []rule
	for _, grp := range g.Groups {
		for _, r := range grp.Rules {
			if r.Alert != "" {
				out = append(out, r)
			}
		}
	}
	return out
}

func (g ruleGroups) records() map[string]bool {
	out := map[string]bool{}
	for _, grp := range g.Groups {
		for _, r := range grp.Rules {
			if r.Record != "" {
				out[r.Record] = true
			}
		}
	}
	return out
}

// Severities and where Alertmanager sends them in production.
var severityReceiver = map[string]string{"critical": "pagerduty", "warning": "slack", "info": "email"}

const runbookBase = "https://github.com/hospital-erp/hospital-erp/blob/main/docs/runbooks/"

// TestRules: promtool accepts the rule file and the PrometheusRule that
// carries the same groups (they must not drift apart), promtool's unit tests
// pass, and they cover every alert both firing and silent. Every alert has a
// severity Alertmanager routes, a summary, a description and a runbook in
// docs/runbooks/ with the three sections a responder needs; the
// architecture's key alerts and the are all there.
func TestRules(t *testing.T) {
	promtool, err := Tool("promtool", InstallPromtool)
	if err != nil {
		t.Fatal(err)
	}
	fixture(t)
	dir := filepath.Join(repoRoot, "k8s", "monitoring", "config", "rules")
	if out, err := exec.Command(promtool, "check", "rules", filepath.Join(repoRoot, "k8s", "monitoring", rulesFile)).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	}
	start := time.Now()
	cmd := exec.Command(promtool, "test", "rules", "hospital-erp.test.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
	t.Logf("promtool test rules: %s", time.Since(start).Round(time.Millisecond))

	// The PrometheusRule is the rule file, for the Prometheus Operator.
	prs := bundles["monitoring"].customs("PrometheusRule")
	if len(prs) != 1 {
		t.Fatalf("k8s/monitoring renders %d PrometheusRules, want 1", len(prs))
	}
	spec, _, _ := unstructuredMap(prs[0].Object, "spec")
	specYAML, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "prometheusrule.rules.yml")
	if err := os.WriteFile(f, specYAML, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("%s: promtool check rules: %v\n%s", prs[0].ID(), err, out)
	}
	var fromFile, fromCR any
	if err := yaml.Unmarshal(monitoringFile(t, rulesFile), &fromFile); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(specYAML, &fromCR); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromFile, fromCR) {
		t.Errorf("k8s/monitoring/prometheusrule.yaml differs from %s: run make monitoring-generate", rulesFile)
	}
	for _, pr := range bundles["monitoring"].customs("PrometheusRule") {
		if pr.GetNamespace() != "monitoring" {
			t.Errorf("%s: one copy of the rules, in the monitoring namespace (a copy per environment would evaluate every rule three times)", pr.ID())
		}
	}
	for _, env := range Environments {
		if prs := bundles["overlays/"+env].customs("PrometheusRule"); len(prs) != 0 {
			t.Errorf("overlays/%s renders a PrometheusRule; the rules live once in k8s/monitoring", env)
		}
	}

	// Alerts: labels, annotations, runbooks.
	rules := loadRules(t)
	alerts := map[string]rule{}
	for _, a := range rules.alerts() {
		if _, dup := alerts[a.Alert]; dup {
			t.Errorf("alert %s is defined twice", a.Alert)
		}
		alerts[a.Alert] = a
		if _, ok := severityReceiver[a.Labels["severity"]]; !ok {
			t.Errorf("%s: severity %q, want critical, warning or info", a.Alert, a.Labels["severity"])
		}
		for _, k := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(a.Annotations[k]) == "" {
				t.Errorf("%s: no %s annotation", a.Alert, k)
			}
		}
		if want := runbookBase + a.Alert + ".md"; a.Annotations["runbook_url"] != want {
			t.Errorf("%s: runbook_url %q, want %q", a.Alert, a.Annotations["runbook_url"], want)
		}
		rb, err := os.ReadFile(filepath.Join(repoRoot, "docs", "runbooks", a.Alert+".md"))
		if err != nil {
			t.Errorf("%s: no runbook: %v", a.Alert, err)
			continue
		}
		for _, section := range []string{"# " + a.Alert, "## Meaning", "## First checks", "## Mitigation"} {
			if !bytes.Contains(rb, []byte(section+"\n")) {
				t.Errorf("docs/runbooks/%s.md: no %q section", a.Alert, section)
			}
		}
	}
	runbooks, _ := filepath.Glob(filepath.Join(repoRoot, "docs", "runbooks", "*.md"))
	for _, rb := range runbooks {
		name := strings.TrimSuffix(filepath.Base(rb), ".md")
		if _, ok := alerts[name]; !ok && name != "README" {
			t.Errorf("docs/runbooks/%s.md: no alert of that name", name)
		}
	}
	for _, name := range []string{
		// The architecture's key alerts.
		"HospitalErpHighErrorRate", "HospitalErpHighLatency", "HospitalErpPodCrashLooping", "HospitalErpHighCPU", "HospitalErpHighMemory",
		// Issue 7's.
		"HospitalErpRedisCircuitOpen", "HospitalErpRedisDown", "HospitalErpPgBouncerClientsWaiting", "HospitalErpBackendNotReady",
		"HospitalErpBackendDown", "HospitalErpDatabaseConnectionsSaturated", "HospitalErpAuditChainBroken", "HospitalErpBreakGlassUsed",
		"HospitalErpWardFull",
	} {
		if _, ok := alerts[name]; !ok {
			t.Errorf("alert %s is missing", name)
		}
	}
	for name, want := range map[string]string{"HospitalErpHighErrorRate": "5m", "HospitalErpHighLatency": "5m", "HospitalErpHighCPU": "10m", "HospitalErpHighMemory": "10m"} {
		if got := alerts[name].For; got != want {
			t.Errorf("%s: for %q, the architecture says %s", name, got, want)
		}
	}

	// Every alert is tested firing and silent.
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				EvalTime  string           `json:"eval_time"`
				Alertname string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(monitoringFile(t, "config/rules/hospital-erp.test.yml"), &tests); err != nil {
		t.Fatal(err)
	}
	firing, silent := map[string]int{}, map[string]int{}
	for _, tg := range tests.Tests {
		for _, c := range tg.AlertRuleTest {
			if len(c.ExpAlerts) > 0 {
				firing[c.Alertname]++
			} else {
				silent[c.Alertname]++
			}
		}
	}
	for name := range alerts {
		if firing[name] == 0 || silent[name] == 0 {
			t.Errorf("%s: hospital-erp.test.yml needs a case where it fires and one where it is silent (has %d and %d)", name, firing[name], silent[name])
		}
	}
}

// alertmanagerConfig writes a copy of config/alertmanager.yml whose message
// templates are read from the repository instead of the pod's ConfigMap
// mount, so amtool and Alertmanager parse them too.
func alertmanagerConfig(t *testing.T) string {
	t.Helper()
	cfg := monitoringFile(t, "config/alertmanager.yml")
	mount := "/etc/alertmanager/configmaps/alertmanager-templates/*.tmpl"
	if !bytes.Contains(cfg, []byte(mount)) {
		t.Fatalf("config/alertmanager.yml: templates are not read from %s", mount)
	}
	dir := t.TempDir()
	local := bytes.ReplaceAll(cfg, []byte(mount), []byte(filepath.Join(repoRoot, "k8s", "monitoring", "config", "*.tmpl")))
	f := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(f, local, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestAlertmanagerConfig: amtool accepts the configuration and its
// templates; each case of alertmanager.test.yml reaches exactly its
// receivers (amtool config routes test); every alert of the rule file
// reaches, in production, the receiver of its severity and, elsewhere,
// Slack; the messages carry summary, description and runbook; and the file
// fits its delivery: no template syntax (External Secrets renders it), the
// credentials read from files of the Secret that External Secrets writes,
// templates from the ConfigMap the Alertmanager mounts.
func TestAlertmanagerConfig(t *testing.T) {
	amtool, err := Tool("amtool", InstallAlertmanager)
	if err != nil {
		t.Fatal(err)
	}
	cfg := alertmanagerConfig(t)
	out, err := exec.Command(amtool, "check-config", cfg).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("1 templates")) {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	routes := func(t *testing.T, labels map[string]string, receivers []string) {
		t.Helper()
		args := []string{"config", "routes", "test", "--config.file=" + cfg, "--verify.receivers=" + strings.Join(receivers, ",")}
		for _, k := range sortedKeys(labels) {
			args = append(args, k+"="+labels[k])
		}
		if out, err := exec.Command(amtool, args...).CombinedOutput(); err != nil {
			t.Errorf("alert %v should reach %v: %v\n%s", labels, receivers, err, out)
		}
	}
	var cases []struct {
		Labels    map[string]string `json:"labels"`
		Receivers []string          `json:"receivers"`
	}
	if err := yaml.UnmarshalStrict(monitoringFile(t, "config/alertmanager.test.yml"), &cases); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, c := range cases {
		routes(t, c.Labels, c.Receivers)
		if c.Labels["namespace"] == "hospital-erp-production" {
			got[c.Labels["severity"]+">"+strings.Join(c.Receivers, ",")] = true
		}
	}
	for _, want := range []string{"critical>pagerduty", "warning>slack", "info>email"} {
		if !got[want] {
			t.Errorf("alertmanager.test.yml has no production case %s", want)
		}
	}
	for _, a := range loadRules(t).alerts() {
		sev := a.Labels["severity"]
		routes(t, map[string]string{"alertname": a.Alert, "severity": sev, "namespace": "hospital-erp-production"}, []string{severityReceiver[sev]})
		routes(t, map[string]string{"alertname": a.Alert, "severity": sev, "namespace": "hospital-erp-staging"}, []string{"slack"})
	}

	// The messages.
	data := map[string]any{
		"receiver": "slack", "status": "firing",
		"alerts": []map[string]any{{
			"status": "firing",
			"labels": map[string]string{"alertname": "HospitalErpHighLatency", "namespace": "hospital-erp-production", "severity": "warning"},
			"annotations": map[string]string{"summary": "backend in hospital-erp-production: p95 latency above 500 ms",
				"description": "The 95th percentile of backend request latency is 750ms.", "runbook_url": runbookBase + "HospitalErpHighLatency.md"},
			"startsAt": "2026-11-26T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
		}},
		"groupLabels":       map[string]string{"alertname": "HospitalErpHighLatency", "namespace": "hospital-erp-production"},
		"commonLabels":      map[string]string{"alertname": "HospitalErpHighLatency", "namespace": "hospital-erp-production", "severity": "warning"},
		"commonAnnotations": map[string]string{},
		"externalURL":       "http://alertmanager",
	}
	dataFile := filepath.Join(t.TempDir(), "data.json")
	b, _ := json.Marshal(data)
	if err := os.WriteFile(dataFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tmpl := range []string{"slack.default.title", "slack.default.text", "pagerduty.default.description", "pagerduty.default.instances", "email.default.subject", "email.default.html"} {
		out, err := exec.Command(amtool, "template", "render", "--template.glob="+filepath.Join(repoRoot, "k8s", "monitoring", "config", "*.tmpl"),
			"--template.data="+dataFile, "--template.text={{ template \""+tmpl+"\" . }}").CombinedOutput()
		if err != nil {
			t.Errorf("render %s: %v\n%s", tmpl, err, out)
			continue
		}
		want := map[string][]string{
			"slack.default.title":           {"production", "HospitalErpHighLatency"},
			"email.default.subject":         {"production", "HospitalErpHighLatency"},
			"pagerduty.default.description": {"production", "HospitalErpHighLatency", "p95 latency above 500 ms"},
		}[tmpl]
		if want == nil {
			want = []string{"p95 latency above 500 ms", "750ms", runbookBase + "HospitalErpHighLatency.md"}
		}
		for _, w := range want {
			if !bytes.Contains(out, []byte(w)) {
				t.Errorf("template %s does not show %q:\n%s", tmpl, w, out)
			}
		}
	}

	// Delivery: the Secret, the mounts, no template syntax.
	raw := monitoringFile(t, "config/alertmanager.yml")
	if bytes.Contains(raw, []byte("{{")) {
		t.Error("config/alertmanager.yml contains {{: External Secrets would execute it as a template")
	}
	m := bundles["monitoring"]
	ams := m.customs("Alertmanager")
	if len(ams) != 1 {
		t.Fatalf("want one Alertmanager, got %d", len(ams))
	}
	am := ams[0].Object
	secret := unstructuredString(am, "spec", "configSecret")
	mounted, _, _ := unstructuredStrings(am, "spec", "secrets")
	if !contains(mounted, secret) {
		t.Errorf("Alertmanager: the config Secret %q must also be mounted (spec.secrets) for the receivers' *_file credentials", secret)
	}
	keys := map[string]bool{}
	var es Object
	for _, o := range m.customs("ExternalSecret") {
		if unstructuredString(o.Object, "spec", "target", "name") == secret {
			es = o
		}
	}
	if es.Unstructured == nil {
		t.Fatalf("no ExternalSecret writes Secret %s", secret)
	}
	data2, _, _ := unstructuredSlice(es.Object, "spec", "data")
	for _, d := range data2 {
		keys[d.(map[string]any)["secretKey"].(string)] = true
	}
	for _, f := range regexp.MustCompile(`_file: (\S+)`).FindAllSubmatch(raw, -1) {
		p := string(f[1])
		dir, key := filepath.Split(p)
		if dir != "/etc/alertmanager/secrets/"+secret+"/" || !keys[key] {
			t.Errorf("config/alertmanager.yml reads %s, which is not a key of the Secret %s mounted at /etc/alertmanager/secrets/%s/", p, secret, secret)
		}
	}
	if n := len(regexp.MustCompile(`_file: `).FindAll(raw, -1)); n < 3 {
		t.Errorf("config/alertmanager.yml: %d credentials from files, want PagerDuty, Slack and SMTP", n)
	}
	tmpl, _, _ := unstructuredSlice(es.Object, "spec", "target", "template", "templateFrom")
	var cmName string
	for _, tf := range tmpl {
		cm, _ := tf.(map[string]any)["configMap"].(map[string]any)
		if cm != nil {
			cmName, _ = cm["name"].(string)
		}
	}
	cm := m.configMap(cmName)
	if cm == nil || cm.Data["alertmanager.yaml"] != string(raw) {
		t.Errorf("ExternalSecret %s: its template ConfigMap %q must carry config/alertmanager.yml as alertmanager.yaml", es.GetName(), cmName)
	}
	cms, _, _ := unstructuredStrings(am, "spec", "configMaps")
	tm := m.configMap("alertmanager-templates")
	if !contains(cms, "alertmanager-templates") || tm == nil || tm.Data["hospital-erp.tmpl"] == "" {
		t.Error("Alertmanager must mount the ConfigMap alertmanager-templates holding hospital-erp.tmpl")
	}
}

// TestAlertmanagerInhibitsAndDeduplicates starts the real Alertmanager with
// the configuration and sends it alerts as Prometheus would: the same alert
// twice (two Prometheus replicas) is one alert; a down backend silences the
// latency and error-rate alerts of its namespace but not another
// namespace's; groups go to the receiver of their severity.
func TestAlertmanagerInhibitsAndDeduplicates(t *testing.T) {
	bin, err := Tool("prometheus-alertmanager", InstallAlertmanager)
	if err != nil {
		t.Fatal(err)
	}
	cfg := alertmanagerConfig(t)
	port := fmt.Sprint(freePort(t))
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+t.TempDir(), "--web.listen-address=127.0.0.1:"+port,
		"--cluster.listen-address=", "--log.level=warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://127.0.0.1:" + port + "/api/v2/"
	start := time.Now()
	for {
		resp, err := http.Get(base + "status")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("alertmanager did not start: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("alertmanager ready in %s", time.Since(start).Round(time.Millisecond))
	alert := func(name, ns, severity string) map[string]any {
		return map[string]any{"labels": map[string]string{"alertname": name, "namespace": ns, "severity": severity, "job": "backend"},
			"annotations": map[string]string{"summary": name}, "startsAt": time.Now().Add(-time.Minute).Format(time.RFC3339)}
	}
	post := func(alerts ...map[string]any) {
		b, _ := json.Marshal(alerts)
		resp, err := http.Post(base+"alerts", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("post alerts: %s", resp.Status)
		}
	}
	prod, staging := "hospital-erp-production", "hospital-erp-staging"
	post(alert("HospitalErpHighLatency", prod, "warning"), alert("HospitalErpHighErrorRate", prod, "critical"),
		alert("HospitalErpHighLatency", staging, "warning"), alert("HospitalErpBackendDown", prod, "critical"))
	post(alert("HospitalErpHighLatency", staging, "warning")) // the other Prometheus replica

	want := map[string]string{
		"HospitalErpHighLatency/" + prod:    "suppressed [slack]",
		"HospitalErpHighErrorRate/" + prod:  "suppressed [pagerduty]",
		"HospitalErpBackendDown/" + prod:    "active [pagerduty]",
		"HospitalErpHighLatency/" + staging: "active [slack]",
	}
	// Alertmanager's inhibitor sees new alerts asynchronously: an alert can
	// be listed active for a moment before the one inhibiting it is taken
	// into account. Ask until the states settle (or 5 s pass).
	var state map[string]string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		state = alertStates(t, base)
		if reflect.DeepEqual(state, want) || time.Now().After(deadline) {
			break
		}
	}
	if !reflect.DeepEqual(state, want) {
		t.Errorf("alerts in Alertmanager:\n got %v\nwant %v", state, want)
	}
}

// alertStates reads Alertmanager's alerts as "name/namespace" -> "state
// [receivers]", checking that none is held twice and that a suppressed one
// names what inhibits it.
func alertStates(t *testing.T, base string) map[string]string {
	t.Helper()
	var got []struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			State       string   `json:"state"`
			InhibitedBy []string `json:"inhibitedBy"`
		} `json:"status"`
		Receivers []struct {
			Name string `json:"name"`
		} `json:"receivers"`
	}
	resp, err := http.Get(base + "alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	state := map[string]string{}
	for _, a := range got {
		key := a.Labels["alertname"] + "/" + a.Labels["namespace"]
		if _, dup := state[key]; dup {
			t.Errorf("%s is held twice: not deduplicated", key)
		}
		var rcv []string
		for _, r := range a.Receivers {
			rcv = append(rcv, r.Name)
		}
		state[key] = fmt.Sprintf("%s %v", a.Status.State, rcv)
		if a.Status.State == "suppressed" && len(a.Status.InhibitedBy) == 0 {
			t.Errorf("%s suppressed, but not by an inhibition", key)
		}
	}
	return state
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestMonitoringStack: Prometheus scrapes every 15 s, evaluates every 15 s
// and keeps 30 days (the architecture), finds every ServiceMonitor and
// PrometheusRule of the cluster, and sends to the Alertmanager defined here;
// Loki keeps 7 days; the dashboards and data sources carry the labels
// Grafana's sidecars look for; every image is pinned.
func TestMonitoringStack(t *testing.T) {
	fixture(t)
	m := bundles["monitoring"]
	ps := m.customs("Prometheus")
	if len(ps) != 1 {
		t.Fatalf("want one Prometheus, got %d", len(ps))
	}
	p := ps[0].Object
	for field, want := range map[string]string{"scrapeInterval": "15s", "evaluationInterval": "15s", "retention": "30d"} {
		if got := unstructuredString(p, "spec", field); got != want {
			t.Errorf("Prometheus spec.%s = %q, want %s", field, got, want)
		}
	}
	for _, sel := range []string{"serviceMonitorSelector", "serviceMonitorNamespaceSelector", "ruleSelector", "ruleNamespaceSelector"} {
		v, ok, _ := unstructuredMap(p, "spec", sel)
		if !ok || len(v) != 0 {
			t.Errorf("Prometheus spec.%s must be {} (everything in the cluster), got %v", sel, v)
		}
	}
	ams, _, _ := unstructuredSlice(p, "spec", "alerting", "alertmanagers")
	am := m.customs("Alertmanager")
	if len(ams) != 1 || len(am) != 1 || ams[0].(map[string]any)["name"] != "alertmanager-operated" || ams[0].(map[string]any)["namespace"] != am[0].GetNamespace() {
		t.Errorf("Prometheus must send alerts to the Alertmanager of k8s/monitoring (Service alertmanager-operated), got %v", ams)
	}
	sa := unstructuredString(p, "spec", "serviceAccountName")
	bound := false
	for _, o := range m.objects {
		if o.GetKind() == "ClusterRoleBinding" {
			subj, _, _ := unstructuredSlice(o.Object, "subjects")
			for _, s := range subj {
				sm := s.(map[string]any)
				bound = bound || (sm["name"] == sa && sm["namespace"] == "monitoring")
			}
		}
	}
	if !bound {
		t.Errorf("Prometheus' ServiceAccount %q has no ClusterRoleBinding (service discovery across namespaces)", sa)
	}

	var loki struct {
		LimitsConfig struct {
			RetentionPeriod string `json:"retention_period"`
		} `json:"limits_config"`
		Compactor struct {
			RetentionEnabled   bool   `json:"retention_enabled"`
			DeleteRequestStore string `json:"delete_request_store"`
		} `json:"compactor"`
	}
	if err := yaml.Unmarshal(monitoringFile(t, "config/loki.yml"), &loki); err != nil {
		t.Fatal(err)
	}
	if loki.LimitsConfig.RetentionPeriod != "168h" || !loki.Compactor.RetentionEnabled || loki.Compactor.DeleteRequestStore == "" {
		t.Errorf("Loki must keep 7 days: retention_period 168h with the compactor's retention enabled (and its delete_request_store), got %+v", loki)
	}
	for name, label := range map[string]string{"grafana-datasources-hospital-erp": "grafana_datasource"} {
		if cm := m.configMap(name); cm == nil || cm.Labels[label] != "1" {
			t.Errorf("ConfigMap %s must carry %s: \"1\" for Grafana's sidecar", name, label)
		}
	}

	ref := regexp.MustCompile(`^[a-z0-9.-]+\.[a-z]{2,}(:[0-9]+)?/[a-z0-9._/-]+:v?[0-9][A-Za-z0-9._-]*$`)
	images := map[string]string{}
	for _, o := range m.objects {
		switch o.GetKind() {
		case "Prometheus", "Alertmanager":
			images[o.ID()] = unstructuredString(o.Object, "spec", "image")
			if v := unstructuredString(o.Object, "spec", "version"); !strings.HasSuffix(images[o.ID()], ":"+v) {
				t.Errorf("%s: spec.version %q does not match the image %q", o.ID(), v, images[o.ID()])
			}
		case "StatefulSet", "DaemonSet", "Deployment":
			cs, _, _ := unstructuredSlice(o.Object, "spec", "template", "spec", "containers")
			for i, c := range cs {
				images[fmt.Sprintf("%s container %d", o.ID(), i)] = c.(map[string]any)["image"].(string)
			}
		}
	}
	ids := sortedKeys(images)
	sort.Strings(ids)
	for _, id := range ids {
		if !ref.MatchString(images[id]) {
			t.Errorf("%s: image %q is not registry/repository:version", id, images[id])
		}
	}
	if len(images) < 4 {
		t.Errorf("found %d images in k8s/monitoring, want Prometheus, Alertmanager, Loki and Promtail", len(images))
	}
}

// TestPlainPrometheusConfig: config/prometheus.yml, for Prometheus without
// the operator (and cmd/hospital-erp's end-to-end test), passes promtool and
// says what the Prometheus resource and the ServiceMonitors say: the same
// intervals, the rule file, one job per Service with a metrics port (the
// job name the operator gives its targets), each target with the
// environment as namespace.
func TestPlainPrometheusConfig(t *testing.T) {
	promtool, err := Tool("promtool", InstallPromtool)
	if err != nil {
		t.Fatal(err)
	}
	fixture(t)
	file := filepath.Join(repoRoot, "k8s", "monitoring", "config", "prometheus.yml")
	if out, err := exec.Command(promtool, "check", "config", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}
	var cfg struct {
		Global struct {
			ScrapeInterval     string `json:"scrape_interval"`
			EvaluationInterval string `json:"evaluation_interval"`
		} `json:"global"`
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			StaticConfigs []struct {
				Labels map[string]string `json:"labels"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(monitoringFile(t, "config/prometheus.yml"), &cfg); err != nil {
		t.Fatal(err)
	}
	p := bundles["monitoring"].customs("Prometheus")[0].Object
	if cfg.Global.ScrapeInterval != unstructuredString(p, "spec", "scrapeInterval") || cfg.Global.EvaluationInterval != unstructuredString(p, "spec", "evaluationInterval") {
		t.Errorf("intervals %+v differ from the Prometheus resource's", cfg.Global)
	}
	if len(cfg.RuleFiles) != 1 || filepath.Join(repoRoot, "k8s", "monitoring", "config", cfg.RuleFiles[0]) != filepath.Join(repoRoot, "k8s", "monitoring", rulesFile) {
		t.Errorf("rule_files %v, want the rule file %s", cfg.RuleFiles, rulesFile)
	}
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = true
		for _, s := range sc.StaticConfigs {
			if !strings.HasPrefix(s.Labels["namespace"], "hospital-erp-") {
				t.Errorf("job %s: targets need the environment as namespace label, got %v", sc.JobName, s.Labels)
			}
		}
	}
	want := map[string]bool{}
	for _, svc := range bundles["overlays/production"].services {
		for _, port := range svc.Spec.Ports {
			if port.Name == "metrics" {
				want[svc.Name] = true
			}
		}
	}
	if !reflect.DeepEqual(jobs, want) {
		t.Errorf("jobs %v, the ServiceMonitors scrape Services %v", sortedKeys(jobs), sortedKeys(want))
	}
}
