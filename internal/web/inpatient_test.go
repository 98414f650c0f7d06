package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/hospital-erp/hospital-erp/internal/identity"
)

// parseFragment parses a fragment app.js swaps in.
func parseFragment(t *testing.T, body string) *html.Node {
	t.Helper()
	nodes, err := html.ParseFragment(strings.NewReader(body), &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div})
	if err != nil {
		t.Fatal(err)
	}
	root := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	for _, n := range nodes {
		root.AppendChild(n)
	}
	return root
}

func asRole(e *env, role string) {
	e.api.mu.Lock()
	e.api.role, e.api.perms = role, identity.RolePermissions[role]
	e.api.mu.Unlock()
}

// The bed board shows every ward's beds with their state in colour and
// in words, counts per ward, the patient only where the API names them,
// Admit on free beds; it is live (fragment, status line) and /wards
// still leads to it.
func TestBedBoard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	if res := e.get("/wards"); res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/beds" {
		t.Fatalf("/wards: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res := e.get("/beds")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("board: %d", res.StatusCode)
	}
	board := find(res.doc, byAttr("data-live-beds", ""))
	if attr(board, "data-fragment-url") != "/beds?fragment=board" || attr(board, "data-ward-id") != "" {
		t.Fatalf("live board %q %q", attr(board, "data-fragment-url"), attr(board, "data-ward-id"))
	}
	if live := find(res.doc, byAttr("data-live-status", "")); attr(live, "aria-live") != "polite" || attr(live, "role") != "status" {
		t.Error("no polite live status line")
	}
	if find(res.doc, byAttr("data-live-announce", "")) == nil {
		t.Error("no live region for bed changes")
	}
	// Counts per ward: occupied, free, cleaning.
	rows := findAll(find(board, byTag("tbody")), byTag("tr"))
	if len(rows) != 2 {
		t.Fatalf("%d ward rows", len(rows))
	}
	var cells []string
	for _, td := range findAll(rows[0], byTag("td"))[:3] {
		cells = append(cells, text(td))
	}
	if strings.Join(cells, " ") != "1 1 1" || !strings.Contains(text(rows[0]), "Ward 1") {
		t.Errorf("ward 1 occupied/free/cleaning %v", cells)
	}
	if got := text(find(find(res.doc, byID("ward-"+testWard2ID)), byClass("ward-counts"))); !strings.Contains(got, "0 occupied 2 free 0 cleaning") {
		t.Errorf("ward 2 counts %q", got)
	}
	tiles := findAll(board, byClass("bed"))
	if len(tiles) != 6 {
		t.Fatalf("%d bed tiles", len(tiles))
	}
	for _, b := range tiles {
		st := attr(b, "data-status")
		if label := text(find(b, byClass("bed__status"))); label == "" || label != bedStatusLabel(st) || !strings.Contains(attr(b, "class"), "bed--"+st) {
			t.Errorf("bed %s: state %q shown as %q (colour alone?)", attr(b, "id"), st, label)
		}
	}
	occupied := find(board, byID("bed-b2"))
	if name := find(occupied, byClass("bed__patient")); text(name) != "OKONKWO, Adaeze Grace" ||
		attr(find(name, byTag("a")), "href") != "/admissions/"+testAdmissionID {
		t.Errorf("occupied bed: %q", text(occupied))
	}
	if stay := text(find(occupied, byClass("bed__stay"))); stay != "day 3 of 5" {
		t.Errorf("stay %q", stay)
	}
	if a := find(find(board, byID("bed-b1")), byClass("bed__admit")); attr(a, "href") != "/admissions/new?bed_id=b1&ward_id="+testWardID {
		t.Errorf("free bed's Admit link %q", attr(a, "href"))
	}
	if find(find(board, byID("bed-b3")), byClass("bed__admit")) != nil {
		t.Error("a bed being cleaned offers Admit")
	}

	// The fragment is the board alone.
	frag := e.get("/beds?fragment=board")
	if frag.StatusCode != http.StatusOK || frag.Header.Get("Cache-Control") != "no-store" || strings.Contains(frag.body, "<html") {
		t.Fatalf("fragment: %d", frag.StatusCode)
	}
	if n := len(findAll(parseFragment(t, frag.body), byClass("bed"))); n != 6 {
		t.Errorf("fragment has %d beds", n)
	}

	// One ward; one state (the counts still cover every bed).
	res = e.get("/beds?ward_id=" + testWard2ID)
	if h := text(find(res.doc, byTag("h1"))); h != "Ward 2 – Surgery: bed board" || len(findAll(res.doc, byClass("bed"))) != 2 {
		t.Errorf("ward 2 board: %q, %d beds", h, len(findAll(res.doc, byClass("bed"))))
	}
	if b := find(res.doc, byAttr("data-live-beds", "")); attr(b, "data-ward-id") != testWard2ID ||
		attr(b, "data-fragment-url") != "/beds?ward_id="+testWard2ID+"&fragment=board" {
		t.Errorf("ward board's live attributes %q %q", attr(b, "data-ward-id"), attr(b, "data-fragment-url"))
	}
	res = e.get("/beds?status=cleaning")
	if tiles := findAll(res.doc, byClass("bed")); len(tiles) != 1 || attr(tiles[0], "id") != "bed-b3" {
		t.Errorf("cleaning filter: %d beds", len(tiles))
	}
	if got := text(find(res.doc, byClass("stats"))); !strings.Contains(got, "6 Total beds") {
		t.Errorf("filtered totals %q", got)
	}
	res = e.get("/beds?ward_id=" + testDeptID)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/beds" {
		t.Errorf("unknown ward: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
}

