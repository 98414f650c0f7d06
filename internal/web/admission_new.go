package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hospital-erp/hospital-erp/internal/admission"
	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
)

const (
	// maxAdmitReason is the longest reason for admission the API takes.
	maxAdmitReason = 500
	// maxExpectedDays is the longest expected stay the API takes.
	maxExpectedDays = 365
	// bedTakenMessage is what a 409 for the chosen bed says.
	bedTakenMessage = "This bed was just taken or is no longer available: choose another. The list of free beds below is up to date."
)

var sourceLabels = map[string]string{
	"emergency":   "Emergency",
	"direct":      "Direct (planned) admission",
	"appointment": "From an outpatient appointment",
}

func sourceLabel(s string) string { return orDefault(sourceLabels[s], s) }

// admitParams are the admission form's choices that travel in its URLs
// and hidden fields: the patient, the bed (and, in a hospital with more
// free beds than one list holds, its ward), and where the admission comes
// from.
type admitParams struct {
	PatientID, PatientQ, BedID, WardID, Source, AppointmentID string
}

func admitParamsFrom(get func(string) string) admitParams {
	return admitParams{PatientID: strings.TrimSpace(get("patient_id")), PatientQ: strings.TrimSpace(get("patient_q")),
		BedID: strings.TrimSpace(get("bed_id")), WardID: strings.TrimSpace(get("ward_id")), Source: get("source"),
		AppointmentID: strings.TrimSpace(get("appointment_id"))}
}

// hidden lists the choices made as hidden fields.
func (a admitParams) hidden() []Hidden {
	var out []Hidden
	for _, h := range []Hidden{{"patient_id", a.PatientID}, {"patient_q", a.PatientQ}, {"bed_id", a.BedID},
		{"ward_id", a.WardID}, {"source", a.Source}, {"appointment_id", a.AppointmentID}} {
		if h.Value != "" {
			out = append(out, h)
		}
	}
	return out
}

func (a admitParams) url() string {
	v := url.Values{}
	for _, h := range a.hidden() {
		v.Set(h.Name, h.Value)
	}
	if len(v) == 0 {
		return "/admissions/new"
	}
	return "/admissions/new?" + v.Encode()
}

// AdmitPage admits a patient on one page that works without JavaScript:
// a GET form finds the patient; the POST form picks a free bed (grouped
// by ward; in a large hospital, the ward first, its button posting the
// form back with every choice kept), the source, the reason and the
// expected stay. It carries an
// Idempotency-Key made when the page was rendered, so a double click or
// a browser retry admits once.
type AdmitPage struct {
	Layout
	Tabs   []NavItem
	Params admitParams
	Key    string

	Patient          *patient.Patient
	PatientSearched  bool
	PatientResults   []PatientChoice
	PatientError     string
	ChangePatientURL string
	// Current is the chosen patient's admission that is still active.
	Current *AdmissionRow

	Appointment *AppointmentRef
	Beds        BedSelect
	// Taken: the bed chosen was taken by someone else meanwhile.
	Taken        bool
	Sources      []Choice
	SourceError  string
	Reason       Field
	ExpectedDays Field
	Summary      []SummaryItem
}

// AppointmentRef is the appointment an admission comes from.
type AppointmentRef struct {
	ID, When, URL string
}

// Choice is one radio button of a group.
type Choice struct {
	ID, Value, Label, Hint string
	Checked                bool
}

// admitState is a posted admission form, to show again with its errors.
type admitState struct {
	reason, days                  string
	patientErr, bedErr, sourceErr string
	reasonErr, daysErr            string
	summary                       []SummaryItem
	taken                         bool
	chosenPatID                   string
}

func (s *Server) handleAdmitForm(w http.ResponseWriter, r *http.Request) error {
	return s.renderAdmit(w, r, http.StatusOK, admitParamsFrom(r.URL.Query().Get), admitState{})
}

