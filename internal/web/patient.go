package web

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hospital-erp/hospital-erp/internal/access"
	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
)

// patientPageSize is the number of rows of one patient list page.
const patientPageSize = 25

// PatientListPage is the patient search and list.
type PatientListPage struct {
	Layout
	Q        string
	Sort     string
	Columns  []SortColumn
	Patients []patient.Patient
	// NextURL is the next page, FirstURL the first; empty when not useful.
	NextURL  string
	FirstURL string
	CanWrite bool
	// Error is a message about the search itself (a stale page link).
	Error string
}

// SortColumn is a sortable column header: its link sorts by the column,
// or reverses the order when the column is already the sort.
type SortColumn struct {
	Label string
	Href  string
	// AriaSort is "ascending" or "descending" on the active column.
	AriaSort string
}

// patientSorts are the sort keys of the list and the direction a first
// click on their header sorts in (newest first for the registration date).
var patientSorts = []struct{ key, label, first string }{
	{"mrn", "MRN", "mrn"},
	{"name", "Name", "name"},
	{"created", "Registered", "-created"},
}

func validPatientSort(s string) bool {
	k := strings.TrimPrefix(s, "-")
	for _, ps := range patientSorts {
		if ps.key == k {
			return true
		}
	}
	return false
}

func patientListURL(q, sort, cursor string) string {
	v := url.Values{}
	if q != "" {
		v.Set("q", q)
	}
	if sort != "" && sort != "name" {
		v.Set("sort", sort)
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	if len(v) == 0 {
		return "/patients"
	}
	return "/patients?" + v.Encode()
}

func (s *Server) handlePatientList(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	if !sess.can(identity.PermPatientRead) {
		return errForbidden
	}
	qs := r.URL.Query()
	p := &PatientListPage{
		Layout:   Layout{Title: "Patients", Area: "Patients", Nav: "patients"},
		Q:        strings.TrimSpace(qs.Get("q")),
		Sort:     qs.Get("sort"),
		CanWrite: sess.can(identity.PermPatientWrite),
	}
	if utf8.RuneCountInString(p.Q) > 100 {
		p.Q = string([]rune(p.Q)[:100])
	}
	if !validPatientSort(p.Sort) {
		p.Sort = "name"
	}
	cursor := qs.Get("cursor")
	for _, ps := range patientSorts {
		c := SortColumn{Label: ps.label, Href: patientListURL(p.Q, ps.first, "")}
		switch p.Sort {
		case ps.key:
			c.AriaSort, c.Href = "ascending", patientListURL(p.Q, "-"+ps.key, "")
		case "-" + ps.key:
			c.AriaSort, c.Href = "descending", patientListURL(p.Q, ps.key, "")
		}
		p.Columns = append(p.Columns, c)
	}
	if cursor != "" {
		p.FirstURL = patientListURL(p.Q, p.Sort, "")
	}

	var page struct {
		items []patient.Patient
		next  string
	}
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		res, err := api.Patients(ctx, client.PatientQuery{Q: p.Q, Sort: p.Sort, Cursor: cursor, Limit: patientPageSize})
		page.items, page.next = res.Items, res.NextCursor
		return err
	})
	if client.StatusOf(err) == http.StatusBadRequest {
		if cursor != "" {
			// A page link the API no longer accepts: start again.
			s.setFlash(w, Flash{Kind: "error", Message: "That page of results is no longer available; here is the first page."})
			http.Redirect(w, r, patientListURL(p.Q, p.Sort, ""), http.StatusSeeOther)
			return nil
		}
		p.Error = "The search could not be run. Check what you entered and try again."
		return s.render(w, r, http.StatusBadRequest, "patient_list", p)
	}
	if err != nil {
		return err
	}
	p.Patients = page.items
	if page.next != "" {
		p.NextURL = patientListURL(p.Q, p.Sort, page.next)
	}
	return s.render(w, r, http.StatusOK, "patient_list", p)
}

// PatientNewPage is the registration form.
type PatientNewPage struct {
	Layout
	Summary []SummaryItem
	Fields  []Field
}

