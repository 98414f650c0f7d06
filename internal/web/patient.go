package web

import (
	"context"
	"errors"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hospital-erp/hospital-erp/internal/access"
	"github.com/hospital-erp/hospital-erp/internal/admission"
	"github.com/hospital-erp/hospital-erp/internal/appointment"
	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

// patientPageSize is the number of rows of one patient list page.
const patientPageSize = 25

// maxSearchLen is the longest search value the API accepts.
const maxSearchLen = 100

// patientSearch is what the search form asks for: a name (accent- and
// typo-tolerant on the backend) and the exact filters.
type patientSearch struct {
	Q, BirthDate, MRN, Identifier, Phone string
}

func parsePatientSearch(qs url.Values) patientSearch {
	f := func(name string) string {
		v := strings.TrimSpace(qs.Get(name))
		if utf8.RuneCountInString(v) > maxSearchLen {
			v = string([]rune(v)[:maxSearchLen])
		}
		return v
	}
	return patientSearch{Q: f("q"), BirthDate: f("birth_date"), MRN: f("mrn"), Identifier: f("identifier"), Phone: f("phone")}
}

func (f patientSearch) empty() bool { return f == patientSearch{} }

// more reports whether one of the filters beyond the name is used, so
// the page opens the "More search options".
func (f patientSearch) more() bool {
	return f.BirthDate != "" || f.MRN != "" || f.Identifier != "" || f.Phone != ""
}

// defaultSort is the API's default: relevance with a name, else name.
func (f patientSearch) defaultSort() string {
	if f.Q != "" {
		return "relevance"
	}
	return "name"
}

func (f patientSearch) values() url.Values {
	v := url.Values{}
	for k, val := range map[string]string{"q": f.Q, "birth_date": f.BirthDate, "mrn": f.MRN, "identifier": f.Identifier, "phone": f.Phone} {
		if val != "" {
			v.Set(k, val)
		}
	}
	return v
}

// PatientListPage is the patient search and list.
type PatientListPage struct {
	Layout
	Search patientSearch
	// MoreOpen opens the extra filters; Searched is any filter set.
	MoreOpen bool
	Searched bool
	Sort     string
	// SortOptions are the "Sort by" choices (best match only with a name).
	SortOptions []Option
	Columns     []SortColumn
	Patients    []patient.Patient
	// NextURL is the next page, FirstURL the first; empty when not useful.
	NextURL  string
	FirstURL string
	CanWrite bool
	// Summary lists errors in the search fields; Error is a message about
	// the search itself (a stale page link, a refused search).
	Summary   []SummaryItem
	DateError string
	Error     string
}

// SortColumn is a sortable column header: its link sorts by the column,
// or reverses the order when the column is already the sort.
type SortColumn struct {
	Label string
	Href  string
	// AriaSort is "ascending" or "descending" on the active column.
	AriaSort string
}

// patientSorts are the sort keys of the list's columns and the direction
// a first click on their header sorts in (newest first for the
// registration date).
var patientSorts = []struct{ key, label, first string }{
	{"mrn", "MRN", "mrn"},
	{"name", "Name", "name"},
	{"created", "Registered", "-created"},
}

// patientSortChoices are the "Sort by" select's options.
var patientSortChoices = []struct{ value, label string }{
	{"relevance", "Best match"},
	{"name", "Name (A to Z)"},
	{"-created", "Registered (newest first)"},
	{"mrn", "MRN"},
}

func validPatientSort(s string, f patientSearch) bool {
	if s == "relevance" {
		return f.Q != ""
	}
	k := strings.TrimPrefix(s, "-")
	for _, ps := range patientSorts {
		if ps.key == k {
			return true
		}
	}
	return false
}

func patientListURL(f patientSearch, sort, cursor string) string {
	v := f.values()
	if sort != "" && sort != f.defaultSort() {
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
	f := parsePatientSearch(qs)
	p := &PatientListPage{
		Layout:   Layout{Title: "Patients", Area: "Patients", Nav: "patients"},
		Search:   f,
		MoreOpen: f.more(),
		Searched: !f.empty(),
		Sort:     qs.Get("sort"),
		CanWrite: sess.can(identity.PermPatientWrite),
	}
	if !validPatientSort(p.Sort, f) {
		p.Sort = f.defaultSort()
	}
	for _, c := range patientSortChoices {
		if c.value == "relevance" && f.Q == "" {
			continue
		}
		p.SortOptions = append(p.SortOptions, Option{Value: c.value, Label: c.label, Selected: c.value == p.Sort})
	}
	if !slices.ContainsFunc(p.SortOptions, func(o Option) bool { return o.Selected }) {
		// A descending name or MRN order chosen from a column header.
		label := "Name (Z to A)"
		switch p.Sort {
		case "-mrn":
			label = "MRN (descending)"
		case "created":
			label = "Registered (oldest first)"
		}
		p.SortOptions = append(p.SortOptions, Option{Value: p.Sort, Label: label, Selected: true})
	}
	cursor := qs.Get("cursor")
	for _, ps := range patientSorts {
		c := SortColumn{Label: ps.label, Href: patientListURL(f, ps.first, "")}
		switch p.Sort {
		case ps.key:
			c.AriaSort, c.Href = "ascending", patientListURL(f, "-"+ps.key, "")
		case "-" + ps.key:
			c.AriaSort, c.Href = "descending", patientListURL(f, ps.key, "")
		}
		p.Columns = append(p.Columns, c)
	}
	if cursor != "" {
		p.FirstURL = patientListURL(f, p.Sort, "")
	}
	if f.BirthDate != "" {
		if _, err := time.Parse(isoDate, f.BirthDate); err != nil {
			p.DateError = "Enter the date of birth as a date, for example 1984-03-02"
			p.Summary = []SummaryItem{{Text: p.DateError, Href: "#f-birth_date"}}
			p.Title = "Error: " + p.Title
			p.MoreOpen = true
			return s.render(w, r, http.StatusBadRequest, "patient_list", p)
		}
	}

	var page struct {
		items []patient.Patient
		next  string
	}
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		res, err := api.SearchPatients(ctx, client.PatientSearch{Q: f.Q, BirthDate: f.BirthDate, MRN: f.MRN,
			Identifier: f.Identifier, Phone: f.Phone, Sort: p.Sort, Cursor: cursor, Limit: patientPageSize})
		page.items, page.next = res.Items, res.NextCursor
		return err
	})
	if client.StatusOf(err) == http.StatusBadRequest {
		if cursor != "" {
			// A page link the API no longer accepts: start again.
			s.setFlash(w, Flash{Kind: "error", Message: "That page of results is no longer available; here is the first page."})
			http.Redirect(w, r, patientListURL(f, p.Sort, ""), http.StatusSeeOther)
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
		p.NextURL = patientListURL(f, p.Sort, page.next)
	}
	return s.render(w, r, http.StatusOK, "patient_list", p)
}

// FieldGroup is a fieldset of a long form ("Name", "Address").
type FieldGroup struct {
	ID     string
	Legend string
	Hint   string
	Fields []Field
}

func flatten(groups []FieldGroup) []Field {
	var out []Field
	for _, g := range groups {
		out = append(out, g.Fields...)
	}
	return out
}

// birthSexOptions are FHIR's us-core-birthsex codes in words.
var birthSexOptions = []struct{ value, label string }{{"", "Not recorded"}, {"F", "Female"}, {"M", "Male"}, {"UNK", "Unknown"}}

func birthSexLabel(v string) string {
	for _, o := range birthSexOptions {
		if o.value == v {
			return o.label
		}
	}
	return v
}

// languageNames name the commonest preferred languages; other codes are
// shown as they are.
var languageNames = map[string]string{
	"am": "Amharic", "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "cs": "Czech", "cy": "Welsh", "da": "Danish",
	"de": "German", "el": "Greek", "en": "English", "es": "Spanish", "fa": "Persian", "fi": "Finnish", "fr": "French",
	"ga": "Irish", "gd": "Scottish Gaelic", "gu": "Gujarati", "ha": "Hausa", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian",
	"ig": "Igbo", "it": "Italian", "ja": "Japanese", "ko": "Korean", "ku": "Kurdish", "lt": "Lithuanian", "lv": "Latvian",
	"nl": "Dutch", "no": "Norwegian", "pa": "Punjabi", "pl": "Polish", "ps": "Pashto", "pt": "Portuguese", "ro": "Romanian",
	"ru": "Russian", "sk": "Slovak", "so": "Somali", "sq": "Albanian", "sv": "Swedish", "sw": "Swahili", "ta": "Tamil",
	"ti": "Tigrinya", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
}

func languageLabel(code string) string {
	if code == "" {
		return ""
	}
	base, _, _ := strings.Cut(code, "-")
	if n, ok := languageNames[strings.ToLower(base)]; ok {
		if base == code {
			return n
		}
		return n + " (" + code + ")"
	}
	return code
}

// demographicGroups are the registration and edit forms' fields in their
// order on the page, grouped.
func demographicGroups(d patient.Demographics, errs map[string]string) []FieldGroup {
	sex := []Option{{Value: "", Label: "Select"}}
	for _, v := range patient.Sexes {
		sex = append(sex, Option{Value: v, Label: sexLabel(v), Selected: v == d.Sex})
	}
	var birthSex []Option
	for _, o := range birthSexOptions {
		birthSex = append(birthSex, Option{Value: o.value, Label: o.label, Selected: o.value == d.BirthSex})
	}
	groups := []FieldGroup{
		{ID: "name", Legend: "Name", Fields: []Field{
			{Name: "family_name", Label: "Family name", Value: d.FamilyName, Autocomplete: "off", MaxLength: 100},
			{Name: "given_names", Label: "Given names", Value: d.GivenNames, Autocomplete: "off", MaxLength: 200},
			{Name: "name_prefix", Label: "Title", Hint: "For example Dr, Mrs or Mx.", Value: d.NamePrefix, Autocomplete: "off",
				Width: "short", MaxLength: 40, Optional: true},
			{Name: "name_suffix", Label: "Suffix", Hint: "For example Jr or III.", Value: d.NameSuffix, Autocomplete: "off",
				Width: "short", MaxLength: 40, Optional: true},
			{Name: "preferred_name", Label: "Preferred name", Hint: "What the patient likes to be called.", Value: d.PreferredName,
				Autocomplete: "off", Width: "medium", MaxLength: 100, Optional: true},
		}},
		{ID: "birth", Legend: "Birth, sex and gender", Fields: []Field{
			{Name: "birth_date", Label: "Date of birth", Type: "date", Value: d.BirthDate, Width: "medium", Optional: true},
			{Name: "sex", Label: "Sex", Hint: "Administrative sex as recorded on official documents.", Options: sex, Width: "medium", Optional: true},
			{Name: "gender_identity", Label: "Gender identity", Hint: "In the patient's own words, if they wish to say.",
				Value: d.GenderIdentity, Autocomplete: "off", Width: "medium", MaxLength: 60, Optional: true},
			{Name: "birth_sex", Label: "Sex assigned at birth", Options: birthSex, Width: "medium", Optional: true},
		}},
		{ID: "contact", Legend: "Contact details", Fields: []Field{
			{Name: "phone", Label: "Phone", Type: "tel", Value: d.Phone, Autocomplete: "off", Width: "medium", MaxLength: 40, Optional: true},
			{Name: "mobile_phone", Label: "Mobile phone", Type: "tel", Value: d.MobilePhone, Autocomplete: "off", Width: "medium",
				MaxLength: 40, Optional: true},
			{Name: "email", Label: "Email", Type: "email", Value: d.Email, Autocomplete: "off", MaxLength: 254, Optional: true},
			{Name: "language", Label: "Preferred language", Hint: "Language code, for example en, pl, pt-BR.", Value: d.Language,
				Autocomplete: "off", Width: "short", MaxLength: 35, Optional: true},
		}},
		{ID: "address", Legend: "Address", Fields: []Field{
			{Name: "address_line", Label: "Address line 1", Value: d.AddressLine, Autocomplete: "off", MaxLength: 200, Optional: true},
			{Name: "address_line2", Label: "Address line 2", Value: d.AddressLine2, Autocomplete: "off", MaxLength: 200, Optional: true},
			{Name: "city", Label: "Town or city", Value: d.City, Autocomplete: "off", Width: "medium", MaxLength: 100, Optional: true},
			{Name: "district", Label: "County or district", Value: d.District, Autocomplete: "off", Width: "medium", MaxLength: 100, Optional: true},
			{Name: "postal_code", Label: "Postcode", Value: d.PostalCode, Autocomplete: "off", Width: "short", MaxLength: 20, Optional: true},
			{Name: "country", Label: "Country", Hint: "Two-letter code, for example GB, DE or FR.", Value: d.Country, Autocomplete: "off",
				Width: "short", MaxLength: 2, Optional: true},
		}},
	}
	return finishGroups(groups, errs)
}

// finishGroups sets default input types and the errors.
func finishGroups(groups []FieldGroup, errs map[string]string) []FieldGroup {
	for g := range groups {
		for i := range groups[g].Fields {
			f := &groups[g].Fields[i]
			if f.Type == "" && f.Options == nil {
				f.Type = "text"
			}
			f.Error = fieldMessage(f.Label, errs[f.Name])
		}
	}
	return groups
}

// identifierTypeOptions lists the identifier types for a select.
func identifierTypeOptions(selected, blank string) []Option {
	opts := []Option{{Value: "", Label: blank}}
	for _, k := range slices.Sorted(maps.Keys(patient.IdentifierTypes)) {
		opts = append(opts, Option{Value: k, Label: patient.IdentifierTypes[k], Selected: k == selected})
	}
	return opts
}

// identifierFields are the fields of one identifier (registration and the
// overview's add form).
func identifierFields(in patient.Identifier) []Field {
	return []Field{
		{Name: "identifier_type", Label: "Type of identifier", Options: identifierTypeOptions(in.Type, "Select"), Width: "medium"},
		{Name: "identifier_system", Label: "Issued by", Type: "text", Value: in.System, Autocomplete: "off", MaxLength: 200,
			Hint: "The issuer's identifier, for example urn:oid:2.16.840.1.113883.2.1.4.1 for the NHS number, or the insurer's URL."},
		{Name: "identifier_value", Label: "Identifier", Type: "text", Value: in.Value, Autocomplete: "off", Width: "medium", MaxLength: 100},
	}
}

func identifierFrom(r *http.Request) patient.Identifier {
	return patient.Identifier{Type: strings.TrimSpace(r.PostFormValue("identifier_type")),
		System: strings.TrimSpace(r.PostFormValue("identifier_system")), Value: strings.TrimSpace(r.PostFormValue("identifier_value"))}
}

// apiFieldNames maps the API's nested field names to the form's.
var apiFieldNames = map[string]string{
	"identifiers[0].type": "identifier_type", "identifiers[0].system": "identifier_system", "identifiers[0].value": "identifier_value",
	"identifier.type": "identifier_type", "identifier.system": "identifier_system", "identifier.value": "identifier_value",
	"contact.relationship": "contact_relationship", "contact.name": "contact_name", "contact.phone": "contact_phone",
	"contact.email": "contact_email", "contact.address": "contact_address",
}

// formErrors renames the API's field errors to the form's field names;
// prefix is added to bare names ("value" of an identifier conflict).
func formErrors(errs map[string]string, prefix string, bare []string) map[string]string {
	out := map[string]string{}
	for k, v := range errs {
		if n, ok := apiFieldNames[k]; ok {
			k = n
		} else if slices.Contains(bare, k) {
			k = prefix + k
		}
		out[k] = v
	}
	return out
}

// PatientNewPage is the registration form, with the likely duplicates
// when the backend found some.
type PatientNewPage struct {
	Layout
	Summary []SummaryItem
	Groups  []FieldGroup
	// Duplicates are likely existing records of this patient: the user
	// opens one or confirms that this is a new patient.
	Duplicates []DuplicateView
	CanBook    bool
}

// DuplicateView is one likely duplicate with its score in percent.
type DuplicateView struct {
	Patient        patient.Patient
	Percent        int
	NamePercent    int
	SameBirthDate  bool
	SamePhone      bool
	SameIdentifier bool
}

func percent(f float64) int { return int(math.Round(math.Max(0, math.Min(1, f)) * 100)) }

func newDuplicateViews(dups []patient.Duplicate) []DuplicateView {
	out := make([]DuplicateView, 0, len(dups))
	for _, d := range dups {
		out = append(out, DuplicateView{Patient: d.Patient, Percent: percent(d.Score), NamePercent: percent(d.NameSimilarity),
			SameBirthDate: d.SameBirthDate, SamePhone: d.SamePhone, SameIdentifier: d.SameIdentifier})
	}
	return out
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
	var ident patient.Identifier
	if len(in.Identifiers) > 0 {
		ident = in.Identifiers[0]
	}
	groups := demographicGroups(in.Demographics, nil)
	groups = append(groups, FieldGroup{ID: "identifier", Legend: "Identifier",
		Hint:   "Optional: a national identifier, insurance member number or passport, which also helps find duplicates.",
		Fields: identifierFields(ident)})
	for i := range groups[len(groups)-1].Fields {
		groups[len(groups)-1].Fields[i].Optional = true
	}
	groups = finishGroups(groups, errs)
	title := "Register a patient"
	summary := summaryFor(flatten(groups), errs)
	if len(summary) > 0 {
		title = "Error: " + title
	}
	return &PatientNewPage{Layout: Layout{Title: title, Area: "Patients", Nav: "patients"}, Groups: groups, Summary: summary}
}

func (s *Server) handlePatientNew(w http.ResponseWriter, r *http.Request) error {
	if !sessionFrom(r.Context()).can(identity.PermPatientWrite) {
		return errForbidden
	}
	return s.render(w, r, http.StatusOK, "patient_new", newPatientNewPage(patient.RegisterInput{}, nil))
}

// demographicsFrom reads the demographic fields of a posted form.
func demographicsFrom(r *http.Request) patient.Demographics {
	f := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	return patient.Demographics{
		FamilyName:     f("family_name"),
		GivenNames:     f("given_names"),
		NamePrefix:     f("name_prefix"),
		NameSuffix:     f("name_suffix"),
		PreferredName:  f("preferred_name"),
		BirthDate:      f("birth_date"),
		Sex:            f("sex"),
		GenderIdentity: f("gender_identity"),
		BirthSex:       f("birth_sex"),
		Phone:          f("phone"),
		MobilePhone:    f("mobile_phone"),
		Email:          f("email"),
		AddressLine:    f("address_line"),
		AddressLine2:   f("address_line2"),
		City:           f("city"),
		District:       f("district"),
		PostalCode:     f("postal_code"),
		Country:        strings.ToUpper(f("country")),
		Language:       f("language"),
	}
}

// handlePatientCreate registers a patient. When the backend finds likely
// duplicates (409 with "duplicates") the form comes back with them and
// every value kept; "Register as a new patient" sends the same form again
// with confirm_not_duplicate.
func (s *Server) handlePatientCreate(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	if !sess.can(identity.PermPatientWrite) {
		return errForbidden
	}
	in := patient.RegisterInput{Demographics: demographicsFrom(r), Identifiers: []patient.Identifier{}, Contacts: []patient.Contact{},
		ConfirmNotDuplicate: r.PostFormValue("confirm_not_duplicate") == "yes"}
	if id := identifierFrom(r); id.Value != "" || id.System != "" {
		in.Identifiers = append(in.Identifiers, id)
	}
	var created patient.Patient
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		created, err = api.RegisterPatient(ctx, in)
		return err
	})
	var ae *client.Error
	if errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusConflict) {
		p := newPatientNewPage(in, formErrors(ae.Errors, "", nil))
		if dups := client.Duplicates(err); ae.Status == http.StatusConflict && len(dups) > 0 {
			p.Duplicates = newDuplicateViews(dups)
			p.CanBook = sess.can(identity.PermAppointmentWrite)
			p.Title = "Check for duplicates: Register a patient"
			return s.render(w, r, http.StatusConflict, "patient_new", p)
		}
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

// PatientShowPage is the patient overview: demographics, identifiers and
// contacts with their forms, appointments, merges and the wristband.
type PatientShowPage struct {
	Layout
	Patient patient.Patient
	// Address is the postal address, one line each, empty parts left out.
	Address []string
	// Details are the demographics in groups of rows.
	Details []SummaryGroup
	// Emergency is set while the user sees this patient through an
	// emergency access grant.
	Emergency *EmergencyBanner
	// MergedInto is the record this one was merged into (it is inactive).
	MergedInto string

	CanWrite bool
	CanMerge bool
	CanBook  bool
	// Summary lists the errors of the identifier and contact forms.
	Summary          []SummaryItem
	Identifiers      []IdentifierRow
	IdentifierFields []Field
	Contacts         []ContactRow
	ContactFields    []Field

	// ShowAppointments follows appointment.read.
	ShowAppointments  bool
	Upcoming          []AppointmentRow
	Past              []AppointmentRow
	AppointmentsError string
	// AppointmentDays is how far the lists look ahead and back.
	AppointmentDays int

	// ShowAdmissions follows admission.read; Current is the admission
	// still active (shown at the top), CanAdmit offers a new one.
	ShowAdmissions  bool
	Admissions      []AdmissionRow
	AdmissionsError string
	Current         *AdmissionRow
	CanAdmit        bool

	// Merges are the merges of this record still in force, which can be
	// undone from here.
	Merges []MergeBanner
	// Departments are the walk-in queues the patient can join.
	Departments []Option
}

// SummaryGroup is one card of a record's details.
type SummaryGroup struct {
	ID, Title string
	Rows      []SummaryRow
}

// SummaryRow is one label and value; an empty value shows "Not recorded".
type SummaryRow struct {
	Label string
	Value string
	Lines []string
	Class string
}

// IdentifierRow is one identifier with the label of its type.
type IdentifierRow struct {
	patient.Identifier
	TypeLabel string
}

// ContactRow is one contact with the label of the relationship.
type ContactRow struct {
	patient.Contact
	RelationshipLabel string
}

// AppointmentRow is one appointment in a list.
type AppointmentRow struct {
	appointment.Appointment
	When        string
	StatusLabel string
}

// AppointmentTable is one of the overview's appointment lists, for the
// "appointment_table" partial.
type AppointmentTable struct {
	ID    string
	Rows  []AppointmentRow
	Empty string
}

// MergeBanner offers to undo a merge.
type MergeBanner struct {
	MergeID string
	// When is the time of the merge, in the hospital's time zone.
	When string
	// Survivor: this record is the one that was kept.
	Survivor bool
	// OtherID and OtherMRN are the other record.
	OtherID, OtherMRN string
}

// EmergencyBanner says until when emergency access lasts.
type EmergencyBanner struct {
	Until    string // "14:05"
	UntilISO string
}

// patientDetails groups a patient's demographics for the overview.
func patientDetails(pt patient.Patient, loc *time.Location) []SummaryGroup {
	dob := ""
	if pt.BirthDate != "" {
		dob = formatBirthDate(pt.BirthDate)
		if a := age(pt.BirthDate); a != "" {
			dob += " (" + a + ")"
		}
	}
	status := "Active"
	switch {
	case pt.MergedInto != "":
		status = "Merged into another record"
	case pt.Deceased:
		status = "Deceased"
		if pt.DeceasedAt != nil {
			status += " (" + pt.DeceasedAt.In(loc).Format(dateLayout+", 15:04") + ")"
		}
	}
	person := []SummaryRow{
		{Label: "Family name", Value: pt.FamilyName},
		{Label: "Given names", Value: pt.GivenNames},
	}
	for _, opt := range []SummaryRow{{Label: "Title", Value: pt.NamePrefix}, {Label: "Suffix", Value: pt.NameSuffix},
		{Label: "Preferred name", Value: pt.PreferredName}} {
		if opt.Value != "" {
			person = append(person, opt)
		}
	}
	person = append(person,
		SummaryRow{Label: "Date of birth", Value: dob},
		SummaryRow{Label: "Sex", Value: sexLabel(pt.Sex)},
		SummaryRow{Label: "Gender identity", Value: pt.GenderIdentity},
		SummaryRow{Label: "Sex assigned at birth", Value: birthSexLabel(pt.BirthSex)},
		SummaryRow{Label: "Medical record number", Value: pt.MRN, Class: "mrn"},
		SummaryRow{Label: "Registered", Value: formatDate(pt.CreatedAt)},
		SummaryRow{Label: "Status", Value: status},
	)
	var addr []string
	for _, line := range []string{pt.AddressLine, pt.AddressLine2, strings.TrimSpace(pt.PostalCode + " " + pt.City), pt.District, pt.Country} {
		if line != "" {
			addr = append(addr, line)
		}
	}
	contact := []SummaryRow{
		{Label: "Phone", Value: pt.Phone},
		{Label: "Mobile phone", Value: pt.MobilePhone},
		{Label: "Email", Value: pt.Email},
		{Label: "Preferred language", Value: languageLabel(pt.Language)},
		{Label: "Address", Lines: addr},
	}
	return []SummaryGroup{{ID: "demo", Title: "Patient", Rows: person}, {ID: "contact", Title: "Contact", Rows: contact}}
}

func identifierRows(ids []patient.Identifier) []IdentifierRow {
	out := make([]IdentifierRow, 0, len(ids))
	for _, i := range ids {
		label := patient.IdentifierTypes[i.Type]
		if label == "" {
			label = i.Type
		}
		out = append(out, IdentifierRow{Identifier: i, TypeLabel: label})
	}
	return out
}

func contactRows(cs []patient.Contact) []ContactRow {
	out := make([]ContactRow, 0, len(cs))
	for _, c := range cs {
		label := patient.Relationships[c.Relationship]
		if label == "" {
			label = c.Relationship
		}
		out = append(out, ContactRow{Contact: c, RelationshipLabel: label})
	}
	return out
}

// relationshipOptions lists contact relationships for a select.
func relationshipOptions(selected string) []Option {
	opts := []Option{{Value: "", Label: "Select"}}
	for _, k := range []string{"N", "C", "E", "I", "O"} {
		opts = append(opts, Option{Value: k, Label: patient.Relationships[k], Selected: k == selected})
	}
	return opts
}

func contactFields(in patient.Contact) []Field {
	return []Field{
		{Name: "contact_relationship", Label: "Relationship", Options: relationshipOptions(in.Relationship), Width: "medium"},
		{Name: "contact_name", Label: "Name", Type: "text", Value: in.Name, Autocomplete: "off", MaxLength: 200},
		{Name: "contact_phone", Label: "Phone", Type: "tel", Value: in.Phone, Autocomplete: "off", Width: "medium", MaxLength: 40, Optional: true},
		{Name: "contact_email", Label: "Email", Type: "email", Value: in.Email, Autocomplete: "off", MaxLength: 254, Optional: true},
		{Name: "contact_address", Label: "Address", Type: "text", Value: in.Address, Autocomplete: "off", MaxLength: 300, Optional: true},
	}
}

// loadPatient reads one patient.
func (s *Server) loadPatient(w http.ResponseWriter, r *http.Request, id string) (patient.Patient, error) {
	var pt patient.Patient
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		pt, err = api.Patient(ctx, id)
		return err
	})
	return pt, err
}

