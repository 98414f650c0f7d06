package loadgen

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"sync"

	"github.com/hospital-erp/hospital-erp/internal/admission"
	"github.com/hospital-erp/hospital-erp/internal/client"
)

// Read is a clinician opening patients' records: GET /api/v1/patients/{id}
// (demographics, identifiers, contacts), authorised, scope-checked and
// audited like every read, over a sample of patients.
type Read struct {
	C   *client.Client
	ids []string
	rng *mrand.Rand
	mu  sync.Mutex
}

// NewRead samples up to n patient ids, newest registrations first.
func NewRead(ctx context.Context, c *client.Client, n int, seed uint64) (*Read, error) {
	ids, err := patientIDs(ctx, c, n, "-created", nil)
	if err != nil {
		return nil, err
	}
	return &Read{C: c, ids: ids, rng: mrand.New(mrand.NewPCG(seed, 11))}, nil
}

// Name implements Scenario.
func (r *Read) Name() string { return "patient read" }

// Next implements Scenario.
func (r *Read) Next() Op {
	r.mu.Lock()
	id := r.ids[r.rng.IntN(len(r.ids))]
	r.mu.Unlock()
	return func(ctx context.Context) error {
		_, err := r.C.Discarding().Patient(ctx, id)
		return err
	}
}

// patientIDs pages through the registry in sort order, skipping skip.
func patientIDs(ctx context.Context, c *client.Client, n int, sort string, skip map[string]bool) ([]string, error) {
	var ids []string
	cursor := ""
	for len(ids) < n {
		page, err := c.SearchPatients(ctx, client.PatientSearch{Sort: sort, Limit: 200, Cursor: cursor})
		if err != nil {
			return nil, fmt.Errorf("load patients: %w", err)
		}
		for _, p := range page.Items {
			if !skip[p.ID] && len(ids) < n {
				ids = append(ids, p.ID)
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no patients to use")
	}
	return ids, nil
}

// Admit admits a patient into an available bed, one per request, each
// with an Idempotency-Key, distinct patients and beds (no request is
// refused by design; a 409 means the invariant fired). Cleanup discharges
// and cleans what was admitted, outside the measurement.
type Admit struct {
	C        *client.Client
	patients []string
	beds     []string
	mu       sync.Mutex
	next     int
	admitted []admission.Admission
	vacated  []string // beds left by transfers (Transfer), to be cleaned
}

// NewAdmit loads the available beds and as many patients who are not in
// hospital (at most max).
func NewAdmit(ctx context.Context, c *client.Client, max int) (*Admit, error) {
	board, err := c.BedBoard(ctx, client.BoardQuery{})
	if err != nil {
		return nil, fmt.Errorf("load beds: %w", err)
	}
	a := &Admit{C: c}
	inBed := map[string]bool{}
	for _, w := range board.Wards {
		for _, b := range w.Beds {
			switch {
			case b.Status == "available":
				a.beds = append(a.beds, b.ID)
			case b.Patient != nil:
				inBed[b.Patient.ID] = true
			}
		}
	}
	n := min(len(a.beds), max)
	if n == 0 {
		return nil, fmt.Errorf("no available beds: seed some with hospital-erp seed --beds N")
	}
	a.beds = a.beds[:n]
	if a.patients, err = patientIDs(ctx, c, n, "-created", inBed); err != nil {
		return nil, err
	}
	return a, nil
}

// Keep leaves the scenario at most n beds (and so admissions); the others
// stay free.
func (a *Admit) Keep(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.beds = a.beds[:max(0, min(n, len(a.beds)))]
}

// FirstBed is an available bed (the fan-out scenario changes it).
func (a *Admit) FirstBed() string { return a.beds[0] }

// Capacity is how many admissions the scenario can make.
func (a *Admit) Capacity() int { return min(len(a.beds), len(a.patients)) }

// Name implements Scenario.
func (a *Admit) Name() string { return "admission with bed assignment" }

// Next implements Scenario.
func (a *Admit) Next() Op {
	a.mu.Lock()
	i := a.next
	a.next++
	a.mu.Unlock()
	if i >= a.Capacity() {
		return func(context.Context) error { return fmt.Errorf("%w: %s", ErrExhausted, "out of free beds or patients") }
	}
	in := admission.AdmitInput{PatientID: a.patients[i], BedID: a.beds[i], Source: "emergency", Reason: "load test"}
	return func(ctx context.Context) error {
		adm, err := a.C.Admit(ctx, in, client.NewKey()) // decoded: Cleanup needs its id and bed
		if err == nil {
			a.mu.Lock()
			a.admitted = append(a.admitted, adm)
			a.mu.Unlock()
		}
		return err
	}
}

// Cleanup discharges every admission made and, with housekeeping (a user
// with bed.write; nil leaves the beds to be cleaned), cleans its bed and
// the beds transfers left, with
// workers concurrent requests, so the next run finds the beds free.
func (a *Admit) Cleanup(ctx context.Context, workers int, housekeeping *client.Client) error {
	work := make(chan admission.Admission)
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for adm := range work {
				_, err := a.C.Discharge(ctx, adm.ID, 0, admission.DischargeInput{Disposition: "home"}, "")
				if err == nil && housekeeping != nil {
					_, err = housekeeping.BedAction(ctx, adm.BedID, "clean")
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, adm := range a.admitted {
		work <- adm
	}
	close(work)
	wg.Wait()
	a.admitted = nil
	if housekeeping != nil {
		for _, bed := range a.vacated {
			if _, err := housekeeping.BedAction(ctx, bed, "clean"); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	a.vacated = nil
	return firstErr
}

// Login signs in with a username and password (argon2id verification,
// session row, audit row), then signs out again so sessions do not pile up.
type Login struct {
	C                  *client.Client
	Username, Password string
}

// Name implements Scenario.
func (l *Login) Name() string { return "sign-in" }

// Next implements Scenario.
func (l *Login) Next() Op {
	return func(ctx context.Context) error {
		tok, err := l.C.Login(ctx, l.Username, l.Password)
		if err != nil {
			return err
		}
		return l.C.WithToken(tok.AccessToken).Logout(ctx)
	}
}
