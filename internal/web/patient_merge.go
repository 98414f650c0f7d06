package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
)

// mergeSearchLimit is how many candidates a merge search lists.
const mergeSearchLimit = 10

// MergePage merges a duplicate record into the patient shown (the
// survivor). Without Merged it lists candidates: the backend's likely
// duplicates of this record and a search; with Merged it is the
// confirmation showing both records side by side.
type MergePage struct {
	Layout
	Survivor patient.Patient
	Q        string
	Searched bool
	// Likely are the backend's likely duplicates of the survivor.
	Likely     []DuplicateView
	Candidates []patient.Patient
	Merged     *patient.Patient
	Summary    []SummaryItem
	// SurvivorDetails and MergedDetails are the two records' details for
	// the side-by-side confirmation.
	SurvivorDetails []SummaryGroup
	MergedDetails   []SummaryGroup
}

func mergeURL(survivor, merged string) string {
	u := "/patients/" + url.PathEscape(survivor) + "/merge"
	if merged != "" {
		u += "?merged_id=" + url.QueryEscape(merged)
	}
	return u
}

// registerInputOf is a patient's demographics as a registration, to ask
// the backend for duplicates of an existing record.
func registerInputOf(pt patient.Patient) patient.RegisterInput {
	return patient.RegisterInput{Demographics: patientUpdateInput(pt, time.UTC).Demographics,
		Identifiers: pt.Identifiers, Contacts: []patient.Contact{}}
}

func (s *Server) handleMergeForm(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	survivor, err := s.loadPatient(w, r, id)
	if err != nil {
		return s.patientError(w, r, id, err)
	}
	if survivor.MergedInto != "" {
		return s.mergedRedirect(w, r, survivor)
	}
	if mid := r.URL.Query().Get("merged_id"); mid != "" {
		return s.renderMergeConfirm(w, r, http.StatusOK, survivor, mid, nil)
	}
	p := &MergePage{Layout: Layout{Title: "Merge a duplicate record", Area: "Patients", Nav: "patients"}, Survivor: survivor,
		Q: strings.TrimSpace(r.URL.Query().Get("q"))}
	if utf8.RuneCountInString(p.Q) > maxSearchLen {
		p.Q = string([]rune(p.Q)[:maxSearchLen])
	}
	// The likely duplicates need patient.write on the backend; without it
	// the search alone is offered.
	if sessionFrom(r.Context()).can(identity.PermPatientWrite) {
		var dups []patient.Duplicate
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			var err error
			dups, err = api.PatientDuplicates(ctx, registerInputOf(survivor))
			return err
		})
		if err := s.sectionError(r, err, new(string)); err != nil {
			return err
		}
		var likely []patient.Duplicate
		for _, d := range dups {
			if d.Patient.ID != survivor.ID && d.Patient.MergedInto == "" {
				likely = append(likely, d)
			}
		}
		p.Likely = newDuplicateViews(likely)
	}
	if p.Q != "" {
		p.Searched = true
		var found []patient.Patient
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			res, err := api.SearchPatients(ctx, client.PatientSearch{Q: p.Q, Limit: mergeSearchLimit})
			found = res.Items
			return err
		})
		if client.StatusOf(err) == http.StatusBadRequest {
			p.Summary = []SummaryItem{{Text: "The search could not be run. Check what you entered and try again.", Href: "#f-q"}}
			p.Title = "Error: " + p.Title
			return s.render(w, r, http.StatusBadRequest, "patient_merge", p)
		}
		if err != nil {
			return err
		}
		for _, c := range found {
			if c.ID != survivor.ID && c.MergedInto == "" {
				p.Candidates = append(p.Candidates, c)
			}
		}
	}
	return s.render(w, r, http.StatusOK, "patient_merge", p)
}