// patientError answers a failed patient read: not found, or the page
// that explains the patient is outside the user's care.
func (s *Server) patientError(w http.ResponseWriter, r *http.Request, id string, err error) error {
	switch client.StatusOf(err) {
	case http.StatusNotFound, http.StatusBadRequest:
		return errNotFound
	case http.StatusForbidden:
		// Out of the user's care: say so plainly, and offer emergency
		// access to those who may use it.
		return s.render(w, r, http.StatusForbidden, "patient_forbidden", newPatientForbiddenPage(sessionFrom(r.Context()), id, "", nil))
	}
	return err
}

// patientFormState is what the overview's forms were sent with, to show
// again with their errors.
type patientFormState struct {
	identifier     patient.Identifier
	contact        patient.Contact
	identifierErrs map[string]string
	contactErrs    map[string]string
}

func (s *Server) handlePatientShow(w http.ResponseWriter, r *http.Request) error {
	if !sessionFrom(r.Context()).can(identity.PermPatientRead) {
		return errForbidden
	}
	return s.renderPatientShow(w, r, http.StatusOK, r.PathValue("id"), patientFormState{})
}

// renderPatientShow renders the overview of patient id with status; st
// puts values and errors into the identifier and contact forms.
func (s *Server) renderPatientShow(w http.ResponseWriter, r *http.Request, status int, id string, st patientFormState) error {
	sess := sessionFrom(r.Context())
	pt, err := s.loadPatient(w, r, id)
	if err != nil {
		return s.patientError(w, r, id, err)
	}
	active := pt.MergedInto == ""
	p := &PatientShowPage{
		// The title names no patient: titles end up in browser history on
		// shared ward computers.
		Layout:           Layout{Title: "Patient record", Area: "Patients", Nav: "patients", BodyClass: "print-wristband"},
		Patient:          pt,
		Details:          patientDetails(pt, s.loc),
		MergedInto:       pt.MergedInto,
		CanWrite:         active && sess.can(identity.PermPatientWrite),
		CanMerge:         active && sess.can(identity.PermPatientMerge),
		CanBook:          active && sess.can(identity.PermAppointmentWrite),
		ShowAppointments: sess.can(identity.PermAppointmentRead),
		Identifiers:      identifierRows(pt.Identifiers),
		Contacts:         contactRows(pt.Contacts),
		AppointmentDays:  int(patientAppointmentRange / (24 * time.Hour)),
	}
	for _, line := range []string{pt.AddressLine, strings.TrimSpace(pt.PostalCode + " " + pt.City), pt.Country} {
		if line != "" {
			p.Address = append(p.Address, line)
		}
	}
	if until, ok := sess.grant(pt.ID, s.now()); ok {
		p.Emergency = &EmergencyBanner{Until: clockTime(until), UntilISO: isoTime(until)}
	}
	if p.CanWrite {
		p.IdentifierFields = withErrors(identifierFields(st.identifier), st.identifierErrs)
		p.ContactFields = withErrors(contactFields(st.contact), st.contactErrs)
		p.Summary = append(summaryFor(p.IdentifierFields, st.identifierErrs), summaryFor(p.ContactFields, st.contactErrs)...)
		if len(p.Summary) > 0 {
			p.Title = "Error: " + p.Title
		}
	}
	if sess.can(identity.PermPatientMerge) {
		var merges []patient.Merge
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			var err error
			merges, err = api.PatientMerges(ctx, pt.ID)
			return err
		})
		if err := s.sectionError(r, err, new(string)); err != nil {
			return err
		}
		for _, m := range merges {
			if m.UndoneAt != nil {
				continue
			}
			b := MergeBanner{MergeID: m.ID, When: m.MergedAt.In(s.loc).Format(dateLayout + ", 15:04")}
			switch pt.ID {
			case m.SurvivorID:
				b.Survivor, b.OtherID, b.OtherMRN = true, m.MergedID, m.MergedMRN
			case m.MergedID:
				b.OtherID, b.OtherMRN = m.SurvivorID, m.SurvivorMRN
			default:
				continue
			}
			p.Merges = append(p.Merges, b)
		}
	}
	if p.ShowAppointments {
		if err := s.patientAppointments(w, r, p); err != nil {
			return err
		}
	}
	if sess.can(identity.PermAdmissionRead) {
		p.ShowAdmissions = true
		var list []admission.Admission
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			var err error
			list, err = api.PatientAdmissions(ctx, pt.ID)
			return err
		})
		if err := s.sectionError(r, err, &p.AdmissionsError); err != nil {
			return err
		}
		for _, a := range list {
			row := s.admissionRow(a)
			p.Admissions = append(p.Admissions, row)
			if a.Status == "active" {
				p.Current = &row
			}
		}
		p.CanAdmit = active && pt.Active && !pt.Deceased && p.Current == nil && p.AdmissionsError == "" &&
			sess.can(identity.PermAdmissionWrite)
	}
	if p.CanBook {
		depts, err := s.queueDepartments(w, r)
		if err := s.sectionError(r, err, new(string)); err != nil {
			return err
		}
		p.Departments = []Option{{Value: "", Label: "Select a department"}}
		for _, d := range depts {
			p.Departments = append(p.Departments, Option{Value: d.ID, Label: d.Name})
		}
	}
	return s.render(w, r, status, "patient_show", p)
}

