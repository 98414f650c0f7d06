package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/httpapi"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
)

func TestAuthFlow(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	if _, err := tb.Identity.CreateUserAsSystem(ctx, "nurse.flow", "Flow Nurse", identity.RoleNurse, "", "a long enough password"); err != nil {
		t.Fatal(err)
	}
	c := client.New(tb.URL, nil)
	if _, err := c.Login(ctx, "nurse.flow", "wrong password!!"); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("wrong password: %v, want 401", err)
	}
	if _, err := c.Login(ctx, "nobody.here", "wrong password!!"); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("unknown user: %v, want 401", err)
	}
	tok, err := c.Login(ctx, "Nurse.Flow", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 || tok.RefreshToken == "" {
		t.Fatalf("token response %+v", tok)
	}
	me, err := c.WithToken(tok.AccessToken).Me(ctx)
	if err != nil || me.Username != "nurse.flow" || me.Role != identity.RoleNurse {
		t.Fatalf("me = %+v, %v", me, err)
	}
	// Refresh rotates: the new refresh token works, the old one is refused
	// and its reuse ends the session.
	next, err := c.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(ctx, tok.RefreshToken); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("reused refresh token: %v, want 401", err)
	}
	if _, err := c.Refresh(ctx, next.RefreshToken); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("refresh after reuse detection: %v, want 401 (session revoked)", err)
	}
	tb.Redis.FlushAll(ctx) // no stale session in the cache
	if _, err := c.WithToken(next.AccessToken).Me(ctx); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("access token of revoked session: %v, want 401", err)
	}
	// Logout ends the session immediately (the cache entry is dropped).
	tok2, err := c.Login(ctx, "nurse.flow", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	authed := c.WithToken(tok2.AccessToken)
	if _, err := authed.Me(ctx); err != nil {
		t.Fatal(err)
	}
	if err := authed.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := authed.Me(ctx); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("after logout: %v, want 401", err)
	}
	// A token signed by another key is refused.
	other := startBackend(t, backendOpts{dbURL: tb.DBURL, adminURL: tb.AdminURL})
	_ = other
	tok3, _ := client.New(other.URL, nil).Login(ctx, "nurse.flow", "a long enough password")
	if _, err := c.WithToken(tok3.AccessToken).Me(ctx); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("foreign key: %v, want 401", err)
	}
}

// Two frontend pods refreshing the same token at once both get tokens;
// the same token presented later ends the session.
func TestRefreshReuseGrace(t *testing.T) {
	tb := startBackend(t, backendOpts{env: map[string]string{"REFRESH_REUSE_GRACE": "10s"}})
	ctx := context.Background()
	if _, err := tb.Identity.CreateUserAsSystem(ctx, "nurse.grace", "Grace Nurse", identity.RoleNurse, "", testPassword); err != nil {
		t.Fatal(err)
	}
	c := client.New(tb.URL, nil)
	tok, err := c.Login(ctx, "nurse.grace", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	a, errA := c.Refresh(ctx, tok.RefreshToken)
	b, errB := c.Refresh(ctx, tok.RefreshToken)
	if errA != nil || errB != nil || a.RefreshToken == b.RefreshToken {
		t.Fatalf("concurrent refreshes: %v, %v", errA, errB)
	}
	admin := openAdmin(t, tb)
	if _, err := admin.Exec(ctx, "UPDATE refresh_tokens SET used_at = used_at - interval '1 minute' WHERE used_at IS NOT NULL"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(ctx, tok.RefreshToken); client.StatusOf(err) != 401 {
		t.Fatalf("reuse a minute later: %v, want 401", err)
	}
	if _, err := c.Refresh(ctx, a.RefreshToken); client.StatusOf(err) != 401 {
		t.Fatalf("the session survived a stolen token's reuse: %v", err)
	}
}

func TestPermissions(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	inv, _ := tb.user(t, identity.RoleInventoryManager)
	if _, err := inv.Patients(ctx, client.PatientQuery{}); client.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("inventory manager listing patients: %v, want 403", err)
	}
	nurse, _ := tb.user(t, identity.RoleNurse)
	if _, err := nurse.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "X", GivenNames: "Y"}}); client.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("nurse registering: %v, want 403", err)
	}
	anon := client.New(tb.URL, nil)
	if _, err := anon.Patients(ctx, client.PatientQuery{}); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("anonymous: %v, want 401", err)
	}
}

