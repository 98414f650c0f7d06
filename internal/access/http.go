package access

import (
	"net/http"
	"strconv"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

// Handler serves emergency access.
type Handler struct {
	c *Checker
}

// NewHandler returns the HTTP handler of the access module.
func NewHandler(c *Checker) *Handler { return &Handler{c: c} }

// Routes registers the module's routes.
func (h *Handler) Routes(r *httpx.Router) {
	r.Handle("POST /api/v1/patients/{id}/emergency-access", identity.PermEmergencyAccess, h.handleEmergencyGrant)
	r.Handle("GET /api/v1/emergency-access", identity.PermEmergencyReview, h.handleEmergencyList)
	r.Handle("POST /api/v1/emergency-access/{id}/review", identity.PermEmergencyReview, h.handleEmergencyReview)
}

func (h *Handler) handleEmergencyGrant(w http.ResponseWriter, r *http.Request) error {
	var in GrantRequest
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	g, err := h.c.GrantEmergency(r.Context(), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusCreated, g)
	return nil
}

func (h *Handler) handleEmergencyList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var v hospital.Validation
	var unreviewed *bool
	if s := q.Get("unreviewed"); s != "" {
		b, err := strconv.ParseBool(s)
		v.Check(err == nil, "unreviewed", "must be true or false")
		unreviewed = &b
	}
	var before *time.Time
	if s := q.Get("before"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		v.Check(err == nil, "before", "must be an RFC 3339 time")
		before = &t
	}
	limit := 50
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		v.Check(err == nil && n >= 1 && n <= 200, "limit", "must be from 1 to 200")
		limit = n
	}
	if err := v.Err(); err != nil {
		return err
	}
	grants, err := h.c.ListGrants(r.Context(), unreviewed, before, limit)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, struct {
		Items []Grant `json:"items"`
	}{grants})
	return nil
}

func (h *Handler) handleEmergencyReview(w http.ResponseWriter, r *http.Request) error {
	var in ReviewRequest
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	if err := h.c.Review(r.Context(), r.PathValue("id"), in); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