// patientAppointments fills the overview's upcoming and past
// appointments: the year ahead and the year back, in one read (the
// backend lists up to two years of one patient's appointments). An
// appointment under way is upcoming.
func (s *Server) patientAppointments(w http.ResponseWriter, r *http.Request, p *PatientShowPage) error {
	now := s.now()
	var list []appointment.Appointment
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		list, err = api.Appointments(ctx, client.AppointmentQuery{PatientID: p.Patient.ID, From: now.Add(-patientAppointmentRange),
			To: now.Add(patientAppointmentRange)})
		return err
	})
	if err := s.sectionError(r, err, &p.AppointmentsError); err != nil {
		return err
	}
	for _, a := range list {
		if a.EndsAt.After(now) {
			p.Upcoming = append(p.Upcoming, s.appointmentRow(a))
		}
	}
	// Most recent first.
	for i := len(list) - 1; i >= 0; i-- {
		if !list[i].EndsAt.After(now) {
			p.Past = append(p.Past, s.appointmentRow(list[i]))
		}
	}
	return nil
}

// patientAppointmentRange is how far a patient's page looks ahead and
// back for appointments.
const patientAppointmentRange = 365 * 24 * time.Hour

func (s *Server) appointmentRow(a appointment.Appointment) AppointmentRow {
	return AppointmentRow{Appointment: a, When: shortWhen(a.StartsAt, s.loc) + "–" + timeOfDay(a.EndsAt, s.loc),
		StatusLabel: appointmentStatusLabel(a.Status)}
}

