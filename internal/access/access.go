// Package access decides whether the acting user may see a particular
// patient ("object-level" authorization), in one place that every module's
// service calls, and runs emergency access ("break the glass").
//
// Physicians and nurses (identity.CareScoped) see a patient only through a
// care relationship — one of their wards, their department, or themselves —
// or an unexpired emergency grant. The rule itself is the SQL function
// patient_in_scope, so the check and the scoped lists cannot disagree.
package access

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/idempotency"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// Scope restricts patient lists for a scoped actor. All is true for roles
// that see every patient.
type Scope struct {
	All        bool
	User       *uuid.UUID
	Wards      []uuid.UUID
	Department *uuid.UUID
}

// Checker is the one object-level authorization mechanism.
type Checker struct {
	db       *postgres.DB
	grantTTL time.Duration
	now      hospital.Clock
	granted  func()
}

// NewChecker returns the checker. grantTTL is how long an emergency grant
// lasts; granted is called for each grant (metrics).
func NewChecker(db *postgres.DB, grantTTL time.Duration, now hospital.Clock, granted func()) *Checker {
	if granted == nil {
		granted = func() {}
	}
	return &Checker{db: db, grantTTL: grantTTL, now: now, granted: granted}
}

// ScopeOf returns the list scope of the actor in ctx.
func ScopeOf(ctx context.Context) Scope {
	a := hospital.ActorFrom(ctx)
	if a == nil || !identity.CareScoped[a.Role] {
		return Scope{All: true}
	}
	s := Scope{}
	if id, err := uuid.Parse(a.UserID); err == nil {
		s.User = &id
	}
	for _, w := range a.WardIDs {
		if id, err := uuid.Parse(w); err == nil {
			s.Wards = append(s.Wards, id)
		}
	}
	if s.Wards == nil {
		s.Wards = []uuid.UUID{}
	}
	if id, err := uuid.Parse(a.DepartmentID); err == nil {
		s.Department = &id
	}
	return s
}

// Patient checks that the actor in ctx may see patient for action, using q
// (the caller's transaction). A refusal is audited, in a transaction of its
// own since the caller's will roll back, and returned as EFORBIDDEN.
func (c *Checker) Patient(ctx context.Context, q *dbgen.Queries, patient uuid.UUID, action string) error {
	s := ScopeOf(ctx)
	if s.All {
		return nil
	}
	in, err := q.PatientInScope(ctx, dbgen.PatientInScopeParams{PatientID: patient, UserID: *s.User, WardIds: s.Wards,
		DepartmentID: s.Department})
	if err != nil {
		return postgres.Translate(err)
	}
	if in {
		return nil
	}
	_ = audit.Record(ctx, c.db, audit.Entry{Action: action, ResourceType: "patient", ResourceID: patient.String(),
		PatientID: &patient, Outcome: audit.Denied, Details: map[string]any{"reason": "no care relationship"}})
	msg := "This patient is not under your care (ward, department or care team)."
	if a := hospital.ActorFrom(ctx); a.Can(identity.PermEmergencyAccess) {
		msg += " In an emergency you can request emergency access, giving a reason."
	}
	return hospital.Errorf(hospital.EFORBIDDEN, "%s", msg)
}

// Assign puts a patient in the care of a ward, a department or a user,
// inside the caller's transaction (admissions and appointments call it).
func (c *Checker) Assign(ctx context.Context, q *dbgen.Queries, patient uuid.UUID, ward, department, user *uuid.UUID, reason string) (uuid.UUID, error) {
	row, err := q.CareAssign(ctx, dbgen.CareAssignParams{PatientID: patient, WardID: ward, DepartmentID: department, UserID: user, Reason: reason})
	if err != nil {
		return uuid.Nil, postgres.Translate(err)
	}
	return row.ID, nil
}

// EndAssignment ends a care relationship.
func (c *Checker) EndAssignment(ctx context.Context, q *dbgen.Queries, id uuid.UUID) error {
	return postgres.Translate(q.CareEnd(ctx, id))
}

