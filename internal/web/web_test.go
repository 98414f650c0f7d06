package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/html"
)

func TestHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.apiSrv.Close() // readiness must not depend on the backend
	for _, path := range []string{"/health/live", "/health/ready"} {
		res := e.get(path)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
		if res.Header.Get("Set-Cookie") != "" {
			t.Errorf("GET %s sets a cookie", path)
		}
	}
	e.web.SetDraining()
	if res := e.get("/health/ready"); res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("ready while draining: %d", res.StatusCode)
	}
	if res := e.get("/health/live"); res.StatusCode != http.StatusOK {
		t.Fatalf("live while draining: %d", res.StatusCode)
	}
}

func TestStaticAssetsAreHashedAndImmutable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.get("/login")
	css := find(res.doc, and(byTag("link"), byAttr("rel", "stylesheet")))
	js := find(res.doc, byTag("script"))
	if css == nil || js == nil {
		t.Fatal("the layout links no stylesheet or script")
	}
	for name, href := range map[string]string{"app.css": attr(css, "href"), "app.js": attr(js, "src")} {
		body, err := fs.ReadFile(staticFS, "static/"+name)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		ext := name[strings.LastIndex(name, "."):]
		want := "/static/" + strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:])[:12] + ext
		if href != want {
			t.Errorf("%s is linked as %q, want %q", name, href, want)
		}
		r := e.get(href)
		if r.StatusCode != http.StatusOK || r.body != string(body) {
			t.Errorf("GET %s: %d, %d bytes", href, r.StatusCode, len(r.body))
		}
		if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s: Cache-Control %q", href, cc)
		}
	}
	if ct := e.get(attr(css, "href")).Header.Get("Content-Type"); ct != "text/css; charset=utf-8" {
		t.Errorf("CSS Content-Type %q", ct)
	}
	for _, path := range []string{"/static/app.css", "/static/app.0000000000.css", "/static/../server.go", "/static/nope.js"} {
		if r := e.get(path); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, r.StatusCode)
		} else if strings.Contains(r.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("GET %s: a 404 is cached as immutable", path)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.get("/login")
	if got := res.Header.Get("Content-Security-Policy"); got != csp {
		t.Errorf("CSP = %q", got)
	}
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP allows inline code: %q", csp)
	}
	if res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("missing frame or nosniff headers")
	}
	c := e.cookie(sessionCookie)
	if c == nil {
		t.Fatal("an anonymous visitor gets no session cookie (the login form needs its CSRF token)")
	}
	var raw string
	for _, v := range res.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, sessionCookie+"=") {
			raw = v
		}
	}
	for _, want := range []string{"HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(raw, want) {
			t.Errorf("session cookie %q lacks %s", raw, want)
		}
	}
}

func TestCSRFRejectsPostsWithoutToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.csrf("/login")
	form := url.Values{"username": {"nurse"}, "password": {"correct horse"}}

	if res := e.post("/login", form); res.StatusCode != http.StatusForbidden {
		t.Fatalf("POST without token: %d, want 403", res.StatusCode)
	} else if h := find(res.doc, byTag("h1")); !strings.Contains(text(h), "expired") {
		t.Errorf("403 page heading %q", text(h))
	}
	form.Set("csrf_token", token+"x")
	if res := e.post("/login", form); res.StatusCode != http.StatusForbidden {
		t.Fatalf("POST with a wrong token: %d, want 403", res.StatusCode)
	}

	// The right token from another site is refused too.
	form.Set("csrf_token", token)
	for name, h := range map[string]map[string]string{
		"cross-site fetch":  {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		"foreign origin":    {"Origin": "https://evil.example"},
		"other public host": {"Origin": "http://127.0.0.2:3000"},
		"sandboxed frame":   {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		if res := e.do(req); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, res.StatusCode)
		}
	}
	if len(e.api.requestIDs) != 0 {
		t.Errorf("refused posts reached the backend %d times", len(e.api.requestIDs))
	}
	// Chromium sends Origin: null on same-origin form posts from pages
	// with Referrer-Policy: no-referrer (which every page has).
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "null")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if res := e.do(req); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("same-origin POST with Origin: null: %d, want 303", res.StatusCode)
	}
}

func TestLoginFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	// A page needing sign-in sends the visitor to the login page and back.
	res := e.get("/patients?q=oko")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?next=%2Fpatients%3Fq%3Doko" {
		t.Fatalf("anonymous GET /patients: %d Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	login := e.get(res.Header.Get("Location"))
	next := find(login.doc, byAttr("name", "next"))
	if attr(next, "value") != "/patients?q=oko" {
		t.Fatalf("login form next = %q", attr(next, "value"))
	}
	anonCSRF := attr(find(login.doc, byAttr("name", "csrf_token")), "value")
	for _, id := range []string{"f-username", "f-password"} {
		if find(login.doc, and(byTag("label"), byAttr("for", id))) == nil {
			t.Errorf("no label for #%s", id)
		}
	}

	res = e.post("/login", url.Values{"csrf_token": {anonCSRF}, "username": {"nurse"}, "password": {"correct horse"},
		"next": {"/patients?q=oko"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/patients?q=oko" {
		t.Fatalf("login: %d Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	page := e.get("/patients?q=oko")
	if page.StatusCode != http.StatusOK {
		t.Fatalf("GET /patients after login: %d", page.StatusCode)
	}
	if got := attr(find(page.doc, byAttr("name", "csrf_token")), "value"); got == "" || got == anonCSRF {
		t.Error("the CSRF token was not renewed at sign-in")
	}
	header := find(page.doc, byClass("account"))
	if !strings.Contains(text(header), "Nia Nurse") || !strings.Contains(text(header), "Receptionist") {
		t.Errorf("header shows %q", text(header))
	}
	if find(page.doc, and(byTag("form"), byAttr("action", "/logout"))) == nil {
		t.Error("no sign-out form")
	}

	// An absolute next is ignored.
	e2 := newEnv(t)
	res = e2.post("/login", url.Values{"csrf_token": {e2.csrf("/login")}, "username": {"nurse"},
		"password": {"correct horse"}, "next": {"//evil.example/"}})
	if res.Header.Get("Location") != "/" {
		t.Fatalf("next=//evil.example/ redirected to %q", res.Header.Get("Location"))
	}

	// Sign out ends the backend session and clears the cookie.
	res = e.post("/logout", url.Values{"csrf_token": {e.csrf("/")}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Fatalf("logout: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res := e.get("/"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET / after logout: %d", res.StatusCode)
	}
	if flash := find(e.get("/login").doc, byClass("flash")); !strings.Contains(text(flash), "signed out") {
		t.Errorf("flash after logout: %q", text(flash))
	}
}

func TestLoginShowsTheAPIsMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.csrf("/login")

	res := e.post("/login", url.Values{"csrf_token": {token}, "username": {"nurse"}, "password": {"wrong"}})
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", res.StatusCode)
	}
	if s := text(find(res.doc, byClass("error-summary"))); !strings.Contains(s, "Wrong username or password.") {
		t.Errorf("error summary %q", s)
	}
	if v := attr(find(res.doc, byID("f-username")), "value"); v != "nurse" {
		t.Errorf("username not kept: %q", v)
	}
	if v := attr(find(res.doc, byID("f-password")), "value"); v != "" {
		t.Error("the password was sent back to the browser")
	}

	res = e.post("/login", url.Values{"csrf_token": {token}, "username": {"locked"}, "password": {"x"}})
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "42" {
		t.Fatalf("rate limited: %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if s := text(find(res.doc, byClass("error-summary"))); !strings.Contains(s, "Too many sign-in attempts") || !strings.Contains(s, "42 seconds") {
		t.Errorf("error summary %q", s)
	}

	// Too many signing in at once: the form again, to send in a moment.
	res = e.post("/login", url.Values{"csrf_token": {token}, "username": {"busy"}, "password": {"x"}})
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("busy: %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if s := text(find(res.doc, byClass("error-summary"))); !strings.Contains(s, "Too many sign-ins at once") || !strings.Contains(s, "Sign in again in a moment") ||
		attr(find(res.doc, byID("f-username")), "value") != "busy" {
		t.Errorf("busy: summary %q, username kept %q", s, attr(find(res.doc, byID("f-username")), "value"))
	}

	res = e.post("/login", url.Values{"csrf_token": {token}, "username": {""}, "password": {""}})
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("empty form: %d", res.StatusCode)
	}
	in := find(res.doc, byID("f-username"))
	if attr(in, "aria-invalid") != "true" || find(res.doc, byID(attr(in, "aria-describedby"))) == nil {
		t.Error("the username error is not tied to its field")
	}
}

func TestNavigationFollowsPermissions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	nav := func(doc *html.Node) map[string]bool {
		got := map[string]bool{}
		for _, a := range findAll(find(doc, byClass("site-nav")), byTag("a")) {
			got[attr(a, "href")] = true
		}
		return got
	}
	res := e.get("/")
	got := nav(res.doc)
	for _, href := range []string{"/", "/patients", "/beds", "/api/v1/docs"} {
		if !got[href] {
			t.Errorf("receptionist's navigation lacks %s: %v", href, got)
		}
	}
	if cur := find(res.doc, byAttr("aria-current", "page")); attr(cur, "href") != "/" {
		t.Errorf("current page link %q", attr(cur, "href"))
	}
	if find(res.doc, and(byTag("a"), byAttr("href", "/patients/new"))) == nil {
		t.Error("no Register patient action for a receptionist")
	}
	if n := len(findAll(find(res.doc, byClass("patient-list")), byTag("li"))); n != 2 {
		t.Errorf("dashboard shows %d recent patients", n)
	}
	if q := e.api.patientQuery; q.Get("sort") != "-created" || q.Get("limit") != "5" {
		t.Errorf("recent patients query %v", q)
	}
	if total := text(find(res.doc, byClass("stats"))); !strings.Contains(total, "6 Total beds") || !strings.Contains(total, "3 Available") {
		t.Errorf("bed counts %q", total)
	}

	// An inventory manager sees neither patients nor beds.
	e2 := newEnv(t)
	e2.api.role, e2.api.perms = "inventory_manager", []string{"inventory.read"}
	e2.login()
	got = nav(e2.get("/").doc)
	if got["/patients"] || got["/beds"] {
		t.Errorf("inventory manager's navigation: %v", got)
	}
	if res := e2.get("/patients"); res.StatusCode != http.StatusForbidden {
		t.Errorf("GET /patients without patient.read: %d", res.StatusCode)
	}
	if res := e2.get("/patients/new"); res.StatusCode != http.StatusForbidden {
		t.Errorf("GET /patients/new without patient.write: %d", res.StatusCode)
	}
}

func TestPatientList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	res := e.get("/patients?q=Oko&sort=-name")
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /patients: %d Cache-Control %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	if q := e.api.patientQuery; q.Get("q") != "Oko" || q.Get("sort") != "-name" || q.Get("limit") != "25" {
		t.Errorf("API query %v", q)
	}
	rows := findAll(find(res.doc, byTag("tbody")), byTag("tr"))
	if len(rows) != 1 || !strings.Contains(text(rows[0]), "OKONKWO, Adaeze Grace") || !strings.Contains(text(rows[0]), "2 Mar 1984") {
		t.Fatalf("rows: %d, first %q", len(rows), text(rows[0]))
	}
	if a := find(rows[0], byTag("a")); attr(a, "href") != "/patients/"+testPatientID {
		t.Errorf("row link %q", attr(a, "href"))
	}
	sorted := findAll(res.doc, and(byTag("th"), func(n *html.Node) bool { return hasAttr(n, "aria-sort") }))
	if len(sorted) != 1 || attr(sorted[0], "aria-sort") != "descending" || !strings.Contains(text(sorted[0]), "Name") {
		t.Fatalf("aria-sort on %d headers", len(sorted))
	}
	// With a name, the default order is relevance: name order is explicit.
	if href := attr(find(sorted[0], byTag("a")), "href"); href != "/patients?q=Oko&sort=name" {
		t.Errorf("active column toggles to %q", href)
	}
	if next := find(res.doc, byAttr("rel", "next")); attr(next, "href") != "/patients?cursor=cursor-2&q=Oko&sort=-name" {
		t.Errorf("next page link %q", attr(next, "href"))
	}

	res = e.get("/patients?q=Oko&sort=-name&cursor=cursor-2")
	first := find(res.doc, and(byClass("pager__link"), func(n *html.Node) bool { return text(n) == "First page" }))
	if attr(first, "href") != "/patients?q=Oko&sort=-name" {
		t.Errorf("first page link %q", attr(first, "href"))
	}

	res = e.get("/patients?q=Zz")
	if empty := find(res.doc, byClass("empty")); !strings.Contains(text(empty), "No patients match") {
		t.Errorf("empty state %q", text(empty))
	}

	// A cursor the API refuses starts again from the first page.
	res = e.get("/patients?q=Oko&cursor=stale")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/patients?q=Oko" {
		t.Errorf("stale cursor: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	// A sort the API does not know never reaches it.
	e.get("/patients?sort=password")
	if got := e.api.patientQuery.Get("sort"); got != "name" {
		t.Errorf("unknown sort sent as %q", got)
	}
}

func TestPatientRegister(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	token := e.csrf("/patients/new")
	res := e.post("/patients/new", url.Values{"csrf_token": {token}, "family_name": {""}, "given_names": {"Ada"},
		"email": {"not-an-address"}, "city": {"Leeds"}, "sex": {"female"}})
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("invalid form: %d", res.StatusCode)
	}
	if !strings.HasPrefix(text(find(res.doc, byTag("title"))), "Error:") {
		t.Error("the title does not start with Error:")
	}
	links := findAll(find(res.doc, byClass("error-summary")), byTag("a"))
	if len(links) != 2 || attr(links[0], "href") != "#f-family_name" || text(links[0]) != "Family name is required" ||
		attr(links[1], "href") != "#f-email" {
		t.Fatalf("error summary links: %d", len(links))
	}
	for _, id := range []string{"f-family_name", "f-email"} {
		in := find(res.doc, byID(id))
		if attr(in, "aria-invalid") != "true" {
			t.Errorf("#%s has no aria-invalid", id)
		}
		if !strings.Contains(attr(in, "aria-describedby"), id+"-error") || find(res.doc, byID(id+"-error")) == nil {
			t.Errorf("#%s is not described by its error", id)
		}
	}
	if in := find(res.doc, byID("f-given_names")); attr(in, "value") != "Ada" || hasAttr(in, "aria-invalid") {
		t.Error("a valid field lost its value or is marked invalid")
	}
	if opt := find(find(res.doc, byID("f-sex")), byAttr("selected", "")); attr(opt, "value") != "female" {
		t.Errorf("selected sex %q", attr(opt, "value"))
	}
	// Every control has a label.
	for _, c := range append(findAll(res.doc, byTag("input")), findAll(res.doc, byTag("select"))...) {
		if attr(c, "type") == "hidden" || attr(c, "type") == "submit" {
			continue
		}
		if find(res.doc, and(byTag("label"), byAttr("for", attr(c, "id")))) == nil {
			t.Errorf("control %q has no label", attr(c, "name"))
		}
	}

	res = e.post("/patients/new", url.Values{"csrf_token": {token}, "family_name": {"Mensah"}, "given_names": {"Kofi"},
		"country": {"gh"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/patients/"+testPatientID {
		t.Fatalf("register: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if got := e.api.registered[len(e.api.registered)-1]; got.Country != "GH" || got.FamilyName != "Mensah" {
		t.Errorf("sent %+v", got)
	}
	page := e.get("/patients/" + testPatientID)
	if flash := text(find(page.doc, byClass("flash"))); flash != "Patient registered (MRN 10000033)." {
		t.Errorf("flash %q", flash)
	}
	if flash := find(e.get("/patients/"+testPatientID).doc, byClass("flash")); flash != nil {
		t.Error("the flash was shown twice")
	}
}

func TestPatientShow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	res := e.get("/patients/" + testPatientID)
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET patient: %d %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	if strings.Contains(text(find(res.doc, byTag("title"))), "Okonkwo") {
		t.Error("the page title names the patient")
	}
	dl := find(res.doc, byTag("dl"))
	rows := map[string]string{}
	for _, row := range findAll(dl, byClass("summary__row")) {
		rows[text(find(row, byTag("dt")))] = text(find(row, byTag("dd")))
	}
	if !strings.HasPrefix(rows["Date of birth"], "2 Mar 1984") || rows["Sex"] != "Female" || rows["Medical record number"] != "10000017" {
		t.Errorf("demographics %q", rows)
	}
	band := find(res.doc, byClass("wristband"))
	for _, want := range []string{"OKONKWO", "10000017", "2 Mar 1984", "Female"} {
		if !strings.Contains(text(band), want) {
			t.Errorf("wristband %q lacks %s", text(band), want)
		}
	}
	btn := find(res.doc, byAttr("data-print", ""))
	if btn == nil || !hasAttr(btn, "hidden") || attr(btn, "type") != "button" {
		t.Error("the print button must be a hidden button that app.js reveals")
	}
	if body := find(res.doc, byTag("body")); !strings.Contains(attr(body, "class"), "print-wristband") {
		t.Error("the patient page does not select the wristband print rules")
	}
	if res := e.get("/patients/00000000-0000-0000-0000-000000000000"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown patient: %d", res.StatusCode)
	}
}

func TestEventsTicket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	token := e.csrf("/")
	post := func(header string) *response {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/events/ticket", nil)
		if header != "" {
			req.Header.Set("X-CSRF-Token", header)
		}
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		return e.do(req)
	}
	if res := post(""); res.StatusCode != http.StatusForbidden {
		t.Fatalf("without the header: %d", res.StatusCode)
	}
	res := post(token)
	var body struct {
		Ticket string `json:"ticket"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal([]byte(res.body), &body) != nil || body.Ticket != "ticket-1" {
		t.Fatalf("ticket: %d %s", res.StatusCode, res.body)
	}
	e.api.endSessions()
	if res := post(token); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("ticket after the session ended: %d, want 401 for app.js", res.StatusCode)
	}
}

func TestTokenRefresh(t *testing.T) {
	t.Parallel()

	t.Run("before expiry, once for concurrent requests", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.api.expiresIn = 10 // inside the 30 s margin: the next call renews first
		e.login()
		// Renewed tokens last longer, so that a request that starts only
		// after another one brought the new cookie has no reason to renew.
		e.api.mu.Lock()
		e.api.expiresIn = 300
		e.api.mu.Unlock()
		before := e.cookie(sessionCookie).Value
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if res := e.get("/beds"); res.StatusCode != http.StatusOK {
					t.Errorf("GET /wards: %d", res.StatusCode)
				}
			})
		}
		wg.Wait()
		if e.api.refreshCalls != 1 {
			t.Fatalf("%d refresh calls for one token, want 1 (a second use ends the session)", e.api.refreshCalls)
		}
		if e.cookie(sessionCookie).Value == before {
			t.Error("the cookie was not rewritten with the new tokens")
		}
	})

	t.Run("once after a 401", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.login()
		e.api.revokeAccess()
		if res := e.get("/patients"); res.StatusCode != http.StatusOK {
			t.Fatalf("GET /patients after a revoked access token: %d", res.StatusCode)
		}
		if e.api.refreshCalls != 1 {
			t.Fatalf("%d refresh calls", e.api.refreshCalls)
		}
	})

	t.Run("session ended", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.login()
		e.api.endSessions()
		res := e.get("/patients?q=oko")
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?next=%2Fpatients%3Fq%3Doko" {
			t.Fatalf("ended session: %d %q", res.StatusCode, res.Header.Get("Location"))
		}
		login := e.get(res.Header.Get("Location"))
		if f := text(find(login.doc, byClass("flash"))); f != "Your session has ended; please sign in again." {
			t.Errorf("flash %q", f)
		}
		if find(login.doc, byClass("account")) != nil {
			t.Error("the user still looks signed in")
		}
	})
}

func TestBackendUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()

	e.api.mu.Lock()
	e.api.down = true
	e.api.mu.Unlock()
	res := e.get("/beds")
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("backend 503: %d", res.StatusCode)
	}
	if h := text(find(res.doc, byTag("h1"))); h != "The system is temporarily unavailable" {
		t.Errorf("heading %q", h)
	}
	if ref := text(find(res.doc, byClass("ref"))); ref == "" || ref != res.Header.Get("X-Request-ID") {
		t.Errorf("reference %q, request id %q", ref, res.Header.Get("X-Request-ID"))
	}

	// Connection refused.
	e2 := newEnv(t)
	e2.login()
	e2.apiSrv.Close()
	res = e2.get("/patients?q=Okonkwo")
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("backend down: %d", res.StatusCode)
	}
	for _, leak := range []string{"connection refused", "dial tcp", "127.0.0.1", "api/v1/patients"} {
		if strings.Contains(res.body, leak) {
			t.Errorf("the page shows internal text %q", leak)
		}
	}
	if logs := e2.logs.String(); strings.Contains(logs, "Okonkwo") || strings.Contains(logs, "access-") {
		t.Errorf("the log holds patient data or a token:\n%s", logs)
	}
	if !strings.Contains(e2.logs.String(), "backend unreachable") {
		t.Error("the outage was not logged")
	}
}

func TestRequestIDReachesTheBackend(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/beds", nil)
	req.Header.Set("X-Request-ID", "trace-me-123")
	res := e.do(req)
	if res.Header.Get("X-Request-ID") != "trace-me-123" {
		t.Fatalf("response id %q", res.Header.Get("X-Request-ID"))
	}
	if ids := e.api.requestIDs; ids[len(ids)-1] != "trace-me-123" {
		t.Errorf("backend saw %q", ids[len(ids)-1])
	}
	if foot := text(find(res.doc, byClass("site-footer__request"))); !strings.Contains(foot, "trace-me-123") {
		t.Errorf("footer %q", foot)
	}
}

func TestNotFoundAndMethodPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.get("/no/such/page")
	if res.StatusCode != http.StatusNotFound || text(find(res.doc, byTag("h1"))) != "Page not found" {
		t.Fatalf("404: %d %q", res.StatusCode, text(find(res.doc, byTag("h1"))))
	}
	req, _ := http.NewRequest(http.MethodDelete, e.srv.URL+"/login", nil)
	if res := e.do(req); res.StatusCode != http.StatusForbidden && res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE /login: %d", res.StatusCode)
	}
}

func TestDashboardSectionsFailAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	e.api.mu.Lock()
	e.api.wardsDown = true
	e.api.mu.Unlock()
	res := e.get("/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("dashboard with the ward list down: %d", res.StatusCode)
	}
	if n := find(res.doc, byClass("notice")); text(n) != unavailableSection {
		t.Errorf("beds section shows %q", text(n))
	}
	if n := len(findAll(find(res.doc, byClass("patient-list")), byTag("li"))); n != 2 {
		t.Errorf("recent patients: %d, want 2 despite the ward outage", n)
	}
}
