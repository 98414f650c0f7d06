package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/patient"
)

// datetimeLocal is the value format of <input type="datetime-local">.
const datetimeLocal = "2006-01-02T15:04"

// PatientEditPage is the form to change a patient's demographics. It
// carries the version the form was made from; when someone else saved in
// between, Conflict lists what is saved now next to what the user typed,
// and the form keeps the typed values with the new version, so that one
// click saves them over the other change once the user has looked.
type PatientEditPage struct {
	Layout
	Patient patient.Patient
	Version int
	Summary []SummaryItem
	Groups  []FieldGroup
	// Conflict is set after a 412: the fields whose saved value differs
	// from what the user typed.
	Conflict     bool
	ConflictRows []ConflictRow
}

// ConflictRow is one field that differs between the saved record and the
// user's form.
type ConflictRow struct {
	Label string
	Saved string
	Yours string
}

// patientUpdateInput is a patient's saved values as an update.
func patientUpdateInput(pt patient.Patient, loc *time.Location) patient.UpdateInput {
	in := patient.UpdateInput{Demographics: patient.Demographics{
		FamilyName: pt.FamilyName, GivenNames: pt.GivenNames, NamePrefix: pt.NamePrefix, NameSuffix: pt.NameSuffix,
		PreferredName: pt.PreferredName, BirthDate: pt.BirthDate, Sex: pt.Sex, GenderIdentity: pt.GenderIdentity,
		BirthSex: pt.BirthSex, Phone: pt.Phone, MobilePhone: pt.MobilePhone, Email: pt.Email, AddressLine: pt.AddressLine,
		AddressLine2: pt.AddressLine2, City: pt.City, District: pt.District, PostalCode: pt.PostalCode, Country: pt.Country,
		Language: pt.Language,
	}, Deceased: pt.Deceased}
	if pt.DeceasedAt != nil {
		in.DeceasedAt = pt.DeceasedAt.In(loc).Format(datetimeLocal)
	}
	return in
}

// editGroups are the edit form's fields: the demographics and the death.
// in.DeceasedAt is in the form's datetime-local format here.
func editGroups(in patient.UpdateInput, errs map[string]string) []FieldGroup {
	groups := demographicGroups(in.Demographics, nil)
	groups = append(groups, FieldGroup{ID: "death", Legend: "Death", Fields: []Field{
		{Name: "deceased", Label: "Deceased", Checkboxes: true, Optional: true,
			Options: []Option{{Value: "yes", Label: "The patient has died", Selected: in.Deceased}}},
		{Name: "deceased_at", Label: "Date and time of death", Type: "datetime-local", Value: in.DeceasedAt, Width: "medium",
			Optional: true, Hint: "If known. Leave empty when only the fact is known."},
	}})
	return finishGroups(groups, errs)
}

func (s *Server) newPatientEditPage(pt patient.Patient, version int, in patient.UpdateInput, errs map[string]string) *PatientEditPage {
	p := &PatientEditPage{
		Layout:  Layout{Title: "Change patient details", Area: "Patients", Nav: "patients"},
		Patient: pt,
		Version: version,
		Groups:  editGroups(in, errs),
	}
	p.Summary = summaryFor(flatten(p.Groups), errs)
	if len(p.Summary) > 0 {
		p.Title = "Error: " + p.Title
	}
	return p
}

func (s *Server) handlePatientEdit(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	pt, err := s.loadPatient(w, r, id)
	if err != nil {
		return s.patientError(w, r, id, err)
	}
	if pt.MergedInto != "" {
		return s.mergedRedirect(w, r, pt)
	}
	return s.render(w, r, http.StatusOK, "patient_edit", s.newPatientEditPage(pt, pt.Version, patientUpdateInput(pt, s.loc), nil))
}

// mergedRedirect sends the user from a merged record's form to the record
// that was kept.
func (s *Server) mergedRedirect(w http.ResponseWriter, r *http.Request, pt patient.Patient) error {
	s.setFlash(w, Flash{Kind: "error", Message: "That record was merged into this one; change this record instead."})
	http.Redirect(w, r, "/patients/"+url.PathEscape(pt.MergedInto), http.StatusSeeOther)
	return nil
}

