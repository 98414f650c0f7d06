// Package web is the server-rendered user interface. It runs as its own
// pod and knows the backend only through its HTTP API (internal/client),
// exactly as any other frontend would: every page is rendered from
// html/template files embedded in the binary, every form works without
// JavaScript, and the one small script only prints wristbands, keeps the
// bed board and the queue board live and signs idle users out.
package web

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

// Options configure New.
type Options struct {
	// API is the backend client without a token; each request uses
	// API.WithToken with the signed-in user's access token.
	API *client.Client
	Log *slog.Logger
	// PublicURL is the URL users open (http://localhost:3000). Its origin
	// is the only one allowed to POST.
	PublicURL string
	// SessionKey is the 32-byte AES-256-GCM key of the session cookie.
	SessionKey     []byte
	CookieSecure   bool
	TrustedProxies []netip.Prefix
	// Observe receives every finished request, for metrics. nil: none.
	Observe httpx.Observer
	// Location is the hospital's time zone (HOSPITAL_TIMEZONE): calendar
	// days and weeks begin at its midnight and times are shown in it, as
	// the backend's availability rules are written. nil: the process's
	// local time zone (TZ).
	Location *time.Location
}

const (
	// formBodyLimit caps form posts: the largest form is a few hundred bytes.
	formBodyLimit = 64 << 10
	// requestTimeout bounds one page's work, backend calls included.
	requestTimeout = 15 * time.Second
	// refreshMargin: an access token this close to expiry is renewed before
	// it is used, so that a request never fails half-way on expiry.
	refreshMargin = 30 * time.Second
)

// csp allows nothing inline: the pages carry no inline script or style,
// and the bar charts are SVG attributes rather than style attributes.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// Server is the web UI's http.Handler.
type Server struct {
	api          *client.Client
	log          *slog.Logger
	publicOrigin string
	aead         cipher.AEAD
	secure       bool
	sessionName  string
	flashName    string
	views        *views
	assets       *assets
	cop          *http.CrossOriginProtection
	refresh      *refresher
	router       *httpx.Router
	handler      http.Handler
	draining     atomic.Bool
	now          func() time.Time
	loc          *time.Location
	// bedLimit is the most beds a page lists before asking for a ward
	// (boardBedLimit; tests lower it).
	bedLimit int
}

