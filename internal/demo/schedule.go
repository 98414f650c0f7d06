package demo

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

var clinics = []struct {
	dept, code, name, location  string
	slot                        int
	doctor, username, specialty string
}{
	{"MED", "MED-OPD", "General Medicine Clinic", "Outpatients, level 1, rooms 1-4", 15, "Dr. Amara Okafor", "dr.okafor", "General medicine"},
	{"MED", "CARD-OPD", "Cardiology Clinic", "Outpatients, level 1, rooms 5-6", 20, "Dr. Hiroshi Sato", "", "Cardiology"},
	{"PAED", "PAED-OPD", "Children's Clinic", "Children's outpatients, level 4", 15, "Dr. Lucía Romero", "", "Paediatrics"},
	{"SURG", "SURG-OPD", "Surgical Outpatients", "Outpatients, level 2", 20, "Dr. Eamon Byrne", "", "General surgery"},
}

// loadSchedule adds practitioners, clinics, weekday availability, a few
// days of appointments from now on (some of today's already checked in and
// queued), care relationships so the demo clinicians see their patients,
// and the demo nurse's ward.
func loadSchedule(ctx context.Context, db *postgres.DB, rng *mrand.Rand, dept map[string]string, users map[string]uuid.UUID, loc *time.Location, now time.Time) error {
	return db.InTx(ctx, func(q *dbgen.Queries) error {
		patients, err := q.PatientListByCreated(ctx, dbgen.PatientListByCreatedParams{Lim: 10000, ScopeWards: []uuid.UUID{}})
		if err != nil {
			return err
		}
		waiting := map[string]bool{}
		local := now.In(loc)
		today := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, time.UTC)
		for i, c := range clinics {
			deptID := uuid.MustParse(dept[c.dept])
			clinic, err := q.ClinicCreate(ctx, dbgen.ClinicCreateParams{DepartmentID: deptID, Code: c.code, Name: c.name,
				Location: c.location, SlotMinutes: int32(c.slot)})
			if err != nil {
				return err
			}
			var userID *uuid.UUID
			if id, ok := users[c.username]; ok {
				userID = &id
			}
			pr, err := q.PractitionerCreate(ctx, dbgen.PractitionerCreateParams{UserID: userID, DisplayName: c.doctor,
				DepartmentID: deptID, Specialty: c.specialty})
			if err != nil {
				return err
			}
			sessions := [][2]int{{9*60 + 0, 12*60 + 30}, {13*60 + 30, 17*60 + 0}}
			for day := 1; day <= 5; day++ {
				for _, sess := range sessions {
					if _, err := q.RuleCreate(ctx, dbgen.RuleCreateParams{PractitionerID: pr.ID, ClinicID: clinic.ID, Weekday: int32(day),
						StartTime: minutes(sess[0]), EndTime: minutes(sess[1]), ValidFrom: today.AddDate(0, 0, -30)}); err != nil {
						return err
					}
				}
			}
			// Book about 60% of the next three working days.
			queued := 0
			for d := 0; d < 5; d++ {
				day := today.AddDate(0, 0, d)
				if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
					continue
				}
				for _, sess := range sessions {
					for m := sess[0]; m+c.slot <= sess[1]; m += c.slot {
						if rng.IntN(10) >= 6 {
							continue
						}
						start := time.Date(day.Year(), day.Month(), day.Day(), m/60, m%60, 0, 0, loc)
						if start.Before(now) && d > 0 {
							continue
						}
						p := patients[rng.IntN(len(patients))]
						// One practitioner, one slot, one booking: no overlap can occur
						// (an error would abort the whole transaction).
						a, err := q.AppointmentCreate(ctx, dbgen.AppointmentCreateParams{PatientID: p.ID, PractitionerID: pr.ID,
							ClinicID: clinic.ID, StartsAt: start, EndsAt: start.Add(time.Duration(c.slot) * time.Minute),
							Reason: reasons[rng.IntN(len(reasons))]})
						if err != nil {
							return err
						}
						if userID != nil {
							if _, err := q.CareAssign(ctx, dbgen.CareAssignParams{PatientID: p.ID, UserID: userID, Reason: "appointment"}); err != nil {
								return err
							}
						}
						// The first few of today's morning are in the waiting room.
						if d == 0 && queued < 3+i && start.Hour() < 12 && !waiting[deptID.String()+p.ID.String()] {
							if err := checkIn(ctx, q, deptID, a, today, now); err != nil {
								return err
							}
							waiting[deptID.String()+p.ID.String()] = true
							queued++
						}
					}
				}
			}
		}
		// The demo nurse works on Medical Ward A (she sees its inpatients);
		// Internal Medicine cares for some outpatients, so its physicians see them.
		ward, err := wardByCode(ctx, q, "MED-A")
		if err != nil {
			return err
		}
		if nurse, ok := users["nurse.lindqvist"]; ok {
			if err := q.UserWardAdd(ctx, dbgen.UserWardAddParams{UserID: nurse, WardID: ward}); err != nil {
				return err
			}
		}
		med := uuid.MustParse(dept["MED"])
		for i := 0; i < 40 && i < len(patients); i++ {
			if _, err := q.CareAssign(ctx, dbgen.CareAssignParams{PatientID: patients[i].ID, DepartmentID: &med, Reason: "outpatient follow-up"}); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkIn queues the patient of a. Patients arrived five minutes apart in
// ticket order, the first 50 minutes before now (so up to ten per
// department arrived before now), and "call next" calls 001, 002, ... as
// it would have live.
func checkIn(ctx context.Context, q *dbgen.Queries, dept uuid.UUID, a dbgen.Appointment, today, now time.Time) error {
	n, err := q.QueueNextTicket(ctx, dbgen.QueueNextTicketParams{DepartmentID: dept, Day: today})
	if err != nil {
		return err
	}
	arrived := now.Add(time.Duration(5*(n-1)-50) * time.Minute)
	if _, err := q.QueueAddAt(ctx, dbgen.QueueAddAtParams{DepartmentID: dept, PatientID: a.PatientID, AppointmentID: &a.ID,
		Ticket: fmt.Sprintf("%03d", n), CheckedInAt: arrived}); err != nil {
		return err
	}
	_, err = q.AppointmentSetStatus(ctx, dbgen.AppointmentSetStatusParams{ID: a.ID, Status: "checked_in"})
	return err
}

func wardByCode(ctx context.Context, q *dbgen.Queries, code string) (uuid.UUID, error) {
	wards, err := q.WardList(ctx)
	if err != nil {
		return uuid.Nil, err
	}
	for _, w := range wards {
		if w.Code == code {
			return w.ID, nil
		}
	}
	return uuid.Nil, fmt.Errorf("no ward %s", code)
}

var reasons = []string{"Follow-up", "New referral", "Blood pressure review", "Medication review", "Post-operative check",
	"Chest pain follow-up", "Diabetes review", "Routine check", "Test results"}

func minutes(m int) pgtype.Time {
	return pgtype.Time{Microseconds: int64(m) * 60 * 1_000_000, Valid: true}
}
