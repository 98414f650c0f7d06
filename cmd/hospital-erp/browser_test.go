package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hospital-erp/hospital-erp/internal/config"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/metrics"
)

// stack is backend + frontend behind one origin, routed like the ingress,
// with the frontend calling the backend over HTTP as its own pod would.
type stack struct {
	*testBackend
	URL string
}

func startStack(t *testing.T, opts ...backendOpts) *stack {
	t.Helper()
	o := backendOpts{}
	if len(opts) > 0 {
		o = opts[0]
	}
	tb := startBackend(t, o)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	env := map[string]string{"API_URL": tb.URL, "PUBLIC_URL": srv.URL, "COOKIE_SECURE": "false",
		"WEB_SESSION_KEY": base64.StdEncoding.EncodeToString(key)}
	cfg, err := config.Load(config.CmdWeb, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := newWeb(cfg, tb.URL, slog.New(slog.NewJSONHandler(tb.Logs, nil)), metrics.New("frontend"))
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", ingress(tb.Server, w))
	return &stack{testBackend: tb, URL: srv.URL}
}

// browser starts headless Chromium. A missing browser fails the test with
// the line to install it; it never skips.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("Chromium not found: sudo apt-get install -y chromium (make test installs it when run as root)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser and must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	return tctx
}

// screenshot saves a PNG when SCREENSHOT_DIR is set (for reviewing the UI).
func screenshot(ctx context.Context, t *testing.T, name string) {
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	}
}

func do(ctx context.Context, t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func textOf(ctx context.Context, t *testing.T, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

type css = chromedp.CSS

// A receptionist signs in, finds the patient list, registers a patient
// (first with a mistake the form points out next to the field), sees the
// new MRN, opens a ward's live bed board, and signs out.
func TestBrowserReceptionistFlow(t *testing.T) {
	s := startStack(t)
	if _, err := s.Identity.CreateUserAsSystem(context.Background(), "front.desk", "Tomás Ferreira", identity.RoleReceptionist, "", "a long enough password"); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)

	// Unauthenticated: any page leads to the sign-in form.
	do(ctx, t, "wrong password",
		chromedp.Navigate(s.URL+"/patients"),
		chromedp.WaitVisible(css(`#f-username`)),
		chromedp.SendKeys(css(`#f-username`), "front.desk"),
		chromedp.SendKeys(css(`#f-password`), "wrong password!!"),
		chromedp.Click(css(`button[type=submit]`)),
		chromedp.WaitVisible(css(`.field__error, .error-summary, .flash--error`)),
	)
	if text := textOf(ctx, t, "main"); !strings.Contains(text, "Wrong username or password") {
		t.Fatalf("wrong password page says: %q", text)
	}
	screenshot(ctx, t, "01-login-error")
	do(ctx, t, "sign in",
		chromedp.SendKeys(css(`#f-password`), "a long enough password"),
		chromedp.Click(css(`button[type=submit]`)),
		chromedp.WaitVisible(css(`table, .empty`)),
	)
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/patients") {
		t.Fatalf("after login at %s, want /patients (the page asked for)", loc)
	}
	screenshot(ctx, t, "02-patients")

	// Register with a mistake, then correct it.
	do(ctx, t, "register with a mistake",
		chromedp.Navigate(s.URL+"/patients/new"),
		chromedp.WaitVisible(css(`#f-family_name`)),
		chromedp.SendKeys(css(`#f-given_names`), "Zoë"),
		chromedp.SetValue(css(`#f-birth_date`), "2099-03-02"),
		chromedp.Click(css(`form.form button[type=submit]`)),
		chromedp.WaitVisible(css(`.error-summary`)),
	)
	if text := textOf(ctx, t, "#f-family_name-error"); !strings.Contains(text, "required") {
		t.Fatalf("family name error = %q", text)
	}
	if text := textOf(ctx, t, "#f-birth_date-error"); !strings.Contains(text, "future") {
		t.Fatalf("birth date error = %q", text)
	}
	if kept, err := chromedp.Run(ctx, chromedp.Value(css(`#f-given_names`))); err != nil || kept != "Zoë" {
		t.Fatalf("the form lost the typed value: %q %v", kept, err)
	}
	screenshot(ctx, t, "03-register-errors")
	do(ctx, t, "register",
		chromedp.SendKeys(css(`#f-family_name`), "Ødegaard"),
		chromedp.SetValue(css(`#f-birth_date`), "1990-03-02"),
		chromedp.Click(css(`form.form button[type=submit]`)),
		chromedp.WaitVisible(css(`.flash`)),
	)
	if flash, heading := textOf(ctx, t, ".flash"), textOf(ctx, t, "h1"); !strings.Contains(flash, "MRN") || !strings.Contains(strings.ToUpper(heading), "ØDEGAARD") {
		t.Fatalf("after registering: flash %q, heading %q", flash, heading)
	}
	screenshot(ctx, t, "04-patient")

	// The new patient is in the list.
	do(ctx, t, "search", chromedp.Navigate(s.URL+"/patients?q=%C3%98de"), chromedp.WaitVisible(css(`table`)))
	if text := textOf(ctx, t, "table"); !strings.Contains(text, "ØDEGAARD, Zoë") {
		t.Fatalf("patient list: %q", text)
	}

	// A ward's bed board connects to the live event stream.
	ward := seedWard(t, s)
	do(ctx, t, "live bed board",
		chromedp.Navigate(s.URL+"/wards/"+ward),
		chromedp.WaitVisible(css(`#bed-board`)),
	)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`document.querySelector('[data-live-status] .live__text').textContent === 'Live'`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("bed board never went live: %v", err)
	}
	screenshot(ctx, t, "05-ward")

	// Sign out ends the session.
	do(ctx, t, "sign out",
		chromedp.Click(css(`form[action="/logout"] button`)),
		chromedp.WaitVisible(css(`#f-username`)),
		chromedp.Navigate(s.URL+"/patients"),
		chromedp.WaitVisible(css(`#f-username`)),
	)
}