// A hospital with more beds than a page lists (bedLimit) is shown a ward
// at a time: the board shows the wards' counts, each linking to its
// board; the admission and transfer forms ask for the ward, then list its
// free beds; housekeeping asks for a ward for a list too long.
func TestLargeHospitalAsksForAWard(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(s *Server) { s.bedLimit = 1 })
	e.login()
	res := e.get("/beds")
	if res.StatusCode != http.StatusOK || find(res.doc, byID("choose-ward")) == nil || len(findAll(res.doc, byClass("bed"))) != 0 {
		t.Fatalf("whole board: %d, %d tiles, notice %v", res.StatusCode, len(findAll(res.doc, byClass("bed"))), find(res.doc, byID("choose-ward")) != nil)
	}
	if got := text(find(res.doc, byID("choose-ward"))); !strings.Contains(got, "6 beds in 2 wards") {
		t.Errorf("notice %q", got)
	}
	if e.api.inpt.boardReads[len(e.api.inpt.boardReads)-1].Get("max_beds") != "1" {
		t.Errorf("the board was read without a limit: %v", e.api.inpt.boardReads)
	}
	rows := findAll(find(res.doc, byTag("tbody")), byTag("tr"))
	if len(rows) != 2 || attr(find(rows[1], byTag("a")), "href") != "/beds?ward_id="+testWard2ID {
		t.Fatalf("ward rows %d, link %q", len(rows), attr(find(rows[len(rows)-1], byTag("a")), "href"))
	}
	if res := e.get("/beds?status=cleaning"); len(findAll(res.doc, byClass("bed"))) != 1 || find(res.doc, byID("choose-ward")) != nil {
		t.Errorf("one bed cleaning, under the limit: %d tiles", len(findAll(res.doc, byClass("bed"))))
	}
	// A ward's own board has no limit.
	if res := e.get("/beds?ward_id=" + testWardID); len(findAll(res.doc, byClass("bed"))) != 4 {
		t.Errorf("ward 1 board: %d tiles", len(findAll(res.doc, byClass("bed"))))
	}

	// Admission: the ward first, chosen by posting the admission form, so
	// that a patient ticked among the search results and the reason stay.
	res = e.get("/admissions/new?patient_q=smith")
	form := find(res.doc, byID("admit-form"))
	wardSel := find(form, byID("f-bed_id-ward"))
	if wardSel == nil || attr(wardSel, "form") != "" || find(form, byTag("optgroup")) != nil || find(res.doc, byID("ward-choose")) != nil {
		t.Fatalf("ward select %v (form %q), bed options %v", wardSel != nil, attr(wardSel, "form"), find(form, byTag("optgroup")) != nil)
	}
	var wards []string
	for _, o := range findAll(wardSel, byTag("option")) {
		wards = append(wards, text(o))
	}
	if strings.Join(wards, "|") != "Choose a ward|Ward 1 – Acute Medicine (1 free)|Ward 2 – Surgery (2 free)" {
		t.Errorf("wards %q", wards)
	}
	show := find(form, byID("f-bed_id-ward-show"))
	if attr(show, "name") != "show_ward" || attr(show, "formaction") != "/admissions/new#bed-title" {
		t.Fatalf("ward button name %q formaction %q", attr(show, "name"), attr(show, "formaction"))
	}
	v := formValues(form)
	patients := findAll(form, byAttr("name", "patient_id"))
	if len(patients) == 0 || hasAttr(patients[0], "checked") {
		t.Fatalf("%d patients to choose from, the first ticked already", len(patients))
	}
	chosen := attr(patients[0], "value")
	v.Set("patient_id", chosen)
	v.Set("ward_id", testWard2ID)
	v.Set("reason", "Elective hernia repair")
	v.Set("show_ward", "1")
	res = e.post("/admissions/new", v)
	if res.StatusCode != http.StatusOK || len(e.api.inpt.admits) != 0 {
		t.Fatalf("show the ward's beds: %d, %d admitted", res.StatusCode, len(e.api.inpt.admits))
	}
	form = find(res.doc, byID("admit-form"))
	if got := optionValues(find(form, byID("f-bed_id"))); strings.Join(got, ",") != "b5,b6" {
		t.Fatalf("ward 2's free beds %v", got)
	}
	v = formValues(form)
	if v.Get("ward_id") != testWard2ID || v.Get("patient_id") != chosen || v.Get("reason") != "Elective hernia repair" ||
		v.Get("patient_q") != "smith" {
		t.Errorf("the admission form forgets a choice after the ward: %v", v)
	}
	if find(res.doc, byClass("error-summary")) != nil {
		t.Error("choosing the ward shows errors")
	}
	v.Set("bed_id", "b6")
	v.Set("source", "direct")
	if res := e.post("/admissions/new", v); res.StatusCode != http.StatusSeeOther || e.api.inpt.admits[0].BedID != "b6" ||
		e.api.inpt.admits[0].PatientID != chosen {
		t.Fatalf("admit to b6: %d", res.StatusCode)
	}
	// From a ward's board: the Admit link names the ward; a bed taken
	// meanwhile is said to be; a bed without its ward is not.
	res = e.get("/admissions/new?bed_id=b1&ward_id=" + testWardID)
	if sel := find(res.doc, byID("f-bed_id")); find(sel, and(byAttr("value", "b1"), byAttr("selected", ""))) == nil || find(res.doc, byID("bed-taken")) != nil {
		t.Errorf("bed b1 from the board is not chosen")
	}
	if res := e.get("/admissions/new?bed_id=b2&ward_id=" + testWardID); find(res.doc, byID("bed-taken")) == nil {
		t.Error("an occupied bed is not said to be taken")
	}
	if res := e.get("/admissions/new?bed_id=b1"); find(res.doc, byID("bed-taken")) != nil || find(res.doc, byID("f-bed_id-ward")) == nil {
		t.Error("a bed without its ward is said to be taken")
	}

	// Transfer: the same, to the transfer form.
	res = e.get("/admissions/" + testAdmissionID + "/transfer")
	if choose := find(res.doc, byID("ward-choose")); attr(choose, "action") != "/admissions/"+testAdmissionID+"/transfer#f-bed_id" ||
		find(find(res.doc, byID("command-form")), byTag("optgroup")) != nil {
		t.Fatalf("transfer ward form %q", attr(choose, "action"))
	}
	res = e.get("/admissions/" + testAdmissionID + "/transfer?ward_id=" + testWardID)
	form = find(res.doc, byID("command-form"))
	if got := optionValues(find(form, byID("f-bed_id"))); strings.Join(got, ",") != "b1" {
		t.Fatalf("ward 1's free beds %v", got)
	}
	v = formValues(form)
	if res := e.post("/admissions/"+testAdmissionID+"/transfer", v); res.StatusCode != http.StatusBadRequest ||
		strings.Join(optionValues(find(res.doc, byID("f-bed_id"))), ",") != "b1" {
		t.Errorf("transfer without a bed: %d, the ward's beds lost", res.StatusCode)
	}

	// Housekeeping: three free beds are over the limit; one bed cleaning
	// and one out of service are not.
	n := newEnvWith(t, func(s *Server) { s.bedLimit = 1 })
	asRole(n, identity.RoleNurse)
	n.login()
	res = n.get("/housekeeping")
	if find(res.doc, byID("cleaning-b3")) == nil || find(res.doc, byID("oos-b4")) == nil || find(res.doc, byID("choose-ward")) == nil {
		t.Fatalf("housekeeping lists or notice missing")
	}
	if got := text(find(res.doc, byAttr("action", "/housekeeping/out-of-service"))); find(res.doc, byTag("optgroup")) != nil ||
		!strings.Contains(got, "Choose a ward above") {
		t.Errorf("out of service without a ward: %q", got)
	}
	res = n.get("/housekeeping?ward_id=" + testWard2ID)
	if got := optionValues(find(res.doc, byID("f-bed_id"))); strings.Join(got, ",") != "b5,b6" || find(res.doc, byID("choose-ward")) != nil {
		t.Errorf("ward 2's beds to take out of service %v", got)
	}
}

