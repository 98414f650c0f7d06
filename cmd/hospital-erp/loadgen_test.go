package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/demo"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/loadgen"
)

// seed at hospital scale (small here) makes patients, practitioners with
// appointments that never double-book, and beds; the load generator's
// scenarios run against it without errors, the admission scenario cleans
// up after itself, and the fan-out reaches every WebSocket client.
func TestSeedScaleAndLoadScenarios(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	env := map[string]string{"DATABASE_URL": tb.AdminURL, "HOSPITAL_TIMEZONE": "Europe/London"}
	var out bytes.Buffer
	if err := run(ctx, []string{"hospital-erp", "seed", "--patients", "3000", "--practitioners", "3", "--past-days", "5",
		"--future-days", "3", "--beds", "90"}, func(k string) string { return env[k] }, &out, &out); err != nil {
		t.Fatalf("seed: %v\n%s", err, out.String())
	}
	var patients, appts, beds, practitioners, overlaps int
	if err := tb.DB.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM patients), (SELECT count(*) FROM appointments),
		(SELECT count(*) FROM beds WHERE status = 'available'), (SELECT count(*) FROM practitioners),
		(SELECT count(*) FROM appointments a JOIN appointments b ON a.practitioner_id = b.practitioner_id AND a.id < b.id
		   AND a.status <> 'cancelled' AND b.status <> 'cancelled' AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at)`).Scan(
		&patients, &appts, &beds, &practitioners, &overlaps); err != nil {
		t.Fatal(err)
	}
	// 3 practitioners x 8 days x 60 slots, 70% (past) or 30% (future) filled.
	if patients != 3000 || practitioners != 3 || beds != 90 || appts < 3*5*60*6/10 || appts > 3*8*60 || overlaps != 0 {
		t.Fatalf("seeded %d patients, %d practitioners, %d beds, %d appointments (%d overlapping)", patients, practitioners, beds, appts, overlaps)
	}

	desk := tb.newUser(t, identity.RoleReceptionist)
	nurse := tb.newUser(t, identity.RoleNurse)
	check := func(r loadgen.Result) {
		t.Helper()
		if r.OK == 0 || len(r.Errors) != 0 || r.Dropped != 0 {
			t.Errorf("%s: %d ok, errors %v, %d dropped", r.Scenario, r.OK, r.Errors, r.Dropped)
		}
	}
	read, err := loadgen.NewRead(ctx, desk.C, 300, 1)
	if err != nil {
		t.Fatal(err)
	}
	check(loadgen.Run(ctx, read, loadgen.Options{Rate: 100, Duration: time.Second}))
	book, err := loadgen.NewBook(ctx, desk.C, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	check(loadgen.Run(ctx, book, loadgen.Options{Rate: 50, Duration: time.Second}))
	// Several scenarios at once: the whole and each part reported.
	mixRead, err := loadgen.NewRead(ctx, desk.C, 300, 2)
	if err != nil {
		t.Fatal(err)
	}
	mix, err := loadgen.NewMix([]loadgen.Scenario{mixRead, loadgen.NewSearch(desk.C, 1, 3000)}, []int{3, 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	mr := loadgen.Run(ctx, mix, loadgen.Options{Rate: 80, Duration: time.Second})
	check(mr)
	if len(mr.Parts) != 2 || mr.Parts[0].OK == 0 || mr.Parts[1].OK == 0 || mr.Parts[0].OK+mr.Parts[1].OK != mr.OK ||
		mr.Parts[0].OK < mr.Parts[1].OK || mr.Parts[0].LatencyMS.Max == 0 {
		t.Errorf("mix: %d ok, parts %+v", mr.OK, mr.Parts)
	}
	if md := loadgen.Markdown([]loadgen.Result{mr}); !strings.Contains(md, "› patient search") {
		t.Errorf("mix report without its parts:\n%s", md)
	}
	// Registrations: each one a new patient, after the duplicate check.
	var before, after int
	if err := tb.DB.Pool.QueryRow(ctx, "SELECT count(*) FROM patients").Scan(&before); err != nil {
		t.Fatal(err)
	}
	reg := loadgen.Run(ctx, loadgen.NewRegister(desk.C, 1), loadgen.Options{Rate: 30, Duration: time.Second})
	check(reg)
	if err := tb.DB.Pool.QueryRow(ctx, "SELECT count(*) FROM patients").Scan(&after); err != nil || int64(after-before) != reg.OK {
		t.Errorf("%d registrations answered, %d patients added (%v)", reg.OK, after-before, err)
	}
	checkIn, err := loadgen.NewCheckIn(ctx, desk.C, 1000)
	if err != nil {
		t.Fatal(err)
	}
	ci := loadgen.Run(ctx, checkIn, loadgen.Options{Rate: 20, Duration: time.Second})
	check(ci)
	var checkedIn int64
	if err := tb.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM appointments WHERE status = 'checked_in'`).Scan(&checkedIn); err != nil {
		t.Fatal(err)
	}
	if checkedIn != ci.OK {
		t.Errorf("%d appointments checked in, the scenario made %d", checkedIn, ci.OK)
	}
	admit, err := loadgen.NewAdmit(ctx, desk.C, 60)
	if err != nil {
		t.Fatal(err)
	}
	check(loadgen.Run(ctx, admit, loadgen.Options{Rate: 50, Duration: time.Second}))
	transfer, err := loadgen.NewTransfer(ctx, desk.C, admit)
	if err != nil {
		t.Fatal(err)
	}
	tr := loadgen.Run(ctx, transfer, loadgen.Options{Rate: 20, Duration: time.Second})
	check(tr)
	var transferred int64 // stays ended: before the discharges, only by transfers
	if err := tb.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM bed_stays WHERE ended_at IS NOT NULL`).Scan(&transferred); err != nil {
		t.Fatal(err)
	}
	if transferred != tr.OK {
		t.Errorf("%d bed stays ended by transfers, the scenario made %d", transferred, tr.OK)
	}
	if err := admit.Cleanup(ctx, 4, nurse.C); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	var active, notFree int
	if err := tb.DB.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM admissions WHERE status = 'active'),
		(SELECT count(*) FROM beds b JOIN rooms r ON r.id = b.room_id JOIN wards w ON w.id = r.ward_id
		  WHERE w.code LIKE 'S%' AND b.status <> 'available')`).Scan(&active, &notFree); err != nil {
		t.Fatal(err)
	}
	if active != 0 || notFree != 0 {
		t.Fatalf("after cleanup: %d active admissions, %d scale beds not available", active, notFree)
	}

	a, err := loadgen.NewAdmit(ctx, desk.C, 1)
	if err != nil {
		t.Fatal(err)
	}
	fan, err := loadgen.Fanout(ctx, nurse.C, a.FirstBed(), loadgen.FanoutOptions{URL: tb.URL, Token: nurse.Token, Subscribers: 20, Events: 4})
	if err != nil {
		t.Fatal(err)
	}
	if fan.OK != 4 || len(fan.Errors) != 0 || fan.LatencyMS.Max == 0 {
		t.Fatalf("fan-out: %+v", fan)
	}
	if md := loadgen.Markdown([]loadgen.Result{fan}); !strings.Contains(md, "20 WebSocket clients") {
		t.Errorf("report: %s", md)
	}
}