// queueDepartments lists the departments for the queue pages. Without
// facility.read (no department list) they are those of the clinics and
// practitioners, which any signed-in user can list.
func (s *Server) queueDepartments(w http.ResponseWriter, r *http.Request) ([]ward.Department, error) {
	var depts []ward.Department
	var err error
	if sessionFrom(r.Context()).can(identity.PermFacilityRead) {
		err = s.call(w, r, func(ctx context.Context, api *client.Client) error {
			var err error
			depts, err = api.Departments(ctx)
			return err
		})
		if client.StatusOf(err) != http.StatusForbidden {
			// Patients queue in clinical departments, not in administration
			// or the pharmacy's stores.
			return slices.DeleteFunc(depts, func(d ward.Department) bool { return d.Kind != "" && d.Kind != "clinical" }), err
		}
	}
	d, err := s.loadSchedule(w, r)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, c := range d.clinics {
		if !seen[c.DepartmentID] && c.DepartmentID != "" {
			seen[c.DepartmentID] = true
			depts = append(depts, ward.Department{ID: c.DepartmentID, Name: orDefault(c.DepartmentName, c.Name)})
		}
	}
	for _, pr := range d.practitioners {
		if !seen[pr.DepartmentID] && pr.DepartmentID != "" && pr.DepartmentName != "" {
			seen[pr.DepartmentID] = true
			depts = append(depts, ward.Department{ID: pr.DepartmentID, Name: pr.DepartmentName})
		}
	}
	slices.SortFunc(depts, func(a, b ward.Department) int { return strings.Compare(a.Name, b.Name) })
	return depts, nil
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