// Without patient.read (the administrator), or for a patient outside the
// user's care, an occupied bed is only "Occupied": no name, no stay, no
// links; and nobody without admission.write is offered Admit.
func TestBedBoardWithoutNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		set  func(f *fakeAPI)
	}{
		{"administrator", func(f *fakeAPI) {
			f.role, f.perms = identity.RoleAdmin, []string{identity.PermBedRead, identity.PermFacilityRead}
		}},
		{"out of care", func(f *fakeAPI) {
			f.role, f.perms = identity.RoleNurse, identity.RolePermissions[identity.RoleNurse]
			f.restricted[testPatientID] = true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tc.set(e.api)
			e.login()
			for _, path := range []string{"/beds", "/beds?fragment=board", "/wards/" + testWardID, "/wards/" + testWardID + "?fragment=beds"} {
				res := e.get(path)
				doc := res.doc
				if doc == nil {
					doc = parseFragment(t, res.body)
				}
				bed := find(doc, byID("bed-b2"))
				if attr(bed, "data-status") != "occupied" || text(find(bed, byClass("bed__status"))) != "Occupied" {
					t.Fatalf("%s: occupied bed %q", path, text(bed))
				}
				if find(bed, byClass("bed__patient")) != nil || find(bed, byClass("bed__stay")) != nil || find(bed, byTag("a")) != nil ||
					strings.Contains(res.body, "OKONKWO") || strings.Contains(res.body, testAdmissionID) {
					t.Errorf("%s: the occupied bed tells about its patient: %q", path, text(bed))
				}
			}
			if h := text(find(e.get("/wards/"+testWardID).doc, byID("hidden-patients"))); !strings.HasPrefix(h, "One occupied bed's patient is not shown") {
				t.Errorf("ward page about the hidden patient: %q", h)
			}
			if tc.name == "administrator" && find(e.get("/beds").doc, byClass("bed__admit")) != nil {
				t.Error("Admit offered without admission.write")
			}
		})
	}
}

// A ward's page lists who lies where since when and for how long, live.
func TestWardView(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	res := e.get("/wards/" + testWardID)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("ward: %d", res.StatusCode)
	}
	if h := text(find(res.doc, byTag("h1"))); h != "Ward 1 – Acute Medicine" {
		t.Errorf("heading %q", h)
	}
	live := find(res.doc, byAttr("data-live-beds", ""))
	if attr(live, "data-fragment-url") != "/wards/"+testWardID+"?fragment=beds" || attr(live, "data-ward-id") != testWardID {
		t.Fatalf("live attributes %q", attr(live, "data-fragment-url"))
	}
	rows := findAll(find(res.doc, byClass("ward-patients")), byTag("tr"))
	if len(rows) != 2 { // head + B2
		t.Fatalf("%d patient rows", len(rows))
	}
	row := text(rows[1])
	for _, want := range []string{"B2", "Room 101", "OKONKWO, Adaeze Grace", "10000017", "day 3 of 5"} {
		if !strings.Contains(row, want) {
			t.Errorf("patient row %q lacks %q", row, want)
		}
	}
	admitted := e.api.inpt.admissions[0].AdmittedAt
	if tm := find(rows[1], byTag("time")); attr(tm, "datetime") != isoTime(admitted) || text(tm) != dateTimeIn(admitted, time.UTC) {
		t.Errorf("admitted since %q %q", attr(tm, "datetime"), text(tm))
	}
	frag := e.get("/wards/" + testWardID + "?fragment=beds")
	if doc := parseFragment(t, frag.body); len(findAll(doc, byClass("bed"))) != 4 || find(doc, byClass("ward-patients")) == nil {
		t.Errorf("ward fragment: %s", frag.body)
	}
	if res := e.get("/wards/unknown"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown ward: %d", res.StatusCode)
	}
}