// renderMergeConfirm shows both records and asks to confirm.
func (s *Server) renderMergeConfirm(w http.ResponseWriter, r *http.Request, status int, survivor patient.Patient, mergedID string, summary []SummaryItem) error {
	if mergedID == survivor.ID {
		s.setFlash(w, Flash{Kind: "error", Message: "Choose another record: a record cannot be merged into itself."})
		http.Redirect(w, r, mergeURL(survivor.ID, ""), http.StatusSeeOther)
		return nil
	}
	merged, err := s.loadPatient(w, r, mergedID)
	if err != nil {
		return s.patientError(w, r, mergedID, err)
	}
	p := &MergePage{Layout: Layout{Title: "Confirm the merge", Area: "Patients", Nav: "patients"}, Survivor: survivor,
		Merged: &merged, Summary: summary, SurvivorDetails: prefixIDs("kept-", patientDetails(survivor, s.loc)),
		MergedDetails: prefixIDs("merged-", patientDetails(merged, s.loc))}
	if merged.MergedInto != "" && len(summary) == 0 {
		p.Summary = []SummaryItem{{Text: "That record was already merged into another; choose another record."}}
	}
	if len(p.Summary) > 0 {
		p.Title = "Error: " + p.Title
	}
	return s.render(w, r, status, "patient_merge", p)
}

// prefixIDs keeps the ids of two records' cards on one page apart.
func prefixIDs(prefix string, groups []SummaryGroup) []SummaryGroup {
	for i := range groups {
		groups[i].ID = prefix + groups[i].ID
	}
	return groups
}

// handleMerge merges merged_id into the patient of the URL after the
// confirmation, remembers the merge for its undo button and shows the
// record that was kept.
func (s *Server) handleMerge(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	mergedID := strings.TrimSpace(r.PostFormValue("merged_id"))
	if mergedID == "" {
		http.Redirect(w, r, mergeURL(id, ""), http.StatusSeeOther)
		return nil
	}
	if r.PostFormValue("confirm") != "yes" {
		// Not from the confirmation page: ask first.
		http.Redirect(w, r, mergeURL(id, mergedID), http.StatusSeeOther)
		return nil
	}
	var m patient.Merge
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		m, err = api.MergePatients(ctx, id, mergedID)
		return err
	})
	var ae *client.Error
	switch {
	case errors.As(err, &ae) && (ae.Status == http.StatusConflict || ae.Status == http.StatusBadRequest):
		survivor, lerr := s.loadPatient(w, r, id)
		if lerr != nil {
			return s.patientError(w, r, id, lerr)
		}
		msg := orDefault(ae.Detail, "The records could not be merged.")
		if m := ae.Errors["merged_id"]; m != "" {
			msg = fieldMessage("The record to merge", m)
		}
		return s.renderMergeConfirm(w, r, ae.Status, survivor, mergedID, []SummaryItem{{Text: msg}})
	case errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusForbidden):
		return s.patientError(w, r, id, err)
	case err != nil:
		return err
	}
	moved := 0
	for _, n := range m.Moved {
		moved += n
	}
	// The record's page names the merged record in its undo banner.
	msg := "The records were merged: " + plural(moved, "linked item") + " moved to this record."
	s.setFlash(w, Flash{Kind: "success", Message: msg + " You can undo the merge from this page."})
	http.Redirect(w, r, patientURL(m.SurvivorID, "merges"), http.StatusSeeOther)
	return nil
}

// handleMergeUndo undoes a merge and shows the record that was kept. The
// form names the record it was on (patient_id), to go back to when the
// merge cannot be undone.
func (s *Server) handleMergeUndo(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	back := "/patients"
	if pid, err := uuid.Parse(r.PostFormValue("patient_id")); err == nil {
		back = patientURL(pid.String(), "")
	}
	var m patient.Merge
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		m, err = api.UndoMerge(ctx, id)
		return err
	})
	var ae *client.Error
	switch {
	case err == nil:
		s.setFlash(w, Flash{Kind: "success", Message: "The merge was undone: the two records are separate again."})
		http.Redirect(w, r, patientURL(m.SurvivorID, ""), http.StatusSeeOther)
		return nil
	case errors.As(err, &ae) && (ae.Status == http.StatusConflict || ae.Status == http.StatusNotFound):
		s.setFlash(w, Flash{Kind: "error", Message: orDefault(ae.Detail, "This merge cannot be undone.")})
		http.Redirect(w, r, back, http.StatusSeeOther)
		return nil
	}
	return err
}
