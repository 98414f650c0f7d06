package appointment

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/idempotency"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// maxSlotRange bounds one slot search.
const maxSlotRange = 31 * 24 * time.Hour

// maxPatientListRange is the longest period one patient's appointments
// are listed for: two years (a patient has few; the patient index bounds
// the read).
const maxPatientListRange = 731 * 24 * time.Hour

func invalid(field, msg string) error {
	return &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.", Fields: map[string]string{field: msg}}
}

func parseOptionalID(field, s string) (*uuid.UUID, error) {
	if s == "" {
		return nil, nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return nil, invalid(field, "must be an id")
	}
	return &id, nil
}

// Practitioners lists active practitioners (of a department when given).
func (s *Service) Practitioners(ctx context.Context, departmentID string) ([]Practitioner, error) {
	if _, err := hospital.Require(ctx, ""); err != nil {
		return nil, err
	}
	dept, err := parseOptionalID("department_id", departmentID)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Queries().PractitionerList(ctx, dept)
	if err != nil {
		return nil, postgres.Translate(err)
	}
	out := []Practitioner{}
	for _, r := range rows {
		p := Practitioner{ID: r.ID.String(), DisplayName: r.DisplayName, DepartmentID: r.DepartmentID.String(),
			DepartmentName: r.DepartmentName, Specialty: r.Specialty}
		if r.UserID != nil {
			p.UserID = r.UserID.String()
		}
		out = append(out, p)
	}
	return out, nil
}

// CreatePractitioner adds a bookable clinician. Returns EFORBIDDEN without
// staff.write, ECONFLICT when the user already is one.
func (s *Service) CreatePractitioner(ctx context.Context, in PractitionerInput) (Practitioner, error) {
	if _, err := hospital.Require(ctx, identity.PermStaffWrite); err != nil {
		return Practitioner{}, err
	}
	var v hospital.Validation
	in.DisplayName = strings.TrimSpace(in.DisplayName)
	v.Check(in.DisplayName != "" && len(in.DisplayName) <= 200, "display_name", "is required (at most 200 characters)")
	v.Check(len(in.Specialty) <= 100, "specialty", "is too long")
	user, err := parseOptionalID("user_id", in.UserID)
	if err != nil {
		return Practitioner{}, err
	}
	dept, err := uuid.Parse(in.DepartmentID)
	v.Check(err == nil, "department_id", "must be a department id")
	if err := v.Err(); err != nil {
		return Practitioner{}, err
	}
	var p Practitioner
	_, err = idempotency.Do(ctx, s.db, &p, func(q *dbgen.Queries) error {
		row, err := q.PractitionerCreate(ctx, dbgen.PractitionerCreateParams{UserID: user, DisplayName: in.DisplayName,
			DepartmentID: dept, Specialty: strings.TrimSpace(in.Specialty)})
		if err != nil {
			return err
		}
		p = Practitioner{ID: row.ID.String(), UserID: in.UserID, DisplayName: row.DisplayName, DepartmentID: dept.String(), Specialty: row.Specialty}
		return audit.Write(ctx, q, audit.Entry{Action: "practitioner.create", ResourceType: "practitioner", ResourceID: p.ID})
	})
	return p, err
}

// Clinics lists active clinics.
func (s *Service) Clinics(ctx context.Context) ([]Clinic, error) {
	if _, err := hospital.Require(ctx, ""); err != nil {
		return nil, err
	}
	rows, err := s.db.Queries().ClinicList(ctx)
	if err != nil {
		return nil, postgres.Translate(err)
	}
	out := []Clinic{}
	for _, r := range rows {
		out = append(out, Clinic{ID: r.ID.String(), DepartmentID: r.DepartmentID.String(), DepartmentName: r.DepartmentName,
			Code: r.Code, Name: r.Name, Location: r.Location, SlotMinutes: int(r.SlotMinutes)})
	}
	return out, nil
}

