package main

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/demo"
)

// patient_scope (the set lists start from) and patient_in_scope (the check
// of one patient) are two definitions of one rule: for every clinician of
// the demo hospital, with their wards and department, and for ward-only,
// department-only and emergency-only scopes, they must agree on every
// patient, with ended care relationships and expired grants left out by
// both.
func TestPatientScopeMatchesInScope(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	logins := loadDemo(t, tb, 120)
	db := tb.DB.Pool
	// Some ended relationships and grants, live and expired.
	for _, kind := range []string{"ward_id", "department_id", "user_id"} {
		if _, err := db.Exec(ctx, `UPDATE care_assignments SET ended_at = now()
			WHERE id IN (SELECT id FROM care_assignments WHERE ended_at IS NULL AND `+kind+` IS NOT NULL ORDER BY id LIMIT 5)`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(ctx, `INSERT INTO emergency_access (user_id, patient_id, reason, granted_at, expires_at)
		SELECT u.id, p.id, 'Collapsed in the corridor', now() - interval '2 hours',
		       CASE WHEN p.n % 2 = 0 THEN now() + interval '1 hour' ELSE now() - interval '1 hour' END
		FROM (SELECT id FROM users WHERE role IN ('physician', 'nurse')) u,
		     (SELECT id, row_number() OVER (ORDER BY id) AS n FROM patients LIMIT 6) p`); err != nil {
		t.Fatal(err)
	}
	type scope struct {
		name       string
		user       uuid.UUID
		wards      []uuid.UUID
		department *uuid.UUID
	}
	var scopes []scope
	rows, err := db.Query(ctx, `SELECT u.username, u.id, coalesce(array_agg(uw.ward_id) FILTER (WHERE uw.ward_id IS NOT NULL), '{}'), u.department_id
		FROM users u LEFT JOIN user_wards uw ON uw.user_id = u.id WHERE u.role IN ('physician', 'nurse') GROUP BY u.id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s scope
		if err := rows.Scan(&s.name, &s.user, &s.wards, &s.department); err != nil {
			t.Fatal(err)
		}
		scopes = append(scopes, s, scope{s.name + " (wards only)", uuid.New(), s.wards, nil},
			scope{s.name + " (department only)", uuid.New(), []uuid.UUID{}, s.department},
			scope{s.name + " (own and grants only)", s.user, []uuid.UUID{}, nil})
	}
	if err := rows.Err(); err != nil || len(scopes) < 8 {
		t.Fatalf("%d clinicians' scopes, %v", len(scopes)/4, err)
	}
	// And every ward at once, and each department.
	var wards, departments []uuid.UUID
	if err := db.QueryRow(ctx, "SELECT array_agg(id) FROM wards").Scan(&wards); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, "SELECT array_agg(id) FROM departments").Scan(&departments); err != nil {
		t.Fatal(err)
	}
	scopes = append(scopes, scope{"every ward", uuid.New(), wards, nil})
	for _, d := range departments {
		scopes = append(scopes, scope{"department " + d.String(), uuid.New(), []uuid.UUID{}, &d})
	}
	seen := 0
	for _, s := range scopes {
		var inScope, inSet, disagree int
		if err := db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE patient_in_scope(p.id, $1, $2, $3)),
			count(*) FILTER (WHERE p.id IN (SELECT patient_scope($1, $2, $3))),
			count(*) FILTER (WHERE patient_in_scope(p.id, $1, $2, $3) <> (p.id IN (SELECT patient_scope($1, $2, $3))))
			FROM patients p`, s.user, s.wards, s.department).Scan(&inScope, &inSet, &disagree); err != nil {
			t.Fatal(err)
		}
		if disagree != 0 {
			t.Errorf("%s: patient_in_scope holds for %d patients, patient_scope has %d, %d disagree", s.name, inScope, inSet, disagree)
		}
		seen += inScope
	}
	if seen == 0 {
		t.Fatal("no scope held any patient: the comparison proved nothing")
	}
	// And a scoped list is the scope: a nurse's list holds exactly the
	// patients in their wards' care, whatever the sort.
	var nurse *client.Client
	var nurseName string
	for _, l := range logins {
		if l.Role == "nurse" {
			tok, err := client.New(tb.URL, nil).Login(ctx, l.Username, l.Password)
			if err != nil {
				t.Fatal(err)
			}
			nurse, nurseName = client.New(tb.URL, nil).WithToken(tok.AccessToken), l.Username
		}
	}
	var want int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM patients p, users u WHERE u.username = $1 AND p.active
		AND patient_in_scope(p.id, u.id, ARRAY(SELECT ward_id FROM user_wards WHERE user_id = u.id), u.department_id)`,
		nurseName).Scan(&want); err != nil || want == 0 {
		t.Fatalf("the demo nurse's scope holds %d patients, %v", want, err)
	}
	for _, sort := range []string{"name", "-name", "created", "-created", "mrn", "-mrn"} {
		got, cursor := 0, ""
		for {
			page, err := nurse.Patients(ctx, client.PatientQuery{Sort: sort, Limit: 20, Cursor: cursor})
			if err != nil {
				t.Fatalf("nurse's list by %s: %v", sort, err)
			}
			got += len(page.Items)
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		if got != want {
			t.Errorf("nurse's list by %s holds %d patients, want %d", sort, got, want)
		}
	}
}

// loadDemo loads the demo hospital with patients patients (Europe/London)
// and returns its logins.
func loadDemo(t *testing.T, tb *testBackend, patients int) []demo.Login {
	t.Helper()
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	logins, err := demo.Load(context.Background(), tb.DB, tb.Identity, patients, loc, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return logins
}
