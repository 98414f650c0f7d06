package web

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// formValues is what a browser would send for the form: named inputs
// (checked ones only for radios and check boxes), selects and text areas.
func formValues(form *html.Node) url.Values {
	v := url.Values{}
	for n := range form.Descendants() {
		if n.Type != html.ElementNode || attr(n, "name") == "" || hasAttr(n, "disabled") {
			continue
		}
		if owner := attr(n, "form"); owner != "" && owner != attr(form, "id") {
			continue // a control of another form (the form attribute)
		}
		name := attr(n, "name")
		switch n.Data {
		case "input":
			switch attr(n, "type") {
			case "radio", "checkbox":
				if hasAttr(n, "checked") {
					v.Add(name, attr(n, "value"))
				}
			case "submit", "button":
			default:
				v.Add(name, attr(n, "value"))
			}
		case "textarea":
			v.Add(name, text(n))
		case "select":
			for _, o := range findAll(n, byTag("option")) {
				if hasAttr(o, "selected") {
					v.Add(name, attr(o, "value"))
				}
			}
		}
	}
	return v
}

// summaryRows reads a summary list's rows: label -> value.
func summaryRows(root *html.Node) map[string]string {
	rows := map[string]string{}
	for _, row := range findAll(root, byClass("summary__row")) {
		rows[text(find(row, byTag("dt")))] = text(find(row, byTag("dd")))
	}
	return rows
}

