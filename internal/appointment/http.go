package appointment

import (
	"context"
	"encoding/csv"
	"net/http"
	"strings"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

// Handler serves scheduling.
type Handler struct {
	svc *Service
}

// NewHandler returns the HTTP handler of the appointment module.
func NewHandler(svc *Service) *Handler { return &Handler{svc: svc} }

// Routes registers the module's routes.
func (h *Handler) Routes(r *httpx.Router) {
	r.Handle("GET /api/v1/practitioners", httpx.Authenticated, h.handlePractitionerList)
	r.Handle("POST /api/v1/practitioners", identity.PermStaffWrite, h.handlePractitionerCreate)
	r.Handle("GET /api/v1/practitioners/{id}/availability", httpx.Authenticated, h.handleRuleList)
	r.Handle("POST /api/v1/practitioners/{id}/availability", identity.PermStaffWrite, h.handleRuleAdd)
	r.Handle("DELETE /api/v1/practitioners/{id}/availability/{rule}", identity.PermStaffWrite, h.handleRuleDelete)
	r.Handle("POST /api/v1/availability-exceptions", identity.PermStaffWrite, h.handleExceptionAdd)
	r.Handle("DELETE /api/v1/availability-exceptions/{id}", identity.PermStaffWrite, h.handleExceptionDelete)
	r.Handle("GET /api/v1/clinics", httpx.Authenticated, h.handleClinicList)
	r.Handle("POST /api/v1/clinics", identity.PermFacilityWrite, h.handleClinicCreate)
	r.Handle("GET /api/v1/slots", identity.PermAppointmentRead, h.handleSlotList)
	r.Handle("GET /api/v1/appointments", identity.PermAppointmentRead, h.handleAppointmentList)
	r.Handle("GET /api/v1/appointments.csv", identity.PermAppointmentRead, h.handleAppointmentExport)
	r.Handle("POST /api/v1/appointments", identity.PermAppointmentWrite, h.handleAppointmentBook)
	r.Handle("GET /api/v1/appointments/{id}", identity.PermAppointmentRead, h.handleAppointmentGet)
	r.Handle("POST /api/v1/appointments/{id}/reschedule", identity.PermAppointmentWrite, h.handleAppointmentReschedule)
	r.Handle("POST /api/v1/appointments/{id}/cancel", identity.PermAppointmentWrite, h.handleAppointmentCancel)
	r.Handle("POST /api/v1/appointments/{id}/check-in", identity.PermAppointmentWrite, h.handleAppointmentCheckIn)
	r.Handle("POST /api/v1/appointments/{id}/no-show", identity.PermAppointmentWrite, h.handleAppointmentNoShow)
	r.Handle("POST /api/v1/appointments/{id}/complete", identity.PermAppointmentWrite, h.handleAppointmentComplete)
}

type list[T any] struct {
	Items []T `json:"items"`
}

func (h *Handler) handlePractitionerList(w http.ResponseWriter, r *http.Request) error {
	out, err := h.svc.Practitioners(r.Context(), r.URL.Query().Get("department_id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, list[Practitioner]{out})
	return nil
}

func (h *Handler) handlePractitionerCreate(w http.ResponseWriter, r *http.Request) error {
	var in PractitionerInput
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	p, err := h.svc.CreatePractitioner(r.Context(), in)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusCreated, p)
	return nil
}

func (h *Handler) handleRuleList(w http.ResponseWriter, r *http.Request) error {
	out, err := h.svc.Rules(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, list[Rule]{out})
	return nil
}

func (h *Handler) handleRuleAdd(w http.ResponseWriter, r *http.Request) error {
	var in Rule
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	out, err := h.svc.AddRule(r.Context(), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusCreated, out)
	return nil
}

func (h *Handler) handleRuleDelete(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.DeleteRule(r.Context(), r.PathValue("id"), r.PathValue("rule")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) handleExceptionAdd(w http.ResponseWriter, r *http.Request) error {
	var in Exception
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	out, err := h.svc.AddException(r.Context(), in)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusCreated, out)
	return nil
}

func (h *Handler) handleExceptionDelete(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.DeleteException(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) handleClinicList(w http.ResponseWriter, r *http.Request) error {
	out, err := h.svc.Clinics(r.Context())
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, list[Clinic]{out})
	return nil
}

func (h *Handler) handleClinicCreate(w http.ResponseWriter, r *http.Request) error {
	var in ClinicInput
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	c, err := h.svc.CreateClinic(r.Context(), in)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusCreated, c)
	return nil
}

// period reads from/to (RFC 3339 or YYYY-MM-DD; to defaults to from + 7 days).
func period(r *http.Request, v *hospital.Validation) (time.Time, time.Time) {
	q := r.URL.Query()
	parse := func(name string) time.Time {
		s := q.Get(name)
		if s == "" {
			return time.Time{}
		}
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t
		}
		t, err := time.Parse("2006-01-02", s)
		v.Check(err == nil, name, "must be an RFC 3339 time or a date YYYY-MM-DD")
		return t
	}
	from, to := parse("from"), parse("to")
	v.Check(!from.IsZero() || q.Get("from") != "", "from", "is required")
	if to.IsZero() && !from.IsZero() {
		to = from.AddDate(0, 0, 7)
	}
	return from, to
}

