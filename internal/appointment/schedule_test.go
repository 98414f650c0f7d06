package appointment

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

func TestBookedOverlaps(t *testing.T) {
	day := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return day.Add(time.Duration(min) * time.Minute) }
	pr, other := uuid.New(), uuid.New()
	// Out of order on purpose: 09:30-09:45, 09:00-09:15, 10:00-11:00.
	b := bookedByPractitioner([]dbgen.AppointmentsBookedRow{
		{PractitionerID: pr, StartsAt: at(30), EndsAt: at(45)},
		{PractitionerID: pr, StartsAt: at(0), EndsAt: at(15)},
		{PractitionerID: pr, StartsAt: at(60), EndsAt: at(120)},
	})
	for _, c := range []struct {
		who    uuid.UUID
		st, en int
		want   bool
	}{
		{pr, -15, 0, false},   // ends as the first begins
		{pr, 0, 15, true},     // the same slot
		{pr, 15, 30, false},   // between two
		{pr, 10, 20, true},    // across an end
		{pr, 25, 35, true},    // across a start
		{pr, 45, 60, false},   // between two, adjacent to both
		{pr, 70, 80, true},    // inside a long one
		{pr, 50, 130, true},   // around a long one
		{pr, 120, 135, false}, // after all
		{other, 0, 15, false}, // another practitioner is free
	} {
		if got := b.overlaps(c.who, at(c.st), at(c.en)); got != c.want {
			t.Errorf("overlaps(%d..%d) = %v, want %v", c.st, c.en, got, c.want)
		}
	}
}
