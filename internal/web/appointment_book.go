package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hospital-erp/hospital-erp/internal/appointment"
	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/patient"
)

const (
	// patientChoiceLimit is how many patients the booking search offers.
	patientChoiceLimit = 10
	// maxBookReason is the longest reason for a visit the API takes.
	maxBookReason = 500
	// slotTakenMessage is what a 409 on booking or rescheduling says.
	slotTakenMessage = "This slot was just taken, pick another. The free times below are up to date."
)

// bookParams are the booking page's choices that travel in its URLs and
// hidden fields: where and when, and the patient.
type bookParams struct {
	ClinicID, PractitionerID, Date, View, PatientID, PatientQ string
}

func bookParamsFrom(get func(string) string) bookParams {
	return bookParams{ClinicID: get("clinic_id"), PractitionerID: get("practitioner_id"), Date: get("date"), View: get("view"),
		PatientID: strings.TrimSpace(get("patient_id")), PatientQ: strings.TrimSpace(get("patient_q"))}
}

func (b bookParams) url() string {
	v := url.Values{}
	for k, val := range map[string]string{"clinic_id": b.ClinicID, "practitioner_id": b.PractitionerID, "date": b.Date,
		"view": b.View, "patient_id": b.PatientID, "patient_q": b.PatientQ} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if len(v) == 0 {
		return "/appointments/book"
	}
	return "/appointments/book?" + v.Encode()
}

// BookPage is the booking flow on one page, which works without
// JavaScript: a GET form chooses clinic, clinician and days, another finds
// the patient; the POST form picks a free slot, the patient and the
// reason. The POST form carries a fresh Idempotency-Key made when the page
// was rendered, so a double click or a browser retry books once.
type BookPage struct {
	Layout
	Params        bookParams
	Clinics       []Option
	Practitioners []Option
	ViewTabs      []NavItem
	Period        string
	PrevURL       string
	NextURL       string
	// Chosen: a clinic or clinician is selected, so slots are listed.
	Chosen    bool
	Days      []SlotDay
	SlotError string
	// Taken: the slot picked was booked by someone else meanwhile.
	Taken bool

	Patient          *patient.Patient
	PatientSearched  bool
	PatientResults   []PatientChoice
	PatientError     string
	ChangePatientURL string

	Key     string
	Reason  Field
	Summary []SummaryItem
	// DateError is an invalid date in the URL.
	DateError string
}

// PatientChoice is one search result as a radio button.
type PatientChoice struct {
	patient.Patient
	InputID string
	Checked bool
}

// bookState is a posted booking form, to show again with its errors.
type bookState struct {
	slot, patient, reason          string
	slotErr, patientErr, reasonErr string
	summary                        []SummaryItem
	taken                          bool
}

func (s *Server) handleBookForm(w http.ResponseWriter, r *http.Request) error {
	return s.renderBook(w, r, http.StatusOK, bookParamsFrom(r.URL.Query().Get), bookState{})
}

