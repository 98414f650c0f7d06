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

func navLinks(doc *html.Node) map[string]bool {
	got := map[string]bool{}
	for _, a := range findAll(find(doc, byClass("site-nav")), byTag("a")) {
		got[attr(a, "href")] = true
	}
	return got
}

func TestNavigationForAdministratorsAndAuditors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		role      string
		want, not []string
	}{
		{identity.RoleAdmin, []string{"/admin/users", "/emergency-access", "/account"}, []string{"/audit", "/patients"}},
		{identity.RoleAuditor, []string{"/audit", "/emergency-access", "/account"}, []string{"/admin/users", "/patients"}},
		{identity.RoleNurse, []string{"/patients", "/account"}, []string{"/audit", "/admin/users", "/emergency-access"}},
	} {
		e := newEnv(t)
		e.as(tc.role)
		e.login()
		got := navLinks(e.get("/").doc)
		for _, h := range tc.want {
			if !got[h] {
				t.Errorf("%s: navigation lacks %s: %v", tc.role, h, got)
			}
		}
		for _, h := range tc.not {
			if got[h] {
				t.Errorf("%s: navigation offers %s", tc.role, h)
			}
		}
		// Pages without the permission are refused before any backend call.
		for _, h := range tc.not {
			if h == "/patients" {
				continue
			}
			if r := e.get(h); r.StatusCode != http.StatusForbidden {
				t.Errorf("%s: GET %s = %d, want 403", tc.role, h, r.StatusCode)
			}
		}
	}
}

func TestAdminUserList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.as(identity.RoleAdmin)
	e.login()
	res := e.get("/admin/users?q=J.&role=nurse&status=disabled")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/users: %d", res.StatusCode)
	}
	if q := e.api.userQuery; q.Get("q") != "j." || q.Get("role") != "nurse" || q.Get("active") != "false" || q.Get("limit") != "25" {
		t.Errorf("API query %v", q)
	}
	rows := findAll(find(res.doc, byTag("tbody")), byTag("tr"))
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	if a := find(rows[0], byTag("a")); attr(a, "href") != "/admin/users/"+testUserID {
		t.Errorf("row link %q", attr(a, "href"))
	}
	if got := text(rows[1]); !strings.Contains(got, "Required, not set up") || !strings.Contains(got, "Disabled") || !strings.Contains(got, "Never") {
		t.Errorf("second row %q", got)
	}
	if opt := find(find(res.doc, byID("f-role")), byAttr("selected", "")); attr(opt, "value") != "nurse" {
		t.Errorf("role filter keeps %q", attr(opt, "value"))
	}
	if next := find(res.doc, byAttr("rel", "next")); attr(next, "href") != "/admin/users?cursor=users-2&q=j.&role=nurse&status=disabled" {
		t.Errorf("next link %q", attr(next, "href"))
	}
	// Unknown filter values never reach the backend.
	e.get("/admin/users?role=superuser&status=maybe")
	if q := e.api.userQuery; q.Has("role") || q.Has("active") {
		t.Errorf("unknown filters sent: %v", q)
	}
}

func TestAdminUserCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.as(identity.RoleAdmin)
	e.login()
	page := e.get("/admin/users/new")
	if page.StatusCode != http.StatusOK {
		t.Fatalf("GET new: %d", page.StatusCode)
	}
	var roles []string
	for _, o := range findAll(find(page.doc, byID("f-role")), byTag("option")) {
		roles = append(roles, attr(o, "value"))
	}
	if len(roles) != len(identity.RolePermissions)+1 || !slices.Contains(roles, identity.RoleAuditor) {
		t.Errorf("role options %v", roles)
	}
	if o := findAll(find(page.doc, byID("f-department_id")), byTag("option")); len(o) != 2 || attr(o[1], "value") != testDeptID {
		t.Errorf("department options: %d", len(o))
	}
	wards := findAll(find(page.doc, byID("f-ward_ids")), byAttr("type", "checkbox"))
	if len(wards) != 2 || attr(wards[0], "value") != testWardID || attr(wards[0], "name") != "ward_ids" {
		t.Fatalf("ward choices: %d", len(wards))
	}
	if find(page.doc, and(byTag("legend"), byClass("field__label"))) == nil {
		t.Error("the ward group has no legend")
	}

	token := e.session().CSRF
	form := url.Values{"csrf_token": {token}, "username": {"K.Mensah"}, "display_name": {"Kofi Mensah"},
		"role": {identity.RoleNurse}, "department_id": {testDeptID}, "ward_ids": {testWardID, e.api.wards[1].ID},
		"password": {"too short"}}
	res := e.post("/admin/users/new", form)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("weak password: %d", res.StatusCode)
	}
	pw := find(res.doc, byID("f-password"))
	if attr(pw, "aria-invalid") != "true" || attr(pw, "value") != "" {
		t.Error("the password field is not marked, or its value was sent back")
	}
	if msg := text(find(res.doc, byID("f-password-error"))); msg != "Error: Initial password must be at least 12 characters" {
		t.Errorf("password error %q", msg)
	}
	if a := find(find(res.doc, byClass("error-summary")), byTag("a")); attr(a, "href") != "#f-password" {
		t.Errorf("summary link %q", attr(a, "href"))
	}
	if v := attr(find(res.doc, byID("f-username")), "value"); v != "k.mensah" {
		t.Errorf("username kept as %q", v)
	}
	if checked := findAll(find(res.doc, byID("f-ward_ids")), byAttr("checked", "")); len(checked) != 2 {
		t.Errorf("%d wards still ticked, want 2", len(checked))
	}
	if sent := e.api.created[len(e.api.created)-1]; len(sent.WardIDs) != 2 || sent.DepartmentID != testDeptID || sent.Username != "k.mensah" {
		t.Errorf("sent %+v", sent)
	}

	// Required fields are checked before the backend is asked.
	n := len(e.api.created)
	res = e.post("/admin/users/new", url.Values{"csrf_token": {token}})
	if res.StatusCode != http.StatusBadRequest || len(e.api.created) != n {
		t.Fatalf("empty form: %d, backend calls %d", res.StatusCode, len(e.api.created)-n)
	}
	if links := findAll(find(res.doc, byClass("error-summary")), byTag("a")); len(links) != 4 {
		t.Errorf("%d summary links for an empty form, want 4", len(links))
	}

	form.Set("username", "taken")
	form.Set("password", "a long enough password")
	if res := e.post("/admin/users/new", form); res.StatusCode != http.StatusConflict ||
		!strings.Contains(text(find(res.doc, byID("f-username-error"))), "taken") {
		t.Fatalf("taken username: %d", res.StatusCode)
	}

	form.Set("username", "k.mensah")
	res = e.post("/admin/users/new", form)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/users/5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e" {
		t.Fatalf("create: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if f := text(find(e.get(res.Header.Get("Location")).doc, byClass("flash"))); f != "User k.mensah added." {
		t.Errorf("flash %q", f)
	}
}

