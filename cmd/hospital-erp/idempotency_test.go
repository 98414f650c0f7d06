package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/idempotency"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
)

// notKeyed lists the commands that ignore Idempotency-Key, and why. Every
// other POST, PUT and DELETE route must store its first answer with the key
// (TestEveryCommandIsIdempotent walks the router to make sure).
var notKeyed = map[string]string{
	// Reads that take a body.
	"POST /api/v1/patients/duplicates": "a read: creates nothing",
	// Answers that carry secrets must not be stored in the database.
	"POST /api/v1/auth/login":       "answers tokens; a retry simply signs in again",
	"POST /api/v1/auth/refresh":     "answers tokens; a retry within REFRESH_REUSE_GRACE gets new ones",
	"POST /api/v1/auth/ws-ticket":   "answers a secret ticket; tickets are cheap and expire in 60 s",
	"POST /api/v1/auth/mfa/enrol":   "answers the TOTP secret; enrolling again replaces the pending secret",
	"POST /api/v1/auth/mfa/confirm": "answers recovery codes; a repeated code is refused, so a retry cannot enrol twice",
	// Bodies that carry passwords: their fingerprint (SHA-256 of the body)
	// would be a fast hash of the password in the database.
	"POST /api/v1/auth/password":       "carries passwords; setting the same password again changes nothing",
	"POST /api/v1/auth/mfa/disable":    "carries the password; disabling twice changes nothing",
	"POST /api/v1/users":               "carries the password; the unique username refuses a second user (409)",
	"POST /api/v1/users/{id}/password": "carries the password; setting it again changes nothing",
	// Naturally idempotent.
	"POST /api/v1/auth/logout": "ending an ended session changes nothing",
}

