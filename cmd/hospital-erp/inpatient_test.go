package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/admission"
	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/events"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/testenv"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

// wardSetup is a ward with one room of beds, all available.
type wardSetup struct {
	WardID string
	Beds   []string // ids, in code order
}

// setupWard creates a department (once per database), a ward with code
// and n available beds.
func setupWard(t *testing.T, tb *testBackend, code string, n int) wardSetup {
	t.Helper()
	ctx := context.Background()
	q := tb.DB.Pool
	var dept string
	if err := q.QueryRow(ctx, `INSERT INTO departments (code, name, kind) VALUES ('IPD', 'Inpatients', 'clinical')
		ON CONFLICT (code) DO UPDATE SET name = excluded.name RETURNING id`).Scan(&dept); err != nil {
		t.Fatal(err)
	}
	var w wardSetup
	if err := q.QueryRow(ctx, "INSERT INTO wards (department_id, code, name) VALUES ($1, $2, $3) RETURNING id",
		dept, code, "Ward "+code).Scan(&w.WardID); err != nil {
		t.Fatal(err)
	}
	var room string
	if err := q.QueryRow(ctx, "INSERT INTO rooms (ward_id, code) VALUES ($1, $2) RETURNING id", w.WardID, code+"-R1").Scan(&room); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		var bed string
		if err := q.QueryRow(ctx, "INSERT INTO beds (room_id, code) VALUES ($1, $2) RETURNING id", room, fmt.Sprintf("%s-%02d", code, i+1)).Scan(&bed); err != nil {
			t.Fatal(err)
		}
		w.Beds = append(w.Beds, bed)
	}
	return w
}

