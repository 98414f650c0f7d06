package admission

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/access"
	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/idempotency"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

// PatientChecker checks a patient exists and is active (and in scope).
type PatientChecker interface {
	Exists(ctx context.Context, q *dbgen.Queries, patient uuid.UUID, action string) error
	Active(ctx context.Context, q *dbgen.Queries, patient uuid.UUID) error
}

// WardCache drops cached ward counts after a bed changes.
type WardCache interface {
	InvalidateWards(ctx context.Context)
}

// Observer receives committed admission events for metrics; nil functions
// are skipped.
type Observer struct {
	Admitted    func(source string)
	Transferred func()
	Discharged  func(disposition string)
	Cancelled   func()
}

// Service runs admissions, transfers and discharges.
type Service struct {
	db       *postgres.DB
	patients PatientChecker
	access   *access.Checker
	wards    WardCache
	events   ward.Publisher
	reads    audit.Recorder // group-commits the audit rows of reads
	obs      Observer
}

// NewService wires the service. reads records the audit rows of reads
// (audit.Batcher); changes write theirs in their own transaction.
func NewService(db *postgres.DB, patients PatientChecker, ac *access.Checker, wards WardCache, events ward.Publisher, reads audit.Recorder,
	obs Observer) *Service {
	return &Service{db: db, patients: patients, access: ac, wards: wards, events: events, reads: reads, obs: obs}
}

// friendly turns the database's refusals into messages a ward clerk
// understands (409 unless said otherwise).
func friendly(err error) error {
	switch postgres.Constraint(err) {
	case "admissions_bed_available", "admissions_one_per_bed_key":
		return hospital.Wrap(hospital.ECONFLICT, err, "This bed is not available (occupied, reserved, being cleaned or out of service). Choose another bed.")
	case "admissions_one_per_patient_key":
		return hospital.Wrap(hospital.ECONFLICT, err, "This patient is already admitted. Transfer or discharge the current admission instead.")
	case "admissions_ended":
		return hospital.Wrap(hospital.ECONFLICT, err, "This admission has already ended.")
	case "admissions_bed_ward":
		return hospital.Wrap(hospital.EINVALID, err, "The bed is not on the ward given.")
	}
	return err
}

// Admit admits a patient into an available bed. The ward's staff and the
// admitting clinician get a care relationship. With an Idempotency-Key a
// retry returns the first admission. Returns ECONFLICT when the bed is not
// available or the patient already admitted, ENOTFOUND for an unknown
// patient or bed, EINVALID for bad input, EFORBIDDEN without admission.write.
func (s *Service) Admit(ctx context.Context, in AdmitInput) (Admission, bool, error) {
	actor, err := hospital.Require(ctx, identity.PermAdmissionWrite)
	if err != nil {
		return Admission{}, false, err
	}
	var v hospital.Validation
	pid, err := uuid.Parse(in.PatientID)
	v.Check(err == nil, "patient_id", "must be a patient id")
	bid, err := uuid.Parse(in.BedID)
	v.Check(err == nil, "bed_id", "must be a bed id")
	v.Check(contains(Sources, in.Source), "source", "must be appointment, emergency or direct")
	in.Reason = strings.TrimSpace(in.Reason)
	v.Check(in.Reason != "" && len(in.Reason) <= 500, "reason", "is required (at most 500 characters)")
	v.Check(in.ExpectedDays == nil || (*in.ExpectedDays >= 0 && *in.ExpectedDays <= 365), "expected_days", "must be from 0 to 365")
	var appt *uuid.UUID
	if in.Source == "appointment" || in.AppointmentID != "" {
		id, err := uuid.Parse(in.AppointmentID)
		v.Check(err == nil, "appointment_id", "is required for an admission from an appointment")
		appt = &id
	}
	uid, _ := uuid.Parse(actor.UserID)
	admitting := &uid
	if in.AdmittingUserID != "" {
		id, err := uuid.Parse(in.AdmittingUserID)
		v.Check(err == nil, "admitting_user_id", "must be a user id")
		admitting = &id
	}
	if err := v.Err(); err != nil {
		return Admission{}, false, err
	}
	a, replayed, err := idempotency.Run(ctx, s.db, func(q *dbgen.Queries) (Admission, error) {
		// Admitting is what puts a patient in a ward's care, so it does
		// not need an existing care relationship; it is audited.
		r, err := q.AdmissionAdmit(ctx, dbgen.AdmissionAdmitParams{PatientID: pid, BedID: bid, Source: in.Source,
			AppointmentID: appt, AdmittingUserID: admitting, Reason: in.Reason, ExpectedDays: int32Ptr(in.ExpectedDays), CreatedBy: &uid})
		switch {
		case hospital.ErrorCode(postgres.Translate(err)) == hospital.ENOTFOUND:
			return Admission{}, s.refusal(ctx, q, pid, bid)
		case err != nil:
			return Admission{}, friendly(err)
		}
		a := fromRow(dbgen.Admission{ID: r.ID, PatientID: r.PatientID, BedID: r.BedID, WardID: r.WardID, Source: r.Source,
			AppointmentID: r.AppointmentID, AdmittingUserID: r.AdmittingUserID, Reason: r.Reason, ExpectedDays: r.ExpectedDays,
			Status: r.Status, AdmittedAt: r.AdmittedAt, EndedAt: r.EndedAt, Disposition: r.Disposition,
			DischargeSummary: r.DischargeSummary, CancelReason: r.CancelReason, Version: r.Version, CreatedBy: r.CreatedBy})
		a.BedCode = r.BedCode
		return a, audit.Write(ctx, q, audit.Entry{Action: "admission.admit", ResourceType: "admission", ResourceID: a.ID,
			PatientID: &pid, Details: map[string]any{"ward_id": a.WardID, "bed_id": a.BedID, "source": a.Source}})
	})
	if err != nil {
		return Admission{}, false, err
	}
	if !replayed {
		s.changed(ctx, "occupied", a.WardID, a.BedID)
		if s.obs.Admitted != nil {
			s.obs.Admitted(a.Source)
		}
	}
	return a, replayed, nil
}

