package postgres

import (
	"bytes"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// A uuid.UUID, a pointer to one (nil too) and a slice of them are sent as
// their 16 bytes, never through driver.Valuer's text.
func TestUUIDsEncodeAsBytes(t *testing.T) {
	m := pgtype.NewMap()
	registerUUIDs(m)
	u := uuid.MustParse("0195f3c4-7b1e-7a3c-9d2e-1f4a5b6c7d8e")

	for _, v := range []any{u, &u} {
		if plan := m.PlanEncode(pgtype.UUIDOID, pgtype.BinaryFormatCode, v); plan == nil {
			t.Fatalf("no plan for a %T", v)
		} else if _, ok := plan.(*uuidEncodePlan); !ok {
			t.Fatalf("a %T is encoded by %T", v, plan)
		}
	}
	if got, err := (&uuidEncodePlan{next: m.PlanEncode(pgtype.UUIDOID, pgtype.BinaryFormatCode, pgtype.UUID{})}).Encode((*uuid.UUID)(nil), nil); err != nil || got != nil {
		t.Errorf("the plan given a nil pointer: %x, %v; want NULL", got, err)
	}
	for name, v := range map[string]any{"value": u, "pointer": &u} {
		got, err := m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, v, nil)
		if err != nil || !bytes.Equal(got, u[:]) {
			t.Errorf("%s: %x, %v; want %x", name, got, err, u[:])
		}
	}
	if got, err := m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, (*uuid.UUID)(nil), nil); err != nil || got != nil {
		t.Errorf("nil pointer: %x, %v; want NULL", got, err)
	}
	got, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, []uuid.UUID{u, u}, nil)
	if err != nil || bytes.Count(got, u[:]) != 2 {
		t.Errorf("array: %x, %v", got, err)
	}
}
