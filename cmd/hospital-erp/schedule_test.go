package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hospital-erp/hospital-erp/internal/appointment"
	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/events"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
)

// clinicSetup is a department with a clinic (15-minute slots) and a
// physician available there every day from 09:00 to 12:00 UTC.
type clinicSetup struct {
	DeptID, ClinicID, PractitionerID string
	Doctor, Desk                     account
}

func setupClinic(t *testing.T, tb *testBackend) clinicSetup {
	t.Helper()
	ctx := context.Background()
	admin := tb.newUser(t, identity.RoleAdmin)
	var dept string
	if err := tb.DB.Pool.QueryRow(ctx, "INSERT INTO departments (code, name, kind) VALUES ('OPD', 'Outpatients', 'clinical') RETURNING id").Scan(&dept); err != nil {
		t.Fatal(err)
	}
	clinic, err := admin.C.CreateClinic(ctx, appointment.ClinicInput{DepartmentID: dept, Code: "CARD-OP", Name: "Cardiology clinic", SlotMinutes: 15})
	if err != nil {
		t.Fatal(err)
	}
	doctor := tb.newUser(t, identity.RolePhysician)
	pr, err := admin.C.CreatePractitioner(ctx, appointment.PractitionerInput{UserID: doctor.ID, DisplayName: "Dr. Test", DepartmentID: dept, Specialty: "Cardiology"})
	if err != nil {
		t.Fatal(err)
	}
	for day := 1; day <= 7; day++ {
		if _, err := admin.C.AddAvailabilityRule(ctx, pr.ID, appointment.Rule{ClinicID: clinic.ID, Weekday: day, StartTime: "09:00", EndTime: "12:00",
			ValidFrom: time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")}); err != nil {
			t.Fatal(err)
		}
	}
	return clinicSetup{DeptID: dept, ClinicID: clinic.ID, PractitionerID: pr.ID, Doctor: doctor, Desk: tb.newUser(t, identity.RoleReceptionist)}
}

func tomorrowAt(h, m int) time.Time {
	d := time.Now().UTC().AddDate(0, 0, 1)
	return time.Date(d.Year(), d.Month(), d.Day(), h, m, 0, 0, time.UTC)
}

func registerPatient(t *testing.T, c *client.Client, family, given string) patient.Patient {
	t.Helper()
	p, err := c.RegisterPatient(context.Background(), patient.RegisterInput{Demographics: patient.Demographics{FamilyName: family, GivenNames: given},
		ConfirmNotDuplicate: true})
	if err != nil {
		t.Fatalf("register %s: %v", family, err)
	}
	sensitive(family)
	return p
}

// Free slots follow the weekly rules, minus leave, minus booked time.
func TestSlots(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	cs := setupClinic(t, tb)
	from, to := tomorrowAt(0, 0), tomorrowAt(23, 59)
	slots, err := cs.Desk.C.Slots(ctx, cs.PractitionerID, "", from, to)
	if err != nil || len(slots) != 12 {
		t.Fatalf("slots 09:00-12:00 by 15 min: %d, %v", len(slots), err)
	}
	if !slots[0].StartsAt.Equal(tomorrowAt(9, 0)) || !slots[11].EndsAt.Equal(tomorrowAt(12, 0)) {
		t.Fatalf("first %v, last ends %v", slots[0].StartsAt, slots[11].EndsAt)
	}
	admin := tb.newUser(t, identity.RoleAdmin)
	if _, err := admin.C.AddAvailabilityException(ctx, appointment.Exception{PractitionerID: cs.PractitionerID,
		StartsAt: tomorrowAt(10, 0), EndsAt: tomorrowAt(11, 0), Reason: "Teaching"}); err != nil {
		t.Fatal(err)
	}
	p := registerPatient(t, cs.Desk.C, "Slotter", "Sam")
	if _, err := cs.Desk.C.Book(ctx, appointment.BookInput{PatientID: p.ID, PractitionerID: cs.PractitionerID, ClinicID: cs.ClinicID,
		StartsAt: tomorrowAt(9, 0)}, ""); err != nil {
		t.Fatal(err)
	}
	slots, err = cs.Desk.C.Slots(ctx, cs.PractitionerID, "", from, to)
	if err != nil || len(slots) != 7 {
		t.Fatalf("after leave 10-11 and one booking: %d slots, %v; want 7", len(slots), err)
	}
	// Booking outside the availability is refused.
	if _, err := cs.Desk.C.Book(ctx, appointment.BookInput{PatientID: p.ID, PractitionerID: cs.PractitionerID, ClinicID: cs.ClinicID,
		StartsAt: tomorrowAt(10, 15)}, ""); client.StatusOf(err) != 409 {
		t.Fatalf("booking during leave: %v, want 409", err)
	}
	if _, err := cs.Desk.C.Book(ctx, appointment.BookInput{PatientID: p.ID, PractitionerID: cs.PractitionerID, ClinicID: cs.ClinicID,
		StartsAt: tomorrowAt(14, 0)}, ""); client.StatusOf(err) != 409 {
		t.Fatalf("booking outside hours: %v, want 409", err)
	}
}

// One hundred clients book the same slot at once: exactly one succeeds,
// the others get 409, and the database holds no overlapping appointments.
func TestConcurrentBookingOfOneSlot(t *testing.T) {
	tb := startBackend(t, backendOpts{env: map[string]string{"DATABASE_MAX_CONNS": "20"}})
	ctx := context.Background()
	cs := setupClinic(t, tb)
	patients := make([]patient.Patient, 100)
	for i := range patients {
		patients[i] = registerPatient(t, cs.Desk.C, "Rush"+uuid.NewString()[:6], "Patient")
	}
	var wg sync.WaitGroup
	statuses := make(chan int, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := cs.Desk.C.Book(ctx, appointment.BookInput{PatientID: patients[i].ID, PractitionerID: cs.PractitionerID,
				ClinicID: cs.ClinicID, StartsAt: tomorrowAt(9, 30)}, "")
			if err != nil {
				statuses <- client.StatusOf(err)
				return
			}
			statuses <- 201
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[201] != 1 || count[409] != 99 {
		// Seen once in CI (all 503 after the request time-out, not
		// reproduced since): say what the backend reported.
		t.Fatalf("statuses %v; want one 201 and 99 409; the backend's warnings:\n%s", count, warnings(tb.Logs.String(), 10))
	}
	// Bookings of one practitioner take turns (migration 00017): the
	// exclusion constraint alone let concurrent inserts deadlock, each
	// broken after deadlock_timeout and retried.
	if retries, _ := sample(t, tb.Metrics, "db_transaction_retries_total", nil); retries != 0 {
		t.Errorf("%v transactions retried (deadlocks): bookings of one slot must take turns", retries)
	}
	overlaps, err := tb.backend.DB.Queries().AppointmentOverlaps(ctx)
	if err != nil || overlaps != 0 {
		t.Fatalf("overlapping appointments in the database: %d, %v", overlaps, err)
	}
	// Adjacent slots are fine.
	if _, err := cs.Desk.C.Book(ctx, appointment.BookInput{PatientID: patients[0].ID, PractitionerID: cs.PractitionerID,
		ClinicID: cs.ClinicID, StartsAt: tomorrowAt(9, 45)}, ""); err != nil {
		t.Fatalf("adjacent slot: %v", err)
	}
}

// Bookings of one slot made at the same moment take turns in the database
// (migration 00017): with the exclusion constraint alone, two transactions
// inserting overlapping appointments at once each waited for the other, a
// deadlock PostgreSQL broke only after deadlock_timeout (1 s). Eight
// connections book each of 72 slots at once, straight on PostgreSQL (no
// pool in between to spread them out): one wins each slot, the others fail
// the constraint, and none deadlocks (before the change, three runs in four
// had 7 deadlocks).
func TestBookingsOfOneSlotTakeTurns(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	cs := setupClinic(t, tb)
	const concurrent = 8
	patients := make([]patient.Patient, concurrent)
	for i := range patients {
		patients[i] = registerPatient(t, cs.Desk.C, "Turn"+uuid.NewString()[:6], "Patient")
	}
	cfg, err := pgxpool.ParseConfig(tb.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = concurrent
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// Every connection open before the first slot, so that each slot's
	// bookings start together.
	var conns []*pgxpool.Conn
	for range concurrent {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	count := map[string]int{}
	var mu sync.Mutex
	const days = 6
	for day := 1; day <= days; day++ {
		for slot := range 12 {
			starts := tomorrowAt(9, 0).AddDate(0, 0, day-1).Add(time.Duration(slot) * 15 * time.Minute)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range concurrent {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
						_, err := tx.Exec(ctx, `SELECT * FROM appointment_book($1, $2, $3, $4, NULL, 'UTC', 'test', NULL)`,
							patients[i].ID, cs.PractitionerID, cs.ClinicID, starts)
						return err
					})
					outcome := "booked"
					var pe *pgconn.PgError
					if errors.As(err, &pe) {
						outcome = pe.Code
					} else if err != nil {
						outcome = err.Error()
					}
					mu.Lock()
					count[outcome]++
					mu.Unlock()
				}()
			}
			close(start)
			wg.Wait()
		}
	}
	if slots := days * 12; count["booked"] != slots || count["23P01"] != slots*(concurrent-1) {
		t.Fatalf("outcomes %v: want %d booked and %d exclusion violations (23P01), no deadlock (40P01)", count, slots, slots*(concurrent-1))
	}
}

// A retried booking with the same Idempotency-Key creates one appointment;
// the same key with a different body is refused.
func TestBookingIdempotency(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	cs := setupClinic(t, tb)
	p := registerPatient(t, cs.Desk.C, "Retry", "Rita")
	in := appointment.BookInput{PatientID: p.ID, PractitionerID: cs.PractitionerID, ClinicID: cs.ClinicID, StartsAt: tomorrowAt(11, 0)}
	key := uuid.NewString()
	var wg sync.WaitGroup
	ids := make(chan string, 5)
	for range 5 { // retries racing each other
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := cs.Desk.C.Book(ctx, in, key)
			if err != nil {
				ids <- "error: " + err.Error()
				return
			}
			ids <- a.ID
		}()
	}
	wg.Wait()
	close(ids)
	first := ""
	for id := range ids {
		if strings.HasPrefix(id, "error") { // each retry waits for the one that booked, then gets its answer
			t.Fatal(id)
		}
		if first == "" && !strings.HasPrefix(id, "error") {
			first = id
		}
		if !strings.HasPrefix(id, "error") && id != first {
			t.Fatalf("two appointments from one key: %s and %s", first, id)
		}
	}
	a, err := cs.Desk.C.Book(ctx, in, key)
	if err != nil || a.ID != first {
		t.Fatalf("retry: %v %v", a.ID, err)
	}
	list, _ := cs.Desk.C.Appointments(ctx, client.AppointmentQuery{From: tomorrowAt(0, 0), To: tomorrowAt(23, 0), PatientID: p.ID})
	if len(list) != 1 {
		t.Fatalf("appointments for the patient: %d, want 1", len(list))
	}
	// One patient's appointments may span two years (the patient's page
	// reads the year back and the year ahead at once); a calendar, 31 days.
	now := time.Now()
	if list, err := cs.Desk.C.Appointments(ctx, client.AppointmentQuery{From: now.AddDate(-1, 0, 0), To: now.AddDate(1, 0, 0), PatientID: p.ID}); err != nil || len(list) != 1 {
		t.Errorf("a patient's two years: %d appointments, %v", len(list), err)
	}
	for name, q := range map[string]client.AppointmentQuery{
		"a patient's 732 days":            {From: now, To: now.AddDate(0, 0, 732), PatientID: p.ID},
		"a practitioner's 32 days":        {From: now, To: now.AddDate(0, 0, 32), PractitionerID: cs.PractitionerID},
		"a patient's with a practitioner": {From: now, To: now.AddDate(0, 0, 40), PatientID: p.ID, PractitionerID: cs.PractitionerID},
	} {
		if _, err := cs.Desk.C.Appointments(ctx, q); client.StatusOf(err) != http.StatusBadRequest {
			t.Errorf("%s: %v, want 400", name, err)
		}
	}
	in.StartsAt = tomorrowAt(11, 15)
	if _, err := cs.Desk.C.Book(ctx, in, key); client.StatusOf(err) != http.StatusUnprocessableEntity {
		t.Fatalf("same key, different body: %v, want 422", err)
	}
}