// refusal says why AdmissionAdmit admitted nothing: the patient (unknown
// or merged) or the bed (unknown).
func (s *Service) refusal(ctx context.Context, q *dbgen.Queries, pid, bid uuid.UUID) error {
	if err := s.patients.Active(ctx, q, pid); err != nil {
		return err
	}
	if _, err := q.BedGet(ctx, bid); err != nil {
		if hospital.ErrorCode(postgres.Translate(err)) == hospital.ENOTFOUND {
			return hospital.Errorf(hospital.ENOTFOUND, "No bed has this id.")
		}
		return err
	}
	// Both exist now: the patient was merged or the bed removed meanwhile.
	return hospital.Errorf(hospital.ECONFLICT, "The patient or the bed changed while admitting; please try again.")
}

// Get returns one admission with its history. Returns ENOTFOUND,
// EFORBIDDEN outside the actor's care.
func (s *Service) Get(ctx context.Context, id string) (Admission, error) {
	if _, err := hospital.Require(ctx, identity.PermAdmissionRead); err != nil {
		return Admission{}, err
	}
	aid, err := uuid.Parse(id)
	if err != nil {
		return Admission{}, hospital.Errorf(hospital.ENOTFOUND, "No admission has this id.")
	}
	var a Admission
	var pid uuid.UUID
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		d, err := q.AdmissionDetail(ctx, aid)
		if err != nil {
			return notFound(err)
		}
		row := d.Admission
		if err := s.access.Patient(ctx, q, row.PatientID, "admission.read"); err != nil {
			return err
		}
		a, pid = fromRow(row), row.PatientID
		a.PatientName, a.PatientMRN = strings.ToUpper(d.FamilyName)+", "+d.GivenNames, d.Mrn
		a.BedCode, a.WardName = d.BedCode, d.WardName
		events, err := q.AdmissionEvents(ctx, aid)
		if err != nil {
			return err
		}
		for _, e := range events {
			ev := Event{Event: e.Event, OccurredAt: e.OccurredAt, ActorName: e.ActorName, FromBedCode: e.FromBedCode,
				FromWardName: e.FromWardName, ToBedCode: e.ToBedCode, ToWardName: e.ToWardName}
			if e.FromBedID != nil {
				ev.FromBedID = e.FromBedID.String()
			}
			if e.ToBedID != nil {
				ev.ToBedID = e.ToBedID.String()
			}
			a.History = append(a.History, ev)
		}
		return nil
	})
	if err != nil {
		return Admission{}, err
	}
	if err := s.reads.Record(ctx, audit.Entry{Action: "admission.read", ResourceType: "admission", ResourceID: a.ID, PatientID: &pid}); err != nil {
		return Admission{}, err
	}
	return a, nil
}

