package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

// prometheusBinary finds Debian's Prometheus server. Without it the test
// skips, except under "make test" (which installs it and sets
// HOSPITAL_ERP_MAKE_TEST): there a missing tool is a failure.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("prometheus")
	if err == nil {
		return p
	}
	if os.Getenv("HOSPITAL_ERP_MAKE_TEST") != "" {
		t.Fatal("prometheus is not installed: apt-get install -y prometheus (make test installs it when run as root)")
	}
	t.Skip("prometheus is not installed (apt-get install -y prometheus); make test installs it and runs this test")
	return ""
}

// TestPrometheusAlerts runs the real Prometheus server with the repository's
// configuration (k8s/monitoring/config/prometheus.yml, its backend job and
// the alert rules) against a running backend. Healthy traffic raises no
// alert; when the backend starts failing (its database role loses SELECT on
// patients, as a broken migration would do) HospitalErpHighErrorRate goes
// pending and then firing, with its annotations rendered, as the Prometheus
// API reports. Only the scrape and evaluation intervals (1 s) and the alert's
// "for" (5 s instead of 5 minutes) are shortened; the expressions are the
// repository's.
func TestPrometheusAlerts(t *testing.T) {
	bin := prometheusBinary(t)
	tb := startBackend(t, backendOpts{})
	metricsURL, _ := url.Parse(metricsServer(t, tb.Metrics))
	dir := t.TempDir()

	// The repository's rules, "for" of the error-rate alert shortened.
	var rules map[string]any
	readYAML(t, filepath.Join(monitoringDir, "config", "rules", "hospital-erp.rules.yml"), &rules)
	found := false
	for _, g := range rules["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			rm := r.(map[string]any)
			if rm["alert"] == "HospitalErpHighErrorRate" {
				rm["for"] = "5s"
				found = true
			}
		}
	}
	if !found {
		t.Fatal("no HospitalErpHighErrorRate in the rule file")
	}
	writeYAML(t, filepath.Join(dir, "rules.yml"), rules)

	// The repository's configuration: its backend job, pointed at this
	// backend's metrics server; 1 s intervals; no Alertmanager.
	var cfg map[string]any
	readYAML(t, filepath.Join(monitoringDir, "config", "prometheus.yml"), &cfg)
	cfg["global"].(map[string]any)["scrape_interval"] = "1s"
	cfg["global"].(map[string]any)["evaluation_interval"] = "1s"
	cfg["rule_files"] = []string{filepath.Join(dir, "rules.yml")}
	delete(cfg, "alerting")
	var backendJob map[string]any
	for _, j := range cfg["scrape_configs"].([]any) {
		if jm := j.(map[string]any); jm["job_name"] == "backend" {
			backendJob = jm
		}
	}
	if backendJob == nil {
		t.Fatal("prometheus.yml has no backend job")
	}
	sc := backendJob["static_configs"].([]any)[0].(map[string]any)
	sc["targets"] = []string{metricsURL.Host}
	namespace := sc["labels"].(map[string]any)["namespace"].(string)
	cfg["scrape_configs"] = []any{backendJob}
	writeYAML(t, filepath.Join(dir, "prometheus.yml"), cfg)

	port := freePort(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+port, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	prom := "http://127.0.0.1:" + port
	if !eventually(20*time.Second, func() bool {
		resp, err := http.Get(prom + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}) {
		t.Fatalf("prometheus did not become ready:\n%s", logs.String())
	}
	t.Logf("prometheus ready in %s", time.Since(start).Round(time.Millisecond))

	// Every rule of the repository loaded and evaluates without error.
	var rulesResp struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
				}
			}
		}
	}
	promGet(t, prom+"/api/v1/rules", &rulesResp)
	n := 0
	for _, g := range rulesResp.Data.Groups {
		n += len(g.Rules)
	}
	if n < 30 {
		t.Fatalf("prometheus loaded %d rules", n)
	}

	// Traffic: a receptionist searching patients, four at a time.
	rec, _ := tb.user(t, identity.RoleReceptionist)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, _ = rec.Patients(ctx, client.PatientQuery{})
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()

	alert := func() (state string, labels, annotations map[string]string) {
		var resp struct {
			Data struct {
				Alerts []struct {
					Labels      map[string]string
					Annotations map[string]string
					State       string
				}
			}
		}
		promGet(t, prom+"/api/v1/alerts", &resp)
		for _, a := range resp.Data.Alerts {
			if a.Labels["alertname"] == "HospitalErpHighErrorRate" {
				return a.State, a.Labels, a.Annotations
			}
		}
		return "", nil, nil
	}
	// Healthy: the backend is scraped, the request rate is visible, no alert.
	if !eventually(20*time.Second, func() bool {
		return promValue(t, prom, `sum(rate(http_requests_total{job="backend", route="GET /api/v1/patients"}[5m]))`) > 0
	}) {
		t.Fatalf("no request rate in Prometheus:\n%s", logs.String())
	}
	time.Sleep(3 * time.Second)
	if state, _, _ := alert(); state != "" {
		t.Fatalf("HospitalErpHighErrorRate is %s on healthy traffic", state)
	}

	// The backend breaks.
	admin := openAdmin(t, tb)
	if _, err := admin.Exec(context.Background(), "REVOKE SELECT ON patients FROM hospital_app"); err != nil {
		t.Fatal(err)
	}
	broke := time.Now()
	var pendingAt, firingAt time.Duration
	var labels, annotations map[string]string
	if !eventually(60*time.Second, func() bool {
		state, l, a := alert()
		if state == "pending" && pendingAt == 0 {
			pendingAt = time.Since(broke)
		}
		if state == "firing" {
			firingAt, labels, annotations = time.Since(broke), l, a
			return true
		}
		return false
	}) {
		t.Fatalf("HospitalErpHighErrorRate did not fire within 60 s; 5xx ratio %v\n%s",
			promValue(t, prom, `namespace_job:http_error_ratio:rate5m`), logs.String())
	}
	t.Logf("errors from 0 s: pending after %s, firing after %s", pendingAt.Round(time.Millisecond), firingAt.Round(time.Millisecond))
	if pendingAt == 0 || firingAt-pendingAt < 4*time.Second {
		t.Errorf("the alert should be pending for its 5 s before firing (pending %s, firing %s)", pendingAt, firingAt)
	}
	if labels["severity"] != "critical" || labels["job"] != "backend" || labels["namespace"] != namespace {
		t.Errorf("alert labels %v", labels)
	}
	if !strings.HasPrefix(annotations["summary"], "backend in "+namespace+" answers more than 5% of requests with 5xx") ||
		!strings.HasSuffix(annotations["runbook_url"], "/docs/runbooks/HospitalErpHighErrorRate.md") {
		t.Errorf("alert annotations %v", annotations)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func promGet(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", u, err)
	}
}

// promValue returns the first sample of an instant query (0 when empty).
func promValue(t *testing.T, prom, query string) float64 {
	t.Helper()
	var resp struct {
		Data struct {
			Result []struct {
				Value []any
			}
		}
	}
	promGet(t, prom+"/api/v1/query?query="+url.QueryEscape(query), &resp)
	if len(resp.Data.Result) == 0 {
		return 0
	}
	var f float64
	fmt.Sscan(resp.Data.Result[0].Value[1].(string), &f)
	return f
}