// CreateClinic adds a clinic. Returns EFORBIDDEN without facility.write.
func (s *Service) CreateClinic(ctx context.Context, in ClinicInput) (Clinic, error) {
	if _, err := hospital.Require(ctx, identity.PermFacilityWrite); err != nil {
		return Clinic{}, err
	}
	var v hospital.Validation
	in.Code = strings.ToUpper(strings.TrimSpace(in.Code))
	in.Name = strings.TrimSpace(in.Name)
	v.Check(in.Name != "" && len(in.Name) <= 200, "name", "is required (at most 200 characters)")
	v.Check(len(in.Code) >= 2 && len(in.Code) <= 16, "code", "must be 2-16 letters, digits or -")
	v.Check(in.SlotMinutes >= 5 && in.SlotMinutes <= 240, "slot_minutes", "must be from 5 to 240")
	dept, err := uuid.Parse(in.DepartmentID)
	v.Check(err == nil, "department_id", "must be a department id")
	if err := v.Err(); err != nil {
		return Clinic{}, err
	}
	var c Clinic
	_, err = idempotency.Do(ctx, s.db, &c, func(q *dbgen.Queries) error {
		row, err := q.ClinicCreate(ctx, dbgen.ClinicCreateParams{DepartmentID: dept, Code: in.Code, Name: in.Name,
			Location: strings.TrimSpace(in.Location), SlotMinutes: int32(in.SlotMinutes)})
		if err != nil {
			return err
		}
		c = Clinic{ID: row.ID.String(), DepartmentID: dept.String(), Code: row.Code, Name: row.Name, Location: row.Location,
			SlotMinutes: int(row.SlotMinutes)}
		return audit.Write(ctx, q, audit.Entry{Action: "clinic.create", ResourceType: "clinic", ResourceID: c.ID})
	})
	return c, err
}

// Rules lists a practitioner's weekly availability.
func (s *Service) Rules(ctx context.Context, practitionerID string) ([]Rule, error) {
	if _, err := hospital.Require(ctx, ""); err != nil {
		return nil, err
	}
	pid, err := uuid.Parse(practitionerID)
	if err != nil {
		return nil, hospital.Errorf(hospital.ENOTFOUND, "No practitioner has this id.")
	}
	rows, err := s.db.Queries().RulesForPractitioner(ctx, pid)
	if err != nil {
		return nil, postgres.Translate(err)
	}
	out := []Rule{}
	for _, r := range rows {
		out = append(out, ruleFromRow(r))
	}
	return out, nil
}

// AddRule adds weekly availability. Returns EFORBIDDEN without staff.write.
func (s *Service) AddRule(ctx context.Context, practitionerID string, in Rule) (Rule, error) {
	if _, err := hospital.Require(ctx, identity.PermStaffWrite); err != nil {
		return Rule{}, err
	}
	var v hospital.Validation
	pid, err := uuid.Parse(practitionerID)
	if err != nil {
		return Rule{}, hospital.Errorf(hospital.ENOTFOUND, "No practitioner has this id.")
	}
	cid, err := uuid.Parse(in.ClinicID)
	v.Check(err == nil, "clinic_id", "must be a clinic id")
	v.Check(in.Weekday >= 1 && in.Weekday <= 7, "weekday", "must be 1 (Monday) to 7 (Sunday)")
	start, okS := clock(in.StartTime)
	end, okE := clock(in.EndTime)
	v.Check(okS, "start_time", "must be a time HH:MM")
	v.Check(okE, "end_time", "must be a time HH:MM")
	v.Check(!okS || !okE || end > start, "end_time", "must be after the start")
	from := s.today()
	if in.ValidFrom != "" {
		d, err := time.Parse("2006-01-02", in.ValidFrom)
		v.Check(err == nil, "valid_from", "must be a date YYYY-MM-DD")
		from = d
	}
	var to *time.Time
	if in.ValidTo != "" {
		d, err := time.Parse("2006-01-02", in.ValidTo)
		v.Check(err == nil && !d.Before(from), "valid_to", "must be a date YYYY-MM-DD on or after valid_from")
		to = &d
	}
	if err := v.Err(); err != nil {
		return Rule{}, err
	}
	var out Rule
	_, err = idempotency.Do(ctx, s.db, &out, func(q *dbgen.Queries) error {
		row, err := q.RuleCreate(ctx, dbgen.RuleCreateParams{PractitionerID: pid, ClinicID: cid, Weekday: int32(in.Weekday),
			StartTime: pgtype.Time{Microseconds: start.Microseconds(), Valid: true}, EndTime: pgtype.Time{Microseconds: end.Microseconds(), Valid: true},
			ValidFrom: from, ValidTo: to})
		if err != nil {
			return err
		}
		out = ruleFromRow(row)
		return audit.Write(ctx, q, audit.Entry{Action: "availability.rule_add", ResourceType: "availability_rule", ResourceID: out.ID})
	})
	return out, err
}

// DeleteRule removes weekly availability (booked appointments stay).
func (s *Service) DeleteRule(ctx context.Context, practitionerID, ruleID string) error {
	if _, err := hospital.Require(ctx, identity.PermStaffWrite); err != nil {
		return err
	}
	pid, err1 := uuid.Parse(practitionerID)
	rid, err2 := uuid.Parse(ruleID)
	if err1 != nil || err2 != nil {
		return hospital.Errorf(hospital.ENOTFOUND, "No such availability rule.")
	}
	_, err := idempotency.Do(ctx, s.db, &struct{}{}, func(q *dbgen.Queries) error {
		n, err := q.RuleDelete(ctx, dbgen.RuleDeleteParams{ID: rid, PractitionerID: pid})
		if err != nil {
			return err
		}
		if n == 0 {
			return hospital.Errorf(hospital.ENOTFOUND, "No such availability rule.")
		}
		return audit.Write(ctx, q, audit.Entry{Action: "availability.rule_remove", ResourceType: "availability_rule", ResourceID: ruleID})
	})
	return err
}

