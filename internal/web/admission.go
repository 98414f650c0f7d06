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
)

const (
	// maxDischargeSummary is the longest discharge summary the API takes
	// (in bytes; the form counts characters and leaves the rest to it).
	maxDischargeSummary = 20000
	// maxCancelAdmission is the longest cancellation reason the API takes.
	maxCancelAdmission = 500
)

func admissionURL(id string) string { return "/admissions/" + url.PathEscape(id) }

var admissionStatusLabels = map[string]string{"active": "Admitted", "discharged": "Discharged", "cancelled": "Cancelled"}

func admissionStatusLabel(s string) string { return orDefault(admissionStatusLabels[s], s) }

var dispositionLabels = map[string]string{
	"home":           "Home",
	"transfer_out":   "Transferred to another hospital or care home",
	"deceased":       "Died",
	"against_advice": "Left against medical advice",
}

func dispositionLabel(s string) string { return orDefault(dispositionLabels[s], s) }

var admissionEventLabels = map[string]string{"admitted": "Admitted", "transferred": "Transferred",
	"discharged": "Discharged", "cancelled": "Cancelled (entered in error)"}

// AdmissionRow is one admission in a patient's list, or the active one
// shown at the top of their record.
type AdmissionRow struct {
	ID, URL          string
	Status           string
	StatusLabel      string
	Where            string
	Admitted         string
	AdmittedISO      string
	Ended            string
	EndedISO         string
	Stay             string
	Overdue          bool
	DispositionLabel string
}

func (s *Server) admissionRow(a admission.Admission) AdmissionRow {
	row := AdmissionRow{ID: a.ID, URL: admissionURL(a.ID), Status: a.Status, StatusLabel: admissionStatusLabel(a.Status),
		Where: bedWhere(a.WardName, a.BedCode), Admitted: dateTimeIn(a.AdmittedAt, s.loc), AdmittedISO: isoTime(a.AdmittedAt)}
	if a.EndedAt != nil {
		row.Ended, row.EndedISO = dateTimeIn(*a.EndedAt, s.loc), isoTime(*a.EndedAt)
	}
	if a.Status == "active" {
		row.Stay, row.Overdue = stayText(a.AdmittedAt, s.now(), a.ExpectedDays, s.loc)
	}
	if a.Disposition != "" {
		row.DispositionLabel = dispositionLabel(a.Disposition)
	}
	return row
}

// bedWhere is "Medical Ward A, bed A-01B".
func bedWhere(wardName, bedCode string) string {
	switch {
	case wardName != "" && bedCode != "":
		return wardName + ", bed " + bedCode
	case bedCode != "":
		return "Bed " + bedCode
	}
	return wardName
}

// AdmissionPage is one admission: where the patient is, the stay, the
// history of beds and the commands that change it.
type AdmissionPage struct {
	Layout
	Adm            admission.Admission
	Row            AdmissionRow
	SourceLabel    string
	AppointmentURL string
	// WardURL is the ward's page, for users who may see beds.
	WardURL          string
	ExpectedText     string
	DispositionLabel string
	History          []HistoryRow
	// CanWrite: the admission is active and the user may change it.
	CanWrite bool
}

// HistoryRow is one change of an admission.
type HistoryRow struct {
	When, WhenISO, What, Beds, By string
}

func (s *Server) loadAdmission(w http.ResponseWriter, r *http.Request, id string) (admission.Admission, error) {
	var a admission.Admission
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		a, err = api.Admission(ctx, id)
		return err
	})
	switch client.StatusOf(err) {
	case http.StatusNotFound, http.StatusBadRequest:
		return a, errNotFound
	case http.StatusForbidden:
		return a, errForbidden
	}
	return a, err
}

func (s *Server) handleAdmissionShow(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	a, err := s.loadAdmission(w, r, r.PathValue("id"))
	if err != nil {
		return err
	}
	p := &AdmissionPage{
		// The title names no patient (browser history on shared computers).
		Layout:      Layout{Title: "Admission", Area: "Wards & beds", Nav: "beds"},
		Adm:         a,
		Row:         s.admissionRow(a),
		SourceLabel: sourceLabel(a.Source),
		CanWrite:    a.Status == "active" && sess.can(identity.PermAdmissionWrite),
	}
	if sess.can(identity.PermBedRead) {
		p.WardURL = wardURL(a.WardID)
	}
	if a.AppointmentID != "" && sess.can(identity.PermAppointmentRead) {
		p.AppointmentURL = appointmentURL(a.AppointmentID, "")
	}
	if a.ExpectedDays != nil {
		due := midnight(a.AdmittedAt, s.loc).AddDate(0, 0, *a.ExpectedDays)
		p.ExpectedText = plural(*a.ExpectedDays, "day") + ", discharge expected " + due.Format("Monday 2 January 2006")
	}
	if a.Disposition != "" {
		p.DispositionLabel = dispositionLabel(a.Disposition)
	}
	for _, e := range a.History {
		h := HistoryRow{When: dateTimeIn(e.OccurredAt, s.loc), WhenISO: isoTime(e.OccurredAt),
			What: orDefault(admissionEventLabels[e.Event], e.Event), By: e.ActorName}
		from, to := bedWhere(e.FromWardName, e.FromBedCode), bedWhere(e.ToWardName, e.ToBedCode)
		switch {
		case from != "" && to != "":
			h.Beds = from + " → " + to
		case to != "":
			h.Beds = "To " + to
		case from != "":
			h.Beds = "From " + from
		}
		p.History = append(p.History, h)
	}
	return s.render(w, r, http.StatusOK, "admission_show", p)
}

