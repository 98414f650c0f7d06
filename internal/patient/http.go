package patient

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/hospital-erp/hospital-erp/internal/hospital"

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
	r.Handle("GET /api/v1/patients", h.handlePatientList)
	r.Handle("POST /api/v1/patients", h.handlePatientRegister)
	r.Handle("GET /api/v1/patients/{id}", h.handlePatientGet)
	r.Handle("PUT /api/v1/patients/{id}", h.handlePatientUpdate)
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
	w.Header().Set("ETag", etag(p.Version))
	httpx.JSON(w, http.StatusCreated, p)
	return nil
}

func (h *Handler) handlePatientGet(w http.ResponseWriter, r *http.Request) error {
	p, err := h.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(p.Version))
	httpx.JSON(w, http.StatusOK, p)
	return nil
}

func etag(version int) string { return `"` + strconv.Itoa(version) + `"` }

func (h *Handler) handlePatientUpdate(w http.ResponseWriter, r *http.Request) error {
	version, err := ifMatch(r)
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
	w.Header().Set("ETag", etag(p.Version))
	httpx.JSON(w, http.StatusOK, p)
	return nil
}

// ifMatch reads the version from If-Match, which an update must carry.
func ifMatch(r *http.Request) (int, error) {
	v := r.Header.Get("If-Match")
	if v == "" {
		return 0, hospital.Errorf(hospital.EPRECONDREQUIRED,
			"Send If-Match with the ETag of the version you are changing, so that no one's change is silently lost.")
	}
	n, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(v, "W/"), `"`))
	if err != nil || n < 1 {
		return 0, hospital.Errorf(hospital.EINVALID, "If-Match must be an ETag this API returned, such as \"3\".")
	}
	return n, nil
}
