package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/hospital-erp/hospital-erp/internal/appointment"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
)

// A receptionist registers a patient who nearly matches an existing record
// (the duplicate warning with its score, then "none of these"), books a
// free slot (the same form sent three times makes one appointment), checks
// the patient in, and calls the ticket; a nurse's queue board in another
// tab, signed in separately, shows the call without reloading.
func TestBrowserRegisterBookCheckInAndLiveQueue(t *testing.T) {
	s := startStack(t)
	bg := context.Background()
	cs := setupClinic(t, s.testBackend)
	existing, err := cs.Desk.C.RegisterPatient(bg, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Kowalski",
		GivenNames: "Łukasz", BirthDate: "1988-09-01"}})
	if err != nil {
		t.Fatal(err)
	}
	sensitive("Kowalski", "Kowalsky")
	nurse := s.newUser(t, identity.RoleNurse)
	desk := browser(t)
	signIn(desk, t, s.URL, cs.Desk.Name, testPassword, "")

	// 1. Registration: the near match is shown with its score, the typed
	// values are kept, and confirming registers a second record.
	do(desk, t, "register a near match",
		chromedp.Navigate(s.URL+"/patients/new"),
		chromedp.WaitVisible(css(`#f-family_name`)),
		chromedp.SendKeys(css(`#f-family_name`), "Kowalsky"),
		chromedp.SendKeys(css(`#f-given_names`), "Lukasz"),
		chromedp.SetValue(css(`#f-birth_date`), "1988-09-01"),
	)
	if status := submit(desk, t, `#patient-form button[type=submit]`); status != 409 {
		t.Fatalf("registering a near match answered %d, want 409 with the warning", status)
	}
	screenshot(desk, t, "20-duplicate-warning")
	var score int
	if text := textOf(desk, t, "#duplicates .duplicate__score"); !scanPercent(text, &score) || score < int(patient.DuplicateThreshold*100) || score > 100 {
		t.Fatalf("duplicate score %q, want %d%% to 100%%", text, int(patient.DuplicateThreshold*100))
	}
	if n := evaluate[int](desk, t, `document.querySelectorAll('#duplicates .duplicate').length`); n != 1 {
		t.Fatalf("%d candidates listed, want the one existing record", n)
	}
	if name := textOf(desk, t, "#duplicates .duplicate__name"); !strings.Contains(name, "KOWALSKI, Łukasz") {
		t.Fatalf("candidate shown as %q", name)
	}
	if href := attr(desk, t, "#duplicates .duplicate__name a", "href"); href != "/patients/"+existing.ID {
		t.Fatalf("candidate links to %q, want the existing record", href)
	}
	if kept := evaluate[string](desk, t, `document.getElementById('f-family_name').value`); kept != "Kowalsky" {
		t.Fatalf("the form lost the typed family name: %q", kept)
	}
	submit(desk, t, `#confirm-not-duplicate`)
	if flash, heading := textOf(desk, t, ".flash--success"), textOf(desk, t, "h1"); !strings.Contains(flash, "MRN") || !strings.Contains(heading, "KOWALSKY, Lukasz") {
		t.Fatalf("after confirming: flash %q, heading %q", flash, heading)
	}
	patientID := pathID(desk, t, "/patients/")
	if patientID == existing.ID {
		t.Fatal("confirming opened the existing record instead of registering a new one")
	}
	var records int
	if err := s.DB.Pool.QueryRow(bg, "SELECT count(*) FROM patients WHERE family_name IN ('Kowalski', 'Kowalsky')").Scan(&records); err != nil || records != 2 {
		t.Fatalf("%d records after confirming, want 2 (%v)", records, err)
	}

	// 2. Booking: pick the first free slot of the week and book. Then the
	// very same form (same Idempotency-Key) goes twice more at once, as a
	// double click or a browser retry would send it: every answer is the
	// same appointment, and the database holds one.
	do(desk, t, "open booking",
		chromedp.Navigate(fmt.Sprintf("%s/appointments/book?clinic_id=%s&view=week&patient_id=%s", s.URL, cs.ClinicID, patientID)),
		chromedp.WaitVisible(css(`#book-form input[name=slot]`)),
	)
	if chosen := textOf(desk, t, "#chosen-patient"); !strings.Contains(chosen, "KOWALSKY, Lukasz") {
		t.Fatalf("booking for %q", chosen)
	}
	do(desk, t, "pick a slot", chromedp.Click(css(`#book-form input[name=slot]`)))
	form := evaluate[string](desk, t, `new URLSearchParams(new FormData(document.getElementById('book-form'))).toString()`)
	if v, err := url.ParseQuery(form); err != nil || v.Get("idempotency_key") == "" || v.Get("slot") == "" || v.Get("patient_id") != patientID {
		t.Fatalf("booking form sends %q (%v)", form, err)
	}
	screenshot(desk, t, "21-book")
	submit(desk, t, `#book-submit`)
	apptID := pathID(desk, t, "/appointments/")
	if flash := textOf(desk, t, ".flash--success"); !strings.Contains(flash, "Appointment booked") || !strings.Contains(flash, "Dr. Test") {
		t.Fatalf("after booking: %q", flash)
	}
	if status := textOf(desk, t, ".appt-status"); status != "Booked" {
		t.Fatalf("appointment status %q, want Booked", status)
	}
	if details := textOf(desk, t, "#appt-title + .summary"); !strings.Contains(details, "KOWALSKY, Lukasz") || !strings.Contains(details, "Dr. Test") {
		t.Fatalf("appointment details: %q", details)
	}
	formJS, _ := json.Marshal(form)
	again := evaluate[[]string](desk, t, `Promise.all([1, 2].map(() => fetch('/appointments/book', {method: 'POST',
		credentials: 'same-origin', body: new URLSearchParams(`+string(formJS)+`)}).then(r => r.status + ' ' + new URL(r.url).pathname)))`,
		chromedp.EvalAwaitPromise)
	if len(again) != 2 {
		t.Fatalf("resubmissions: %q", again)
	}
	for _, got := range again {
		if got != "200 /appointments/"+apptID {
			t.Errorf("the same form sent again ended at %q, want the booked appointment /appointments/%s", got, apptID)
		}
	}
	var appts int
	if err := s.DB.Pool.QueryRow(bg, "SELECT count(*) FROM appointments WHERE patient_id = $1", patientID).Scan(&appts); err != nil || appts != 1 {
		t.Fatalf("%d appointments after three submissions of one form, want 1 (%v)", appts, err)
	}

	// 3. Check-in gives a queue ticket.
	do(desk, t, "check in",
		chromedp.Navigate(s.URL+"/appointments/"+apptID),
		chromedp.WaitVisible(css(`#action-check-in`)),
	)
	submit(desk, t, `#action-check-in`)
	ticket := strings.TrimSpace(textOf(desk, t, ".ticket-panel__number"))
	if !regexp.MustCompile(`^[0-9A-Za-z-]{1,12}$`).MatchString(ticket) {
		t.Fatalf("ticket %q", ticket)
	}
	if status := textOf(desk, t, ".appt-status"); status != "Checked in" {
		t.Fatalf("status after check-in %q", status)
	}
	if href := attr(desk, t, ".ticket-panel a", "href"); href != "/queue/"+cs.DeptID {
		t.Fatalf("the ticket panel links to %q, want the clinic department's queue", href)
	}
	screenshot(desk, t, "22-checked-in")

	// 4. A nurse opens the department's board in a second tab (own
	// cookies): the ticket waits, nobody is called yet.
	board := secondTab(desk, t)
	signIn(board, t, s.URL, nurse.Name, testPassword, "")
	do(board, t, "open the queue board",
		chromedp.Navigate(s.URL+"/queue/"+cs.DeptID),
		chromedp.WaitVisible(css(`#queue-board[data-live-queue]`)),
	)
	if _, err := chromedp.Run(board, chromedp.Poll[bool](
		`document.querySelector('[data-live-status] .live__text').textContent === 'Live'`,
		chromedp.WithPollingTimeout(10*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("queue board never went live: %v", err)
	}
	if waiting := textOf(board, t, `#queue-board [aria-labelledby="waiting-title"]`); !strings.Contains(waiting, ticket) {
		t.Fatalf("ticket %s not waiting on the board: %q", ticket, waiting)
	}
	if called := textOf(board, t, `#queue-board [aria-labelledby="called-title"]`); strings.Contains(called, ticket) {
		t.Fatalf("ticket %s called before anyone called it: %q", ticket, called)
	}
	evaluate[bool](board, t, `window.stillTheSamePage = true`)

	do(desk, t, "call the next patient",
		chromedp.Navigate(s.URL+"/queue/"+cs.DeptID),
		chromedp.WaitVisible(css(`#f-call_point`)),
		chromedp.SendKeys(css(`#f-call_point`), "Room 3"),
	)
	submit(desk, t, `#call-next-button`)
	if flash := textOf(desk, t, ".flash--success"); !strings.Contains(flash, "Ticket "+ticket+" called to Room 3 (KOWALSKY, Lukasz)") {
		t.Fatalf("call-next confirmation: %q", flash)
	}
	// The nurse's board shows it with no reload: a navigation would end
	// the poll with an error and drop the page's marker.
	calledJS, _ := json.Marshal(ticket)
	if _, err := chromedp.Run(board, chromedp.Poll[bool](
		`(() => { const s = document.querySelector('#queue-board [aria-labelledby="called-title"]');
			return !!s && s.textContent.includes(`+string(calledJS)+`) && s.textContent.includes('Room 3'); })()`,
		chromedp.WithPollingTimeout(5*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("the second tab's board did not show ticket %s called: %v", ticket, err)
	}
	if !evaluate[bool](board, t, `window.stillTheSamePage === true`) {
		t.Fatal("the board reloaded instead of updating in place")
	}
	if n := strings.TrimSpace(textOf(board, t, `#queue-board [data-waiting-count]`)); n != "0" {
		t.Fatalf("waiting count %q after the only patient was called", n)
	}
	screenshot(board, t, "23-board-called")
}

// hostileNames are names that are markup: they must show as text on every
// page and never become elements.
var hostileNames = []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`}

// Patients whose names are markup appear as that text on the registration
// page (and its duplicate warning), the record, the search results, the
// booking page, the calendar, the appointment and the live queue board; no
// page gains an element from a name and no JavaScript dialog opens.
func TestBrowserHostileNamesStayText(t *testing.T) {
	s := startStack(t)
	bg := context.Background()
	cs := setupClinic(t, s.testBackend)
	sensitive(hostileNames...)
	ctx := browser(t)
	dialogs := watchDialogs(ctx, t)
	signIn(ctx, t, s.URL, cs.Desk.Name, testPassword, "")

	// The watch sees a dialog when there is one: a probe run from
	// DevTools (which the page's CSP does not govern).
	do(ctx, t, "probe dialog", chromedp.Evaluate[chromedp.Void](`setTimeout(() => alert('probe'), 0)`))
	deadline := time.Now().Add(5 * time.Second)
	for len(dialogs()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if seen := dialogs(); !slices.Equal(seen, []string{"probe"}) {
		t.Fatalf("the dialog watch saw %q for the probe", seen)
	}
	probes := len(dialogs())

	// check asserts that the current page shows every name in names as
	// text and has no element or handler a name could have made.
	check := func(where string, names ...string) {
		t.Helper()
		text := textOf(ctx, t, "main")
		for _, n := range names {
			if !strings.Contains(text, n) {
				t.Errorf("%s: the name %q is not shown as text", where, n)
			}
		}
		noInjectedMarkup(ctx, t, where)
	}

	ids := make([]string, len(hostileNames))
	for i, name := range hostileNames {
		ids[i] = registerInBrowser(ctx, t, s, name, name, fmt.Sprintf("197%d-0%d-0%d", i, i+1, i+1))
		check("patient page", name, strings.ToUpper(name))
		if h := textOf(ctx, t, "h1"); h != strings.ToUpper(name)+", "+name {
			t.Errorf("heading %q", h)
		}
	}

	// Registering the first again shows the duplicate warning naming it,
	// and the form gives the typed name back in its fields.
	do(ctx, t, "register the first name again",
		chromedp.Navigate(s.URL+"/patients/new"),
		chromedp.WaitVisible(css(`#f-family_name`)),
		chromedp.SendKeys(css(`#f-family_name`), hostileNames[0]),
		chromedp.SendKeys(css(`#f-given_names`), hostileNames[0]),
		chromedp.SetValue(css(`#f-birth_date`), "1970-01-01"),
	)
	if status := submit(ctx, t, `#patient-form button[type=submit]`); status != 409 {
		t.Fatalf("registering the same patient again answered %d, want 409 with the warning", status)
	}
	check("duplicate warning", hostileNames[0])
	if v := evaluate[string](ctx, t, `document.getElementById('f-given_names').value`); v != hostileNames[0] {
		t.Errorf("the form gives back %q", v)
	}

	for i, name := range hostileNames {
		do(ctx, t, "search",
			chromedp.Navigate(s.URL+"/patients"),
			chromedp.WaitVisible(css(`#f-q`)),
			chromedp.SendKeys(css(`#f-q`), name),
		)
		submit(ctx, t, `form.search--patients button[type=submit]`)
		check("search results", name)
		if v := evaluate[string](ctx, t, `document.getElementById('f-q').value`); v != name {
			t.Errorf("the search box gives back %q", v)
		}
		if href := evaluate[string](ctx, t, `(document.querySelector('main table tbody a') || {}).pathname || ''`); href != "/patients/"+ids[i] {
			t.Errorf("search for %q: first result links to %q", name, href)
		}
	}

	day := tomorrowAt(0, 0)
	var appts []string
	for i, id := range ids {
		a, err := cs.Desk.C.Book(bg, appointment.BookInput{PatientID: id, PractitionerID: cs.PractitionerID, ClinicID: cs.ClinicID,
			StartsAt: tomorrowAt(9, 15*i)}, "")
		if err != nil {
			t.Fatal(err)
		}
		appts = append(appts, a.ID)
	}
	do(ctx, t, "calendar",
		chromedp.Navigate(fmt.Sprintf("%s/appointments?view=day&date=%s&clinic_id=%s", s.URL, day.Format("2006-01-02"), cs.ClinicID)),
		chromedp.WaitVisible(css(`table.calendar`)),
	)
	check("calendar", hostileNames...)
	do(ctx, t, "appointment", chromedp.Navigate(s.URL+"/appointments/"+appts[1]), chromedp.WaitVisible(css(`#appt-title`)))
	check("appointment", hostileNames[1])
	do(ctx, t, "booking page",
		chromedp.Navigate(fmt.Sprintf("%s/appointments/book?clinic_id=%s&patient_id=%s", s.URL, cs.ClinicID, ids[1])),
		chromedp.WaitVisible(css(`#chosen-patient`)),
	)
	check("booking page", hostileNames[1])

	// The queue board swaps in server-rendered fragments: the names
	// arrive through that path while the page stays open.
	do(ctx, t, "queue board", chromedp.Navigate(s.URL+"/queue/"+cs.DeptID), chromedp.WaitVisible(css(`#queue-board[data-live-queue]`)))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`document.querySelector('[data-live-status] .live__text').textContent === 'Live'`,
		chromedp.WithPollingTimeout(10*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("queue board never went live: %v", err)
	}
	for _, id := range ids {
		if _, err := cs.Desk.C.QueueWalkIn(bg, cs.DeptID, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`document.querySelectorAll('#queue-board [aria-labelledby="waiting-title"] .queue-entry').length === 2`,
		chromedp.WithPollingTimeout(5*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("the walk-ins never reached the open board: %v", err)
	}
	check("live queue board", hostileNames...)
	screenshot(ctx, t, "30-hostile-queue")

	if seen := dialogs(); len(seen) != probes {
		t.Fatalf("JavaScript dialogs opened: %q", seen[probes:])
	}
}

// submit clicks the button sel and waits for the page it leads to (after
// redirects), returning that page's HTTP status. Waiting for the new
// document, not for an element, keeps the old page from answering.
func submit(ctx context.Context, t *testing.T, sel string) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(css(sel)))
	if err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
	return resp.Status
}

// secondTab opens another tab of the browser with cookies of its own (a
// new browser context), as a colleague at another desk would have.
func secondTab(ctx context.Context, t *testing.T) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open a second tab: %v", err)
	}
	return tab
}