// New builds the web UI. It parses every template and hashes every static
// file first, so a missing or broken template stops the start.
func New(o Options) (*Server, error) {
	if o.API == nil {
		return nil, errors.New("web: Options.API is required")
	}
	if len(o.SessionKey) != 32 {
		return nil, fmt.Errorf("web: the session key must be 32 bytes, got %d", len(o.SessionKey))
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Observe == nil {
		o.Observe = func(*httpx.RequestInfo, string, int, time.Duration) {}
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	origin, err := originOf(o.PublicURL)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(o.SessionKey)
	if err != nil {
		return nil, fmt.Errorf("web: session key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("web: session key: %w", err)
	}
	a, err := loadAssets()
	if err != nil {
		return nil, err
	}
	v, err := parseViews(a, o.Location)
	if err != nil {
		return nil, err
	}
	cop := http.NewCrossOriginProtection()
	if origin != "" {
		if err := cop.AddTrustedOrigin(origin); err != nil {
			return nil, fmt.Errorf("web: PublicURL: %w", err)
		}
	}
	s := &Server{
		bedLimit:     boardBedLimit,
		api:          o.API,
		log:          o.Log,
		publicOrigin: origin,
		aead:         aead,
		secure:       o.CookieSecure,
		sessionName:  sessionCookie,
		flashName:    flashCookie,
		views:        v,
		assets:       a,
		cop:          cop,
		refresh:      newRefresher(),
		now:          time.Now,
		loc:          o.Location,
	}
	if o.CookieSecure {
		s.sessionName, s.flashName = secureSessionCookie, secureFlashCookie
	}
	s.router = httpx.NewRouter(s.writeError, s.writeUnmatched, s.guard)
	s.routes()
	s.handler = httpx.Chain(s.router,
		httpx.Observe(o.Log, o.TrustedProxies, o.Observe, s.panicked),
		httpx.SecurityHeaders(csp, strings.HasPrefix(o.PublicURL, "https://"), true),
		httpx.Gzip(),
		httpx.BodyLimit(formBodyLimit),
		httpx.Timeout(requestTimeout),
		s.withSession,
		s.checkCSRF,
	)
	return s, nil
}

// routes is every page of the UI in one place.
func (s *Server) routes() {
	r := s.router
	r.HandleHTTP("GET /health/live", httpx.Public, http.HandlerFunc(s.handleHealthLive))
	r.HandleHTTP("GET /health/ready", httpx.Public, http.HandlerFunc(s.handleHealthReady))
	r.HandleHTTP("GET /static/{name}", httpx.Public, http.HandlerFunc(s.handleStatic))

	r.Handle("GET /login", httpx.Public, s.handleLoginForm)
	r.Handle("POST /login", httpx.Public, s.handleLoginSubmit)
	r.Handle("GET /logout", httpx.Public, s.handleLogoutLink)
	r.Handle("POST /logout", httpx.Public, s.handleLogout)
	r.Handle("POST "+keepAlivePath, accessEnrolment, s.handleKeepAlive)

	r.Handle("GET /account", httpx.Authenticated, s.handleAccountShow)
	r.Handle("GET /account/password", httpx.Authenticated, s.handlePasswordForm)
	r.Handle("POST /account/password", httpx.Authenticated, s.handlePasswordChange)
	r.Handle("GET "+mfaPath, accessEnrolment, s.handleMFAShow)
	r.Handle("POST /account/mfa/enrol", accessEnrolment, s.handleMFAEnrol)
	r.Handle("POST /account/mfa/confirm", accessEnrolment, s.handleMFAConfirm)
	r.Handle("POST /account/mfa/disable", httpx.Authenticated, s.handleMFADisable)

	r.Handle("GET /{$}", httpx.Authenticated, s.handleDashboardShow)
	r.Handle("GET /patients", httpx.Authenticated, s.handlePatientList)
	r.Handle("GET /patients/new", httpx.Authenticated, s.handlePatientNew)
	r.Handle("POST /patients/new", httpx.Authenticated, s.handlePatientCreate)
	r.Handle("GET /patients/{id}", httpx.Authenticated, s.handlePatientShow)
	r.Handle("POST /patients/{id}/emergency-access", identity.PermEmergencyAccess, s.handleEmergencyAccessRequest)
	r.Handle("GET /patients/{id}/edit", identity.PermPatientWrite, s.handlePatientEdit)
	r.Handle("POST /patients/{id}/edit", identity.PermPatientWrite, s.handlePatientUpdate)
	r.Handle("POST /patients/{id}/identifiers", identity.PermPatientWrite, s.handleIdentifierAdd)
	r.Handle("POST /patients/{id}/identifiers/{identifier}/remove", identity.PermPatientWrite, s.handleIdentifierRemove)
	r.Handle("POST /patients/{id}/contacts", identity.PermPatientWrite, s.handleContactAdd)
	r.Handle("POST /patients/{id}/contacts/{contact}/remove", identity.PermPatientWrite, s.handleContactRemove)
	r.Handle("POST /patients/{id}/walk-in", identity.PermAppointmentWrite, s.handleWalkIn)
	// Merging asks first: GET shows the candidates and then both records
	// side by side; POST with confirm=yes merges.
	r.Handle("GET /patients/{id}/merge", identity.PermPatientMerge, s.handleMergeForm)
	r.Handle("POST /patients/{id}/merge", identity.PermPatientMerge, s.handleMerge)
	r.Handle("POST /patient-merges/{id}/undo", identity.PermPatientMerge, s.handleMergeUndo)

	r.Handle("GET /appointments", identity.PermAppointmentRead, s.handleCalendar)
	r.Handle("GET /appointments/book", identity.PermAppointmentWrite, s.handleBookForm)
	r.Handle("POST /appointments/book", identity.PermAppointmentWrite, s.handleBook)
	r.Handle("GET /appointments/{id}", identity.PermAppointmentRead, s.handleAppointmentShow)
	r.Handle("GET /appointments/{id}/reschedule", identity.PermAppointmentWrite, s.handleRescheduleForm)
	r.Handle("POST /appointments/{id}/reschedule", identity.PermAppointmentWrite, s.handleReschedule)
	r.Handle("POST /appointments/{id}/cancel", identity.PermAppointmentWrite, s.handleAppointmentCancel)
	for _, c := range appointmentCommands {
		r.Handle("POST /appointments/{id}/"+c.Key, identity.PermAppointmentWrite, s.handleAppointmentCommand(c))
	}

	r.Handle("GET /queue", identity.PermAppointmentRead, s.handleQueueList)
	r.Handle("GET /queue/{department}", identity.PermAppointmentRead, s.handleQueueBoard)
	r.Handle("POST /queue/{department}/call-next", identity.PermAppointmentWrite, s.handleQueueCallNext)
	r.Handle("POST /queue-entries/{id}/done", identity.PermAppointmentWrite, s.handleQueueFinish("done"))
	r.Handle("POST /queue-entries/{id}/left", identity.PermAppointmentWrite, s.handleQueueFinish("left"))

	// Wards and beds: the bed board took the old ward list's place
	// (/wards redirects); a ward's page lists its patients.
	r.Handle("GET /beds", identity.PermBedRead, s.handleBedBoard)
	r.Handle("GET /wards", identity.PermBedRead, s.handleWardList)
	r.Handle("GET /wards/{id}", identity.PermBedRead, s.handleWardShow)
	r.Handle("GET /housekeeping", identity.PermBedRead, s.handleHousekeeping)
	r.Handle("POST /housekeeping/out-of-service", identity.PermBedWrite, s.handleBedAction("out-of-service"))
	for action := range bedActions {
		r.Handle("POST /beds/{id}/"+action, identity.PermBedWrite, s.handleBedAction(action))
	}
	r.Handle("GET /census", identity.PermBedRead, s.handleCensus)
	r.Handle("GET /census.csv", identity.PermBedRead, s.handleCensusCSV)
	r.Handle("GET /admissions/new", identity.PermAdmissionWrite, s.handleAdmitForm)
	r.Handle("POST /admissions/new", identity.PermAdmissionWrite, s.handleAdmit)
	r.Handle("GET /admissions/{id}", identity.PermAdmissionRead, s.handleAdmissionShow)
	for _, c := range admissionCommands {
		// Each command asks first: GET is its form, POST does it.
		r.Handle("GET /admissions/{id}/"+c.Key, identity.PermAdmissionWrite, s.handleAdmissionCommandForm(c))
		r.Handle("POST /admissions/{id}/"+c.Key, identity.PermAdmissionWrite, s.handleAdmissionCommand(c))
	}
	r.Handle("POST /events/ticket", httpx.Authenticated, s.handleEventsTicket)

	r.Handle("GET /admin", identity.PermUserAdmin, s.handleAdminHome)
	r.Handle("GET /admin/users", identity.PermUserAdmin, s.handleUserList)
	r.Handle("GET /admin/users/new", identity.PermUserAdmin, s.handleUserNew)
	r.Handle("POST /admin/users/new", identity.PermUserAdmin, s.handleUserCreate)
	r.Handle("GET /admin/users/{id}", identity.PermUserAdmin, s.handleUserShow)
	r.Handle("POST /admin/users/{id}", identity.PermUserAdmin, s.handleUserUpdate)
	r.Handle("POST /admin/users/{id}/password", identity.PermUserAdmin, s.handleUserPasswordReset)
	r.Handle("POST /admin/users/{id}/enable", identity.PermUserAdmin, s.handleUserEnable)
	for _, a := range userActions {
		// Destructive actions ask first: GET shows the question, POST with
		// confirm=yes does it. This works without JavaScript.
		r.Handle("GET /admin/users/{id}/"+a.Key, identity.PermUserAdmin, s.handleUserActionConfirm(a))
		r.Handle("POST /admin/users/{id}/"+a.Key, identity.PermUserAdmin, s.handleUserAction(a))
	}
	r.Handle("GET /admin/roles", identity.PermUserAdmin, s.handleRoleList)

	r.Handle("GET /emergency-access", identity.PermEmergencyReview, s.handleGrantList)
	r.Handle("POST /emergency-access/{id}/review", identity.PermEmergencyReview, s.handleGrantReview)

	r.Handle("GET /audit", identity.PermAuditRead, s.handleAuditList)
	r.Handle("GET /audit/export.csv", identity.PermAuditRead, s.handleAuditExport)
	r.Handle("GET /audit/verify", identity.PermAuditRead, s.handleAuditVerify)
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// SetDraining makes /health/ready answer 503 so load balancers stop
// sending new requests while the process shuts down.
func (s *Server) SetDraining() { s.draining.Store(true) }

type health struct {
	Status string `json:"status"`
}

func (s *Server) handleHealthLive(w http.ResponseWriter, _ *http.Request) {
	httpx.JSON(w, http.StatusOK, health{Status: "ok"})
}

// handleHealthReady does not ask the backend: a backend outage must not
// take every web pod out of the load balancer, or users would get no page
// at all instead of the "temporarily unavailable" page.
func (s *Server) handleHealthReady(w http.ResponseWriter, _ *http.Request) {
	if s.draining.Load() {
		httpx.JSON(w, http.StatusServiceUnavailable, health{Status: "draining"})
		return
	}
	httpx.JSON(w, http.StatusOK, health{Status: "ready"})
}

// originOf returns scheme://host[:port] of a URL, or "" for "".
func originOf(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("web: PublicURL %q must be an absolute http or https URL", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}
