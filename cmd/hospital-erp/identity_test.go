package main

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
)

// fakeClock is a clock the test moves forward.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const testPassword = "correct horse battery staple"

// account is a signed-in test user.
type account struct {
	ID     string
	Name   string
	Token  string
	Secret string // TOTP secret when enrolled
	C      *client.Client
}

// newUser creates a user with role (and wards) and signs them in; roles
// that must use MFA are enrolled, so the session has its permissions.
func (tb *testBackend) newUser(t *testing.T, role string, wards ...string) account {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("%s.%s", strings.ReplaceAll(role, "_", ""), strings.ToLower(uuid.NewString()[:8]))
	u, err := tb.Identity.CreateUserAsSystem(ctx, name, "Test "+role, role, "", testPassword)
	if err != nil {
		t.Fatalf("create %s: %v", role, err)
	}
	if len(wards) > 0 {
		for _, w := range wards {
			if _, err := tb.DB.Pool.Exec(ctx, "INSERT INTO user_wards (user_id, ward_id) VALUES ($1, $2)", u.ID, w); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := client.New(tb.URL, nil)
	tok, err := c.Login(ctx, name, testPassword)
	if err != nil {
		t.Fatalf("login %s: %v", role, err)
	}
	a := account{ID: u.ID, Name: name, Token: tok.AccessToken, C: c.WithToken(tok.AccessToken)}
	sensitive(tok.AccessToken, tok.RefreshToken)
	if identity.MFARequired[role] {
		e, err := a.C.EnrolMFA(ctx)
		if err != nil {
			t.Fatalf("enrol %s: %v", role, err)
		}
		code, _ := identity.TOTPCode(e.Secret, tb.now())
		if _, err := a.C.ConfirmMFA(ctx, code); err != nil {
			t.Fatalf("confirm MFA for %s: %v", role, err)
		}
		a.Secret = e.Secret
	}
	return a
}

func (tb *testBackend) now() time.Time {
	if tb.clock != nil {
		return tb.clock()
	}
	return time.Now()
}

// Every route answers each role exactly as the permission table says:
// 403 without the permission, never 401/403 with it, 401 without a token.
func TestRouteAccessMatrix(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	public := map[string]bool{
		"GET /health/live": true, "GET /health/ready": true, "GET /api/v1/openapi.json": true, "GET /api/v1/docs": true,
		"POST /api/v1/auth/login": true, "POST /api/v1/auth/refresh": true, "GET /api/v1/auth/jwks.json": true,
	}
	routes := tb.Server.Routes()
	for _, r := range routes {
		key := r.Method + " " + r.Path
		if r.Perm == "" {
			t.Fatalf("route %s declares no permission", key)
		}
		if (r.Perm == httpx.Public) != public[key] {
			t.Errorf("route %s is %q: only the allow-list may be public", key, r.Perm)
		}
	}
	// Logout ends the session: run it last.
	sort.SliceStable(routes, func(i, j int) bool { return routes[j].Path == "/api/v1/auth/logout" })
	// Policy beyond the table: roles that must use MFA cannot turn it off.
	policy := map[string]map[string]int{"POST /api/v1/auth/mfa/disable": {identity.RoleAdmin: 403, identity.RoleAuditor: 403}}

	call := func(r httpx.Route, token string) int {
		path := regexp.MustCompile(`\{[a-z_]+\}`).ReplaceAllStringFunc(r.Path, func(string) string { return uuid.NewString() })
		req, _ := http.NewRequest(r.Method, tb.URL+path, nil)
		if r.Method == "POST" || r.Method == "PUT" {
			req, _ = http.NewRequest(r.Method, tb.URL+path, strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("If-Match", `"1"`)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, r := range routes {
		if status := call(r, ""); r.Perm != httpx.Public && status != 401 {
			t.Errorf("anonymous %s %s = %d, want 401", r.Method, r.Path, status)
		}
	}
	for _, role := range identity.Roles() {
		a := tb.newUser(t, role)
		perms := identity.PermissionSet(role)
		for _, r := range routes {
			key := r.Method + " " + r.Path
			status := call(r, a.Token)
			if r.Perm == httpx.Public {
				continue // login and refresh authenticate by their body
			}
			allowed := r.Perm == httpx.Authenticated || perms[r.Perm]
			switch want, special := policy[key][role]; {
			case special:
				if status != want {
					t.Errorf("%s %s = %d, want %d (policy)", role, key, status, want)
				}
			case allowed && (status == 401 || status == 403):
				t.Errorf("%s %s = %d, but the role holds %s", role, key, status, r.Perm)
			case !allowed && status != 403:
				t.Errorf("%s %s = %d, want 403 (lacks %s)", role, key, status, r.Perm)
			case status >= 500:
				t.Errorf("%s %s = %d", role, key, status)
			}
		}
	}
	// Refusals are audited.
	var denied int
	if err := tb.DB.Pool.QueryRow(context.Background(),
		"SELECT count(*) FROM audit_events WHERE action = 'access.denied' AND outcome = 'denied'").Scan(&denied); err != nil || denied == 0 {
		t.Fatalf("denied requests audited: %d, %v", denied, err)
	}
}

// A nurse of ward A sees ward A's patient, not ward B's; the refusal is
// audited; emergency access opens ward B's patient for a while, audited
// and counted; lists are scoped the same way.
func TestCareScopeAndEmergencyAccess(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	wardA, wardB := seedWardsAB(t, tb)
	rec := tb.newUser(t, identity.RoleReceptionist)
	pa, err := rec.C.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Inward", GivenNames: "Alice"}})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := rec.C.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Otherward", GivenNames: "Bob"}})
	if err != nil {
		t.Fatal(err)
	}
	sensitive("Inward", "Otherward")
	assign(t, tb, pa.ID, wardA)
	assign(t, tb, pb.ID, wardB)

	nurse := tb.newUser(t, identity.RoleNurse, wardA)
	if _, err := nurse.C.Patient(ctx, pa.ID); err != nil {
		t.Fatalf("nurse of ward A reading ward A's patient: %v", err)
	}
	if _, err := nurse.C.Patient(ctx, pb.ID); client.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("nurse of ward A reading ward B's patient: %v, want 403", err)
	}
	var denied int
	if err := tb.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = 'patient.read'
		AND outcome = 'denied' AND patient_id = $1 AND actor_id = $2`, pb.ID, nurse.ID).Scan(&denied); err != nil || denied != 1 {
		t.Fatalf("denied read audited %d times, %v; want 1", denied, err)
	}
	// Updates go through the same check.
	if _, err := nurse.C.UpdatePatient(ctx, pb.ID, 1, patient.UpdateInput{Demographics: patient.Demographics{FamilyName: "X", GivenNames: "Y"}}); client.StatusOf(err) != 403 {
		t.Fatalf("nurse updating ward B's patient: %v", err)
	}
	// Lists hold only patients in scope.
	page, err := nurse.C.Patients(ctx, client.PatientQuery{})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != pa.ID {
		t.Fatalf("nurse's list = %v, %v; want only ward A's patient", page.Items, err)
	}
	// The receptionist (not care-scoped) sees both.
	if all, err := rec.C.Patients(ctx, client.PatientQuery{}); err != nil || len(all.Items) != 2 {
		t.Fatalf("receptionist's list: %d, %v", len(all.Items), err)
	}
	// Break the glass.
	before := counterValue(t, tb.Metrics, "emergency_access_grants_total", "")
	if _, err := nurse.C.RequestEmergencyAccess(ctx, pb.ID, "short"); client.StatusOf(err) != 400 {
		t.Fatalf("emergency access without a real reason: %v", err)
	}
	g, err := nurse.C.RequestEmergencyAccess(ctx, pb.ID, "Patient collapsed in corridor, no ward nurse available")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nurse.C.Patient(ctx, pb.ID); err != nil {
		t.Fatalf("read after emergency access: %v", err)
	}
	if after := counterValue(t, tb.Metrics, "emergency_access_grants_total", ""); after != before+1 {
		t.Fatalf("grants metric %v -> %v", before, after)
	}
	var grants int
	if err := tb.DB.Pool.QueryRow(ctx, "SELECT count(*) FROM audit_events WHERE action = 'patient.emergency_access' AND patient_id = $1", pb.ID).Scan(&grants); err != nil || grants != 1 {
		t.Fatalf("emergency access audited %d times", grants)
	}
	// Receptionists cannot break the glass; administrators review grants.
	if _, err := rec.C.RequestEmergencyAccess(ctx, pa.ID, "I would like to look at this record"); client.StatusOf(err) != 403 {
		t.Fatalf("receptionist breaking the glass: %v", err)
	}
	admin := tb.newUser(t, identity.RoleAdmin)
	unreviewed := true
	list, err := admin.C.EmergencyGrants(ctx, &unreviewed, 10)
	if err != nil || len(list) != 1 || list[0].ID != g.ID || list[0].Username != nurse.Name || list[0].PatientMRN != pb.MRN {
		t.Fatalf("grants for review = %+v, %v", list, err)
	}
	if err := admin.C.ReviewEmergencyGrant(ctx, g.ID, "Confirmed with ward manager"); err != nil {
		t.Fatal(err)
	}
	if list, _ := admin.C.EmergencyGrants(ctx, &unreviewed, 10); len(list) != 0 {
		t.Fatalf("reviewed grant still unreviewed: %+v", list)
	}
}

func seedWardsAB(t *testing.T, tb *testBackend) (string, string) {
	t.Helper()
	ctx := context.Background()
	var dept, a, b string
	if err := tb.DB.Pool.QueryRow(ctx, "INSERT INTO departments (code, name, kind) VALUES ('MED', 'Medicine', 'clinical') RETURNING id").Scan(&dept); err != nil {
		t.Fatal(err)
	}
	for code, dst := range map[string]*string{"WA": &a, "WB": &b} {
		if err := tb.DB.Pool.QueryRow(ctx, "INSERT INTO wards (department_id, code, name) VALUES ($1, $2, $2) RETURNING id", dept, code).Scan(dst); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

func assign(t *testing.T, tb *testBackend, patientID, wardID string) {
	t.Helper()
	if _, err := tb.DB.Pool.Exec(context.Background(),
		"INSERT INTO care_assignments (patient_id, ward_id, reason) VALUES ($1, $2, 'admitted')", patientID, wardID); err != nil {
		t.Fatal(err)
	}
}

// Forged, expired and misused tokens are all refused with 401.
func TestTokenForgery(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	nurse := tb.newUser(t, identity.RoleNurse)
	good := nurse.Token
	parts := strings.Split(good, ".")
	var claims map[string]any
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(payload, &claims)
	var header map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	_ = json.Unmarshal(hb, &header)

	block, _ := pem.Decode([]byte(tb.Keys))
	key, _ := x509.ParsePKCS8PrivateKey(block.Bytes)
	priv := key.(ed25519.PrivateKey)
	pub := priv.Public().(ed25519.PublicKey)
	sign := func(mutate func(c jwt.MapClaims), kid any) string {
		c := jwt.MapClaims{}
		for k, v := range claims {
			c[k] = v
		}
		mutate(c)
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	now := time.Now().Unix()
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims))
	hs.Header["kid"] = header["kid"]
	hsToken, _ := hs.SignedString([]byte(pub))
	tampered := claims
	tampered["role"] = "admin"
	refreshTok, _ := client.New(tb.URL, nil).Login(context.Background(), nurse.Name, testPassword)

	cases := map[string]string{
		"alg none":            enc(map[string]any{"alg": "none", "typ": "JWT", "kid": header["kid"]}) + "." + parts[1] + ".",
		"HS256 with pub key":  hsToken,
		"expired":             sign(func(c jwt.MapClaims) { c["exp"] = now - 60; c["iat"] = now - 600 }, header["kid"]),
		"not yet valid":       sign(func(c jwt.MapClaims) { c["nbf"] = now + 600 }, header["kid"]),
		"issued in future":    sign(func(c jwt.MapClaims) { c["iat"] = now + 600 }, header["kid"]),
		"wrong audience":      sign(func(c jwt.MapClaims) { c["aud"] = []string{"another-service"} }, header["kid"]),
		"wrong issuer":        sign(func(c jwt.MapClaims) { c["iss"] = "evil" }, header["kid"]),
		"unknown kid":         sign(func(c jwt.MapClaims) {}, "no-such-key"),
		"no exp":              sign(func(c jwt.MapClaims) { delete(c, "exp") }, header["kid"]),
		"other subject":       sign(func(c jwt.MapClaims) { c["sub"] = uuid.NewString() }, header["kid"]),
		"tampered payload":    parts[0] + "." + enc(tampered) + "." + parts[2],
		"refresh as access":   refreshTok.RefreshToken,
		"ws ticket as access": mustTicket(t, nurse),
		"garbage":             "abc.def.ghi",
	}
	for name, tok := range cases {
		status, h, body := raw(t, "GET", tb.URL+"/api/v1/auth/me", "", nil, tok)
		if status != 401 {
			t.Errorf("%s: status %d, want 401: %s", name, status, body)
			continue
		}
		assertProblem(t, h, body, 401)
	}
	if status, _, _ := raw(t, "GET", tb.URL+"/api/v1/auth/me", "", nil, good); status != 200 {
		t.Fatalf("the untouched token was refused: %d", status)
	}
}

func mustTicket(t *testing.T, a account) string {
	t.Helper()
	tk, err := a.C.WSTicket(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tk.Ticket
}

// Idle time-out and absolute lifetime, with a clock the test controls.
func TestSessionTimeouts(t *testing.T) {
	clock := newFakeClock()
	tb := startBackend(t, backendOpts{clock: clock.Now, env: map[string]string{
		"SESSION_IDLE_TIMEOUT": "15m", "SESSION_MAX_LIFETIME": "1h", "ACCESS_TOKEN_TTL": "5m"}})
	ctx := context.Background()
	nurse := tb.newUser(t, identity.RoleNurse)
	c := client.New(tb.URL, nil)
	// Idle: 16 minutes without a request ends the session, also for refresh.
	tok, err := c.Login(ctx, nurse.Name, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(4 * time.Minute)
	if _, err := c.WithToken(tok.AccessToken).Me(ctx); err != nil {
		t.Fatalf("active session: %v", err)
	}
	// SessionTouch uses the database clock; age last_seen to match ours.
	ageSessions(t, tb, nurse.ID, 16*time.Minute)
	clock.Advance(16 * time.Minute)
	if _, err := c.Refresh(ctx, tok.RefreshToken); client.StatusOf(err) != 401 {
		t.Fatalf("refresh after 16 idle minutes: %v, want 401", err)
	}
	// Absolute lifetime: activity does not extend it.
	tok2, err := c.Login(ctx, nurse.Name, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	refresh := tok2.RefreshToken
	for range 13 { // 65 minutes of steady activity
		clock.Advance(5 * time.Minute)
		next, err := c.Refresh(ctx, refresh)
		if err != nil {
			if client.StatusOf(err) != 401 {
				t.Fatal(err)
			}
			return // ended by the absolute lifetime, as it must
		}
		refresh = next.RefreshToken
	}
	t.Fatal("a session lived beyond SESSION_MAX_LIFETIME")
}

func ageSessions(t *testing.T, tb *testBackend, userID string, d time.Duration) {
	t.Helper()
	admin := openAdmin(t, tb)
	if _, err := admin.Exec(context.Background(), "UPDATE sessions SET last_seen_at = last_seen_at - $2::interval WHERE user_id = $1",
		userID, fmt.Sprintf("%d seconds", int(d.Seconds()))); err != nil {
		t.Fatal(err)
	}
	tb.Redis.FlushAll(context.Background())
}

// Disabling a user makes their next request fail; ending sessions and
// changing a role take effect at once.
func TestAdministratorControlsAccess(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	admin := tb.newUser(t, identity.RoleAdmin)
	nurse := tb.newUser(t, identity.RoleNurse)
	if _, err := nurse.C.Me(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.C.SetUserActive(ctx, nurse.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := nurse.C.Me(ctx); client.StatusOf(err) != 401 {
		t.Fatalf("disabled user's next request: %v, want 401", err)
	}
	if _, err := client.New(tb.URL, nil).Login(ctx, nurse.Name, testPassword); client.StatusOf(err) != 401 {
		t.Fatalf("disabled user logging in: %v", err)
	}
	if _, err := admin.C.SetUserActive(ctx, admin.ID, false); client.StatusOf(err) != 409 {
		t.Fatalf("admin disabling themselves: %v, want 409", err)
	}
	if _, err := admin.C.SetUserActive(ctx, nurse.ID, true); err != nil {
		t.Fatal(err)
	}
	again, err := client.New(tb.URL, nil).Login(ctx, nurse.Name, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	n, err := admin.C.RevokeUserSessions(ctx, nurse.ID)
	if err != nil || n < 1 {
		t.Fatalf("revoke sessions: %d, %v", n, err)
	}
	if _, err := client.New(tb.URL, nil).WithToken(again.AccessToken).Me(ctx); client.StatusOf(err) != 401 {
		t.Fatalf("after an administrator ended the sessions: %v", err)
	}
	// A role change reaches a live session.
	rec := tb.newUser(t, identity.RoleReceptionist)
	if _, err := rec.C.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Rolechange", GivenNames: "Test"}}); err != nil {
		t.Fatal(err)
	}
	u, err := admin.C.User(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.C.UpdateUser(ctx, rec.ID, u.Version, identity.UserUpdate{DisplayName: u.DisplayName, Role: identity.RoleInventoryManager}); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.C.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Rolechange", GivenNames: "Again"}}); client.StatusOf(err) != 403 {
		t.Fatalf("after losing patient.write: %v, want 403", err)
	}
	if _, err := admin.C.UpdateUser(ctx, rec.ID, u.Version, identity.UserUpdate{DisplayName: "x", Role: identity.RoleNurse}); client.StatusOf(err) != 412 {
		t.Fatalf("stale user update: %v, want 412", err)
	}
	var changes int
	if err := tb.DB.Pool.QueryRow(ctx, "SELECT count(*) FROM audit_events WHERE action = 'user.update' AND resource_id = $1 AND details->>'role_after' = 'inventory_manager'", rec.ID).Scan(&changes); err != nil || changes != 1 {
		t.Fatalf("privilege change audited %d times, %v", changes, err)
	}
}

// MFA: enrolment, login needs the code, a code cannot be replayed, a
// recovery code works once, and administrators can do nothing before
// they enrol.
func TestMFA(t *testing.T) {
	clock := newFakeClock()
	tb := startBackend(t, backendOpts{clock: clock.Now})
	ctx := context.Background()
	anon := client.New(tb.URL, nil)
	if _, err := tb.Identity.CreateUserAsSystem(ctx, "new.admin", "New Admin", identity.RoleAdmin, "", testPassword); err != nil {
		t.Fatal(err)
	}
	tok, err := anon.Login(ctx, "new.admin", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	adm := anon.WithToken(tok.AccessToken)
	me, err := adm.Me(ctx)
	if err != nil || !me.MFAEnrolmentRequired || len(me.Permissions) != 0 {
		t.Fatalf("unenrolled admin: %+v, %v", me, err)
	}
	if _, err := adm.Users(ctx, client.UserQuery{}); client.StatusOf(err) != 403 {
		t.Fatalf("unenrolled admin listing users: %v, want 403", err)
	}
	e, err := adm.EnrolMFA(ctx)
	if err != nil || e.Secret == "" || !strings.HasPrefix(e.QRCodePNG, "data:image/png;base64,") || !strings.HasPrefix(e.OTPAuthURI, "otpauth://totp/") {
		t.Fatalf("enrolment: %+v, %v", e, err)
	}
	sensitive(e.Secret)
	if _, err := adm.ConfirmMFA(ctx, "000000"); client.StatusOf(err) != 400 {
		t.Fatalf("wrong confirmation code: %v", err)
	}
	code, _ := identity.TOTPCode(e.Secret, clock.Now())
	rc, err := adm.ConfirmMFA(ctx, code)
	if err != nil || len(rc.Codes) != 10 {
		t.Fatalf("confirm: %v %v", rc, err)
	}
	sensitive(rc.Codes...)
	if _, err := adm.Users(ctx, client.UserQuery{}); err != nil {
		t.Fatalf("enrolled admin: %v", err)
	}
	// Login now needs the second factor.
	if _, err := anon.Login(ctx, "new.admin", testPassword); !isCode(err, "mfa_required") {
		t.Fatalf("login without code: %v, want mfa_required", err)
	}
	// The code used to confirm cannot be used again in its time step.
	if _, err := anon.LoginMFA(ctx, "new.admin", testPassword, code); !isCode(err, "mfa_required") {
		t.Fatalf("replayed code: %v, want refusal", err)
	}
	clock.Advance(30 * time.Second)
	code2, _ := identity.TOTPCode(e.Secret, clock.Now())
	if _, err := anon.LoginMFA(ctx, "new.admin", testPassword, code2); err != nil {
		t.Fatalf("login with a fresh code: %v", err)
	}
	if _, err := anon.LoginMFA(ctx, "new.admin", testPassword, code2); !isCode(err, "mfa_required") {
		t.Fatalf("same code twice: %v", err)
	}
	// A recovery code works exactly once.
	if _, err := anon.LoginMFA(ctx, "new.admin", testPassword, rc.Codes[3]); err != nil {
		t.Fatalf("recovery code: %v", err)
	}
	if _, err := anon.LoginMFA(ctx, "new.admin", testPassword, rc.Codes[3]); !isCode(err, "mfa_required") {
		t.Fatalf("recovery code reused: %v", err)
	}
	// Administrators and auditors cannot turn MFA off.
	if err := adm.DisableMFA(ctx, testPassword); client.StatusOf(err) != 403 {
		t.Fatalf("admin disabling MFA: %v", err)
	}
	// The secret is encrypted at rest.
	var stored []byte
	if err := tb.DB.Pool.QueryRow(ctx, "SELECT mfa_secret_enc FROM users WHERE username = 'new.admin'").Scan(&stored); err != nil ||
		strings.Contains(string(stored), e.Secret) {
		t.Fatalf("MFA secret stored in the clear (%v)", err)
	}
}

func isCode(err error, code string) bool {
	e, ok := err.(*client.Error)
	return ok && e.Code == code
}

// Password policy and sign-in throttling that stops guessing without
// locking the real user out from elsewhere.
func TestPasswordPolicyAndLockout(t *testing.T) {
	tb := startBackend(t, backendOpts{env: map[string]string{"RATE_LIMIT_LOGIN": "1000/1m"}})
	ctx := context.Background()
	admin := tb.newUser(t, identity.RoleAdmin)
	for pw, ok := range map[string]bool{
		"short":                        false,
		"password1234":                 false,
		"Summer2024!!!":                false,
		"qwertyuiop123":                false,
		"aaaaaaaaaaaaaaaa":             false,
		"hospitalhospital":             false,
		"1234567890123":                false,
		"my name is pat.kowalski ok":   false,
		"staple orbit lantern quietly": true,
		"a passphrase of more than sixty-four characters is welcome here, of course": true,
		strings.Repeat("long passphrase ", 5):                                        false,
	} {
		_, err := admin.C.CreateUser(ctx, identity.NewUser{Username: "pat.kowalski." + strings.ToLower(uuid.NewString()[:6]),
			DisplayName: "Pat Kowalski", Role: identity.RoleNurse, Password: pw})
		if ok != (err == nil) {
			t.Errorf("password %q: %v (want accepted=%v)", pw, err, ok)
		}
	}
	// Lockout per account and IP: the attacker's IP is throttled, the user
	// from their own IP is not.
	victim := tb.newUser(t, identity.RoleNurse)
	login := func(ip, pw string) int {
		body := fmt.Sprintf(`{"username":%q,"password":%q}`, victim.Name, pw)
		req, _ := http.NewRequest("POST", tb.URL+"/api/v1/auth/login", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", ip) // the test server's peer is loopback, a trusted proxy
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
		return resp.StatusCode
	}
	var statuses []int
	for range 7 {
		statuses = append(statuses, login("203.0.113.66", "not the password at all"))
	}
	if statuses[0] != 401 || statuses[6] != 429 {
		t.Fatalf("attacker's attempts: %v, want 401s then 429", statuses)
	}
	if s := login("203.0.113.66", testPassword); s != 429 {
		t.Fatalf("attacker with the right password while throttled: %d, want 429", s)
	}
	if s := login("198.51.100.7", testPassword); s != 200 {
		t.Fatalf("the real user from another IP: %d, want 200 (no lock-out of the victim)", s)
	}
}