// Reschedule, cancel and the state machine; check-in queues the patient,
// staff call the next patient, and the board updates live over WebSocket.
func TestAppointmentLifecycleAndQueue(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := setupClinic(t, tb)
	p1 := registerPatient(t, cs.Desk.C, "Queueone", "Ann")
	p2 := registerPatient(t, cs.Desk.C, "Queuetwo", "Ben")
	a1, err := cs.Desk.C.Book(ctx, appointment.BookInput{PatientID: p1.ID, PractitionerID: cs.PractitionerID, ClinicID: cs.ClinicID,
		StartsAt: tomorrowAt(9, 0), Reason: "Chest pain follow-up"}, "")
	if err != nil {
		t.Fatal(err)
	}
	moved, err := cs.Desk.C.Reschedule(ctx, a1.ID, appointment.RescheduleInput{StartsAt: tomorrowAt(9, 15)})
	if err != nil || !moved.StartsAt.Equal(tomorrowAt(9, 15)) || moved.Version != 2 {
		t.Fatalf("reschedule: %+v %v", moved, err)
	}
	a2, err := cs.Desk.C.Book(ctx, appointment.BookInput{PatientID: p2.ID, PractitionerID: cs.PractitionerID, ClinicID: cs.ClinicID,
		StartsAt: tomorrowAt(9, 0)}, "")
	if err != nil {
		t.Fatalf("the freed slot: %v", err)
	}
	if _, err := cs.Desk.C.CancelAppointment(ctx, a2.ID, ""); client.StatusOf(err) != 400 {
		t.Fatalf("cancel without reason: %v", err)
	}
	// The queue board over WebSocket.
	ticket, err := cs.Desk.C.WSTicket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(tb.URL, "http")+"/api/v1/events?topics=queue&ticket="+ticket.Ticket, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	var hello map[string]any
	readJSON(t, ctx, conn, &hello)

	in1, err := cs.Desk.C.AppointmentCommand(ctx, a1.ID, "check-in")
	if err != nil || in1.Status != "checked_in" || in1.QueueTicket == "" {
		t.Fatalf("check-in: %+v %v", in1, err)
	}
	var e events.Event
	readJSON(t, ctx, conn, &e)
	if e.Topic != "queue" || e.Type != "queue.checked_in" || !strings.Contains(string(e.Data), cs.DeptID) ||
		strings.Contains(string(e.Data), "Queueone") {
		t.Fatalf("queue event: %+v", e)
	}
	if _, err := cs.Desk.C.AppointmentCommand(ctx, a1.ID, "check-in"); client.StatusOf(err) != 409 {
		t.Fatalf("second check-in: %v, want 409", err)
	}
	if _, err := cs.Desk.C.QueueWalkIn(ctx, cs.DeptID, p2.ID); err != nil {
		t.Fatal(err)
	}
	readJSON(t, ctx, conn, &e)
	board, err := cs.Desk.C.QueueBoard(ctx, cs.DeptID)
	if err != nil || board.Waiting != 2 || board.Entries[0].PatientName == "" {
		t.Fatalf("board: %+v %v", board, err)
	}
	// A nurse without a care relationship with these patients sees the
	// tickets, not who holds them.
	stranger := tb.newUser(t, identity.RoleNurse)
	if nb, err := stranger.C.QueueBoard(ctx, cs.DeptID); err != nil || nb.Waiting != 2 || nb.Entries[0].PatientName != "" ||
		nb.Entries[0].PatientID != "" || nb.Entries[0].Ticket == "" {
		t.Fatalf("board for a nurse outside their care: %+v %v", nb, err)
	}
	// Two desks call at once: two different patients.
	var wg sync.WaitGroup
	called := make(chan string, 2)
	names := map[string]string{p1.ID: "QUEUEONE, Ann", p2.ID: "QUEUETWO, Ben"}
	for _, desk := range []string{"Room 1", "Room 2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			entry, err := cs.Desk.C.QueueCallNext(ctx, cs.DeptID, desk)
			if err != nil {
				t.Errorf("call next: %v", err)
				return
			}
			// The desk's confirmation names whom it called.
			if entry.PatientName != names[entry.PatientID] || entry.PatientMRN == "" {
				t.Errorf("called %s named %q, MRN %q", entry.PatientID, entry.PatientName, entry.PatientMRN)
			}
			called <- entry.PatientID
		}()
	}
	wg.Wait()
	close(called)
	seen := map[string]bool{}
	for id := range called {
		seen[id] = true
	}
	if len(seen) != 2 {
		t.Fatalf("two desks called the same patient: %v", seen)
	}
	if _, err := cs.Desk.C.QueueCallNext(ctx, cs.DeptID, "Room 3"); client.StatusOf(err) != 404 {
		t.Fatalf("empty queue: %v", err)
	}
	if _, err := cs.Desk.C.AppointmentCommand(ctx, a1.ID, "complete"); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Desk.C.CancelAppointment(ctx, a1.ID, "patient asked"); client.StatusOf(err) != 409 {
		t.Fatalf("cancelling a completed visit: %v, want 409", err)
	}
	// A stale If-Match is refused.
	status, _, _ := rawWithHeader(t, "POST", tb.URL+"/api/v1/appointments/"+a1.ID+"/no-show", cs.Desk.Token, map[string]string{"If-Match": `"1"`})
	if status != 412 {
		t.Fatalf("stale If-Match on a command: %d", status)
	}
	// A nurse outside the patient's care sees the slot as busy, not the patient.
	nurse := tb.newUser(t, identity.RoleNurse)
	list, err := nurse.C.Appointments(ctx, client.AppointmentQuery{From: tomorrowAt(0, 0), To: tomorrowAt(23, 0), PractitionerID: cs.PractitionerID})
	if err != nil || len(list) == 0 {
		t.Fatalf("nurse's calendar: %v %v", list, err)
	}
	for _, a := range list {
		if a.PatientName != "" || a.PatientID != "" || a.Reason != "" {
			t.Fatalf("patient shown outside the nurse's scope: %+v", a)
		}
	}
	// The physician booked for the patient sees them.
	docList, err := cs.Doctor.C.Appointments(ctx, client.AppointmentQuery{From: tomorrowAt(0, 0), To: tomorrowAt(23, 0), PractitionerID: cs.PractitionerID})
	if err != nil || docList[0].PatientName == "" {
		t.Fatalf("physician's calendar: %+v %v", docList, err)
	}

}