// AddException records leave or a holiday.
func (s *Service) AddException(ctx context.Context, in Exception) (Exception, error) {
	if _, err := hospital.Require(ctx, identity.PermStaffWrite); err != nil {
		return Exception{}, err
	}
	var v hospital.Validation
	pid, err := parseOptionalID("practitioner_id", in.PractitionerID)
	if err != nil {
		return Exception{}, err
	}
	in.Reason = strings.TrimSpace(in.Reason)
	v.Check(in.Reason != "" && len(in.Reason) <= 200, "reason", "is required (at most 200 characters)")
	v.Check(!in.StartsAt.IsZero(), "starts_at", "is required")
	v.Check(in.EndsAt.After(in.StartsAt), "ends_at", "must be after starts_at")
	if err := v.Err(); err != nil {
		return Exception{}, err
	}
	var out Exception
	_, err = idempotency.Do(ctx, s.db, &out, func(q *dbgen.Queries) error {
		row, err := q.ExceptionCreate(ctx, dbgen.ExceptionCreateParams{PractitionerID: pid, StartsAt: in.StartsAt, EndsAt: in.EndsAt, Reason: in.Reason})
		if err != nil {
			return err
		}
		out = Exception{ID: row.ID.String(), PractitionerID: in.PractitionerID, StartsAt: row.StartsAt, EndsAt: row.EndsAt, Reason: row.Reason}
		return audit.Write(ctx, q, audit.Entry{Action: "availability.exception_add", ResourceType: "availability_exception", ResourceID: out.ID})
	})
	return out, err
}

// DeleteException removes leave or a holiday.
func (s *Service) DeleteException(ctx context.Context, id string) error {
	if _, err := hospital.Require(ctx, identity.PermStaffWrite); err != nil {
		return err
	}
	eid, err := uuid.Parse(id)
	if err != nil {
		return hospital.Errorf(hospital.ENOTFOUND, "No such exception.")
	}
	_, err = idempotency.Do(ctx, s.db, &struct{}{}, func(q *dbgen.Queries) error {
		n, err := q.ExceptionDelete(ctx, eid)
		if err != nil {
			return err
		}
		if n == 0 {
			return hospital.Errorf(hospital.ENOTFOUND, "No such exception.")
		}
		return audit.Write(ctx, q, audit.Entry{Action: "availability.exception_remove", ResourceType: "availability_exception", ResourceID: id})
	})
	return err
}

// SlotFilter selects free slots.
type SlotFilter struct {
	PractitionerID *uuid.UUID
	ClinicID       *uuid.UUID
	From, To       time.Time
}

// Slots computes free slots in [From, To) (at most 31 days): weekly rules
// cut into the clinic's slot length, minus exceptions, minus live
// appointments, minus the past. Returns EFORBIDDEN without appointment.read.
func (s *Service) Slots(ctx context.Context, f SlotFilter) ([]Slot, error) {
	if _, err := hospital.Require(ctx, identity.PermAppointmentRead); err != nil {
		return nil, err
	}
	if !f.To.After(f.From) || f.To.Sub(f.From) > maxSlotRange {
		return nil, invalid("to", "must be after from, at most 31 days later")
	}
	var slots []Slot
	err := s.db.InTx(ctx, func(q *dbgen.Queries) error {
		var err error
		slots, err = s.freeSlots(ctx, q, f)
		return err
	})
	return slots, err
}