func TestPatientRegisterAndRead(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	rec, _ := tb.user(t, identity.RoleReceptionist)
	p, err := rec.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Ødegaard", GivenNames: "Søren", BirthDate: "1980-02-29",
		Sex: "male", Email: "soren@example.org", Country: "no"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.MRN == "" || p.Country != "NO" || p.BirthDate != "1980-02-29" || p.Version != 1 {
		t.Fatalf("registered %+v", p)
	}
	// Field errors name the fields.
	_, err = rec.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "", GivenNames: "A", BirthDate: "2999-01-01", Email: "nope", Sex: "x"}})
	var apiErr *client.Error
	if !asError(err, &apiErr) || apiErr.Status != 400 {
		t.Fatalf("invalid input: %v", err)
	}
	for _, f := range []string{"family_name", "birth_date", "email", "sex"} {
		if apiErr.Errors[f] == "" {
			t.Errorf("no message for %s in %v", f, apiErr.Errors)
		}
	}
	got, err := rec.Patient(ctx, p.ID)
	if err != nil || got.ID != p.ID || got.FamilyName != "Ødegaard" {
		t.Fatalf("get = %+v, %v", got, err)
	}
	// The second read is served from the cache and still audited.
	before := counterValue(t, tb.Metrics, "cache_requests_total", "hit")
	if _, err := rec.Patient(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if after := counterValue(t, tb.Metrics, "cache_requests_total", "hit"); after <= before {
		t.Fatalf("cache hits %v -> %v; want an increase", before, after)
	}
	var reads int
	if err := tb.DB.Pool.QueryRow(ctx, "SELECT count(*) FROM audit_events WHERE action = 'patient.read' AND patient_id = $1", p.ID).Scan(&reads); err != nil || reads != 2 {
		t.Fatalf("audited reads = %d, %v; want 2", reads, err)
	}
	if _, err := rec.Patient(ctx, "00000000-0000-0000-0000-000000000000"); client.StatusOf(err) != 404 {
		t.Fatalf("unknown id: %v, want 404", err)
	}
	if _, err := rec.Patient(ctx, "not-a-uuid"); client.StatusOf(err) != 404 {
		t.Fatalf("malformed id: %v, want 404", err)
	}
	// Logs never carry patient data.
	if logs := tb.Logs.String(); strings.Contains(logs, "Ødegaard") || strings.Contains(logs, "soren@example.org") || strings.Contains(logs, p.MRN) {
		t.Fatalf("patient data in logs:\n%s", logs)
	}
}

