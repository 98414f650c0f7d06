package httpapi

import (
	"net/url"

	"github.com/hospital-erp/hospital-erp/internal/access"
	"github.com/hospital-erp/hospital-erp/internal/admission"
	"github.com/hospital-erp/hospital-erp/internal/appointment"
	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/events"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
	"github.com/hospital-erp/hospital-erp/internal/queue"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

// routes mounts every module: this file is the whole API surface.
func (s *Server) routes() {
	r := s.router
	d := s.deps

	r.Handle("GET /health/live", httpx.Public, s.handleLive)
	r.Handle("GET /health/ready", httpx.Public, s.handleReady)
	r.Handle("GET /api/v1/openapi.json", httpx.Public, s.handleOpenAPI)
	r.Handle("GET /api/v1/docs", httpx.Public, s.handleDocs)

	identity.NewHandler(d.Identity).Routes(r)
	patient.NewHandler(d.Patients).Routes(r)
	appointment.NewHandler(d.Appts).Routes(r)
	queue.NewHandler(d.Queue).Routes(r)
	access.NewHandler(d.Access).Routes(r)
	audit.NewHandler(d.Audit, d.DB).Routes(r)
	ward.NewHandler(d.Wards).Routes(r)
	admission.NewHandler(d.Admissions).Routes(r)

	var origins []string
	if u, err := url.Parse(d.Config.PublicURL); err == nil && u.Host != "" {
		origins = []string{u.Host}
	}
	events.NewHandler(d.Bus, d.Identity, d.Log, events.HandlerOptions{
		PingInterval:   d.Config.WebSocketPing,
		MaxPerUser:     d.Config.EventStreamsPerUser,
		Max:            d.Config.EventStreams,
		OriginPatterns: origins,
		Shutdown:       d.Shutdown,
		Connections:    func(delta float64) { d.Metrics.WebSockets.Add(delta) },
	}).Routes(r)
}
