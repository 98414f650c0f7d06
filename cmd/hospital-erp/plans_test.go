package main

import (
	"context"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

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
	loc, _ := time.LoadLocation("Europe/London")
	if _, err := demo.Load(ctx, tb.DB, tb.Identity, 120, loc, time.Now()); err != nil {
		t.Fatal(err)
	}
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
