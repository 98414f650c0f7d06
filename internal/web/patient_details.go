package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/patient"
	"github.com/hospital-erp/hospital-erp/internal/queue"
)

// patientURL is the overview of patient id, at an anchor.
func patientURL(id, anchor string) string {
	u := "/patients/" + url.PathEscape(id)
	if anchor != "" {
		u += "#" + anchor
	}
	return u
}

// handleIdentifierAdd adds an identifier from the overview's form; errors
// come back on the overview with the typed values.
func (s *Server) handleIdentifierAdd(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	in := identifierFrom(r)
	errs := map[string]string{}
	if in.Type == "" {
		errs["identifier_type"] = "Select the type of identifier"
	}
	if in.System == "" {
		errs["identifier_system"] = "Enter who issued the identifier"
	}
	if in.Value == "" {
		errs["identifier_value"] = "Enter the identifier"
	}
	status := http.StatusBadRequest
	if len(errs) == 0 {
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			_, err := api.AddIdentifier(ctx, id, in)
			return err
		})
		var ae *client.Error
		switch {
		case err == nil:
			s.setFlash(w, Flash{Kind: "success", Message: "Identifier added."})
			http.Redirect(w, r, patientURL(id, "identifiers-title"), http.StatusSeeOther)
			return nil
		case errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusConflict):
			status = ae.Status
			errs = formErrors(ae.Errors, "identifier_", []string{"type", "system", "value"})
			if len(errs) == 0 {
				errs = map[string]string{"identifier_value": orDefault(ae.Detail, "could not be added")}
			}
		case errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusForbidden):
			return s.patientError(w, r, id, err)
		default:
			return err
		}
	}
	return s.renderPatientShow(w, r, status, id, patientFormState{identifier: in, identifierErrs: errs})
}

// handleIdentifierRemove deletes one identifier.
func (s *Server) handleIdentifierRemove(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		return api.RemoveIdentifier(ctx, id, r.PathValue("identifier"))
	})
	switch client.StatusOf(err) {
	case 0:
		if err != nil {
			return err
		}
		s.setFlash(w, Flash{Kind: "success", Message: "Identifier removed."})
	case http.StatusNotFound:
		s.setFlash(w, Flash{Kind: "error", Message: "That identifier was already removed."})
	default:
		return s.patientError(w, r, id, err)
	}
	http.Redirect(w, r, patientURL(id, "identifiers-title"), http.StatusSeeOther)
	return nil
}

func contactFrom(r *http.Request) patient.Contact {
	f := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	return patient.Contact{Relationship: f("contact_relationship"), Name: f("contact_name"), Phone: f("contact_phone"),
		Email: f("contact_email"), Address: f("contact_address")}
}

// handleContactAdd adds a next of kin or other contact.
func (s *Server) handleContactAdd(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	in := contactFrom(r)
	errs := map[string]string{}
	if in.Relationship == "" {
		errs["contact_relationship"] = "Select the relationship"
	}
	if in.Name == "" {
		errs["contact_name"] = "Enter the contact's name"
	}
	status := http.StatusBadRequest
	if len(errs) == 0 {
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			_, err := api.AddContact(ctx, id, in)
			return err
		})
		var ae *client.Error
		switch {
		case err == nil:
			s.setFlash(w, Flash{Kind: "success", Message: "Contact added."})
			http.Redirect(w, r, patientURL(id, "contacts-title"), http.StatusSeeOther)
			return nil
		case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
			errs = formErrors(ae.Errors, "contact_", []string{"relationship", "name", "phone", "email", "address"})
			if len(errs) == 0 {
				errs = map[string]string{"contact_name": orDefault(ae.Detail, "could not be added")}
			}
		case errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusForbidden):
			return s.patientError(w, r, id, err)
		default:
			return err
		}
	}
	return s.renderPatientShow(w, r, status, id, patientFormState{contact: in, contactErrs: errs})
}

// handleContactRemove deletes one contact.
func (s *Server) handleContactRemove(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		return api.RemoveContact(ctx, id, r.PathValue("contact"))
	})
	switch client.StatusOf(err) {
	case 0:
		if err != nil {
			return err
		}
		s.setFlash(w, Flash{Kind: "success", Message: "Contact removed."})
	case http.StatusNotFound:
		s.setFlash(w, Flash{Kind: "error", Message: "That contact was already removed."})
	default:
		return s.patientError(w, r, id, err)
	}
	http.Redirect(w, r, patientURL(id, "contacts-title"), http.StatusSeeOther)
	return nil
}

// handleWalkIn puts a patient without an appointment into a department's
// walk-in queue and shows the ticket.
func (s *Server) handleWalkIn(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	dept := strings.TrimSpace(r.PostFormValue("department_id"))
	if dept == "" {
		s.setFlash(w, Flash{Kind: "error", Message: "Select the department whose queue the patient joins."})
		http.Redirect(w, r, patientURL(id, "walk-in-title"), http.StatusSeeOther)
		return nil
	}
	var e queue.Entry
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		e, err = api.QueueWalkIn(ctx, dept, id)
		return err
	})
	var ae *client.Error
	switch {
	case err == nil:
		s.setFlash(w, Flash{Kind: "success", Message: "Added to the queue with ticket " + e.Ticket + "."})
		http.Redirect(w, r, queueURL(dept, false), http.StatusSeeOther)
		return nil
	case errors.As(err, &ae) && (ae.Status == http.StatusConflict || ae.Status == http.StatusBadRequest || ae.Status == http.StatusNotFound):
		s.setFlash(w, Flash{Kind: "error", Message: orDefault(ae.Detail, "The patient could not be added to the queue.")})
		http.Redirect(w, r, patientURL(id, "walk-in-title"), http.StatusSeeOther)
		return nil
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		return s.patientError(w, r, id, err)
	}
	return err
}
