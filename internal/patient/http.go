package patient

import (
	"net/http"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
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
	r.Handle("POST /api/v1/patients/duplicates", identity.PermPatientWrite, h.handlePatientDuplicates)
	r.Handle("GET /api/v1/patients/{id}", identity.PermPatientRead, h.handlePatientGet)
	r.Handle("PUT /api/v1/patients/{id}", identity.PermPatientWrite, h.handlePatientUpdate)
	r.Handle("POST /api/v1/patients/{id}/identifiers", identity.PermPatientWrite, h.handleIdentifierAdd)
	r.Handle("DELETE /api/v1/patients/{id}/identifiers/{identifier}", identity.PermPatientWrite, h.handleIdentifierRemove)
	r.Handle("POST /api/v1/patients/{id}/contacts", identity.PermPatientWrite, h.handleContactAdd)
	r.Handle("DELETE /api/v1/patients/{id}/contacts/{contact}", identity.PermPatientWrite, h.handleContactRemove)
	r.Handle("POST /api/v1/patients/{id}/merge", identity.PermPatientMerge, h.handlePatientMerge)
	r.Handle("GET /api/v1/patients/{id}/merges", identity.PermPatientMerge, h.handlePatientMergeList)
	r.Handle("POST /api/v1/patient-merges/{id}/undo", identity.PermPatientMerge, h.handlePatientUnmerge)
}

func (h *Handler) handlePatientList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	def := "name"
	if q.Get("q") != "" {
		def = "relevance"
	}
	page, err := httpx.ParsePage(r, SortKeys, def)
	if err != nil {
		return err
	}
	var f ListFilter
	var v hospital.Validation
	for name, dst := range map[string]**string{"q": &f.Query, "mrn": &f.MRN, "identifier": &f.Identifier, "phone": &f.Phone} {
		if s := q.Get(name); s != "" {
			v.Check(len(s) <= 100, name, "is too long")
			*dst = &s
		}
	}
	if s := q.Get("birth_date"); s != "" {
		d, err := time.Parse("2006-01-02", s)
		v.Check(err == nil, "birth_date", "must be a date written YYYY-MM-DD")
		f.BirthDate = &d
	}
	if err := v.Err(); err != nil {
		return err
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

func (h *Handler) handlePatientDuplicates(w http.ResponseWriter, r *http.Request) error {
	var in RegisterInput
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	dups, err := h.svc.Duplicates(r.Context(), in)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, struct {
		Items     []Duplicate `json:"items"`
		Threshold float64     `json:"threshold"`
	}{dups, DuplicateThreshold})
	return nil
}

func (h *Handler) handlePatientGet(w http.ResponseWriter, r *http.Request) error {
	p, raw, err := h.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", httpx.ETag(p.Version))
	if raw == nil {
		httpx.JSON(w, http.StatusOK, p)
		return nil
	}
	httpx.EncodedJSON(w, http.StatusOK, raw)
	return nil
}

func (h *Handler) handlePatientUpdate(w http.ResponseWriter, r *http.Request) error {
	version, err := httpx.IfMatch(r)
	if err != nil {
		return err
	}
	var in UpdateInput
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

func (h *Handler) handleIdentifierAdd(w http.ResponseWriter, r *http.Request) error {
	var in Identifier
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	out, err := h.svc.AddIdentifier(r.Context(), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusCreated, out)
	return nil
}

func (h *Handler) handleIdentifierRemove(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.RemoveIdentifier(r.Context(), r.PathValue("id"), r.PathValue("identifier")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) handleContactAdd(w http.ResponseWriter, r *http.Request) error {
	var in Contact
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	out, err := h.svc.AddContact(r.Context(), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusCreated, out)
	return nil
}

func (h *Handler) handleContactRemove(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.RemoveContact(r.Context(), r.PathValue("id"), r.PathValue("contact")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) handlePatientMerge(w http.ResponseWriter, r *http.Request) error {
	var in MergeInput
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	m, err := h.svc.Merge(r.Context(), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, m)
	return nil
}

func (h *Handler) handlePatientMergeList(w http.ResponseWriter, r *http.Request) error {
	ms, err := h.svc.Merges(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, struct {
		Items []Merge `json:"items"`
	}{ms})
	return nil
}

func (h *Handler) handlePatientUnmerge(w http.ResponseWriter, r *http.Request) error {
	m, err := h.svc.Unmerge(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, m)
	return nil
}
