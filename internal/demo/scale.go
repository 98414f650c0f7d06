package demo

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// Scale sizes the hospital-scale data `seed` adds next to the patients:
// outpatient practitioners with a year of appointments, and wards of beds
// for the admission benchmarks. Everything is deterministic for a seed.
type Scale struct {
	Practitioners int // each with a clinic and availability 08:00-18:00 every day
	PastDays      int // days of past appointments (about 70% of slots filled)
	FutureDays    int // days of booked future appointments (about 30% filled; the rest free to book)
	Beds          int // beds, in wards of 40 (10 rooms of 4), all available
	Progress      func(what string, done, total int)
}

// slotMinutes of the scale clinics: 60 slots a day per practitioner.
const slotMinutes = 10

// SeedScale adds the practitioners, clinics, rules, appointments and beds
// of s. Patients must be seeded first (appointments pick among them).
func SeedScale(ctx context.Context, db *postgres.DB, rng *mrand.Rand, loc *time.Location, s Scale) error {
	if s.Practitioners > 0 {
		if err := seedOutpatients(ctx, db, rng, loc, s); err != nil {
			return err
		}
	}
	if s.Beds > 0 {
		if err := seedBeds(ctx, db, s); err != nil {
			return err
		}
	}
	return nil
}

func seedOutpatients(ctx context.Context, db *postgres.DB, rng *mrand.Rand, loc *time.Location, s Scale) error {
	q := db.Queries()
	patients, err := q.SeedPatientIDs(ctx, 2_000_000)
	if err != nil {
		return postgres.Translate(err)
	}
	if len(patients) == 0 {
		return fmt.Errorf("seed patients before appointments")
	}
	tag := rng.Uint32() % 100000
	dept, err := q.DepartmentCreate(ctx, dbgen.DepartmentCreateParams{Code: fmt.Sprintf("OPD-%05d", tag), Name: "Outpatients (scale)", Kind: "clinical"})
	if err != nil {
		return postgres.Translate(err)
	}
	now := time.Now().In(loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	validFrom := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -s.PastDays)
	type doc struct{ pr, clinic uuid.UUID }
	docs := make([]doc, 0, s.Practitioners)
	for i := range s.Practitioners {
		specialty := specialties[i%len(specialties)]
		clinic, err := q.ClinicCreate(ctx, dbgen.ClinicCreateParams{DepartmentID: dept.ID, Code: fmt.Sprintf("SC-%05d-%04d", tag, i),
			Name: specialty + " clinic " + fmt.Sprint(i+1), Location: fmt.Sprintf("Outpatients, room %d", i+1), SlotMinutes: slotMinutes})
		if err != nil {
			return postgres.Translate(err)
		}
		given := givenNames(rng, rng.IntN(2) == 0)
		pr, err := q.PractitionerCreate(ctx, dbgen.PractitionerCreateParams{DisplayName: "Dr. " + given + " " + familyName(rng),
			DepartmentID: dept.ID, Specialty: specialty})
		if err != nil {
			return postgres.Translate(err)
		}
		for day := 1; day <= 7; day++ {
			if _, err := q.RuleCreate(ctx, dbgen.RuleCreateParams{PractitionerID: pr.ID, ClinicID: clinic.ID, Weekday: int32(day),
				StartTime: minutes(8 * 60), EndTime: minutes(18 * 60), ValidFrom: validFrom}); err != nil {
				return postgres.Translate(err)
			}
		}
		docs = append(docs, doc{pr.ID, clinic.ID})
	}
	// Appointments, a day at a time for every practitioner (one COPY each).
	perDay := (18 - 8) * 60 / slotMinutes
	total := s.PastDays + s.FutureDays
	for d := -s.PastDays; d < s.FutureDays; d++ {
		day := today.AddDate(0, 0, d)
		rows := make([]dbgen.SeedAppointmentCopyParams, 0, len(docs)*perDay)
		for _, dc := range docs {
			for slot := range perDay {
				start := day.Add(8*time.Hour + time.Duration(slot*slotMinutes)*time.Minute)
				fill := 70
				if !start.Before(now) {
					fill = 30
				}
				if rng.IntN(100) >= fill {
					continue
				}
				status, cancel := "booked", ""
				if start.Before(now) {
					switch x := rng.IntN(100); {
					case x < 88:
						status = "completed"
					case x < 95:
						status = "no_show"
					default:
						status, cancel = "cancelled", "Patient called to cancel"
					}
				}
				rows = append(rows, dbgen.SeedAppointmentCopyParams{PatientID: patients[rng.IntN(len(patients))], PractitionerID: dc.pr,
					ClinicID: dc.clinic, StartsAt: start, EndsAt: start.Add(slotMinutes * time.Minute), Status: status,
					Reason: reasonsOutpatient[rng.IntN(len(reasonsOutpatient))], CancelReason: cancel})
			}
		}
		if _, err := q.SeedAppointmentCopy(ctx, rows); err != nil {
			return fmt.Errorf("appointments of %s: %w", day.Format(time.DateOnly), postgres.Translate(err))
		}
		if s.Progress != nil {
			s.Progress("days of appointments", d+s.PastDays+1, total)
		}
	}
	return nil
}

func seedBeds(ctx context.Context, db *postgres.DB, s Scale) error {
	q := db.Queries()
	const perWard, perRoom = 40, 4
	wards := (s.Beds + perWard - 1) / perWard
	tag := strings.ToUpper(uuid.NewString()[:4])
	dept, err := q.DepartmentCreate(ctx, dbgen.DepartmentCreateParams{Code: "IPD-" + tag, Name: "Inpatients (scale)", Kind: "clinical"})
	if err != nil {
		return postgres.Translate(err)
	}
	made := 0
	for w := range wards {
		ward, err := q.WardCreate(ctx, dbgen.WardCreateParams{DepartmentID: dept.ID, Code: fmt.Sprintf("S%s-%04d", tag, w+1),
			Name: fmt.Sprintf("Scale ward %d", w+1), Specialty: specialties[w%len(specialties)], Floor: fmt.Sprint(1 + w%9)})
		if err != nil {
			return postgres.Translate(err)
		}
		var beds []dbgen.SeedBedCopyParams
		for r := 0; r < perWard/perRoom && made < s.Beds; r++ {
			room, err := q.RoomCreate(ctx, dbgen.RoomCreateParams{WardID: ward.ID, Code: fmt.Sprintf("%s-%02d", ward.Code, r+1)})
			if err != nil {
				return postgres.Translate(err)
			}
			for b := 0; b < perRoom && made < s.Beds; b++ {
				beds = append(beds, dbgen.SeedBedCopyParams{RoomID: room.ID, Code: fmt.Sprintf("%s%c", room.Code, 'A'+b), BedType: "general", Status: "available"})
				made++
			}
		}
		if _, err := q.SeedBedCopy(ctx, beds); err != nil {
			return postgres.Translate(err)
		}
		if s.Progress != nil {
			s.Progress("wards", w+1, wards)
		}
	}
	return nil
}

var specialties = []string{"Cardiology", "General medicine", "Orthopaedics", "Dermatology", "Neurology", "Gastroenterology",
	"Endocrinology", "Respiratory medicine", "Ophthalmology", "ENT"}

var reasonsOutpatient = []string{"Follow-up", "New referral", "Test results", "Medication review", "Post-operative check"}
