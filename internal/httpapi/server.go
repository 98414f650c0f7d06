// Package httpapi assembles the backend's HTTP surface: every module's
// routes (routes.go is the whole API in one file), authentication and rate
// limiting, health, the error mapping and the OpenAPI document.
package httpapi

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/access"
	"github.com/hospital-erp/hospital-erp/internal/admission"
	"github.com/hospital-erp/hospital-erp/internal/appointment"
	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/config"
	"github.com/hospital-erp/hospital-erp/internal/events"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/idempotency"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/metrics"
	"github.com/hospital-erp/hospital-erp/internal/patient"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/queue"
	"github.com/hospital-erp/hospital-erp/internal/ratelimit"
	"github.com/hospital-erp/hospital-erp/internal/redisclient"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

// Deps is everything the backend's handlers need, built in cmd.
type Deps struct {
	Log        *slog.Logger
	Config     *config.Config
	DB         *postgres.DB
	Redis      *redisclient.Client // nil: in-process mode
	Metrics    *metrics.Metrics
	Limiter    ratelimit.Limiter
	Identity   *identity.Service
	Access     *access.Checker
	Audit      *audit.Reader
	Patients   *patient.Service
	Appts      *appointment.Service
	Queue      *queue.Service
	Wards      *ward.Service
	Admissions *admission.Service
	Bus        *events.Bus
	// Shutdown is closed when the process starts to stop.
	Shutdown <-chan struct{}
}

// Server is the backend's http.Handler.
type Server struct {
	log      *slog.Logger
	cfg      *config.Config
	metrics  *metrics.Metrics
	deps     Deps
	router   *httpx.Router
	handler  http.Handler
	draining atomic.Bool
	// schemaOK remembers that migrations were current once; it is rechecked
	// while false only.
	schemaOK atomic.Bool
}

// New builds the backend handler.
func New(d Deps) *Server {
	s := &Server{log: d.Log, cfg: d.Config, metrics: d.Metrics, deps: d}
	s.router = httpx.NewRouter(s.writeError, s.writeUnmatched, s.guard)
	s.routes()
	csp := "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
	s.handler = httpx.Chain(s.router,
		httpx.Observe(d.Log, d.Config.TrustedProxies, s.observe, s.panicked),
		httpx.SecurityHeaders(csp, strings.HasPrefix(d.Config.PublicURL, "https://"), false),
		httpx.Gzip(),
		httpx.BodyLimit(d.Config.MaxBodyBytes),
		httpx.Timeout(d.Config.RequestTimeout),
		s.inFlight,
		s.authenticate,
		s.limit,
		idempotency.Middleware,
	)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Routes lists every registered route (the OpenAPI test compares them).
func (s *Server) Routes() []httpx.Route { return s.router.Routes() }

// SetDraining makes readiness fail so load balancers stop sending traffic.
func (s *Server) SetDraining() { s.draining.Store(true) }

func (s *Server) observe(info *httpx.RequestInfo, method string, status int, d time.Duration) {
	s.metrics.HTTPRequests.WithLabelValues(info.Route, method, strconv.Itoa(status)).Inc()
	s.metrics.HTTPDuration.WithLabelValues(info.Route, method).Observe(d.Seconds())
}

func (s *Server) panicked(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, hospital.Errorf(hospital.EINTERNAL, "Internal error."))
}

func isHealth(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/health/") }

// inFlight counts the requests being served.
func (s *Server) inFlight(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.metrics.HTTPInFlight.Inc()
		defer s.metrics.HTTPInFlight.Dec()
		next.ServeHTTP(w, r)
	})
}

