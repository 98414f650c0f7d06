package web

import (
	"strconv"
	"strings"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/identity"
)

// Dates are written "2 Mar 1984": unambiguous in every locale, unlike
// 02/03/1984.
const dateLayout = "2 Jan 2006"

func roleName(role string) string {
	if n, ok := identity.RoleNames[role]; ok {
		return n
	}
	return role
}

var sexLabels = map[string]string{"female": "Female", "male": "Male", "other": "Other", "unknown": "Unknown"}

func sexLabel(s string) string {
	if l, ok := sexLabels[s]; ok {
		return l
	}
	return "Unknown"
}

func formatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(dateLayout)
}

// formatBirthDate turns the API's YYYY-MM-DD into "2 Mar 1984".
func formatBirthDate(s string) string {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return s
	}
	return d.Format(dateLayout)
}

// age is the age in whole years, or months and days for small children,
// as a clinician would say it: "41 y", "7 mo", "12 d".
func age(birth string) string { return ageAt(birth, time.Now()) }

func ageAt(birth string, now time.Time) string {
	d, err := time.Parse(time.DateOnly, birth)
	if err != nil || d.After(now) {
		return ""
	}
	years := now.Year() - d.Year()
	months := int(now.Month()) - int(d.Month())
	if now.Day() < d.Day() {
		months--
	}
	if months < 0 {
		years--
		months += 12
	}
	switch {
	case years >= 2:
		return strconv.Itoa(years) + " y"
	case years > 0 || months > 0:
		return strconv.Itoa(years*12+months) + " mo"
	}
	return strconv.Itoa(int(now.Sub(d).Hours()/24)) + " d"
}

// bedStatuses are the bed states in the order of the legend and the bars.
var bedStatuses = []string{"available", "occupied", "reserved", "cleaning", "out_of_service"}

var bedStatusLabels = map[string]string{
	"available": "Available", "occupied": "Occupied", "reserved": "Reserved",
	"cleaning": "Cleaning", "out_of_service": "Out of service",
}

func bedStatusLabel(s string) string {
	if l, ok := bedStatusLabels[s]; ok {
		return l
	}
	return s
}

var bedTypeLabels = map[string]string{
	"general": "General", "icu": "ICU", "isolation": "Isolation", "paediatric": "Paediatric", "maternity": "Maternity",
}

func bedTypeLabel(s string) string {
	if l, ok := bedTypeLabels[s]; ok {
		return l
	}
	return s
}

// formatUTC writes an audit time to the second, in UTC as the audit trail
// records it: "2026-03-02 14:05:09 UTC".
func formatUTC(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// isoTime is the machine-readable form for <time datetime>.
func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// permissionLabels say in words what each permission allows, for the
// roles page a hospital reviews.
var permissionLabels = map[string]string{
	identity.PermPatientRead:      "See patients' demographics",
	identity.PermPatientWrite:     "Register patients and change their demographics",
	"patient.merge":               "Merge duplicate patient records",
	identity.PermAppointmentRead:  "See appointments",
	identity.PermAppointmentWrite: "Book and change appointments",
	identity.PermAdmissionRead:    "See admissions",
	identity.PermAdmissionWrite:   "Admit, transfer and discharge patients",
	identity.PermBedRead:          "See wards and beds",
	identity.PermBedWrite:         "Change bed states",
	identity.PermClinicalRead:     "Read clinical notes",
	identity.PermClinicalWrite:    "Write clinical notes",
	identity.PermPrescribe:        "Prescribe",
	identity.PermDispense:         "Dispense medicines",
	identity.PermLabRead:          "See laboratory results",
	identity.PermLabWrite:         "Enter laboratory results",
	identity.PermInvoiceRead:      "See invoices",
	identity.PermInvoiceWrite:     "Create and change invoices",
	identity.PermInventoryRead:    "See stock",
	identity.PermInventoryWrite:   "Change stock",
	identity.PermFacilityRead:     "See departments, wards and rooms",
	identity.PermFacilityWrite:    "Set up departments, wards and rooms",
	identity.PermStaffRead:        "See staff records",
	identity.PermStaffWrite:       "Change staff records",
	identity.PermUserAdmin:        "Manage user accounts and their access",
	identity.PermAuditRead:        "Read and export the audit trail",
	identity.PermReportRead:       "See management reports",
	identity.PermEmergencyAccess:  "Open a patient outside their care in an emergency, giving a reason",
	identity.PermEmergencyReview:  "Review emergency access",
}

func permissionLabel(p string) string {
	if l, ok := permissionLabels[p]; ok {
		return l
	}
	return p
}

// clockTime is a time of day as staff read it on the ward: "14:05", in
// the server's time zone (TZ).
func clockTime(t time.Time) string { return t.Local().Format("15:04") }

// thousands writes a count with comma separators: 40112 -> "40,112".
func thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
