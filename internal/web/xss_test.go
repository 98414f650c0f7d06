package web

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// Names a patient could be registered with (or an attacker could type)
// that would run script if a page put them into the HTML unescaped.
const (
	hostileScript = `<script>alert(1)</script>`
	hostileImg    = `"><img src=x onerror=alert(1)>`
)

// checkNoInjection fails when the document has a script element other
// than the layout's own app.js, any element from the hostile names (img),
// or an event handler attribute anywhere.
func checkNoInjection(t *testing.T, what string, doc *html.Node) {
	t.Helper()
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		switch n.Data {
		case "script":
			if src := attr(n, "src"); !strings.HasPrefix(src, "/static/app.") || n.FirstChild != nil {
				t.Errorf("%s: a script element came from data: src=%q", what, src)
			}
		case "img":
			t.Errorf("%s: an img element came from data", what)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") {
				t.Errorf("%s: event handler attribute %s=%q on <%s>", what, a.Key, a.Val, n.Data)
			}
		}
	}
}

// A patient named <script>alert(1)</script> or "><img src=x
// onerror=alert(1)> is text on every page: registry, forms, duplicates,
// merge, calendar, appointment, booking, queue board and display, bed
// board, ward, housekeeping, admission pages and census (ward names too).
func TestHostileNamesAreShownAsText(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.api.mu.Lock()
	p0, p1 := &e.api.patients[0], &e.api.patients[1]
	p0.FamilyName, p0.GivenNames, p0.PreferredName, p0.City = hostileScript, hostileImg, hostileImg, hostileScript
	p0.Identifiers[0].Value, p0.Identifiers[0].System = hostileImg, hostileScript
	p0.Contacts[0].Name, p0.Contacts[0].Address = hostileScript, hostileImg
	p1.FamilyName, p1.GivenNames = hostileImg, hostileScript
	name0 := strings.ToUpper(hostileScript) + ", " + hostileImg
	sc := &e.api.sched
	sc.appts[0].PatientName, sc.appts[0].Reason = name0, hostileImg
	sc.practitioners[0].DisplayName, sc.practitioners[0].Specialty = hostileImg, hostileScript
	sc.clinics[0].Name, sc.clinics[0].Location, sc.clinics[0].DepartmentName = hostileScript, hostileImg, hostileImg
	sc.appts[0].PractitionerName, sc.appts[0].ClinicName = hostileImg, hostileScript
	sc.appts[1].PractitionerName, sc.appts[1].ClinicName = hostileImg, hostileScript
	sc.board.Entries[0].PatientName, sc.board.Entries[0].CallPoint = hostileImg, hostileScript
	sc.board.Entries[1].PatientName = name0
	// Wards and the census carry names typed by the facility's staff.
	e.api.wards[0].Name, e.api.wards[1].Name = hostileImg, hostileScript
	e.api.inpt.census.Wards[0].Name, e.api.inpt.census.Wards[1].Name = hostileScript, hostileImg
	e.api.inpt.admissions[0].Reason = hostileImg
	e.api.inpt.beds[0].Code, e.api.inpt.beds[0].RoomCode = hostileScript, hostileImg
	e.api.mu.Unlock()
	e.login()

	check := func(what string, res *response, wantText ...string) {
		t.Helper()
		if res.StatusCode >= 500 {
			t.Fatalf("%s: status %d", what, res.StatusCode)
		}
		doc := res.doc
		if doc == nil {
			var err error
			if doc, err = html.Parse(bytes.NewReader([]byte(res.body))); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		checkNoInjection(t, what, doc)
		for _, w := range wantText {
			if !strings.Contains(text(doc), w) {
				t.Errorf("%s: the name %q is not shown as text", what, w)
			}
		}
	}
	pages := []struct {
		path string
		want []string
	}{
		{"/", []string{strings.ToUpper(hostileScript)}},
		{"/patients", []string{strings.ToUpper(hostileScript), hostileImg}},
		{"/patients?q=" + url.QueryEscape(hostileScript) + "&mrn=" + url.QueryEscape(hostileImg), nil},
		{"/patients/" + testPatientID, []string{strings.ToUpper(hostileScript), hostileImg}},
		{"/patients/" + testPatientID + "/edit", nil},
		{"/patients/" + testPatientID + "/merge", []string{strings.ToUpper(hostileImg)}},
		{"/patients/" + testPatientID + "/merge?q=" + url.QueryEscape(hostileImg), nil},
		{"/patients/" + testPatientID + "/merge?merged_id=" + testOtherPatient, []string{strings.ToUpper(hostileScript), strings.ToUpper(hostileImg)}},
		{"/appointments?practitioner_id=" + testPractitionerID + "&date=" + testDay, []string{name0}},
		{"/appointments?clinic_id=" + testClinicID + "&date=" + testDay + "&view=week", []string{name0, hostileImg}},
		{"/appointments?clinic_id=" + testClinicID + "&date=" + testDay + "&view=day", []string{name0, hostileImg}},
		{"/appointments/" + testApptID, []string{strings.ToUpper(hostileScript), hostileImg}},
		{"/appointments/" + testApptID + "/reschedule", []string{hostileImg}},
		{"/appointments/book?clinic_id=" + testClinicID + "&date=" + testDay + "&patient_id=" + testPatientID, []string{strings.ToUpper(hostileScript)}},
		{"/appointments/book?practitioner_id=" + testPractitionerID + "&patient_q=" + url.QueryEscape(hostileScript), []string{strings.ToUpper(hostileScript)}},
		{"/queue", nil},
		{"/queue/" + testDeptID, []string{name0, hostileImg, hostileScript}},
		{"/queue/" + testDeptID + "?fragment=queue", []string{name0, hostileImg}},
		{"/queue/" + testDeptID + "?display=1", []string{hostileScript}},
		{"/queue/" + testDeptID + "?display=1&fragment=queue", []string{hostileScript}},
		{"/queue/" + testDeptID + "?call_point=" + url.QueryEscape(hostileImg), nil},
		{"/patients?birth_date=" + url.QueryEscape(hostileScript), nil},
		{"/beds", []string{name0, hostileImg, hostileScript}},
		{"/beds?fragment=board", []string{name0, hostileImg}},
		{"/beds?ward_id=" + testWardID + "&status=" + url.QueryEscape(hostileImg), []string{name0}},
		{"/wards/" + testWardID, []string{name0, hostileImg}},
		{"/wards/" + testWardID + "?fragment=beds", []string{name0, hostileScript}},
		{"/housekeeping", []string{hostileImg}},
		{"/housekeeping?fragment=list", []string{hostileImg}},
		{"/admissions/" + testAdmissionID, []string{name0, hostileImg}},
		{"/admissions/" + testAdmissionID + "/discharge", []string{name0}},
		{"/admissions/" + testAdmissionID + "/transfer", []string{name0, hostileScript}},
		{"/admissions/new?patient_id=" + testPatientID + "&bed_id=" + url.QueryEscape(hostileImg), []string{strings.ToUpper(hostileScript), hostileImg}},
		{"/admissions/new?patient_q=" + url.QueryEscape(hostileScript), []string{strings.ToUpper(hostileScript)}},
		{"/census", []string{hostileScript, hostileImg}},
		{"/census?from=" + url.QueryEscape(hostileImg) + "&to=" + url.QueryEscape(hostileScript), nil},
	}
	for _, pg := range pages {
		check("GET "+pg.path, e.get(pg.path), pg.want...)
	}
	if t.Failed() {
		return
	}

	// Pages that come back from a form: the duplicate warning, the edit
	// conflict, the merge result, a flash naming the called patient.
	csrf := e.csrf("/patients/new")
	res := e.post("/patients/new", url.Values{"csrf_token": {csrf}, "family_name": {hostileScript}, "given_names": {hostileImg}})
	if res.StatusCode != http.StatusConflict {
		t.Fatalf("registration with a hostile name: %d, want the duplicate warning", res.StatusCode)
	}
	check("duplicate warning", res, strings.ToUpper(hostileScript), hostileImg)
	if v := attr(find(res.doc, byID("f-family_name")), "value"); v != hostileScript {
		t.Errorf("the typed name came back as %q", v)
	}
	e.api.mu.Lock()
	e.api.patients[0].Version++
	e.api.mu.Unlock()
	res = e.post("/patients/"+testPatientID+"/edit", url.Values{"csrf_token": {csrf}, "version": {"3"}, "family_name": {hostileImg},
		"given_names": {hostileScript}, "city": {hostileImg}})
	if res.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("edit conflict: %d", res.StatusCode)
	}
	check("edit conflict", res, hostileImg, hostileScript)
	res = e.post("/patients/"+testPatientID+"/identifiers", url.Values{"csrf_token": {csrf}, "identifier_type": {"NI"},
		"identifier_system": {hostileImg}, "identifier_value": {"taken"}})
	check("identifier error", res)
	res = e.post("/appointments/book", url.Values{"csrf_token": {csrf}, "patient_q": {hostileScript}, "reason": {hostileImg},
		"practitioner_id": {testPractitionerID}, "idempotency_key": {"k"}})
	check("booking error", res, hostileImg)
	e.post("/queue/"+testDeptID+"/call-next", url.Values{"csrf_token": {csrf}, "call_point": {hostileImg}})
	check("board after a call", e.get("/queue/"+testDeptID), hostileImg)
	res = e.post("/admissions/new", url.Values{"csrf_token": {csrf}, "patient_q": {hostileScript}, "reason": {hostileImg},
		"bed_id": {hostileScript}, "source": {hostileImg}, "idempotency_key": {"k"}, "expected_days": {hostileScript}})
	check("admission error", res, hostileImg)
	res = e.post("/admissions/"+testAdmissionID+"/cancel", url.Values{"csrf_token": {csrf}, "reason": {strings.Repeat(hostileImg, 20)}})
	check("cancel error", res)
	res = e.post("/patients/"+testPatientID+"/merge", url.Values{"csrf_token": {csrf}, "merged_id": {testOtherPatient}, "confirm": {"yes"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("merge: %d", res.StatusCode)
	}
	check("after the merge", e.get("/patients/"+testPatientID))
	check("merged record", e.get("/patients/"+testOtherPatient), strings.ToUpper(hostileImg))
}