// renderBook renders the booking page for the choices in b; st is a
// posted form to show again.
func (s *Server) renderBook(w http.ResponseWriter, r *http.Request, status int, b bookParams, st bookState) error {
	d, err := s.loadSchedule(w, r)
	if err != nil {
		return err
	}
	b.ClinicID, b.PractitionerID = d.knownClinic(b.ClinicID), d.knownPractitioner(b.PractitionerID)
	if b.View != viewDay {
		b.View = viewWeek
	}
	if utf8.RuneCountInString(b.PatientQ) > maxSearchLen {
		b.PatientQ = string([]rune(b.PatientQ)[:maxSearchLen])
	}
	p := &BookPage{
		Layout:    Layout{Title: "Book an appointment", Area: "Appointments", Nav: "appointments"},
		Key:       newIdempotencyKey(),
		Taken:     st.taken,
		SlotError: st.slotErr,
		Summary:   st.summary,
		Reason: Field{Name: "reason", Label: "Reason for the visit", Rows: 2, MaxLength: maxBookReason, Value: st.reason,
			Optional: true, Hint: "For example “Follow-up after discharge”. The clinician sees it."},
		PatientError: st.patientErr,
	}
	p.Reason.Error = st.reasonErr
	today := midnight(s.now(), s.loc)
	day := today
	if b.Date != "" {
		if dd, ok := parseDay(b.Date, s.loc); ok {
			day = dd
		} else {
			p.DateError = "Enter a date, for example " + today.Format(isoDate)
			p.Summary = append(p.Summary, SummaryItem{Text: p.DateError, Href: "#f-date"})
		}
	}
	b.Date = day.Format(isoDate)
	per := newPeriod(b.View, day)
	p.Period = per.label()
	p.Clinics = d.clinicOptions(b.ClinicID, "Any clinic")
	p.Practitioners = d.practitionerOptions(b.PractitionerID, "Any clinician")
	p.ViewTabs = viewTabs(b.View, func(v string) string { c := b; c.View = v; return c.url() })
	prev, next := b, b
	prev.Date, next.Date = per.step(-1).Format(isoDate), per.step(1).Format(isoDate)
	p.PrevURL, p.NextURL = prev.url(), next.url()
	p.Chosen = b.ClinicID != "" || b.PractitionerID != ""

	if p.Chosen {
		var slots []appointment.Slot
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			var err error
			slots, err = api.Slots(ctx, b.PractitionerID, b.ClinicID, per.from, per.to)
			return err
		})
		if err != nil && client.StatusOf(err) != http.StatusBadRequest {
			return err
		}
		p.Days = slotDays(slots, d, s.loc, st.slot, b.PractitionerID == "" || b.ClinicID == "")
	}
	if b.PatientID != "" {
		pt, err := s.loadPatient(w, r, b.PatientID)
		switch {
		case err == nil && pt.MergedInto == "":
			p.Patient = &pt
			c := b
			c.PatientID = ""
			p.ChangePatientURL = c.url() + "#patient-title"
		case errors.Is(err, errSessionEnded):
			return err
		case err != nil && client.StatusOf(err) == 0:
			return err
		default:
			b.PatientID = ""
			p.PatientError = orDefault(p.PatientError, "That patient cannot be booked here; find the patient below")
		}
	}
	if p.Patient == nil && b.PatientQ != "" {
		p.PatientSearched = true
		var found []patient.Patient
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			res, err := api.SearchPatients(ctx, client.PatientSearch{Q: b.PatientQ, Limit: patientChoiceLimit})
			found = res.Items
			return err
		})
		if err != nil && client.StatusOf(err) != http.StatusBadRequest {
			return err
		}
		for i, pt := range found {
			if pt.MergedInto != "" {
				continue
			}
			p.PatientResults = append(p.PatientResults, PatientChoice{Patient: pt, InputID: "patient-" + strconv.Itoa(i),
				Checked: pt.ID == st.patient})
		}
	}
	p.Params = b
	if len(p.Summary) > 0 {
		p.Title = "Error: " + p.Title
	}
	return s.render(w, r, status, "appointment_book", p)
}

