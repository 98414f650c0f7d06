package loadgen

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/admission"
	"github.com/hospital-erp/hospital-erp/internal/client"
)

// CheckIn is a receptionist checking in patients as they arrive for their
// booked appointments: POST /api/v1/appointments/{id}/check-in (the
// appointment is checked in and the patient joins the department's queue,
// in one transaction, audited). Each appointment is checked in once, and
// each patient once per department.
type CheckIn struct {
	C    *client.Client
	ids  []string
	mu   sync.Mutex
	next int
}

// NewCheckIn loads the booked appointments of the next day, at most max.
func NewCheckIn(ctx context.Context, c *client.Client, max int) (*CheckIn, error) {
	now := time.Now()
	list, err := c.Appointments(ctx, client.AppointmentQuery{From: now, To: now.Add(24 * time.Hour), Status: "booked"})
	if err != nil {
		return nil, fmt.Errorf("load appointments: %w", err)
	}
	ci := &CheckIn{C: c}
	// A patient waits in a department's queue once: of several bookings of
	// one patient in one department that day (the booking scenario books
	// a sample of patients many times), only the first is checked in, as
	// the desk would refuse the others (409).
	queued := map[[2]string]bool{}
	for _, a := range list {
		k := [2]string{a.PatientID, a.DepartmentID}
		if len(ci.ids) < max && !queued[k] {
			queued[k] = true
			ci.ids = append(ci.ids, a.ID)
		}
	}
	if len(ci.ids) == 0 {
		return nil, fmt.Errorf("no booked appointments in the next day: seed some with hospital-erp seed --practitioners N --future-days N")
	}
	return ci, nil
}

// Capacity is how many check-ins the scenario can make.
func (ci *CheckIn) Capacity() int { return len(ci.ids) }

// Name implements Scenario.
func (ci *CheckIn) Name() string { return "appointment check-in" }

// Next implements Scenario.
func (ci *CheckIn) Next() Op {
	ci.mu.Lock()
	i := ci.next
	ci.next++
	ci.mu.Unlock()
	if i >= len(ci.ids) {
		return func(context.Context) error { return fmt.Errorf("%w: %s", ErrExhausted, "out of booked appointments") }
	}
	return func(ctx context.Context) error {
		_, err := ci.C.Discarding().AppointmentCommand(ctx, ci.ids[i], "check-in")
		return err
	}
}

// Transfer is a bed manager moving admitted patients to other beds:
// POST /api/v1/admissions/{id}/transfer, each admission of an Admit run
// once, to a bed that was free when the scenario was made. The admissions
// move with it, so Admit.Cleanup still discharges them.
type Transfer struct {
	C     *client.Client
	admit *Admit
	beds  []string
	mu    sync.Mutex
	next  int
}

// NewTransfer prepares transfers of what admit admitted (run it first) to
// available beds that admit did not use.
func NewTransfer(ctx context.Context, c *client.Client, admit *Admit) (*Transfer, error) {
	board, err := c.BedBoard(ctx, client.BoardQuery{})
	if err != nil {
		return nil, fmt.Errorf("load beds: %w", err)
	}
	used := map[string]bool{}
	for _, b := range admit.beds {
		used[b] = true
	}
	t := &Transfer{C: c, admit: admit}
	for _, w := range board.Wards {
		for _, b := range w.Beds {
			if b.Status == "available" && !used[b.ID] {
				t.beds = append(t.beds, b.ID)
			}
		}
	}
	if t.Capacity() == 0 {
		return nil, fmt.Errorf("nothing to transfer: %d admissions, %d other free beds", len(admit.admitted), len(t.beds))
	}
	return t, nil
}

// Capacity is how many transfers the scenario can make.
func (t *Transfer) Capacity() int {
	t.admit.mu.Lock()
	defer t.admit.mu.Unlock()
	return min(len(t.admit.admitted), len(t.beds))
}

// Name implements Scenario.
func (t *Transfer) Name() string { return "transfer to another bed" }

// Next implements Scenario.
func (t *Transfer) Next() Op {
	t.mu.Lock()
	i := t.next
	t.next++
	t.mu.Unlock()
	if i >= t.Capacity() {
		return func(context.Context) error {
			return fmt.Errorf("%w: %s", ErrExhausted, "out of admissions or free beds")
		}
	}
	t.admit.mu.Lock()
	adm := t.admit.admitted[i]
	t.admit.mu.Unlock()
	return func(ctx context.Context) error {
		moved, err := t.C.Transfer(ctx, adm.ID, adm.Version, admission.TransferInput{BedID: t.beds[i]}, client.NewKey())
		if err == nil {
			t.admit.mu.Lock()
			t.admit.admitted[i] = moved // Cleanup discharges it from where it is now
			t.admit.vacated = append(t.admit.vacated, adm.BedID)
			t.admit.mu.Unlock()
		}
		return err
	}
}