// registerInBrowser registers a patient through the form, confirming the
// duplicate warning if one comes, and returns the new record's id.
func registerInBrowser(ctx context.Context, t *testing.T, s *stack, family, given, birthDate string) string {
	t.Helper()
	do(ctx, t, "register "+family,
		chromedp.Navigate(s.URL+"/patients/new"),
		chromedp.WaitVisible(css(`#f-family_name`)),
		chromedp.SendKeys(css(`#f-family_name`), family),
		chromedp.SendKeys(css(`#f-given_names`), given),
		chromedp.SetValue(css(`#f-birth_date`), birthDate),
	)
	if submit(ctx, t, `#patient-form button[type=submit]`) == 409 {
		submit(ctx, t, `#confirm-not-duplicate`)
	}
	if flash := textOf(ctx, t, ".flash--success"); !strings.Contains(flash, "MRN") {
		t.Fatalf("registered, the page says %q", flash)
	}
	return pathID(ctx, t, "/patients/")
}

// watchDialogs records the message of every JavaScript dialog (alert,
// confirm, prompt) the tab opens, and dismisses it so that the page does
// not hang; the func returns those seen so far.
func watchDialogs(ctx context.Context, t *testing.T) func() []string {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	events := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			mu.Lock()
			seen = append(seen, ev.Message)
			mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// noInjectedMarkup fails the test when the page holds an element or an
// event handler that only a name turned into markup could have made. The
// dialog watch alone would not notice: the CSP blocks inline script and
// handlers, so an escaping mistake shows up here, not as an alert.
func noInjectedMarkup(ctx context.Context, t *testing.T, where string) {
	t.Helper()
	found := evaluate[[]string](ctx, t, `(() => {
		const bad = [];
		for (const s of document.querySelectorAll('script')) {
			if (!s.src) bad.push('inline script: ' + s.textContent.slice(0, 40));
		}
		for (const img of document.querySelectorAll('img')) {
			if ((img.getAttribute('src') || '').toLowerCase() === 'x') bad.push('img src=x');
		}
		for (const el of document.querySelectorAll('*')) {
			for (const a of el.attributes) {
				if (a.name.toLowerCase().startsWith('on')) bad.push(a.name + ' on ' + el.tagName);
			}
		}
		return bad;
	})()`)
	if len(found) > 0 {
		t.Errorf("%s: markup from a name: %q", where, found)
	}
}

// evaluate runs a JavaScript expression on the tab of ctx.
func evaluate[T any](ctx context.Context, t *testing.T, expr string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		t.Fatalf("evaluate %.60q: %v", expr, err)
	}
	return v
}

// attr is the value of an attribute of the first element sel matches.
func attr(ctx context.Context, t *testing.T, sel, name string) string {
	t.Helper()
	a, err := chromedp.Run(ctx, chromedp.AttributeValue(css(sel), name))
	if err != nil || !a.Exists {
		t.Fatalf("attribute %s of %s: %+v %v", name, sel, a, err)
	}
	return a.Value
}

// pathID is the id after prefix in the tab's current URL path.
func pathID(ctx context.Context, t *testing.T, prefix string) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(u.Path, prefix) || strings.Contains(strings.TrimPrefix(u.Path, prefix), "/") {
		t.Fatalf("at %s, want a page under %s", loc, prefix)
	}
	return strings.TrimPrefix(u.Path, prefix)
}

// scanPercent reads "87% match".
func scanPercent(s string, n *int) bool {
	_, err := fmt.Sscanf(strings.TrimSpace(s), "%d%% match", n)
	return err == nil
}
