package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/hospital-erp/hospital-erp/internal/identity"
)

// The booking form carries a fresh Idempotency-Key; a double submit books
// once; a slot taken meanwhile (409) brings the form back saying so, with
// the slots refreshed and the patient and reason kept.
func TestBookingIdempotencyAndSlotTaken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	page := "/appointments/book?clinic_id=" + testClinicID + "&date=" + testDay + "&view=day&patient_id=" + testPatientID
	res := e.get(page)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("booking page: %d", res.StatusCode)
	}
	q := e.api.sched.slotQuery
	if q.Get("clinic_id") != testClinicID || q.Get("from") != "2030-03-04T00:00:00Z" || q.Get("to") != "2030-03-05T00:00:00Z" {
		t.Errorf("slots asked for %v", q)
	}
	form := find(res.doc, byID("book-form"))
	v := formValues(form)
	key := v.Get("idempotency_key")
	if len(key) < 32 || v.Get("patient_id") != testPatientID || v.Get("csrf_token") == "" {
		t.Fatalf("booking form %v", v)
	}
	if !strings.Contains(text(find(res.doc, byID("chosen-patient"))), "OKONKWO, Adaeze Grace") {
		t.Error("the chosen patient is not shown")
	}
	radios := findAll(form, and(byTag("input"), byAttr("name", "slot")))
	if len(radios) != 2 || find(form, and(byTag("label"), byAttr("for", attr(radios[0], "id")))) == nil {
		t.Fatalf("%d slot radios", len(radios))
	}
	if label := text(find(form, byClass("slot__label"))); !strings.Contains(label, "09:30–09:45") {
		t.Errorf("slot label %q", label)
	}
	if again := formValues(find(e.get(page).doc, byID("book-form"))).Get("idempotency_key"); again == key {
		t.Error("two renderings of the form share an Idempotency-Key")
	}

	v.Set("slot", attr(radios[0], "value"))
	v.Set("reason", "Blood pressure review")
	res = e.post("/appointments/book", v)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/appointments/"+testNewApptID {
		t.Fatalf("book: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if got := e.api.sched.keys[len(e.api.sched.keys)-1]; got != key {
		t.Errorf("Idempotency-Key sent %q, want the form's %q", got, key)
	}
	b := e.api.sched.booked[0]
	if b.PatientID != testPatientID || b.PractitionerID != testPractitionerID || b.ClinicID != testClinicID ||
		!b.StartsAt.Equal(at(9, 30)) || b.EndsAt == nil || !b.EndsAt.Equal(at(9, 45)) || b.Reason != "Blood pressure review" {
		t.Fatalf("booked %+v", b)
	}
	if f := text(find(e.get(res.Header.Get("Location")).doc, byClass("flash"))); !strings.Contains(f, "Mon 4 Mar, 09:30 with Dr. Amara Okafor") {
		t.Errorf("flash %q", f)
	}
	// The browser sends the form twice (double click, retry): one booking.
	res = e.post("/appointments/book", v)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/appointments/"+testNewApptID || len(e.api.sched.booked) != 1 {
		t.Fatalf("double submit: %d %q, %d bookings", res.StatusCode, res.Header.Get("Location"), len(e.api.sched.booked))
	}

	// Someone else takes the slot first.
	v = formValues(find(e.get(page).doc, byID("book-form")))
	key = v.Get("idempotency_key")
	v.Set("slot", attr(radios[0], "value"))
	v.Set("reason", "Blood pressure review")
	e.api.mu.Lock()
	e.api.sched.taken = true
	e.api.mu.Unlock()
	res = e.post("/appointments/book", v)
	if res.StatusCode != http.StatusConflict {
		t.Fatalf("taken slot: %d, want 409", res.StatusCode)
	}
	if n := text(find(res.doc, byID("slot-taken"))); n != "This slot was just taken, pick another." {
		t.Errorf("slot taken notice %q", n)
	}
	if a := find(find(res.doc, byClass("error-summary")), byTag("a")); attr(a, "href") != "#slots" || !strings.Contains(text(a), "just taken") {
		t.Errorf("error summary link %q", text(a))
	}
	form = find(res.doc, byID("book-form"))
	after := formValues(form)
	if n := len(findAll(form, and(byTag("input"), byAttr("name", "slot")))); n != 1 {
		t.Errorf("%d slots after the refresh, want the 1 still free", n)
	}
	if after.Get("slot") != "" {
		t.Error("the taken slot is still selected")
	}
	if after.Get("patient_id") != testPatientID || after.Get("reason") != "Blood pressure review" {
		t.Errorf("the form lost the patient or reason: %v", after)
	}
	if k := after.Get("idempotency_key"); k == "" || k == key {
		t.Error("the form after a 409 needs a new Idempotency-Key")
	}

	// Nothing chosen: the errors point at the slots and the patient.
	res = e.post("/appointments/book", url.Values{"csrf_token": {v.Get("csrf_token")}, "idempotency_key": {"k"},
		"clinic_id": {testClinicID}, "date": {testDay}})
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("empty booking: %d", res.StatusCode)
	}
	var hrefs []string
	for _, a := range findAll(find(res.doc, byClass("error-summary")), byTag("a")) {
		hrefs = append(hrefs, attr(a, "href"))
	}
	if strings.Join(hrefs, " ") != "#slots #patient-title" {
		t.Errorf("summary links %v", hrefs)
	}
}

