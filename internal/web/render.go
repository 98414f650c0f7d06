package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

//go:embed templates/*.html
var templateFS embed.FS

// pageNames are the page templates New insists on: a page missing from
// the binary fails the start instead of the first request for it.
var pageNames = []string{"login", "dashboard", "patient_list", "patient_new", "patient_show",
	"patient_forbidden", "patient_edit", "patient_merge", "bed_board", "ward_show", "housekeeping", "census",
	"admission_new", "admission_show", "admission_command", "error",
	"appointment_calendar", "appointment_show", "appointment_book", "appointment_reschedule", "queue_list", "queue_board",
	"account", "account_password", "account_mfa", "account_mfa_codes",
	"admin_users", "admin_user_new", "admin_user_show", "admin_user_confirm", "admin_roles",
	"emergency_review", "audit_list", "audit_verify"}

// views holds one template set per page: the shared files (templates/_*.html:
// the layout and the partials) plus the page's own file, which defines
// "content" and may define partials of its own (bed_board's "bed_board_live").
type views struct {
	pages map[string]*template.Template
}

func parseViews(a *assets, loc *time.Location) (*views, error) {
	shared, err := fs.Glob(templateFS, "templates/_*.html")
	if err != nil || len(shared) == 0 {
		return nil, fmt.Errorf("web: no shared templates (templates/_*.html): %v", err)
	}
	base, err := template.New("").Funcs(templateFuncs(a, loc)).ParseFS(templateFS, shared...)
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	if base.Lookup("layout") == nil {
		return nil, errors.New(`web: templates: no "layout" template`)
	}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	v := &views{pages: map[string]*template.Template{}}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if strings.HasPrefix(name, "_") {
			continue
		}
		t, err := base.Clone()
		if err == nil {
			t, err = t.ParseFS(templateFS, f)
		}
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		if t.Lookup("content") == nil {
			return nil, fmt.Errorf(`web: template %s: no "content" defined`, name)
		}
		v.pages[name] = t
	}
	for _, name := range pageNames {
		if v.pages[name] == nil {
			return nil, fmt.Errorf("web: template %s.html is missing", name)
		}
	}
	return v, nil
}

// execute runs template tmpl ("layout" for a page, a partial for a
// fragment) of page name into a buffer, so a failing template never sends
// half a page.
func (v *views) execute(name, tmpl string, data any) ([]byte, error) {
	t, ok := v.pages[name]
	if !ok {
		return nil, fmt.Errorf("web: no page template %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmpl, data); err != nil {
		return nil, fmt.Errorf("web: render %s/%s: %w", name, tmpl, err)
	}
	return buf.Bytes(), nil
}

func templateFuncs(a *assets, loc *time.Location) template.FuncMap {
	return template.FuncMap{
		"asset":     a.path,
		"roleName":  roleName,
		"sexLabel":  sexLabel,
		"date":      formatDate,
		"birthDate": formatBirthDate,
		"age":       age,
		"bedStatus": bedStatusLabel,
		"bedType":   bedTypeLabel,
		"upper":     strings.ToUpper,
		"lower":     strings.ToLower,
		"thousands": thousands,
		"dateTime":  func(t time.Time) string { return formatDateTime(t, loc) },
		"utcTime":   formatUTC,
		"isoTime":   isoTime,
		"permLabel": permissionLabel,
		"appointmentTable": func(id string, rows []AppointmentRow, empty string) AppointmentTable {
			return AppointmentTable{ID: id, Rows: rows, Empty: empty}
		},
	}
}

// Layout is what every page shows around its content. Handlers set Title,
// Area and Nav; render fills in the rest from the request.
type Layout struct {
	// Title is the page's <title> (before " – Hospital ERP").
	Title string
	// Area is the part of the hospital system the page belongs to, shown
	// in the header next to the product name.
	Area string
	// Nav is the key of the current navigation item.
	Nav string
	// BodyClass selects page-specific print rules.
	BodyClass string

	User      *UserView
	NavItems  []NavItem
	CSRF      string
	Flash     *Flash
	RequestID string
	// IdleTimeout is the backend's idle time-out in seconds for signed-in
	// pages: app.js signs the user out after that long without activity.
	IdleTimeout int
}

func (l *Layout) layout() *Layout { return l }

// page is implemented by every page struct through its embedded Layout.
type page interface{ layout() *Layout }

// UserView is the signed-in user as the header shows them.
type UserView struct {
	Name     string
	RoleName string
}

// NavItem is one link of the main navigation.
type NavItem struct {
	Href, Label string
	Current     bool
}

// navFor lists the navigation the user's permissions allow. A user who
// must still enrol in MFA gets none: the enrolment page is all they can use.
func navFor(sess *session, current string) []NavItem {
	if sess.MustEnrol {
		return nil
	}
	items := []NavItem{{Href: "/", Label: "Dashboard", Current: current == "dashboard"}}
	for _, it := range []struct{ perm, href, label, key string }{
		{identity.PermPatientRead, "/patients", "Patients", "patients"},
		{identity.PermAppointmentRead, "/appointments", "Appointments", "appointments"},
		{identity.PermAppointmentRead, "/queue", "Queue", "queue"},
		{identity.PermBedRead, "/beds", "Bed board", "beds"},
		{identity.PermBedWrite, "/housekeeping", "Housekeeping", "housekeeping"},
		{identity.PermBedRead, "/census", "Census", "census"},
		{identity.PermUserAdmin, "/admin/users", "Administration", "admin"},
		{identity.PermEmergencyReview, "/emergency-access", "Emergency access review", "emergency"},
		{identity.PermAuditRead, "/audit", "Audit", "audit"},
	} {
		if sess.can(it.perm) {
			items = append(items, NavItem{Href: it.href, Label: it.label, Current: current == it.key})
		}
	}
	return append(items,
		NavItem{Href: "/account", Label: "My account", Current: current == "account"},
		NavItem{Href: "/api/v1/docs", Label: "API reference"})
}

// render writes page name with status. Pages are never stored by caches:
// most carry patient data, and all carry the user's name and CSRF token.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) error {
	l := p.layout()
	l.RequestID = httpx.RequestID(r.Context())
	if l.RequestID == "" {
		// The panic handler gets the request from before Observe.
		l.RequestID = w.Header().Get("X-Request-ID")
	}
	if sess := sessionFrom(r.Context()); sess != nil {
		l.CSRF = sess.CSRF
		if sess.signedIn() {
			l.User = &UserView{Name: sess.Name, RoleName: roleName(sess.Role)}
			l.NavItems = navFor(sess, l.Nav)
			l.IdleTimeout = sess.Idle
		}
	}
	if f := s.takeFlash(w, r); f != nil {
		l.Flash = f
	}
	body, err := s.views.execute(name, "layout", p)
	if err != nil {
		return err
	}
	writeHTML(w, status, body)
	return nil
}