// Grant is an emergency access grant.
type Grant struct {
	ID          string     `json:"id"`
	UserID      string     `json:"user_id"`
	Username    string     `json:"username,omitempty"`
	DisplayName string     `json:"display_name,omitempty"`
	Role        string     `json:"role,omitempty"`
	PatientID   string     `json:"patient_id"`
	PatientMRN  string     `json:"patient_mrn,omitempty"`
	Reason      string     `json:"reason"`
	GrantedAt   time.Time  `json:"granted_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	ReviewedAt  *time.Time `json:"reviewed_at,omitempty"`
	ReviewNote  string     `json:"review_note,omitempty"`
}

// GrantRequest is the body of POST /api/v1/patients/{id}/emergency-access.
type GrantRequest struct {
	Reason string `json:"reason"`
}

// ReviewRequest is the body of POST /api/v1/emergency-access/{id}/review.
type ReviewRequest struct {
	Note string `json:"note"`
}

// GrantEmergency opens patient to the caller for the grant period. The
// reason is required; the grant is audited as its own action and counted.
// Returns EFORBIDDEN without patient.emergency_access, ENOTFOUND for an
// unknown patient, EINVALID for a missing reason.
func (c *Checker) GrantEmergency(ctx context.Context, patientID string, in GrantRequest) (Grant, error) {
	actor, err := hospital.Require(ctx, identity.PermEmergencyAccess)
	if err != nil {
		return Grant{}, err
	}
	pid, err := uuid.Parse(patientID)
	if err != nil {
		return Grant{}, hospital.Errorf(hospital.ENOTFOUND, "No patient has this id.")
	}
	reason := strings.TrimSpace(in.Reason)
	if n := len([]rune(reason)); n < 10 || n > 500 {
		return Grant{}, &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.",
			Fields: map[string]string{"reason": "explain the emergency in 10 to 500 characters"}}
	}
	uid, _ := uuid.Parse(actor.UserID)
	var g Grant
	replayed, err := idempotency.Do(ctx, c.db, &g, func(q *dbgen.Queries) error {
		row, err := q.EmergencyGrant(ctx, dbgen.EmergencyGrantParams{UserID: uid, PatientID: pid, Reason: reason,
			ExpiresAt: c.now().Add(c.grantTTL)})
		if err != nil {
			return err
		}
		g = Grant{ID: row.ID.String(), UserID: actor.UserID, PatientID: pid.String(), Reason: row.Reason,
			GrantedAt: row.GrantedAt, ExpiresAt: row.ExpiresAt}
		return audit.Write(ctx, q, audit.Entry{Action: "patient.emergency_access", ResourceType: "emergency_access",
			ResourceID: g.ID, PatientID: &pid, Details: map[string]any{"reason": reason, "expires_at": row.ExpiresAt}})
	})
	if hospital.ErrorCode(err) == hospital.EINVALID { // foreign key: no such patient
		return Grant{}, hospital.Errorf(hospital.ENOTFOUND, "No patient has this id.")
	}
	if err != nil {
		return Grant{}, err
	}
	if !replayed {
		c.granted()
	}
	return g, nil
}

// ListGrants returns emergency grants, newest first, for review. Returns
// EFORBIDDEN without emergency_access.review.
func (c *Checker) ListGrants(ctx context.Context, unreviewed *bool, before *time.Time, limit int) ([]Grant, error) {
	if _, err := hospital.Require(ctx, identity.PermEmergencyReview); err != nil {
		return nil, err
	}
	rows, err := c.db.Queries().EmergencyList(ctx, dbgen.EmergencyListParams{Unreviewed: unreviewed, Before: before, Lim: int32(limit)})
	if err != nil {
		return nil, postgres.Translate(err)
	}
	out := make([]Grant, len(rows))
	for i, r := range rows {
		out[i] = Grant{ID: r.ID.String(), UserID: r.UserID.String(), Username: r.Username, DisplayName: r.DisplayName,
			Role: r.Role, PatientID: r.PatientID.String(), PatientMRN: r.Mrn, Reason: r.Reason, GrantedAt: r.GrantedAt,
			ExpiresAt: r.ExpiresAt, ReviewedAt: r.ReviewedAt, ReviewNote: r.ReviewNote}
	}
	return out, nil
}

// Review marks a grant reviewed. Returns ENOTFOUND for an unknown or
// already reviewed grant.
func (c *Checker) Review(ctx context.Context, id string, in ReviewRequest) error {
	actor, err := hospital.Require(ctx, identity.PermEmergencyReview)
	if err != nil {
		return err
	}
	gid, err := uuid.Parse(id)
	if err != nil {
		return hospital.Errorf(hospital.ENOTFOUND, "No such grant.")
	}
	if len(in.Note) > 500 {
		return &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.", Fields: map[string]string{"note": "is too long"}}
	}
	uid, _ := uuid.Parse(actor.UserID)
	_, err = idempotency.Do(ctx, c.db, &struct{}{}, func(q *dbgen.Queries) error {
		row, err := q.EmergencyReview(ctx, dbgen.EmergencyReviewParams{ID: gid, ReviewedBy: &uid, ReviewNote: strings.TrimSpace(in.Note)})
		if err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: "emergency_access.review", ResourceType: "emergency_access",
			ResourceID: id, PatientID: &row.PatientID})
	})
	if hospital.ErrorCode(err) == hospital.ENOTFOUND {
		return hospital.Errorf(hospital.ENOTFOUND, "No such grant, or it was already reviewed.")
	}
	return err
}
