// Package queue is the walk-in queue of a department: checked-in patients
// wait with a ticket number, staff call the next one, and every screen's
// queue board updates live.
package queue

import (
	"context"
	"fmt"
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
)

// Topic is the event topic of queue changes. Events carry the department,
// the ticket and the status, never a name.
const Topic = "queue"

// Entry is one patient in a department's queue.
type Entry struct {
	ID            string     `json:"id"`
	DepartmentID  string     `json:"department_id"`
	Ticket        string     `json:"ticket"`
	Status        string     `json:"status"` // waiting, called, done, left
	PatientID     string     `json:"patient_id,omitempty"`
	PatientName   string     `json:"patient_name,omitempty"`
	PatientMRN    string     `json:"patient_mrn,omitempty"`
	AppointmentID string     `json:"appointment_id,omitempty"`
	CheckedInAt   time.Time  `json:"checked_in_at"`
	CalledAt      *time.Time `json:"called_at,omitempty"`
	CallPoint     string     `json:"call_point,omitempty"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
}

// Board is a department's queue as the screens show it.
type Board struct {
	DepartmentID string  `json:"department_id"`
	Waiting      int     `json:"waiting"`
	Entries      []Entry `json:"entries"`
}

// WalkIn is the body of POST /api/v1/departments/{id}/queue.
type WalkIn struct {
	PatientID string `json:"patient_id"`
}

// CallNext is the body of POST /api/v1/departments/{id}/queue/call-next.
type CallNext struct {
	// CallPoint is where the patient should go ("Room 3", "Desk B").
	CallPoint string `json:"call_point"`
}

// Publisher is the part of the event bus the service uses.
type Publisher interface {
	Publish(ctx context.Context, topic, typ string, data any) error
}

// PatientChecker checks a patient exists and is in the actor's scope.
type PatientChecker interface {
	Exists(ctx context.Context, q *dbgen.Queries, patient uuid.UUID, action string) error
}

// Observer receives queue events for metrics; nil functions are skipped.
type Observer struct {
	Called func(departmentID string, waited time.Duration) // a patient was called after waiting this long
}

// Service runs the queues.
type Service struct {
	db       *postgres.DB
	events   Publisher
	patients PatientChecker
	loc      *time.Location
	now      hospital.Clock
	obs      Observer
}

// NewService wires the service. loc is the hospital's time zone (ticket
// numbers restart at local midnight).
func NewService(db *postgres.DB, events Publisher, patients PatientChecker, loc *time.Location, now hospital.Clock, obs Observer) *Service {
	return &Service{db: db, events: events, patients: patients, loc: loc, now: now, obs: obs}
}

// Enqueue puts a patient into a department's queue inside q (check-in of
// an appointment calls it). Returns ECONFLICT when the patient is already
// waiting there.
func (s *Service) Enqueue(ctx context.Context, q *dbgen.Queries, department, patient uuid.UUID, appointment *uuid.UUID) (Entry, error) {
	day := s.now().In(s.loc)
	n, err := q.QueueNextTicket(ctx, dbgen.QueueNextTicketParams{DepartmentID: department,
		Day: time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)})
	if err != nil {
		return Entry{}, postgres.Translate(err)
	}
	row, err := q.QueueAdd(ctx, dbgen.QueueAddParams{DepartmentID: department, PatientID: patient, AppointmentID: appointment,
		Ticket: fmt.Sprintf("%03d", n)})
	if err != nil {
		if err = postgres.Translate(err); hospital.ErrorCode(err) == hospital.ECONFLICT {
			return Entry{}, hospital.Wrap(hospital.ECONFLICT, err, "This patient is already in this department's queue.")
		}
		return Entry{}, err
	}
	pid := patient
	if err := audit.Write(ctx, q, audit.Entry{Action: "queue.check_in", ResourceType: "queue_entry", ResourceID: row.ID.String(),
		PatientID: &pid, Details: map[string]any{"ticket": row.Ticket}}); err != nil {
		return Entry{}, err
	}
	return fromRow(row), nil
}

// Published announces a queue change after commit.
func (s *Service) Published(ctx context.Context, e Entry, typ string) {
	_ = s.events.Publish(ctx, Topic, typ, map[string]string{"department_id": e.DepartmentID, "ticket": e.Ticket,
		"status": e.Status, "call_point": e.CallPoint})
}

// AddWalkIn checks a patient without an appointment into a department's
// queue. Returns ENOTFOUND, ECONFLICT when already queued, EFORBIDDEN
// without appointment.write.
func (s *Service) AddWalkIn(ctx context.Context, departmentID string, in WalkIn) (Entry, error) {
	if _, err := hospital.Require(ctx, identity.PermAppointmentWrite); err != nil {
		return Entry{}, err
	}
	dept, err := uuid.Parse(departmentID)
	if err != nil {
		return Entry{}, hospital.Errorf(hospital.ENOTFOUND, "No department has this id.")
	}
	pid, err := uuid.Parse(in.PatientID)
	if err != nil {
		return Entry{}, &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.", Fields: map[string]string{"patient_id": "must be a patient id"}}
	}
	var e Entry
	replayed, err := idempotency.Do(ctx, s.db, &e, func(q *dbgen.Queries) error {
		if err := s.patients.Exists(ctx, q, pid, "queue.check_in"); err != nil {
			return err
		}
		e, err = s.Enqueue(ctx, q, dept, pid, nil)
		return err
	})
	if hospital.ErrorCode(err) == hospital.EINVALID { // foreign key: unknown department
		return Entry{}, hospital.Errorf(hospital.ENOTFOUND, "No department has this id.")
	}
	if err != nil {
		return Entry{}, err
	}
	if !replayed {
		s.Published(ctx, e, "queue.checked_in")
	}
	return e, nil
}

// CallNextPatient calls the longest-waiting patient of a department to
// in.CallPoint. Two desks calling at once get different patients. The
// entry names the patient as the board does (for users who may read
// patients). Returns ENOTFOUND when nobody is waiting.
func (s *Service) CallNextPatient(ctx context.Context, departmentID string, in CallNext) (Entry, error) {
	actor, err := hospital.Require(ctx, identity.PermAppointmentWrite)
	if err != nil {
		return Entry{}, err
	}
	dept, err := uuid.Parse(departmentID)
	if err != nil {
		return Entry{}, hospital.Errorf(hospital.ENOTFOUND, "No department has this id.")
	}
	in.CallPoint = strings.TrimSpace(in.CallPoint)
	if len(in.CallPoint) > 60 {
		return Entry{}, &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.", Fields: map[string]string{"call_point": "is too long"}}
	}
	uid, _ := uuid.Parse(actor.UserID)
	var e Entry
	replayed, err := idempotency.Do(ctx, s.db, &e, func(q *dbgen.Queries) error {
		row, err := q.QueueCallNext(ctx, dbgen.QueueCallNextParams{CalledBy: &uid, CallPoint: in.CallPoint, DepartmentID: dept})
		if err != nil {
			if hospital.ErrorCode(postgres.Translate(err)) == hospital.ENOTFOUND {
				return hospital.Errorf(hospital.ENOTFOUND, "Nobody is waiting in this queue.")
			}
			return err
		}
		e = fromRow(dbgen.QueueEntry{ID: row.ID, DepartmentID: row.DepartmentID, PatientID: row.PatientID, AppointmentID: row.AppointmentID,
			Ticket: row.Ticket, Status: row.Status, CheckedInAt: row.CheckedInAt, CalledAt: row.CalledAt, CalledBy: row.CalledBy,
			CallPoint: row.CallPoint, FinishedAt: row.FinishedAt})
		withPatient(&e, actor, row.FamilyName, row.GivenNames, row.Mrn)
		return audit.Write(ctx, q, audit.Entry{Action: "queue.call", ResourceType: "queue_entry", ResourceID: e.ID,
			PatientID: &row.PatientID, Details: map[string]any{"ticket": e.Ticket, "call_point": e.CallPoint}})
	})
	if err != nil {
		return Entry{}, err
	}
	if !replayed {
		s.Published(ctx, e, "queue.called")
		if s.obs.Called != nil && e.CalledAt != nil {
			s.obs.Called(e.DepartmentID, e.CalledAt.Sub(e.CheckedInAt))
		}
	}
	return e, nil
}

// Finish marks an entry done (seen) or left (gone without being seen).
func (s *Service) Finish(ctx context.Context, entryID, status string) (Entry, error) {
	if _, err := hospital.Require(ctx, identity.PermAppointmentWrite); err != nil {
		return Entry{}, err
	}
	id, err := uuid.Parse(entryID)
	if err != nil {
		return Entry{}, hospital.Errorf(hospital.ENOTFOUND, "No such queue entry.")
	}
	var e Entry
	replayed, err := idempotency.Do(ctx, s.db, &e, func(q *dbgen.Queries) error {
		row, err := q.QueueFinish(ctx, dbgen.QueueFinishParams{ID: id, Status: status})
		if err != nil {
			if hospital.ErrorCode(postgres.Translate(err)) == hospital.ENOTFOUND {
				if _, gerr := q.QueueGet(ctx, id); gerr == nil {
					return hospital.Errorf(hospital.ECONFLICT, "This patient has already left the queue.")
				}
				return hospital.Errorf(hospital.ENOTFOUND, "No such queue entry.")
			}
			return err
		}
		e = fromRow(row)
		return audit.Write(ctx, q, audit.Entry{Action: "queue." + status, ResourceType: "queue_entry", ResourceID: e.ID,
			PatientID: &row.PatientID})
	})
	if err != nil {
		return Entry{}, err
	}
	if !replayed {
		s.Published(ctx, e, "queue."+status)
	}
	return e, nil
}

// Board returns a department's queue. Names and MRNs are included only for
// users who may read patients and, for care-scoped roles, only for the
// patients in their care (like the bed board); a waiting-room screen signed
// in with a role without patient.read shows tickets only.
func (s *Service) Board(ctx context.Context, departmentID string) (Board, error) {
	actor, err := hospital.Require(ctx, identity.PermAppointmentRead)
	if err != nil {
		return Board{}, err
	}
	dept, err := uuid.Parse(departmentID)
	if err != nil {
		return Board{}, hospital.Errorf(hospital.ENOTFOUND, "No department has this id.")
	}
	scope := access.ScopeOf(ctx)
	wards := scope.Wards
	if wards == nil {
		wards = []uuid.UUID{}
	}
	rows, err := s.db.Queries().QueueBoard(ctx, dbgen.QueueBoardParams{DepartmentID: dept, ScopeUser: scope.User,
		ScopeWards: wards, ScopeDepartment: scope.Department})
	if err != nil {
		return Board{}, postgres.Translate(err)
	}
	b := Board{DepartmentID: dept.String(), Entries: []Entry{}}
	for _, r := range rows {
		e := fromRow(dbgen.QueueEntry{ID: r.ID, DepartmentID: r.DepartmentID, PatientID: r.PatientID, AppointmentID: r.AppointmentID,
			Ticket: r.Ticket, Status: r.Status, CheckedInAt: r.CheckedInAt, CalledAt: r.CalledAt, CallPoint: r.CallPoint,
			FinishedAt: r.FinishedAt})
		if r.Visible {
			withPatient(&e, actor, r.FamilyName, r.GivenNames, r.Mrn)
		} else {
			e.PatientID = ""
		}
		if e.Status == "waiting" {
			b.Waiting++
		}
		b.Entries = append(b.Entries, e)
	}
	return b, nil
}

// withPatient names the entry's patient for users who may read patients,
// and leaves out even the id for those who may not.
func withPatient(e *Entry, actor *hospital.Actor, family, given, mrn string) {
	if actor.Can(identity.PermPatientRead) {
		e.PatientName = strings.ToUpper(family) + ", " + given
		e.PatientMRN = mrn
	} else {
		e.PatientID = ""
	}
}

func fromRow(r dbgen.QueueEntry) Entry {
	e := Entry{ID: r.ID.String(), DepartmentID: r.DepartmentID.String(), Ticket: r.Ticket, Status: r.Status,
		PatientID: r.PatientID.String(), CheckedInAt: r.CheckedInAt, CalledAt: r.CalledAt, CallPoint: r.CallPoint,
		FinishedAt: r.FinishedAt}
	if r.AppointmentID != nil {
		e.AppointmentID = r.AppointmentID.String()
	}
	return e
}