// Housekeeping lists beds to clean and out of service; a nurse marks one
// clean, takes one out of service and puts it back; the lists never read
// a patient (every board read is filtered by state).
func TestHousekeeping(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	res := e.get("/housekeeping")
	if res.StatusCode != http.StatusOK || find(res.doc, byID("cleaning-b3")) == nil || find(res.doc, byID("oos-b4")) == nil {
		t.Fatalf("housekeeping: %d", res.StatusCode)
	}
	if find(res.doc, byID("clean-b3")) != nil || find(res.doc, byAttr("action", "/housekeeping/out-of-service")) != nil {
		t.Error("buttons shown without bed.write")
	}
	if res := e.post("/beds/b3/clean", url.Values{"csrf_token": {e.csrf("/housekeeping")}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("clean without bed.write: %d", res.StatusCode)
	}

	n := newEnv(t)
	asRole(n, identity.RoleNurse)
	n.login()
	res = n.get("/housekeeping")
	item := find(res.doc, byID("cleaning-b3"))
	if got := text(item); !strings.Contains(got, "B1") || !strings.Contains(got, "Ward 1 – Acute Medicine") || !strings.Contains(got, "waiting 2 h") {
		t.Errorf("cleaning item %q", got)
	}
	form := find(res.doc, byAttr("action", "/beds/b3/clean"))
	if form == nil || text(find(form, byID("clean-b3"))) != "Mark clean bed B1, Ward 1 – Acute Medicine" {
		t.Fatalf("Mark clean form: %q", text(form))
	}
	sel := find(res.doc, byID("f-bed_id"))
	var groups []string
	for _, g := range findAll(sel, byTag("optgroup")) {
		groups = append(groups, attr(g, "label")+":"+strings.Join(optionValues(g), ","))
	}
	if strings.Join(groups, " ") != "Ward 1 – Acute Medicine:b1 Ward 2 – Surgery:b5,b6" {
		t.Errorf("beds that can go out of service: %v", groups)
	}
	res = n.post("/beds/b3/clean", formValues(form))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/housekeeping" {
		t.Fatalf("clean: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	after := n.get("/housekeeping")
	if f := text(find(after.doc, byClass("flash"))); f != "Bed B1 is clean and available." || find(after.doc, byID("cleaning-b3")) != nil {
		t.Errorf("after cleaning: flash %q", f)
	}
	// A second click (another nurse was quicker): 409, said plainly.
	n.post("/beds/b3/clean", formValues(form))
	if f := text(find(n.get("/housekeeping").doc, byClass("flash--error"))); !strings.Contains(f, "This bed is available, not cleaning") {
		t.Errorf("second clean: %q", f)
	}
	csrf := n.csrf("/housekeeping")
	res = n.post("/housekeeping/out-of-service", url.Values{"csrf_token": {csrf}, "bed_id": {"b5"}, "back": {"//evil.example/x"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/housekeeping" {
		t.Errorf("out of service: %d %q (the back link must stay on this site)", res.StatusCode, res.Header.Get("Location"))
	}
	n.post("/beds/b4/in-service", url.Values{"csrf_token": {csrf}, "back": {"/beds?ward_id=" + testWardID}})
	if got := n.api.inpt.bedActions; strings.Join(got, ",") != "clean b3,out-of-service b5,in-service b4" {
		t.Errorf("bed actions %v", got)
	}
	if frag := n.get("/housekeeping?fragment=list"); find(parseFragment(t, frag.body), byID("oos-b5")) == nil {
		t.Errorf("fragment after out of service: %s", frag.body)
	}
	for _, q := range n.api.inpt.boardReads {
		if q.Get("status") == "" {
			t.Errorf("housekeeping read the whole board (patients included): %v", q)
		}
	}
}

func optionValues(n *html.Node) []string {
	var out []string
	for _, o := range findAll(n, byTag("option")) {
		if v := attr(o, "value"); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Admitting from a free bed on the board: find the patient, the bed is
// chosen already, give source and reason; the form's Idempotency-Key
// makes a double submit admit once; a bed taken meanwhile brings the form
// back with the free beds refreshed and the rest kept.
func TestAdmitFromTheBoard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	res := e.get("/admissions/new?bed_id=b1&patient_q=smith")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("admit form: %d", res.StatusCode)
	}
	form := find(res.doc, byID("admit-form"))
	sel := find(form, byID("f-bed_id"))
	var groups []string
	for _, g := range findAll(sel, byTag("optgroup")) {
		groups = append(groups, attr(g, "label")+":"+strings.Join(optionValues(g), ","))
	}
	if strings.Join(groups, " ") != "Ward 1 – Acute Medicine:b1 Ward 2 – Surgery:b5,b6" {
		t.Errorf("free beds by ward: %v", groups)
	}
	if o := find(sel, byAttr("value", "b6")); text(o) != "S2 · room 1 · Paediatric" {
		t.Errorf("bed label %q", text(o))
	}
	v := formValues(form)
	key := v.Get("idempotency_key")
	if v.Get("bed_id") != "b1" || len(key) < 32 {
		t.Fatalf("form %v", v)
	}
	radio := find(form, and(byTag("input"), byAttr("name", "patient_id"), byAttr("value", testOtherPatient)))
	if radio == nil {
		t.Fatal("the search result is not offered")
	}
	// Nothing but the bed: the errors point at each part.
	res = e.post("/admissions/new", v)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("empty admission: %d", res.StatusCode)
	}
	var hrefs []string
	for _, a := range findAll(find(res.doc, byClass("error-summary")), byTag("a")) {
		hrefs = append(hrefs, attr(a, "href"))
	}
	if strings.Join(hrefs, " ") != "#patient-title #source-title #f-reason" {
		t.Errorf("summary links %v", hrefs)
	}
	if got := formValues(find(res.doc, byID("admit-form"))).Get("bed_id"); got != "b1" {
		t.Errorf("the chosen bed was lost: %q", got)
	}
	v.Set("patient_id", testOtherPatient)
	v.Set("source", "emergency")
	v.Set("reason", "Fractured neck of femur")
	v.Set("expected_days", "400")
	res = e.post("/admissions/new", v)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(text(find(res.doc, byID("f-expected_days-error"))), "0 to 365") {
		t.Fatalf("400 days: %d", res.StatusCode)
	}
	if after := formValues(find(res.doc, byID("admit-form"))); after.Get("patient_id") != testOtherPatient || after.Get("reason") != "Fractured neck of femur" {
		t.Errorf("the form lost the patient or reason: %v", after)
	}
	v.Set("expected_days", "7")
	res = e.post("/admissions/new", v)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admissions/"+testNewAdmissionID {
		t.Fatalf("admit: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	in := e.api.inpt.admits[0]
	if in.PatientID != testOtherPatient || in.BedID != "b1" || in.Source != "emergency" || in.Reason != "Fractured neck of femur" ||
		in.ExpectedDays == nil || *in.ExpectedDays != 7 || in.AppointmentID != "" {
		t.Fatalf("admitted %+v", in)
	}
	if got := e.api.inpt.keys[len(e.api.inpt.keys)-1]; got != key {
		t.Errorf("Idempotency-Key %q, want the form's %q", got, key)
	}
	if f := text(find(e.get(res.Header.Get("Location")).doc, byClass("flash"))); f != "The patient is admitted to bed B10." {
		t.Errorf("flash %q", f)
	}
	// Sent twice: one admission, the same page.
	res = e.post("/admissions/new", v)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admissions/"+testNewAdmissionID || len(e.api.inpt.admits) != 1 {
		t.Fatalf("double submit: %d %q, %d admissions", res.StatusCode, res.Header.Get("Location"), len(e.api.inpt.admits))
	}
}

func TestAdmitBedTakenMeanwhile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	res := e.get("/admissions/new?patient_id=" + testOtherPatient)
	v := formValues(find(res.doc, byID("admit-form")))
	if v.Get("patient_id") != testOtherPatient || find(res.doc, byID("chosen-patient")) == nil {
		t.Fatalf("patient not fixed: %v", v)
	}
	v.Set("bed_id", "b5")
	v.Set("source", "direct")
	v.Set("reason", "Elective hip replacement")
	e.api.mu.Lock()
	e.api.inpt.takeNext = true
	e.api.mu.Unlock()
	res = e.post("/admissions/new", v)
	if res.StatusCode != http.StatusConflict {
		t.Fatalf("bed taken: %d, want 409", res.StatusCode)
	}
	if find(res.doc, byID("bed-taken")) == nil {
		t.Error("no notice that the bed was taken")
	}
	if a := find(find(res.doc, byClass("error-summary")), byTag("a")); attr(a, "href") != "#f-bed_id" || !strings.Contains(text(a), "just taken") {
		t.Errorf("summary %q", text(a))
	}
	form := find(res.doc, byID("admit-form"))
	after := formValues(form)
	if slices.Contains(optionValues(find(form, byID("f-bed_id"))), "b5") || after.Get("bed_id") != "" {
		t.Errorf("the taken bed is still offered or chosen: %v", optionValues(find(form, byID("f-bed_id"))))
	}
	if after.Get("patient_id") != testOtherPatient || after.Get("reason") != "Elective hip replacement" || after.Get("source") != "direct" {
		t.Errorf("the form lost its values: %v", after)
	}
	if k := after.Get("idempotency_key"); k == "" || k == v.Get("idempotency_key") {
		t.Error("the form after a 409 needs a new Idempotency-Key")
	}
}

// A patient who is admitted already: the form says where and links the
// admission; the API's 409 is shown at the patient.
func TestAdmitPatientAlreadyAdmitted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	res := e.get("/admissions/new?patient_id=" + testPatientID)
	note := find(res.doc, byID("already-admitted"))
	if !strings.Contains(text(note), "Ward 1 – Acute Medicine, bed B2") || attr(find(note, byTag("a")), "href") != "/admissions/"+testAdmissionID {
		t.Errorf("already admitted: %q", text(note))
	}
	v := formValues(find(res.doc, byID("admit-form")))
	v.Set("bed_id", "b1")
	v.Set("source", "emergency")
	v.Set("reason", "Sepsis")
	res = e.post("/admissions/new", v)
	if res.StatusCode != http.StatusConflict || !strings.Contains(text(find(res.doc, byID("patient-error"))), "already admitted") {
		t.Fatalf("second admission: %d %q", res.StatusCode, text(find(res.doc, byID("patient-error"))))
	}
}

// A checked-in appointment offers Admit; the form then admits that
// appointment's patient, from that appointment.
func TestAdmitFromAnAppointment(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	page := e.get("/appointments/" + testApptID)
	if find(page.doc, byID("action-admit")) != nil {
		t.Error("a booked (not yet seen) appointment offers Admit")
	}
	e.post("/appointments/"+testApptID+"/check-in", url.Values{"csrf_token": {e.csrf("/appointments/" + testApptID)}})
	page = e.get("/appointments/" + testApptID)
	link := attr(find(page.doc, byID("action-admit")), "href")
	if link == "" {
		t.Fatal("a checked-in appointment offers no Admit")
	}
	res := e.get(link)
	form := find(res.doc, byID("admit-form"))
	v := formValues(form)
	if v.Get("patient_id") != testPatientID || v.Get("appointment_id") != testApptID || v.Get("source") != "appointment" {
		t.Fatalf("form from the appointment: %v", v)
	}
	if a := find(find(res.doc, byClass("banner--info")), byTag("a")); attr(a, "href") != "/appointments/"+testApptID {
		t.Error("the form does not say which appointment")
	}
	// An appointment that does not exist is dropped, saying so.
	unknown := e.get("/admissions/new?source=appointment&appointment_id=" + testDeptID)
	if unknown.StatusCode != http.StatusOK || !strings.Contains(text(find(unknown.doc, byClass("error-summary"))), "cannot be used") ||
		formValues(find(unknown.doc, byID("admit-form"))).Get("appointment_id") != "" || find(unknown.doc, byID("source-appointment")) != nil {
		t.Errorf("unknown appointment: %d", unknown.StatusCode)
	}
	// The fake's patient is admitted already; admit another way to
	// check what is sent: free the patient first.
	e.api.mu.Lock()
	e.api.inpt.admissions[0].Status = "discharged"
	e.api.mu.Unlock()
	v.Set("bed_id", "b6")
	v.Set("reason", "Admitted from clinic")
	if res := e.post("/admissions/new", v); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("admit from the appointment: %d", res.StatusCode)
	}
	if in := e.api.inpt.admits[0]; in.Source != "appointment" || in.AppointmentID != testApptID || in.PatientID != testPatientID {
		t.Errorf("admitted %+v", in)
	}
}

