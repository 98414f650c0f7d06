package httpx

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzhttp"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
)

// Middleware wraps a handler.
type Middleware func(http.Handler) http.Handler

// Chain applies mws so that the first is outermost.
func Chain(h http.Handler, mws ...Middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Recorder is the ResponseWriter the middleware sees: it remembers status
// and size, and passes Flush, Hijack and Unwrap through (WebSockets).
type Recorder struct {
	http.ResponseWriter
	Status int
	Bytes  int64
}

func (rw *Recorder) WriteHeader(code int) {
	if rw.Status == 0 {
		rw.Status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *Recorder) Write(b []byte) (int, error) {
	if rw.Status == 0 {
		rw.Status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(b)
	rw.Bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (rw *Recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// Flush implements http.Flusher.
func (rw *Recorder) Flush() {
	if f, ok := rw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack implements http.Hijacker for WebSocket upgrades.
func (rw *Recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if rw.Status == 0 {
		rw.Status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(rw.ResponseWriter).Hijack()
}

// Observer receives one finished request, for metrics.
type Observer func(info *RequestInfo, method string, status int, d time.Duration)

// Observe is the outermost middleware: it assigns the request id and the
// client IP, recovers panics, and at the end writes one JSON access-log
// line (never the query string or body: they may hold patient data) and
// reports to observe.
func Observe(log *slog.Logger, proxies []netip.Prefix, observe Observer, onPanic func(w http.ResponseWriter, r *http.Request)) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := &RequestInfo{ID: requestID(r), ClientIP: ClientIP(r, proxies), Start: time.Now(), Route: "unmatched"}
			w.Header().Set("X-Request-ID", info.ID)
			ctx := WithInfo(r.Context(), info)
			ctx = hospital.WithRequestID(ctx, info.ID)
			// Stored with audit rows and sessions: PostgreSQL refuses text
			// that is not UTF-8 (a header may hold any byte), and a cut
			// must not split a character.
			ua := hospital.Truncate(strings.ToValidUTF8(r.UserAgent(), "\uFFFD"), 512)
			ctx = hospital.WithClient(ctx, hospital.Client{IP: info.ClientIP.String(), UserAgent: ua})
			rec := &Recorder{ResponseWriter: w}
			r = r.WithContext(ctx)
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					log.Error("panic", "request_id", info.ID, "route", info.Route, "panic", fmt.Sprint(p),
						"stack", string(debug.Stack()))
					if rec.Status == 0 {
						onPanic(rec, r)
					}
				}
				d := time.Since(info.Start)
				status := rec.Status
				if status == 0 {
					status = http.StatusOK
				}
				level := slog.LevelInfo
				if status >= 500 {
					level = slog.LevelWarn
				}
				log.LogAttrs(r.Context(), level, "request",
					slog.String("request_id", info.ID),
					slog.String("method", r.Method),
					slog.String("route", info.Route),
					slog.Int("status", status),
					slog.Float64("duration_ms", float64(d.Microseconds())/1000),
					slog.Int64("bytes", rec.Bytes),
					slog.String("user_id", info.UserID),
				)
				observe(info, r.Method, status, d)
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// RequestID returns the id of the request in ctx.
func RequestID(ctx context.Context) string { return hospital.RequestIDFrom(ctx) }

// requestID accepts a well-formed incoming X-Request-ID (set by the ingress
// or the frontend) so one id follows a request across services.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-ID"); id != "" && len(id) <= 64 && safeID(id) {
		return id
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func safeID(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// ClientIP is the address the request came from: the connection's peer,
// or, when that peer is a trusted proxy, the rightmost address in
// X-Forwarded-For that is not itself a trusted proxy.
func ClientIP(r *http.Request, proxies []netip.Prefix) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if !trusted(ip, proxies) {
		return ip
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !trusted(a, proxies) {
			return a
		}
		ip = a
	}
	return ip
}

func trusted(ip netip.Addr, proxies []netip.Prefix) bool {
	for _, p := range proxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// SecurityHeaders sets the headers every response carries. hsts is sent
// only when the public URL is https. documents adds the headers only a
// document (an HTML page) acts on, for a server of pages (the frontend);
// a server of JSON sets them on its few pages itself (DocumentHeaders).
func SecurityHeaders(csp string, hsts, documents bool) Middleware {
	set := []header{
		{"Content-Security-Policy", []string{csp}},
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"X-Frame-Options", []string{"DENY"}},
		{"Cross-Origin-Resource-Policy", []string{"same-origin"}},
	}
	if hsts {
		set = append(set, header{"Strict-Transport-Security", []string{"max-age=63072000; includeSubDomains"}})
	}
	if documents {
		set = append(set, documentHeaders...)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Every response shares the value slices (one element, so
			// an Add makes its own copy), and the keys need no
			// canonicalising: Header.Set did both per header and
			// request, 3% of the backend's CPU per read.
			h := w.Header()
			for _, kv := range set {
				h[kv.key] = kv.value
			}
			next.ServeHTTP(w, r)
		})
	}
}

type header struct {
	key   string // canonical already
	value []string
}

// documentHeaders are the security headers a browser reads on a document
// only: on a JSON response they were 3 of 18 headers, parsed by every
// client for nothing.
var documentHeaders = []header{
	{"Referrer-Policy", []string{"no-referrer"}},
	{"Cross-Origin-Opener-Policy", []string{"same-origin"}},
	{"Permissions-Policy", []string{"camera=(), microphone=(), geolocation=(), payment=()"}},
}

// DocumentHeaders sets on h the headers SecurityHeaders leaves out when
// not told documents: for an HTML page of a JSON server.
func DocumentHeaders(h http.Header) {
	for _, kv := range documentHeaders {
		h[kv.key] = kv.value
	}
}

// BodyLimit caps request bodies at n bytes; Decode turns the overflow into 413.
func BodyLimit(n int64) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				// Refuse before reading anything.
				r.Body = http.MaxBytesReader(w, r.Body, 0)
			} else if r.Body != nil {
				r.Body = http.MaxBytesReader(w, r.Body, n)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Timeout gives the request context a deadline, except for long-lived
// requests (WebSocket upgrades).
func Timeout(d time.Duration) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d <= 0 || isUpgrade(r) {
				next.ServeHTTP(w, r)
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// Gzip compresses responses larger than 1 KiB for clients that accept it.
// Random jitter in the gzip header defeats BREACH-style length guessing of
// secrets (CSRF tokens) in compressed pages. WebSocket upgrades pass by.
func Gzip() Middleware {
	wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(1024), gzhttp.RandomJitter(32, 0, false))
	if err != nil {
		panic(err)
	}
	return func(next http.Handler) http.Handler {
		gz := wrap(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isUpgrade(r) {
				next.ServeHTTP(w, r)
				return
			}
			gz.ServeHTTP(w, r)
		})
	}
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// RetryAfter formats d for a Retry-After header (whole seconds, at least 1).
func RetryAfter(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	return strconv.Itoa(max(s, 1))
}

// IsClientGone reports whether err only says the client went away.
func IsClientGone(err error) bool {
	return errors.Is(err, context.Canceled)
}