// The load generator's command line signs in the users of a logins file
// (as `make run` writes it) and runs each scenario of a mix as the user
// --as names, by role or username: the audit trail shows the reads made by
// the physician and the searches by the receptionist. A user the file does
// not have is refused before anything runs.
func TestLoadgenRunsScenariosAsOtherUsers(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	logins := loadDemo(t, tb, 120)
	var buf bytes.Buffer
	demo.WriteLogins(&buf, logins)
	dir := t.TempDir()
	file, report := filepath.Join(dir, "demo-logins.txt"), filepath.Join(dir, "report.json")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	loadgenCmd := func(extra ...string) error {
		var out bytes.Buffer
		args := append([]string{"hospital-erp", "loadgen", "--url", tb.URL, "--logins", file, "--user", "reception",
			"--rate", "40", "--duration", "1s", "--json", report}, extra...)
		err := run(ctx, args, func(string) string { return "" }, &out, &out)
		if err != nil {
			return fmt.Errorf("%w\n%s", err, out.String())
		}
		return nil
	}
	if err := loadgenCmd("--scenario", "mix", "--mix", "read=1,search=1", "--as", "read=physician"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var results []loadgen.Result
	if err := json.Unmarshal(b, &results); err != nil || len(results) != 1 || results[0].OK == 0 || len(results[0].Errors) != 0 {
		t.Fatalf("report %s: %v", b, err)
	}
	var physician, reception string
	for _, l := range logins {
		switch l.Role {
		case identity.RolePhysician:
			physician = l.Username
		case identity.RoleReceptionist:
			reception = l.Username
		}
	}
	count := func(action, username string) (n int) {
		t.Helper()
		if err := tb.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_events e JOIN users u ON u.id = e.actor_id
			WHERE e.action = $1 AND u.username = $2`, action, username).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The read scenario lists its sample first (one patient.list), then reads.
	if r, s := count("patient.read", physician), count("patient.read", reception); r == 0 || s != 0 {
		t.Errorf("patient reads: %d by the physician, %d by the receptionist; want all by the physician", r, s)
	}
	if n := count("patient.list", reception); n == 0 {
		t.Errorf("no patient searches by the receptionist")
	}
	if err := loadgenCmd("--scenario", "read", "--as", "read=nobody"); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("--as an unknown user: %v", err)
	}
	if err := loadgenCmd("--scenario", "read", "--as", "reed=physician"); err == nil || !strings.Contains(err.Error(), "--as") {
		t.Errorf("--as an unknown scenario: %v", err)
	}

	// On the demo hospital, transfers and the fan-out leave the beds as
	// they found them: transfer admits half the free beds (each patient
	// needs a free one to move to), the logins' nurse cleans up, and an
	// odd number of fan-out changes puts the bed back in service.
	beds := func() string {
		t.Helper()
		var s string
		if err := tb.DB.Pool.QueryRow(ctx, `SELECT string_agg(status || '=' || n, ' ' ORDER BY status)
			FROM (SELECT status, count(*) AS n FROM beds GROUP BY status) c`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := beds()
	if err := loadgenCmd("--scenario", "transfer,fanout", "--events", "3", "--subscribers", "5"); err != nil {
		t.Fatal(err)
	}
	if b, err = os.ReadFile(report); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &results); err != nil || len(results) != 2 || results[0].OK == 0 || results[1].OK != 3 {
		t.Fatalf("transfer and fan-out: %s: %v", b, err)
	}
	if after := beds(); after != before {
		t.Errorf("beds before the load test %s, after %s", before, after)
	}
}