func (s *Service) freeSlots(ctx context.Context, q *dbgen.Queries, f SlotFilter) ([]Slot, error) {
	fromLocal, toLocal := f.From.In(s.loc), f.To.In(s.loc)
	rules, err := q.RulesInRange(ctx, dbgen.RulesInRangeParams{PractitionerID: f.PractitionerID, ClinicID: f.ClinicID,
		FromDate: dateOnly(fromLocal), ToDate: dateOnly(toLocal)})
	if err != nil {
		return nil, postgres.Translate(err)
	}
	exceptions, err := q.ExceptionsInRange(ctx, dbgen.ExceptionsInRangeParams{FromTime: f.From, ToTime: f.To, PractitionerID: f.PractitionerID})
	if err != nil {
		return nil, postgres.Translate(err)
	}
	booked, err := q.AppointmentsBooked(ctx, dbgen.AppointmentsBookedParams{FromTime: f.From, ToTime: f.To, PractitionerID: f.PractitionerID})
	if err != nil {
		return nil, postgres.Translate(err)
	}
	clinics, err := q.ClinicList(ctx)
	if err != nil {
		return nil, postgres.Translate(err)
	}
	slotLen := map[uuid.UUID]time.Duration{}
	for _, c := range clinics {
		slotLen[c.ID] = time.Duration(c.SlotMinutes) * time.Minute
	}
	busy := bookedByPractitioner(booked)
	now := s.now()
	out := []Slot{}
	for day := dateOnly(fromLocal); !day.After(dateOnly(toLocal)); day = day.AddDate(0, 0, 1) {
		weekday := int(day.Weekday())
		if weekday == 0 {
			weekday = 7
		}
		for _, r := range rules {
			if int(r.Weekday) != weekday || day.Before(r.ValidFrom) || (r.ValidTo != nil && day.After(*r.ValidTo)) {
				continue
			}
			length := slotLen[r.ClinicID]
			if length == 0 {
				continue
			}
			start := atLocal(day, r.StartTime, s.loc)
			end := atLocal(day, r.EndTime, s.loc)
			for t := start; !t.Add(length).After(end); t = t.Add(length) {
				st, en := t, t.Add(length)
				if st.Before(f.From) || en.After(f.To) || st.Before(now) {
					continue
				}
				if blocked(st, en, r.PractitionerID, exceptions) || busy.overlaps(r.PractitionerID, st, en) {
					continue
				}
				out = append(out, Slot{PractitionerID: r.PractitionerID.String(), ClinicID: r.ClinicID.String(), StartsAt: st.UTC(), EndsAt: en.UTC()})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartsAt.Equal(out[j].StartsAt) {
			return out[i].StartsAt.Before(out[j].StartsAt)
		}
		return out[i].PractitionerID < out[j].PractitionerID
	})
	return out, nil
}

// blocked reports whether an exception (leave, a holiday) covers part of
// [st, en) for the practitioner.
func blocked(st, en time.Time, practitioner uuid.UUID, ex []dbgen.AvailabilityException) bool {
	for _, e := range ex {
		if (e.PractitionerID == nil || *e.PractitionerID == practitioner) && e.StartsAt.Before(en) && e.EndsAt.After(st) {
			return true
		}
	}
	return false
}

// booked holds each practitioner's live appointments sorted by start. They
// never overlap (the exclusion constraint), so a range overlaps one of them
// exactly when it overlaps the last that starts before the range ends: one
// binary search per slot, where a scan of every appointment per slot took
// seconds for a month of a busy clinic.
type booked map[uuid.UUID][]dbgen.AppointmentsBookedRow

func bookedByPractitioner(rows []dbgen.AppointmentsBookedRow) booked {
	b := booked{}
	for _, r := range rows {
		b[r.PractitionerID] = append(b[r.PractitionerID], r)
	}
	for _, l := range b {
		sort.Slice(l, func(i, j int) bool { return l[i].StartsAt.Before(l[j].StartsAt) })
	}
	return b
}

func (b booked) overlaps(practitioner uuid.UUID, st, en time.Time) bool {
	l := b[practitioner]
	i := sort.Search(len(l), func(i int) bool { return !l[i].StartsAt.Before(en) }) // first starting at or after en
	return i > 0 && l[i-1].EndsAt.After(st)
}

func (s *Service) today() time.Time { return dateOnly(s.now().In(s.loc)) }

// dateOnly is midnight UTC of t's calendar date (how dates are compared).
func dateOnly(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// atLocal is the instant of time-of-day tod on day's date in loc.
func atLocal(day time.Time, tod pgtype.Time, loc *time.Location) time.Time {
	d := time.Duration(tod.Microseconds) * time.Microsecond
	return time.Date(day.Year(), day.Month(), day.Day(), int(d/time.Hour), int(d%time.Hour/time.Minute), 0, 0, loc)
}

func clock(s string) (time.Duration, bool) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, false
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, true
}

func ruleFromRow(r dbgen.AvailabilityRule) Rule {
	fm := func(t pgtype.Time) string {
		d := time.Duration(t.Microseconds) * time.Microsecond
		return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	out := Rule{ID: r.ID.String(), PractitionerID: r.PractitionerID.String(), ClinicID: r.ClinicID.String(), Weekday: int(r.Weekday),
		StartTime: fm(r.StartTime), EndTime: fm(r.EndTime), ValidFrom: r.ValidFrom.Format("2006-01-02")}
	if r.ValidTo != nil {
		out.ValidTo = r.ValidTo.Format("2006-01-02")
	}
	return out
}
