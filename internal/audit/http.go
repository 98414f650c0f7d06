package audit

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
)

// Handler serves the audit report.
type Handler struct {
	r  *Reader
	db *postgres.DB
}

// NewHandler returns the HTTP handler of the audit module.
func NewHandler(r *Reader, db *postgres.DB) *Handler { return &Handler{r: r, db: db} }

// Routes registers the module's routes.
func (h *Handler) Routes(r *httpx.Router) {
	r.Handle("GET /api/v1/audit/events", PermAuditRead, h.handleAuditSearch)
	r.Handle("GET /api/v1/audit/events.csv", PermAuditRead, h.handleAuditExport)
	r.Handle("GET /api/v1/audit/verify", PermAuditRead, h.handleAuditVerify)
}

// maxExportRows bounds one CSV export.
const maxExportRows = 100000

// parseQuery reads the report's filter, sort and paging; the sort key must
// come from SortKeys.
func parseQuery(r *http.Request) (Filter, string, int, int, error) {
	q := r.URL.Query()
	var v hospital.Validation
	var f Filter
	var ok bool
	if s := q.Get("from"); s != "" {
		f.From, ok = ParseTime(s)
		v.Check(ok, "from", "must be an RFC 3339 time or a date YYYY-MM-DD")
	} else {
		f.From = time.Now().UTC().Add(-24 * time.Hour)
	}
	if s := q.Get("to"); s != "" {
		f.To, ok = ParseTime(s)
		v.Check(ok, "to", "must be an RFC 3339 time or a date YYYY-MM-DD")
	} else {
		f.To = time.Now().UTC().Add(time.Minute)
	}
	for _, p := range []struct {
		name string
		dst  **uuid.UUID
	}{{"user_id", &f.ActorID}, {"patient_id", &f.PatientID}} {
		if s := q.Get(p.name); s != "" {
			id, err := uuid.Parse(s)
			v.Check(err == nil, p.name, "must be an id")
			*p.dst = &id
		}
	}
	if s := q.Get("action"); s != "" {
		f.Action = &s
	}
	if s := q.Get("outcome"); s != "" {
		f.Outcome = &s
	}
	sort := q.Get("sort")
	if sort == "" {
		sort = "-time"
	}
	known := false
	for _, k := range SortKeys {
		known = known || sort == k || sort == "-"+k
	}
	v.Check(known, "sort", "must be one of "+strings.Join(SortKeys, ", ")+" (prefix - for descending)")
	limit, offset := 50, 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		v.Check(err == nil && n >= 1 && n <= 200, "limit", "must be from 1 to 200")
		limit = n
	}
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		v.Check(err == nil && n >= 0, "offset", "must be a whole number")
		offset = n
	}
	return f, sort, limit, offset, v.Err()
}

func (h *Handler) handleAuditSearch(w http.ResponseWriter, r *http.Request) error {
	f, sort, limit, offset, err := parseQuery(r)
	if err != nil {
		return err
	}
	p, err := h.r.Search(r.Context(), f, sort, limit, offset)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, p)
	return nil
}

func (h *Handler) handleAuditExport(w http.ResponseWriter, r *http.Request) error {
	f, sort, _, _, err := parseQuery(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="audit-`+f.From.UTC().Format("20060102")+`-`+f.To.UTC().Format("20060102")+`.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	return h.r.ExportCSV(r.Context(), w, f, sort, maxExportRows)
}

func (h *Handler) handleAuditVerify(w http.ResponseWriter, r *http.Request) error {
	if _, err := hospital.Require(r.Context(), PermAuditRead); err != nil {
		return err
	}
	rep, err := Verify(r.Context(), h.db)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, rep)
	return nil
}