// A likely duplicate stops the registration: the form comes back with
// the candidates (score as a percentage, links to the records) and every
// value kept; "register as a new patient" sends it again confirmed.
func TestPatientRegisterShowsDuplicatesAndConfirms(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	form := url.Values{"csrf_token": {e.csrf("/patients/new")}, "family_name": {"OKONKWO"}, "given_names": {"Ada"},
		"birth_date": {"1984-03-02"}, "phone": {"+44 113 496 0000"}, "city": {"Leeds"}, "language": {"yo"},
		"identifier_type": {"NI"}, "identifier_system": {"urn:oid:2.16.840.1.113883.2.1.4.1"}, "identifier_value": {"943 476 5919"}}
	res := e.post("/patients/new", form)
	if res.StatusCode != http.StatusConflict {
		t.Fatalf("near-duplicate registration: %d, want 409", res.StatusCode)
	}
	got := e.api.registered[len(e.api.registered)-1]
	if got.ConfirmNotDuplicate || len(got.Identifiers) != 1 || got.Identifiers[0].Type != "NI" || got.Language != "yo" {
		t.Fatalf("first attempt sent %+v", got)
	}
	panel := find(res.doc, byID("duplicates"))
	if panel == nil || attr(panel, "role") != "alert" {
		t.Fatal("no duplicate warning announced as an alert")
	}
	dups := findAll(panel, byClass("duplicate"))
	if len(dups) != 1 {
		t.Fatalf("%d duplicates shown, want 1", len(dups))
	}
	for _, want := range []string{"OKONKWO, Adaeze Grace", "87% match", "Name 93% similar", "Same date of birth", "Same phone number", "10000017"} {
		if !strings.Contains(text(dups[0]), want) {
			t.Errorf("duplicate %q lacks %q", text(dups[0]), want)
		}
	}
	if find(dups[0], and(byTag("a"), byAttr("href", "/patients/"+testPatientID))) == nil {
		t.Error("no link to the existing record")
	}
	if find(dups[0], and(byTag("a"), byAttr("href", "/appointments/book?patient_id="+testPatientID))) == nil {
		t.Error("no link to book for the existing record")
	}
	confirm := find(res.doc, byID("confirm-not-duplicate"))
	if attr(confirm, "form") != "patient-form" || attr(confirm, "name") != "confirm_not_duplicate" || attr(confirm, "value") != "yes" ||
		attr(confirm, "type") != "submit" {
		t.Fatalf("confirm button: %v", confirm.Attr)
	}
	pf := find(res.doc, byID("patient-form"))
	values := formValues(pf)
	for k, want := range map[string]string{"family_name": "OKONKWO", "given_names": "Ada", "birth_date": "1984-03-02",
		"phone": "+44 113 496 0000", "identifier_type": "NI", "identifier_value": "943 476 5919", "language": "yo"} {
		if values.Get(k) != want {
			t.Errorf("form lost %s: %q, want %q", k, values.Get(k), want)
		}
	}

	// Confirming sends the same form with confirm_not_duplicate, as the
	// button (form="patient-form") does in a browser.
	values.Set("confirm_not_duplicate", "yes")
	res = e.post("/patients/new", values)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/patients/"+testPatientID {
		t.Fatalf("confirmed registration: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	got = e.api.registered[len(e.api.registered)-1]
	if !got.ConfirmNotDuplicate || got.FamilyName != "OKONKWO" || got.GivenNames != "Ada" || got.BirthDate != "1984-03-02" {
		t.Fatalf("confirmed registration sent %+v", got)
	}
}

// A stale version answers 412: the page explains, shows what is saved now
// next to what the user typed, and keeps the typed values with the new
// version so that saving again applies them.
func TestPatientEditConflictKeepsTypedValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	page := e.get("/patients/" + testPatientID + "/edit")
	if page.StatusCode != http.StatusOK {
		t.Fatalf("edit page: %d", page.StatusCode)
	}
	values := formValues(find(page.doc, byID("patient-form")))
	if values.Get("version") != "3" || values.Get("family_name") != "Okonkwo" || values.Get("phone") != "+44 113 496 0000" ||
		values.Get("language") != "pt-BR" {
		t.Fatalf("edit form values %v", values)
	}

	// Someone else saves first.
	e.api.mu.Lock()
	e.api.patients[0].Version = 4
	e.api.patients[0].Phone = "+44 113 496 9999"
	e.api.mu.Unlock()

	values.Set("phone", "+44 7700 900123")
	values.Set("city", "Bradford")
	res := e.post("/patients/"+testPatientID+"/edit", values)
	if res.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("stale save: %d, want 412", res.StatusCode)
	}
	if got := e.api.reg.ifMatch[len(e.api.reg.ifMatch)-1]; got != `"3"` {
		t.Errorf("If-Match %q, want \"3\"", got)
	}
	if s := text(find(res.doc, byClass("error-summary"))); !strings.Contains(s, "Someone else changed") {
		t.Errorf("error summary %q", s)
	}
	conflict := find(res.doc, byClass("conflict"))
	rows := map[string][2]string{}
	for _, tr := range findAll(find(conflict, byTag("tbody")), byTag("tr")) {
		tds := findAll(tr, byTag("td"))
		rows[text(find(tr, byTag("th")))] = [2]string{text(tds[0]), text(tds[1])}
	}
	if rows["Phone"] != [2]string{"+44 113 496 9999", "+44 7700 900123"} || rows["Town or city"] != [2]string{"Leeds", "Bradford"} {
		t.Fatalf("conflict rows %v", rows)
	}
	if _, ok := rows["Family name"]; ok {
		t.Error("an unchanged field is listed as a difference")
	}
	kept := formValues(find(res.doc, byID("patient-form")))
	if kept.Get("phone") != "+44 7700 900123" || kept.Get("city") != "Bradford" || kept.Get("version") != "4" {
		t.Fatalf("after the conflict the form holds %v", kept)
	}
	if btn := find(find(res.doc, byID("patient-form")), byAttr("type", "submit")); text(btn) != "Save my changes" {
		t.Errorf("submit button %q", text(btn))
	}

	// Saving again applies the user's values on the new version.
	res = e.post("/patients/"+testPatientID+"/edit", kept)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/patients/"+testPatientID {
		t.Fatalf("second save: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if got := e.api.reg.ifMatch[len(e.api.reg.ifMatch)-1]; got != `"4"` {
		t.Errorf("second If-Match %q", got)
	}
	if up := e.api.reg.updates[len(e.api.reg.updates)-1]; up.Phone != "+44 7700 900123" || up.City != "Bradford" {
		t.Errorf("saved %+v", up)
	}

	// A form error keeps the version the edit started from.
	kept.Set("family_name", "")
	kept.Set("version", "5")
	res = e.post("/patients/"+testPatientID+"/edit", kept)
	if res.StatusCode != http.StatusBadRequest || formValues(find(res.doc, byID("patient-form"))).Get("version") != "5" {
		t.Fatalf("invalid save: %d", res.StatusCode)
	}
}