func (h *Handler) handleSlotList(w http.ResponseWriter, r *http.Request) error {
	var v hospital.Validation
	from, to := period(r, &v)
	q := r.URL.Query()
	pr, err1 := parseOptionalID("practitioner_id", q.Get("practitioner_id"))
	cl, err2 := parseOptionalID("clinic_id", q.Get("clinic_id"))
	v.Check(err1 == nil, "practitioner_id", "must be an id")
	v.Check(err2 == nil, "clinic_id", "must be an id")
	if err := v.Err(); err != nil {
		return err
	}
	out, err := h.svc.Slots(r.Context(), SlotFilter{PractitionerID: pr, ClinicID: cl, From: from, To: to})
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, list[Slot]{out})
	return nil
}

func (h *Handler) handleAppointmentList(w http.ResponseWriter, r *http.Request) error {
	var v hospital.Validation
	from, to := period(r, &v)
	if err := v.Err(); err != nil {
		return err
	}
	q := r.URL.Query()
	f := Filter{From: from, To: to}
	for name, dst := range map[string]**string{"practitioner_id": &f.PractitionerID, "clinic_id": &f.ClinicID,
		"patient_id": &f.PatientID, "status": &f.Status} {
		if s := q.Get(name); s != "" {
			*dst = &s
		}
	}
	out, err := h.svc.List(r.Context(), f)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, list[Appointment]{out})
	return nil
}

// handleAppointmentExport writes a calendar as CSV (a clinic's day list):
// the same filters and the same scoping as GET /api/v1/appointments, cells
// that a spreadsheet would run as formulas defused.
func (h *Handler) handleAppointmentExport(w http.ResponseWriter, r *http.Request) error {
	var v hospital.Validation
	from, to := period(r, &v)
	if err := v.Err(); err != nil {
		return err
	}
	q := r.URL.Query()
	f := Filter{From: from, To: to}
	for name, dst := range map[string]**string{"practitioner_id": &f.PractitionerID, "clinic_id": &f.ClinicID,
		"patient_id": &f.PatientID, "status": &f.Status} {
		if s := q.Get(name); s != "" {
			*dst = &s
		}
	}
	out, err := h.svc.List(r.Context(), f)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="appointments-`+from.UTC().Format("20060102")+`.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"starts_at", "ends_at", "status", "patient_mrn", "patient_name", "practitioner", "clinic", "reason"})
	for _, a := range out {
		rec := []string{a.StartsAt.Format(time.RFC3339), a.EndsAt.Format(time.RFC3339), a.Status, a.PatientMRN, a.PatientName,
			a.PractitionerName, a.ClinicName, a.Reason}
		for i := range rec {
			rec[i] = httpx.CSVSafe(rec[i])
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}

func (h *Handler) handleAppointmentBook(w http.ResponseWriter, r *http.Request) error {
	var in BookInput
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	a, _, err := h.svc.Book(r.Context(), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/appointments/"+a.ID)
	w.Header().Set("ETag", httpx.ETag(a.Version))
	httpx.JSON(w, http.StatusCreated, a)
	return nil
}

func (h *Handler) handleAppointmentGet(w http.ResponseWriter, r *http.Request) error {
	a, err := h.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", httpx.ETag(a.Version))
	httpx.JSON(w, http.StatusOK, a)
	return nil
}

// optionalIfMatch reads If-Match when present: commands on appointments
// are guarded by their state machine, and by the version when the client
// sends it.
func optionalIfMatch(r *http.Request) (int, error) {
	if r.Header.Get("If-Match") == "" {
		return 0, nil
	}
	return httpx.IfMatch(r)
}

func (h *Handler) handleAppointmentReschedule(w http.ResponseWriter, r *http.Request) error {
	version, err := optionalIfMatch(r)
	if err != nil {
		return err
	}
	var in RescheduleInput
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	a, err := h.svc.Reschedule(r.Context(), r.PathValue("id"), version, in)
	return h.answer(w, a, err)
}

func (h *Handler) handleAppointmentCancel(w http.ResponseWriter, r *http.Request) error {
	version, err := optionalIfMatch(r)
	if err != nil {
		return err
	}
	var in CancelInput
	if err := httpx.Decode(r, &in); err != nil {
		return err
	}
	a, err := h.svc.Cancel(r.Context(), r.PathValue("id"), version, in)
	return h.answer(w, a, err)
}

func (h *Handler) handleAppointmentCheckIn(w http.ResponseWriter, r *http.Request) error {
	return h.command(w, r, h.svc.CheckIn)
}

func (h *Handler) handleAppointmentNoShow(w http.ResponseWriter, r *http.Request) error {
	return h.command(w, r, h.svc.NoShow)
}

func (h *Handler) handleAppointmentComplete(w http.ResponseWriter, r *http.Request) error {
	return h.command(w, r, h.svc.Complete)
}

func (h *Handler) command(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context, id string, version int) (Appointment, error)) error {
	version, err := optionalIfMatch(r)
	if err != nil {
		return err
	}
	if r.ContentLength > 0 && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return hospital.Errorf(hospital.EUNSUPPORTED, "Send no body, or an empty JSON object.")
	}
	a, err := fn(r.Context(), r.PathValue("id"), version)
	return h.answer(w, a, err)
}

func (h *Handler) answer(w http.ResponseWriter, a Appointment, err error) error {
	if err != nil {
		return err
	}
	w.Header().Set("ETag", httpx.ETag(a.Version))
	httpx.JSON(w, http.StatusOK, a)
	return nil
}
