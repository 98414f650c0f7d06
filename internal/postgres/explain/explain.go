// Package explain shows how PostgreSQL runs the application's own queries:
// a Recorder stands in for the connection under dbgen.Queries, so calling a
// query method EXPLAINs its exact SQL with its real arguments instead of
// running it. The plans test and `make bench` use it.
package explain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// Conn is what the Recorder needs from a connection or pool.
type Conn interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Plan is one statement's plan.
type Plan struct {
	Name     string   // the query's sqlc name, from its "-- name:" line
	SeqScans []string // tables read by a sequential scan
	// FullScans are tables read through a whole index, without an index
	// condition (as costly as a sequential scan, in index order).
	FullScans []string
	Indexes   []string // indexes used
	// With Analyze:
	ExecutionMS float64
	SharedHit   int64 // pages found in PostgreSQL's buffer cache
	SharedRead  int64 // pages read from the operating system
	Text        string
}

// Recorder is a dbgen.DBTX that explains every statement it is given.
type Recorder struct {
	Conn    Conn
	Analyze bool // EXPLAIN ANALYZE: runs the statement (use a read-only transaction for writes)
	Plans   []Plan
	Err     error // the first failure

	parents map[string]string // partition -> partitioned table (table)
}

// errExplained ends the query method: its result is the plan, not rows.
var errExplained = errors.New("explain: statement explained, not run")