// admissionCommand is transfer, discharge or cancel: a form that asks
// for what the command needs and confirms it.
type admissionCommand struct {
	Key     string // path segment, as in the API
	Title   string
	Button  string
	Done    string
	Explain string
}

var admissionCommands = map[string]admissionCommand{
	"transfer": {Key: "transfer", Title: "Transfer to another bed", Button: "Transfer the patient",
		Done:    "The patient is transferred. The bed they left is waiting for cleaning.",
		Explain: "The patient moves to the bed you choose, on this ward or another. The bed they leave goes to cleaning."},
	"discharge": {Key: "discharge", Title: "Discharge the patient", Button: "Discharge the patient",
		Done:    "The patient is discharged. The bed is waiting for cleaning.",
		Explain: "This ends the stay. The bed goes to cleaning and the ward's care of the patient ends."},
	"cancel": {Key: "cancel", Title: "Cancel the admission", Button: "Cancel the admission",
		Done: "The admission is cancelled. The bed is available again.",
		Explain: "Only for an admission entered in error: it is kept in the record as cancelled and the bed is free again at once. " +
			"A patient who leaves is discharged instead."},
}

// AdmissionCommandPage is the form of one command.
type AdmissionCommandPage struct {
	Layout
	Cmd  admissionCommand
	Adm  admission.Admission
	Row  AdmissionRow
	Key  string
	Beds BedSelect
	// Taken: the bed chosen was taken meanwhile.
	Taken       bool
	Disposition Field
	Notes       Field
	Reason      Field
	Summary     []SummaryItem
}

// commandState is a posted command form, to show again with its errors.
type commandState struct {
	bed, ward, disposition, notes, reason string
	errs                                  map[string]string
	taken                                 bool
	summary                               []SummaryItem
}

func (s *Server) handleAdmissionCommandForm(cmd admissionCommand) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		return s.renderAdmissionCommand(w, r, http.StatusOK, cmd, commandState{bed: q.Get("bed_id"), ward: q.Get("ward_id")})
	}
}

func (s *Server) renderAdmissionCommand(w http.ResponseWriter, r *http.Request, status int, cmd admissionCommand, st commandState) error {
	id := r.PathValue("id")
	a, err := s.loadAdmission(w, r, id)
	if err != nil {
		return err
	}
	if a.Status != "active" {
		s.setFlash(w, Flash{Kind: "error", Message: "This admission has ended (" + strings.ToLower(admissionStatusLabel(a.Status)) +
			"): it cannot be changed any more."})
		http.Redirect(w, r, admissionURL(id), http.StatusSeeOther)
		return nil
	}
	p := &AdmissionCommandPage{
		Layout:  Layout{Title: cmd.Title, Area: "Wards & beds", Nav: "beds"},
		Cmd:     cmd,
		Adm:     a,
		Row:     s.admissionRow(a),
		Key:     newIdempotencyKey(),
		Taken:   st.taken,
		Summary: st.summary,
	}
	switch cmd.Key {
	case "transfer":
		beds, err := s.freeBedSelect(w, r, strings.TrimSpace(st.ward), "bed_id", "New bed", st.bed, a.BedID)
		if err != nil {
			return err
		}
		p.Beds = beds
		p.Beds.WardForm = WardForm{ID: "ward-choose", Action: "/admissions/" + url.PathEscape(id) + "/transfer#f-bed_id"}
		p.Beds.Hint = "Free beds only, by ward: bed, room and type."
		p.Beds.Empty = "No bed is free at the moment, so the patient cannot be transferred now."
		p.Beds.Error = fieldMessage(p.Beds.Label, st.errs["bed_id"])
	case "discharge":
		p.Disposition = Field{Name: "disposition", Label: "Discharged to", Options: dispositionOptions(st.disposition),
			Error: fieldMessage("Discharged to", st.errs["disposition"])}
		p.Notes = Field{Name: "summary", Label: "Discharge summary", Rows: 8, Value: st.notes, Optional: true,
			Error: fieldMessage("The summary", st.errs["summary"]),
			Hint:  "Diagnosis, treatment, medicines on discharge and follow-up. It is kept with the admission."}
	case "cancel":
		p.Reason = Field{Name: "reason", Label: "Why was the admission entered in error?", Rows: 3, Value: st.reason,
			MaxLength: maxCancelAdmission, Error: fieldMessage("The reason", st.errs["reason"]),
			Hint: "For example “Admitted the wrong patient” or “Patient went home from the emergency department”."}
	}
	if len(p.Summary) == 0 {
		bed := Field{Name: "bed_id", Error: p.Beds.Error}
		p.Summary = summaryFor([]Field{bed, p.Disposition, p.Notes, p.Reason}, st.errs)
	}
	if len(p.Summary) > 0 {
		p.Title = "Error: " + p.Title
	}
	return s.render(w, r, status, "admission_command", p)
}