func TestAdminUserEdit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.as(identity.RoleAdmin)
	e.login()
	path := "/admin/users/" + testUserID
	page := e.get(path)
	if v := attr(find(page.doc, byAttr("name", "version")), "value"); v != "3" {
		t.Fatalf("version field %q", v)
	}
	if opt := find(find(page.doc, byID("f-role")), byAttr("selected", "")); attr(opt, "value") != identity.RoleNurse {
		t.Errorf("role preselected %q", attr(opt, "value"))
	}
	token := e.session().CSRF
	form := url.Values{"csrf_token": {token}, "version": {"2"}, "display_name": {"Jo Smith-Jones"},
		"role": {identity.RolePhysician}, "department_id": {testDeptID}}

	// Someone else saved version 3 meanwhile.
	res := e.post(path, form)
	if res.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("stale version: %d, want 412", res.StatusCode)
	}
	if s := text(find(res.doc, byClass("error-summary"))); !strings.Contains(s, "Someone else changed this user") {
		t.Errorf("summary %q", s)
	}
	if v := attr(find(res.doc, byAttr("name", "version")), "value"); v != "3" {
		t.Errorf("after a conflict the form carries version %q, want the current 3", v)
	}
	if v := attr(find(res.doc, byID("f-display_name")), "value"); v != "Jo Smith" {
		t.Errorf("after a conflict the form shows %q, want the saved name", v)
	}
	if len(e.api.updated) != 0 {
		t.Fatal("a stale change was saved")
	}

	form.Set("version", "3")
	res = e.post(path, form)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != path {
		t.Fatalf("update: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if u := e.api.updated[0]; u.Role != identity.RolePhysician || len(u.WardIDs) != 0 || u.WardIDs == nil {
		t.Errorf("sent %+v (no ward ticked must send an empty list)", u)
	}

	// Password reset: a mismatch is caught here, a weak one by the backend.
	res = e.post(path+"/password", url.Values{"csrf_token": {token}, "new_password": {"one long password"}, "confirm_password": {"another"}})
	if res.StatusCode != http.StatusBadRequest || find(res.doc, byID("f-confirm_password-error")) == nil {
		t.Fatalf("mismatch: %d", res.StatusCode)
	}
	res = e.post(path+"/password", url.Values{"csrf_token": {token}, "new_password": {"short"}, "confirm_password": {"short"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(text(find(res.doc, byID("f-new_password-error"))), "12 characters") {
		t.Fatalf("weak: %d", res.StatusCode)
	}
	res = e.post(path+"/password", url.Values{"csrf_token": {token}, "new_password": {"one long password"}, "confirm_password": {"one long password"}})
	if res.StatusCode != http.StatusSeeOther || !slices.Contains(e.api.actions, "password "+testUserID) {
		t.Fatalf("reset: %d %v", res.StatusCode, e.api.actions)
	}
	if r := e.get("/admin/users/00000000-0000-4000-8000-000000000000"); r.StatusCode != http.StatusNotFound {
		t.Errorf("unknown user: %d", r.StatusCode)
	}
}

func TestAdminDestructiveActionsAskFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.as(identity.RoleAdmin)
	e.login()
	path := "/admin/users/" + testUserID
	token := e.session().CSRF
	show := e.get(path)
	for _, key := range []string{"disable", "end-sessions"} {
		if a := find(show.doc, and(byTag("a"), byAttr("href", path+"/"+key))); a == nil {
			t.Errorf("no link to confirm %s", key)
		}
	}
	for key, want := range map[string]string{"disable": "disable " + testUserID, "end-sessions": "revoke " + testUserID,
		"reset-mfa": "mfa-reset " + testUserID} {
		// A post that skipped the question is sent to it.
		res := e.post(path+"/"+key, url.Values{"csrf_token": {token}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != path+"/"+key || slices.Contains(e.api.actions, want) {
			t.Fatalf("%s without confirm: %d %q %v", key, res.StatusCode, res.Header.Get("Location"), e.api.actions)
		}
		page := e.get(path + "/" + key)
		form := find(page.doc, and(byTag("form"), byAttr("action", path+"/"+key)))
		if page.StatusCode != http.StatusOK || form == nil || attr(find(form, byAttr("name", "confirm")), "value") != "yes" {
			t.Fatalf("%s confirmation page: %d", key, page.StatusCode)
		}
		if find(page.doc, and(byTag("a"), byAttr("href", path))) == nil {
			t.Errorf("%s: no way to cancel", key)
		}
		res = e.post(path+"/"+key, url.Values{"csrf_token": {token}, "confirm": {"yes"}})
		if res.StatusCode != http.StatusSeeOther || !slices.Contains(e.api.actions, want) {
			t.Fatalf("%s confirmed: %d %v", key, res.StatusCode, e.api.actions)
		}
		if f := find(e.get(path).doc, byClass("flash--success")); text(f) == "" {
			t.Errorf("%s: no confirmation message", key)
		}
	}
	// Enabling needs no question.
	res := e.post(path+"/enable", url.Values{"csrf_token": {token}})
	if res.StatusCode != http.StatusSeeOther || !slices.Contains(e.api.actions, "enable "+testUserID) {
		t.Fatalf("enable: %d", res.StatusCode)
	}
}

func TestRolesPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.as(identity.RoleAdmin)
	e.login()
	res := e.get("/admin/roles")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/roles: %d", res.StatusCode)
	}
	heads := findAll(find(res.doc, byTag("thead")), byTag("th"))
	if len(heads) != len(identity.RolePermissions)+1 {
		t.Fatalf("%d columns", len(heads))
	}
	col := -1
	for i, th := range heads {
		if text(th) == "Physician" {
			col = i
		}
	}
	for _, tr := range findAll(res.doc, byTag("tr")) {
		th := find(tr, byAttr("scope", "row"))
		if th == nil || !strings.Contains(text(th), identity.PermEmergencyAccess) {
			continue
		}
		cells := findAll(tr, byTag("td"))
		if got := text(cells[col-1]); got != "✓Yes" {
			t.Errorf("physician's emergency access cell %q", got)
		}
		return
	}
	t.Fatal("no row for the emergency access permission")
}

func TestEmergencyAccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.as(identity.RolePhysician)
	e.api.restricted[testPatientID] = true
	e.login()
	path := "/patients/" + testPatientID
	res := e.get(path)
	if res.StatusCode != http.StatusForbidden || text(find(res.doc, byTag("h1"))) != "This patient is not under your care" {
		t.Fatalf("out-of-care patient: %d %q", res.StatusCode, text(find(res.doc, byTag("h1"))))
	}
	if strings.Contains(res.body, "Okonkwo") {
		t.Error("the refusal page shows the patient's name")
	}
	form := find(res.doc, and(byTag("form"), byAttr("action", path+"/emergency-access")))
	if form == nil || find(form, and(byTag("textarea"), byID("f-reason"))) == nil {
		t.Fatal("no emergency access form with a reason")
	}
	token := e.session().CSRF
	res = e.post(path+"/emergency-access", url.Values{"csrf_token": {token}, "reason": {"urgent"}})
	if res.StatusCode != http.StatusBadRequest || attr(find(res.doc, byID("f-reason")), "aria-invalid") != "true" ||
		text(find(res.doc, byID("f-reason"))) != "urgent" {
		t.Fatalf("short reason: %d", res.StatusCode)
	}
	if len(e.api.grants) != 1 {
		t.Fatal("a short reason reached the backend")
	}
	res = e.post(path+"/emergency-access", url.Values{"csrf_token": {token}, "reason": {"Cardiac arrest call, patient unresponsive"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != path {
		t.Fatalf("grant: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	page := e.get(path)
	banner := find(page.doc, byClass("banner--emergency"))
	until := e.api.grants[len(e.api.grants)-1].ExpiresAt
	want := "Emergency access until " + clockTime(until) + " — this access is audited."
	if page.StatusCode != http.StatusOK || text(banner) != want {
		t.Fatalf("patient page after the grant: %d, banner %q, want %q", page.StatusCode, text(banner), want)
	}
	if tm := find(banner, byTag("time")); attr(tm, "datetime") != isoTime(until) {
		t.Errorf("banner time %q", attr(tm, "datetime"))
	}

	// Without the permission, no form is offered, and posting is refused.
	e2 := newEnv(t)
	e2.api.restricted[testPatientID] = true
	e2.login()
	res = e2.get(path)
	if res.StatusCode != http.StatusForbidden || find(res.doc, byID("f-reason")) != nil {
		t.Fatalf("receptionist: %d, form offered %v", res.StatusCode, find(res.doc, byID("f-reason")) != nil)
	}
	if r := e2.post(path+"/emergency-access", url.Values{"csrf_token": {e2.session().CSRF}, "reason": {"long enough reason"}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("receptionist posting: %d", r.StatusCode)
	}
}

func TestEmergencyReview(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.as(identity.RoleAuditor)
	e.login()
	res := e.get("/emergency-access")
	grants := findAll(res.doc, byClass("grant"))
	if res.StatusCode != http.StatusOK || len(grants) != 1 {
		t.Fatalf("review list: %d, %d grants", res.StatusCode, len(grants))
	}
	for _, want := range []string{"Nia Nurse", "Nurse", "10000017", "Cardiac arrest call in A&E", "Not reviewed"} {
		if !strings.Contains(text(grants[0]), want) {
			t.Errorf("grant lacks %q: %q", want, text(grants[0]))
		}
	}
	form := find(grants[0], byTag("form"))
	id := e.api.grants[0].ID
	if attr(form, "action") != "/emergency-access/"+id+"/review" || find(form, byTag("textarea")) == nil {
		t.Fatal("no review form with a note")
	}
	token := e.session().CSRF
	res = e.post("/emergency-access/"+id+"/review", url.Values{"csrf_token": {token}, "note": {strings.Repeat("x", 501)}})
	if res.StatusCode != http.StatusBadRequest || attr(find(res.doc, byTag("textarea")), "aria-invalid") != "true" {
		t.Fatalf("long note: %d", res.StatusCode)
	}
	res = e.post("/emergency-access/"+id+"/review", url.Values{"csrf_token": {token}, "note": {"Confirmed with A&E lead"}})
	if res.StatusCode != http.StatusSeeOther || e.api.reviewed[id] != "note:Confirmed with A&E lead" {
		t.Fatalf("review: %d %v", res.StatusCode, e.api.reviewed)
	}
	after := e.get("/emergency-access")
	if len(findAll(after.doc, byClass("grant"))) != 0 || !strings.Contains(text(find(after.doc, byClass("flash"))), "reviewed") {
		t.Error("the reviewed grant is still listed as to review")
	}
	all := e.get("/emergency-access?show=all")
	if g := findAll(all.doc, byClass("grant--reviewed")); len(g) != 1 || find(g[0], byTag("form")) != nil {
		t.Error("the reviewed grant is not shown as reviewed under All")
	}
	// Reviewing twice says so.
	res = e.post("/emergency-access/"+id+"/review", url.Values{"csrf_token": {token}})
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(text(find(e.get("/emergency-access").doc, byClass("flash"))), "already reviewed") {
		t.Errorf("second review: %d", res.StatusCode)
	}
}
