package appointment

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/access"
	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/idempotency"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
	"github.com/hospital-erp/hospital-erp/internal/queue"
)

// Topic is the event topic of appointment changes (ids and times only).
const Topic = "appointments"

// Publisher is the part of the event bus the service uses.
type Publisher interface {
	Publish(ctx context.Context, topic, typ string, data any) error
}

// PatientChecker checks a patient exists, is active and in scope.
type PatientChecker interface {
	Exists(ctx context.Context, q *dbgen.Queries, patient uuid.UUID, action string) error
}

// Service schedules appointments.
type Service struct {
	db       *postgres.DB
	patients PatientChecker
	access   *access.Checker
	queue    *queue.Service
	events   Publisher
	reads    audit.Recorder // group-commits the audit rows of reads
	loc      *time.Location
	now      hospital.Clock
}

// NewService wires the service. reads records the audit rows of reads
// (audit.Batcher); changes write theirs in their own transaction. loc is
// the hospital's time zone, in which availability rules are written.
func NewService(db *postgres.DB, patients PatientChecker, ac *access.Checker, qs *queue.Service, events Publisher, reads audit.Recorder,
	loc *time.Location, now hospital.Clock) *Service {
	return &Service{db: db, patients: patients, access: ac, queue: qs, events: events, reads: reads, loc: loc, now: now}
}

var errDoubleBooked = hospital.Errorf(hospital.ECONFLICT, "This time is already booked for this practitioner. Choose another slot.")

// Book books an appointment in a free slot of the practitioner at the
// clinic. With an Idempotency-Key, a repeated request returns the first
// appointment (replayed true). Returns ECONFLICT when the time is taken or
// outside the practitioner's availability, EINVALID for bad input or a
// time in the past, ENOTFOUND for an unknown patient, practitioner or clinic.
func (s *Service) Book(ctx context.Context, in BookInput) (Appointment, bool, error) {
	actor, err := hospital.Require(ctx, identity.PermAppointmentWrite)
	if err != nil {
		return Appointment{}, false, err
	}
	var v hospital.Validation
	pid, err := uuid.Parse(in.PatientID)
	v.Check(err == nil, "patient_id", "must be a patient id")
	prid, err := uuid.Parse(in.PractitionerID)
	v.Check(err == nil, "practitioner_id", "must be a practitioner id")
	cid, err := uuid.Parse(in.ClinicID)
	v.Check(err == nil, "clinic_id", "must be a clinic id")
	v.Check(!in.StartsAt.IsZero(), "starts_at", "is required")
	v.Check(in.StartsAt.IsZero() || !in.StartsAt.Before(s.now().Add(-time.Minute)), "starts_at", "is in the past")
	in.Reason = strings.TrimSpace(in.Reason)
	v.Check(len(in.Reason) <= 500, "reason", "is too long")
	if err := v.Err(); err != nil {
		return Appointment{}, false, err
	}
	by, _ := uuid.Parse(actor.UserID)
	a, replayed, err := idempotency.Run(ctx, s.db, func(q *dbgen.Queries) (Appointment, error) {
		// A user who sees only the patients in their care is refused a
		// patient outside it before anything is written.
		if !access.ScopeOf(ctx).All {
			if err := s.patients.Exists(ctx, q, pid, "appointment.book"); err != nil {
				return Appointment{}, err
			}
		}
		row, err := q.AppointmentBook(ctx, dbgen.AppointmentBookParams{PatientID: pid, PractitionerID: prid, ClinicID: cid,
			StartsAt: in.StartsAt, EndsAt: in.EndsAt, Tz: s.loc.String(), Reason: in.Reason, CreatedBy: &by})
		switch {
		case postgres.Constraint(err) == "appointments_no_double_booking":
			return Appointment{}, errDoubleBooked
		case hospital.ErrorCode(postgres.Translate(err)) == hospital.ENOTFOUND:
			return Appointment{}, s.refusal(ctx, q, pid, prid, cid, in.StartsAt, in.EndsAt)
		case err != nil:
			return Appointment{}, err
		}
		a := fromRow(row)
		return a, audit.Write(ctx, q, audit.Entry{Action: "appointment.book", ResourceType: "appointment", ResourceID: a.ID,
			PatientID: &pid, Details: map[string]any{"starts_at": a.StartsAt, "practitioner_id": a.PractitionerID}})
	})
	if err != nil {
		return Appointment{}, false, err
	}
	if !replayed {
		s.publish(ctx, a, "appointment.booked")
	}
	return a, replayed, nil
}

