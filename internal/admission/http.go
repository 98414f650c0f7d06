package admission

import (
	"context"
	"net/http"

	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

// Handler serves /api/v1/admissions.
type Handler struct {
	svc *Service
}

// NewHandler returns the HTTP handler of the admission module.
func NewHandler(svc *Service) *Handler { return &Handler{svc: svc} }

// Routes registers the module's routes.
func (h *Handler) Routes(r *httpx.Router) {
	r.Handle("POST /api/v1/admissions", identity.PermAdmissionWrite, h.handleAdmissionAdmit)
	r.Handle("GET /api/v1/admissions/{id}", identity.PermAdmissionRead, h.handleAdmissionGet)
	r.Handle("GET /api/v1/patients/{id}/admissions", identity.PermAdmissionRead, h.handleAdmissionList)
	r.Handle("POST /api/v1/admissions/{id}/transfer", identity.PermAdmissionWrite, h.handleAdmissionTransfer)
	r.Handle("POST /api/v1/admissions/{id}/discharge", identity.PermAdmissionWrite, h.handleAdmissionDischarge)
	r.Handle("POST /api/v1/admissions/{id}/cancel", identity.PermAdmissionWrite, h.handleAdmissionCancel)
}

func (h *Handler) handleAdmissionAdmit(w http.ResponseWriter, r *http.Request) error {
	var in AdmitInput
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	a, _, err := h.svc.Admit(r.Context(), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/admissions/"+a.ID)
	w.Header().Set("ETag", httpx.ETag(a.Version))
	httpx.JSON(w, http.StatusCreated, a)
	return nil
}

func (h *Handler) handleAdmissionGet(w http.ResponseWriter, r *http.Request) error {
	a, err := h.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", httpx.ETag(a.Version))
	httpx.JSON(w, http.StatusOK, a)
	return nil
}

func (h *Handler) handleAdmissionList(w http.ResponseWriter, r *http.Request) error {
	out, err := h.svc.ForPatient(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, struct {
		Items []Admission `json:"items"`
	}{out})
	return nil
}

func (h *Handler) handleAdmissionTransfer(w http.ResponseWriter, r *http.Request) error {
	return command(w, r, func(ctx context.Context, id string, version int) (Admission, error) {
		var in TransferInput
		if err := httpx.Decode(r, &in); err != nil {
			return Admission{}, err
		}
		return h.svc.Transfer(ctx, id, version, in)
	})
}

func (h *Handler) handleAdmissionDischarge(w http.ResponseWriter, r *http.Request) error {
	return command(w, r, func(ctx context.Context, id string, version int) (Admission, error) {
		var in DischargeInput
		if err := httpx.Decode(r, &in); err != nil {
			return Admission{}, err
		}
		return h.svc.Discharge(ctx, id, version, in)
	})
}

func (h *Handler) handleAdmissionCancel(w http.ResponseWriter, r *http.Request) error {
	return command(w, r, func(ctx context.Context, id string, version int) (Admission, error) {
		var in CancelInput
		if err := httpx.Decode(r, &in); err != nil {
			return Admission{}, err
		}
		return h.svc.Cancel(ctx, id, version, in)
	})
}

// command runs a state change; If-Match is optional (the state machine
// guards the order of commands) but checked when sent.
func command(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context, id string, version int) (Admission, error)) error {
	version := 0
	if r.Header.Get("If-Match") != "" {
		v, err := httpx.IfMatch(r)
		if err != nil {
			return err
		}
		version = v
	}
	a, err := fn(r.Context(), r.PathValue("id"), version)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", httpx.ETag(a.Version))
	httpx.JSON(w, http.StatusOK, a)
	return nil
}