// handlePatientUpdate saves the edit form with If-Match: the version the
// form was made from. A stale version (412) shows what is saved now and
// keeps everything the user typed.
func (s *Server) handlePatientUpdate(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	version, err := strconv.Atoi(r.PostFormValue("version"))
	if err != nil || version < 1 {
		return statusError(http.StatusBadRequest)
	}
	form := patient.UpdateInput{Demographics: demographicsFrom(r), Deceased: r.PostFormValue("deceased") == "yes",
		DeceasedAt: strings.TrimSpace(r.PostFormValue("deceased_at"))}
	in := form
	errs := map[string]string{}
	if form.DeceasedAt != "" {
		t, err := time.ParseInLocation(datetimeLocal, form.DeceasedAt, s.loc)
		switch {
		case err != nil:
			errs["deceased_at"] = "Enter the date and time of death, for example 2026-03-02 14:30"
		case !form.Deceased:
			errs["deceased_at"] = "Tick “The patient has died” to record a time of death"
		default:
			in.DeceasedAt = t.Format(time.RFC3339)
		}
	}
	if form.FamilyName == "" {
		errs["family_name"] = "Enter the family name"
	}
	if form.GivenNames == "" {
		errs["given_names"] = "Enter the given names"
	}
	status := http.StatusBadRequest
	if len(errs) == 0 {
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			_, err := api.UpdatePatient(ctx, id, version, in)
			return err
		})
		var ae *client.Error
		switch {
		case err == nil:
			s.setFlash(w, Flash{Kind: "success", Message: "Patient details saved."})
			http.Redirect(w, r, "/patients/"+url.PathEscape(id), http.StatusSeeOther)
			return nil
		case errors.As(err, &ae) && ae.Status == http.StatusPreconditionFailed:
			return s.renderEditConflict(w, r, id, form)
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			return errNotFound
		case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
			return s.patientError(w, r, id, err)
		case errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusConflict):
			status = ae.Status
			errs = ae.Errors
			if len(errs) == 0 {
				errs = map[string]string{"": orDefault(ae.Detail, "The changes could not be saved.")}
			}
		default:
			return err
		}
	}
	pt, err := s.loadPatient(w, r, id)
	if err != nil {
		return s.patientError(w, r, id, err)
	}
	// The version the edit started from stays: a save after fixing the
	// mistake must still notice someone else's change.
	return s.render(w, r, status, "patient_edit", s.newPatientEditPage(pt, version, form, errs))
}

// renderEditConflict shows the record as saved now next to the user's
// values, keeping the user's values in the form with the new version.
func (s *Server) renderEditConflict(w http.ResponseWriter, r *http.Request, id string, form patient.UpdateInput) error {
	pt, err := s.loadPatient(w, r, id)
	if err != nil {
		return s.patientError(w, r, id, err)
	}
	saved := patientUpdateInput(pt, s.loc)
	p := s.newPatientEditPage(pt, pt.Version, form, nil)
	p.Conflict = true
	savedGroups := editGroups(saved, nil)
	savedFields := flatten(savedGroups)
	for i, f := range flatten(p.Groups) {
		sv, yv := fieldText(savedFields[i]), fieldText(f)
		if sv != yv {
			p.ConflictRows = append(p.ConflictRows, ConflictRow{Label: f.Label, Saved: sv, Yours: yv})
		}
	}
	p.Title = "Error: " + p.Title
	p.Summary = []SummaryItem{{Text: "Someone else changed this patient's details while you were editing, so your changes " +
		"have not been saved yet. Check the differences below: your values are still in the form.", Href: "#conflict-title"}}
	return s.render(w, r, http.StatusPreconditionFailed, "patient_edit", p)
}

// fieldText is a field's value as the user reads it.
func fieldText(f Field) string {
	if f.Options == nil {
		return f.Value
	}
	var out []string
	for _, o := range f.Options {
		if o.Selected && o.Value != "" {
			out = append(out, o.Label)
		}
	}
	if f.Checkboxes && len(out) == 0 {
		return "No"
	}
	if f.Checkboxes {
		return "Yes"
	}
	return strings.Join(out, ", ")
}
