package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
)

// statuses is the one mapping from application error codes to HTTP.
var statuses = map[string]int{
	hospital.EINVALID:         http.StatusBadRequest,
	hospital.EUNAUTHORIZED:    http.StatusUnauthorized,
	hospital.EMFAREQUIRED:     http.StatusUnauthorized,
	hospital.EFORBIDDEN:       http.StatusForbidden,
	hospital.ENOTFOUND:        http.StatusNotFound,
	hospital.ECONFLICT:        http.StatusConflict,
	hospital.EPRECONDITION:    http.StatusPreconditionFailed,
	hospital.EPRECONDREQUIRED: http.StatusPreconditionRequired,
	hospital.EUNPROCESSABLE:   http.StatusUnprocessableEntity,
	hospital.ETOOLARGE:        http.StatusRequestEntityTooLarge,
	hospital.EUNSUPPORTED:     http.StatusUnsupportedMediaType,
	hospital.ETOOMANY:         http.StatusTooManyRequests,
	hospital.EUNAVAILABLE:     http.StatusServiceUnavailable,
	hospital.EINTERNAL:        http.StatusInternalServerError,
}

// problemType is the RFC 9457 "type" of a code.
func problemType(code string) string { return "urn:hospital-erp:problem:" + code }

// writeError answers err as application/problem+json. Only internal errors
// are logged (once, here) and their text never reaches the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	// A database error a service passed on as it came (the text of a
	// search, a NUL in a name) is named here rather than answered 500.
	err = postgres.Translate(err)
	code := hospital.ErrorCode(err)
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nobody reads the answer.
		code = hospital.EUNAVAILABLE
	}
	status, ok := statuses[code]
	if !ok {
		status, code = http.StatusInternalServerError, hospital.EINTERNAL
	}
	reqID := httpx.RequestID(r.Context())
	if code == hospital.EINTERNAL {
		s.log.Error("internal error", "request_id", reqID, "route", routeOf(r), "error", err.Error())
	} else if code == hospital.EUNAVAILABLE {
		s.log.Warn("unavailable", "request_id", reqID, "route", routeOf(r), "error", err.Error())
	}
	s.metrics.Errors.WithLabelValues(code).Inc()
	var he *hospital.Error
	p := httpx.Problem{Type: problemType(code), Title: http.StatusText(status), Status: status, Code: code,
		Detail: hospital.ErrorMessage(err), RequestID: reqID, Instance: r.URL.Path}
	if errors.As(err, &he) {
		p.Errors = he.Fields
		for k, v := range he.Extensions {
			if b, err := json.Marshal(v); err == nil {
				if p.Extensions == nil {
					p.Extensions = map[string]json.RawMessage{}
				}
				p.Extensions[k] = b
			}
		}
		if he.RetryAfter > 0 {
			w.Header().Set("Retry-After", httpx.RetryAfter(he.RetryAfter))
		}
	}
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="hospital-erp"`)
	case http.StatusServiceUnavailable:
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "1")
		}
	}
	httpx.WriteProblem(w, p)
}

// writeUnmatched answers requests no route matched.
func (s *Server) writeUnmatched(w http.ResponseWriter, r *http.Request, status int, allow string) {
	if status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", allow)
		s.writeProblem(w, r, status, "method_not_allowed", "This endpoint does not accept "+r.Method+"; allowed: "+allow+".")
		return
	}
	s.writeProblem(w, r, http.StatusNotFound, hospital.ENOTFOUND, "There is no such endpoint.")
}

func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	s.metrics.Errors.WithLabelValues(code).Inc()
	httpx.WriteProblem(w, httpx.Problem{Type: problemType(code), Title: http.StatusText(status), Status: status,
		Code: code, Detail: detail, RequestID: httpx.RequestID(r.Context()), Instance: r.URL.Path})
}

func routeOf(r *http.Request) string {
	if info := httpx.InfoFrom(r.Context()); info != nil {
		return info.Route
	}
	return ""
}
