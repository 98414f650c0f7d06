// Package admission is admission, transfer and discharge (ADT): commands
// that move a patient into a bed, between beds and wards, and out of the
// hospital. The database keeps the invariants (one active admission per
// patient, one patient per bed, only available beds, a history row for
// every change, bed states that follow); this package gives the reasons
// and the rules around them.
package admission

import "time"

// Sources of an admission.
var Sources = []string{"appointment", "emergency", "direct"}

// Dispositions of a discharge.
var Dispositions = []string{"home", "transfer_out", "deceased", "against_advice"}

// Admission is a stay in the hospital.
type Admission struct {
	ID               string     `json:"id"`
	PatientID        string     `json:"patient_id"`
	PatientName      string     `json:"patient_name,omitempty"`
	PatientMRN       string     `json:"patient_mrn,omitempty"`
	BedID            string     `json:"bed_id"`
	BedCode          string     `json:"bed_code,omitempty"`
	WardID           string     `json:"ward_id"`
	WardName         string     `json:"ward_name,omitempty"`
	Source           string     `json:"source"`
	AppointmentID    string     `json:"appointment_id,omitempty"`
	AdmittingUserID  string     `json:"admitting_user_id,omitempty"`
	Reason           string     `json:"reason"`
	ExpectedDays     *int       `json:"expected_days,omitempty"`
	Status           string     `json:"status"` // active, discharged, cancelled
	AdmittedAt       time.Time  `json:"admitted_at"`
	EndedAt          *time.Time `json:"ended_at,omitempty"`
	Disposition      string     `json:"disposition,omitempty"`
	DischargeSummary string     `json:"discharge_summary,omitempty"`
	CancelReason     string     `json:"cancel_reason,omitempty"`
	Version          int        `json:"version"`
	History          []Event    `json:"history,omitempty"`
}

// Event is one row of an admission's history.
type Event struct {
	Event     string `json:"event"` // admitted, transferred, discharged, cancelled
	FromBedID string `json:"from_bed_id,omitempty"`
	ToBedID   string `json:"to_bed_id,omitempty"`
	// The beds' codes and wards, so that a page can say "from A-01B on
	// Medical Ward A" without reading every bed.
	FromBedCode  string    `json:"from_bed_code,omitempty"`
	FromWardName string    `json:"from_ward_name,omitempty"`
	ToBedCode    string    `json:"to_bed_code,omitempty"`
	ToWardName   string    `json:"to_ward_name,omitempty"`
	OccurredAt   time.Time `json:"occurred_at"`
	ActorName    string    `json:"actor_name,omitempty"`
}

// AdmitInput is the body of POST /api/v1/admissions.
type AdmitInput struct {
	PatientID       string `json:"patient_id"`
	BedID           string `json:"bed_id"`
	Source          string `json:"source"`
	AppointmentID   string `json:"appointment_id,omitempty"`
	AdmittingUserID string `json:"admitting_user_id,omitempty"`
	Reason          string `json:"reason"`
	ExpectedDays    *int   `json:"expected_days,omitempty"`
}

// TransferInput is the body of POST /api/v1/admissions/{id}/transfer.
type TransferInput struct {
	BedID string `json:"bed_id"`
}

// DischargeInput is the body of POST /api/v1/admissions/{id}/discharge.
type DischargeInput struct {
	Disposition string `json:"disposition"`
	Summary     string `json:"summary"`
}

// CancelInput is the body of POST /api/v1/admissions/{id}/cancel.
type CancelInput struct {
	Reason string `json:"reason"`
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