// renderFragment writes one partial of a page, for app.js to swap in.
func (s *Server) renderFragment(w http.ResponseWriter, name, tmpl string, data any) error {
	body, err := s.views.execute(name, tmpl, data)
	if err != nil {
		return err
	}
	writeHTML(w, http.StatusOK, body)
	return nil
}

func writeHTML(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// ErrorPage is every error page: what went wrong in plain words and the
// request id to quote to the service desk. It never shows internal text.
type ErrorPage struct {
	Layout
	Status  int
	Heading string
	Message string
	// Back is a link that helps, with its text.
	BackHref, BackText string
}

// statusError is an error that is only an HTTP status (404 for a record
// that does not exist, 403 for a missing permission).
type statusError int

func (e statusError) Error() string { return "web: " + http.StatusText(int(e)) }

const (
	errNotFound  = statusError(http.StatusNotFound)
	errForbidden = statusError(http.StatusForbidden)
)

// writeError answers a handler's error: a trip to the login page for an
// ended session, else an error page in the layout. Internal errors are
// logged here, once, without patient data; their text never reaches the
// browser.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errSessionEnded) {
		s.endSession(w, r)
		return
	}
	status, retry := s.statusOf(r, err)
	if retry > 0 {
		w.Header().Set("Retry-After", httpx.RetryAfter(retry))
	}
	if isPartial(r) {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, http.StatusText(status), status)
		return
	}
	p := errorPage(status, retry)
	if status == http.StatusServiceUnavailable && r.Method == http.MethodGet {
		p.BackHref, p.BackText = r.URL.RequestURI(), "Try again"
	}
	if errors.Is(err, errCSRF) {
		p.Heading = "This form has expired"
		p.Message = "For your security the form could not be sent. Go back, reload the page and try again."
		p.BackHref, p.BackText = "/", "Go to the dashboard"
	}
	if rerr := s.render(w, r, status, "error", p); rerr != nil {
		s.log.Error("render error page", "request_id", httpx.RequestID(r.Context()), "error", rerr.Error())
		http.Error(w, http.StatusText(status), status)
	}
}