// The admission page shows where the patient is, the stay and the history
// with beds named; discharge asks (disposition, summary) and sends the
// version and the form's key, so sending it twice is harmless; the bed
// goes to cleaning.
func TestAdmissionPageAndDischarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	res := e.get("/admissions/" + testAdmissionID)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("admission: %d", res.StatusCode)
	}
	if b := text(find(res.doc, byID("admitted-banner"))); !strings.Contains(b, "Admitted: Ward 1 – Acute Medicine, bed B2") || !strings.Contains(b, "day 3 of 5") {
		t.Errorf("banner %q", b)
	}
	rows := summaryRows(res.doc)
	if rows["Source"] != "Emergency" || rows["Reason for admission"] != "Community-acquired pneumonia" || !strings.HasPrefix(rows["Expected stay"], "5 days, discharge expected") {
		t.Errorf("details %v", rows)
	}
	if h := text(find(find(res.doc, byID("history")), byTag("tbody"))); !strings.Contains(h, "Admitted To Ward 1 – Acute Medicine, bed B2 Jo Smith") {
		t.Errorf("history %q", h)
	}
	for _, id := range []string{"action-transfer", "action-discharge", "action-cancel"} {
		if find(res.doc, byID(id)) == nil {
			t.Errorf("no %s", id)
		}
	}

	res = e.get("/admissions/" + testAdmissionID + "/discharge")
	form := find(res.doc, byID("command-form"))
	v := formValues(form)
	if v.Get("version") != "2" || len(v.Get("idempotency_key")) < 32 || len(optionValues(find(form, byID("f-disposition")))) != 4 {
		t.Fatalf("discharge form %v", v)
	}
	res = e.post("/admissions/"+testAdmissionID+"/discharge", v)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(text(find(res.doc, byID("f-disposition-error"))), "Choose where the patient goes") {
		t.Fatalf("discharge without disposition: %d", res.StatusCode)
	}
	v.Set("disposition", "home")
	v.Set("summary", "Treated with IV antibiotics.\nGP review in one week.")
	res = e.post("/admissions/"+testAdmissionID+"/discharge", v)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admissions/"+testAdmissionID {
		t.Fatalf("discharge: %d", res.StatusCode)
	}
	if cmd := e.api.inpt.commands[0]; cmd != `discharge `+testAdmissionID+` if-match="2"` {
		t.Errorf("command %q, want the version the form was shown with", cmd)
	}
	if e.api.inpt.keys[0] != v.Get("idempotency_key") {
		t.Errorf("key %q", e.api.inpt.keys[0])
	}
	// The same form again (double click): the first answer, no 412.
	res = e.post("/admissions/"+testAdmissionID+"/discharge", v)
	page := e.get(res.Header.Get("Location"))
	if f := text(find(page.doc, byClass("flash"))); !strings.HasPrefix(f, "The patient is discharged.") {
		t.Errorf("after a double discharge: flash %q", f)
	}
	if e.api.inpt.beds[1].Status != "cleaning" {
		t.Errorf("bed B2 is %s after discharge", e.api.inpt.beds[1].Status)
	}
	if find(page.doc, byID("admitted-banner")) != nil || find(page.doc, byID("action-discharge")) != nil ||
		summaryRows(page.doc)["Discharged to"] != "Home" || !strings.Contains(text(find(page.doc, byClass("prewrap"))), "GP review") {
		t.Errorf("discharged admission page: %q", text(find(page.doc, byID("main"))))
	}
	// The form of an ended admission leads back to it.
	res = e.get("/admissions/" + testAdmissionID + "/transfer")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admissions/"+testAdmissionID {
		t.Errorf("transfer form of a discharged admission: %d", res.StatusCode)
	}
}

