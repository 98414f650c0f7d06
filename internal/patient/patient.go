// Package patient is the master patient index: registering, finding,
// reading, updating and merging patients, their identifiers and contacts.
// The fields map onto FHIR R4 Patient without loss (see docs/fhir.md).
package patient

import (
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
)

// Patient is a registered patient with identifiers and contacts.
type Patient struct {
	ID             string       `json:"id"`
	MRN            string       `json:"mrn"`
	FamilyName     string       `json:"family_name"`
	GivenNames     string       `json:"given_names"`
	NamePrefix     string       `json:"name_prefix,omitempty"`
	NameSuffix     string       `json:"name_suffix,omitempty"`
	PreferredName  string       `json:"preferred_name,omitempty"`
	BirthDate      string       `json:"birth_date,omitempty"` // YYYY-MM-DD
	Sex            string       `json:"sex"`                  // administrative (FHIR gender)
	GenderIdentity string       `json:"gender_identity,omitempty"`
	BirthSex       string       `json:"birth_sex,omitempty"`
	Phone          string       `json:"phone,omitempty"`
	MobilePhone    string       `json:"mobile_phone,omitempty"`
	Email          string       `json:"email,omitempty"`
	AddressLine    string       `json:"address_line,omitempty"`
	AddressLine2   string       `json:"address_line2,omitempty"`
	City           string       `json:"city,omitempty"`
	District       string       `json:"district,omitempty"`
	PostalCode     string       `json:"postal_code,omitempty"`
	Country        string       `json:"country,omitempty"`
	Language       string       `json:"language,omitempty"` // BCP 47
	Deceased       bool         `json:"deceased"`
	DeceasedAt     *time.Time   `json:"deceased_at,omitempty"`
	Active         bool         `json:"active"`
	MergedInto     string       `json:"merged_into,omitempty"`
	Identifiers    []Identifier `json:"identifiers"`
	Contacts       []Contact    `json:"contacts"`
	Version        int          `json:"version"`
	CreatedAt      time.Time    `json:"created_at"`
	UpdatedAt      time.Time    `json:"updated_at"`
}

// Identifier is another identifier of the patient (FHIR Identifier).
type Identifier struct {
	ID     string `json:"id,omitempty"`
	Type   string `json:"type"`   // NI, MB, PPN, DL, MR
	System string `json:"system"` // issuer URI
	Value  string `json:"value"`
}

// Contact is a next of kin or other contact (FHIR Patient.contact).
type Contact struct {
	ID           string `json:"id,omitempty"`
	Relationship string `json:"relationship"` // N next of kin, C emergency, E employer, I insurer, O other
	Name         string `json:"name"`
	Phone        string `json:"phone,omitempty"`
	Email        string `json:"email,omitempty"`
	Address      string `json:"address,omitempty"`
}

// Sexes allowed in Patient.Sex (FHIR AdministrativeGender).
var Sexes = []string{"female", "male", "other", "unknown"}

// IdentifierTypes are the allowed identifier type codes (HL7 v2 0203).
var IdentifierTypes = map[string]string{"NI": "National identifier", "MB": "Insurance member number",
	"PPN": "Passport number", "DL": "Driver's licence", "MR": "Record number at another facility"}

// Relationships are the allowed contact relationship codes (HL7 v2 0131).
var Relationships = map[string]string{"N": "Next of kin", "C": "Emergency contact", "E": "Employer", "I": "Insurer", "O": "Other"}

// Demographics are the fields of a registration or an update.
type Demographics struct {
	FamilyName     string `json:"family_name"`
	GivenNames     string `json:"given_names"`
	NamePrefix     string `json:"name_prefix"`
	NameSuffix     string `json:"name_suffix"`
	PreferredName  string `json:"preferred_name"`
	BirthDate      string `json:"birth_date"`
	Sex            string `json:"sex"`
	GenderIdentity string `json:"gender_identity"`
	BirthSex       string `json:"birth_sex"`
	Phone          string `json:"phone"`
	MobilePhone    string `json:"mobile_phone"`
	Email          string `json:"email"`
	AddressLine    string `json:"address_line"`
	AddressLine2   string `json:"address_line2"`
	City           string `json:"city"`
	District       string `json:"district"`
	PostalCode     string `json:"postal_code"`
	Country        string `json:"country"`
	Language       string `json:"language"`
}