// The search form sends every filter to the API and keeps them in the
// page's links.
func TestPatientSearchParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	res := e.get("/patients?q=okonkwo&birth_date=1984-03-02&mrn=10000017&identifier=943&phone=0000")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("search: %d", res.StatusCode)
	}
	q := e.api.patientQuery
	for k, want := range map[string]string{"q": "okonkwo", "birth_date": "1984-03-02", "mrn": "10000017", "identifier": "943",
		"phone": "0000", "sort": "relevance", "limit": "25"} {
		if q.Get(k) != want {
			t.Errorf("API got %s=%q, want %q", k, q.Get(k), want)
		}
	}
	form := find(res.doc, and(byTag("form"), byAttr("role", "search")))
	v := formValues(form)
	if v.Get("q") != "okonkwo" || v.Get("mrn") != "10000017" || v.Get("sort") != "relevance" || v.Get("phone") != "0000" {
		t.Errorf("form keeps %v", v)
	}
	if more := find(form, byTag("details")); !hasAttr(more, "open") {
		t.Error("the extra filters are used but folded away")
	}
	if next := find(res.doc, byAttr("rel", "next")); attr(next, "href") !=
		"/patients?birth_date=1984-03-02&cursor=cursor-2&identifier=943&mrn=10000017&phone=0000&q=okonkwo" {
		t.Errorf("next page %q", attr(next, "href"))
	}
	// Sort columns keep the filters.
	if th := find(res.doc, and(byTag("th"), func(n *html.Node) bool { return strings.Contains(text(n), "Registered") })); !strings.Contains(attr(find(th, byTag("a")), "href"), "mrn=10000017") {
		t.Errorf("sort link drops the filters: %q", attr(find(th, byTag("a")), "href"))
	}

	// Relevance needs a name: without one the list is by name.
	res = e.get("/patients?sort=relevance")
	if got := e.api.patientQuery.Get("sort"); got != "name" {
		t.Errorf("relevance without a name sent as %q", got)
	}
	for _, o := range findAll(find(res.doc, byID("f-sort")), byTag("option")) {
		if attr(o, "value") == "relevance" {
			t.Error("Best match offered without a name")
		}
	}

	// A malformed date never reaches the API.
	before := e.api.patientQuery
	res = e.get("/patients?birth_date=02/03/1984")
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad date: %d", res.StatusCode)
	}
	if a := find(find(res.doc, byClass("error-summary")), byTag("a")); attr(a, "href") != "#f-birth_date" {
		t.Error("the error summary does not point at the date")
	}
	if in := find(res.doc, byID("f-birth_date")); attr(in, "aria-invalid") != "true" || attr(in, "aria-describedby") != "f-birth_date-error" {
		t.Error("the date field is not marked invalid")
	}
	if e.api.patientQuery.Encode() != before.Encode() {
		t.Error("the malformed date was sent to the API")
	}
}