// handleBook books the chosen slot for the chosen patient, sending the
// form's Idempotency-Key. A 409 means the slot was taken meanwhile: the
// page comes back with the slots refreshed and the other choices kept.
func (s *Server) handleBook(w http.ResponseWriter, r *http.Request) error {
	b := bookParamsFrom(r.PostFormValue)
	st := bookState{slot: r.PostFormValue("slot"), patient: strings.TrimSpace(r.PostFormValue("patient_id")),
		reason: strings.TrimSpace(r.PostFormValue("reason"))}
	key := r.PostFormValue("idempotency_key")
	if st.patient == "" {
		// The chosen patient travels as patient_id; a search result
		// picked by radio button too.
		st.patient = b.PatientID
	}
	slot, slotOK := parseSlot(st.slot)
	if !slotOK {
		st.slotErr = "Choose a free time"
		st.summary = append(st.summary, SummaryItem{Text: st.slotErr, Href: "#slots"})
	}
	if st.patient == "" {
		st.patientErr = "Choose the patient"
		st.summary = append(st.summary, SummaryItem{Text: st.patientErr, Href: "#patient-title"})
	}
	if utf8.RuneCountInString(st.reason) > maxBookReason {
		st.reasonErr = "The reason can be at most 500 characters"
		st.summary = append(st.summary, SummaryItem{Text: st.reasonErr, Href: "#f-reason"})
	}
	if key == "" || len(key) > 200 {
		// A form from before this page had keys: make a new one.
		st.summary = append(st.summary, SummaryItem{Text: "The form has expired. Check your choices and book again."})
	}
	if len(st.summary) > 0 {
		return s.renderBook(w, r, http.StatusBadRequest, b, st)
	}
	in := appointment.BookInput{PatientID: st.patient, PractitionerID: slot.PractitionerID, ClinicID: slot.ClinicID,
		StartsAt: slot.StartsAt, EndsAt: &slot.EndsAt, Reason: st.reason}
	var a appointment.Appointment
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		a, err = api.Book(ctx, in, key)
		return err
	})
	var ae *client.Error
	switch {
	case err == nil:
		d, derr := s.loadSchedule(w, r)
		if errors.Is(derr, errSessionEnded) {
			return derr
		}
		msg := "Appointment booked for " + shortWhen(a.StartsAt, s.loc)
		if n := d.practitionerName(a.PractitionerID); n != "" {
			msg += " with " + n
		}
		s.setFlash(w, Flash{Kind: "success", Message: msg + "."})
		http.Redirect(w, r, appointmentURL(a.ID, ""), http.StatusSeeOther)
		return nil
	case errors.As(err, &ae) && ae.Status == http.StatusConflict:
		st.taken, st.slot = true, ""
		st.summary = []SummaryItem{{Text: slotTakenMessage, Href: "#slots"}}
		return s.renderBook(w, r, http.StatusConflict, b, st)
	case errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity:
		st.summary = []SummaryItem{{Text: "This form was already used for another booking. Check your choices and book again.", Href: "#slots"}}
		return s.renderBook(w, r, http.StatusUnprocessableEntity, b, st)
	case errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusNotFound || ae.Status == http.StatusForbidden):
		for k, msg := range ae.Errors {
			switch k {
			case "reason":
				st.reasonErr = fieldMessage("Reason for the visit", msg)
				st.summary = append(st.summary, SummaryItem{Text: st.reasonErr, Href: "#f-reason"})
			case "patient_id":
				st.patientErr = fieldMessage("The patient", msg)
				st.summary = append(st.summary, SummaryItem{Text: st.patientErr, Href: "#patient-title"})
			default:
				st.slotErr = fieldMessage("The time", msg)
				st.summary = append(st.summary, SummaryItem{Text: st.slotErr, Href: "#slots"})
			}
		}
		if len(st.summary) == 0 {
			st.summary = []SummaryItem{{Text: orDefault(ae.Detail, "The appointment could not be booked.")}}
		}
		return s.renderBook(w, r, ae.Status, b, st)
	}
	return err
}

// ReschedulePage moves an appointment to another free slot.
type ReschedulePage struct {
	Layout
	Appt             appointment.Appointment
	When             string
	PractitionerName string
	ClinicName       string
	PractitionerID   string
	Date             string
	View             string
	Practitioners    []Option
	ViewTabs         []NavItem
	Period           string
	PrevURL          string
	NextURL          string
	Days             []SlotDay
	SlotError        string
	Taken            bool
	Summary          []SummaryItem
}

func rescheduleURL(id, practitioner, date, view string) string {
	v := url.Values{"date": {date}, "view": {view}}
	if practitioner != "" {
		v.Set("practitioner_id", practitioner)
	}
	return "/appointments/" + url.PathEscape(id) + "/reschedule?" + v.Encode()
}

func (s *Server) handleRescheduleForm(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	return s.renderReschedule(w, r, http.StatusOK, r.PathValue("id"), q.Get("practitioner_id"), q.Get("date"), q.Get("view"), "", nil, false)
}

