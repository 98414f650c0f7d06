package postgres

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// encodeUUIDs makes conn send google/uuid values as the 16 bytes they
// are. Left alone, pgx finds uuid.UUID's driver.Valuer, which formats the
// id as text for pgx to parse back: about 5% of the backend's CPU under
// patient reads, mostly the audit rows' actor and patient ids. (The
// adapter pgx's authors publish for this, pgx-google-uuid, is not
// available to this project's build.)
func encodeUUIDs(_ context.Context, conn *pgx.Conn) error {
	registerUUIDs(conn.TypeMap())
	return nil
}

func registerUUIDs(m *pgtype.Map) {
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{wrapUUID}, m.TryWrapEncodePlanFuncs...)
}

// wrapUUID encodes a uuid.UUID, or a pointer to one (a nullable column),
// as a pgtype.UUID.
func wrapUUID(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	switch value.(type) {
	case uuid.UUID, *uuid.UUID:
		return &uuidEncodePlan{}, pgtype.UUID{}, true // the next plan is chosen by type
	}
	return nil, nil, false
}

func asPgUUID(value any) pgtype.UUID {
	switch v := value.(type) {
	case uuid.UUID:
		return pgtype.UUID{Bytes: v, Valid: true}
	case *uuid.UUID:
		if v != nil {
			return pgtype.UUID{Bytes: *v, Valid: true}
		}
	}
	return pgtype.UUID{}
}

type uuidEncodePlan struct{ next pgtype.EncodePlan }

func (p *uuidEncodePlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *uuidEncodePlan) Encode(value any, buf []byte) ([]byte, error) {
	return p.next.Encode(asPgUUID(value), buf)
}
