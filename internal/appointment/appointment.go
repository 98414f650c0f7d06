// Package appointment is outpatient scheduling: practitioners and clinics,
// weekly availability with exceptions, the free slots they give, and
// appointments that can be booked, rescheduled, cancelled, checked in,
// marked no-show or completed. Double booking is impossible: an exclusion
// constraint in PostgreSQL refuses overlapping appointments of one
// practitioner.
package appointment

import "time"

// Practitioner is a bookable clinician.
type Practitioner struct {
	ID             string `json:"id"`
	UserID         string `json:"user_id,omitempty"`
	DisplayName    string `json:"display_name"`
	DepartmentID   string `json:"department_id"`
	DepartmentName string `json:"department_name,omitempty"`
	Specialty      string `json:"specialty,omitempty"`
}

// Clinic is where appointments happen, with its slot length.
type Clinic struct {
	ID             string `json:"id"`
	DepartmentID   string `json:"department_id"`
	DepartmentName string `json:"department_name,omitempty"`
	Code           string `json:"code"`
	Name           string `json:"name"`
	Location       string `json:"location,omitempty"`
	SlotMinutes    int    `json:"slot_minutes"`
}

// Rule is weekly availability: a practitioner works in a clinic on a
// weekday (1 = Monday ... 7 = Sunday) between two local times.
type Rule struct {
	ID             string `json:"id,omitempty"`
	PractitionerID string `json:"practitioner_id"`
	ClinicID       string `json:"clinic_id"`
	Weekday        int    `json:"weekday"`
	StartTime      string `json:"start_time"` // HH:MM, hospital time zone
	EndTime        string `json:"end_time"`
	ValidFrom      string `json:"valid_from,omitempty"` // YYYY-MM-DD
	ValidTo        string `json:"valid_to,omitempty"`
}

// Exception removes availability: a practitioner's leave or, without a
// practitioner, a hospital-wide holiday.
type Exception struct {
	ID             string    `json:"id,omitempty"`
	PractitionerID string    `json:"practitioner_id,omitempty"`
	StartsAt       time.Time `json:"starts_at"`
	EndsAt         time.Time `json:"ends_at"`
	Reason         string    `json:"reason"`
}

// Slot is a free period that can be booked.
type Slot struct {
	PractitionerID string    `json:"practitioner_id"`
	ClinicID       string    `json:"clinic_id"`
	StartsAt       time.Time `json:"starts_at"`
	EndsAt         time.Time `json:"ends_at"`
}

// Appointment statuses.
const (
	StatusBooked    = "booked"
	StatusCheckedIn = "checked_in"
	StatusCompleted = "completed"
	StatusCancelled = "cancelled"
	StatusNoShow    = "no_show"
)

// Appointment is a booked visit. Patient fields are empty in calendars of
// users who may not see that patient (the slot shows as busy).
type Appointment struct {
	ID               string    `json:"id"`
	PatientID        string    `json:"patient_id,omitempty"`
	PatientName      string    `json:"patient_name,omitempty"`
	PatientMRN       string    `json:"patient_mrn,omitempty"`
	PractitionerID   string    `json:"practitioner_id"`
	PractitionerName string    `json:"practitioner_name,omitempty"`
	ClinicID         string    `json:"clinic_id"`
	ClinicName       string    `json:"clinic_name,omitempty"`
	StartsAt         time.Time `json:"starts_at"`
	EndsAt           time.Time `json:"ends_at"`
	Status           string    `json:"status"`
	Reason           string    `json:"reason,omitempty"`
	CancelReason     string    `json:"cancel_reason,omitempty"`
	Version          int       `json:"version"`
	CreatedAt        time.Time `json:"created_at"`
	// QueueTicket is set by check-in.
	QueueTicket string `json:"queue_ticket,omitempty"`
	// ClinicLocation and the clinic's department (whose queue check-in
	// joins) are set for a single appointment (GET /appointments/{id}).
	ClinicLocation string `json:"clinic_location,omitempty"`
	DepartmentID   string `json:"department_id,omitempty"`
	DepartmentName string `json:"department_name,omitempty"`
}

// BookInput is the body of POST /api/v1/appointments. EndsAt defaults to
// one slot of the clinic.
type BookInput struct {
	PatientID      string     `json:"patient_id"`
	PractitionerID string     `json:"practitioner_id"`
	ClinicID       string     `json:"clinic_id"`
	StartsAt       time.Time  `json:"starts_at"`
	EndsAt         *time.Time `json:"ends_at,omitempty"`
	Reason         string     `json:"reason"`
}

// RescheduleInput is the body of POST /api/v1/appointments/{id}/reschedule.
// Practitioner and clinic default to the current ones.
type RescheduleInput struct {
	StartsAt       time.Time  `json:"starts_at"`
	EndsAt         *time.Time `json:"ends_at,omitempty"`
	PractitionerID string     `json:"practitioner_id,omitempty"`
	ClinicID       string     `json:"clinic_id,omitempty"`
}

// CancelInput is the body of POST /api/v1/appointments/{id}/cancel.
type CancelInput struct {
	Reason string `json:"reason"`
}

// Filter selects appointments for a calendar. From and To are required.
type Filter struct {
	From, To       time.Time
	PractitionerID *string
	ClinicID       *string
	PatientID      *string
	Status         *string
}

// PractitionerInput is the body of POST /api/v1/practitioners.
type PractitionerInput struct {
	UserID       string `json:"user_id"`
	DisplayName  string `json:"display_name"`
	DepartmentID string `json:"department_id"`
	Specialty    string `json:"specialty"`
}

// ClinicInput is the body of POST /api/v1/clinics.
type ClinicInput struct {
	DepartmentID string `json:"department_id"`
	Code         string `json:"code"`
	Name         string `json:"name"`
	Location     string `json:"location"`
	SlotMinutes  int    `json:"slot_minutes"`
}

// transitions are the allowed status changes.
var transitions = map[string][]string{
	StatusBooked:    {StatusCheckedIn, StatusCancelled, StatusNoShow},
	StatusCheckedIn: {StatusCompleted, StatusNoShow},
}

func allowed(from, to string) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}
