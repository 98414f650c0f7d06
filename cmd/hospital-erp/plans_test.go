package main

import (
	"context"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hospital-erp/hospital-erp/internal/demo"
	"github.com/hospital-erp/hospital-erp/internal/postgres/explain"
)

// The queries behind the busiest screens can reach the large tables
// through index conditions. Sequential scans and whole-side joins are
// priced out, so a sequential scan, or a walk through a whole index, left
// in a plan means no index can serve the query: the query or the schema
// is wrong. (make bench shows the real plans with
// EXPLAIN ANALYZE on a million patients.)
func TestMainQueriesUseIndexes(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	loadDemo(t, tb, 120)
	// Enough patients for the planner to choose as it would in a hospital.
	if err := demo.CopyPatients(ctx, tb.DB, 20000, mrand.New(mrand.NewPCG(3, 3))); err != nil {
		t.Fatal(err)
	}
	conn := openAdmin(t, tb)
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	// Also no hash or merge joins, which read a whole side: what remains
	// reads only through index conditions, if the indexes allow it.
	if _, err := conn.Exec(ctx, "SET enable_seqscan = off; SET enable_hashjoin = off; SET enable_mergejoin = off"); err != nil {
		t.Fatal(err)
	}
	s, err := explain.LoadSample(ctx, conn, "Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	r := &explain.Recorder{Conn: conn}
	explain.MainQueries(ctx, r, s)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if len(r.Plans) < 15 {
		t.Fatalf("only %d plans recorded", len(r.Plans))
	}
	for _, p := range r.Plans {
		for _, tbl := range append(p.SeqScans, p.FullScans...) {
			if slices.Contains(explain.LargeTables, tbl) || strings.HasPrefix(tbl, "index ") && !explain.LiveIndexes[strings.TrimPrefix(tbl, "index ")] {
				t.Errorf("%s reads all of %s:\n%s", p.Name, tbl, p.Text)
			}
		}
	}
}

// The search functions' statements (patient_search_parts,
// patient_search_near) run with forced generic plans, planned once per
// server connection for any values: those plans must still reach patients
// through patients_family_unaccent_idx, never by reading the table. The
// plans inside a function are invisible to EXPLAIN of its call, so
// auto_explain reports each nested statement's plan as it runs, with the
// planner's defaults (nothing priced out).
func TestSearchFunctionsPlansUseIndexes(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	if err := demo.CopyPatients(ctx, tb.DB, 20000, mrand.New(mrand.NewPCG(5, 5))); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(tb.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var plans []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		defer mu.Unlock()
		plans = append(plans, n.Message)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{"ANALYZE", "LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
		"SET auto_explain.log_nested_statements = on", "SET auto_explain.log_level = notice", "SET client_min_messages = notice"} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var family, given string
	if err := conn.QueryRow(ctx, `SELECT lower(family_name), lower(split_part(given_names, ' ', 1)) FROM patients
		WHERE family_name ~ '^[A-Za-z]{4,}$' AND given_names ~ '^[A-Za-z]{4,}' ORDER BY id LIMIT 1`).Scan(&family, &given); err != nil {
		t.Fatal(err)
	}
	typo := given[:1] + given[2:3] + given[1:2] + given[3:] // two letters swapped
	wards := []string{}
	for range 7 { // past the point where PostgreSQL would have chosen for itself
		if _, err := conn.Exec(ctx, `SELECT count(*) FROM patient_search_parts($1, $2, NULL, NULL, NULL, NULL, NULL, $3, NULL, NULL, NULL, NULL, 21)`,
			[]string{given + " " + family, family, given}, []string{"", given, family}, wards); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `SELECT count(*) FROM patient_search_near($1, $2, $3, NULL, NULL, NULL, NULL, NULL, $4, NULL, NULL, NULL, NULL, NULL, 21)`,
			[]string{typo + " " + family, family, typo}, []string{"", typo, family}, typo+" "+family, wards); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	reads := 0
	for _, p := range plans {
		if !strings.Contains(p, "patients p") && !strings.Contains(p, "on patients") {
			continue
		}
		if strings.Contains(p, "Seq Scan on patients") {
			t.Errorf("a search function reads the whole patients table:\n%s", p)
		}
		if strings.Contains(p, "patients_family_unaccent_idx on patients") {
			reads++
		}
	}
	if reads < 14 {
		t.Fatalf("%d nested plans read patients through patients_family_unaccent_idx, want one per call at least (14); %d plans seen", reads, len(plans))
	}
}