// renderAdmit renders the admission form for the choices in a; st is a
// posted form to show again.
func (s *Server) renderAdmit(w http.ResponseWriter, r *http.Request, status int, a admitParams, st admitState) error {
	sess := sessionFrom(r.Context())
	if utf8.RuneCountInString(a.PatientQ) > maxSearchLen {
		a.PatientQ = string([]rune(a.PatientQ)[:maxSearchLen])
	}
	p := &AdmitPage{
		Layout:  Layout{Title: "Admit a patient", Area: "Wards & beds", Nav: "beds"},
		Tabs:    bedTabs(sess, "admit"),
		Key:     newIdempotencyKey(),
		Taken:   st.taken,
		Summary: st.summary,
		Reason: Field{Name: "reason", Label: "Reason for admission", Rows: 3, MaxLength: maxAdmitReason, Value: st.reason,
			Error: st.reasonErr, Hint: "For example “Community-acquired pneumonia, needs IV antibiotics”. The ward sees it."},
		ExpectedDays: Field{Name: "expected_days", Label: "Expected length of stay (days)", Type: "number", Value: st.days,
			Error: st.daysErr, Width: "short", InputMode: "numeric", Optional: true, Autocomplete: "off",
			Hint: "Nights the patient is expected to stay; 0 for a day case. The ward's bed planning uses it."},
		PatientError: st.patientErr,
		SourceError:  st.sourceErr,
	}

	if a.AppointmentID != "" {
		appt, err := s.loadAppointment(w, r, a.AppointmentID)
		switch {
		case err == nil && appt.PatientID != "":
			// An admission from an appointment is of that appointment's patient.
			a.PatientID = appt.PatientID
			a.Source = "appointment"
			p.Appointment = &AppointmentRef{ID: appt.ID, When: whenText(appt.StartsAt, appt.EndsAt, s.loc),
				URL: appointmentURL(appt.ID, "")}
		case err != nil && !errors.Is(err, errNotFound) && !errors.Is(err, errForbidden):
			return err
		default:
			// Unknown, out of the user's care, or without a patient.
			a.AppointmentID = ""
			p.Summary = append(p.Summary, SummaryItem{Text: "That appointment cannot be used for the admission; choose the source below.",
				Href: "#source-title"})
		}
	}
	if a.Source == "appointment" && p.Appointment == nil {
		a.Source = ""
	}

	if a.PatientID != "" {
		pt, err := s.loadPatient(w, r, a.PatientID)
		switch {
		case err == nil && pt.MergedInto == "" && pt.Active:
			p.Patient = &pt
			c := a
			c.PatientID, c.AppointmentID = "", ""
			if c.Source == "appointment" {
				c.Source = ""
			}
			p.ChangePatientURL = c.url() + "#patient-title"
		case errors.Is(err, errSessionEnded):
			return err
		case err != nil && client.StatusOf(err) == 0:
			return err
		default:
			a.PatientID = ""
			p.PatientError = orDefault(p.PatientError, "That patient cannot be admitted here; find the patient below")
		}
	}
	if p.Patient != nil && sess.can(identity.PermAdmissionRead) {
		var list []admission.Admission
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			var err error
			list, err = api.PatientAdmissions(ctx, p.Patient.ID)
			return err
		})
		if errors.Is(err, errSessionEnded) {
			return err
		}
		for _, adm := range list {
			if adm.Status == "active" {
				row := s.admissionRow(adm)
				p.Current = &row
			}
		}
	}
	if p.Patient == nil && a.PatientQ != "" {
		p.PatientSearched = true
		var found []patient.Patient
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			res, err := api.SearchPatients(ctx, client.PatientSearch{Q: a.PatientQ, Limit: patientChoiceLimit})
			found = res.Items
			return err
		})
		if err != nil && client.StatusOf(err) != http.StatusBadRequest {
			return err
		}
		for i, pt := range found {
			if pt.MergedInto != "" || !pt.Active {
				continue
			}
			p.PatientResults = append(p.PatientResults, PatientChoice{Patient: pt, InputID: "patient-" + strconv.Itoa(i),
				Checked: pt.ID == st.chosenPatID})
		}
	}

	beds, err := s.freeBedSelect(w, r, a.WardID, "bed_id", "Bed", a.BedID, "")
	if err != nil {
		return err
	}
	p.Beds = beds
	p.Beds.Hint = "Free beds only, by ward: bed, room and type."
	p.Beds.Empty = "No bed is free at the moment. Ask the bed manager, or try again when a bed has been cleaned."
	p.Beds.Error = st.bedErr
	// The ward chooser posts this form, so that the page comes back with
	// every choice made on it (a patient ticked among the search results,
	// the reason) and that ward's beds.
	p.Beds.WardStep = true
	p.Beds.WardForm = WardForm{Action: "/admissions/new#bed-title"}
	if a.BedID != "" && !p.Beds.Has(a.BedID) && p.Beds.Lists() {
		// A bed chosen on the board (or in this form) that someone took
		// meanwhile.
		p.Taken = true
		p.Summary = append(p.Summary, SummaryItem{Text: bedTakenMessage, Href: "#f-bed_id"})
	}

	for _, v := range []string{"emergency", "direct", "appointment"} {
		if v == "appointment" && p.Appointment == nil {
			continue
		}
		c := Choice{ID: "source-" + v, Value: v, Label: sourceLabel(v), Checked: a.Source == v}
		switch v {
		case "emergency":
			c.Hint = "Through the emergency department or an urgent referral."
		case "direct":
			c.Hint = "Planned: booked for surgery or treatment, or sent in by a clinician."
		case "appointment":
			c.Hint = "Decided at the outpatient appointment of " + p.Appointment.When + "."
		}
		p.Sources = append(p.Sources, c)
	}
	p.Params = a
	if len(p.Summary) > 0 {
		p.Title = "Error: " + p.Title
	}
	return s.render(w, r, status, "admission_new", p)
}

