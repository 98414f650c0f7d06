package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hospital-erp/hospital-erp/internal/appointment"
	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
	"github.com/hospital-erp/hospital-erp/internal/testenv"
)

// After a scripted session every action has its audit row with actor,
// role, outcome, request id and client, the rows get sealed into the
// chain, and the chain verifies.
func TestAuditTrailComplete(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	rec := tb.newUser(t, identity.RoleReceptionist)
	p, err := rec.C.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Audited", GivenNames: "Ann"}})
	if err != nil {
		t.Fatal(err)
	}
	sensitive("Audited")
	if _, err := rec.C.Patient(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.C.Patient(ctx, p.ID); err != nil { // cache hit: audited too
		t.Fatal(err)
	}
	if _, err := rec.C.UpdatePatient(ctx, p.ID, p.Version, patient.UpdateInput{Demographics: patient.Demographics{FamilyName: "Audited", GivenNames: "Anne"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.C.Patients(ctx, client.PatientQuery{}); err != nil {
		t.Fatal(err)
	}
	if err := rec.C.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"auth.login": 1, "patient.create": 1, "patient.read": 2, "patient.update": 1, "patient.list": 1, "auth.logout": 1}
	rows, err := tb.DB.Pool.Query(ctx, `SELECT action, count(*) FROM audit_events
		WHERE actor_id = $1 AND actor_role = 'receptionist' AND outcome = 'success' AND request_id <> '' AND client_ip <> ''
		GROUP BY action`, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for rows.Next() {
		var a string
		var n int
		_ = rows.Scan(&a, &n)
		got[a] = n
	}
	for action, n := range want {
		if got[action] != n {
			t.Errorf("%s audited %d times, want %d (all: %v)", action, got[action], n, got)
		}
	}
	// Patient rows name the patient.
	var withPatient int
	_ = tb.DB.Pool.QueryRow(ctx, "SELECT count(*) FROM audit_events WHERE patient_id = $1", p.ID).Scan(&withPatient)
	if withPatient != 4 {
		t.Errorf("rows naming the patient: %d, want 4", withPatient)
	}
	// The background sealer covers every row within a moment; verify is clean.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rep, err := audit.Verify(ctx, tb.DB)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK {
			t.Fatalf("chain broken: %+v", rep)
		}
		if rep.Unsealed == 0 && rep.Rows > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rows still unsealed after 10s: %+v", rep)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Rows changed, deleted or slipped in directly in SQL (by someone with
// full database access) are found by `audit verify`, which names the row.
func TestAuditTamperingDetected(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	rec := tb.newUser(t, identity.RoleReceptionist)
	for range 5 {
		if _, err := rec.C.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Tamper", GivenNames: "Test"}}); err != nil {
			t.Fatal(err)
		}
	}
	sealAll(t, tb) // before tampering
	verify := func() (string, error) {
		out, err := runCLI(t, map[string]string{"DATABASE_URL": tb.DBURL}, "audit", "verify")
		return out, err
	}
	if out, err := verify(); err != nil {
		t.Fatalf("clean chain: %v\n%s", err, out)
	}
	admin := openAdmin(t, tb)
	var victim int64
	if err := admin.QueryRow(ctx, "SELECT id FROM audit_events WHERE action = 'patient.create' ORDER BY id LIMIT 1 OFFSET 2").Scan(&victim); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "UPDATE audit_events SET actor_role = 'admin' WHERE id = $1", victim); err != nil {
		t.Fatal(err)
	}
	out, err := verify()
	if err == nil || !strings.Contains(out, "altered") || !strings.Contains(out, `"problem_event_id": `+itoa(int(victim))) {
		t.Fatalf("altered row not reported: %v\n%s", err, out)
	}
	// Recomputing the row's own hash does not help: the block notices.
	if _, err := admin.Exec(ctx, "UPDATE audit_events a SET row_hash = audit_row_hash(a) WHERE id = $1", victim); err != nil {
		t.Fatal(err)
	}
	if out, err := verify(); err == nil || !strings.Contains(out, "hash does not match") {
		t.Fatalf("rehashed row not reported: %v\n%s", err, out)
	}
	if _, err := admin.Exec(ctx, "UPDATE audit_events a SET actor_role = 'receptionist' WHERE id = $1", victim); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "UPDATE audit_events a SET row_hash = audit_row_hash(a) WHERE id = $1", victim); err != nil {
		t.Fatal(err)
	}
	if out, err := verify(); err != nil {
		t.Fatalf("restored row: %v\n%s", err, out)
	}
	// A deleted row is named.
	if _, err := admin.Exec(ctx, "DELETE FROM audit_events WHERE id = $1", victim); err != nil {
		t.Fatal(err)
	}
	if out, err := verify(); err == nil || !strings.Contains(out, "missing") || !strings.Contains(out, itoa(int(victim))) {
		t.Fatalf("deleted row not reported: %v\n%s", err, out)
	}
}

// The application's database role can add audit rows but never change or
// remove them.
func TestAuditIsAppendOnlyForTheApplication(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	rec := tb.newUser(t, identity.RoleReceptionist)
	if _, err := rec.C.Patients(ctx, client.PatientQuery{}); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"UPDATE audit_events SET outcome = 'error'",
		"DELETE FROM audit_events",
		"TRUNCATE audit_events",
		"UPDATE audit_blocks SET hash = hash",
		"DELETE FROM audit_blocks",
		// The month partitions (migration 00016): not reachable directly,
		// and only the owner can detach one.
		"DELETE FROM audit_events_history",
		"UPDATE audit_events_default SET outcome = 'error'",
		"SELECT count(*) FROM audit_events_history",
		"ALTER TABLE audit_events DETACH PARTITION audit_events_history",
		"DROP TABLE audit_events_default",
		// Archiving (migration 00021) is the owner's alone.
		"INSERT INTO audit_archives (partition, bound, row_count) VALUES ('audit_events_history', 'DEFAULT', 0)",
		"DELETE FROM audit_archives",
		"SELECT audit_archive('audit_events_history', NULL, NULL, 0)",
		"SELECT audit_unarchive('audit_events_history')",
	} {
		_, err := tb.DB.Pool.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if !asPgErr(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s as the application role: %v, want permission denied (42501)", stmt, err)
		}
	}
	var ok bool
	if err := tb.DB.Pool.QueryRow(ctx, "SELECT has_table_privilege(current_user, 'audit_events', 'INSERT') AND NOT has_table_privilege(current_user, 'audit_events', 'UPDATE') AND NOT has_table_privilege(current_user, 'audit_events', 'DELETE')").Scan(&ok); err != nil || !ok {
		t.Fatalf("privileges of the application role on audit_events: %v %v", ok, err)
	}
	var partitions, reachable int
	if err := tb.DB.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE has_table_privilege(current_user, i.inhrelid,
		'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'))
		FROM pg_inherits i WHERE i.inhparent = 'audit_events'::regclass`).Scan(&partitions, &reachable); err != nil {
		t.Fatal(err)
	}
	// history, default, and the months ahead (the backend made them)
	if partitions < 2+audit.PartitionMonthsAhead || reachable != 0 {
		t.Fatalf("audit_events has %d partitions, %d of them with privileges for the application role", partitions, reachable)
	}
	// A row cannot choose where it sorts in the sealed chain: the trigger
	// sets xact_id (and the hash over it) whatever the writer sent.
	var stamped, own bool
	if err := tb.DB.Pool.QueryRow(ctx, `WITH r AS (INSERT INTO audit_events (action, resource_type, xact_id, row_hash)
		VALUES ('test.forge', 'test', '7', '\x00') RETURNING xact_id, row_hash, audit_row_hash(audit_events.*) AS want)
		SELECT xact_id = pg_current_xact_id(), row_hash = want FROM r`).Scan(&stamped, &own); err != nil || !stamped || !own {
		t.Fatalf("a forged xact_id and hash: kept the transaction's id %v, the row's own hash %v: %v", stamped, own, err)
	}
}

// Audit rows carry no foreign keys (migration 00012); instead a user or a
// patient named by audit rows cannot be deleted, even by an administrator.
func TestAuditNamedRowsCannotBeDeleted(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	desk := tb.newUser(t, identity.RoleReceptionist)
	p := registerPatient(t, desk.C, "Audited", "Ann")
	if _, err := desk.C.Patient(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	admin := openAdmin(t, tb)
	for _, stmt := range []string{"DELETE FROM patients WHERE id = $1", "DELETE FROM users WHERE id = (SELECT actor_id FROM audit_events WHERE patient_id = $1 LIMIT 1)"} {
		_, err := admin.Exec(ctx, stmt, p.ID)
		var pgErr *pgconn.PgError
		if !asPgErr(err, &pgErr) || pgErr.Code != "23503" {
			t.Errorf("%s: %v, want foreign_key_violation (23503)", stmt, err)
		}
	}
	// A patient no audit row names can still be deleted (the guard is not a
	// blanket ban).
	var id string
	if err := admin.QueryRow(ctx, "INSERT INTO patients (family_name, given_names) VALUES ('Unaudited', 'Una') RETURNING id").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "DELETE FROM patients WHERE id = $1", id); err != nil {
		t.Fatalf("deleting a patient no audit row names: %v", err)
	}
}

func asPgErr(err error, target **pgconn.PgError) bool {
	e, ok := err.(*pgconn.PgError)
	if ok {
		*target = e
	}
	return ok
}

// The report filters, sorts only by allowed keys, pages, exports CSV with
// formula cells defused, and audits its own use.
func TestAuditReport(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	auditor := tb.newUser(t, identity.RoleAuditor)
	rec := tb.newUser(t, identity.RoleReceptionist)
	p, err := rec.C.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Report", GivenNames: "Test"}})
	if err != nil {
		t.Fatal(err)
	}
	// A user agent that tries to become a spreadsheet formula.
	status, _, _ := rawUA(t, tb.URL+"/api/v1/patients/"+p.ID, rec.Token, "=HYPERLINK(\"http://evil\")")
	if status != 200 {
		t.Fatalf("read: %d", status)
	}
	page, err := auditor.C.AuditEvents(ctx, client.AuditQuery{PatientID: p.ID, Sort: "action"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.Items[0].Action != "patient.create" || page.Items[1].Action != "patient.read" {
		t.Fatalf("report by patient sorted by action: %+v", page.Items)
	}
	if _, err := auditor.C.AuditEvents(ctx, client.AuditQuery{Sort: "occurred_at; DROP TABLE audit_events"}); client.StatusOf(err) != 400 {
		t.Fatalf("sort outside the allow-list: %v", err)
	}
	if _, err := auditor.C.AuditEvents(ctx, client.AuditQuery{Outcome: "maybe"}); client.StatusOf(err) != 400 {
		t.Fatalf("bad outcome: %v", err)
	}
	if _, err := rec.C.AuditEvents(ctx, client.AuditQuery{}); client.StatusOf(err) != 403 {
		t.Fatalf("receptionist reading the audit trail: %v", err)
	}
	data, err := auditor.C.AuditCSV(ctx, client.AuditQuery{PatientID: p.ID, Sort: "time"})
	if err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil || len(records) != 3 {
		t.Fatalf("CSV: %d records, %v", len(records), err)
	}
	found := false
	for _, cell := range records[2] {
		if strings.Contains(cell, "HYPERLINK") {
			found = true
			if !strings.HasPrefix(cell, "'=") {
				t.Fatalf("formula cell not defused: %q", cell)
			}
		}
	}
	if !found {
		t.Fatal("the user agent is missing from the export")
	}
	var searches int
	_ = tb.DB.Pool.QueryRow(ctx, "SELECT count(*) FROM audit_events WHERE actor_id = $1 AND action IN ('audit.search', 'audit.export')", auditor.ID).Scan(&searches)
	if searches < 2 {
		t.Fatalf("the auditor's own searches audited %d times", searches)
	}
	rep, err := auditor.C.AuditVerify(ctx)
	if err != nil || !rep.OK {
		t.Fatalf("verify through the API: %+v %v", rep, err)
	}
}

func rawUA(t *testing.T, url, token, ua string) (int, string, error) {
	t.Helper()
	req, _ := newRequest("GET", url, token)
	req.Header.Set("User-Agent", ua)
	resp, err := httpDo(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, "", nil
}

// Reads are audited by group commit: concurrent reads each get their row,
// committed together, and a read whose row cannot be written is refused
// (503), never answered unaudited.
func TestReadAuditGroupCommit(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	desk := tb.newUser(t, identity.RoleReceptionist)
	p := registerPatient(t, desk.C, "Groupcommit", "Read")
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := desk.C.Patient(ctx, p.ID)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var rows int
	if err := tb.DB.Pool.QueryRow(ctx, "SELECT count(*) FROM audit_events WHERE action = 'patient.read' AND patient_id = $1", p.ID).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != n {
		t.Fatalf("%d reads left %d audit rows", n, rows)
	}
	batches := histogramCount(t, tb, "audit_read_batch_rows")
	if batches < 1 || batches > n {
		t.Fatalf("%d batches for %d reads", batches, n)
	}
	t.Logf("%d concurrent reads committed in %d batches", n, batches)

	// No audit, no data.
	su := openAdmin(t, tb)
	if _, err := su.Exec(ctx, "REVOKE INSERT ON audit_events FROM hospital_app"); err != nil {
		t.Fatal(err)
	}
	_, err := desk.C.Patient(ctx, p.ID)
	if _, gerr := su.Exec(ctx, "GRANT INSERT ON audit_events TO hospital_app"); gerr != nil {
		t.Fatal(gerr)
	}
	if client.StatusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("read without an audit row: %v, want 503", err)
	}
	if _, err := desk.C.Patient(ctx, p.ID); err != nil {
		t.Fatalf("read after the audit trail came back: %v", err)
	}
}

// A read audit batch of one row is written by INSERT, a larger one by
// COPY: both store the same rows, with no actor or patient as NULL.
func TestReadAuditBatchesOfOneAndManyStoreTheSameRows(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	desk := tb.newUser(t, identity.RoleReceptionist)
	p := registerPatient(t, desk.C, "Batchpath", "Rows")
	actor, pid := uuid.MustParse(desk.ID), uuid.MustParse(p.ID)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var sizes []int
	b := audit.NewBatcher(tb.DB, audit.BatcherOptions{Linger: 300 * time.Millisecond, Observe: func(rows int, _ time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, rows)
	}})
	go b.Run(ctx, 1)
	entries := []audit.Entry{
		{ResourceType: "patient", ResourceID: "a", PatientID: &pid, ActorID: &actor, ActorRole: identity.RoleReceptionist,
			Details: map[string]any{"view": "overview", "n": 2}},
		{ResourceType: "session", ResourceID: "b", Outcome: audit.Denied},
	}
	rctx := hospital.WithClient(hospital.WithRequestID(ctx, "req-batch"), hospital.Client{IP: "192.0.2.7", UserAgent: "Zoë/1.0"})
	for _, e := range entries { // one at a time: batches of one row
		e.Action = "test.one_row"
		if err := b.Record(rctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := range 12 { // at once: one batch of twelve
		e := entries[i%2]
		e.Action = "test.many_rows"
		wg.Go(func() { errs <- b.Record(rctx, e) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rows := func(action string) []string {
		t.Helper()
		r, err := tb.DB.Pool.Query(ctx, `SELECT DISTINCT concat_ws('|', coalesce(actor_id::text, 'NULL'), actor_role, resource_type,
			resource_id, coalesce(patient_id::text, 'NULL'), outcome, request_id, client_ip, user_agent, details::text)
			FROM audit_events WHERE action = $1 ORDER BY 1`, action)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(r, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	one, many := rows("test.one_row"), rows("test.many_rows")
	if len(one) != 2 || strings.Join(one, "\n") != strings.Join(many, "\n") {
		t.Fatalf("rows differ:\n batches of one: %q\n batch of many:  %q", one, many)
	}
	if !strings.HasPrefix(one[1], "NULL|") || !strings.Contains(one[1], "|NULL|") {
		t.Fatalf("no actor and no patient were not stored as NULL: %q", one[1])
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(sizes) != "[1 1 12]" {
		t.Fatalf("batches of %v rows, want [1 1 12]", sizes)
	}
}

func histogramCount(t *testing.T, tb *testBackend, name string) int {
	t.Helper()
	mfs, err := tb.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return int(mf.GetMetric()[0].GetHistogram().GetSampleCount())
		}
	}
	return 0
}

// After a restore onto a server whose transaction counter is behind the
// restored rows, new rows must still sort after them (or they would never
// be sealed): audit_after_restore moves the offset, and the constant the
// row trigger adds (audit_xid_offset(), migration 00014) moves with it,
// in sessions that already cached the trigger's plan too.
func TestAuditIdsFollowTheRestoreOffset(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	desk := tb.newUser(t, identity.RoleReceptionist)
	if _, err := desk.C.Patients(ctx, client.PatientQuery{}); err != nil { // the app's sessions cache the trigger's plan
		t.Fatal(err)
	}
	admin := openAdmin(t, tb)
	var ahead string
	// A row as a restore loads it (triggers off), from a server 10^6 transactions ahead.
	if err := admin.QueryRow(ctx, `SELECT set_config('session_replication_role', 'replica', false), (pg_current_xact_id()::text::numeric + 1000000)::text`).Scan(new(string), &ahead); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `INSERT INTO audit_events (action, resource_type, xact_id, row_hash) VALUES ('restore.loaded', 'test', $1::xid8, '\x00')`, ahead); err != nil {
		t.Fatal(err)
	}
	var moved, consistent bool
	if err := admin.QueryRow(ctx, `SELECT set_config('session_replication_role', 'origin', false) = 'origin', audit_after_restore() > 0,
		audit_xid_offset() = (SELECT xid_offset FROM audit_xid_offset)`).Scan(new(bool), &moved, &consistent); err != nil || !moved || !consistent {
		t.Fatalf("offset moved %v, function equal to the table %v: %v", moved, consistent, err)
	}
	if _, err := desk.C.Patients(ctx, client.PatientQuery{}); err != nil {
		t.Fatal(err)
	}
	var after bool
	if err := admin.QueryRow(ctx, `SELECT bool_and(xact_id::text::numeric > $1::numeric) FROM audit_events
		WHERE id > (SELECT id FROM audit_events WHERE action = 'restore.loaded')`, ahead).Scan(&after); err != nil || !after {
		t.Fatalf("rows written after the restore sort after the restored one: %v %v", after, err)
	}
}

// The verifier computes each row's hash itself (audit.rowHash) the way the
// database's audit_row_hash does when the row is written: rows with every
// kind of content verify, and a row altered behind a database function
// rewritten to vouch for any row is still reported.
func TestAuditVerifierHashesRowsItself(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	rec := tb.newUser(t, identity.RoleReceptionist)
	if _, err := rec.C.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Hash", GivenNames: "Check"}}); err != nil {
		t.Fatal(err)
	}
	admin := openAdmin(t, tb)
	// No actor, no patient, text beyond ASCII, nested JSON whose keys jsonb
	// reorders, a time with microseconds, before 1970 and far ahead.
	if _, err := admin.Exec(ctx, `INSERT INTO audit_events (occurred_at, actor_id, action, resource_type, resource_id, patient_id,
		outcome, request_id, client_ip, user_agent, details) VALUES
		('2026-03-01 10:11:12.345678+00', NULL, 'system.check', 'system', '', NULL, 'error', 'r-1', '', '', '{}'),
		(now(), gen_random_uuid(), 'patient.read', 'patient', 'ünïcødé ✓', gen_random_uuid(), 'denied', 'r-2',
		 '2001:db8::1', 'Mozilla/5.0 (Ä; 日本)', '{"z": [1, 2.50, {"b": null, "a": "x\ty"}], "a": true, "long_key": 1e3}'),
		('1969-12-31 23:59:59.999999+00', NULL, 'system.check', 'system', 'past', NULL, 'success', '', '', '', '"text"'),
		('2099-01-01 00:00:00+00', NULL, 'system.check', 'system', 'future', NULL, 'success', '', '', '', '[]')`); err != nil {
		t.Fatal(err)
	}
	sealAll := func() audit.Report {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, err := audit.SealPending(ctx, tb.DB, 1000); err != nil {
				t.Fatal(err)
			}
			rep, err := audit.Verify(ctx, tb.DB)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Unsealed == 0 || time.Now().After(deadline) {
				return rep
			}
		}
	}
	if rep := sealAll(); !rep.OK || rep.Unsealed != 0 || rep.Rows < 5 {
		t.Fatalf("chain with every kind of content: %+v", rep)
	}
	// An attacker with the schema owner's rights alters a sealed row and
	// rewrites the hash function to vouch for it.
	var victim int64
	if err := admin.QueryRow(ctx, "SELECT id FROM audit_events WHERE action = 'patient.create' ORDER BY id LIMIT 1").Scan(&victim); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `CREATE OR REPLACE FUNCTION audit_row_hash(a audit_events) RETURNS bytea
		LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN a.row_hash; END $$`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "UPDATE audit_events SET action = 'patient.read' WHERE id = $1", victim); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, tb.DB)
	if err != nil || rep.OK || rep.ProblemEventID != victim || !strings.Contains(rep.Problem, "altered") {
		t.Fatalf("a row altered behind a rewritten hash function: %+v %v", rep, err)
	}
}

// The background verifier's work is bounded: each run re-hashes the rows
// sealed since its last run and a bounded number of older ones, in turn;
// an altered old row is still found once its turn comes, a broken link at
// the next run, and the report stays until the records are restored.
func TestAuditVerifierRechecksInTurn(t *testing.T) {
	db, d := testenv.OpenDB(t)
	ctx := context.Background()
	const blocks, perBlock, budget = 12, 2, 4
	for i := range blocks {
		err := db.InTx(ctx, func(q *dbgen.Queries) error {
			for j := range perBlock {
				if err := audit.Write(ctx, q, audit.Entry{Action: "system.check", ResourceType: "system", ResourceID: fmt.Sprintf("%d-%d", i, j)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := audit.SealPending(ctx, db, perBlock); err != nil || n != perBlock {
			t.Fatalf("seal block %d: %d rows, %v", i+1, n, err)
		}
	}
	admin, err := pgx.Connect(ctx, d.DirectURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)

	type run struct {
		result string
		rows   int64
	}
	runs := make(chan run, 1000)
	vctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		audit.RunVerifier(vctx, db, slog.New(slog.NewTextHandler(io.Discard, nil)), audit.VerifierOptions{
			Interval: 10 * time.Millisecond, Blocks: 1000, RecheckRows: budget,
			Verified: func(result string, rows int64) { runs <- run{result, rows} }})
	}()
	defer func() { cancel(); <-done }()
	next := func() run {
		t.Helper()
		select {
		case r := <-runs:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no verification within 10 s")
			return run{}
		}
	}
	// Intact: every run reads the budget's worth of rows, never the window.
	for range 2 * blocks {
		if r := next(); r.result != "ok" || r.rows == 0 || r.rows > budget {
			t.Fatalf("intact chain: run %+v, want ok with 1 to %d rows", r, budget)
		}
	}
	// An altered row of the oldest block is found when its turn comes.
	var victim int64
	if err := admin.QueryRow(ctx, "SELECT id FROM audit_events WHERE resource_id = '0-1'").Scan(&victim); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "UPDATE audit_events SET resource_id = 'forged' WHERE id = $1", victim); err != nil {
		t.Fatal(err)
	}
	broken := func(within int) {
		t.Helper()
		for i := 0; ; i++ {
			r := next()
			if r.result == "broken" {
				return
			}
			if i == within {
				t.Fatalf("no broken verdict within %d runs", within)
			}
		}
	}
	broken(blocks*perBlock/budget + 2)
	for range 3 { // it stays reported
		if r := next(); r.result != "broken" {
			t.Fatalf("after a break: %+v, want broken until restored", r)
		}
	}
	if _, err := admin.Exec(ctx, "UPDATE audit_events SET resource_id = '0-1' WHERE id = $1", victim); err != nil {
		t.Fatal(err)
	}
	// A run under way during the restore may still say broken; the next
	// must not, nor any after it.
	if r := next(); r.result != "ok" {
		if r := next(); r.result != "ok" {
			t.Fatalf("restored chain: %+v, want ok", r)
		}
	}
	if r := next(); r.result != "ok" {
		t.Fatalf("restored chain: %+v, want ok", r)
	}
	// A block's hash rewritten breaks the next block's link: found by the
	// next run, whatever the turn.
	if _, err := admin.Exec(ctx, "UPDATE audit_blocks SET hash = sha256(hash) WHERE seq = 3"); err != nil {
		t.Fatal(err)
	}
	broken(2)
}

// Every read of patient data is audited before it is answered: right after
// each read below returns, its row is in audit_events, with the reader and
// the patient (the rows are group-committed; Record returns after the
// commit). A read that skipped its row, or wrote it after answering, fails.
func TestReadsOfPatientDataAreAudited(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	cs := setupClinic(t, tb)
	w := setupWard(t, tb, "AR", 2)
	nurse := tb.newUser(t, identity.RoleNurse, w.WardID)
	p := registerPatient(t, cs.Desk.C, "Auditread", "Pat")
	appt, err := cs.Desk.C.Book(ctx, appointment.BookInput{PatientID: p.ID, PractitionerID: cs.PractitionerID, ClinicID: cs.ClinicID,
		StartsAt: tomorrowAt(9, 0)}, "")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := admit(cs.Desk.C, p.ID, w.Beds[0])
	if err != nil {
		t.Fatal(err)
	}
	audited := func(action, actor string, read func() error) {
		t.Helper()
		if err := read(); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		var n int
		if err := tb.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = $1 AND actor_id = $2
			AND (patient_id = $3 OR action = 'bedboard.read') AND outcome = 'success'`, action, actor, p.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%s by %s: %d audit rows right after the read, want 1", action, actor, n)
		}
	}
	audited("patient.read", nurse.ID, func() error { _, err := nurse.C.Patient(ctx, p.ID); return err })
	audited("appointment.read", cs.Desk.ID, func() error { _, err := cs.Desk.C.Appointment(ctx, appt.ID); return err })
	audited("appointment.list", cs.Desk.ID, func() error {
		_, err := cs.Desk.C.Appointments(ctx, client.AppointmentQuery{From: time.Now(), To: time.Now().AddDate(0, 0, 7), PatientID: p.ID})
		return err
	})
	audited("admission.read", nurse.ID, func() error { _, err := nurse.C.Admission(ctx, adm.ID); return err })
	audited("admission.list", nurse.ID, func() error { _, err := nurse.C.PatientAdmissions(ctx, p.ID); return err })
	audited("patient.merge.list", cs.Desk.ID, func() error { _, err := cs.Desk.C.PatientMerges(ctx, p.ID); return err })
	audited("bedboard.read", nurse.ID, func() error {
		b, err := nurse.C.BedBoard(ctx, client.BoardQuery{WardID: w.WardID})
		if err == nil && (len(b.Wards) != 1 || b.Wards[0].Beds[0].Patient == nil) {
			err = fmt.Errorf("the ward's nurse does not see her patient: %+v", b)
		}
		return err
	})
}