// refusal says why AppointmentBook booked nothing, checking in the order
// a user fixes things: the patient (unknown, merged, outside the actor's
// care), then the practitioner, the clinic, the times and the availability.
func (s *Service) refusal(ctx context.Context, q *dbgen.Queries, pid, prid, cid uuid.UUID, starts time.Time, ends *time.Time) error {
	if err := s.patients.Exists(ctx, q, pid, "appointment.book"); err != nil {
		return err
	}
	if _, err := s.checkSlot(ctx, q, prid, cid, starts, ends); err != nil {
		return err
	}
	// Everything passes now: the availability changed meanwhile.
	return hospital.Errorf(hospital.ECONFLICT, "The practitioner is not available at this time in this clinic.")
}

// checkSlot checks, in one query, that the practitioner and the clinic are
// active and that the practitioner works in the clinic for the whole of
// [starts, ends) with no exception blocking it; ends defaults to the
// clinic's slot length. Returns ENOTFOUND, EINVALID or ECONFLICT.
func (s *Service) checkSlot(ctx context.Context, q *dbgen.Queries, prid, cid uuid.UUID, starts time.Time, ends *time.Time) (dbgen.SlotCheckRow, error) {
	c, err := q.SlotCheck(ctx, dbgen.SlotCheckParams{PractitionerID: prid, ClinicID: cid, StartsAt: starts, EndsAt: ends, Tz: s.loc.String()})
	switch {
	case err != nil:
		return c, postgres.Translate(err)
	case !c.PractitionerFound:
		return c, hospital.Errorf(hospital.ENOTFOUND, "No active practitioner has this id.")
	case !c.ClinicFound:
		return c, hospital.Errorf(hospital.ENOTFOUND, "No active clinic has this id.")
	case !c.EndsAt.After(starts) || c.EndsAt.Sub(starts) > 8*time.Hour:
		return c, invalid("ends_at", "must be after starts_at, at most 8 hours later")
	case !c.Available:
		return c, hospital.Errorf(hospital.ECONFLICT, "The practitioner is not available at this time in this clinic.")
	}
	return c, nil
}

// Get returns one appointment with the names of its practitioner, clinic
// and department, and the patient's name and MRN for users who may read
// patients. Audited. Returns ENOTFOUND, EFORBIDDEN outside the actor's care.
func (s *Service) Get(ctx context.Context, id string) (Appointment, error) {
	actor, err := hospital.Require(ctx, identity.PermAppointmentRead)
	if err != nil {
		return Appointment{}, err
	}
	aid, err := uuid.Parse(id)
	if err != nil {
		return Appointment{}, hospital.Errorf(hospital.ENOTFOUND, "No appointment has this id.")
	}
	var a Appointment
	var pid uuid.UUID
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		row, err := q.AppointmentGet(ctx, aid)
		if err != nil {
			if hospital.ErrorCode(postgres.Translate(err)) == hospital.ENOTFOUND {
				return hospital.Errorf(hospital.ENOTFOUND, "No appointment has this id.")
			}
			return err
		}
		if err := s.access.Patient(ctx, q, row.Appointment.PatientID, "appointment.read"); err != nil {
			return err
		}
		a, pid = fromRow(row.Appointment), row.Appointment.PatientID
		a.PractitionerName, a.ClinicName, a.ClinicLocation = row.PractitionerName, row.ClinicName, row.ClinicLocation
		a.DepartmentID, a.DepartmentName = row.DepartmentID.String(), row.DepartmentName
		if actor.Can(identity.PermPatientRead) {
			a.PatientName = strings.ToUpper(row.FamilyName) + ", " + row.GivenNames
			a.PatientMRN = row.Mrn
		}
		return nil
	})
	if err != nil {
		return Appointment{}, err
	}
	if err := s.reads.Record(ctx, audit.Entry{Action: "appointment.read", ResourceType: "appointment", ResourceID: a.ID,
		PatientID: &pid}); err != nil {
		return Appointment{}, err
	}
	return a, nil
}