// Transfer offers the free beds but the patient's own; a bed taken
// meanwhile brings the form back; a change by someone else (412) is said.
func TestAdmissionTransferAndCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	res := e.get("/admissions/" + testAdmissionID + "/transfer")
	form := find(res.doc, byID("command-form"))
	if got := optionValues(find(form, byID("f-bed_id"))); strings.Join(got, ",") != "b1,b5,b6" {
		t.Errorf("transfer beds %v", got)
	}
	v := formValues(form)
	res = e.post("/admissions/"+testAdmissionID+"/transfer", v)
	var hrefs []string
	for _, a := range findAll(find(res.doc, byClass("error-summary")), byTag("a")) {
		hrefs = append(hrefs, attr(a, "href"))
	}
	if res.StatusCode != http.StatusBadRequest || strings.Join(hrefs, " ") != "#f-bed_id" || find(res.doc, byID("f-bed_id-error")) == nil {
		t.Errorf("transfer without a bed: %d, summary %v", res.StatusCode, hrefs)
	}
	v.Set("bed_id", "b5")
	e.api.mu.Lock()
	e.api.inpt.takeNext = true
	e.api.mu.Unlock()
	res = e.post("/admissions/"+testAdmissionID+"/transfer", v)
	if res.StatusCode != http.StatusConflict || find(res.doc, byID("bed-taken")) == nil ||
		slices.Contains(optionValues(find(res.doc, byID("f-bed_id"))), "b5") {
		t.Fatalf("transfer to a taken bed: %d", res.StatusCode)
	}
	v = formValues(find(res.doc, byID("command-form")))
	v.Set("bed_id", "b6")
	if res := e.post("/admissions/"+testAdmissionID+"/transfer", v); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("transfer: %d", res.StatusCode)
	}
	page := e.get("/admissions/" + testAdmissionID)
	if h := text(find(find(page.doc, byID("history")), byTag("tbody"))); !strings.Contains(h, "Ward 1 – Acute Medicine, bed B2 → Ward 2 – Surgery, bed S2") {
		t.Errorf("history after transfer %q", h)
	}
	// A form from before that transfer: someone else changed it.
	v.Set("idempotency_key", "another-form")
	v.Set("bed_id", "b1")
	res = e.post("/admissions/"+testAdmissionID+"/transfer", v)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("stale transfer: %d", res.StatusCode)
	}
	if f := text(find(e.get("/admissions/"+testAdmissionID).doc, byClass("flash--error"))); !strings.Contains(f, "Someone else changed this admission") {
		t.Errorf("stale flash %q", f)
	}

	res = e.get("/admissions/" + testAdmissionID + "/cancel")
	v = formValues(find(res.doc, byID("command-form")))
	if res := e.post("/admissions/"+testAdmissionID+"/cancel", v); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("cancel without a reason: %d", res.StatusCode)
	}
	v.Set("reason", "Admitted the wrong patient")
	if res := e.post("/admissions/"+testAdmissionID+"/cancel", v); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel: %d", res.StatusCode)
	}
	if st := e.api.inpt.beds[5].Status; st != "available" {
		t.Errorf("bed after cancel: %s", st)
	}
	if rows := summaryRows(e.get("/admissions/" + testAdmissionID).doc); rows["Reason for cancelling"] != "Admitted the wrong patient" {
		t.Errorf("cancelled admission %v", rows)
	}

	// Out of care: the admission is refused like the patient.
	e.api.mu.Lock()
	e.api.restricted[testPatientID] = true
	e.api.mu.Unlock()
	if res := e.get("/admissions/" + testAdmissionID); res.StatusCode != http.StatusForbidden {
		t.Errorf("admission out of care: %d", res.StatusCode)
	}
	if res := e.get("/admissions/unknown"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown admission: %d", res.StatusCode)
	}
}

