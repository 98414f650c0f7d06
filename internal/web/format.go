package web

import (
	"strconv"
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
