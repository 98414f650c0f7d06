package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hospital-erp/hospital-erp/internal/access"
	"github.com/hospital-erp/hospital-erp/internal/client"
)

const (
	// grantListLimit is how many grants the review page lists.
	grantListLimit = 200
	// maxReviewNote is the longest review note the backend accepts.
	maxReviewNote = 500
)

// GrantListPage lists emergency access grants for review.
type GrantListPage struct {
	Layout
	// Show is "unreviewed" (the default) or "all".
	Show    string
	Tabs    []NavItem
	Summary []SummaryItem
	Grants  []GrantRow
	Limit   int
}

// GrantRow is one grant with its review form.
type GrantRow struct {
	access.Grant
	RoleName  string
	GrantedAt string
	ExpiresAt string
	Reviewed  string
	// Active: the grant has not expired yet.
	Active bool
	// NoteID is the id of the row's note field; Note and NoteError what
	// was typed and what was wrong with it.
	NoteID    string
	Note      string
	NoteError string
}

func grantListURL(show string) string {
	if show == "all" {
		return "/emergency-access?show=all"
	}
	return "/emergency-access"
}

func (s *Server) handleGrantList(w http.ResponseWriter, r *http.Request) error {
	return s.renderGrantList(w, r, r.URL.Query().Get("show"), http.StatusOK, "", "", "")
}

// renderGrantList renders the list; failedID, note and noteErr put an
// error on one row's review form.
func (s *Server) renderGrantList(w http.ResponseWriter, r *http.Request, show string, status int, failedID, note, noteErr string) error {
	if show != "all" {
		show = "unreviewed"
	}
	var unreviewed *bool
	if show == "unreviewed" {
		t := true
		unreviewed = &t
	}
	var grants []access.Grant
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		grants, err = api.EmergencyGrants(ctx, unreviewed, grantListLimit)
		return err
	})
	if err != nil {
		return err
	}
	p := &GrantListPage{
		Layout: Layout{Title: "Emergency access review", Area: "Emergency access review", Nav: "emergency"},
		Show:   show,
		Limit:  grantListLimit,
		Tabs: []NavItem{
			{Href: grantListURL("unreviewed"), Label: "Not yet reviewed", Current: show == "unreviewed"},
			{Href: grantListURL("all"), Label: "All", Current: show == "all"},
		},
	}
	now := s.now()
	for i, g := range grants {
		row := GrantRow{Grant: g, RoleName: roleName(g.Role), GrantedAt: formatDateTime(g.GrantedAt, s.loc),
			ExpiresAt: formatDateTime(g.ExpiresAt, s.loc), Active: g.ExpiresAt.After(now), NoteID: "note-" + strconv.Itoa(i)}
		if g.ReviewedAt != nil {
			row.Reviewed = formatDateTime(*g.ReviewedAt, s.loc)
		}
		if g.ID == failedID {
			row.Note, row.NoteError = note, noteErr
			p.Summary = []SummaryItem{{Text: noteErr, Href: "#" + row.NoteID}}
		}
		p.Grants = append(p.Grants, row)
	}
	if len(p.Summary) > 0 {
		p.Title = "Error: " + p.Title
	}
	return s.render(w, r, status, "emergency_review", p)
}

// handleGrantReview marks a grant reviewed, with an optional note.
func (s *Server) handleGrantReview(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	show := r.PostFormValue("show")
	note := strings.TrimSpace(r.PostFormValue("note"))
	if utf8.RuneCountInString(note) > maxReviewNote {
		return s.renderGrantList(w, r, show, http.StatusBadRequest, id, note, "The note can be at most 500 characters")
	}
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error { return api.ReviewEmergencyGrant(ctx, id, note) })
	var ae *client.Error
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		return s.renderGrantList(w, r, show, http.StatusBadRequest, id, note,
			fieldMessage("Note", orDefault(ae.Errors["note"], "could not be saved")))
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		s.setFlash(w, Flash{Kind: "error", Message: "That grant was already reviewed, or no longer exists."})
	case err != nil:
		return err
	default:
		s.setFlash(w, Flash{Kind: "success", Message: "Marked as reviewed."})
	}
	http.Redirect(w, r, grantListURL(show)+"#grants", http.StatusSeeOther)
	return nil
}