// patientForm is the registration form's fields in their order on the page.
func patientForm(in patient.RegisterInput, errs map[string]string) []Field {
	sex := []Option{{Value: "", Label: "Select"}}
	for _, v := range patient.Sexes {
		sex = append(sex, Option{Value: v, Label: sexLabel(v), Selected: v == in.Sex})
	}
	fields := []Field{
		{Name: "family_name", Label: "Family name", Value: in.FamilyName, Autocomplete: "off", MaxLength: 100},
		{Name: "given_names", Label: "Given names", Value: in.GivenNames, Autocomplete: "off", MaxLength: 200},
		{Name: "birth_date", Label: "Date of birth", Type: "date", Value: in.BirthDate, Width: "medium", Optional: true},
		{Name: "sex", Label: "Sex", Hint: "Administrative sex as recorded on official documents.", Options: sex, Width: "medium", Optional: true},
		{Name: "phone", Label: "Phone", Type: "tel", Value: in.Phone, Autocomplete: "off", Width: "medium", MaxLength: 40, Optional: true},
		{Name: "email", Label: "Email", Type: "email", Value: in.Email, Autocomplete: "off", MaxLength: 254, Optional: true},
		{Name: "address_line", Label: "Address", Value: in.AddressLine, Autocomplete: "off", MaxLength: 200, Optional: true},
		{Name: "city", Label: "Town or city", Value: in.City, Autocomplete: "off", Width: "medium", MaxLength: 100, Optional: true},
		{Name: "postal_code", Label: "Postcode", Value: in.PostalCode, Autocomplete: "off", Width: "short", MaxLength: 20, Optional: true},
		{Name: "country", Label: "Country", Hint: "Two-letter code, for example GB, DE or FR.", Value: in.Country, Autocomplete: "off",
			Width: "short", MaxLength: 2, Optional: true},
	}
	for i := range fields {
		if fields[i].Type == "" && fields[i].Options == nil {
			fields[i].Type = "text"
		}
		fields[i].Error = fieldMessage(fields[i].Label, errs[fields[i].Name])
	}
	return fields
}

// summaryFor lists the fields' errors in page order, then any error for a
// field the form does not show.
func summaryFor(fields []Field, errs map[string]string) []SummaryItem {
	var out []SummaryItem
	shown := map[string]bool{}
	for _, f := range fields {
		shown[f.Name] = true
		if f.Error != "" {
			out = append(out, SummaryItem{Text: f.Error, Href: "#" + f.ID()})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(errs)) {
		if !shown[name] {
			out = append(out, SummaryItem{Text: fieldMessage(strings.ReplaceAll(name, "_", " "), errs[name])})
		}
	}
	return out
}

func newPatientNewPage(in patient.RegisterInput, errs map[string]string) *PatientNewPage {
	fields := patientForm(in, errs)
	title := "Register a patient"
	summary := summaryFor(fields, errs)
	if len(summary) > 0 {
		title = "Error: " + title
	}
	return &PatientNewPage{Layout: Layout{Title: title, Area: "Patients", Nav: "patients"}, Fields: fields, Summary: summary}
}

func (s *Server) handlePatientNew(w http.ResponseWriter, r *http.Request) error {
	if !sessionFrom(r.Context()).can(identity.PermPatientWrite) {
		return errForbidden
	}
	return s.render(w, r, http.StatusOK, "patient_new", newPatientNewPage(patient.RegisterInput{}, nil))
}

func (s *Server) handlePatientCreate(w http.ResponseWriter, r *http.Request) error {
	if !sessionFrom(r.Context()).can(identity.PermPatientWrite) {
		return errForbidden
	}
	f := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	in := patient.RegisterInput{Demographics: patient.Demographics{
		FamilyName:  f("family_name"),
		GivenNames:  f("given_names"),
		BirthDate:   f("birth_date"),
		Sex:         f("sex"),
		Phone:       f("phone"),
		Email:       f("email"),
		AddressLine: f("address_line"),
		City:        f("city"),
		PostalCode:  f("postal_code"),
		Country:     strings.ToUpper(f("country")),
	}}
	var created patient.Patient
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		created, err = api.RegisterPatient(ctx, in)
		return err
	})
	var ae *client.Error
	if errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusConflict) {
		errs := ae.Errors
		p := newPatientNewPage(in, errs)
		if len(p.Summary) == 0 {
			p.Summary = []SummaryItem{{Text: orDefault(ae.Detail, "The patient could not be registered.")}}
			p.Title = "Error: Register a patient"
		}
		return s.render(w, r, ae.Status, "patient_new", p)
	}
	if err != nil {
		return err
	}
	s.setFlash(w, Flash{Kind: "success", Message: "Patient registered (MRN " + created.MRN + ")."})
	http.Redirect(w, r, "/patients/"+url.PathEscape(created.ID), http.StatusSeeOther)
	return nil
}

// PatientShowPage is one patient's demographics and wristband.
type PatientShowPage struct {
	Layout
	Patient patient.Patient
	// Address is the postal address, one line each, empty parts left out.
	Address []string
	// Emergency is set while the user sees this patient through an
	// emergency access grant.
	Emergency *EmergencyBanner
}

