// Package patient is the patient registry: registering, finding and reading
// patients.
package patient

import (
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
)

// Patient is a registered patient.
type Patient struct {
	ID          string    `json:"id"`
	MRN         string    `json:"mrn"`
	FamilyName  string    `json:"family_name"`
	GivenNames  string    `json:"given_names"`
	BirthDate   string    `json:"birth_date,omitempty"` // YYYY-MM-DD
	Sex         string    `json:"sex"`
	Phone       string    `json:"phone,omitempty"`
	Email       string    `json:"email,omitempty"`
	AddressLine string    `json:"address_line,omitempty"`
	City        string    `json:"city,omitempty"`
	PostalCode  string    `json:"postal_code,omitempty"`
	Country     string    `json:"country,omitempty"`
	Deceased    bool      `json:"deceased"`
	Version     int       `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Sexes allowed in Patient.Sex (administrative sex, FHIR AdministrativeGender).
var Sexes = []string{"female", "male", "other", "unknown"}

// RegisterInput is the body of POST /api/v1/patients.
type RegisterInput struct {
	FamilyName  string `json:"family_name"`
	GivenNames  string `json:"given_names"`
	BirthDate   string `json:"birth_date"`
	Sex         string `json:"sex"`
	Phone       string `json:"phone"`
	Email       string `json:"email"`
	AddressLine string `json:"address_line"`
	City        string `json:"city"`
	PostalCode  string `json:"postal_code"`
	Country     string `json:"country"`
}

var (
	phoneRe   = regexp.MustCompile(`^\+?[0-9 ()./-]{3,40}$`)
	countryRe = regexp.MustCompile(`^[A-Z]{2}$`)
)

// normalize trims the input and checks it; it returns the birth date parsed.
func (in *RegisterInput) normalize(today time.Time) (*time.Time, error) {
	for _, f := range []*string{&in.FamilyName, &in.GivenNames, &in.BirthDate, &in.Sex, &in.Phone, &in.Email,
		&in.AddressLine, &in.City, &in.PostalCode, &in.Country} {
		*f = strings.TrimSpace(*f)
	}
	in.Country = strings.ToUpper(in.Country)
	in.Sex = strings.ToLower(in.Sex)
	if in.Sex == "" {
		in.Sex = "unknown"
	}
	var v hospital.Validation
	checkText(&v, "family_name", in.FamilyName, 1, 100)
	checkText(&v, "given_names", in.GivenNames, 1, 200)
	checkText(&v, "address_line", in.AddressLine, 0, 200)
	checkText(&v, "city", in.City, 0, 100)
	checkText(&v, "postal_code", in.PostalCode, 0, 20)
	v.Check(contains(Sexes, in.Sex), "sex", "must be one of female, male, other, unknown")
	v.Check(in.Phone == "" || phoneRe.MatchString(in.Phone), "phone", "must be a phone number (digits, spaces, + ( ) - .)")
	if in.Email != "" {
		a, err := mail.ParseAddress(in.Email)
		v.Check(err == nil && a.Address == in.Email && len(in.Email) <= 254, "email", "must be an e-mail address")
	}
	v.Check(in.Country == "" || countryRe.MatchString(in.Country), "country", "must be a two-letter ISO 3166 code such as GB")
	var birth *time.Time
	if in.BirthDate != "" {
		d, err := time.Parse("2006-01-02", in.BirthDate)
		switch {
		case err != nil:
			v.Add("birth_date", "must be a date written YYYY-MM-DD")
		case d.After(today):
			v.Add("birth_date", "cannot be in the future")
		case d.Year() < 1880:
			v.Add("birth_date", "is too far in the past")
		default:
			birth = &d
		}
	}
	return birth, v.Err()
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

// ListFilter selects patients for GET /api/v1/patients.
type ListFilter struct {
	// NamePrefix matches the start of the family name, case-insensitively.
	NamePrefix *string
}

// SortKeys are the allowed sort keys of the list.
var SortKeys = []string{"name", "created", "mrn"}
