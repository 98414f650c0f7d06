package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/hospital-erp/hospital-erp/internal/admission"
	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/metrics"
	"github.com/hospital-erp/hospital-erp/internal/patient"
)

// sample returns the value of the one series of name whose labels include
// want: a counter's or gauge's value, a histogram's sample count. ok is
// false when no series matches.
func sample(t *testing.T, m *metrics.Metrics, name string, want map[string]string) (v float64, ok bool) {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			if !hasLabels(s, want) {
				continue
			}
			switch {
			case s.Counter != nil:
				return s.Counter.GetValue(), true
			case s.Gauge != nil:
				return s.Gauge.GetValue(), true
			case s.Histogram != nil:
				return float64(s.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func hasLabels(s *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range s.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// eventually polls cond every 50 ms for up to d.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// The hospital's operational metrics count what the services did, once
// per committed action (an idempotent replay is not a second admission),
// and the database-derived gauges show the queues and today's
// appointments as the database has them.
func TestOperationalMetrics(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	m := tb.Metrics
	w := setupWard(t, tb, "OB", 3)
	desk := tb.newUser(t, identity.RoleReceptionist)
	p1 := registerPatient(t, desk.C, "Metricone", "Ann")
	p2 := registerPatient(t, desk.C, "Metrictwo", "Ben")

	count := func(name string, labels map[string]string) float64 {
		v, _ := sample(t, m, name, labels)
		return v
	}
	in := admission.AdmitInput{PatientID: p1.ID, BedID: w.Beds[0], Source: "emergency", Reason: "Fall"}
	a1, err := desk.C.Admit(ctx, in, "admit-once")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := desk.C.Admit(ctx, in, "admit-once"); err != nil {
		t.Fatalf("replayed admission: %v", err)
	}
	a2, err := desk.C.Admit(ctx, admission.AdmitInput{PatientID: p2.ID, BedID: w.Beds[1], Source: "direct", Reason: "Observation"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := desk.C.Admit(ctx, admission.AdmitInput{PatientID: p2.ID, BedID: w.Beds[2], Source: "direct", Reason: "Twice"}, ""); err == nil {
		t.Fatal("second admission of one patient succeeded")
	}
	if _, err := desk.C.Transfer(ctx, a1.ID, 0, admission.TransferInput{BedID: w.Beds[2]}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := desk.C.Discharge(ctx, a1.ID, 0, admission.DischargeInput{Disposition: "home", Summary: "Recovered."}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := desk.C.CancelAdmission(ctx, a2.ID, 0, admission.CancelInput{Reason: "Entered in error"}, ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"admissions_total", map[string]string{"source": "emergency"}, 1},
		{"admissions_total", map[string]string{"source": "direct"}, 1},
		{"admissions_total", map[string]string{"source": "appointment"}, 0},
		{"transfers_total", nil, 1},
		{"discharges_total", map[string]string{"disposition": "home"}, 1},
		{"discharges_total", map[string]string{"disposition": "deceased"}, 0},
		{"admission_cancellations_total", nil, 1},
	} {
		if got := count(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	// Queues: two patients wait in outpatients, one is called after a
	// measured wait; nobody waits in inpatients. Today's appointments are
	// written straight into the database (booking refuses the past).
	cs := setupClinic(t, tb)
	p3 := registerPatient(t, desk.C, "Metricthree", "Cy")
	p4 := registerPatient(t, desk.C, "Metricfour", "Di")
	for _, p := range []string{p2.ID, p3.ID, p4.ID} {
		if _, err := desk.C.QueueWalkIn(ctx, cs.DeptID, p); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := cs.Desk.C.QueueCallNext(ctx, cs.DeptID, "Room 1"); err != nil {
		t.Fatal(err)
	}
	if got := count("queue_wait_seconds", map[string]string{"department": "OPD"}); got != 1 {
		t.Errorf("queue_wait_seconds{department=OPD} observed %v waits, want 1", got)
	}
	su := openAdmin(t, tb)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for i, status := range []string{"booked", "checked_in", "completed", "no_show", "cancelled", "cancelled"} {
		start := today.Add(time.Duration(i) * 15 * time.Minute)
		if _, err := su.Exec(ctx, `INSERT INTO appointments (patient_id, practitioner_id, clinic_id, starts_at, ends_at, status, cancel_reason)
			VALUES ($1, $2, $3, $4, $5, $6::text, CASE WHEN $6::text = 'cancelled' THEN 'test' ELSE '' END)`,
			p3.ID, cs.PractitionerID, cs.ClinicID, start, start.Add(15*time.Minute), status); err != nil {
			t.Fatal(err)
		}
	}
	// The gauges are read from the database at most every 15 s; a backend
	// started now on the same database reads at its first scrape.
	tb2 := startBackend(t, backendOpts{dbURL: tb.DBURL, adminURL: tb.AdminURL, keys: tb.Keys})
	gauge := func(name string, labels map[string]string) float64 {
		v, ok := sample(t, tb2.Metrics, name, labels)
		if !ok {
			t.Errorf("%s%v: no series", name, labels)
		}
		return v
	}
	if got := gauge("queue_waiting_patients", map[string]string{"department": "OPD"}); got != 2 {
		t.Errorf("queue_waiting_patients{department=OPD} = %v, want 2", got)
	}
	if got := gauge("queue_longest_wait_seconds", map[string]string{"department": "OPD"}); got < 1 || got > 60 {
		t.Errorf("queue_longest_wait_seconds{department=OPD} = %v, want about 1", got)
	}
	if got := gauge("queue_waiting_patients", map[string]string{"department": "IPD"}); got != 0 {
		t.Errorf("queue_waiting_patients{department=IPD} = %v, want 0", got)
	}
	for status, want := range map[string]float64{"booked": 1, "checked_in": 1, "completed": 1, "no_show": 1, "cancelled": 2} {
		if got := gauge("appointments_today", map[string]string{"status": status}); got != want {
			t.Errorf("appointments_today{status=%s} = %v, want %v", status, got, want)
		}
	}
}

// Every replica re-verifies the recent audit chain in the background: the
// metric says intact, turns to broken when a record is altered in the
// database, and back to intact once it is restored.
func TestAuditChainVerificationMetric(t *testing.T) {
	tb := startBackend(t, backendOpts{env: map[string]string{"AUDIT_VERIFY_INTERVAL": "100ms"}})
	ctx := context.Background()
	m := tb.Metrics
	rec := tb.newUser(t, identity.RoleReceptionist)
	for range 3 {
		if _, err := rec.C.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Verify", GivenNames: "Test"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := audit.SealPending(ctx, tb.DB, 1000); err != nil {
		t.Fatal(err)
	}
	verified := func() float64 {
		v, ok := sample(t, m, "audit_chain_verified", nil)
		if !ok {
			return -1
		}
		return v
	}
	if !eventually(5*time.Second, func() bool { return verified() == 1 }) {
		t.Fatalf("audit_chain_verified = %v, want 1 for an intact chain", verified())
	}
	if at, _ := sample(t, m, "audit_chain_last_verification_timestamp_seconds", nil); time.Since(time.Unix(int64(at), 0)) > time.Minute {
		t.Errorf("last verification at %v", time.Unix(int64(at), 0))
	}
	admin := openAdmin(t, tb)
	var victim int64
	if err := admin.QueryRow(ctx, "SELECT id FROM audit_events WHERE action = 'patient.create' ORDER BY id LIMIT 1").Scan(&victim); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "UPDATE audit_events SET actor_role = 'admin' WHERE id = $1", victim); err != nil {
		t.Fatal(err)
	}
	if !eventually(5*time.Second, func() bool { return verified() == 0 }) {
		t.Fatalf("audit_chain_verified = %v after a record was altered, want 0", verified())
	}
	if got, _ := sample(t, m, "audit_chain_verifications_total", map[string]string{"result": "broken"}); got < 1 {
		t.Errorf("audit_chain_verifications_total{result=broken} = %v", got)
	}
	if _, err := admin.Exec(ctx, "UPDATE audit_events SET actor_role = 'receptionist' WHERE id = $1", victim); err != nil {
		t.Fatal(err)
	}
	if !eventually(5*time.Second, func() bool { return verified() == 1 }) {
		t.Fatalf("audit_chain_verified = %v after the record was restored, want 1", verified())
	}
	// Deleting the newest block with its records leaves no gap in the
	// chain, but this replica saw that block intact.
	if _, err := admin.Exec(ctx, `WITH b AS (DELETE FROM audit_blocks WHERE seq = (SELECT max(seq) FROM audit_blocks) RETURNING event_ids)
		DELETE FROM audit_events WHERE id IN (SELECT unnest(event_ids) FROM b)`); err != nil {
		t.Fatal(err)
	}
	if !eventually(5*time.Second, func() bool { return verified() == 0 }) {
		t.Fatalf("audit_chain_verified = %v after the head block was deleted, want 0", verified())
	}
	status, _, _ := raw(t, http.MethodGet, tb.URL+"/health/live", "", nil, "")
	if status != http.StatusOK {
		t.Fatalf("liveness %d", status)
	}
}

// monitoringDir is k8s/monitoring, the alert rules, dashboards and their
// tools' configuration (tested with the real tools by tools/k8scheck).
const monitoringDir = "../../k8s/monitoring"

// TestMetricsCatalogue: the names that k8s/monitoring/config/metrics.yml
// lists under hospital-erp, which the alert rules and dashboards may use,
// are exactly those a running backend exposes on its metrics port (besides
// the Go runtime's go_* and process_*), and docs/operations.md describes
// each of them.
func TestMetricsCatalogue(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(monitoringDir, "config", "metrics.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var catalogue map[string][]string
	if err := yaml.Unmarshal(b, &catalogue); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, name := range catalogue["hospital-erp"] {
		listed[name] = true
	}
	if len(listed) < 30 {
		t.Fatalf("metrics.yml lists %d application metrics; has its format changed?", len(listed))
	}

	// Everything a series needs to exist: a ward, a department with a
	// queue and a call, an admission, an error, a verified audit chain.
	// The database-derived gauges are read at the first scrape, so the
	// data is in place before it.
	tb := startBackend(t, backendOpts{env: map[string]string{"AUDIT_VERIFY_INTERVAL": "100ms"}})
	ctx := context.Background()
	w := setupWard(t, tb, "CT", 1)
	desk := tb.newUser(t, identity.RoleReceptionist)
	p := registerPatient(t, desk.C, "Catalogue", "Cat")
	if _, err := desk.C.Admit(ctx, admission.AdmitInput{PatientID: p.ID, BedID: w.Beds[0], Source: "direct", Reason: "Test"}, ""); err != nil {
		t.Fatal(err)
	}
	cs := setupClinic(t, tb)
	if _, err := desk.C.QueueWalkIn(ctx, cs.DeptID, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Desk.C.QueueCallNext(ctx, cs.DeptID, "Room 1"); err != nil {
		t.Fatal(err)
	}
	raw(t, http.MethodGet, tb.URL+"/api/v1/nope", "", nil, "")
	if !eventually(5*time.Second, func() bool { _, ok := sample(t, tb.Metrics, "audit_chain_verified", nil); return ok }) {
		t.Fatal("the audit chain was not verified")
	}

	resp, err := http.Get(metricsServer(t, tb.Metrics) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for name := range listed {
		if mf, ok := families[name]; !ok || len(mf.GetMetric()) == 0 {
			t.Errorf("metrics.yml lists %s, the backend does not expose it", name)
		}
	}
	var unlisted []string
	for name := range families {
		if !listed[name] && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") && !strings.HasPrefix(name, "promhttp_") {
			unlisted = append(unlisted, name)
		}
	}
	sort.Strings(unlisted)
	for _, name := range unlisted {
		t.Errorf("the backend exposes %s: list it in k8s/monitoring/config/metrics.yml (and docs/operations.md)", name)
	}

	ops, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	wildcards := regexp.MustCompile("`([a-z_]+)\\*`").FindAllStringSubmatch(string(ops), -1)
	for name := range listed {
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") || strings.Contains(string(ops), "`"+name) {
			continue
		}
		covered := false
		for _, w := range wildcards {
			covered = covered || strings.HasPrefix(name, w[1])
		}
		if !covered {
			t.Errorf("docs/operations.md does not describe %s", name)
		}
	}
}

// TestLogSamplesAreReal: the sample lines that tools/k8scheck runs through
// Promtail's pipeline (k8s/monitoring/config/promtail.test.yml) have exactly
// the fields the backend writes for the same messages, so the pipeline's
// field names (level, service, status) are tested against real lines.
func TestLogSamplesAreReal(t *testing.T) {
	var cases []struct {
		Line string `yaml:"line"`
	}
	readYAML(t, filepath.Join(monitoringDir, "config", "promtail.test.yml"), &cases)
	samples := map[string][]string{} // msg -> fields
	for _, c := range cases {
		i := strings.Index(c.Line, " {")
		if i < 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(c.Line[i+1:]), &m); err != nil {
			t.Fatalf("sample %q: %v", c.Line, err)
		}
		samples[m["msg"].(string)] = fields(m)
	}
	if len(samples) < 2 {
		t.Fatalf("promtail.test.yml has samples for %v only", samples)
	}

	tb := startBackend(t, backendOpts{})
	rec, _ := tb.user(t, identity.RoleReceptionist)
	ctx := context.Background()
	if _, err := rec.Patients(ctx, client.PatientQuery{}); err != nil {
		t.Fatal(err)
	}
	if _, err := openAdmin(t, tb).Exec(ctx, "REVOKE SELECT ON patients FROM hospital_app"); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.Patients(ctx, client.PatientQuery{}); client.StatusOf(err) != http.StatusInternalServerError {
		t.Fatalf("search without SELECT on patients: %v, want 500", err)
	}
	// The harness's logger lacks the service attribute newLogger adds.
	var svc bytes.Buffer
	newLogger(&svc, slog.LevelInfo, "backend").Info("x")
	var first map[string]any
	if err := json.Unmarshal(svc.Bytes(), &first); err != nil || first["service"] != "backend" {
		t.Fatalf("newLogger writes %s, want a service field", svc.String())
	}
	real := map[string][]string{}
	for _, line := range strings.Split(tb.Logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		m["service"] = "backend"
		if msg, _ := m["msg"].(string); real[msg] == nil {
			real[msg] = fields(m)
		}
	}
	for msg, want := range samples {
		if got := real[msg]; strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("log line %q: the backend writes fields %v, promtail.test.yml's sample has %v", msg, got, want)
		}
	}
}

// fields lists a JSON object's keys with their JSON types: "status:number".
func fields(m map[string]any) []string {
	var out []string
	for k, v := range m {
		kind := "string"
		switch v.(type) {
		case float64:
			kind = "number"
		case bool:
			kind = "bool"
		case nil:
			kind = "null"
		}
		out = append(out, k+":"+kind)
	}
	sort.Strings(out)
	return out
}