// The patient's page says prominently where an admitted patient is, and
// lists their admissions; a patient not admitted can be admitted from it.
func TestPatientPageAdmissions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	res := e.get("/patients/" + testPatientID)
	banner := find(res.doc, byID("admitted-banner"))
	if !strings.Contains(text(banner), "Admitted: Ward 1 – Acute Medicine, bed B2") ||
		attr(find(banner, byTag("a")), "href") != "/admissions/"+testAdmissionID {
		t.Errorf("banner %q", text(banner))
	}
	if rows := findAll(find(res.doc, byID("admissions")), byTag("tr")); len(rows) != 2 || !strings.Contains(text(rows[1]), "Admitted") {
		t.Errorf("admissions table: %d rows", len(rows))
	}
	if find(res.doc, byID("admit-patient")) != nil {
		t.Error("an admitted patient is offered another admission")
	}
	res = e.get("/patients/" + testOtherPatient)
	if find(res.doc, byID("admitted-banner")) != nil {
		t.Error("banner for a patient who is not admitted")
	}
	if a := find(res.doc, byID("admit-patient")); attr(a, "href") != "/admissions/new?patient_id="+testOtherPatient {
		t.Errorf("Admit link %q", attr(a, "href"))
	}
	// Without admission.read (a lab technician): no section, no call.
	l := newEnv(t)
	asRole(l, identity.RoleLabTechnician)
	l.login()
	if res := l.get("/patients/" + testPatientID); find(res.doc, byID("admissions-title")) != nil || find(res.doc, byID("admitted-banner")) != nil {
		t.Error("admissions shown without admission.read")
	}
}