// handleAdmit admits the chosen patient to the chosen bed, sending the
// form's Idempotency-Key. A 409 means the bed was taken meanwhile (the
// page comes back with the free beds refreshed and the other choices
// kept) or the patient is admitted already.
func (s *Server) handleAdmit(w http.ResponseWriter, r *http.Request) error {
	a := admitParamsFrom(r.PostFormValue)
	st := admitState{reason: strings.TrimSpace(r.PostFormValue("reason")), days: strings.TrimSpace(r.PostFormValue("expected_days"))}
	key := r.PostFormValue("idempotency_key")
	st.chosenPatID = a.PatientID
	if r.PostFormValue("show_ward") != "" {
		// "Show free beds": the same form with that ward's beds and every
		// choice kept; nothing is admitted.
		a.BedID = ""
		return s.renderAdmitAgain(w, r, http.StatusOK, a, st)
	}
	if a.PatientID == "" {
		st.patientErr = "Choose the patient"
		st.summary = append(st.summary, SummaryItem{Text: st.patientErr, Href: "#patient-title"})
	}
	if a.BedID == "" {
		st.bedErr = "Choose a free bed"
		st.summary = append(st.summary, SummaryItem{Text: st.bedErr, Href: "#f-bed_id"})
	}
	switch {
	case a.Source == "appointment" && a.AppointmentID == "":
		st.sourceErr = "An admission from an appointment starts from the appointment's page; choose another source"
	case sourceLabels[a.Source] == "":
		st.sourceErr = "Choose where the admission comes from"
	}
	if st.sourceErr != "" {
		st.summary = append(st.summary, SummaryItem{Text: st.sourceErr, Href: "#source-title"})
	}
	switch n := utf8.RuneCountInString(st.reason); {
	case n == 0:
		st.reasonErr = "Enter the reason for admission"
	case n > maxAdmitReason:
		st.reasonErr = "The reason can be at most 500 characters"
	}
	if st.reasonErr != "" {
		st.summary = append(st.summary, SummaryItem{Text: st.reasonErr, Href: "#f-reason"})
	}
	var days *int
	if st.days != "" {
		n, err := strconv.Atoi(st.days)
		if err != nil || n < 0 || n > maxExpectedDays {
			st.daysErr = "Enter the expected stay as a number of days from 0 to 365"
			st.summary = append(st.summary, SummaryItem{Text: st.daysErr, Href: "#f-expected_days"})
		}
		days = &n
	}
	if len(st.summary) > 0 {
		return s.renderAdmitAgain(w, r, http.StatusBadRequest, a, st)
	}
	in := admission.AdmitInput{PatientID: a.PatientID, BedID: a.BedID, Source: a.Source, Reason: st.reason, ExpectedDays: days}
	if a.Source == "appointment" {
		in.AppointmentID = a.AppointmentID
	}
	var adm admission.Admission
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		adm, err = api.Admit(ctx, in, key)
		return err
	})
	var ae *client.Error
	switch {
	case err == nil:
		msg := "The patient is admitted"
		if adm.BedCode != "" {
			msg += " to bed " + adm.BedCode
		}
		s.setFlash(w, Flash{Kind: "success", Message: msg + "."})
		http.Redirect(w, r, admissionURL(adm.ID), http.StatusSeeOther)
		return nil
	case errors.As(err, &ae) && ae.Status == http.StatusConflict:
		beds, berr := s.freeBedSelect(w, r, a.WardID, "bed_id", "", "", "")
		if berr != nil {
			return berr
		}
		if !beds.Has(a.BedID) {
			a.BedID = ""
			st.taken = true
			st.summary = []SummaryItem{{Text: bedTakenMessage, Href: "#f-bed_id"}}
		} else {
			st.patientErr = orDefault(ae.Detail, "This patient cannot be admitted now.")
			st.summary = []SummaryItem{{Text: st.patientErr, Href: "#patient-title"}}
		}
		return s.renderAdmitAgain(w, r, http.StatusConflict, a, st)
	case errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity:
		st.summary = []SummaryItem{{Text: "This form was already used for another admission. Check your choices and admit again."}}
		return s.renderAdmitAgain(w, r, http.StatusUnprocessableEntity, a, st)
	case errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusNotFound):
		for k, msg := range ae.Errors {
			switch k {
			case "reason":
				st.reasonErr = fieldMessage("The reason", msg)
				st.summary = append(st.summary, SummaryItem{Text: st.reasonErr, Href: "#f-reason"})
			case "expected_days":
				st.daysErr = fieldMessage("The expected stay", msg)
				st.summary = append(st.summary, SummaryItem{Text: st.daysErr, Href: "#f-expected_days"})
			case "bed_id":
				st.bedErr = fieldMessage("The bed", msg)
				st.summary = append(st.summary, SummaryItem{Text: st.bedErr, Href: "#f-bed_id"})
			case "patient_id":
				st.patientErr = fieldMessage("The patient", msg)
				st.summary = append(st.summary, SummaryItem{Text: st.patientErr, Href: "#patient-title"})
			default:
				st.sourceErr = fieldMessage("The source", msg)
				st.summary = append(st.summary, SummaryItem{Text: st.sourceErr, Href: "#source-title"})
			}
		}
		if len(st.summary) == 0 {
			st.summary = []SummaryItem{{Text: orDefault(ae.Detail, "The patient could not be admitted.")}}
		}
		return s.renderAdmitAgain(w, r, ae.Status, a, st)
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		return errForbidden
	}
	return err
}

// renderAdmitAgain shows a posted form again: a patient picked from the
// search results stays picked, not fixed.
func (s *Server) renderAdmitAgain(w http.ResponseWriter, r *http.Request, status int, a admitParams, st admitState) error {
	if a.PatientQ != "" && r.PostFormValue("patient_fixed") != "1" {
		// The patient was a search result: search again and keep it ticked.
		a.PatientID = ""
	}
	return s.renderAdmit(w, r, status, a, st)
}
