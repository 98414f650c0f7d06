package loadgen

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/appointment"
	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/demo"
	"github.com/hospital-erp/hospital-erp/internal/patient"
)

// Search is a receptionist looking for patients who exist: a third by
// surname alone, the rest by given name and surname, one in ten of those
// with two letters swapped (a typo). The names are those `hospital-erp
// seed` generated: the same generator with the same seed.
type Search struct {
	C     *client.Client
	names []dbgenName
	rng   *mrand.Rand
	mu    sync.Mutex
}

type dbgenName struct{ given, family string }

// NewSearch returns the search scenario for a database seeded with seed
// (`hospital-erp seed --seed`), sampling among its first population patients.
func NewSearch(c *client.Client, seed uint64, population int) *Search {
	gen := mrand.New(mrand.NewPCG(seed, 2)) // as runSeed
	s := &Search{C: c, rng: mrand.New(mrand.NewPCG(seed, 7))}
	for range population {
		p := demo.Patient(gen)
		s.names = append(s.names, dbgenName{given: strings.Fields(p.GivenNames)[0], family: p.FamilyName})
	}
	return s
}

// Name implements Scenario.
func (s *Search) Name() string { return "patient search" }

// Next implements Scenario.
func (s *Search) Next() Op {
	s.mu.Lock()
	p := s.names[s.rng.IntN(len(s.names))]
	var q string
	switch x := s.rng.IntN(30); {
	case x < 10:
		q = p.family
	case x < 28:
		q = p.given + " " + p.family
	default:
		q = swap(p.given, s.rng) + " " + p.family
	}
	s.mu.Unlock()
	return func(ctx context.Context) error {
		_, err := s.C.Discarding().SearchPatients(ctx, client.PatientSearch{Q: q, Limit: 20})
		return err
	}
}

func swap(w string, rng *mrand.Rand) string {
	r := []rune(w)
	if len(r) < 4 {
		return w
	}
	i := 1 + rng.IntN(len(r)-2)
	r[i], r[i+1] = r[i+1], r[i]
	return string(r)
}

// Book books appointments in free slots, one per request, each with an
// Idempotency-Key; a slot taken meanwhile (409) counts as an error.
type Book struct {
	C        *client.Client
	patients []string
	slots    []appointment.Slot
	mu       sync.Mutex
	next     int
	rng      *mrand.Rand
}

// NewBook loads free slots of the next days and some patients.
func NewBook(ctx context.Context, c *client.Client, days int, seed uint64) (*Book, error) {
	from := time.Now().UTC().Add(time.Hour)
	var slots []appointment.Slot
	for d := 0; d < days; d += 7 {
		s, err := c.Slots(ctx, "", "", from.AddDate(0, 0, d), from.AddDate(0, 0, min(d+7, days)))
		if err != nil {
			return nil, fmt.Errorf("load slots: %w", err)
		}
		slots = append(slots, s...)
	}
	page, err := c.SearchPatients(ctx, client.PatientSearch{Sort: "created", Limit: 200})
	if err != nil {
		return nil, fmt.Errorf("load patients: %w", err)
	}
	b := &Book{C: c, slots: slots, rng: mrand.New(mrand.NewPCG(seed, 9))}
	for _, p := range page.Items {
		b.patients = append(b.patients, p.ID)
	}
	if len(b.slots) == 0 || len(b.patients) == 0 {
		return nil, fmt.Errorf("no free slots or no patients to book")
	}
	b.rng.Shuffle(len(b.slots), func(i, j int) { b.slots[i], b.slots[j] = b.slots[j], b.slots[i] })
	return b, nil
}

// Name implements Scenario.
func (b *Book) Name() string { return "appointment booking" }

// Slots is how many free slots the scenario can book.
func (b *Book) Slots() int { return len(b.slots) }

// Next implements Scenario.
func (b *Book) Next() Op {
	b.mu.Lock()
	slot := b.slots[b.next%len(b.slots)]
	b.next++
	patient := b.patients[b.rng.IntN(len(b.patients))]
	b.mu.Unlock()
	in := appointment.BookInput{PatientID: patient, PractitionerID: slot.PractitionerID, ClinicID: slot.ClinicID,
		StartsAt: slot.StartsAt, Reason: "load test"}
	return func(ctx context.Context) error {
		_, err := b.C.Discarding().Book(ctx, in, client.NewKey())
		return err
	}
}

// Register is a receptionist registering a new patient: realistic names,
// birth dates and addresses from the seed's generator (a new stream each
// run: a run repeating the last one's people would register duplicates),
// each with an Idempotency-Key. Every registration runs the duplicate
// check first; a generated person who resembles a registered one closely
// enough (same birth date, a very similar name) is refused with 409, as at
// the desk, and counted.
type Register struct {
	C   *client.Client
	rng *mrand.Rand
	mu  sync.Mutex
}

// NewRegister returns the registration scenario.
func NewRegister(c *client.Client, seed uint64) *Register {
	return &Register{C: c, rng: mrand.New(mrand.NewPCG(seed, uint64(time.Now().UnixNano())))}
}

// Name implements Scenario.
func (r *Register) Name() string { return "patient registration" }

// Next implements Scenario.
func (r *Register) Next() Op {
	r.mu.Lock()
	p := demo.Patient(r.rng)
	r.mu.Unlock()
	in := patient.RegisterInput{Demographics: patient.Demographics{FamilyName: p.FamilyName, GivenNames: p.GivenNames,
		Sex: p.Sex, Phone: p.Phone, AddressLine: p.AddressLine, City: p.City, PostalCode: p.PostalCode,
		Country: p.Country, Language: p.Language}}
	if p.BirthDate != nil {
		in.BirthDate = p.BirthDate.Format(time.DateOnly)
	}
	return func(ctx context.Context) error {
		_, err := r.C.Discarding().RegisterPatient(client.WithIdempotencyKey(ctx, client.NewKey()), in)
		return err
	}
}