// limit applies one rate limit per request (one Redis round trip): the
// signed-in user's, or, for requests without a session (sign-in, public
// pages), the client IP's; refused credentials count against the IP too
// (withActor). A
// hospital's staff often share one address behind NAT, so the address is
// not what limits them. Health checks are not limited.
func (s *Server) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch a := hospital.ActorFrom(r.Context()); {
		case isHealth(r):
		case a != nil:
			if !s.allow(w, r, "user", "user:"+a.UserID, s.cfg.RateLimitUser) {
				return
			}
		default:
			if !s.allowIP(w, r) {
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// allowIP applies the client address's limit (answering 429 when over it).
func (s *Server) allowIP(w http.ResponseWriter, r *http.Request) bool {
	ip := ""
	if info := httpx.InfoFrom(r.Context()); info != nil {
		ip = info.ClientIP.String()
	}
	return s.allow(w, r, "ip", "ip:"+ip, s.cfg.RateLimitIP)
}

// allow sets the RateLimit and RateLimit-Policy headers (IETF
// draft-ietf-httpapi-ratelimit-headers: the policy named scope allows q
// requests per w seconds; r remain, renewed in t seconds) and answers 429
// when over the limit.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, scope, key string, rate config.Rate) bool {
	res := s.deps.Limiter.Allow(r.Context(), key, rate)
	h := w.Header()
	h["Ratelimit-Policy"] = []string{`"` + scope + `";q=` + strconv.Itoa(rate.N) + ";w=" + strconv.Itoa(int(rate.Period.Seconds()))}
	h["Ratelimit"] = []string{`"` + scope + `";r=` + strconv.Itoa(max(res.Remaining, 0)) + ";t=" + httpx.RetryAfter(res.ResetAfter)}
	if res.Allowed {
		return true
	}
	s.metrics.RateLimited.WithLabelValues(scope).Inc()
	s.writeError(w, r, &hospital.Error{Code: hospital.ETOOMANY, RetryAfter: res.RetryAfter,
		Message: "Too many requests; slow down and retry after the time in Retry-After."})
	return false
}

// guard enforces the access a route declared when it was registered:
// anyone for Public, a signed-in user for Authenticated, otherwise the
// named permission. A refusal for lack of permission is audited.
func (s *Server) guard(w http.ResponseWriter, r *http.Request, perm string) bool {
	if perm == httpx.Public {
		return true
	}
	a := hospital.ActorFrom(r.Context())
	if a == nil {
		s.writeError(w, r, hospital.Errorf(hospital.EUNAUTHORIZED, "Authentication required: send Authorization: Bearer <access token>."))
		return false
	}
	if perm == httpx.Authenticated || a.Can(perm) {
		return true
	}
	route := ""
	if info := httpx.InfoFrom(r.Context()); info != nil {
		route = info.Route
	}
	_ = audit.Record(r.Context(), s.deps.DB, audit.Entry{Action: "access.denied", ResourceType: "route", ResourceID: route,
		Outcome: audit.Denied, Details: map[string]any{"permission": perm}})
	msg := "You do not have permission to do this (" + perm + ")."
	if a.MFAEnrolmentRequired {
		msg = "Your role must use multi-factor authentication: enrol first (POST /api/v1/auth/mfa/enrol)."
	}
	s.writeError(w, r, hospital.Errorf(hospital.EFORBIDDEN, "%s", msg))
	return false
}

// authenticate turns "Authorization: Bearer <token>" (or, for the event
// WebSocket only, "?ticket=", since browsers cannot set headers there) into
// the request's actor. Requests without credentials stay anonymous and the
// route guard decides; bad credentials are refused here.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			if t := r.URL.Query().Get("ticket"); t != "" && r.URL.Path == "/api/v1/events" {
				s.withActor(w, r, next, func() (*hospital.Actor, error) { return s.deps.Identity.AuthenticateTicket(r.Context(), t) })
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			s.writeError(w, r, hospital.Errorf(hospital.EUNAUTHORIZED, "Use the Authorization header as: Bearer <access token>."))
			return
		}
		s.withActor(w, r, next, func() (*hospital.Actor, error) {
			return s.deps.Identity.Authenticate(r.Context(), strings.TrimSpace(token))
		})
	})
}

func (s *Server) withActor(w http.ResponseWriter, r *http.Request, next http.Handler, auth func() (*hospital.Actor, error)) {
	{
		actor, err := auth()
		if err != nil {
			// Failed credentials count against the client's address, so
			// forged or stale tokens cannot be sprayed without limit.
			if s.allowIP(w, r) {
				s.writeError(w, r, err)
			}
			return
		}
		if info := httpx.InfoFrom(r.Context()); info != nil {
			info.UserID = actor.UserID
		}
		next.ServeHTTP(w, r.WithContext(hospital.WithActor(r.Context(), actor)))
	}
}