func bedStatus(t *testing.T, tb *testBackend, bed string) string {
	t.Helper()
	var s string
	if err := tb.DB.Pool.QueryRow(context.Background(), "SELECT status FROM beds WHERE id = $1", bed).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func admit(c *client.Client, patientID, bedID string) (admission.Admission, error) {
	return c.Admit(context.Background(), admission.AdmitInput{PatientID: patientID, BedID: bedID, Source: "emergency", Reason: "Chest pain"}, "")
}

// Of many concurrent admissions to one bed exactly one succeeds; of one
// patient admitted concurrently to many beds exactly one succeeds. The
// losers get 409, and the database holds one admission each afterwards.
func TestConcurrentAdmissions(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	w := setupWard(t, tb, "CA", 8)
	desk := tb.newUser(t, identity.RoleReceptionist)
	const n = 8

	patients := make([]string, n)
	for i := range patients {
		patients[i] = registerPatient(t, desk.C, fmt.Sprintf("Bedrace%d", i), "Test").ID
	}
	race := func(k int, f func(i int) error) (ok, conflict int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		start := make(chan struct{})
		for i := range k {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := f(i)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case client.StatusOf(err) == http.StatusConflict:
					conflict++
				default:
					t.Errorf("admission %d: %v", i, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		return ok, conflict
	}

	// n patients, one bed.
	ok, conflict := race(n, func(i int) error { _, err := admit(desk.C, patients[i], w.Beds[0]); return err })
	if ok != 1 || conflict != n-1 {
		t.Fatalf("same bed: %d admitted, %d refused; want 1 and %d", ok, conflict, n-1)
	}
	var active int
	if err := tb.DB.Pool.QueryRow(context.Background(),
		"SELECT count(*) FROM admissions WHERE bed_id = $1 AND status = 'active'", w.Beds[0]).Scan(&active); err != nil {
		t.Fatal(err)
	}
	if active != 1 || bedStatus(t, tb, w.Beds[0]) != "occupied" {
		t.Fatalf("same bed: %d active admissions, bed %s", active, bedStatus(t, tb, w.Beds[0]))
	}

	// One patient (not the one admitted above), n-1 beds.
	var free string
	if err := tb.DB.Pool.QueryRow(context.Background(),
		"SELECT id FROM patients WHERE id = ANY($1::uuid[]) AND id NOT IN (SELECT patient_id FROM admissions) LIMIT 1", patients).Scan(&free); err != nil {
		t.Fatal(err)
	}
	ok, conflict = race(n-1, func(i int) error { _, err := admit(desk.C, free, w.Beds[i+1]); return err })
	if ok != 1 || conflict != n-2 {
		t.Fatalf("same patient: %d admitted, %d refused; want 1 and %d", ok, conflict, n-2)
	}
	if err := tb.DB.Pool.QueryRow(context.Background(),
		"SELECT count(*) FROM admissions WHERE patient_id = $1 AND status = 'active'", free).Scan(&active); err != nil {
		t.Fatal(err)
	}
	var occupied int
	if err := tb.DB.Pool.QueryRow(context.Background(),
		"SELECT count(*) FROM beds WHERE id = ANY($1::uuid[]) AND status = 'occupied'", w.Beds[1:]).Scan(&occupied); err != nil {
		t.Fatal(err)
	}
	if active != 1 || occupied != 1 {
		t.Fatalf("same patient: %d active admissions, %d beds occupied; want 1 and 1", active, occupied)
	}
}

// Admission, transfer, discharge and cancel follow the state machine; the
// illegal ones are refused with 409 and a message a clerk understands;
// beds follow; every change is a row of the admission's history.
func TestAdmissionTransitions(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	w := setupWard(t, tb, "TR", 4)
	other := setupWard(t, tb, "TS", 1)
	desk := tb.newUser(t, identity.RoleReceptionist)
	nurse := tb.newUser(t, identity.RoleNurse, w.WardID)
	p1 := registerPatient(t, desk.C, "Transit", "Anna")
	p2 := registerPatient(t, desk.C, "Transit", "Ben")

	// Bad input is a 400 naming the fields.
	_, err := desk.C.Admit(ctx, admission.AdmitInput{PatientID: "x", BedID: w.Beds[0], Source: "walk"}, "")
	var apiErr *client.Error
	if client.StatusOf(err) != http.StatusBadRequest || !asErr(err, &apiErr) || apiErr.Errors["source"] == "" || apiErr.Errors["reason"] == "" {
		t.Fatalf("bad admission: %v", err)
	}
	a1, err := admit(desk.C, p1.ID, w.Beds[0])
	if err != nil {
		t.Fatal(err)
	}
	if a1.Status != "active" || a1.WardID != w.WardID || bedStatus(t, tb, w.Beds[0]) != "occupied" {
		t.Fatalf("admitted: %+v, bed %s", a1, bedStatus(t, tb, w.Beds[0]))
	}
	// The same patient again: 409.
	if _, err := admit(desk.C, p1.ID, w.Beds[1]); client.StatusOf(err) != http.StatusConflict || !strings.Contains(err.Error(), "already admitted") {
		t.Fatalf("second admission of a patient: %v", err)
	}
	a2, err := admit(desk.C, p2.ID, w.Beds[1])
	if err != nil {
		t.Fatal(err)
	}
	// Transfer to an occupied bed: 409, nothing changes.
	if _, err := nurse.C.Transfer(ctx, a1.ID, 0, admission.TransferInput{BedID: w.Beds[1]}, ""); client.StatusOf(err) != http.StatusConflict {
		t.Fatalf("transfer to an occupied bed: %v", err)
	}
	// The ward's nurse sees the patient (admission gave the ward care) and moves them.
	a1, err = nurse.C.Transfer(ctx, a1.ID, a1.Version, admission.TransferInput{BedID: w.Beds[2]}, "")
	if err != nil {
		t.Fatal(err)
	}
	if bedStatus(t, tb, w.Beds[0]) != "cleaning" || bedStatus(t, tb, w.Beds[2]) != "occupied" || a1.BedID != w.Beds[2] {
		t.Fatalf("after transfer: old bed %s, new bed %s", bedStatus(t, tb, w.Beds[0]), bedStatus(t, tb, w.Beds[2]))
	}
	// The history names who did what: the acting user travels with each
	// transaction's BEGIN (hospital.actor_id), read by the history trigger.
	var admittedBy, movedBy string
	if err := tb.DB.Pool.QueryRow(ctx, `SELECT max(actor_id::text) FILTER (WHERE event = 'admitted'), max(actor_id::text) FILTER (WHERE event = 'transferred')
		FROM admission_events WHERE admission_id = $1`, a1.ID).Scan(&admittedBy, &movedBy); err != nil || admittedBy != desk.ID || movedBy != nurse.ID {
		t.Fatalf("history actors: admitted by %q, moved by %q (want %s, %s): %v", admittedBy, movedBy, desk.ID, nurse.ID, err)
	}
	// A stale version is refused.
	if _, err := nurse.C.Transfer(ctx, a1.ID, a1.Version-1, admission.TransferInput{BedID: w.Beds[3]}, ""); client.StatusOf(err) != http.StatusPreconditionFailed {
		t.Fatalf("stale transfer: %v", err)
	}
	// Admission to a bed being cleaned: 409.
	p3 := registerPatient(t, desk.C, "Transit", "Cleo")
	if _, err := admit(desk.C, p3.ID, w.Beds[0]); client.StatusOf(err) != http.StatusConflict || !strings.Contains(err.Error(), "not available") {
		t.Fatalf("admission to a bed in cleaning: %v", err)
	}
	// Housekeeping cannot "clean" an occupied bed or one that is available.
	if _, err := nurse.C.BedAction(ctx, w.Beds[2], "clean"); client.StatusOf(err) != http.StatusConflict {
		t.Fatalf("clean an occupied bed: %v", err)
	}
	if _, err := nurse.C.BedAction(ctx, w.Beds[3], "clean"); client.StatusOf(err) != http.StatusConflict {
		t.Fatalf("clean an available bed: %v", err)
	}
	if b, err := nurse.C.BedAction(ctx, w.Beds[0], "clean"); err != nil || b.Status != "available" {
		t.Fatalf("clean: %+v %v", b, err)
	}
	if _, err := admit(desk.C, p3.ID, w.Beds[0]); err != nil {
		t.Fatalf("admission after cleaning: %v", err)
	}

	// Transfer to another ward moves the care relationship.
	a2, err = desk.C.Transfer(ctx, a2.ID, 0, admission.TransferInput{BedID: other.Beds[0]}, "")
	if err != nil {
		t.Fatal(err)
	}
	if a2.WardID != other.WardID {
		t.Fatalf("transfer to another ward: %+v", a2)
	}
	if _, err := nurse.C.Admission(ctx, a2.ID); client.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("nurse of the old ward reads the transferred admission: %v", err)
	}

	// Discharge; a second discharge is "not admitted".
	discharge := admission.DischargeInput{Disposition: "home", Summary: "Recovered."}
	a1, err = nurse.C.Discharge(ctx, a1.ID, a1.Version, discharge, "discharge-form-1")
	if err != nil {
		t.Fatal(err)
	}
	// A double submit of the form (same key, same version) gets the first
	// answer, not "changed by someone else".
	if again, err := nurse.C.Discharge(ctx, a1.ID, a1.Version-1, discharge, "discharge-form-1"); err != nil || again.Status != "discharged" {
		t.Fatalf("discharge repeated with its key: %+v %v", again, err)
	}
	if a1.Status != "discharged" || bedStatus(t, tb, w.Beds[2]) != "cleaning" {
		t.Fatalf("discharged: %+v, bed %s", a1, bedStatus(t, tb, w.Beds[2]))
	}
	// (the ward's nurse has no care relationship any more: 403 for her.)
	if _, err := nurse.C.Discharge(ctx, a1.ID, 0, admission.DischargeInput{Disposition: "home"}, ""); client.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("discharge by a nurse whose ward no longer cares for the patient: %v", err)
	}
	if _, err := desk.C.Discharge(ctx, a1.ID, 0, admission.DischargeInput{Disposition: "home"}, ""); client.StatusOf(err) != http.StatusConflict ||
		!strings.Contains(err.Error(), "not admitted") {
		t.Fatalf("second discharge: %v", err)
	}
	if _, err := desk.C.Transfer(ctx, a1.ID, 0, admission.TransferInput{BedID: w.Beds[3]}, ""); client.StatusOf(err) != http.StatusConflict {
		t.Fatalf("transfer after discharge: %v", err)
	}
	if _, err := desk.C.Discharge(ctx, a2.ID, 0, admission.DischargeInput{Disposition: "elsewhere"}, ""); client.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("unknown disposition: %v", err)
	}
	// Cancel (entered in error): the bed is available again, not cleaning.
	a2, err = desk.C.CancelAdmission(ctx, a2.ID, 0, admission.CancelInput{Reason: "Wrong patient"}, "")
	if err != nil || a2.Status != "cancelled" || bedStatus(t, tb, other.Beds[0]) != "available" {
		t.Fatalf("cancel: %+v %v, bed %s", a2, err, bedStatus(t, tb, other.Beds[0]))
	}

	// The history has a row per change, with who made it.
	full, err := desk.C.Admission(ctx, a1.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range full.History {
		got = append(got, e.Event)
		if e.ActorName == "" {
			t.Errorf("history row %s has no actor", e.Event)
		}
	}
	if strings.Join(got, ",") != "admitted,transferred,discharged" || full.PatientName == "" || full.WardName == "" {
		t.Fatalf("history = %v, admission %+v", got, full)
	}
	// The history names the beds and wards: TR-01 to TR-03, then out.
	if h := full.History; h[0].ToBedCode != "TR-01" || h[0].ToWardName != "Ward TR" || h[1].FromBedCode != "TR-01" ||
		h[1].ToBedCode != "TR-03" || h[2].FromBedCode != "TR-03" || h[2].FromWardName != "Ward TR" || h[2].ToBedCode != "" {
		t.Errorf("history beds: %+v", h)
	}
	list, err := desk.C.PatientAdmissions(ctx, p2.ID)
	if err != nil || len(list) != 1 || list[0].Status != "cancelled" {
		t.Fatalf("patient admissions: %+v %v", list, err)
	}

	// The invariants hold in the database itself, for the application's role.
	db := tb.DB.Pool
	for what, sql := range map[string]string{
		"bed occupied by hand":         "UPDATE beds SET status = 'occupied' WHERE id = '" + w.Beds[3] + "'",
		"occupied bed freed by hand":   "UPDATE beds SET status = 'available' WHERE id = '" + w.Beds[0] + "'",
		"admission to an occupied bed": "INSERT INTO admissions (patient_id, bed_id, ward_id, source, reason) VALUES ('" + p1.ID + "', '" + w.Beds[0] + "', '" + w.WardID + "', 'direct', 'x')",
		"history rewritten":            "UPDATE admission_events SET event = 'cancelled'",
		"ended admission reopened":     "UPDATE admissions SET status = 'active', ended_at = NULL, disposition = NULL WHERE id = '" + a1.ID + "'",
	} {
		if _, err := db.Exec(ctx, sql); err == nil {
			t.Errorf("%s: the database allowed it", what)
		}
	}
}

func asErr(err error, target **client.Error) bool {
	e, ok := err.(*client.Error)
	if ok {
		*target = e
	}
	return ok
}

// A transfer made through instance A reaches a bed-board WebSocket client
// of instance B within a second; a client that reconnects gets what it
// missed, and the board read through B is the current state. Names show
// only to users allowed to see the patient.
func TestBedBoardLiveAcrossInstances(t *testing.T) {
	a := startBackend(t, backendOpts{})
	redisAddr, _ := testenv.SharedRedis(t)
	b := startBackend(t, backendOpts{dbURL: a.DBURL, adminURL: a.AdminURL, keys: a.Keys, redisURL: "redis://" + redisAddr})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := setupWard(t, a, "LV", 3)
	other := setupWard(t, a, "LW", 1)
	desk := a.newUser(t, identity.RoleReceptionist)
	nurse := a.newUser(t, identity.RoleNurse, w.WardID)
	otherNurse := a.newUser(t, identity.RoleNurse, other.WardID)
	admin := a.newUser(t, identity.RoleAdmin)
	p := registerPatient(t, desk.C, "Boardman", "Live")
	adm, err := admit(desk.C, p.ID, w.Beds[0])
	if err != nil {
		t.Fatal(err)
	}

	ticket, err := nurse.C.WSTicket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.URL, "http")+"/api/v1/events?topics=beds&ticket="+ticket.Ticket, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	var hello map[string]any
	readJSON(t, ctx, conn, &hello)

	start := time.Now()
	if _, err := desk.C.Transfer(ctx, adm.ID, 0, admission.TransferInput{BedID: w.Beds[1]}, ""); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{} // bed -> status
	var lastID string
	for len(seen) < 2 {
		rctx, rcancel := context.WithDeadline(ctx, start.Add(time.Second))
		var e events.Event
		_, data, err := conn.Read(rctx)
		rcancel()
		if err != nil {
			t.Fatalf("bed events within a second of the transfer: got %v, then %v", seen, err)
		}
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatal(err)
		}
		var be ward.BedEvent
		if err := json.Unmarshal(e.Data, &be); err != nil {
			t.Fatal(err)
		}
		if e.Topic != "beds" || be.WardID != w.WardID || strings.Contains(string(e.Data), "Boardman") {
			t.Fatalf("event %+v", e)
		}
		seen[be.BedID] = be.Status
		lastID = e.ID
	}
	t.Logf("transfer reached instance B's client in %v", time.Since(start))
	if seen[w.Beds[0]] != "cleaning" || seen[w.Beds[1]] != "occupied" {
		t.Fatalf("events %v", seen)
	}
	conn.Close(websocket.StatusNormalClosure, "")

	// Changes while disconnected: discharge and clean.
	if _, err := desk.C.Discharge(ctx, adm.ID, 0, admission.DischargeInput{Disposition: "home"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := nurse.C.BedAction(ctx, w.Beds[0], "clean"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let instance B receive them from Redis
	ticket, _ = nurse.C.WSTicket(ctx)
	conn2, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.URL, "http")+"/api/v1/events?topics=beds&since="+lastID+"&ticket="+ticket.Ticket, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.CloseNow()
	readJSON(t, ctx, conn2, &hello)
	var missed []string
	for range 2 {
		var e events.Event
		readJSON(t, ctx, conn2, &e)
		missed = append(missed, e.Type)
	}
	if strings.Join(missed, ",") != "bed.cleaning,bed.available" {
		t.Fatalf("replayed after reconnect: %v", missed)
	}
	// The board through B is the current state.
	bb := client.New(b.URL, nil).WithToken(nurse.Token)
	board, err := bb.BedBoard(ctx, client.BoardQuery{WardID: w.WardID})
	if err != nil {
		t.Fatal(err)
	}
	if len(board.Wards) != 1 || board.Wards[0].Counts.Available != 2 || board.Wards[0].Counts.Cleaning != 1 || board.Wards[0].Beds[1].Status != "cleaning" {
		t.Fatalf("board after reconnect: %+v", board)
	}

	// Names: the ward's nurse sees her patient, another ward's nurse and
	// the administrator (no patient.read) see an occupied bed only.
	p2 := registerPatient(t, desk.C, "Nameshown", "Only")
	if _, err := admit(desk.C, p2.ID, w.Beds[2]); err != nil {
		t.Fatal(err)
	}
	name := func(c *client.Client) string {
		board, err := c.BedBoard(ctx, client.BoardQuery{Status: "occupied"})
		if err != nil {
			t.Fatal(err)
		}
		for _, wd := range board.Wards {
			for _, bed := range wd.Beds {
				if bed.ID == w.Beds[2] {
					if bed.Status != "occupied" {
						t.Fatalf("bed %+v", bed)
					}
					if bed.Patient == nil {
						return ""
					}
					return bed.Patient.Name
				}
			}
		}
		t.Fatal("bed missing from the occupied list")
		return ""
	}
	if got := name(nurse.C); got != "NAMESHOWN, Only" {
		t.Errorf("ward nurse sees %q", got)
	}
	if got := name(otherNurse.C); got != "" {
		t.Errorf("other ward's nurse sees %q", got)
	}
	if got := name(admin.C); got != "" {
		t.Errorf("administrator sees %q", got)
	}
	// Occupancy gauge per ward.
	if got := counterValue(t, a.Metrics, "ward_occupancy_ratio", "LV"); got < 0.33 || got > 0.34 {
		t.Errorf("ward_occupancy_ratio{ward=LV} = %v, want 1/3", got)
	}
}

// The board's limit (max_beds): over it, every ward's counts and no bed;
// at or under it, the beds. A state filter lists that state's beds and
// limits by their number, while the counts stay of every bed.
func TestBedBoardLimit(t *testing.T) {
	a := startBackend(t, backendOpts{})
	ctx := context.Background()
	w := setupWard(t, a, "LM", 3)
	setupWard(t, a, "LN", 1)
	desk := a.newUser(t, identity.RoleReceptionist)
	if _, err := admit(desk.C, registerPatient(t, desk.C, "Limitman", "Board").ID, w.Beds[0]); err != nil {
		t.Fatal(err)
	}
	board := func(q client.BoardQuery) ward.Board {
		t.Helper()
		b, err := desk.C.BedBoard(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	listed := func(b ward.Board) (n int) {
		for _, wd := range b.Wards {
			n += len(wd.Beds)
		}
		return n
	}
	full := board(client.BoardQuery{})
	if full.BedsOmitted || listed(full) != 4 || full.Totals.Total != 4 || full.Totals.Occupied != 1 || len(full.Wards) != 2 {
		t.Fatalf("full board: %d beds listed, totals %+v", listed(full), full.Totals)
	}
	over := board(client.BoardQuery{MaxBeds: 3})
	if !over.BedsOmitted || listed(over) != 0 || over.Totals != full.Totals || len(over.Wards) != 2 ||
		over.Wards[0].Counts != full.Wards[0].Counts || over.Wards[1].Counts != full.Wards[1].Counts {
		t.Errorf("over the limit: omitted %v, %d listed, %+v", over.BedsOmitted, listed(over), over)
	}
	if at := board(client.BoardQuery{MaxBeds: 4}); at.BedsOmitted || listed(at) != 4 {
		t.Errorf("at the limit: omitted %v, %d listed", at.BedsOmitted, listed(at))
	}
	free := board(client.BoardQuery{Status: "available", MaxBeds: 3})
	if free.BedsOmitted || listed(free) != 3 || free.Totals != full.Totals {
		t.Errorf("three free beds under a limit of 3: omitted %v, %d listed, totals %+v", free.BedsOmitted, listed(free), free.Totals)
	}
	for _, wd := range free.Wards {
		for _, b := range wd.Beds {
			if b.Status != "available" {
				t.Errorf("bed %s (%s) in the free list", b.Code, b.Status)
			}
		}
	}
	if b := board(client.BoardQuery{Status: "available", MaxBeds: 2}); !b.BedsOmitted || listed(b) != 0 {
		t.Errorf("three free beds over a limit of 2: omitted %v", b.BedsOmitted)
	}
	if b := board(client.BoardQuery{WardID: w.WardID, MaxBeds: 3}); b.BedsOmitted || listed(b) != 3 || b.Totals.Total != 3 {
		t.Errorf("one ward's 3 beds: omitted %v, %d listed", b.BedsOmitted, listed(b))
	}
	for _, bad := range []string{"-1", "x", "1.5"} {
		var out ward.Board
		_, err := desk.C.Do(ctx, http.MethodGet, "/api/v1/bed-board?max_beds="+bad, nil, &out)
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Errors["max_beds"] == "" {
			t.Errorf("max_beds=%s: %v", bad, err)
		}
	}
}

// Census numbers equal direct SQL counts over the test data: admissions
// and discharges of past days (written straight into the database), one
// today through the API, a transfer that counts for both wards.
func TestCensus(t *testing.T) {
	tb := startBackend(t, backendOpts{env: map[string]string{"HOSPITAL_TIMEZONE": "Europe/London"}})
	ctx := context.Background()
	w := setupWard(t, tb, "CN", 6)
	w2 := setupWard(t, tb, "CO", 2)
	desk := tb.newUser(t, identity.RoleReceptionist)
	su := openAdmin(t, tb)
	loc, _ := time.LoadLocation("Europe/London")
	now := time.Now().In(loc)
	day := func(back int) time.Time {
		d := now.AddDate(0, 0, -back)
		return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc)
	}
	// Past stays: admitted back days ago at 10:00, discharged after stay days at 15:00.
	past := []struct{ back, stay int }{{6, 2}, {6, 1}, {5, 3}, {4, 0}, {3, 1}}
	for i, s := range past {
		pt := registerPatient(t, desk.C, fmt.Sprintf("Census%d", i), "Past")
		in := day(s.back).Add(10 * time.Hour)
		out := day(s.back - s.stay).Add(15 * time.Hour)
		var id string
		if err := su.QueryRow(ctx, `INSERT INTO admissions (patient_id, bed_id, ward_id, source, reason, admitted_at)
			VALUES ($1, $2, $3, 'direct', 'Past', $4) RETURNING id`, pt.ID, w.Beds[i], w.WardID, in).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if _, err := su.Exec(ctx, `UPDATE admissions SET status = 'discharged', disposition = 'home', ended_at = $2 WHERE id = $1`, id, out); err != nil {
			t.Fatal(err)
		}
		if _, err := su.Exec(ctx, `UPDATE beds SET status = 'available' WHERE id = $1`, w.Beds[i]); err != nil {
			t.Fatal(err)
		}
	}
	// Today: one admission that stays, one transferred to the other ward.
	stay := registerPatient(t, desk.C, "Census", "Stays")
	if _, err := admit(desk.C, stay.ID, w.Beds[0]); err != nil {
		t.Fatal(err)
	}
	moved := registerPatient(t, desk.C, "Census", "Moves")
	m, err := admit(desk.C, moved.ID, w.Beds[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := desk.C.Transfer(ctx, m.ID, 0, admission.TransferInput{BedID: w2.Beds[0]}, ""); err != nil {
		t.Fatal(err)
	}

	from := day(7).Format(time.DateOnly)
	c, err := desk.C.Census(ctx, ward.CensusFilter{From: from})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Wards) != 2 || len(c.Wards[0].Days) != 8 || c.TimeZone != "Europe/London" {
		t.Fatalf("census shape: %d wards, from %s to %s", len(c.Wards), c.From, c.To)
	}
	byCode := map[string]ward.CensusWard{}
	for _, cw := range c.Wards {
		byCode[cw.Code] = cw
	}
	// Direct SQL, per local day, over the admissions table (no stays).
	type counts struct{ adm, dis, census int }
	want := map[string]counts{}
	rows, err := su.Query(ctx, `
		SELECT d::date::text,
		  (SELECT count(*) FROM admissions a WHERE (a.admitted_at AT TIME ZONE 'Europe/London')::date = d::date AND a.status <> 'cancelled'
		     AND a.patient_id IN (SELECT id FROM patients WHERE family_name LIKE 'Census%')),
		  (SELECT count(*) FROM admissions a WHERE a.status = 'discharged' AND (a.ended_at AT TIME ZONE 'Europe/London')::date = d::date),
		  (SELECT count(*) FROM admissions a WHERE a.status <> 'cancelled' AND (a.admitted_at AT TIME ZONE 'Europe/London')::date <= d::date
		     AND (a.ended_at IS NULL OR (a.ended_at AT TIME ZONE 'Europe/London')::date > d::date))
		FROM generate_series($1::date, $2::date, '1 day') d`, from, c.To)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var d string
		var k counts
		if err := rows.Scan(&d, &k.adm, &k.dis, &k.census); err != nil {
			t.Fatal(err)
		}
		want[d] = k
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	for _, d := range c.Hospital.Days {
		k := want[d.Day]
		if d.Admissions != k.adm || d.Discharges != k.dis || d.Census != k.census {
			t.Errorf("%s: census says %d admitted, %d discharged, %d present; SQL says %d, %d, %d",
				d.Day, d.Admissions, d.Discharges, d.Census, k.adm, k.dis, k.census)
		}
	}
	if c.Hospital.Admissions != 7 || c.Hospital.Discharges != 5 || c.Hospital.Census != 2 {
		t.Errorf("hospital totals: %+v", c.Hospital)
	}
	// The transfer: admitted to CN today, present on CO at the end.
	if byCode["CN"].Census != 1 || byCode["CO"].Census != 1 || byCode["CO"].Admissions != 0 || byCode["CN"].Admissions != 7 {
		t.Errorf("wards: CN %+v, CO %+v", byCode["CN"].Days[7], byCode["CO"].Days[7])
	}
	// Average length of stay: (2+1+3+0+1 days, each plus 5 hours) / 5.
	if los := byCode["CN"].AverageLengthOfStay; los < 1.60 || los > 1.62 {
		t.Errorf("average length of stay = %v, want 7/5 + 5/24 ≈ 1.61", los)
	}
	if occ := byCode["CN"].Days[1].Occupancy; occ <= 0 || occ > 1 {
		t.Errorf("occupancy %v", occ)
	}

	// The CSV has the same numbers.
	data, err := desk.C.CensusCSV(ctx, ward.CensusFilter{From: from})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+3*8 || recs[0][0] != "day" {
		t.Fatalf("CSV has %d rows", len(recs))
	}
	admitted := 0
	for _, r := range recs[1:] {
		if r[1] == "ALL" {
			var n int
			fmt.Sscan(r[4], &n)
			admitted += n
		}
	}
	if admitted != 7 {
		t.Errorf("CSV hospital admissions = %d, want 7", admitted)
	}
	// Bad periods are clear errors.
	for _, f := range []ward.CensusFilter{{From: "2026-13-01"}, {From: day(0).AddDate(0, 0, 3).Format(time.DateOnly)},
		{From: "2020-01-01", To: "2022-01-01"}, {From: from, To: day(8).Format(time.DateOnly)}} {
		if _, err := desk.C.Census(ctx, f); client.StatusOf(err) != http.StatusBadRequest {
			t.Errorf("census %+v: %v, want 400", f, err)
		}
	}
}

// An admission is one statement; when it admits nothing, the reason is
// looked up afterwards: each refusal says what to fix and leaves the bed
// as it was. The admitting clinician gets the patient in their care.
func TestAdmissionRefusals(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	w := setupWard(t, tb, "RF", 1)
	desk := tb.newUser(t, identity.RoleReceptionist)
	doctor := tb.newUser(t, identity.RolePhysician)
	p := registerPatient(t, desk.C, "Refused", "Ada")
	dup := registerPatient(t, desk.C, "Refused", "Ada Dup")
	if _, err := desk.C.MergePatients(ctx, p.ID, dup.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, patient, bed string
		status             int
		says               string
	}{
		{"an unknown patient", uuid.NewString(), w.Beds[0], http.StatusNotFound, "No patient has this id"},
		{"a merged record", dup.ID, w.Beds[0], http.StatusConflict, "merged"},
		{"an unknown bed", p.ID, uuid.NewString(), http.StatusNotFound, "No bed has this id"},
	} {
		_, err := admit(desk.C, c.patient, c.bed)
		if client.StatusOf(err) != c.status || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want %d saying %q", c.name, err, c.status, c.says)
		}
	}
	if st := bedStatus(t, tb, w.Beds[0]); st != "available" {
		t.Fatalf("refused admissions left the bed %s", st)
	}
	if _, err := doctor.C.Patient(ctx, p.ID); client.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("the clinician before admitting: %v, want 403", err)
	}
	if _, err := desk.C.Admit(ctx, admission.AdmitInput{PatientID: p.ID, BedID: w.Beds[0], Source: "emergency", Reason: "Fall",
		AdmittingUserID: doctor.ID}, uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	if _, err := doctor.C.Patient(ctx, p.ID); err != nil {
		t.Fatalf("the admitting clinician: %v", err)
	}
}

// Event streams are bounded (EVENT_STREAMS_PER_USER, EVENT_STREAMS): a
// user's stream beyond their bound is refused with 429, any stream beyond
// the process's with 503, and a closed stream frees its place. Each holds
// about 75 KB; unbounded, one signed-in user could open streams until the
// backend ran out of memory.
func TestEventStreamsAreBounded(t *testing.T) {
	tb := startBackend(t, backendOpts{env: map[string]string{"EVENT_STREAMS_PER_USER": "2", "EVENT_STREAMS": "3"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := setupWard(t, tb, "ES", 1)
	a := tb.newUser(t, identity.RoleNurse, w.WardID)
	b := tb.newUser(t, identity.RoleNurse, w.WardID)
	open := func(u account) (*websocket.Conn, int) {
		t.Helper()
		ticket, err := u.C.WSTicket(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conn, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(tb.URL, "http")+"/api/v1/events?topics=beds&ticket="+ticket.Ticket, nil)
		if err != nil {
			if res == nil {
				t.Fatal(err)
			}
			return nil, res.StatusCode
		}
		var hello map[string]any
		readJSON(t, ctx, conn, &hello)
		return conn, http.StatusSwitchingProtocols
	}
	a1, _ := open(a)
	a2, _ := open(a)
	if _, st := open(a); st != http.StatusTooManyRequests {
		t.Errorf("a user's third stream: %d, want 429", st)
	}
	b1, st := open(b)
	if st != http.StatusSwitchingProtocols {
		t.Fatalf("another user's first stream: %d", st)
	}
	if _, st := open(b); st != http.StatusServiceUnavailable {
		t.Errorf("a fourth stream in all: %d, want 503", st)
	}
	a1.Close(websocket.StatusNormalClosure, "")
	// The server sees the close and frees the place.
	var again *websocket.Conn
	for deadline := time.Now().Add(5 * time.Second); again == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, st := open(b); st == http.StatusSwitchingProtocols {
			again = c
		}
	}
	if again == nil {
		t.Fatal("a closed stream's place was not freed")
	}
	for _, c := range []*websocket.Conn{a2, b1, again} {
		c.CloseNow()
	}
}