// Without a chosen patient the booking page searches and offers radio
// buttons.
func TestBookingPatientSearch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	res := e.get("/appointments/book?practitioner_id=" + testPractitionerID + "&date=" + testDay + "&patient_q=Okon")
	if q := e.api.patientQuery; q.Get("q") != "Okon" || q.Get("limit") != "10" {
		t.Errorf("patient search %v", q)
	}
	if q := e.api.sched.slotQuery; q.Get("practitioner_id") != testPractitionerID || q.Get("to") != "2030-03-11T00:00:00Z" {
		t.Errorf("a week of slots from Monday: %v", q)
	}
	radio := find(find(res.doc, byID("book-form")), and(byTag("input"), byAttr("name", "patient_id")))
	if attr(radio, "type") != "radio" || attr(radio, "value") != testPatientID {
		t.Fatalf("patient choice %v", radio)
	}
	// The slot picker names no practitioner when one is chosen... but the
	// clinic, as slots of several clinics may appear.
	if who := text(find(res.doc, byClass("slot__who"))); !strings.Contains(who, "General Medicine Clinic") {
		t.Errorf("slot names %q", who)
	}
}

// The calendar lays appointments out in time rows; an appointment of a
// patient outside the user's care shows as "Booked" without a patient.
func TestCalendarShowsBusyEntries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	res := e.get("/appointments?practitioner_id=" + testPractitionerID + "&date=" + testDay + "&view=day")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("calendar: %d", res.StatusCode)
	}
	q := e.api.sched.apptQueries[len(e.api.sched.apptQueries)-1]
	if q.Get("practitioner_id") != testPractitionerID || q.Get("from") != "2030-03-04T00:00:00Z" || q.Get("to") != "2030-03-05T00:00:00Z" {
		t.Errorf("calendar asked for %v", q)
	}
	rows := map[string]*html.Node{}
	for _, tr := range findAll(find(find(res.doc, byClass("calendar")), byTag("tbody")), byTag("tr")) {
		rows[text(find(tr, byTag("th")))] = tr
	}
	if len(rows) != 40 || rows["08:00"] == nil || rows["17:45"] == nil {
		t.Errorf("%d time rows, want 08:00 to 17:45 in 15 minutes", len(rows))
	}
	booked := find(rows["09:15"], byClass("appt"))
	if a := find(booked, byTag("a")); attr(a, "href") != "/appointments/"+testApptID || text(a) != "OKONKWO, Adaeze Grace" {
		t.Errorf("09:15 shows %q", text(booked))
	}
	if find(booked, and(byTag("form"), byAttr("action", "/appointments/"+testApptID+"/check-in"))) == nil {
		t.Error("no check-in button on a booked appointment")
	}
	busy := find(rows["10:00"], byClass("appt--busy"))
	if busy == nil || !strings.Contains(text(busy), "Booked") || find(busy, byTag("a")) != nil || find(busy, byTag("form")) != nil {
		t.Fatalf("busy entry %q", text(busy))
	}
	if strings.Contains(text(busy), "OKONKWO") {
		t.Error("the busy entry names a patient")
	}
	if cur := find(res.doc, and(byClass("tabs__link"), byAttr("aria-current", "page"))); text(cur) != "Day" {
		t.Errorf("current view %q", text(cur))
	}

	res = e.get("/appointments?clinic_id=" + testClinicID + "&date=" + testDay + "&view=week")
	var heads []string
	for _, th := range findAll(find(res.doc, byTag("thead")), byTag("th")) {
		heads = append(heads, text(th))
	}
	if len(heads) != 8 || heads[1] != "Mon 4 Mar" || heads[7] != "Sun 10 Mar" {
		t.Errorf("week columns %v", heads)
	}
	if q := e.api.sched.apptQueries[len(e.api.sched.apptQueries)-1]; q.Get("clinic_id") != testClinicID || q.Get("to") != "2030-03-11T00:00:00Z" {
		t.Errorf("week asked for %v", q)
	}
	if next := find(res.doc, byAttr("rel", "next")); !strings.Contains(attr(next, "href"), "date=2030-03-11") {
		t.Errorf("next week %q", attr(next, "href"))
	}

	// Nothing chosen: the page asks rather than listing the whole hospital.
	n := len(e.api.sched.apptQueries)
	res = e.get("/appointments?practitioner_id=&clinic_id=")
	if len(e.api.sched.apptQueries) != n || find(res.doc, byClass("empty")) == nil {
		t.Error("a calendar without clinician or clinic was loaded")
	}
}

