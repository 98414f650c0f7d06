package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hospital-erp/hospital-erp/internal/admission"
	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

// signIn signs a tab in; otp, when not empty, answers the one-time code
// step (a recovery code does too).
func signIn(ctx context.Context, t *testing.T, base, username, password, otp string) {
	t.Helper()
	do(ctx, t, "sign in as "+username,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(css(`#f-username`)),
		chromedp.SendKeys(css(`#f-username`), username),
		chromedp.SendKeys(css(`#f-password`), password),
		chromedp.Click(css(`button[type=submit]`)),
	)
	if otp != "" {
		do(ctx, t, "one-time code for "+username,
			chromedp.WaitVisible(css(`#f-otp`)),
			chromedp.SendKeys(css(`#f-otp`), otp),
			chromedp.Click(css(`button[type=submit]`)),
		)
	}
	do(ctx, t, "signed in as "+username, chromedp.WaitVisible(css(`form[action="/logout"] button`)))
}

// waitBed waits until the bed's tile on the tab's board shows state,
// without the page being loaded again.
func waitBed(ctx context.Context, t *testing.T, bedID, state string) {
	t.Helper()
	js := `(function () { var b = document.getElementById('bed-` + bedID + `');
		return !!b && b.getAttribute('data-status') === '` + state + `' && window.__boardNotReloaded === true; })()`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(8*time.Second))); err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(function () { var b = document.getElementById('bed-`+bedID+`');
			return (b ? b.getAttribute('data-status') : 'missing') + ', marker ' + window.__boardNotReloaded; })()`))
		t.Fatalf("bed %s did not turn %s on the live board (it is %s): %v", bedID, state, got, err)
	}
}

// Admitting a patient in one tab turns the bed occupied on the bed board
// open in a second tab, without a reload; discharging turns it to
// cleaning there. The administrator (no patient.read) sees an occupied
// bed without a name. A nurse marks the bed clean from the housekeeping
// list and it is available again, on the live board too.
func TestBrowserBedBoardFollowsAdmissions(t *testing.T) {
	s := startStack(t)
	ctx := context.Background()
	w := setupWard(t, s.testBackend, "BT", 3)
	desk := s.newUser(t, identity.RoleReceptionist)
	nurse := s.newUser(t, identity.RoleNurse, w.WardID)
	p1 := registerPatient(t, desk.C, "Bedsidewatch", "Amelia")
	p2 := registerPatient(t, desk.C, "Hiddenname", "Boris")

	// The administrator must use MFA: enrol through the API and keep a
	// recovery code for the browser's sign-in.
	adminName := "bedboard.admin"
	if _, err := s.Identity.CreateUserAsSystem(ctx, adminName, "Ada Admin", identity.RoleAdmin, "", testPassword); err != nil {
		t.Fatal(err)
	}
	ac := client.New(s.URL, nil)
	tok, err := ac.Login(ctx, adminName, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	sensitive(tok.AccessToken, tok.RefreshToken)
	ac = ac.WithToken(tok.AccessToken)
	enrol, err := ac.EnrolMFA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sensitive(enrol.Secret)
	code, _ := identity.TOTPCode(enrol.Secret, time.Now())
	codes, err := ac.ConfirmMFA(ctx, code)
	if err != nil || len(codes.Codes) == 0 {
		t.Fatalf("confirm MFA: %v", err)
	}
	sensitive(codes.Codes...)

	// Tab 1 (the admitting desk) and tab 2 (the bed board) share the
	// browser and so the session.
	tab1 := browser(t)
	signIn(tab1, t, s.URL, desk.Name, testPassword, "")
	tab2, cancel2 := chromedp.NewContext(tab1)
	defer cancel2()
	board := s.URL + "/beds?ward_id=" + w.WardID
	do(tab2, t, "open the bed board", chromedp.Navigate(board), chromedp.WaitVisible(css(`#bed-board`)))
	if _, err := chromedp.Run(tab2, chromedp.Poll[bool](
		`document.querySelector('[data-live-status] .live__text').textContent === 'Live'`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("bed board never went live: %v", err)
	}
	// A reload would clear this; the board must change without one.
	if _, err := chromedp.Run(tab2, chromedp.Evaluate[bool](`window.__boardNotReloaded = true`)); err != nil {
		t.Fatal(err)
	}
	waitBed(tab2, t, w.Beds[0], "available")
	screenshot(tab2, t, "20-board-before")

	// Tab 1: Admit on the free bed of the board, find the patient, admit.
	do(tab1, t, "admit from the board",
		chromedp.Navigate(board),
		chromedp.WaitVisible(css(`#bed-`+w.Beds[0]+` .bed__admit`)),
		chromedp.Click(css(`#bed-`+w.Beds[0]+` .bed__admit`)),
		chromedp.WaitVisible(css(`#f-patient_q`)),
		chromedp.SendKeys(css(`#f-patient_q`), "Bedsidewatch"),
		chromedp.Click(css(`#patient-search`)),
		chromedp.WaitVisible(css(`input[name=patient_id][value="`+p1.ID+`"]`)),
		chromedp.Click(css(`input[name=patient_id][value="`+p1.ID+`"]`)),
		chromedp.Click(css(`#source-emergency`)),
		chromedp.SendKeys(css(`#f-reason`), "Chest pain, for observation"),
		chromedp.SendKeys(css(`#f-expected_days`), "2"),
	)
	if bed, err := chromedp.Run(tab1, chromedp.Value(css(`#f-bed_id`))); err != nil || bed != w.Beds[0] {
		t.Fatalf("the bed chosen on the board is not chosen in the form: %q %v", bed, err)
	}
	screenshot(tab1, t, "21-admit-form")
	do(tab1, t, "admit", chromedp.Click(css(`#admit-submit`)), chromedp.WaitVisible(css(`#admitted-banner`)))
	if banner := textOf(tab1, t, "#admitted-banner"); !strings.Contains(banner, "Ward BT") || !strings.Contains(banner, "bed BT-01") {
		t.Fatalf("admission page banner %q", banner)
	}
	screenshot(tab1, t, "22-admission")

	// Tab 2: the bed turned occupied by itself, with the patient's name
	// (a receptionist may see every patient's name).
	waitBed(tab2, t, w.Beds[0], "occupied")
	if name := textOf(tab2, t, "#bed-"+w.Beds[0]+" .bed__patient"); name != "BEDSIDEWATCH, Amelia" {
		t.Errorf("occupied bed names %q", name)
	}
	if status := textOf(tab2, t, "#bed-"+w.Beds[0]+" .bed__status"); status != "Occupied" {
		t.Errorf("occupied bed says %q", status)
	}
	screenshot(tab2, t, "23-board-occupied")

	// Tab 1: discharge.
	do(tab1, t, "discharge",
		chromedp.Click(css(`#action-discharge`)),
		chromedp.WaitVisible(css(`#f-disposition`)),
		chromedp.SetValue(css(`#f-disposition`), "home"),
		chromedp.SendKeys(css(`#f-summary`), "Troponin negative twice. Home with GP follow-up."),
		chromedp.Click(css(`#discharge-submit`)),
		chromedp.WaitVisible(css(`.flash`)),
	)
	if flash := textOf(tab1, t, ".flash"); !strings.Contains(flash, "discharged") {
		t.Fatalf("after discharge: %q", flash)
	}
	waitBed(tab2, t, w.Beds[0], "cleaning")
	if status := textOf(tab2, t, "#bed-"+w.Beds[0]+" .bed__status"); status != "Cleaning" {
		t.Errorf("discharged bed says %q", status)
	}
	screenshot(tab2, t, "24-board-cleaning")

	// The administrator sees an occupied bed, without the patient.
	if _, err := desk.C.Admit(ctx, admission.AdmitInput{PatientID: p2.ID, BedID: w.Beds[1], Source: "direct", Reason: "Elective"}, ""); err != nil {
		t.Fatal(err)
	}
	admin, cancelAdmin := chromedp.NewContext(tab1, chromedp.WithNewBrowserContext())
	defer cancelAdmin()
	signIn(admin, t, s.URL, adminName, testPassword, codes.Codes[0])
	do(admin, t, "administrator's board", chromedp.Navigate(board), chromedp.WaitVisible(css(`#bed-`+w.Beds[1])))
	shown, err := chromedp.Run(admin, chromedp.Evaluate[string](`(function () { var b = document.getElementById('bed-`+w.Beds[1]+`');
		return b.getAttribute('data-status') + '|' + (b.querySelector('.bed__patient') ? 'name' : 'no name') + '|' +
			(document.body.textContent.indexOf('HIDDENNAME') >= 0 ? 'leak' : 'ok'); })()`))
	if err != nil || shown != "occupied|no name|ok" {
		t.Fatalf("administrator's occupied bed: %q %v", shown, err)
	}
	screenshot(admin, t, "25-board-administrator")

	// The ward's nurse marks the discharged bed clean: it is available,
	// in the database and on tab 2's live board.
	nurseTab, cancelNurse := chromedp.NewContext(tab1, chromedp.WithNewBrowserContext())
	defer cancelNurse()
	signIn(nurseTab, t, s.URL, nurse.Name, testPassword, "")
	do(nurseTab, t, "housekeeping list",
		chromedp.Navigate(s.URL+"/housekeeping?ward_id="+w.WardID),
		chromedp.WaitVisible(css(`#clean-`+w.Beds[0])),
	)
	screenshot(nurseTab, t, "26-housekeeping")
	do(nurseTab, t, "mark clean", chromedp.Click(css(`#clean-`+w.Beds[0])), chromedp.WaitVisible(css(`.flash`)))
	if flash := textOf(nurseTab, t, ".flash"); flash != "Bed BT-01 is clean and available." {
		t.Fatalf("after marking clean: %q", flash)
	}
	if gone, err := chromedp.Run(nurseTab, chromedp.Evaluate[bool](`document.getElementById('cleaning-`+w.Beds[0]+`') === null`)); err != nil || !gone {
		t.Errorf("the bed is still on the cleaning list: %v", err)
	}
	if st := bedStatus(t, s.testBackend, w.Beds[0]); st != "available" {
		t.Fatalf("bed after cleaning: %s", st)
	}
	waitBed(tab2, t, w.Beds[0], "available")
	if admit := textOf(tab2, t, "#bed-"+w.Beds[0]+" .bed__admit"); !strings.HasPrefix(admit, "Admit") {
		t.Errorf("the clean bed offers %q", admit)
	}
	screenshot(tab2, t, "27-board-available")
}