func TestPatientListPagingAndSort(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	rec, _ := tb.user(t, identity.RoleReceptionist)
	names := []string{"Adams", "Baker", "baker", "Clark", "Davis", "Évora", "Evans", "Ó Súilleabháin", "50%_off"}
	for _, n := range names {
		if _, err := rec.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: n, GivenNames: "Test"}}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	cursor := ""
	for {
		page, err := rec.Patients(ctx, client.PatientQuery{Sort: "name", Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Items {
			seen = append(seen, p.FamilyName)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(seen) != len(names) {
		t.Fatalf("paged through %d patients, want %d: %v", len(seen), len(names), seen)
	}
	// In name order as a reader expects it, accents aside (the order the
	// surname search uses): Évora between Evans and Ó Súilleabháin.
	fold := strings.NewReplacer("É", "e", "Ó", "o", "ú", "u", "á", "a")
	for i := 1; i < len(seen); i++ {
		if strings.ToLower(fold.Replace(seen[i-1])) > strings.ToLower(fold.Replace(seen[i])) {
			t.Fatalf("not sorted by name: %v", seen)
		}
	}
	desc, err := rec.Patients(ctx, client.PatientQuery{Sort: "-name", Limit: 1})
	if err != nil || desc.Items[0].FamilyName != "Ó Súilleabháin" {
		t.Fatalf("descending first = %v, %v", desc.Items, err)
	}
	// A LIKE wildcard in the search is literal.
	hits, err := rec.Patients(ctx, client.PatientQuery{Q: "50%"})
	if err != nil || len(hits.Items) != 1 {
		t.Fatalf("search 50%%: %v, %v", hits.Items, err)
	}
	hits, err = rec.Patients(ctx, client.PatientQuery{Q: "%"})
	if err != nil || len(hits.Items) != 0 {
		t.Fatalf("search %%: %v, %v; want nothing (no surname starts with %%)", hits.Items, err)
	}
	// Sort keys come from an allow-list; anything else is a 400.
	for _, bad := range []string{"family_name; DROP TABLE patients", "id", "-"} {
		if _, err := rec.Patients(ctx, client.PatientQuery{Sort: bad}); client.StatusOf(err) != 400 {
			t.Fatalf("sort=%q: %v, want 400", bad, err)
		}
	}
	if _, err := rec.Patients(ctx, client.PatientQuery{Cursor: "garbage!"}); client.StatusOf(err) != 400 {
		t.Fatalf("bad cursor: %v, want 400", err)
	}
}

// Bad input to every endpoint gets a problem+json 4xx, never a 500.
func TestBadInputIsProblemJSON(t *testing.T) {
	tb := startBackend(t, backendOpts{env: map[string]string{"MAX_BODY_BYTES": "4096"}})
	_, token := tb.user(t, identity.RoleReceptionist)
	big := `{"family_name":"` + strings.Repeat("x", 5000) + `"}`
	bodies := []struct {
		name, ct, body string
		status         int
	}{
		{"malformed", "application/json", `{"family_name":`, 400},
		{"syntax", "application/json", `{"family_name" "x"}`, 400},
		{"unknown field", "application/json", `{"family_name":"A","given_names":"B","ssn":"1"}`, 400},
		{"wrong type", "application/json", `{"family_name":42}`, 400},
		{"array", "application/json", `[1,2]`, 400},
		{"NUL in text", "application/json", `{"family_name":"A\u0000B","given_names":"C"}`, 400},
		{"two values", "application/json", `{"family_name":"A","given_names":"B"} {}`, 400},
		{"empty", "application/json", ``, 400},
		{"oversize", "application/json", big, 413},
		{"text/plain", "text/plain", `{"family_name":"A"}`, 415},
		{"no content type", "", `{"family_name":"A"}`, 415},
		{"form", "application/x-www-form-urlencoded", `family_name=A`, 415},
	}
	posts := []string{"/api/v1/patients", "/api/v1/auth/login", "/api/v1/auth/refresh"}
	for _, path := range posts {
		for _, b := range bodies {
			t.Run(strings.TrimPrefix(path, "/api/v1/")+"/"+b.name, func(t *testing.T) {
				status, h, body := raw(t, "POST", tb.URL+path, b.ct, strings.NewReader(b.body), token)
				want := b.status
				if status != want {
					t.Fatalf("status %d, want %d: %s", status, want, body)
				}
				assertProblem(t, h, body, status)
			})
		}
	}
	// Every GET route with junk parameters, wrong methods and unknown paths.
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/patients?limit=0"}, {"GET", "/api/v1/patients?limit=abc"}, {"GET", "/api/v1/patients?sort=%00"},
		{"GET", "/api/v1/patients/%27%20OR%201=1"}, {"GET", "/api/v1/wards/xyz"}, {"DELETE", "/api/v1/patients"},
		{"PUT", "/api/v1/auth/login"}, {"GET", "/api/v1/nothing"}, {"GET", "/api/v1/events"},
		{"GET", "/api/v1/patients?q=%ff%fe"}, {"GET", "/api/v1/patients?q=a%00b"}, {"GET", "/api/v1/patients?q=caf%c3"}, {"GET", "/api/v1/patients?%ff=1"},
	} {
		status, h, body := raw(t, c.method, tb.URL+c.path, "", nil, token)
		if status < 400 || status >= 500 {
			t.Errorf("%s %s: status %d, want 4xx: %s", c.method, c.path, status, body)
			continue
		}
		assertProblem(t, h, body, status)
	}
	// A malformed bearer token is a 401 problem.
	status, h, body := raw(t, "GET", tb.URL+"/api/v1/auth/me", "", nil, "not.a.jwt")
	if status != 401 {
		t.Fatalf("bad token: %d", status)
	}
	assertProblem(t, h, body, 401)
}

// A User-Agent may hold any byte, and PostgreSQL stores only UTF-8: a
// header that is not UTF-8 (or is cut in the middle of a character) is
// mended, not refused, and never fails the read it came with, nor the
// other reads committed in the same audit batch (it used to: 503), nor a
// sign-in (500).
func TestUserAgentThatIsNotUTF8(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	rec, token := tb.user(t, identity.RoleReceptionist)
	p, err := rec.RegisterPatient(context.Background(), patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Agent", GivenNames: "Test"}})
	if err != nil {
		t.Fatal(err)
	}
	agents := []string{"probe\xff\xfe/1.0", strings.Repeat("x", 511) + "é tail"} // the second is cut inside "é"
	for _, ua := range agents {
		req, _ := newRequest("GET", tb.URL+"/api/v1/patients/"+p.ID, token)
		req.Header.Set("User-Agent", ua)
		resp, err := httpDo(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("read with User-Agent %q: %d, want 200", ua[:8], resp.StatusCode)
		}
		body := fmt.Sprintf(`{"username":%q,"password":%q}`, "nobody.agent", "not the password")
		req, _ = http.NewRequest("POST", tb.URL+"/api/v1/auth/login", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", ua)
		resp, err = httpDo(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("sign-in with User-Agent %q: %d, want 401", ua[:8], resp.StatusCode)
		}
	}
	var stored []string
	rows, err := openAdmin(t, tb).Query(context.Background(),
		"SELECT user_agent FROM audit_events WHERE action = 'patient.read' AND resource_id = $1 ORDER BY id", p.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, s)
	}
	if len(stored) != 2 || stored[0] != "probe\uFFFD/1.0" || stored[1] != strings.Repeat("x", 511) {
		t.Fatalf("stored user agents %q", stored)
	}
}

func assertProblem(t *testing.T, h http.Header, body []byte, status int) {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json: %s", ct, body)
	}
	var p struct {
		Type, Title, Code, Detail string
		Status                    int
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body: %v: %s", err, body)
	}
	if p.Status != status || p.Code == "" || p.Type == "" || p.Title == "" {
		t.Fatalf("problem %+v for status %d", p, status)
	}
	if strings.Contains(string(body), "goroutine") || strings.Contains(string(body), ".go:") || strings.Contains(string(body), "pgx") {
		t.Fatalf("internal detail leaked: %s", body)
	}
}

// Two hundred concurrent requests through PgBouncer (transaction pooling,
// server pool of 5): no protocol or prepared-statement errors.
func TestConcurrentRequestsThroughPgBouncer(t *testing.T) {
	tb := startBackend(t, backendOpts{env: map[string]string{"DATABASE_MAX_CONNS": "20"}})
	ctx := context.Background()
	rec, _ := tb.user(t, identity.RoleReceptionist)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := rec.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: fmt.Sprintf("Load%03d", i), GivenNames: "Test"}})
			if err == nil {
				_, err = rec.Patient(ctx, p.ID)
			}
			if err == nil {
				_, err = rec.Patients(ctx, client.PatientQuery{Q: "Load", Limit: 10})
			}
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
	if logs := tb.Logs.String(); strings.Contains(logs, "prepared statement") || strings.Contains(logs, `"level":"ERROR"`) {
		t.Fatalf("errors in logs:\n%s", logs)
	}
}