// Every command route takes an Idempotency-Key: sent again with the same
// key (a retry after a lost answer), it answers the first response again —
// same status and body, marked Idempotent-Replayed — without doing the work
// a second time (no new audit row, no second record, no 409 from the state
// machine). The same key on another request is refused with 422.
func TestEveryCommandIsIdempotent(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	admin := tb.newUser(t, identity.RoleAdmin)
	desk := tb.newUser(t, identity.RoleReceptionist)
	nurse := tb.newUser(t, identity.RoleNurse)
	doc := tb.newUser(t, identity.RolePhysician)
	w := setupWard(t, tb, "IK", 4)
	cs := setupClinic(t, tb)

	covered := map[string]bool{}
	auditRows := func() int {
		var n int
		if err := tb.DB.Pool.QueryRow(ctx, "SELECT count(*) FROM audit_events").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// once sends a command twice with one key and returns the decoded answer.
	once := func(route string, as account, path string, body any, header ...string) map[string]any {
		t.Helper()
		covered[route] = true
		method, _, _ := strings.Cut(route, " ")
		key := uuid.NewString()
		send := func() (int, http.Header, []byte) {
			var rd io.Reader
			if body != nil {
				b, _ := json.Marshal(body)
				rd = bytes.NewReader(b)
			}
			req, _ := http.NewRequest(method, tb.URL+path, rd)
			req.Header.Set("Authorization", "Bearer "+as.Token)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(idempotency.Header, key)
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, resp.Header, b
		}
		status, h, first := send()
		if status >= 300 {
			t.Fatalf("%s: %d %s", route, status, first)
		}
		if h.Get(idempotency.ReplayedHeader) != "" {
			t.Fatalf("%s: the first answer is marked replayed", route)
		}
		rows := auditRows()
		again, h2, second := send()
		if again != status || !bytes.Equal(first, second) {
			t.Errorf("%s: retry answered %d %s\nfirst was %d %s", route, again, second, status, first)
		}
		if h2.Get(idempotency.ReplayedHeader) != "true" {
			t.Errorf("%s: retry not marked %s", route, idempotency.ReplayedHeader)
		}
		if n := auditRows(); n != rows {
			t.Errorf("%s: the retry did the work again (%d new audit rows)", route, n-rows)
		}
		var out map[string]any
		if len(first) > 0 {
			if err := json.Unmarshal(first, &out); err != nil {
				t.Fatalf("%s: %v", route, err)
			}
		}
		return out
	}
	id := func(m map[string]any) string { return fmt.Sprint(m["id"]) }
	register := func(family string) string {
		return id(once("POST /api/v1/patients", desk, "/api/v1/patients", map[string]any{
			"family_name": family, "given_names": "Keyed", "birth_date": "1980-01-02", "sex": "female", "confirm_not_duplicate": true}))
	}

	// Registry.
	p1 := register("Idemone")
	p2 := register("Idemtwo")
	once("PUT /api/v1/patients/{id}", desk, "/api/v1/patients/"+p1, map[string]any{
		"family_name": "Idemone", "given_names": "Keyed Again", "birth_date": "1980-01-02", "sex": "female"}, "If-Match", `"1"`)
	ident := id(once("POST /api/v1/patients/{id}/identifiers", desk, "/api/v1/patients/"+p1+"/identifiers",
		map[string]any{"type": "NI", "system": "urn:test", "value": "IK-" + p1[:8]}))
	once("DELETE /api/v1/patients/{id}/identifiers/{identifier}", desk, "/api/v1/patients/"+p1+"/identifiers/"+ident, nil)
	contact := id(once("POST /api/v1/patients/{id}/contacts", desk, "/api/v1/patients/"+p1+"/contacts",
		map[string]any{"name": "Next Ofkin", "relationship": "N", "phone": "+44 20 7946 0000"}))
	once("DELETE /api/v1/patients/{id}/contacts/{contact}", desk, "/api/v1/patients/"+p1+"/contacts/"+contact, nil)
	merge := id(once("POST /api/v1/patients/{id}/merge", desk, "/api/v1/patients/"+p1+"/merge", map[string]any{"merged_id": p2}))
	once("POST /api/v1/patient-merges/{id}/undo", desk, "/api/v1/patient-merges/"+merge+"/undo", nil)
	grant := id(once("POST /api/v1/patients/{id}/emergency-access", doc, "/api/v1/patients/"+p2+"/emergency-access",
		map[string]any{"reason": "Unconscious in the emergency department"}))
	once("POST /api/v1/emergency-access/{id}/review", admin, "/api/v1/emergency-access/"+grant+"/review", map[string]any{"note": "justified"})

	// Inpatients.
	adm := id(once("POST /api/v1/admissions", desk, "/api/v1/admissions",
		map[string]any{"patient_id": p1, "bed_id": w.Beds[0], "source": "emergency", "reason": "Observation"}))
	once("POST /api/v1/admissions/{id}/transfer", desk, "/api/v1/admissions/"+adm+"/transfer", map[string]any{"bed_id": w.Beds[1]})
	once("POST /api/v1/admissions/{id}/discharge", desk, "/api/v1/admissions/"+adm+"/discharge", map[string]any{"disposition": "home"})
	once("POST /api/v1/beds/{id}/{action}", nurse, "/api/v1/beds/"+w.Beds[0]+"/clean", nil)
	adm2 := id(once("POST /api/v1/admissions", desk, "/api/v1/admissions",
		map[string]any{"patient_id": p2, "bed_id": w.Beds[2], "source": "direct", "reason": "Entered in error"}))
	once("POST /api/v1/admissions/{id}/cancel", desk, "/api/v1/admissions/"+adm2+"/cancel", map[string]any{"reason": "wrong patient"})

	// Scheduling set-up.
	clinic := id(once("POST /api/v1/clinics", admin, "/api/v1/clinics",
		map[string]any{"department_id": cs.DeptID, "code": "IK-OP", "name": "Keyed clinic", "slot_minutes": 20}))
	pr := id(once("POST /api/v1/practitioners", admin, "/api/v1/practitioners",
		map[string]any{"display_name": "Dr. Keyed", "department_id": cs.DeptID}))
	rule := id(once("POST /api/v1/practitioners/{id}/availability", admin, "/api/v1/practitioners/"+pr+"/availability",
		map[string]any{"clinic_id": clinic, "weekday": 1, "start_time": "08:00", "end_time": "10:00"}))
	once("DELETE /api/v1/practitioners/{id}/availability/{rule}", admin, "/api/v1/practitioners/"+pr+"/availability/"+rule, nil)
	start := time.Now().UTC().AddDate(0, 1, 0)
	exc := id(once("POST /api/v1/availability-exceptions", admin, "/api/v1/availability-exceptions",
		map[string]any{"practitioner_id": pr, "starts_at": start, "ends_at": start.Add(24 * time.Hour), "reason": "Conference"}))
	once("DELETE /api/v1/availability-exceptions/{id}", admin, "/api/v1/availability-exceptions/"+exc, nil)

	// Appointments and the queue.
	book := func(p string, h, m int) string {
		return id(once("POST /api/v1/appointments", cs.Desk, "/api/v1/appointments", map[string]any{
			"patient_id": p, "practitioner_id": cs.PractitionerID, "clinic_id": cs.ClinicID, "starts_at": tomorrowAt(h, m)}))
	}
	a1 := book(p1, 9, 0)
	once("POST /api/v1/appointments/{id}/reschedule", cs.Desk, "/api/v1/appointments/"+a1+"/reschedule",
		map[string]any{"starts_at": tomorrowAt(9, 30)})
	once("POST /api/v1/appointments/{id}/cancel", cs.Desk, "/api/v1/appointments/"+a1+"/cancel", map[string]any{"reason": "Patient called"})
	a2 := book(p1, 10, 0)
	checkIn := once("POST /api/v1/appointments/{id}/check-in", cs.Desk, "/api/v1/appointments/"+a2+"/check-in", nil)
	if checkIn["queue_ticket"] == nil || checkIn["queue_ticket"] == "" {
		t.Errorf("check-in answer without its queue ticket: %v", checkIn)
	}
	once("POST /api/v1/appointments/{id}/complete", cs.Desk, "/api/v1/appointments/"+a2+"/complete", nil)
	a3 := book(p2, 10, 30)
	once("POST /api/v1/appointments/{id}/no-show", cs.Desk, "/api/v1/appointments/"+a3+"/no-show", nil)
	p3 := register("Idemthree")
	once("POST /api/v1/departments/{id}/queue", cs.Desk, "/api/v1/departments/"+cs.DeptID+"/queue", map[string]any{"patient_id": p3})
	called := id(once("POST /api/v1/departments/{id}/queue/call-next", cs.Desk, "/api/v1/departments/"+cs.DeptID+"/queue/call-next",
		map[string]any{"call_point": "Room 2"}))
	once("POST /api/v1/queue-entries/{id}/done", cs.Desk, "/api/v1/queue-entries/"+called+"/done", nil)
	p4 := register("Idemfour")
	entry2 := id(once("POST /api/v1/departments/{id}/queue", cs.Desk, "/api/v1/departments/"+cs.DeptID+"/queue", map[string]any{"patient_id": p4}))
	once("POST /api/v1/queue-entries/{id}/left", cs.Desk, "/api/v1/queue-entries/"+entry2+"/left", nil)

	// User administration.
	once("PUT /api/v1/users/{id}", admin, "/api/v1/users/"+nurse.ID, map[string]any{
		"display_name": "Nurse Keyed", "role": identity.RoleNurse, "ward_ids": []string{w.WardID}}, "If-Match", `"1"`)
	once("POST /api/v1/users/{id}/sessions/revoke", admin, "/api/v1/users/"+doc.ID+"/sessions/revoke", nil)
	once("POST /api/v1/users/{id}/disable", admin, "/api/v1/users/"+doc.ID+"/disable", nil)
	once("POST /api/v1/users/{id}/enable", admin, "/api/v1/users/"+doc.ID+"/enable", nil)
	once("POST /api/v1/users/{id}/mfa/reset", admin, "/api/v1/users/"+doc.ID+"/mfa/reset", nil)

	// Every command route is covered here or listed in notKeyed.
	for _, r := range tb.Server.Routes() {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			continue
		}
		route := r.Method + " " + r.Path
		if _, exempt := notKeyed[route]; exempt == covered[route] {
			t.Errorf("%s: keyed test %v, listed in notKeyed %v: exactly one must hold", route, covered[route], exempt)
		}
	}

	// The API reference says so for each of them.
	_, _, specJSON := raw(t, http.MethodGet, tb.URL+"/api/v1/openapi.json", "", nil, "")
	var spec struct {
		Paths map[string]map[string]struct {
			Parameters []map[string]any `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(specJSON, &spec); err != nil {
		t.Fatal(err)
	}
	for route := range covered {
		method, path, _ := strings.Cut(route, " ")
		declared := false
		for _, p := range spec.Paths[path][strings.ToLower(method)].Parameters {
			declared = declared || p["$ref"] == "#/components/parameters/IdempotencyKey"
		}
		if !declared {
			t.Errorf("openapi.yaml: %s does not declare the Idempotency-Key parameter", route)
		}
	}

	// The same key on a different request is refused, not replayed.
	key := uuid.NewString()
	for i, want := range []int{http.StatusCreated, http.StatusUnprocessableEntity} {
		status, _, body := rawWithKey(t, tb.URL+"/api/v1/patients", desk.Token, key, map[string]any{
			"family_name": "Keyreuse" + strconv.Itoa(i), "given_names": "Two", "sex": "male", "confirm_not_duplicate": true})
		if status != want {
			t.Fatalf("request %d with one key: %d %s, want %d", i+1, status, body, want)
		}
	}
}

func rawWithKey(t *testing.T, url, token, key string, body any) (int, http.Header, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(idempotency.Header, key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// Retries racing each other on a command whose work does not collide
// (registering creates a new record each time): each waits at the key for
// the one that got there first, rolls its own work back, and answers that
// one's response. One patient, five identical answers.
func TestRacingRetriesOfARegistration(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	desk := tb.newUser(t, identity.RoleReceptionist)
	ctx := client.WithIdempotencyKey(context.Background(), uuid.NewString())
	in := patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Racingretry", GivenNames: "Once"}, ConfirmNotDuplicate: true}
	sensitive("Racingretry")
	ids := make(chan string, 5)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			p, err := desk.C.RegisterPatient(ctx, in)
			if err != nil {
				ids <- "error: " + err.Error()
				return
			}
			ids <- p.ID
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]int{}
	for id := range ids {
		seen[id]++
	}
	if len(seen) != 1 {
		t.Fatalf("five racing retries answered %v, want one patient five times", seen)
	}
	var n int
	if err := tb.DB.Pool.QueryRow(context.Background(), "SELECT count(*) FROM patients WHERE family_name = 'Racingretry'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d patients registered (%v), want 1", n, err)
	}
}
