package ward

import (
	"net/http"

	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

// Handler serves departments and wards.
type Handler struct {
	svc *Service
}

// NewHandler returns the HTTP handler of the ward module.
func NewHandler(svc *Service) *Handler { return &Handler{svc: svc} }

// Routes registers the module's routes.
func (h *Handler) Routes(r *httpx.Router) {
	r.Handle("GET /api/v1/departments", identity.PermFacilityRead, h.handleDepartmentList)
	r.Handle("GET /api/v1/wards", identity.PermBedRead, h.handleWardList)
	r.Handle("GET /api/v1/wards/{id}", identity.PermBedRead, h.handleWardGet)
}

func (h *Handler) handleDepartmentList(w http.ResponseWriter, r *http.Request) error {
	d, err := h.svc.Departments(r.Context())
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, List[Department]{Items: d})
	return nil
}

func (h *Handler) handleWardList(w http.ResponseWriter, r *http.Request) error {
	ws, err := h.svc.Wards(r.Context())
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, List[Ward]{Items: ws})
	return nil
}

func (h *Handler) handleWardGet(w http.ResponseWriter, r *http.Request) error {
	d, err := h.svc.Ward(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, d)
	return nil
}