// statusOf maps an error to the status of its page, logging the ones
// someone has to look at.
func (s *Server) statusOf(r *http.Request, err error) (int, time.Duration) {
	reqID := httpx.RequestID(r.Context())
	var (
		se  statusError
		ae  *client.Error
		ue  *url.Error
		mbe *http.MaxBytesError
	)
	switch {
	case errors.Is(err, errCSRF):
		return http.StatusForbidden, 0
	case errors.As(err, &se):
		return int(se), 0
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, 0
	case errors.As(err, &ae):
		switch ae.Status {
		case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusRequestEntityTooLarge:
			return ae.Status, 0
		case http.StatusTooManyRequests:
			return ae.Status, max(ae.RetryAfter, time.Second)
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			s.log.Warn("backend unavailable", "request_id", reqID, "route", routeOf(r), "status", ae.Status)
			return http.StatusServiceUnavailable, max(ae.RetryAfter, 5*time.Second)
		}
	case errors.As(err, &ue), errors.Is(err, context.DeadlineExceeded):
		// The backend did not answer: connection refused, timeout, reset.
		if r.Context().Err() == nil || !errors.Is(err, context.Canceled) {
			s.log.Warn("backend unreachable", "request_id", reqID, "route", routeOf(r), "error", redact(err))
		}
		return http.StatusServiceUnavailable, 5 * time.Second
	}
	s.log.Error("internal error", "request_id", reqID, "route", routeOf(r), "error", redact(err))
	return http.StatusInternalServerError, 0
}

func errorPage(status int, retry time.Duration) *ErrorPage {
	p := &ErrorPage{Status: status, BackHref: "/", BackText: "Go to the dashboard"}
	switch status {
	case http.StatusBadRequest:
		p.Heading = "That request could not be processed"
		p.Message = "Check the address or the values you entered, then try again."
	case http.StatusForbidden:
		p.Heading = "You do not have access to this page"
		p.Message = "Your role does not allow this. If you need it for your work, ask your system administrator."
	case http.StatusNotFound:
		p.Heading = "Page not found"
		p.Message = "If you typed the web address, check it is correct. If you followed a link, the record may no longer exist."
	case http.StatusMethodNotAllowed:
		p.Heading = "This page does not accept that action"
		p.Message = "Go back and use the buttons on the page."
	case http.StatusRequestEntityTooLarge:
		p.Heading = "The form was too large"
		p.Message = "Shorten what you entered and try again."
	case http.StatusTooManyRequests:
		p.Heading = "Too many requests"
		p.Message = "Please wait " + waitText(retry) + " and try again."
	case http.StatusServiceUnavailable:
		p.Heading = "The system is temporarily unavailable"
		p.Message = "Please try again in a few minutes. Nothing you saved before is lost. " +
			"If this continues, follow your department's downtime procedure and contact the service desk."
	default:
		p.Status = http.StatusInternalServerError
		p.Heading = "Sorry, there is a problem with the system"
		p.Message = "Try again later. If it keeps happening, contact the service desk and quote the reference below."
	}
	p.Title = p.Heading
	return p
}

// endSession clears an ended session and sends the user to sign in again,
// to come back where they were.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	sess := sessionFrom(r.Context())
	fresh := newAnonymousSession()
	if sess != nil {
		// Keep the CSRF token: another tab may have a form open.
		fresh.CSRF = sess.CSRF
	}
	s.saveSession(w, fresh)
	s.setFlash(w, Flash{Kind: "error", Message: "Your session has ended; please sign in again."})
	if isPartial(r) {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "session ended", http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, loginURL(r), http.StatusSeeOther)
}

// writeUnmatched answers requests no route matches.
func (s *Server) writeUnmatched(w http.ResponseWriter, r *http.Request, status int, allow string) {
	if status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", allow)
	} else {
		status = http.StatusNotFound
	}
	if err := s.render(w, r, status, "error", errorPage(status, 0)); err != nil {
		http.Error(w, http.StatusText(status), status)
	}
}

// panicked is Observe's answer after a recovered panic (already logged).
func (s *Server) panicked(w http.ResponseWriter, r *http.Request) {
	if err := s.render(w, r, http.StatusInternalServerError, "error", errorPage(http.StatusInternalServerError, 0)); err != nil {
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
	}
}

func routeOf(r *http.Request) string {
	if info := httpx.InfoFrom(r.Context()); info != nil {
		return info.Route
	}
	return ""
}

// queryRe finds query strings in error texts: the client's errors name the
// URL it called, and a search's query string holds part of a patient's
// name, which must not reach the logs.
var queryRe = regexp.MustCompile(`\?[^\s"]*`)

func redact(err error) string { return queryRe.ReplaceAllString(err.Error(), "?[redacted]") }

// waitText says how long to wait in words.
func waitText(d time.Duration) string {
	sec := int((d + time.Second - 1) / time.Second)
	switch {
	case sec <= 1:
		return "a second"
	case sec < 90:
		return strconv.Itoa(sec) + " seconds"
	default:
		return strconv.Itoa((sec+59)/60) + " minutes"
	}
}