// One appointment carries the names its page shows, so the page needs no
// patient read (audited separately) and no clinic or practitioner list;
// outside the caller's care it stays refused.
func TestAppointmentGetNames(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	cs := setupClinic(t, tb)
	p := registerPatient(t, cs.Desk.C, "Namedappt", "Nia")
	booked, err := cs.Desk.C.Book(ctx, appointment.BookInput{PatientID: p.ID, PractitionerID: cs.PractitionerID, ClinicID: cs.ClinicID,
		StartsAt: tomorrowAt(9, 0)}, "")
	if err != nil {
		t.Fatal(err)
	}
	if booked.PatientName != "" || booked.DepartmentID != "" {
		t.Errorf("booking answered with names: %+v", booked)
	}
	if _, err := tb.DB.Pool.Exec(ctx, "UPDATE clinics SET location = 'Level 2, room 5' WHERE id = $1", cs.ClinicID); err != nil {
		t.Fatal(err)
	}
	a, err := cs.Desk.C.Appointment(ctx, booked.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := appointment.Appointment{PatientName: "NAMEDAPPT, Nia", PatientMRN: p.MRN, PractitionerName: "Dr. Test",
		ClinicName: "Cardiology clinic", ClinicLocation: "Level 2, room 5", DepartmentID: cs.DeptID, DepartmentName: "Outpatients"}
	got := appointment.Appointment{PatientName: a.PatientName, PatientMRN: a.PatientMRN, PractitionerName: a.PractitionerName,
		ClinicName: a.ClinicName, ClinicLocation: a.ClinicLocation, DepartmentID: a.DepartmentID, DepartmentName: a.DepartmentName}
	if got != want || a.PatientID != p.ID || a.Status != appointment.StatusBooked {
		t.Fatalf("GET appointment:\n got %+v\nwant %+v", got, want)
	}
	var reads int
	if err := tb.DB.Pool.QueryRow(ctx, "SELECT count(*) FROM audit_events WHERE action = 'appointment.read' AND resource_id = $1",
		booked.ID).Scan(&reads); err != nil || reads != 1 {
		t.Fatalf("appointment reads audited: %d, %v", reads, err)
	}
	nurse := tb.newUser(t, identity.RoleNurse)
	if _, err := nurse.C.Appointment(ctx, booked.ID); client.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("nurse outside the patient's care: %v, want 403", err)
	}
}