// In a hospital with more free beds than one list holds, the admission
// form asks for the ward first, in a real browser: the ward's button posts
// the admission form, and the page comes back with that ward's free beds
// and the patient ticked and the reason typed before it; the admission
// then goes through with a bed of that ward.
func TestBrowserAdmitChoosesTheWardFirst(t *testing.T) {
	s := startStack(t)
	// 402 free beds, more than a page lists (400, internal/web's boardBedLimit).
	setupWard(t, s.testBackend, "BW", 400)
	small := setupWard(t, s.testBackend, "BX", 2)
	desk := s.newUser(t, identity.RoleReceptionist)
	p := registerPatient(t, desk.C, "Wardfirst", "Greta")

	tab := browser(t)
	signIn(tab, t, s.URL, desk.Name, testPassword, "")
	do(tab, t, "open the admission form", chromedp.Navigate(s.URL+"/admissions/new?patient_q=Wardfirst"),
		chromedp.WaitVisible(css(`#f-bed_id-ward`)))
	if n, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll('#admit-form option').length`)); err != nil || n > 50 {
		t.Fatalf("the admission form lists %d options before a ward is chosen (%v)", n, err)
	}
	screenshot(tab, t, "27-admit-choose-ward")
	do(tab, t, "tick the patient, type the reason, choose the ward",
		chromedp.Click(css(`input[name=patient_id][value="`+p.ID+`"]`)),
		chromedp.SendKeys(css(`#f-reason`), "Elective hernia repair"),
		chromedp.SetValue(css(`#f-bed_id-ward`), small.WardID),
		chromedp.Click(css(`#f-bed_id-ward-show`)),
		chromedp.WaitReady(css(`#f-bed_id option[value="`+small.Beds[1]+`"]`)),
	)
	kept, err := chromedp.Run(tab, chromedp.Evaluate[string](
		`document.querySelector('input[name=patient_id]:checked').value + '|' + document.querySelector('#f-reason').value`))
	if err != nil || kept != p.ID+"|Elective hernia repair" {
		t.Fatalf("after choosing the ward the form keeps %q (%v), want the patient and the reason", kept, err)
	}
	do(tab, t, "fill in the admission",
		chromedp.SetValue(css(`#f-bed_id`), small.Beds[1]),
		chromedp.Click(css(`#source-direct`)),
	)
	screenshot(tab, t, "28-admit-ward-chosen")
	do(tab, t, "admit", chromedp.Click(css(`#admit-submit`)), chromedp.WaitVisible(css(`#admitted-banner`)))
	if banner := textOf(tab, t, "#admitted-banner"); !strings.Contains(banner, "Ward BX") || !strings.Contains(banner, "bed BX-02") {
		t.Fatalf("admission page banner %q", banner)
	}
	if st := bedStatus(t, s.testBackend, small.Beds[1]); st != "occupied" {
		t.Errorf("bed BX-02 is %s", st)
	}
}
