package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
)

// Health is the body of the health endpoints.
type Health struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

// handleLive answers 200 while the process runs, also while draining: a
// draining pod must not be restarted.
func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) error {
	httpx.JSON(w, http.StatusOK, Health{Status: "alive"})
	return nil
}

// handleReady answers 200 when PostgreSQL answers through PgBouncer and the
// schema is at this binary's migration. Redis is reported, never fatal: the
// backend degrades without it.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) error {
	checks := map[string]string{}
	ready := true
	if s.draining.Load() {
		ready = false
		checks["server"] = "draining"
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.deps.DB.Ping(ctx); err != nil {
		ready = false
		checks["database"] = "down: " + hospital.ErrorMessage(postgres.Translate(err))
	} else {
		checks["database"] = "up"
		if !s.schemaOK.Load() {
			v, err := s.deps.DB.SchemaVersion(ctx)
			want := postgres.LatestMigration()
			switch {
			case err != nil:
				ready = false
				checks["migrations"] = "unknown: run `hospital-erp migrate`"
			case v < want:
				ready = false
				checks["migrations"] = fmt.Sprintf("pending: database at %d, this binary needs %d; run `hospital-erp migrate`", v, want)
			default:
				s.schemaOK.Store(true)
			}
		}
		if s.schemaOK.Load() {
			checks["migrations"] = "current"
		}
	}
	if s.deps.Redis == nil {
		checks["redis"] = "not configured (in-process cache and limits)"
	} else {
		checks["redis"] = s.deps.Redis.Status()
	}
	status, code := "ready", http.StatusOK
	if !ready {
		status, code = "not ready", http.StatusServiceUnavailable
	}
	httpx.JSON(w, code, Health{Status: status, Checks: checks})
	return nil
}