func rawWithHeader(t *testing.T, method, url, token string, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := newRequest(method, url, token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := httpDo(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header, nil
}

// Names that are markup or spreadsheet formulas come back as the same text
// from the API and defused in CSV exports.
func TestHostileNamesInAPIAndCSV(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	cs := setupClinic(t, tb)
	hostile := []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, `=HYPERLINK("http://evil","x")`, `+SUM(A1)`}
	for i, name := range hostile {
		p, err := cs.Desk.C.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: name, GivenNames: "Test"},
			ConfirmNotDuplicate: true})
		if err != nil {
			t.Fatalf("register %q: %v", name, err)
		}
		got, err := cs.Desk.C.Patient(ctx, p.ID)
		if err != nil || got.FamilyName != name {
			t.Fatalf("read back %q: %q %v", name, got.FamilyName, err)
		}
		if _, err := cs.Desk.C.Book(ctx, appointment.BookInput{PatientID: p.ID, PractitionerID: cs.PractitionerID,
			ClinicID: cs.ClinicID, StartsAt: tomorrowAt(9, 15*i)}, ""); err != nil {
			t.Fatal(err)
		}
	}
	data, err := cs.Desk.C.AppointmentsCSV(ctx, client.AppointmentQuery{From: tomorrowAt(0, 0), To: tomorrowAt(23, 0), ClinicID: cs.ClinicID})
	if err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil || len(records) != len(hostile)+1 {
		t.Fatalf("CSV: %d records, %v", len(records), err)
	}
	names := map[string]bool{}
	for _, r := range records[1:] {
		names[r[4]] = true
	}
	for _, want := range []string{`<SCRIPT>ALERT(1)</SCRIPT>, Test`, `"><IMG SRC=X ONERROR=ALERT(1)>, Test`,
		`'=HYPERLINK("HTTP://EVIL","X"), Test`, `'+SUM(A1), Test`} {
		if !names[want] {
			t.Errorf("CSV lacks the cell %q (has %v)", want, names)
		}
	}
}