// seedWard creates a small ward directly in the database (no ward-writing
// API exists yet) and returns its id.
func seedWard(t *testing.T, s *stack) string {
	t.Helper()
	ctx := context.Background()
	var dept, ward, room string
	q := s.DB.Pool
	if err := q.QueryRow(ctx, "INSERT INTO departments (code, name, kind) VALUES ('MED', 'Medicine', 'clinical') RETURNING id").Scan(&dept); err != nil {
		t.Fatal(err)
	}
	if err := q.QueryRow(ctx, "INSERT INTO wards (department_id, code, name) VALUES ($1, 'MED-A', 'Medical Ward A') RETURNING id", dept).Scan(&ward); err != nil {
		t.Fatal(err)
	}
	if err := q.QueryRow(ctx, "INSERT INTO rooms (ward_id, code) VALUES ($1, 'A-01') RETURNING id", ward).Scan(&room); err != nil {
		t.Fatal(err)
	}
	for i, st := range []string{"available", "cleaning", "out_of_service"} {
		if _, err := q.Exec(ctx, "INSERT INTO beds (room_id, code, status) VALUES ($1, $2, $3)", room, fmt.Sprintf("A-01%c", 'A'+i), st); err != nil {
			t.Fatal(err)
		}
	}
	return ward
}

// An administrator signs in, is sent to enrol MFA (the first sign-in of a
// role that must use it), enrols with the code their app would show,
// signs out, signs in again with a one-time code, and is signed out
// automatically after the idle time-out.
func TestBrowserAdministratorMFAAndIdleLogoff(t *testing.T) {
	s := startStack(t, backendOpts{env: map[string]string{"SESSION_IDLE_TIMEOUT": "6s"}})
	if _, err := s.Identity.CreateUserAsSystem(context.Background(), "it.admin", "Ada Admin", identity.RoleAdmin, "", "a long enough password"); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	do(ctx, t, "first sign-in",
		chromedp.Navigate(s.URL+"/login"),
		chromedp.WaitVisible(css(`#f-username`)),
		chromedp.SendKeys(css(`#f-username`), "it.admin"),
		chromedp.SendKeys(css(`#f-password`), "a long enough password"),
		chromedp.Click(css(`button[type=submit]`)),
		chromedp.WaitVisible(css(`[data-mfa-secret]`)),
	)
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.Contains(loc, "/account/mfa") {
		t.Fatalf("after the first sign-in at %s, want the MFA enrolment page", loc)
	}
	secret, err := chromedp.Run(ctx, chromedp.AttributeValue(css(`[data-mfa-secret]`), "data-mfa-secret"))
	if err != nil || !secret.Exists || secret.Value == "" {
		t.Fatalf("secret on the page: %+v %v", secret, err)
	}
	sensitive(secret.Value)
	screenshot(ctx, t, "10-mfa-enrol")
	code, _ := identity.TOTPCode(secret.Value, time.Now())
	do(ctx, t, "confirm enrolment",
		chromedp.SendKeys(css(`#f-code`), code),
		chromedp.Click(css(`form[action='/account/mfa/confirm'] button[type=submit]`)),
		chromedp.WaitVisible(css(`.recovery-codes`)),
	)
	screenshot(ctx, t, "11-recovery-codes")
	do(ctx, t, "continue and sign out",
		chromedp.Click(css(`.form__actions a.button--primary`)),
		chromedp.WaitVisible(css(`form[action="/logout"] button`)),
		chromedp.Click(css(`form[action="/logout"] button`)),
		chromedp.WaitVisible(css(`#f-username`)),
	)
	// Sign in again: the code step appears. The code must be one the
	// enrolment did not use, so wait for the next time step.
	time.Sleep(time.Until(time.Unix((time.Now().Unix()/30+1)*30, 0)) + 200*time.Millisecond)
	code, _ = identity.TOTPCode(secret.Value, time.Now())
	do(ctx, t, "sign in with a code",
		chromedp.SendKeys(css(`#f-username`), "it.admin"),
		chromedp.SendKeys(css(`#f-password`), "a long enough password"),
		chromedp.Click(css(`button[type=submit]`)),
		chromedp.WaitVisible(css(`#f-otp`)),
		chromedp.SendKeys(css(`#f-otp`), code),
		chromedp.Click(css(`button[type=submit]`)),
		chromedp.WaitVisible(css(`form[action="/logout"] button`)),
	)
	screenshot(ctx, t, "12-signed-in")
	// Idle: no activity for longer than the time-out signs the user out.
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(wait, chromedp.WaitVisible(css(`#f-username`))); err != nil {
		t.Fatalf("not signed out after the idle time-out: %v", err)
	}
	if msg := textOf(ctx, t, ".flash"); !strings.Contains(msg, "without activity") {
		t.Fatalf("sign-out message: %q", msg)
	}
	screenshot(ctx, t, "13-idle-signed-out")
}