// List returns the appointments of a calendar: a practitioner's, a
// clinic's or a patient's, in [From, To) (at most 31 days; for one
// patient's appointments alone, two years: the patient's page shows the
// year back and the year ahead in one read). For scoped
// users, appointments of patients outside their care show as busy without
// the patient. The listing is audited.
func (s *Service) List(ctx context.Context, f Filter) ([]Appointment, error) {
	if _, err := hospital.Require(ctx, identity.PermAppointmentRead); err != nil {
		return nil, err
	}
	span := maxSlotRange
	if f.PatientID != nil && f.PractitionerID == nil && f.ClinicID == nil {
		span = maxPatientListRange
	}
	if !f.To.After(f.From) || f.To.Sub(f.From) > span {
		return nil, invalid("to", "must be after from, at most 31 days later (731 for one patient's appointments)")
	}
	var v hospital.Validation
	params := dbgen.AppointmentListParams{FromTime: f.From, ToTime: f.To, Status: f.Status}
	for _, p := range []struct {
		field string
		in    *string
		out   **uuid.UUID
	}{{"practitioner_id", f.PractitionerID, &params.PractitionerID}, {"clinic_id", f.ClinicID, &params.ClinicID},
		{"patient_id", f.PatientID, &params.PatientID}} {
		if p.in != nil {
			id, err := uuid.Parse(*p.in)
			v.Check(err == nil, p.field, "must be an id")
			*p.out = &id
		}
	}
	if f.Status != nil {
		st := *f.Status
		v.Check(st == StatusBooked || st == StatusCheckedIn || st == StatusCompleted || st == StatusCancelled || st == StatusNoShow,
			"status", "must be booked, checked_in, completed, cancelled or no_show")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	scope := access.ScopeOf(ctx)
	params.ScopeUser, params.ScopeWards, params.ScopeDepartment = scope.User, scope.Wards, scope.Department
	if params.ScopeWards == nil {
		params.ScopeWards = []uuid.UUID{}
	}
	var out []Appointment
	err := s.db.InTx(ctx, func(q *dbgen.Queries) error {
		if params.PatientID != nil {
			if err := s.access.Patient(ctx, q, *params.PatientID, "appointment.list"); err != nil {
				return err
			}
		}
		rows, err := q.AppointmentList(ctx, params)
		if err != nil {
			return err
		}
		out = make([]Appointment, 0, len(rows))
		for _, r := range rows {
			a := fromRow(dbgen.Appointment{ID: r.ID, PatientID: r.PatientID, PractitionerID: r.PractitionerID, ClinicID: r.ClinicID,
				StartsAt: r.StartsAt, EndsAt: r.EndsAt, Status: r.Status, Reason: r.Reason, CancelReason: r.CancelReason,
				Version: r.Version, CreatedAt: r.CreatedAt})
			a.PractitionerName, a.ClinicName = r.PractitionerName, r.ClinicName
			if r.Visible {
				a.PatientName = strings.ToUpper(r.FamilyName) + ", " + r.GivenNames
				a.PatientMRN = r.Mrn
			} else {
				a.PatientID, a.Reason, a.CancelReason = "", "", ""
			}
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.reads.Record(ctx, audit.Entry{Action: "appointment.list", ResourceType: "appointment", PatientID: params.PatientID,
		Details: map[string]any{"count": len(out)}}); err != nil {
		return nil, err
	}
	return out, nil
}

// Reschedule moves an appointment to another time (and practitioner or
// clinic). version, when not 0, must be the current one. Returns
// ECONFLICT when the new time is taken or unavailable, or the appointment
// is no longer booked; EPRECONDITION for a stale version.
func (s *Service) Reschedule(ctx context.Context, id string, version int, in RescheduleInput) (Appointment, error) {
	if _, err := hospital.Require(ctx, identity.PermAppointmentWrite); err != nil {
		return Appointment{}, err
	}
	if in.StartsAt.IsZero() {
		return Appointment{}, invalid("starts_at", "is required")
	}
	if in.StartsAt.Before(s.now().Add(-time.Minute)) {
		return Appointment{}, invalid("starts_at", "is in the past")
	}
	a, _, err := s.change(ctx, id, version, "appointment.reschedule", func(q *dbgen.Queries, cur dbgen.Appointment) (dbgen.Appointment, error) {
		if cur.Status != StatusBooked {
			return cur, hospital.Errorf(hospital.ECONFLICT, "Only a booked appointment can be rescheduled (this one is %s).", cur.Status)
		}
		prid, cid := cur.PractitionerID, cur.ClinicID
		var err error
		if in.PractitionerID != "" {
			if prid, err = uuid.Parse(in.PractitionerID); err != nil {
				return cur, invalid("practitioner_id", "must be a practitioner id")
			}
		}
		if in.ClinicID != "" {
			if cid, err = uuid.Parse(in.ClinicID); err != nil {
				return cur, invalid("clinic_id", "must be a clinic id")
			}
		}
		slot, err := s.checkSlot(ctx, q, prid, cid, in.StartsAt, in.EndsAt)
		if err != nil {
			return cur, err
		}
		if err := q.AppointmentLockPractitioner(ctx, prid); err != nil {
			return cur, err
		}
		row, err := q.AppointmentReschedule(ctx, dbgen.AppointmentRescheduleParams{ID: cur.ID, StartsAt: in.StartsAt, EndsAt: slot.EndsAt,
			PractitionerID: prid, ClinicID: cid})
		if err != nil && hospital.ErrorCode(postgres.Translate(err)) == hospital.ECONFLICT {
			return cur, errDoubleBooked
		}
		return row, err
	})
	return a, err
}

// Cancel cancels a booked appointment, giving a reason; the slot frees up.
func (s *Service) Cancel(ctx context.Context, id string, version int, in CancelInput) (Appointment, error) {
	reason := strings.TrimSpace(in.Reason)
	if reason == "" || len(reason) > 500 {
		return Appointment{}, invalid("reason", "is required (at most 500 characters)")
	}
	return s.setStatus(ctx, id, version, StatusCancelled, reason)
}

// CheckIn marks the patient arrived and puts them in the clinic
// department's queue.
func (s *Service) CheckIn(ctx context.Context, id string, version int) (Appointment, error) {
	return s.setStatus(ctx, id, version, StatusCheckedIn, "")
}

// NoShow marks that the patient did not come.
func (s *Service) NoShow(ctx context.Context, id string, version int) (Appointment, error) {
	return s.setStatus(ctx, id, version, StatusNoShow, "")
}

// Complete marks the visit done.
func (s *Service) Complete(ctx context.Context, id string, version int) (Appointment, error) {
	return s.setStatus(ctx, id, version, StatusCompleted, "")
}

func (s *Service) setStatus(ctx context.Context, id string, version int, status, reason string) (Appointment, error) {
	if _, err := hospital.Require(ctx, identity.PermAppointmentWrite); err != nil {
		return Appointment{}, err
	}
	var entry queue.Entry
	a, replayed, err := s.change(ctx, id, version, "appointment."+status, func(q *dbgen.Queries, cur dbgen.Appointment) (dbgen.Appointment, error) {
		if !allowed(cur.Status, status) {
			return cur, hospital.Errorf(hospital.ECONFLICT, "An appointment that is %s cannot become %s.", label(cur.Status), label(status))
		}
		if status == StatusCheckedIn {
			clinic, err := q.ClinicGet(ctx, cur.ClinicID)
			if err != nil {
				return cur, err
			}
			if entry, err = s.queue.Enqueue(ctx, q, clinic.DepartmentID, cur.PatientID, &cur.ID); err != nil {
				return cur, err
			}
		}
		return q.AppointmentSetStatus(ctx, dbgen.AppointmentSetStatusParams{ID: cur.ID, Status: status, CancelReason: reason})
	}, func(a *Appointment) { a.QueueTicket = entry.Ticket }) // stored with the key, so a replay shows the ticket too
	if err != nil {
		return Appointment{}, err
	}
	if entry.ID != "" && !replayed {
		s.queue.Published(ctx, entry, "queue.checked_in")
	}
	return a, nil
}

// change runs one state change on a locked appointment: version check,
// scope check, audit row, event after commit. finish completes the answer
// inside the transaction (it is stored with the Idempotency-Key). replayed
// reports an answer repeated from the key's stored response.
func (s *Service) change(ctx context.Context, id string, version int, action string, fn func(q *dbgen.Queries, cur dbgen.Appointment) (dbgen.Appointment, error),
	finish ...func(*Appointment)) (Appointment, bool, error) {
	aid, err := uuid.Parse(id)
	if err != nil {
		return Appointment{}, false, hospital.Errorf(hospital.ENOTFOUND, "No appointment has this id.")
	}
	a, replayed, err := idempotency.Run(ctx, s.db, func(q *dbgen.Queries) (Appointment, error) {
		cur, err := q.AppointmentGetForUpdate(ctx, aid)
		if err != nil {
			if hospital.ErrorCode(postgres.Translate(err)) == hospital.ENOTFOUND {
				return Appointment{}, hospital.Errorf(hospital.ENOTFOUND, "No appointment has this id.")
			}
			return Appointment{}, err
		}
		if version != 0 && int(cur.Version) != version {
			return Appointment{}, hospital.Errorf(hospital.EPRECONDITION, "This appointment was changed by someone else; reload it.")
		}
		if err := s.access.Patient(ctx, q, cur.PatientID, action); err != nil {
			return Appointment{}, err
		}
		row, err := fn(q, cur)
		if err != nil {
			return Appointment{}, err
		}
		a := fromRow(row)
		for _, f := range finish {
			f(&a)
		}
		return a, audit.Write(ctx, q, audit.Entry{Action: action, ResourceType: "appointment", ResourceID: a.ID, PatientID: &row.PatientID,
			Details: map[string]any{"status": a.Status, "starts_at": a.StartsAt}})
	})
	if err != nil {
		return Appointment{}, false, err
	}
	if !replayed {
		s.publish(ctx, a, "appointment.changed")
	}
	return a, replayed, nil
}

func (s *Service) publish(ctx context.Context, a Appointment, typ string) {
	_ = s.events.Publish(ctx, Topic, typ, map[string]any{"id": a.ID, "practitioner_id": a.PractitionerID,
		"clinic_id": a.ClinicID, "starts_at": a.StartsAt, "status": a.Status})
}

func label(status string) string { return strings.ReplaceAll(status, "_", "-") }

func fromRow(r dbgen.Appointment) Appointment {
	return Appointment{ID: r.ID.String(), PatientID: r.PatientID.String(), PractitionerID: r.PractitionerID.String(),
		ClinicID: r.ClinicID.String(), StartsAt: r.StartsAt.UTC(), EndsAt: r.EndsAt.UTC(), Status: r.Status, Reason: r.Reason,
		CancelReason: r.CancelReason, Version: int(r.Version), CreatedAt: r.CreatedAt}
}