// Check-in shows the queue ticket. The appointment page names patient,
// clinician and clinic from the one appointment read: no patient read
// (which the audit trail would count as a second look at the record) and
// no clinic or practitioner list.
func TestCheckInShowsTicket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	e.api.mu.Lock()
	before := len(e.api.routes)
	e.api.mu.Unlock()
	page := e.get("/appointments/" + testApptID)
	e.api.mu.Lock()
	calls := slices.Clone(e.api.routes[before:])
	e.api.mu.Unlock()
	if !slices.Equal(calls, []string{"GET /api/v1/appointments/" + testApptID}) {
		t.Errorf("the appointment page asked the backend %q, want the appointment only", calls)
	}
	rows := summaryRows(page.doc)
	if rows["Clinician"] != "Dr. Amara Okafor" || rows["Clinic"] != "General Medicine ClinicOutpatients, level 1" ||
		!strings.Contains(rows["Patient"], "OKONKWO, Adaeze Grace") || !strings.Contains(rows["Patient"], "10000017") ||
		rows["When"] != "Monday 4 March 2030, 09:15–09:30" {
		t.Errorf("appointment details %v", rows)
	}
	if a := find(page.doc, and(byTag("a"), byAttr("href", "/patients/"+testPatientID))); a == nil {
		t.Error("the patient's name does not link to the record")
	}
	form := find(page.doc, and(byTag("form"), byAttr("action", "/appointments/"+testApptID+"/check-in")))
	if form == nil || find(form, byID("action-check-in")) == nil {
		t.Fatal("no check-in button")
	}
	res := e.post(attr(form, "action"), formValues(form))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/appointments/"+testApptID+"?ticket=007" {
		t.Fatalf("check-in: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	page = e.get(res.Header.Get("Location"))
	if n := text(find(page.doc, byClass("ticket-panel__number"))); n != "007" {
		t.Errorf("ticket %q", n)
	}
	if f := text(find(page.doc, byClass("flash"))); f != "Checked in: queue ticket 007." {
		t.Errorf("flash %q", f)
	}
	if find(find(page.doc, byClass("ticket-panel")), and(byTag("a"), byAttr("href", "/queue/"+testDeptID))) == nil {
		t.Error("no link to the department's queue board")
	}
	if find(page.doc, byID("action-check-in")) != nil || find(page.doc, byID("action-complete")) == nil {
		t.Error("after check-in the actions should be complete and did not attend")
	}
	// The ticket in the URL is shown only when it looks like one.
	if p := e.get("/appointments/" + testApptID + "?ticket=%3Cb%3E"); find(p.doc, byClass("ticket-panel")) != nil {
		t.Error("an invalid ticket is shown")
	}

	// Checking in twice: the API's 409 as a message, no ticket.
	res = e.post(attr(form, "action"), formValues(form))
	if res.Header.Get("Location") != "/appointments/"+testApptID {
		t.Fatalf("second check-in: %q", res.Header.Get("Location"))
	}
	if f := find(e.get("/appointments/"+testApptID).doc, byClass("flash--error")); !strings.Contains(text(f), "cannot become") {
		t.Errorf("second check-in flash %q", text(f))
	}
	if e.api.sched.commands[0] != "check-in "+testApptID {
		t.Errorf("commands %v", e.api.sched.commands)
	}
}