// RegisterInput is the body of POST /api/v1/patients. When likely
// duplicates exist the registration is refused with 409 and the
// candidates, unless ConfirmNotDuplicate is set after a person checked them.
type RegisterInput struct {
	Demographics
	Identifiers         []Identifier `json:"identifiers"`
	Contacts            []Contact    `json:"contacts"`
	ConfirmNotDuplicate bool         `json:"confirm_not_duplicate"`
}

// UpdateInput is the body of PUT /api/v1/patients/{id}.
type UpdateInput struct {
	Demographics
	Deceased   bool   `json:"deceased"`
	DeceasedAt string `json:"deceased_at"` // RFC 3339, optional
}

var (
	phoneRe    = regexp.MustCompile(`^\+?[0-9 ()./-]{3,40}$`)
	countryRe  = regexp.MustCompile(`^[A-Z]{2}$`)
	languageRe = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)
)

// normalize trims the fields and checks them; it returns the birth date.
func (in *Demographics) normalize(v *hospital.Validation, today time.Time) *time.Time {
	for _, f := range []*string{&in.FamilyName, &in.GivenNames, &in.NamePrefix, &in.NameSuffix, &in.PreferredName,
		&in.BirthDate, &in.Sex, &in.GenderIdentity, &in.BirthSex, &in.Phone, &in.MobilePhone, &in.Email,
		&in.AddressLine, &in.AddressLine2, &in.City, &in.District, &in.PostalCode, &in.Country, &in.Language} {
		*f = strings.TrimSpace(*f)
	}
	in.Country = strings.ToUpper(in.Country)
	in.Sex = strings.ToLower(in.Sex)
	in.BirthSex = strings.ToUpper(in.BirthSex)
	if in.Sex == "" {
		in.Sex = "unknown"
	}
	checkText(v, "family_name", in.FamilyName, 1, 100)
	checkText(v, "given_names", in.GivenNames, 1, 200)
	checkText(v, "name_prefix", in.NamePrefix, 0, 40)
	checkText(v, "name_suffix", in.NameSuffix, 0, 40)
	checkText(v, "preferred_name", in.PreferredName, 0, 100)
	checkText(v, "gender_identity", in.GenderIdentity, 0, 60)
	checkText(v, "address_line", in.AddressLine, 0, 200)
	checkText(v, "address_line2", in.AddressLine2, 0, 200)
	checkText(v, "city", in.City, 0, 100)
	checkText(v, "district", in.District, 0, 100)
	checkText(v, "postal_code", in.PostalCode, 0, 20)
	v.Check(contains(Sexes, in.Sex), "sex", "must be one of female, male, other, unknown")
	v.Check(in.BirthSex == "" || in.BirthSex == "F" || in.BirthSex == "M" || in.BirthSex == "UNK", "birth_sex", "must be F, M or UNK")
	v.Check(in.Phone == "" || phoneRe.MatchString(in.Phone), "phone", "must be a phone number (digits, spaces, + ( ) - .)")
	v.Check(in.MobilePhone == "" || phoneRe.MatchString(in.MobilePhone), "mobile_phone", "must be a phone number")
	if in.Email != "" {
		a, err := mail.ParseAddress(in.Email)
		v.Check(err == nil && a.Address == in.Email && len(in.Email) <= 254, "email", "must be an e-mail address")
	}
	v.Check(in.Country == "" || countryRe.MatchString(in.Country), "country", "must be a two-letter ISO 3166 code such as GB")
	v.Check(in.Language == "" || languageRe.MatchString(in.Language), "language", "must be a language code such as en, fr or pt-BR")
	if in.BirthDate == "" {
		return nil
	}
	d, err := time.Parse("2006-01-02", in.BirthDate)
	switch {
	case err != nil:
		v.Add("birth_date", "must be a date written YYYY-MM-DD")
	case d.After(today):
		v.Add("birth_date", "cannot be in the future")
	case d.Year() < 1880:
		v.Add("birth_date", "is too far in the past")
	default:
		return &d
	}
	return nil
}