// Merging asks first with both records side by side; afterwards both
// records' pages offer to undo it, from the merges the API lists (not from
// anything the browser session remembers: a second session sees them too).
func TestMergeConfirmationAndUndo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	base := "/patients/" + testPatientID + "/merge"

	res := e.get(base)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("merge page: %d", res.StatusCode)
	}
	choose := find(res.doc, and(byTag("a"), byAttr("href", base+"?merged_id="+testOtherPatient)))
	if choose == nil {
		t.Fatal("the likely duplicate cannot be chosen")
	}
	if find(res.doc, and(byTag("a"), byAttr("href", base+"?merged_id="+testPatientID))) != nil {
		t.Error("the record is offered for merging into itself")
	}
	if len(e.api.reg.dupQueries) != 1 || e.api.reg.dupQueries[0].FamilyName != "Okonkwo" {
		t.Errorf("duplicates asked for %+v", e.api.reg.dupQueries)
	}

	res = e.get(attr(choose, "href"))
	sides := findAll(res.doc, byClass("merge-compare__side"))
	if len(sides) != 2 || !strings.Contains(text(sides[0]), "OKONKWO") || !strings.Contains(text(sides[1]), "SMITH") {
		t.Fatalf("confirmation shows %d sides", len(sides))
	}
	form := find(res.doc, and(byTag("form"), byAttr("action", base)))
	v := formValues(form)
	if v.Get("merged_id") != testOtherPatient || v.Get("confirm") != "yes" || find(form, byID("confirm-merge")) == nil {
		t.Fatalf("confirmation form %v", v)
	}

	// Not from the confirmation: ask first.
	if res := e.post(base, url.Values{"csrf_token": {v.Get("csrf_token")}, "merged_id": {testOtherPatient}}); res.Header.Get("Location") != base+"?merged_id="+testOtherPatient {
		t.Fatalf("unconfirmed merge: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res = e.post(base, v)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/patients/"+testPatientID+"#merges" {
		t.Fatalf("merge: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	page := e.get("/patients/" + testPatientID)
	if f := text(find(page.doc, byClass("flash"))); !strings.Contains(f, "The records were merged: 3 linked items moved to this record.") {
		t.Errorf("flash %q", f)
	}
	merges := find(page.doc, byID("merges"))
	if b := text(merges); !strings.Contains(b, "Record 10000025 was merged into this one on ") {
		t.Errorf("banner on the kept record %q", b)
	}
	undo := find(merges, and(byTag("form"), byAttr("action", "/patient-merges/"+testMergeID+"/undo")))
	if undo == nil || text(find(undo, byTag("button"))) != "Undo the merge" || formValues(undo).Get("patient_id") != testPatientID {
		t.Fatal("no undo button on the kept record")
	}
	// Another browser session of the same user (a second computer) sees it.
	e2 := *e
	jar, _ := cookiejar.New(nil)
	e2.hc = &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: e.hc.CheckRedirect}
	e2.login()
	other := e2.get("/patients/" + testOtherPatient)
	if find(other.doc, and(byTag("form"), byAttr("action", "/patient-merges/"+testMergeID+"/undo"))) == nil {
		t.Error("no undo button on the merged record")
	}
	if b := text(find(other.doc, byID("merges"))); !strings.Contains(b, "This record was merged into record 10000017 on ") {
		t.Errorf("banner on the merged record %q", b)
	}
	if find(other.doc, and(byTag("a"), byAttr("href", "/patients/"+testPatientID))) == nil ||
		!strings.Contains(text(find(other.doc, byClass("banner"))), "merged into another record") {
		t.Error("the merged record does not point to the record in use")
	}
	if find(other.doc, and(byTag("a"), byAttr("href", "/patients/"+testOtherPatient+"/edit"))) != nil {
		t.Error("the merged record can still be edited")
	}

	res = e.post("/patient-merges/"+testMergeID+"/undo", formValues(undo))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/patients/"+testPatientID {
		t.Fatalf("undo: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if len(e.api.reg.undone) != 1 {
		t.Fatal("the undo did not reach the API")
	}
	page = e.get("/patients/" + testPatientID)
	if f := text(find(page.doc, byClass("flash"))); !strings.Contains(f, "The merge was undone: the two records are separate again.") {
		t.Errorf("flash after undo %q", f)
	}
	if find(page.doc, byID("merges")) != nil {
		t.Error("the undo button stays after the undo")
	}
	res = e.post("/patient-merges/"+testMergeID+"/undo", formValues(undo))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/patients/"+testPatientID {
		t.Fatalf("second undo: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if f := text(find(e.get("/patients/"+testPatientID).doc, byClass("flash"))); !strings.Contains(f, "already undone") {
		t.Errorf("second undo flash %q", f)
	}
	// A forged patient_id cannot send the user elsewhere.
	v = formValues(undo)
	v.Set("patient_id", "//evil.example/x")
	if res := e.post("/patient-merges/"+testMergeID+"/undo", v); res.Header.Get("Location") != "/patients" {
		t.Errorf("undo with a bad patient_id goes to %q", res.Header.Get("Location"))
	}
}

// The overview groups the demographics and adds and removes identifiers
// and contacts; a refused identifier comes back at its field.
func TestPatientOverviewIdentifiersAndContacts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	page := e.get("/patients/" + testPatientID)
	contact := summaryRows(find(page.doc, byAttr("aria-labelledby", "contact-title")))
	if contact["Preferred language"] != "Portuguese (pt-BR)" || contact["Email"] != "Not recorded" {
		t.Errorf("contact card %v", contact)
	}
	ids := find(page.doc, byAttr("aria-labelledby", "identifiers-title"))
	if !strings.Contains(text(ids), "National identifier 943 476 5919") {
		t.Errorf("identifiers %q", text(ids))
	}
	remove := find(ids, and(byTag("form"), byAttr("action", "/patients/"+testPatientID+"/identifiers/i-1/remove")))
	if remove == nil {
		t.Fatal("no remove form for the identifier")
	}
	// One read: the year back and the year ahead.
	if n := len(e.api.sched.apptQueries); n != 1 || e.api.sched.apptQueries[0].Get("patient_id") != testPatientID {
		t.Fatalf("appointment queries %v", e.api.sched.apptQueries)
	}
	from, _ := time.Parse(time.RFC3339, e.api.sched.apptQueries[0].Get("from"))
	to, _ := time.Parse(time.RFC3339, e.api.sched.apptQueries[0].Get("to"))
	if to.Sub(from) != 730*24*time.Hour {
		t.Errorf("appointments read from %v to %v", from, to)
	}
	if rows := findAll(find(page.doc, byAttr("aria-labelledby", "appointments-title")), byTag("tr")); len(rows) < 2 {
		t.Error("the upcoming appointment is not listed")
	}

	csrf := attr(find(remove, byAttr("name", "csrf_token")), "value")
	if res := e.post(attr(remove, "action"), url.Values{"csrf_token": {csrf}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", res.StatusCode)
	}
	if e.api.reg.removed[0] != "identifier i-1" {
		t.Errorf("removed %v", e.api.reg.removed)
	}
	res := e.post("/patients/"+testPatientID+"/identifiers", url.Values{"csrf_token": {csrf}, "identifier_type": {"MB"},
		"identifier_system": {"urn:insurer:acme"}, "identifier_value": {"taken"}})
	if res.StatusCode != http.StatusConflict {
		t.Fatalf("taken identifier: %d", res.StatusCode)
	}
	in := find(res.doc, byID("f-identifier_value"))
	if attr(in, "value") != "taken" || attr(in, "aria-invalid") != "true" {
		t.Error("the refused identifier is not kept and marked")
	}
	if s := text(find(res.doc, byClass("error-summary"))); !strings.Contains(s, "belongs to another patient") {
		t.Errorf("summary %q", s)
	}
	res = e.post("/patients/"+testPatientID+"/contacts", url.Values{"csrf_token": {csrf}, "contact_relationship": {"C"},
		"contact_name": {"Ngozi"}, "contact_email": {"nope"}})
	if res.StatusCode != http.StatusBadRequest || attr(find(res.doc, byID("f-contact_email")), "aria-invalid") != "true" {
		t.Fatalf("bad contact: %d", res.StatusCode)
	}
	res = e.post("/patients/"+testPatientID+"/contacts", url.Values{"csrf_token": {csrf}, "contact_relationship": {"C"},
		"contact_name": {"Ngozi"}, "contact_phone": {"0113 496 0002"}})
	if res.StatusCode != http.StatusSeeOther || e.api.reg.contacts[0].Name != "Ngozi" || e.api.reg.contacts[0].Relationship != "C" {
		t.Fatalf("add contact: %d %+v", res.StatusCode, e.api.reg.contacts)
	}
}