func (r *Recorder) explain(ctx context.Context, sql string, args ...any) {
	opts := "FORMAT JSON"
	if r.Analyze {
		opts = "ANALYZE, BUFFERS, FORMAT JSON"
	}
	var raw []byte
	if err := r.Conn.QueryRow(ctx, "EXPLAIN ("+opts+") "+sql, args...).Scan(&raw); err != nil {
		if r.Err == nil {
			r.Err = fmt.Errorf("explain %s: %w", queryName(sql), err)
		}
		return
	}
	var doc []struct {
		Plan          node    `json:"Plan"`
		ExecutionTime float64 `json:"Execution Time"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc) == 0 {
		r.Err = fmt.Errorf("explain %s: unreadable plan: %v", queryName(sql), err)
		return
	}
	p := Plan{Name: queryName(sql), ExecutionMS: doc[0].ExecutionTime}
	seq, full, idx := map[string]bool{}, map[string]bool{}, map[string]bool{}
	doc[0].Plan.walk(nil, func(n, parent *node) {
		switch {
		case n.NodeType == "Seq Scan" && n.Relation != "":
			seq[r.table(ctx, n.Relation)] = true
		case n.IndexName != "":
			idx[n.IndexName] = true
			// Without an index condition the scan reads the whole index,
			// unless a Limit takes its first rows in the index's order
			// and no filter can make it read on for them.
			if n.IndexCond == "" && !(parent != nil && parent.NodeType == "Limit" && n.Filter == "") {
				name := r.table(ctx, n.Relation)
				if name == "" {
					name = "index " + n.IndexName
				}
				full[name] = true
			}
		}
	})
	p.SharedHit, p.SharedRead = doc[0].Plan.SharedHit, doc[0].Plan.SharedRead
	p.SeqScans, p.FullScans, p.Indexes = keys(seq), keys(full), keys(idx)
	var b strings.Builder
	doc[0].Plan.text(&b, 0)
	p.Text = b.String()
	r.Plans = append(r.Plans, p)
}

// table names a partition by its partitioned table (a scan of
// audit_events_2027_01 reads audit_events), other relations by themselves.
func (r *Recorder) table(ctx context.Context, rel string) string {
	if rel == "" {
		return ""
	}
	if r.parents == nil {
		r.parents = map[string]string{}
	}
	if p, ok := r.parents[rel]; ok {
		return p
	}
	p := rel
	var parent string
	err := r.Conn.QueryRow(ctx, `SELECT i.inhparent::regclass::text FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid WHERE c.oid = to_regclass($1) AND c.relispartition`, rel).Scan(&parent)
	switch {
	case err == nil:
		p = parent
	case !errors.Is(err, pgx.ErrNoRows) && r.Err == nil:
		r.Err = fmt.Errorf("explain: the table of %s: %w", rel, err)
	}
	r.parents[rel] = p
	return p
}

// set changes a setting of the connection for the statements explained
// next, as the application sets it for a transaction; the function
// returned puts the old value back.
func (r *Recorder) set(ctx context.Context, name, value string) func() {
	var old string
	if err := r.Conn.QueryRow(ctx, "SELECT current_setting($1), set_config($1, $2, false)", name, value).Scan(&old, new(string)); err != nil {
		if r.Err == nil {
			r.Err = fmt.Errorf("explain: set %s: %w", name, err)
		}
		return func() {}
	}
	return func() {
		if err := r.Conn.QueryRow(ctx, "SELECT set_config($1, $2, false)", name, old).Scan(new(string)); err != nil && r.Err == nil {
			r.Err = fmt.Errorf("explain: set %s back: %w", name, err)
		}
	}
}

func (r *Recorder) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	r.explain(ctx, sql, args...)
	return pgconn.CommandTag{}, errExplained
}

func (r *Recorder) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	r.explain(ctx, sql, args...)
	return nil, errExplained
}

func (r *Recorder) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	r.explain(ctx, sql, args...)
	return errRow{}
}

func (r *Recorder) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, errExplained
}

type errRow struct{}

func (errRow) Scan(...any) error { return errExplained }

type node struct {
	NodeType   string  `json:"Node Type"`
	Relation   string  `json:"Relation Name"`
	IndexName  string  `json:"Index Name"`
	IndexCond  string  `json:"Index Cond"`
	Filter     string  `json:"Filter"`
	ActualRows float64 `json:"Actual Rows"`
	ActualMS   float64 `json:"Actual Total Time"`
	SharedHit  int64   `json:"Shared Hit Blocks"`
	SharedRead int64   `json:"Shared Read Blocks"`
	Plans      []node  `json:"Plans"`
}

func (n *node) walk(parent *node, f func(n, parent *node)) {
	f(n, parent)
	for i := range n.Plans {
		n.Plans[i].walk(n, f)
	}
}

func (n *node) text(b *strings.Builder, depth int) {
	fmt.Fprintf(b, "%s%s", strings.Repeat("  ", depth), n.NodeType)
	if n.Relation != "" {
		fmt.Fprintf(b, " on %s", n.Relation)
	}
	if n.IndexName != "" {
		fmt.Fprintf(b, " using %s", n.IndexName)
	}
	if n.ActualMS > 0 || n.ActualRows > 0 {
		fmt.Fprintf(b, " (%.0f rows, %.2f ms)", n.ActualRows, n.ActualMS)
	}
	b.WriteString("\n")
	for i := range n.Plans {
		n.Plans[i].text(b, depth+1)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// queryName reads sqlc's "-- name: X :kind" comment.
func queryName(sql string) string {
	if _, rest, ok := strings.Cut(sql, "-- name: "); ok {
		if f := strings.Fields(rest); len(f) > 0 {
			return f[0]
		}
	}
	return strings.Fields(sql + " ?")[0]
}

// LargeTables grow with the hospital's activity: the main queries must
// reach them through an index.
var LargeTables = []string{"patients", "appointments", "audit_events", "admissions", "admission_events", "bed_stays",
	"care_assignments", "queue_entries", "patient_identifiers", "patient_contacts", "patient_merges"}

// LiveIndexes are partial indexes over what is true now (open stays,
// active admissions): bounded by the number of beds, so reading all of one
// is cheap however long the hospital has run.
var LiveIndexes = map[string]bool{"bed_stays_open_key": true, "admissions_one_per_patient_key": true, "admissions_one_per_bed_key": true}

// Sample holds real ids and names to run the main queries with.
type Sample struct {
	PatientID, PractitionerID, ClinicID, WardID, UserID uuid.UUID
	Family, Given                                       string
	Day                                                 time.Time // local midnight of a day with appointments
	TZ                                                  string
	Block                                               dbgen.AuditBlockRowsParams // the latest sealed audit block (zero when none)
}

// LoadSample picks a patient with appointments, their practitioner and
// clinic, a ward with beds and a user (any rows will do; their presence is
// what matters).
func LoadSample(ctx context.Context, conn Conn, tz string) (Sample, error) {
	s := Sample{TZ: tz}
	err := conn.QueryRow(ctx, `
		SELECT a.patient_id, a.practitioner_id, a.clinic_id, p.family_name, split_part(p.given_names, ' ', 1),
		       date_trunc('day', a.starts_at AT TIME ZONE $1) AT TIME ZONE $1
		FROM appointments a JOIN patients p ON p.id = a.patient_id
		ORDER BY a.starts_at DESC LIMIT 1`, tz).Scan(&s.PatientID, &s.PractitionerID, &s.ClinicID, &s.Family, &s.Given, &s.Day)
	if err != nil {
		return s, fmt.Errorf("sample appointment: %w", err)
	}
	if err := conn.QueryRow(ctx, `SELECT r.ward_id FROM beds b JOIN rooms r ON r.id = b.room_id LIMIT 1`).Scan(&s.WardID); err != nil {
		return s, fmt.Errorf("sample ward: %w", err)
	}
	if err := conn.QueryRow(ctx, `SELECT id FROM users LIMIT 1`).Scan(&s.UserID); err != nil {
		return s, fmt.Errorf("sample user: %w", err)
	}
	err = conn.QueryRow(ctx, `SELECT from_xid, from_id, to_xid, to_id FROM audit_blocks ORDER BY seq DESC LIMIT 1`).
		Scan(&s.Block.FromXid, &s.Block.FromID, &s.Block.ToXid, &s.Block.ToID)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return s, fmt.Errorf("sample audit block: %w", err)
	}
	s.Block.FromXid.Valid, s.Block.ToXid.Valid = true, true
	return s, nil
}

// MainQueries explains the queries behind the busiest screens: patient
// search (every stage), a clinician's patient list, a registration's
// duplicate check, the patient's record and chart, a practitioner's
// and a clinic's day, the bed board, the census, a care-scope check, a
// queue board, the audit report, and the audit chain's own work: the
// sealer's check that runs every second and the verifier's read of a block,
// on every replica. A nurse's scope is used where the
// query takes one, so the scope check is in the plan.
func MainQueries(ctx context.Context, r *Recorder, s Sample) {
	q := dbgen.New(r)
	scope := &s.UserID
	wards := []uuid.UUID{s.WardID}
	family := strings.ToLower(s.Family)
	given := strings.ToLower(s.Given)
	typo := []rune(given) // the given name with its 2nd and 3rd letters swapped
	if len(typo) > 2 {
		typo[1], typo[2] = typo[2], typo[1]
	}
	_, _ = q.PatientSearchBySurname(ctx, dbgen.PatientSearchBySurnameParams{QLike: family + "%", ScopeUser: scope, ScopeWards: wards, Lim: 21})
	_, _ = q.PatientSearchByNameParts(ctx, dbgen.PatientSearchByNamePartsParams{FamilyParts: []string{family, given},
		GivenParts: []string{given, family}, ScopeUser: scope, ScopeWards: wards, Lim: 21})
	_, _ = q.PatientSearchByNearName(ctx, dbgen.PatientSearchByNearNameParams{Q: string(typo) + " " + family,
		FamilyParts: []string{family, string(typo)}, GivenParts: []string{string(typo), family}, ScopeUser: scope, ScopeWards: wards, Lim: 21})
	_, _ = q.PatientSearchByRelevance(ctx, dbgen.PatientSearchByRelevanceParams{Q: given + " " + family, ScopeUser: scope, ScopeWards: wards, Lim: 21})
	// The registry's default page (by name), and a clinician's list: by
	// name and newest first, from the scope's patients (patient_scope).
	_, _ = q.PatientListByName(ctx, dbgen.PatientListByNameParams{ScopeWards: []uuid.UUID{}, Lim: 51})
	_, _ = q.PatientListByName(ctx, dbgen.PatientListByNameParams{ScopeUser: scope, ScopeWards: wards, Lim: 51})
	_, _ = q.PatientListByCreatedDesc(ctx, dbgen.PatientListByCreatedDescParams{ScopeUser: scope, ScopeWards: wards, Lim: 51})
	// A registration's duplicate check, at the name similarity a
	// registration sets (patient.likelyNameSimilarity).
	restore := r.set(ctx, "pg_trgm.similarity_threshold", "0.9")
	_, _ = q.PatientDuplicates(ctx, dbgen.PatientDuplicatesParams{Name: given + " " + family,
		Identifiers: []string{"NO-SUCH-ID"}})
	restore()
	_, _ = q.PatientGet(ctx, s.PatientID)
	_, _ = q.IdentifierList(ctx, s.PatientID)
	_, _ = q.ContactList(ctx, s.PatientID)
	_, _ = q.PatientInScope(ctx, dbgen.PatientInScopeParams{PatientID: s.PatientID, UserID: s.UserID, WardIds: wards})
	_, _ = q.AppointmentList(ctx, dbgen.AppointmentListParams{ScopeUser: scope, ScopeWards: wards, PatientID: &s.PatientID,
		FromTime: s.Day.AddDate(0, 0, -31), ToTime: s.Day.AddDate(0, 0, 31)})
	_, _ = q.AdmissionsForPatientDetail(ctx, s.PatientID)
	_, _ = q.AppointmentList(ctx, dbgen.AppointmentListParams{ScopeUser: scope, ScopeWards: wards, PractitionerID: &s.PractitionerID,
		FromTime: s.Day, ToTime: s.Day.AddDate(0, 0, 1)})
	_, _ = q.AppointmentList(ctx, dbgen.AppointmentListParams{ScopeUser: scope, ScopeWards: wards, ClinicID: &s.ClinicID,
		FromTime: s.Day, ToTime: s.Day.AddDate(0, 0, 1)})
	_, _ = q.AppointmentsBooked(ctx, dbgen.AppointmentsBookedParams{PractitionerID: &s.PractitionerID, FromTime: s.Day, ToTime: s.Day.AddDate(0, 0, 7)})
	_, _ = q.BedBoard(ctx, dbgen.BedBoardParams{ScopeUser: scope, ScopeWards: wards, WardID: &s.WardID})
	_, _ = q.BedCounts(ctx, &s.WardID)
	day := time.Date(s.Day.Year(), s.Day.Month(), s.Day.Day(), 0, 0, 0, 0, time.UTC)
	_, _ = q.CensusDaily(ctx, dbgen.CensusDailyParams{Tz: s.TZ, FromDay: day.AddDate(0, 0, -29), ToDay: day})
	_, _ = q.LengthOfStay(ctx, dbgen.LengthOfStayParams{FromTime: s.Day.AddDate(0, 0, -29), ToTime: s.Day})
	_, _ = q.AuditSearch(ctx, dbgen.AuditSearchParams{FromTime: s.Day.AddDate(0, 0, -1), ToTime: s.Day.AddDate(0, 0, 1),
		PatientID: &s.PatientID, Sort: "-time", Lim: 51})
	_, _ = q.AuditLastBlockEnd(ctx)
	_, _ = q.AuditUnsealedCount(ctx, dbgen.AuditUnsealedCountParams{AfterXactID: s.Block.ToXid, AfterID: s.Block.ToID})
	_, _ = q.AuditBlockRows(ctx, s.Block)
}