// Every route is in the OpenAPI document and the document names no route
// that does not exist.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	tb := startBackend(t, backendOpts{redisURL: "none"})
	s, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	if broken := s.BrokenRefs(); len(broken) > 0 {
		t.Errorf("openapi.yaml has $refs that point nowhere: %v", broken)
	}
	documented := map[string]bool{}
	for _, op := range s.Operations() {
		documented[op] = true
	}
	registered := map[string]bool{}
	for _, r := range tb.Server.Routes() {
		key := r.Method + " " + r.Path
		registered[key] = true
		if !documented[key] {
			t.Errorf("route %s is missing from openapi.yaml", key)
		}
	}
	for op := range documented {
		if !registered[op] {
			t.Errorf("openapi.yaml documents %s, which is not a route", op)
		}
	}
	status, h, body := raw(t, "GET", tb.URL+"/api/v1/openapi.json", "", nil, "")
	var doc map[string]any
	if status != 200 || json.Unmarshal(body, &doc) != nil || doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi.json: %d %s", status, h.Get("Content-Type"))
	}
	status, _, body = raw(t, "GET", tb.URL+"/api/v1/docs", "", nil, "")
	if status != 200 || !strings.Contains(string(body), "/api/v1/patients/{id}") {
		t.Fatalf("docs page: %d", status)
	}
}