func (id *Identifier) normalize(v *hospital.Validation, field string) {
	id.Type = strings.ToUpper(strings.TrimSpace(id.Type))
	id.System = strings.TrimSpace(id.System)
	id.Value = strings.TrimSpace(id.Value)
	_, ok := IdentifierTypes[id.Type]
	v.Check(ok, field+".type", "must be NI, MB, PPN, DL or MR")
	checkText(v, field+".system", id.System, 1, 200)
	checkText(v, field+".value", id.Value, 1, 100)
}

func (c *Contact) normalize(v *hospital.Validation, field string) {
	c.Relationship = strings.ToUpper(strings.TrimSpace(c.Relationship))
	c.Name = strings.TrimSpace(c.Name)
	c.Phone = strings.TrimSpace(c.Phone)
	c.Email = strings.TrimSpace(c.Email)
	c.Address = strings.TrimSpace(c.Address)
	_, ok := Relationships[c.Relationship]
	v.Check(ok, field+".relationship", "must be N, C, E, I or O")
	checkText(v, field+".name", c.Name, 1, 200)
	v.Check(c.Phone == "" || phoneRe.MatchString(c.Phone), field+".phone", "must be a phone number")
	if c.Email != "" {
		a, err := mail.ParseAddress(c.Email)
		v.Check(err == nil && a.Address == c.Email, field+".email", "must be an e-mail address")
	}
	checkText(v, field+".address", c.Address, 0, 300)
}

func checkText(v *hospital.Validation, field, s string, minLen, maxLen int) {
	n := utf8.RuneCountInString(s)
	switch {
	case minLen > 0 && n == 0:
		v.Add(field, "is required")
	case n > maxLen:
		v.Add(field, "is too long")
	case strings.ContainsAny(s, "\x00\r\n\t"):
		v.Add(field, "must not contain control characters")
	case !utf8.ValidString(s):
		v.Add(field, "must be valid text")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ListFilter selects patients for GET /api/v1/patients. Nil fields do not
// filter.
type ListFilter struct {
	// Query is matched against the names, tolerating accents and typos.
	Query      *string
	BirthDate  *time.Time
	MRN        *string
	Identifier *string
	// Phone matches any part of a phone number's digits.
	Phone *string
}

// SortKeys are the allowed sort keys of the list; "relevance" needs a query.
var SortKeys = []string{"relevance", "name", "created", "mrn"}

// Duplicate is a likely duplicate of a registration.
type Duplicate struct {
	Patient        Patient `json:"patient"`
	Score          float64 `json:"score"`
	NameSimilarity float64 `json:"name_similarity"`
	SameBirthDate  bool    `json:"same_birth_date"`
	SamePhone      bool    `json:"same_phone"`
	SameIdentifier bool    `json:"same_identifier"`
}

// DuplicateThreshold is the score from which a registration needs
// confirmation.
const DuplicateThreshold = 0.6

// Merge is a completed merge.
type Merge struct {
	ID         string         `json:"id"`
	SurvivorID string         `json:"survivor_id"`
	MergedID   string         `json:"merged_id"`
	Moved      map[string]int `json:"moved"` // table.column -> rows moved
	MergedAt   time.Time      `json:"merged_at"`
	UndoneAt   *time.Time     `json:"undone_at,omitempty"`
	// SurvivorMRN and MergedMRN are set in a record's list of merges.
	SurvivorMRN string `json:"survivor_mrn,omitempty"`
	MergedMRN   string `json:"merged_mrn,omitempty"`
}

// MergeInput is the body of POST /api/v1/patients/{id}/merge: the record
// to merge into {id}, which survives.
type MergeInput struct {
	MergedID string `json:"merged_id"`
}