// ForPatient lists a patient's admissions, newest first.
func (s *Service) ForPatient(ctx context.Context, patientID string) ([]Admission, error) {
	if _, err := hospital.Require(ctx, identity.PermAdmissionRead); err != nil {
		return nil, err
	}
	pid, err := uuid.Parse(patientID)
	if err != nil {
		return nil, hospital.Errorf(hospital.ENOTFOUND, "No patient has this id.")
	}
	var out []Admission
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		if err := s.patients.Exists(ctx, q, pid, "admission.list"); err != nil {
			return err
		}
		rows, err := q.AdmissionsForPatientDetail(ctx, pid)
		if err != nil {
			return err
		}
		out = make([]Admission, 0, len(rows))
		for _, r := range rows {
			a := fromRow(r.Admission)
			a.BedCode, a.WardName = r.BedCode, r.WardName
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.reads.Record(ctx, audit.Entry{Action: "admission.list", ResourceType: "admission", PatientID: &pid}); err != nil {
		return nil, err
	}
	return out, nil
}

// Transfer moves an active admission to another available bed (on this or
// another ward); the old bed goes to cleaning, the new ward takes over the
// care. Returns ECONFLICT for an unavailable bed or an ended admission.
func (s *Service) Transfer(ctx context.Context, id string, version int, in TransferInput) (Admission, error) {
	bid, err := uuid.Parse(in.BedID)
	if err != nil {
		return Admission{}, &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.", Fields: map[string]string{"bed_id": "must be a bed id"}}
	}
	var fromWard, fromBed string
	a, replayed, err := s.change(ctx, id, version, "admission.transfer", func(q *dbgen.Queries, cur dbgen.Admission) (dbgen.Admission, error) {
		if cur.Status != "active" {
			return cur, hospital.Errorf(hospital.ECONFLICT, "Only an active admission can be transferred (this one is %s).", cur.Status)
		}
		if cur.BedID == bid {
			return cur, hospital.Errorf(hospital.ECONFLICT, "The patient is already in this bed.")
		}
		bed, err := q.BedGet(ctx, bid)
		if err != nil {
			return cur, hospital.Errorf(hospital.ENOTFOUND, "No bed has this id.")
		}
		fromWard, fromBed = cur.WardID.String(), cur.BedID.String()
		row, err := q.AdmissionTransfer(ctx, dbgen.AdmissionTransferParams{ID: cur.ID, BedID: bid, WardID: bed.WardID})
		if err != nil {
			return cur, friendly(err)
		}
		if bed.WardID != cur.WardID {
			if err := s.moveCare(ctx, q, cur.PatientID, cur.WardID, &bed.WardID); err != nil {
				return cur, err
			}
		}
		return row, nil
	})
	if err != nil || replayed { // a replay: the first answer's events went out already
		return a, err
	}
	s.changed(ctx, "cleaning", fromWard, fromBed)
	s.changed(ctx, "occupied", a.WardID, a.BedID)
	if s.obs.Transferred != nil {
		s.obs.Transferred()
	}
	return a, nil
}

// Discharge ends an active admission with a disposition and a summary;
// the bed goes to cleaning and the ward's care relationship ends.
func (s *Service) Discharge(ctx context.Context, id string, version int, in DischargeInput) (Admission, error) {
	var v hospital.Validation
	v.Check(contains(Dispositions, in.Disposition), "disposition", "must be home, transfer_out, deceased or against_advice")
	in.Summary = strings.TrimSpace(in.Summary)
	v.Check(len(in.Summary) <= 20000, "summary", "is too long")
	if err := v.Err(); err != nil {
		return Admission{}, err
	}
	a, replayed, err := s.change(ctx, id, version, "admission.discharge", func(q *dbgen.Queries, cur dbgen.Admission) (dbgen.Admission, error) {
		if cur.Status != "active" {
			return cur, hospital.Errorf(hospital.ECONFLICT, "This patient is not admitted (the admission is %s).", cur.Status)
		}
		d := in.Disposition
		row, err := q.AdmissionDischarge(ctx, dbgen.AdmissionDischargeParams{ID: cur.ID, Disposition: &d, DischargeSummary: in.Summary})
		if err != nil {
			return cur, friendly(err)
		}
		return row, s.moveCare(ctx, q, cur.PatientID, cur.WardID, nil)
	})
	if err != nil || replayed {
		return a, err
	}
	s.changed(ctx, "cleaning", a.WardID, a.BedID)
	if s.obs.Discharged != nil {
		s.obs.Discharged(a.Disposition)
	}
	return a, nil
}

// Cancel cancels an admission entered in error; the bed becomes available
// again (it was never really used).
func (s *Service) Cancel(ctx context.Context, id string, version int, in CancelInput) (Admission, error) {
	reason := strings.TrimSpace(in.Reason)
	if reason == "" || len(reason) > 500 {
		return Admission{}, &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.",
			Fields: map[string]string{"reason": "is required (at most 500 characters)"}}
	}
	a, replayed, err := s.change(ctx, id, version, "admission.cancel", func(q *dbgen.Queries, cur dbgen.Admission) (dbgen.Admission, error) {
		if cur.Status != "active" {
			return cur, hospital.Errorf(hospital.ECONFLICT, "Only an active admission can be cancelled (this one is %s).", cur.Status)
		}
		row, err := q.AdmissionCancel(ctx, dbgen.AdmissionCancelParams{ID: cur.ID, CancelReason: reason})
		if err != nil {
			return cur, friendly(err)
		}
		return row, s.moveCare(ctx, q, cur.PatientID, cur.WardID, nil)
	})
	if err != nil || replayed {
		return a, err
	}
	s.changed(ctx, "available", a.WardID, a.BedID)
	if s.obs.Cancelled != nil {
		s.obs.Cancelled()
	}
	return a, nil
}

