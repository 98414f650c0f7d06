package ward

import (
	"net/http"
	"strconv"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
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
	r.Handle("GET /api/v1/bed-board", identity.PermBedRead, h.handleBedBoard)
	r.Handle("POST /api/v1/beds/{id}/{action}", identity.PermBedWrite, h.handleBedAction)
	r.Handle("GET /api/v1/census", identity.PermBedRead, h.handleCensus)
	r.Handle("GET /api/v1/census.csv", identity.PermBedRead, h.handleCensusCSV)
}

func (h *Handler) handleBedBoard(w http.ResponseWriter, r *http.Request) error {
	var f BoardFilter
	q := r.URL.Query()
	if v := q.Get("ward_id"); v != "" {
		f.WardID = &v
	}
	if v := q.Get("status"); v != "" {
		f.Status = &v
	}
	var v hospital.Validation
	if s := q.Get("max_beds"); s != "" {
		n, err := strconv.Atoi(s)
		v.Check(err == nil && n >= 0, "max_beds", "must be a whole number, 0 or more")
		f.MaxBeds = &n
	}
	if err := v.Err(); err != nil {
		return err
	}
	b, err := h.svc.Board(r.Context(), f)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, b)
	return nil
}

func (h *Handler) handleBedAction(w http.ResponseWriter, r *http.Request) error {
	b, err := h.svc.BedAction(r.Context(), r.PathValue("id"), r.PathValue("action"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, b)
	return nil
}

func censusFilter(r *http.Request) CensusFilter {
	q := r.URL.Query()
	f := CensusFilter{From: q.Get("from"), To: q.Get("to")}
	if v := q.Get("ward_id"); v != "" {
		f.WardID = &v
	}
	return f
}

func (h *Handler) handleCensus(w http.ResponseWriter, r *http.Request) error {
	c, err := h.svc.Census(r.Context(), censusFilter(r))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, c)
	return nil
}

func (h *Handler) handleCensusCSV(w http.ResponseWriter, r *http.Request) error {
	c, err := h.svc.Census(r.Context(), censusFilter(r))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="census-`+c.From+`-`+c.To+`.csv"`)
	return WriteCensusCSV(w, c)
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