func asError(err error, target **client.Error) bool {
	e, ok := err.(*client.Error)
	if ok {
		*target = e
	}
	return ok
}

func TestPatientUpdateConcurrency(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	rec, token := tb.user(t, identity.RoleReceptionist)
	p, err := rec.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Before", GivenNames: "Test"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rec.Patient(ctx, p.ID); err != nil { // now cached
		t.Fatal(err)
	}
	in := patient.UpdateInput{Demographics: patient.Demographics{FamilyName: "After", GivenNames: "Test", City: "Leeds"}}
	up, err := rec.UpdatePatient(ctx, p.ID, p.Version, in)
	if err != nil || up.Version != 2 || up.FamilyName != "After" {
		t.Fatalf("update = %+v, %v", up, err)
	}
	// The cache was invalidated: the read sees the change.
	got, err := rec.Patient(ctx, p.ID)
	if err != nil || got.FamilyName != "After" || got.Version != 2 {
		t.Fatalf("read after update = %+v, %v", got, err)
	}
	// A stale version is refused and changes nothing.
	if _, err := rec.UpdatePatient(ctx, p.ID, 1, patient.UpdateInput{Demographics: patient.Demographics{FamilyName: "Lost", GivenNames: "Update"}}); client.StatusOf(err) != 412 {
		t.Fatalf("stale update: %v, want 412", err)
	}
	if got, _ := rec.Patient(ctx, p.ID); got.FamilyName != "After" {
		t.Fatalf("stale update changed the record: %+v", got)
	}
	status, h, body := raw(t, "PUT", tb.URL+"/api/v1/patients/"+p.ID, "application/json", strings.NewReader(`{"family_name":"X","given_names":"Y"}`), token)
	if status != 428 {
		t.Fatalf("update without If-Match: %d %s", status, body)
	}
	assertProblem(t, h, body, 428)
	if _, err := rec.UpdatePatient(ctx, "00000000-0000-0000-0000-000000000001", 1, in); client.StatusOf(err) != 404 {
		t.Fatalf("update unknown: %v, want 404", err)
	}
}