// Cancelling needs a reason.
func TestAppointmentCancelNeedsReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	page := e.get("/appointments/" + testApptID)
	form := find(page.doc, and(byTag("form"), byAttr("action", "/appointments/"+testApptID+"/cancel")))
	v := formValues(form)
	res := e.post(attr(form, "action"), v)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("cancel without reason: %d", res.StatusCode)
	}
	if in := find(res.doc, byID("f-reason")); attr(in, "aria-invalid") != "true" || !strings.Contains(attr(in, "aria-describedby"), "f-reason-error") {
		t.Error("the reason is not marked")
	}
	v.Set("reason", "Patient phoned to cancel")
	if res := e.post(attr(form, "action"), v); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel: %d", res.StatusCode)
	}
	if got := e.api.sched.appts[0].Status; got != "cancelled" {
		t.Errorf("status %q", got)
	}
}

// Rescheduling lists the free slots and a 409 says the slot was taken.
func TestRescheduleSlotTaken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	res := e.get("/appointments/" + testApptID + "/reschedule")
	form := find(res.doc, and(byTag("form"), byAttr("action", "/appointments/"+testApptID+"/reschedule"), byAttr("method", "post")))
	radio := find(form, and(byTag("input"), byAttr("name", "slot")))
	if radio == nil {
		t.Fatal("no slots to move to")
	}
	if q := e.api.sched.slotQuery; q.Get("practitioner_id") != testPractitionerID || q.Get("clinic_id") != testClinicID {
		t.Errorf("slots asked for %v", q)
	}
	v := formValues(form)
	v.Set("slot", attr(radio, "value"))
	e.api.mu.Lock()
	e.api.sched.taken = true
	e.api.mu.Unlock()
	res = e.post(attr(form, "action"), v)
	if res.StatusCode != http.StatusConflict || text(find(res.doc, byID("slot-taken"))) != "This slot was just taken, pick another." {
		t.Fatalf("taken: %d", res.StatusCode)
	}
	res = e.post(attr(form, "action"), v)
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(text(find(e.get(res.Header.Get("Location")).doc, byClass("flash"))), "moved to Mon 4 Mar, 09:30") {
		t.Fatalf("move: %d", res.StatusCode)
	}
}