func (s *Server) renderReschedule(w http.ResponseWriter, r *http.Request, status int, id, practitioner, date, view, slotErr string, summary []SummaryItem, taken bool) error {
	a, err := s.loadAppointment(w, r, id)
	if err != nil {
		return err
	}
	if a.Status != appointment.StatusBooked {
		s.setFlash(w, Flash{Kind: "error", Message: "Only a booked appointment can be moved; this one is " +
			strings.ToLower(appointmentStatusLabel(a.Status)) + "."})
		http.Redirect(w, r, appointmentURL(id, ""), http.StatusSeeOther)
		return nil
	}
	d, err := s.loadSchedule(w, r)
	if err != nil {
		return err
	}
	clinic, _ := d.clinic(a.ClinicID)
	practitioner = d.knownPractitioner(practitioner)
	if practitioner == "" {
		practitioner = a.PractitionerID
	}
	if view != viewDay {
		view = viewWeek
	}
	today := midnight(s.now(), s.loc)
	day := midnight(a.StartsAt, s.loc)
	if day.Before(today) {
		day = today
	}
	if dd, ok := parseDay(date, s.loc); ok {
		day = dd
	}
	date = day.Format(isoDate)
	per := newPeriod(view, day)
	p := &ReschedulePage{
		Layout:           Layout{Title: "Move the appointment", Area: "Appointments", Nav: "appointments"},
		Appt:             a,
		When:             whenText(a.StartsAt, a.EndsAt, s.loc),
		PractitionerName: orDefault(a.PractitionerName, d.practitionerName(a.PractitionerID)),
		ClinicName:       orDefault(a.ClinicName, clinic.Name),
		PractitionerID:   practitioner,
		Date:             date,
		View:             view,
		Period:           per.label(),
		PrevURL:          rescheduleURL(id, practitioner, per.step(-1).Format(isoDate), view),
		NextURL:          rescheduleURL(id, practitioner, per.step(1).Format(isoDate), view),
		SlotError:        slotErr,
		Taken:            taken,
		Summary:          summary,
	}
	p.ViewTabs = viewTabs(view, func(v string) string { return rescheduleURL(id, practitioner, date, v) })
	// The clinicians of the clinic's department can take the appointment.
	p.Practitioners = []Option{}
	for _, pr := range d.practitioners {
		if pr.DepartmentID == clinic.DepartmentID || pr.ID == a.PractitionerID {
			p.Practitioners = append(p.Practitioners, Option{Value: pr.ID, Label: pr.DisplayName, Selected: pr.ID == practitioner})
		}
	}
	var slots []appointment.Slot
	err = s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		slots, err = api.Slots(ctx, practitioner, a.ClinicID, per.from, per.to)
		return err
	})
	if err != nil && client.StatusOf(err) != http.StatusBadRequest {
		return err
	}
	p.Days = slotDays(slots, d, s.loc, "", false)
	if len(p.Summary) > 0 {
		p.Title = "Error: " + p.Title
	}
	return s.render(w, r, status, "appointment_reschedule", p)
}

// handleReschedule moves the appointment to the chosen slot; 409 shows
// the slots again.
func (s *Server) handleReschedule(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	practitioner, date, view := r.PostFormValue("practitioner_id"), r.PostFormValue("date"), r.PostFormValue("view")
	slot, ok := parseSlot(r.PostFormValue("slot"))
	if !ok {
		msg := "Choose a free time"
		return s.renderReschedule(w, r, http.StatusBadRequest, id, practitioner, date, view, msg,
			[]SummaryItem{{Text: msg, Href: "#slots"}}, false)
	}
	var a appointment.Appointment
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		a, err = api.Reschedule(ctx, id, appointment.RescheduleInput{StartsAt: slot.StartsAt, EndsAt: &slot.EndsAt,
			PractitionerID: slot.PractitionerID, ClinicID: slot.ClinicID})
		return err
	})
	var ae *client.Error
	switch {
	case err == nil:
		s.setFlash(w, Flash{Kind: "success", Message: "The appointment was moved to " + shortWhen(a.StartsAt, s.loc) + "."})
		http.Redirect(w, r, appointmentURL(id, ""), http.StatusSeeOther)
		return nil
	case errors.As(err, &ae) && ae.Status == http.StatusConflict:
		return s.renderReschedule(w, r, http.StatusConflict, id, practitioner, date, view, "",
			[]SummaryItem{{Text: slotTakenMessage, Href: "#slots"}}, true)
	case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		msg := orDefault(ae.Errors["starts_at"], orDefault(ae.Detail, "is not accepted"))
		msg = fieldMessage("The time", msg)
		return s.renderReschedule(w, r, http.StatusBadRequest, id, practitioner, date, view, msg,
			[]SummaryItem{{Text: msg, Href: "#slots"}}, false)
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return errNotFound
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		return errForbidden
	}
	return err
}
