package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
)

// A past partition of the audit trail is archived with `audit archive`:
// its blocks are verified first, then it is recorded and detached, and the
// full and the background verification stay intact, listing it. Detached
// by hand instead, the full verification reports its rows deleted (the
// problem this solves). It is refused for the DEFAULT partition, a month
// not over, a partition whose rows do not verify, and the application's
// role; `audit unarchive` attaches it again and its rows are verified
// again.
func TestAuditArchiveMonth(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	rec := tb.newUser(t, identity.RoleReceptionist)
	admin := openAdmin(t, tb)
	// Rows of a past month: the history partition holds everything before
	// the partitioning migration (here, moments ago).
	if _, err := admin.Exec(ctx, `INSERT INTO audit_events (occurred_at, action, resource_type, resource_id)
		SELECT timestamptz '2020-01-15 10:00:00+00' + n * interval '1 hour', 'system.check', 'system', 'old-' || n
		FROM generate_series(1, 40) n`); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := rec.C.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Archive", GivenNames: "Test"}}); err != nil {
			t.Fatal(err)
		}
	}
	sealAll(t, tb)
	owner := map[string]string{"DATABASE_URL": tb.AdminURL}
	verify := func() (audit.Report, string, error) {
		t.Helper()
		out, err := runCLI(t, owner, "audit", "verify")
		var rep audit.Report
		if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
			t.Fatalf("audit verify printed %q: %v", out, jerr)
		}
		return rep, out, err
	}
	if rep, out, err := verify(); err != nil || !rep.OK || len(rep.Archived) != 0 {
		t.Fatalf("before archiving: %v\n%s", err, out)
	}
	// By hand, the rows look deleted.
	var bound string
	if err := admin.QueryRow(ctx, `SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relname = 'audit_events_history'`).Scan(&bound); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "ALTER TABLE audit_events DETACH PARTITION audit_events_history"); err != nil {
		t.Fatal(err)
	}
	if rep, _, err := verify(); err == nil || rep.OK || !strings.Contains(rep.Problem, "missing") {
		t.Fatalf("detached by hand: %+v, %v; want the rows reported missing", rep, err)
	}
	if _, err := admin.Exec(ctx, "ALTER TABLE audit_events ATTACH PARTITION audit_events_history "+bound); err != nil {
		t.Fatal(err)
	}

	// Refused: the DEFAULT partition, this month, unknown names, the
	// application's role, and rows that do not verify (then nothing moves).
	month := "audit_events_" + time.Now().UTC().Format("2006_01")
	for name, want := range map[string]string{"audit_events_default": "DEFAULT", month: "not over", "patients": "not a partition"} {
		if out, err := runCLI(t, owner, "audit", "archive", name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("archive %s: %v\n%s; want an error saying %q", name, err, out, want)
		}
	}
	if _, err := runCLI(t, map[string]string{"DATABASE_URL": tb.DBURL}, "audit", "archive", "audit_events_history"); err == nil ||
		!strings.Contains(err.Error(), "permission denied") {
		t.Errorf("archive as the application's role: %v", err)
	}
	if _, err := admin.Exec(ctx, "UPDATE audit_events SET resource_id = 'forged' WHERE resource_id = 'old-7'"); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, owner, "audit", "archive", "audit_events_history"); err == nil || !strings.Contains(err.Error(), "do not verify") {
		t.Fatalf("archiving altered rows: %v", err)
	}
	if _, err := admin.Exec(ctx, "UPDATE audit_events SET resource_id = 'old-7' WHERE resource_id = 'forged'"); err != nil {
		t.Fatal(err)
	}
	attached := func() (n int) {
		t.Helper()
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'audit_events'::regclass AND c.relname = 'audit_events_history'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if attached() != 1 {
		t.Fatal("a refused archive detached the partition")
	}

	out, err := runCLI(t, owner, "audit", "archive", "audit_events_history")
	if err != nil {
		t.Fatalf("archive: %v\n%s", err, out)
	}
	var res struct {
		Archived       audit.Archived `json:"archived"`
		VerifiedBlocks int64          `json:"verified_blocks"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Archived.Rows != 40 || res.Archived.FirstBlock == 0 ||
		res.VerifiedBlocks != res.Archived.LastBlock-res.Archived.FirstBlock+1 || attached() != 0 {
		t.Fatalf("archive printed %s (%v); attached %d", out, err, attached())
	}
	rep, out, err := verify()
	if err != nil || !rep.OK || len(rep.Archived) != 1 || rep.Archived[0].Partition != "audit_events_history" ||
		rep.ArchivedBlocks != res.VerifiedBlocks {
		t.Fatalf("after archiving: %v\n%s", err, out)
	}
	// The backends' background verification agrees.
	vctx, cancel := context.WithCancel(ctx)
	results := make(chan string, 10)
	go audit.RunVerifier(vctx, tb.DB, slog.New(slog.NewTextHandler(io.Discard, nil)), audit.VerifierOptions{
		Interval: time.Hour, Verified: func(result string, _ int64) { results <- result }})
	if r := <-results; r != "ok" {
		t.Errorf("background verification after archiving: %s", r)
	}
	cancel()
	// And back.
	if out, err := runCLI(t, owner, "audit", "unarchive", "audit_events_history"); err != nil || attached() != 1 {
		t.Fatalf("unarchive: %v\n%s", err, out)
	}
	if rep, out, err := verify(); err != nil || !rep.OK || len(rep.Archived) != 0 || rep.ArchivedBlocks != 0 {
		t.Fatalf("after unarchiving: %v\n%s", err, out)
	}
	if _, err := runCLI(t, owner, "audit", "unarchive", "audit_events_history"); err == nil || !strings.Contains(err.Error(), "not archived") {
		t.Errorf("unarchiving twice: %v", err)
	}
}

// sealAll seals every audit row written so far. SealPending returns 0 at
// once while the backend's own sealer holds the sealing lock, so it repeats
// until no row is left unsealed (a single call was flaky under load).
func sealAll(t *testing.T, tb *testBackend) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := audit.SealPending(ctx, tb.DB, 1000); err != nil {
			t.Fatal(err)
		}
		u, err := audit.Unsealed(ctx, tb.DB.Queries())
		if err != nil {
			t.Fatal(err)
		}
		if u.Unsealed == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows still unsealed after 10 s", u.Unsealed)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