// The queue board lists called and waiting tickets, is live (the same
// attributes as the bed board) and calls the next patient to a room.
func TestQueueBoardAndCallNext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	list := e.get("/queue")
	if find(list.doc, and(byTag("a"), byAttr("href", "/queue/"+testDeptID))) == nil {
		t.Fatal("the department is not offered")
	}
	res := e.get("/queue/" + testDeptID)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("board: %d", res.StatusCode)
	}
	board := find(res.doc, byAttr("data-live-queue", ""))
	if attr(board, "data-department-id") != testDeptID || attr(board, "data-fragment-url") != "/queue/"+testDeptID+"?fragment=queue" {
		t.Fatalf("live board attributes %v", board.Attr)
	}
	if live := find(res.doc, byAttr("data-live-status", "")); attr(live, "aria-live") != "polite" {
		t.Error("no polite live status")
	}
	if find(res.doc, byAttr("data-live-announce", "")) == nil {
		t.Error("no live region announcing calls")
	}
	called := find(board, byAttr("aria-labelledby", "called-title"))
	waiting := find(board, byAttr("aria-labelledby", "waiting-title"))
	if !strings.Contains(text(called), "004") || !strings.Contains(text(called), "Room 2") || !strings.Contains(text(called), "SMITH, John") {
		t.Errorf("called %q", text(called))
	}
	if !strings.Contains(text(waiting), "005") || !strings.Contains(text(waiting), "OKONKWO, Adaeze Grace") {
		t.Errorf("waiting %q", text(waiting))
	}
	if find(called, and(byTag("form"), byAttr("action", "/queue-entries/"+testCalledEntryID+"/done"))) == nil ||
		find(called, and(byTag("form"), byAttr("action", "/queue-entries/"+testCalledEntryID+"/left"))) == nil {
		t.Error("no seen/left buttons")
	}

	frag := e.get("/queue/" + testDeptID + "?fragment=queue")
	if frag.StatusCode != http.StatusOK || strings.Contains(frag.body, "site-header") || !strings.Contains(frag.body, "005") {
		t.Fatalf("fragment: %d", frag.StatusCode)
	}

	call := find(res.doc, byID("call-next"))
	v := formValues(call)
	v.Set("call_point", "Room 3")
	res = e.post(attr(call, "action"), v)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/queue/"+testDeptID+"?call_point=Room+3" {
		t.Fatalf("call next: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if e.api.sched.calls[0] != "Room 3" {
		t.Errorf("call point sent %v", e.api.sched.calls)
	}
	res = e.get(res.Header.Get("Location"))
	if f := text(find(res.doc, byClass("flash"))); !strings.HasPrefix(f, "Ticket 005 called to Room 3") {
		t.Errorf("flash %q", f)
	}
	if attr(find(res.doc, byID("f-call_point")), "value") != "Room 3" {
		t.Error("the call point is not kept for the next call")
	}
	if !strings.Contains(text(find(res.doc, byAttr("aria-labelledby", "called-title"))), "005") {
		t.Error("the called ticket is not in the called list")
	}
	// Nobody left waiting.
	e.post(attr(call, "action"), v)
	if f := text(find(e.get("/queue/"+testDeptID).doc, byClass("flash--error"))); f != "Nobody is waiting in this queue." {
		t.Errorf("empty queue flash %q", f)
	}

	done := find(called, and(byTag("form"), byAttr("action", "/queue-entries/"+testCalledEntryID+"/done")))
	res = e.post(attr(done, "action"), formValues(done))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/queue/"+testDeptID || e.api.sched.finished[0] != "done "+testCalledEntryID {
		t.Fatalf("seen: %d %q %v", res.StatusCode, res.Header.Get("Location"), e.api.sched.finished)
	}

	// The waiting-room screen: big tickets, no names, no buttons, and its
	// own fragment.
	res = e.get("/queue/" + testDeptID + "?display=1")
	if body := find(res.doc, byTag("body")); attr(body, "class") != "queue-display" {
		t.Errorf("display body class %q", attr(body, "class"))
	}
	board = find(res.doc, byAttr("data-live-queue", ""))
	if attr(board, "data-fragment-url") != "/queue/"+testDeptID+"?display=1&fragment=queue" {
		t.Errorf("display fragment %q", attr(board, "data-fragment-url"))
	}
	if strings.Contains(text(find(res.doc, byID("main"))), "OKONKWO") || len(findAll(res.doc, byTag("form"))) > 1 {
		t.Error("the waiting-room screen shows names or actions")
	}
	if n := findAll(board, byClass("ticket__number")); len(n) == 0 {
		t.Error("no tickets on the display")
	}
	if frag := e.get("/queue/" + testDeptID + "?display=1&fragment=queue"); strings.Contains(frag.body, "OKONKWO") || strings.Contains(frag.body, "<form") {
		t.Error("the display fragment shows names or actions")
	}
	if res := e.get("/queue/00000000-0000-0000-0000-000000000000"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown department: %d", res.StatusCode)
	}
}

// Navigation offers appointments and the queue by permission.
func TestSchedulingNavigation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	nav := text(find(e.get("/").doc, byClass("site-nav")))
	if !strings.Contains(nav, "Appointments") || !strings.Contains(nav, "Queue") {
		t.Errorf("receptionist nav %q", nav)
	}
	e2 := newEnv(t)
	e2.api.role, e2.api.perms = identity.RolePharmacist, identity.RolePermissions[identity.RolePharmacist]
	e2.login()
	nav = text(find(e2.get("/").doc, byClass("site-nav")))
	if strings.Contains(nav, "Appointments") || strings.Contains(nav, "Queue") {
		t.Errorf("pharmacist nav %q", nav)
	}
	for _, path := range []string{"/appointments", "/appointments/book", "/queue"} {
		if res := e2.get(path); res.StatusCode != http.StatusForbidden {
			t.Errorf("pharmacist GET %s: %d", path, res.StatusCode)
		}
	}
	// Billing clerks see calendars but do not book.
	e3 := newEnv(t)
	e3.api.role, e3.api.perms = identity.RoleBillingClerk, identity.RolePermissions[identity.RoleBillingClerk]
	e3.login()
	if res := e3.get("/appointments/book"); res.StatusCode != http.StatusForbidden {
		t.Errorf("billing clerk booking page: %d", res.StatusCode)
	}
	res := e3.get("/appointments?practitioner_id=" + testPractitionerID + "&date=" + testDay)
	if find(res.doc, byClass("appt__action")) != nil || find(res.doc, and(byTag("a"), byAttr("href", "/appointments/book"))) != nil {
		t.Error("a user without appointment.write is offered check-in or booking")
	}
}
