package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

// session returns the session sealed in the browser's cookie.
func (e *env) session() *session {
	e.t.Helper()
	c := e.cookie(sessionCookie)
	if c == nil {
		e.t.Fatal("no session cookie")
	}
	var s session
	if err := e.web.open(sessionCookie, c.Value, &s); err != nil {
		e.t.Fatalf("open session cookie: %v", err)
	}
	return &s
}

// as makes the fake's user hold role's permissions.
func (e *env) as(role string) {
	e.api.mu.Lock()
	defer e.api.mu.Unlock()
	e.api.role, e.api.perms = role, identity.RolePermissions[role]
}

func TestMFALoginRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.api.mfaOn = true
	e.get("/login")
	anon := e.session()

	// Step 1: the right password answers with the code step.
	res := e.post("/login", url.Values{"csrf_token": {anon.CSRF}, "username": {"nurse"}, "password": {testPassword},
		"next": {"/beds"}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("password step: %d, want 200 with the code form", res.StatusCode)
	}
	otp := find(res.doc, byID("f-otp"))
	if otp == nil || attr(otp, "name") != "otp" || attr(otp, "autocomplete") != "one-time-code" {
		t.Fatal("no one-time code field after the password step")
	}
	if find(res.doc, byAttr("name", "password")) != nil || strings.Contains(res.body, testPassword) {
		t.Fatal("the code step carries the password in the page")
	}
	if next := find(res.doc, byAttr("name", "next")); attr(next, "value") != "/beds" {
		t.Errorf("next lost at the code step: %q", attr(next, "value"))
	}
	if find(res.doc, and(byTag("a"), byAttr("href", "/login?restart=1"))) == nil {
		t.Error("no way to sign in as someone else")
	}
	pending := e.session()
	if pending.signedIn() || pending.Login == nil || pending.Login.Password != testPassword ||
		time.Until(time.Unix(pending.Login.Until, 0)) > pendingLoginTTL {
		t.Fatalf("pending sign-in in the cookie: %+v", pending.Login)
	}
	if r := e.get("/"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("half signed in, GET / = %d", r.StatusCode)
	}
	// A reload of the sign-in page stays on the code step.
	if r := e.get("/login"); find(r.doc, byID("f-otp")) == nil {
		t.Error("GET /login during the code step shows the password form")
	}

	// A missing and a wrong code are shown next to the field.
	res = e.post("/login", url.Values{"csrf_token": {anon.CSRF}, "otp": {""}, "next": {"/beds"}})
	if res.StatusCode != http.StatusBadRequest || attr(find(res.doc, byID("f-otp")), "aria-invalid") != "true" {
		t.Fatalf("empty code: %d", res.StatusCode)
	}
	res = e.post("/login", url.Values{"csrf_token": {anon.CSRF}, "otp": {"000000"}, "next": {"/beds"}})
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong code: %d, want 401", res.StatusCode)
	}
	in := find(res.doc, byID("f-otp"))
	if attr(in, "aria-invalid") != "true" || !strings.Contains(attr(in, "aria-describedby"), "f-otp-error") {
		t.Error("the wrong code error is not tied to the field")
	}
	if s := text(find(res.doc, byClass("error-summary"))); !strings.Contains(s, "not valid") {
		t.Errorf("error summary %q", s)
	}

	// Step 2: a recovery code signs in; the backend got the password again.
	res = e.post("/login", url.Values{"csrf_token": {anon.CSRF}, "otp": {testRecoveryCode}, "next": {"/beds"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/beds" {
		t.Fatalf("code step: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	last := e.api.logins[len(e.api.logins)-1]
	if last.Username != "nurse" || last.Password != testPassword || last.OTP != testRecoveryCode {
		t.Errorf("backend login %+v", last)
	}
	signed := e.session()
	if !signed.signedIn() || signed.Login != nil {
		t.Fatal("after the code the session is not signed in, or still holds the password")
	}
	if signed.SID == anon.SID || signed.CSRF == anon.CSRF {
		t.Error("the session id or CSRF token did not change at sign-in")
	}
	if !signed.MFAOn || signed.Idle != 900 {
		t.Errorf("session MFA %v idle %d", signed.MFAOn, signed.Idle)
	}
	if r := e.get("/beds"); r.StatusCode != http.StatusOK {
		t.Fatalf("GET /wards after sign-in: %d", r.StatusCode)
	}
	if logs := e.logs.String(); strings.Contains(logs, testPassword) || strings.Contains(logs, testRecoveryCode) {
		t.Errorf("the log holds the password or a code:\n%s", logs)
	}
}

func TestMFALoginStepExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.api.mfaOn = true
	token := e.csrf("/login")
	e.post("/login", url.Values{"csrf_token": {token}, "username": {"nurse"}, "password": {testPassword}})
	e.web.now = func() time.Time { return time.Now().Add(pendingLoginTTL + time.Minute) }
	res := e.post("/login", url.Values{"csrf_token": {token}, "otp": {testOTP}})
	if res.StatusCode != http.StatusBadRequest || find(res.doc, byID("f-username")) == nil {
		t.Fatalf("expired code step: %d; want the password form again", res.StatusCode)
	}
	if s := text(find(res.doc, byClass("error-summary"))); !strings.Contains(s, "took too long") {
		t.Errorf("summary %q", s)
	}
	if e.session().Login != nil {
		t.Error("the expired password is still in the cookie")
	}
	for _, l := range e.api.logins[1:] {
		if l.OTP == testOTP {
			t.Error("an expired first step was used to sign in")
		}
	}
	// "Sign in as someone else" forgets a pending step too.
	e.web.now = time.Now
	e.post("/login", url.Values{"csrf_token": {token}, "username": {"nurse"}, "password": {testPassword}})
	if r := e.get("/login?restart=1"); find(r.doc, byID("f-username")) == nil || e.session().Login != nil {
		t.Error("restart kept the code step")
	}
}

func TestForcedMFAEnrolment(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.as(identity.RoleAdmin)
	e.api.mustEnrol, e.api.mfaRole = true, true

	res := e.post("/login", url.Values{"csrf_token": {e.csrf("/login")}, "username": {"nurse"}, "password": {testPassword},
		"next": {"/admin/users"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account/mfa?next=%2Fadmin%2Fusers" {
		t.Fatalf("login of a user who must enrol: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	// Kept on the enrolment page.
	for _, path := range []string{"/", "/patients", "/admin/users", "/account", "/account/password", "/audit"} {
		if r := e.get(path); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != mfaPath {
			t.Errorf("GET %s before enrolling: %d %q", path, r.StatusCode, r.Header.Get("Location"))
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/events/ticket", nil)
	req.Header.Set("X-CSRF-Token", e.session().CSRF)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if r := e.do(req); r.StatusCode != http.StatusForbidden {
		t.Errorf("app.js call before enrolling: %d, want 403", r.StatusCode)
	}

	page := e.get("/account/mfa?next=%2Fadmin%2Fusers")
	if page.StatusCode != http.StatusOK {
		t.Fatalf("enrolment page: %d", page.StatusCode)
	}
	checkEnrolmentPage(t, page)
	if find(page.doc, byClass("site-nav")) != nil {
		t.Error("a user who must enrol sees the navigation")
	}

	// A wrong code keeps the same key and QR code on the page.
	token := e.session().CSRF
	res = e.post("/account/mfa/confirm", url.Values{"csrf_token": {token}, "code": {"654321"}, "next": {"/admin/users"}})
	if res.StatusCode != http.StatusBadRequest || attr(find(res.doc, byID("f-code")), "aria-invalid") != "true" {
		t.Fatalf("wrong code: %d", res.StatusCode)
	}
	checkEnrolmentPage(t, res)
	res = e.post("/account/mfa/confirm", url.Values{"csrf_token": {token}, "code": {"12a"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(text(find(res.doc, byID("f-code-error"))), "6-digit") {
		t.Fatalf("malformed code: %d", res.StatusCode)
	}

	// The right code (typed with a space) turns MFA on and shows the
	// recovery codes once.
	res = e.post("/account/mfa/confirm", url.Values{"csrf_token": {token}, "code": {"123 456"}, "next": {"/admin/users"}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("confirm: %d", res.StatusCode)
	}
	codes := findAll(find(res.doc, byClass("recovery-codes")), byTag("code"))
	if len(codes) != 2 || text(codes[0]) != testRecoveryCode {
		t.Fatalf("recovery codes shown: %d", len(codes))
	}
	if !strings.Contains(text(res.doc), "Store these codes now") {
		t.Error("no clear message to store the codes")
	}
	if a := find(res.doc, and(byTag("a"), byClass("button--primary"))); attr(a, "href") != "/admin/users" {
		t.Errorf("continue link %q", attr(a, "href"))
	}
	sess := e.session()
	if sess.MustEnrol || !sess.MFAOn || sess.Enrol != nil || !sess.can(identity.PermUserAdmin) {
		t.Fatalf("session after enrolment: must %v on %v pending %v perms %v", sess.MustEnrol, sess.MFAOn, sess.Enrol, sess.Perms)
	}
	if r := e.get("/"); r.StatusCode != http.StatusOK || find(r.doc, and(byTag("a"), byAttr("href", "/admin/users"))) == nil {
		t.Fatalf("after enrolment GET /: %d, or no Administration link", r.StatusCode)
	}
	// MFA cannot be turned off by a role that requires it.
	mfa := e.get("/account/mfa")
	if find(mfa.doc, and(byTag("form"), byAttr("action", "/account/mfa/disable"))) != nil {
		t.Error("an administrator is offered to turn MFA off")
	}
	if r := e.post("/account/mfa/disable", url.Values{"csrf_token": {token}, "password": {testPassword}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("disable for an administrator: %d", r.StatusCode)
	}
}

func checkEnrolmentPage(t *testing.T, res *response) {
	t.Helper()
	img := find(res.doc, and(byTag("img"), byClass("qr")))
	if !strings.HasPrefix(attr(img, "src"), "data:image/png;base64,iVBOR") || attr(img, "alt") == "" {
		t.Errorf("QR code image: src %.40q alt %q", attr(img, "src"), attr(img, "alt"))
	}
	secret := find(res.doc, func(n *html.Node) bool { return hasAttr(n, "data-mfa-secret") })
	if attr(secret, "data-mfa-secret") != testSecret {
		t.Errorf("data-mfa-secret = %q", attr(secret, "data-mfa-secret"))
	}
	if got := text(secret); !strings.Contains(got, "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP") {
		t.Errorf("secret for typing %q", got)
	}
	form := find(res.doc, and(byTag("form"), byAttr("action", "/account/mfa/confirm")))
	if form == nil || find(form, byID("f-code")) == nil || find(form, byAttr("name", "csrf_token")) == nil {
		t.Error("no confirmation form with the code field")
	}
	if attr(find(res.doc, byID("f-code")), "autocomplete") != "one-time-code" {
		t.Error("the code field is not marked one-time-code")
	}
}

func TestOptionalMFA(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	page := e.get("/account/mfa")
	start := find(page.doc, and(byTag("form"), byAttr("action", "/account/mfa/enrol")))
	if start == nil || find(page.doc, byClass("qr")) != nil {
		t.Fatal("an optional user must start the set-up with a button, not get a key on sight")
	}
	token := e.session().CSRF
	res := e.post("/account/mfa/enrol", url.Values{"csrf_token": {token}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != mfaPath {
		t.Fatalf("start: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	checkEnrolmentPage(t, e.get(mfaPath))
	if r := e.post("/account/mfa/confirm", url.Values{"csrf_token": {token}, "code": {testOTP}}); r.StatusCode != http.StatusOK {
		t.Fatalf("confirm: %d", r.StatusCode)
	}
	if a := find(e.get("/account").doc, byClass("tag--on")); text(a) != "On" {
		t.Errorf("account page MFA state %q", text(a))
	}

	// Turning it off needs the password.
	res = e.post("/account/mfa/disable", url.Values{"csrf_token": {token}, "password": {"wrong"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(text(find(res.doc, byID("f-password-error"))), "not your current password") {
		t.Fatalf("disable with a wrong password: %d", res.StatusCode)
	}
	res = e.post("/account/mfa/disable", url.Values{"csrf_token": {token}, "password": {testPassword}})
	if res.StatusCode != http.StatusSeeOther || e.api.mfaOn {
		t.Fatalf("disable: %d, backend MFA on %v", res.StatusCode, e.api.mfaOn)
	}
	if f := text(find(e.get(mfaPath).doc, byClass("flash"))); !strings.Contains(f, "now off") {
		t.Errorf("flash %q", f)
	}
}

func TestPasswordChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	page := e.get("/account/password")
	for _, id := range []string{"f-current_password", "f-new_password", "f-confirm_password"} {
		if in := find(page.doc, byID(id)); attr(in, "type") != "password" {
			t.Errorf("#%s type %q", id, attr(in, "type"))
		}
	}
	if !strings.Contains(text(find(page.doc, byID("f-new_password-hint"))), "12 characters") {
		t.Error("the policy is not stated")
	}
	token := e.session().CSRF
	post := func(cur, next, confirm string) *response {
		return e.post("/account/password", url.Values{"csrf_token": {token}, "current_password": {cur},
			"new_password": {next}, "confirm_password": {confirm}})
	}
	for _, tc := range []struct {
		cur, next, confirm, field, want string
	}{
		{testPassword, "a long new passphrase", "a long new passphrase!", "confirm_password", "do not match"},
		{"wrong", "a long new passphrase", "a long new passphrase", "current_password", "not your current password"},
		{testPassword, "short", "short", "new_password", "at least 12 characters"},
	} {
		res := post(tc.cur, tc.next, tc.confirm)
		if res.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %d", tc.field, res.StatusCode)
		}
		if msg := text(find(res.doc, byID("f-"+tc.field+"-error"))); !strings.Contains(msg, tc.want) {
			t.Errorf("%s error %q, want %q", tc.field, msg, tc.want)
		}
		if a := find(find(res.doc, byClass("error-summary")), byTag("a")); attr(a, "href") != "#f-"+tc.field {
			t.Errorf("summary links %q", attr(a, "href"))
		}
		for _, in := range findAll(res.doc, byAttr("type", "password")) {
			if attr(in, "value") != "" {
				t.Error("a password was sent back to the browser")
			}
		}
	}
	res := post(testPassword, "a long new passphrase", "a long new passphrase")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
		t.Fatalf("change: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	acct := e.get("/account")
	if acct.StatusCode != http.StatusOK || !strings.Contains(text(find(acct.doc, byClass("flash"))), "password has been changed") {
		t.Fatalf("after the change: %d, flash %q", acct.StatusCode, text(find(acct.doc, byClass("flash"))))
	}
}

func TestIdleLogoff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.login()
	page := e.get("/patients")
	if m := find(page.doc, byAttr("name", "idle-timeout")); attr(m, "content") != "900" {
		t.Fatalf("idle-timeout meta %q", attr(m, "content"))
	}
	warn := find(page.doc, byAttr("data-idle-warning", ""))
	if warn == nil || !hasAttr(warn, "hidden") || find(page.doc, byAttr("aria-live", "assertive")) == nil {
		t.Error("no hidden idle warning with an assertive live region")
	}

	// The keep-alive reaches the backend while the user is active.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+keepAlivePath, nil)
	req.Header.Set("X-CSRF-Token", e.session().CSRF)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if r := e.do(req); r.StatusCode != http.StatusNoContent {
		t.Fatalf("keep-alive: %d", r.StatusCode)
	}

	// Another site cannot sign the user out through the link.
	req, _ = http.NewRequest(http.MethodGet, e.srv.URL+"/logout?reason=idle", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r := e.do(req); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" || !e.session().signedIn() {
		t.Fatalf("cross-site logout link: %d %q", r.StatusCode, r.Header.Get("Location"))
	}

	// app.js's navigation after the time-out.
	old := e.cookie(sessionCookie).Value
	req, _ = http.NewRequest(http.MethodGet, e.srv.URL+"/logout?reason=idle&next=%2Fpatients", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res := e.do(req)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?next=%2Fpatients" {
		t.Fatalf("idle logout: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	login := e.get(res.Header.Get("Location"))
	if f := text(find(login.doc, byClass("flash"))); f != "You were signed out after 15 minutes without activity." {
		t.Errorf("sign-in page says %q", f)
	}
	if find(login.doc, byID("f-username")) == nil || find(login.doc, byClass("account")) != nil {
		t.Error("not on a signed-out sign-in page")
	}
	if len(e.api.access) != 0 {
		t.Error("the backend session was not ended")
	}
	// The cookie from before cannot be replayed.
	replay, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/patients", nil)
	replay.AddCookie(&http.Cookie{Name: sessionCookie, Value: old})
	if r, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(replay); err != nil {
		t.Fatal(err)
	} else if r.Body.Close(); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
		t.Errorf("replayed cookie: %d %q", r.StatusCode, r.Header.Get("Location"))
	}

	for secs, want := range map[int]string{0: "after a period without activity", 30: "30 seconds", 60: "1 minute without",
		600: "10 minutes"} {
		if got := idleMessage(secs); !strings.Contains(got, want) {
			t.Errorf("idleMessage(%d) = %q", secs, got)
		}
	}
}

func TestSessionIDChangesAtLoginAndLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.get("/login")
	anon := e.session()
	e.login()
	in := e.session()
	if in.SID == "" || in.SID == anon.SID {
		t.Fatalf("session id at sign-in: %q -> %q", anon.SID, in.SID)
	}
	signedInCookie := e.cookie(sessionCookie).Value
	e.post("/logout", url.Values{"csrf_token": {in.CSRF}})
	out := e.session()
	if out.SID == in.SID || out.signedIn() || out.CSRF == in.CSRF {
		t.Fatal("sign-out kept the session id, the tokens or the CSRF token")
	}
	// The signed-in cookie, replayed after sign-out, opens nothing.
	e2 := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/beds", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: signedInCookie})
	res, err := e2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Fatalf("replayed signed-in cookie after logout: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestCookieNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		secure  bool
		session string
	}{
		{false, "hospital_session"},
		{true, "__Host-hospital_session"},
	} {
		s, err := New(Options{API: client.New("http://127.0.0.1:1", nil), PublicURL: "https://erp.example", SessionKey: testKey,
			CookieSecure: tc.secure})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/login", nil)
		s.ServeHTTP(rec, req)
		cookies := rec.Result().Cookies()
		if len(cookies) != 1 || cookies[0].Name != tc.session {
			t.Fatalf("secure=%v: cookies %v, want one named %s", tc.secure, cookies, tc.session)
		}
		c := cookies[0]
		if c.Secure != tc.secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("secure=%v: cookie %+v", tc.secure, c)
		}
		raw := rec.Header().Get("Set-Cookie")
		if tc.secure && (!strings.Contains(raw, "; Secure") || strings.Contains(raw, "Domain=")) {
			t.Errorf("__Host- cookie %q needs Secure and no Domain", raw)
		}
		// The cookie works under its name, and only under it.
		req = httptest.NewRequest(http.MethodGet, "/login", nil)
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		rec = httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if len(rec.Result().Cookies()) != 0 {
			t.Errorf("secure=%v: a valid session cookie was replaced", tc.secure)
		}
		other := map[bool]string{false: "__Host-hospital_session", true: "hospital_session"}[tc.secure]
		req = httptest.NewRequest(http.MethodGet, "/login", nil)
		req.AddCookie(&http.Cookie{Name: other, Value: c.Value})
		rec = httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if got := rec.Result().Cookies(); len(got) != 1 || got[0].Name != tc.session {
			t.Errorf("secure=%v: a cookie under the other name was accepted", tc.secure)
		}
	}
	// The flash cookie follows.
	s, _ := New(Options{API: client.New("http://127.0.0.1:1", nil), SessionKey: testKey, CookieSecure: true})
	rec := httptest.NewRecorder()
	s.setFlash(rec, Flash{Message: "x"})
	if c := rec.Result().Cookies(); len(c) != 1 || c[0].Name != "__Host-hospital_flash" || !c[0].Secure {
		t.Errorf("flash cookie %v", c)
	}
}
