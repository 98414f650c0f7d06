package queue

import (
	"net/http"

	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

// Handler serves the queues.
type Handler struct {
	svc *Service
}

// NewHandler returns the HTTP handler of the queue module.
func NewHandler(svc *Service) *Handler { return &Handler{svc: svc} }

// Routes registers the module's routes.
func (h *Handler) Routes(r *httpx.Router) {
	r.Handle("GET /api/v1/departments/{id}/queue", identity.PermAppointmentRead, h.handleQueueBoard)
	r.Handle("POST /api/v1/departments/{id}/queue", identity.PermAppointmentWrite, h.handleQueueWalkIn)
	r.Handle("POST /api/v1/departments/{id}/queue/call-next", identity.PermAppointmentWrite, h.handleQueueCallNext)
	r.Handle("POST /api/v1/queue-entries/{id}/done", identity.PermAppointmentWrite, h.handleQueueDone)
	r.Handle("POST /api/v1/queue-entries/{id}/left", identity.PermAppointmentWrite, h.handleQueueLeft)
}

func (h *Handler) handleQueueBoard(w http.ResponseWriter, r *http.Request) error {
	b, err := h.svc.Board(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, b)
	return nil
}

func (h *Handler) handleQueueWalkIn(w http.ResponseWriter, r *http.Request) error {
	var in WalkIn
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	e, err := h.svc.AddWalkIn(r.Context(), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusCreated, e)
	return nil
}

func (h *Handler) handleQueueCallNext(w http.ResponseWriter, r *http.Request) error {
	var in CallNext
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	e, err := h.svc.CallNextPatient(r.Context(), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, e)
	return nil
}

func (h *Handler) handleQueueDone(w http.ResponseWriter, r *http.Request) error {
	return h.finish(w, r, "done")
}

func (h *Handler) handleQueueLeft(w http.ResponseWriter, r *http.Request) error {
	return h.finish(w, r, "left")
}

func (h *Handler) finish(w http.ResponseWriter, r *http.Request, status string) error {
	e, err := h.svc.Finish(r.Context(), r.PathValue("id"), status)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, e)
	return nil
}
