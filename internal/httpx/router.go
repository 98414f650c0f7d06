package httpx

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
)

// HandlerFunc is a handler that returns its error instead of writing it, so
// that one place (httpapi/errors.go) maps errors to responses.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ErrorWriter writes err as the response.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, err error)

// Route is one registered method and path and the access it declares.
type Route struct {
	Method string
	Path   string
	// Perm is a permission (such as "patient.read") or Public or
	// Authenticated.
	Perm string
}

// Access levels a route may declare instead of a permission.
const (
	// Public routes need no authentication (login, health, JWKS, static).
	Public = "public"
	// Authenticated routes need a signed-in user but no permission (me,
	// logout, enrolling multi-factor authentication).
	Authenticated = "authenticated"
)

// Guard enforces a route's declared access before its handler runs. It
// returns false after answering the request itself (401, 403).
type Guard func(w http.ResponseWriter, r *http.Request, perm string) bool

// Router is a net/http ServeMux that remembers its routes (the OpenAPI
// document is checked against them) and labels requests with the route
// template for logs and metrics.
type Router struct {
	mux      *http.ServeMux
	onError  ErrorWriter
	notFound func(w http.ResponseWriter, r *http.Request, status int, allow string)
	guard    Guard
	routes   []Route
}

// NewRouter returns an empty router. notFound writes 404 and 405 answers
// for requests no route matches; guard enforces each route's access.
func NewRouter(onError ErrorWriter, notFound func(w http.ResponseWriter, r *http.Request, status int, allow string), guard Guard) *Router {
	return &Router{mux: http.NewServeMux(), onError: onError, notFound: notFound, guard: guard}
}

// Handle registers h for pattern ("METHOD /path/{param}") with the access
// it needs: a permission, Public or Authenticated. Every route declares
// one; registering without is a programming error and panics at start.
func (rt *Router) Handle(pattern, perm string, h HandlerFunc) {
	rt.HandleHTTP(pattern, perm, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			rt.onError(w, r, err)
		}
	}))
}

// HandleHTTP registers a plain http.Handler (static files, WebSockets).
func (rt *Router) HandleHTTP(pattern, perm string, h http.Handler) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		panic("httpx: route pattern needs a method: " + pattern)
	}
	if perm == "" {
		panic("httpx: route " + pattern + " declares no permission")
	}
	rt.routes = append(rt.routes, Route{Method: method, Path: path, Perm: perm})
	rt.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info := InfoFrom(r.Context()); info != nil {
			info.Route = pattern
		}
		if rt.guard != nil && !rt.guard(w, r, perm) {
			return
		}
		if !validUTF8(r.URL) {
			rt.onError(w, r, hospital.Errorf(hospital.EINVALID, "The address holds characters that are not valid UTF-8."))
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// validUTF8 reports whether the path and the query's names and values,
// unescaped, are UTF-8. PostgreSQL refuses any other text; a search for
// "%ff" reached it and answered 500.
func validUTF8(u *url.URL) bool {
	if !utf8.ValidString(u.Path) {
		return false
	}
	if u.RawQuery == "" {
		return true
	}
	for k, vs := range u.Query() {
		if !utf8.ValidString(k) {
			return false
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return false
			}
		}
	}
	return true
}

// Routes returns the registered routes, sorted.
func (rt *Router) Routes() []Route {
	out := append([]Route(nil), rt.routes...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := rt.mux.Handler(r); pattern == "" {
		// Let the mux decide between 404 and 405 (with its Allow header),
		// then answer in our own format.
		rec := httptest.NewRecorder()
		h, _ := rt.mux.Handler(r)
		h.ServeHTTP(rec, r)
		if info := InfoFrom(r.Context()); info != nil {
			info.Route = "unmatched"
		}
		rt.notFound(w, r, rec.Code, rec.Header().Get("Allow"))
		return
	}
	rt.mux.ServeHTTP(w, r)
}

// RequestInfo is filled in as a request passes the middleware and the
// router, and read by the access log and the metrics at the end.
type RequestInfo struct {
	ID       string
	Route    string
	UserID   string
	ClientIP netip.Addr
	Start    time.Time
}

type infoKey struct{}

// WithInfo returns ctx carrying info.
func WithInfo(ctx context.Context, info *RequestInfo) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

// InfoFrom returns the request's info, or nil outside a request.
func InfoFrom(ctx context.Context) *RequestInfo {
	i, _ := ctx.Value(infoKey{}).(*RequestInfo)
	return i
}
