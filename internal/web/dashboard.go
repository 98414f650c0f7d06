package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

// DashboardPage is the start page: what the user's role needs first.
type DashboardPage struct {
	Layout
	Name string
	// ShowBeds and ShowPatients follow the user's permissions.
	ShowBeds     bool
	Beds         []StatusCount
	BedTotal     int
	BedBar       BedBar
	Wards        int
	BedsError    string
	ShowPatients bool
	Recent       []patient.Patient
	RecentError  string
	Actions      []Action
}

// Action is a quick-action link.
type Action struct {
	Href, Label, Description string
	Primary                  bool
}

// unavailableSection is shown in place of a section whose data the
// backend could not give; the rest of the dashboard still works.
const unavailableSection = "This information is temporarily unavailable. Try again in a few minutes."

func (s *Server) handleDashboardShow(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	p := &DashboardPage{
		Layout:       Layout{Title: "Dashboard", Area: "Dashboard", Nav: "dashboard"},
		Name:         sess.Name,
		ShowBeds:     sess.can(identity.PermBedRead),
		ShowPatients: sess.can(identity.PermPatientRead),
	}
	if sess.can(identity.PermPatientWrite) {
		p.Actions = append(p.Actions, Action{Href: "/patients/new", Label: "Register patient",
			Description: "Add a new patient and print their wristband.", Primary: true})
	}
	if p.ShowPatients {
		p.Actions = append(p.Actions, Action{Href: "/patients", Label: "Find a patient",
			Description: "Search the register by name, date of birth, MRN, identifier or phone."})
	}
	if sess.can(identity.PermAppointmentWrite) {
		p.Actions = append(p.Actions, Action{Href: "/appointments/book", Label: "Book an appointment",
			Description: "Find a free slot with a clinician or clinic and book it."})
	}
	if sess.can(identity.PermAppointmentRead) {
		p.Actions = append(p.Actions, Action{Href: "/appointments", Label: "Appointments",
			Description: "Day and week calendars per clinician and clinic; check patients in."},
			Action{Href: "/queue", Label: "Queue", Description: "Walk-in and check-in queues per department, live."})
	}
	if sess.can(identity.PermAdmissionWrite) {
		p.Actions = append(p.Actions, Action{Href: "/admissions/new", Label: "Admit a patient",
			Description: "Choose a free bed on any ward and admit the patient to it."})
	}
	if p.ShowBeds {
		p.Actions = append(p.Actions, Action{Href: "/beds", Label: "Bed board",
			Description: "See free, occupied and cleaning beds on every ward, live."})
	}
	if sess.can(identity.PermBedWrite) {
		p.Actions = append(p.Actions, Action{Href: "/housekeeping", Label: "Housekeeping",
			Description: "Beds waiting to be cleaned and beds out of service."})
	}
	if sess.can(identity.PermUserAdmin) {
		p.Actions = append(p.Actions, Action{Href: "/admin/users", Label: "Manage users",
			Description: "Add staff, change roles and wards, reset passwords and sign-in security."})
	}
	if sess.can(identity.PermEmergencyReview) {
		p.Actions = append(p.Actions, Action{Href: "/emergency-access", Label: "Review emergency access",
			Description: "Check each time a patient was opened outside the care team."})
	}
	if sess.can(identity.PermAuditRead) {
		p.Actions = append(p.Actions, Action{Href: "/audit", Label: "Audit trail",
			Description: "Who did what to which record, with CSV export and chain verification."})
	}

	if p.ShowBeds {
		var wards []ward.Ward
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			var err error
			wards, err = api.Wards(ctx)
			return err
		})
		if err := s.sectionError(r, err, &p.BedsError); err != nil {
			return err
		}
		var total ward.BedCounts
		for _, wd := range wards {
			total = addCounts(total, wd.Beds)
		}
		p.Wards, p.Beds, p.BedTotal, p.BedBar = len(wards), countsByStatus(total), total.Total, newBedBar(total)
	}
	if p.ShowPatients {
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			res, err := api.Patients(ctx, client.PatientQuery{Sort: "-created", Limit: 5})
			p.Recent = res.Items
			return err
		})
		if err := s.sectionError(r, err, &p.RecentError); err != nil {
			return err
		}
	}
	return s.render(w, r, http.StatusOK, "dashboard", p)
}

// sectionError lets a dashboard section fail alone: it notes the failure
// in msg and returns nil, except for an ended session, which ends the page.
func (s *Server) sectionError(r *http.Request, err error, msg *string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, errSessionEnded) {
		return err
	}
	s.log.Warn("dashboard section unavailable", "request_id", httpx.RequestID(r.Context()), "error", redact(err))
	*msg = unavailableSection
	return nil
}