// EmergencyBanner says until when emergency access lasts.
type EmergencyBanner struct {
	Until    string // "14:05"
	UntilISO string
}

func (s *Server) handlePatientShow(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	if !sess.can(identity.PermPatientRead) {
		return errForbidden
	}
	id := r.PathValue("id")
	var pt patient.Patient
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		pt, err = api.Patient(ctx, id)
		return err
	})
	switch client.StatusOf(err) {
	case http.StatusNotFound, http.StatusBadRequest:
		return errNotFound
	case http.StatusForbidden:
		// Out of the user's care: say so plainly, and offer emergency
		// access to those who may use it.
		return s.render(w, r, http.StatusForbidden, "patient_forbidden", newPatientForbiddenPage(sess, id, "", nil))
	}
	if err != nil {
		return err
	}
	p := &PatientShowPage{
		// The title names no patient: titles end up in browser history on
		// shared ward computers.
		Layout:  Layout{Title: "Patient record", Area: "Patients", Nav: "patients", BodyClass: "print-wristband"},
		Patient: pt,
	}
	for _, line := range []string{pt.AddressLine, strings.TrimSpace(pt.PostalCode + " " + pt.City), pt.Country} {
		if line != "" {
			p.Address = append(p.Address, line)
		}
	}
	if until, ok := sess.grant(pt.ID, s.now()); ok {
		p.Emergency = &EmergencyBanner{Until: clockTime(until), UntilISO: isoTime(until)}
	}
	return s.render(w, r, http.StatusOK, "patient_show", p)
}

// PatientForbiddenPage is shown for a patient outside the user's care.
type PatientForbiddenPage struct {
	Layout
	PatientID string
	// CanRequest: the user may break the glass (patient.emergency_access).
	CanRequest bool
	Summary    []SummaryItem
	Reason     Field
}

// Emergency access reasons are 10 to 500 characters, as the backend checks.
const (
	minReasonLen = 10
	maxReasonLen = 500
)

func newPatientForbiddenPage(sess *session, id, reason string, errs map[string]string) *PatientForbiddenPage {
	p := &PatientForbiddenPage{
		Layout:     Layout{Title: "Patient not under your care", Area: "Patients", Nav: "patients"},
		PatientID:  id,
		CanRequest: sess.can(identity.PermEmergencyAccess),
		Reason: Field{Name: "reason", Label: "Reason for emergency access", Rows: 4, MaxLength: maxReasonLen, Value: reason,
			Hint: "Say why you need this record now, for example “Cardiac arrest call, patient unresponsive in A&E”. " +
				"10 to 500 characters. Your reason, your name and every record you open are audited and reviewed."},
	}
	p.Reason.Error = fieldMessage(p.Reason.Label, errs["reason"])
	p.Summary = summaryFor([]Field{p.Reason}, errs)
	if len(p.Summary) > 0 {
		p.Title = "Error: " + p.Title
	}
	return p
}

// handleEmergencyAccessRequest breaks the glass: with a reason, the
// backend grants time-boxed access to a patient outside the user's care.
func (s *Server) handleEmergencyAccessRequest(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if n := utf8.RuneCountInString(reason); n < minReasonLen || n > maxReasonLen {
		msg := "Explain the emergency in 10 to 500 characters"
		if n == 0 {
			msg = "Enter the reason you need emergency access"
		}
		return s.render(w, r, http.StatusBadRequest, "patient_forbidden",
			newPatientForbiddenPage(sess, id, reason, map[string]string{"reason": msg}))
	}
	var g access.Grant
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		g, err = api.RequestEmergencyAccess(ctx, id, reason)
		return err
	})
	var ae *client.Error
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusBadRequest:
			errs := ae.Errors
			if len(errs) == 0 {
				errs = map[string]string{"reason": orDefault(ae.Detail, "could not be accepted")}
			}
			return s.render(w, r, http.StatusBadRequest, "patient_forbidden", newPatientForbiddenPage(sess, id, reason, errs))
		case http.StatusNotFound:
			return errNotFound
		}
	}
	if err != nil {
		return err
	}
	sess.addGrant(id, g.ExpiresAt, s.now())
	s.saveSession(w, sess)
	s.setFlash(w, Flash{Kind: "success", Message: "Emergency access granted until " + clockTime(g.ExpiresAt) +
		". This access is audited and will be reviewed."})
	http.Redirect(w, r, "/patients/"+url.PathEscape(id), http.StatusSeeOther)
	return nil
}