// Weekly hours are the hospital's local time: with the hospital in New York,
// 09:00-12:00 is 09:00-12:00 there, whatever UTC says, and a booking must
// fit inside them whole. The checks run in one SQL query (SlotCheck).
func TestBookingInHospitalTimeZone(t *testing.T) {
	tb := startBackend(t, backendOpts{env: map[string]string{"HOSPITAL_TIMEZONE": "America/New_York"}})
	ctx := context.Background()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no time zone database")
	}
	cs := setupClinic(t, tb)
	d := time.Now().In(ny).AddDate(0, 0, 2)
	at := func(h, m int) time.Time { return time.Date(d.Year(), d.Month(), d.Day(), h, m, 0, 0, ny) }
	slots, err := cs.Desk.C.Slots(ctx, cs.PractitionerID, "", at(0, 0), at(23, 59))
	if err != nil || len(slots) != 12 || !slots[0].StartsAt.Equal(at(9, 0)) {
		t.Fatalf("slots: %d, first %v, %v; want 12 from 09:00 New York", len(slots), slots, err)
	}
	p := registerPatient(t, cs.Desk.C, "Zoned", "Zara")
	book := func(st time.Time, ends *time.Time, practitioner string) error {
		_, err := cs.Desk.C.Book(ctx, appointment.BookInput{PatientID: p.ID, PractitionerID: practitioner, ClinicID: cs.ClinicID,
			StartsAt: st, EndsAt: ends}, "")
		return err
	}
	utcNine := time.Date(d.Year(), d.Month(), d.Day(), 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name   string
		st     time.Time
		ends   *time.Time
		pr     string
		status int
	}{
		{"09:00 UTC is before hours in New York", utcNine, nil, cs.PractitionerID, 409},
		{"the last slot, ending as the hours end", at(11, 45), nil, cs.PractitionerID, 0},
		{"a slot running past the hours", at(11, 50), nil, cs.PractitionerID, 409},
		{"two slots at once", at(9, 0), ptr(at(9, 30)), cs.PractitionerID, 0},
		{"longer than 8 hours", at(9, 30), ptr(at(18, 0)), cs.PractitionerID, 400},
		{"an unknown practitioner", at(10, 0), nil, "00000000-0000-4000-8000-000000000000", 404},
	} {
		err := book(c.st, c.ends, c.pr)
		if got := client.StatusOf(err); got != c.status && !(c.status == 0 && err == nil) {
			t.Errorf("%s: %v, want status %d", c.name, err, c.status)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// A booking is one statement; when it books nothing, the reason is looked
// up afterwards, the patient first: each refusal says what to fix and
// writes nothing. A booking puts the patient in the care of the
// practitioner's user, who could not open the record before.
func TestBookingRefusals(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	cs := setupClinic(t, tb)
	p := registerPatient(t, cs.Desk.C, "Refused", "Rhea")
	dup := registerPatient(t, cs.Desk.C, "Refused", "Rhea Dup")
	if _, err := cs.Desk.C.MergePatients(ctx, p.ID, dup.ID); err != nil {
		t.Fatal(err)
	}
	stranger := tb.newUser(t, identity.RolePhysician) // no care relationship with p
	book := func(c *client.Client, patient string) error {
		_, err := c.Book(ctx, appointment.BookInput{PatientID: patient, PractitionerID: cs.PractitionerID, ClinicID: cs.ClinicID,
			StartsAt: tomorrowAt(10, 0)}, uuid.NewString())
		return err
	}
	for _, c := range []struct {
		name    string
		by      *client.Client
		patient string
		status  int
		says    string
	}{
		{"an unknown patient", cs.Desk.C, uuid.NewString(), http.StatusNotFound, "No patient has this id"},
		{"a merged record", cs.Desk.C, dup.ID, http.StatusConflict, "merged"},
		{"a patient outside the physician's care", stranger.C, p.ID, http.StatusForbidden, "not under your care"},
	} {
		if err := book(c.by, c.patient); client.StatusOf(err) != c.status || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want %d saying %q", c.name, err, c.status, c.says)
		}
	}
	var n int
	if err := tb.DB.Pool.QueryRow(ctx, "SELECT count(*) FROM appointments WHERE starts_at = $1", tomorrowAt(10, 0)).Scan(&n); err != nil || n != 0 {
		t.Fatalf("refused bookings wrote %d appointments: %v", n, err)
	}
	if _, err := cs.Doctor.C.Patient(ctx, p.ID); client.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("the practitioner before any booking: %v, want 403", err)
	}
	if err := book(cs.Desk.C, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Doctor.C.Patient(ctx, p.ID); err != nil {
		t.Fatalf("the practitioner after the booking: %v", err)
	}
	if err := book(cs.Desk.C, p.ID); client.StatusOf(err) != http.StatusConflict || !strings.Contains(err.Error(), "already booked") {
		t.Fatalf("the same slot again: %v, want 409 already booked", err)
	}
}

// warnings returns up to n distinct warning and error lines of a JSON log,
// without their time and request id (so that repeats collapse).
func warnings(logs string, n int) string {
	seen := map[string]bool{}
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"level":"WARN"`) && !strings.Contains(line, `"level":"ERROR"`) {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		delete(m, "time")
		delete(m, "request_id")
		b, _ := json.Marshal(m)
		if k := string(b); !seen[k] && len(out) < n {
			seen[k] = true
			out = append(out, k)
		}
	}
	return strings.Join(out, "\n")
}
