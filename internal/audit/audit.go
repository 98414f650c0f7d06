// Package audit writes and reads the audit trail: one row per read or
// change of protected data (and per denied attempt), written in the same
// transaction as the change it records (reads: group-committed by the
// Batcher before the data is returned), hash-chained into sealed blocks in
// the background, verifiable end to end.
package audit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// Outcomes of an audited action.
const (
	Success = "success"
	Denied  = "denied"
	Error   = "error"
)

// Entry is one audited action. Details must not repeat patient data that
// the resource already identifies; they record what was done, not the record.
type Entry struct {
	Action       string // "patient.read", "patient.create", "auth.login" ...
	ResourceType string
	ResourceID   string
	PatientID    *uuid.UUID
	Outcome      string // Success when empty
	// ActorID and ActorRole override the actor from ctx (for logins,
	// before there is one).
	ActorID   *uuid.UUID
	ActorRole string
	Details   map[string]any
}

// Write inserts e using q, which must be the transaction doing the work.
// The actor, request id and client come from ctx.
func Write(ctx context.Context, q *dbgen.Queries, e Entry) error {
	p, err := params(ctx, e)
	if err != nil {
		return err
	}
	return q.AuditInsert(ctx, p)
}

// params is the row of e, with the actor, request id and client from ctx.
func params(ctx context.Context, e Entry) (dbgen.AuditInsertParams, error) {
	actor, role := e.ActorID, e.ActorRole
	if a := hospital.ActorFrom(ctx); a != nil {
		if actor == nil {
			if id, err := uuid.Parse(a.UserID); err == nil {
				actor = &id
			}
		}
		if role == "" {
			role = a.Role
		}
	}
	details := []byte("{}")
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return dbgen.AuditInsertParams{}, fmt.Errorf("audit details: %w", err)
		}
		details = b
	}
	outcome := e.Outcome
	if outcome == "" {
		outcome = Success
	}
	c := hospital.ClientFrom(ctx)
	return dbgen.AuditInsertParams{
		ActorID: actor, ActorRole: role, Action: e.Action, ResourceType: e.ResourceType, ResourceID: e.ResourceID,
		PatientID: e.PatientID, Outcome: outcome, RequestID: hospital.RequestIDFrom(ctx),
		ClientIp: hospital.Truncate(c.IP, 64), UserAgent: hospital.Truncate(c.UserAgent, 512), Details: details,
	}, nil
}

// Record writes e in a transaction of its own: for denied attempts, whose
// request transaction (if any) rolls back.
func Record(ctx context.Context, db *postgres.DB, e Entry) error {
	return db.InTx(context.WithoutCancel(ctx), func(q *dbgen.Queries) error { return Write(ctx, q, e) })
}
