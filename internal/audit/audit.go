// Package audit writes the audit trail: one row per read or change of
// protected data, in the same transaction as the work it records.
package audit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// Entry is one audited action. Details must not repeat patient data that
// the entity already identifies; it records what was done, not the record.
type Entry struct {
	Action     string // "patient.read", "patient.create", "auth.login" ...
	EntityType string
	EntityID   string
	PatientID  *uuid.UUID
	// ActorID overrides the actor from ctx (for logins, before there is one).
	ActorID *uuid.UUID
	Details map[string]any
}

// Write inserts e using q, which must be the transaction doing the work.
// The actor and request id come from ctx.
func Write(ctx context.Context, q *dbgen.Queries, e Entry) error {
	actor := e.ActorID
	if actor == nil {
		if a := hospital.ActorFrom(ctx); a != nil {
			if id, err := uuid.Parse(a.UserID); err == nil {
				actor = &id
			}
		}
	}
	details := []byte("{}")
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return fmt.Errorf("audit details: %w", err)
		}
		details = b
	}
	return q.AuditInsert(ctx, dbgen.AuditInsertParams{
		ActorID: actor, Action: e.Action, EntityType: e.EntityType, EntityID: e.EntityID,
		PatientID: e.PatientID, RequestID: hospital.RequestIDFrom(ctx), Details: details,
	})
}
