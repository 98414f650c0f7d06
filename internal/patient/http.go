package patient

import (
	"net/http"

	"github.com/hospital-erp/hospital-erp/internal/identity"

	"github.com/hospital-erp/hospital-erp/internal/httpx"
)

// Handler serves /api/v1/patients.
type Handler struct {
	svc *Service
}

// NewHandler returns the HTTP handler of the patient module.
func NewHandler(svc *Service) *Handler { return &Handler{svc: svc} }

// Routes registers the module's routes.
func (h *Handler) Routes(r *httpx.Router) {
	r.Handle("GET /api/v1/patients", identity.PermPatientRead, h.handlePatientList)
	r.Handle("POST /api/v1/patients", identity.PermPatientWrite, h.handlePatientRegister)
	r.Handle("GET /api/v1/patients/{id}", identity.PermPatientRead, h.handlePatientGet)
	r.Handle("PUT /api/v1/patients/{id}", identity.PermPatientWrite, h.handlePatientUpdate)
}

func (h *Handler) handlePatientList(w http.ResponseWriter, r *http.Request) error {
	page, err := httpx.ParsePage(r, SortKeys, "name")
	if err != nil {
		return err
	}
	var f ListFilter
	if q := r.URL.Query().Get("q"); q != "" {
		f.NamePrefix = &q
	}
	out, err := h.svc.List(r.Context(), f, page)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) handlePatientRegister(w http.ResponseWriter, r *http.Request) error {
	var in RegisterInput
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	p, err := h.svc.Register(r.Context(), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/patients/"+p.ID)
	w.Header().Set("ETag", httpx.ETag(p.Version))
	httpx.JSON(w, http.StatusCreated, p)
	return nil
}

func (h *Handler) handlePatientGet(w http.ResponseWriter, r *http.Request) error {
	p, err := h.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", httpx.ETag(p.Version))
	httpx.JSON(w, http.StatusOK, p)
	return nil
}

func (h *Handler) handlePatientUpdate(w http.ResponseWriter, r *http.Request) error {
	version, err := httpx.IfMatch(r)
	if err != nil {
		return err
	}
	var in RegisterInput
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	p, err := h.svc.Update(r.Context(), r.PathValue("id"), version, in)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", httpx.ETag(p.Version))
	httpx.JSON(w, http.StatusOK, p)
	return nil
}