func dispositionOptions(selected string) []Option {
	out := []Option{{Value: "", Label: "Choose where the patient goes"}}
	for _, d := range admission.Dispositions {
		out = append(out, Option{Value: d, Label: dispositionLabel(d), Selected: d == selected})
	}
	return out
}

// handleAdmissionCommand runs transfer, discharge or cancel with the
// version the form was shown with (If-Match) and the form's
// Idempotency-Key: a form sent twice gets the first answer; a form
// overtaken by someone else's change is refused and the admission shown.
func (s *Server) handleAdmissionCommand(cmd admissionCommand) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		st := commandState{bed: strings.TrimSpace(r.PostFormValue("bed_id")), ward: r.PostFormValue("ward_id"), disposition: r.PostFormValue("disposition"),
			notes: strings.TrimSpace(r.PostFormValue("summary")), reason: strings.TrimSpace(r.PostFormValue("reason")),
			errs: map[string]string{}}
		version, _ := strconv.Atoi(r.PostFormValue("version"))
		key := r.PostFormValue("idempotency_key")
		switch cmd.Key {
		case "transfer":
			if st.bed == "" {
				st.errs["bed_id"] = "Choose the bed to move the patient to"
			}
		case "discharge":
			if dispositionLabels[st.disposition] == "" {
				st.errs["disposition"] = "Choose where the patient goes"
			}
			if len(st.notes) > maxDischargeSummary {
				st.errs["summary"] = "The summary is too long: at most 20,000 characters"
			}
		case "cancel":
			switch n := utf8.RuneCountInString(st.reason); {
			case n == 0:
				st.errs["reason"] = "Enter why the admission was entered in error"
			case n > maxCancelAdmission:
				st.errs["reason"] = "The reason can be at most 500 characters"
			}
		}
		if len(st.errs) > 0 {
			return s.renderAdmissionCommand(w, r, http.StatusBadRequest, cmd, st)
		}
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			var err error
			switch cmd.Key {
			case "transfer":
				_, err = api.Transfer(ctx, id, version, admission.TransferInput{BedID: st.bed}, key)
			case "discharge":
				_, err = api.Discharge(ctx, id, version, admission.DischargeInput{Disposition: st.disposition, Summary: st.notes}, key)
			default:
				_, err = api.CancelAdmission(ctx, id, version, admission.CancelInput{Reason: st.reason}, key)
			}
			return err
		})
		var ae *client.Error
		switch {
		case err == nil:
			s.setFlash(w, Flash{Kind: "success", Message: cmd.Done})
			http.Redirect(w, r, admissionURL(id), http.StatusSeeOther)
			return nil
		case errors.As(err, &ae) && ae.Status == http.StatusConflict && cmd.Key == "transfer":
			// The bed went, or the admission ended: the form shows which.
			st.bed, st.taken = "", true
			st.summary = []SummaryItem{{Text: bedTakenMessage, Href: "#f-bed_id"}}
			return s.renderAdmissionCommand(w, r, http.StatusConflict, cmd, st)
		case errors.As(err, &ae) && ae.Status == http.StatusPreconditionFailed:
			s.setFlash(w, Flash{Kind: "error", Message: "Someone else changed this admission while you had the form open. " +
				"Here it is as it is now; check it before you try again."})
		case errors.As(err, &ae) && ae.Status == http.StatusConflict:
			s.setFlash(w, Flash{Kind: "error", Message: orDefault(ae.Detail, "The admission could not be changed.")})
		case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
			for k, msg := range ae.Errors {
				st.errs[k] = msg
			}
			if len(st.errs) == 0 {
				st.summary = []SummaryItem{{Text: orDefault(ae.Detail, "The form could not be accepted.")}}
			}
			return s.renderAdmissionCommand(w, r, http.StatusBadRequest, cmd, st)
		case errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity:
			s.setFlash(w, Flash{Kind: "error", Message: "This form was already used. Here is the admission as it is now."})
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			return errNotFound
		case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
			return errForbidden
		default:
			return err
		}
		http.Redirect(w, r, admissionURL(id), http.StatusSeeOther)
		return nil
	}
}