// The census page: the period (30 days up to today in the hospital's
// time zone by default), a table per ward, an accessible SVG chart with
// the same numbers as a table, and the CSV through the web server.
func TestCensusPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	res := e.get("/census")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("census: %d", res.StatusCode)
	}
	today := time.Now().UTC().Format(isoDate)
	if q := e.api.inpt.censusQ; q.Get("to") != today || q.Get("from") != time.Now().UTC().AddDate(0, 0, -29).Format(isoDate) || q.Has("ward_id") {
		t.Errorf("census asked for %v", q)
	}
	table := find(res.doc, byID("census-table"))
	rows := findAll(find(table, byTag("tbody")), byTag("tr"))
	if len(rows) != 2 {
		t.Fatalf("%d ward rows", len(rows))
	}
	var cells []string
	for _, td := range findAll(rows[0], byTag("td")) {
		cells = append(cells, text(td))
	}
	if strings.Join(cells, " ") != "4 1 6 5 4.4 62.5%" {
		t.Errorf("ward 1: %v", cells)
	}
	if foot := text(find(table, byTag("tfoot"))); !strings.Contains(foot, "All wards") || !strings.Contains(foot, "41.7%") {
		t.Errorf("total %q", foot)
	}
	svg := find(res.doc, byClass("chart__svg"))
	if attr(svg, "role") != "img" {
		t.Fatal("the chart is not an image to assistive technology")
	}
	for _, id := range splitFields(attr(svg, "aria-labelledby")) {
		if el := find(svg, byID(id)); el == nil || text(el) == "" {
			t.Errorf("the chart's %s is missing or empty", id)
		}
	}
	if n := len(findAll(svg, byClass("chart__bar"))); n != 2 {
		t.Errorf("%d bars for 2 days", n)
	}
	yesterday := time.Now().UTC().AddDate(0, 0, -1)
	if tip := text(find(find(svg, byClass("chart__bar")), byTag("title"))); tip != yesterday.Format("Mon 2 Jan")+": 33.3% occupied, 2 patients at midnight" {
		t.Errorf("bar title %q", tip)
	}
	if rows := findAll(find(find(res.doc, byID("chart-data")), byTag("tbody")), byTag("tr")); len(rows) != 2 {
		t.Errorf("chart data table: %d rows", len(rows))
	}
	from := censusDay(-29)
	link := attr(find(res.doc, byID("census-csv")), "href")
	if link != "/census.csv?from="+from+"&to="+today {
		t.Errorf("CSV link %q", link)
	}
	csv := e.get(link)
	if csv.StatusCode != http.StatusOK || !strings.HasPrefix(csv.Header.Get("Content-Type"), "text/csv") ||
		csv.Header.Get("Content-Disposition") != `attachment; filename="census-`+from+`-`+today+`.csv"` || !strings.HasPrefix(csv.body, "day,ward_code") {
		t.Errorf("CSV: %d %v %q", csv.StatusCode, csv.Header, csv.body)
	}
	if q := e.api.inpt.csvQ; q.Get("from") != from || q.Get("to") != today {
		t.Errorf("CSV asked for %v", q)
	}

	// One ward: its chart, no total row.
	res = e.get("/census?from=" + censusDay(-3) + "&to=" + today + "&ward_id=" + testWardID)
	if q := e.api.inpt.censusQ; q.Get("ward_id") != testWardID || q.Get("from") != censusDay(-3) {
		t.Errorf("ward census asked for %v", q)
	}
	if h := text(find(res.doc, byID("chart-heading"))); h != "Daily occupancy: Ward 1 – Acute Medicine" || find(res.doc, byTag("tfoot")) != nil {
		t.Errorf("ward chart heading %q", h)
	}

	// A bad period is said at the field; the API is not asked.
	e.api.inpt.censusQ = nil
	res = e.get("/census?from=yesterday&to=" + today)
	if res.StatusCode != http.StatusBadRequest || find(res.doc, byID("f-from-error")) == nil || e.api.inpt.censusQ != nil {
		t.Errorf("bad date: %d", res.StatusCode)
	}
	res = e.get("/census?from=" + today + "&to=" + censusDay(-3))
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(text(find(res.doc, byID("f-to-error"))), "before the first day") {
		t.Errorf("reversed period: %d", res.StatusCode)
	}
	res = e.get("/census?from=" + censusDay(1))
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(text(find(res.doc, byID("f-from-error"))), "future") {
		t.Errorf("future period: %d", res.StatusCode)
	}
	// A last day after today means up to today; a year and a day is too long.
	res = e.get("/census?from=" + censusDay(-10) + "&to=" + censusDay(400))
	if q := e.api.inpt.censusQ; res.StatusCode != http.StatusOK || q.Get("to") != today {
		t.Errorf("period into the future: %d, asked %v", res.StatusCode, q)
	}
	if res := e.get("/census?from=" + censusDay(-365) + "&to=" + today); res.StatusCode != http.StatusOK {
		t.Errorf("366 days: %d", res.StatusCode)
	}
	if res := e.get("/census?from=" + censusDay(-366) + "&to=" + today); res.StatusCode != http.StatusBadRequest {
		t.Errorf("367 days: %d", res.StatusCode)
	}
	if res := e.get("/census.csv?from=x"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("CSV of a bad period: %d", res.StatusCode)
	}
}

// The navigation follows the permissions: the board and census for
// bed.read, housekeeping for bed.write.
func TestInpatientNavigation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		role string
		want []string
		not  []string
	}{
		{identity.RoleReceptionist, []string{"/beds", "/census"}, []string{"/housekeeping"}},
		{identity.RoleNurse, []string{"/beds", "/census", "/housekeeping"}, nil},
		{identity.RoleBillingClerk, nil, []string{"/beds", "/census", "/housekeeping"}},
	} {
		e := newEnv(t)
		asRole(e, tc.role)
		e.login()
		got := map[string]bool{}
		for _, a := range findAll(find(e.get("/").doc, byClass("site-nav")), byTag("a")) {
			got[attr(a, "href")] = true
		}
		for _, h := range tc.want {
			if !got[h] {
				t.Errorf("%s lacks %s", tc.role, h)
			}
		}
		for _, h := range tc.not {
			if got[h] {
				t.Errorf("%s has %s", tc.role, h)
			}
		}
	}
}