// moveCare ends the admission's care relationship with ward from and, when
// to is given, starts one with ward to.
func (s *Service) moveCare(ctx context.Context, q *dbgen.Queries, patient, from uuid.UUID, to *uuid.UUID) error {
	if id, err := q.AdmissionCareAssignment(ctx, dbgen.AdmissionCareAssignmentParams{PatientID: patient, WardID: &from}); err == nil {
		if err := s.access.EndAssignment(ctx, q, id); err != nil {
			return err
		}
	}
	if to != nil {
		_, err := s.access.Assign(ctx, q, patient, to, nil, nil, "admission")
		return err
	}
	return nil
}

// change runs one command on a locked admission: version check, scope
// check, history actor, audit row, bed events after commit.
// replayed reports an answer repeated from the Idempotency-Key's stored
// response (nothing changed, so nothing is announced).
func (s *Service) change(ctx context.Context, id string, version int, action string, fn func(q *dbgen.Queries, cur dbgen.Admission) (dbgen.Admission, error)) (Admission, bool, error) {
	_, err := hospital.Require(ctx, identity.PermAdmissionWrite)
	if err != nil {
		return Admission{}, false, err
	}
	aid, err := uuid.Parse(id)
	if err != nil {
		return Admission{}, false, hospital.Errorf(hospital.ENOTFOUND, "No admission has this id.")
	}
	return idempotency.Run(ctx, s.db, func(q *dbgen.Queries) (Admission, error) {
		cur, err := q.AdmissionGetForUpdate(ctx, aid)
		if err != nil {
			return Admission{}, notFound(err)
		}
		if version != 0 && int(cur.Version) != version {
			return Admission{}, hospital.Errorf(hospital.EPRECONDITION, "This admission was changed by someone else; reload it.")
		}
		if err := s.access.Patient(ctx, q, cur.PatientID, action); err != nil {
			return Admission{}, err
		}
		row, err := fn(q, cur)
		if err != nil {
			return Admission{}, err
		}
		a := fromRow(row)
		return a, audit.Write(ctx, q, audit.Entry{Action: action, ResourceType: "admission", ResourceID: a.ID, PatientID: &row.PatientID,
			Details: map[string]any{"ward_id": a.WardID, "bed_id": a.BedID, "status": a.Status, "disposition": a.Disposition}})
	})
}

// changed tells every replica's bed boards that a bed is now in status
// (after commit; the event carries no patient).
func (s *Service) changed(ctx context.Context, status, wardID, bedID string) {
	s.wards.InvalidateWards(ctx)
	_ = s.events.Publish(ctx, ward.TopicBeds, "bed."+status, ward.BedEvent{WardID: wardID, BedID: bedID, Status: status})
}

func notFound(err error) error {
	if hospital.ErrorCode(postgres.Translate(err)) == hospital.ENOTFOUND {
		return hospital.Errorf(hospital.ENOTFOUND, "No admission has this id.")
	}
	return err
}

func int32Ptr(p *int) *int32 {
	if p == nil {
		return nil
	}
	v := int32(*p)
	return &v
}

func fromRow(r dbgen.Admission) Admission {
	a := Admission{ID: r.ID.String(), PatientID: r.PatientID.String(), BedID: r.BedID.String(), WardID: r.WardID.String(),
		Source: r.Source, Reason: r.Reason, Status: r.Status, AdmittedAt: r.AdmittedAt, EndedAt: r.EndedAt,
		DischargeSummary: r.DischargeSummary, CancelReason: r.CancelReason, Version: int(r.Version)}
	if r.AppointmentID != nil {
		a.AppointmentID = r.AppointmentID.String()
	}
	if r.AdmittingUserID != nil {
		a.AdmittingUserID = r.AdmittingUserID.String()
	}
	if r.ExpectedDays != nil {
		d := int(*r.ExpectedDays)
		a.ExpectedDays = &d
	}
	if r.Disposition != nil {
		a.Disposition = *r.Disposition
	}
	return a
}
