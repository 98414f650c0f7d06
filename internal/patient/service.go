package patient

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/access"
	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/cache"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/idempotency"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// Publisher is the part of the event bus the service uses.
type Publisher interface {
	Publish(ctx context.Context, topic, typ string, data any) error
}

// TopicPatients is the event topic of registry changes. Its events carry
// ids only, never names.
const TopicPatients = "patients"

// Service is the patient registry.
type Service struct {
	db       *postgres.DB
	cache    cache.Cache
	cacheTTL time.Duration
	events   Publisher
	access   *access.Checker
	reads    audit.Recorder // group-commits the audit rows of reads
	now      hospital.Clock
}

// NewService wires the registry; reads records the audit rows of reads
// (audit.Batcher), changes write theirs in their own transaction.
func NewService(db *postgres.DB, c cache.Cache, ttl time.Duration, events Publisher, ac *access.Checker, reads audit.Recorder, now hospital.Clock) *Service {
	return &Service{db: db, cache: c, cacheTTL: ttl, events: events, access: ac, reads: reads, now: now}
}

func cacheKey(id uuid.UUID) string { return "patient:" + id.String() }

func parseID(id string) (uuid.UUID, error) {
	pid, err := uuid.Parse(id)
	if err != nil {
		return uuid.Nil, hospital.Errorf(hospital.ENOTFOUND, "No patient has this id.")
	}
	return pid, nil
}

// Register creates a patient with a new MRN, identifiers and contacts.
// Likely duplicates (score >= DuplicateThreshold) refuse the registration
// with ECONFLICT carrying them as "duplicates", unless
// in.ConfirmNotDuplicate. Returns EINVALID with field messages for bad
// input, EFORBIDDEN without patient.write.
func (s *Service) Register(ctx context.Context, in RegisterInput) (Patient, error) {
	actor, err := hospital.Require(ctx, identity.PermPatientWrite)
	if err != nil {
		return Patient{}, err
	}
	var v hospital.Validation
	birth := in.Demographics.normalize(&v, s.now())
	v.Check(len(in.Identifiers) <= 10, "identifiers", "at most 10")
	v.Check(len(in.Contacts) <= 10, "contacts", "at most 10")
	for i := range in.Identifiers {
		in.Identifiers[i].normalize(&v, "identifiers["+strconv.Itoa(i)+"]")
	}
	for i := range in.Contacts {
		in.Contacts[i].normalize(&v, "contacts["+strconv.Itoa(i)+"]")
	}
	if err := v.Err(); err != nil {
		return Patient{}, err
	}
	by, _ := uuid.Parse(actor.UserID)
	var p Patient
	replayed, err := idempotency.Do(ctx, s.db, &p, func(q *dbgen.Queries) error {
		if !in.ConfirmNotDuplicate {
			dups, err := storeDuplicates(ctx, q, in, birth, likelyNameSimilarity)
			if err != nil {
				return err
			}
			var likely []Duplicate
			for _, d := range dups {
				if d.Score >= DuplicateThreshold {
					likely = append(likely, d)
				}
			}
			if len(likely) > 0 {
				return &hospital.Error{Code: hospital.ECONFLICT,
					Message:    "This patient may already be registered. Check the likely duplicates; register anyway with confirm_not_duplicate.",
					Extensions: map[string]any{"duplicates": likely}}
			}
		}
		var err error
		if p, err = storeCreate(ctx, q, in.Demographics, birth, &by); err != nil {
			return err
		}
		id := uuid.MustParse(p.ID)
		for _, i := range in.Identifiers {
			added, err := storeAddIdentifier(ctx, q, id, i)
			if err != nil {
				return err
			}
			p.Identifiers = append(p.Identifiers, added)
		}
		for _, c := range in.Contacts {
			added, err := storeAddContact(ctx, q, id, c)
			if err != nil {
				return err
			}
			p.Contacts = append(p.Contacts, added)
		}
		if !access.ScopeOf(ctx).All {
			// A clinician who registers a patient is caring for them.
			if _, err := s.access.Assign(ctx, q, id, nil, nil, &by, "registered by"); err != nil {
				return err
			}
		}
		return audit.Write(ctx, q, audit.Entry{Action: "patient.create", ResourceType: "patient", ResourceID: p.ID, PatientID: &id,
			Details: map[string]any{"duplicate_check_overridden": in.ConfirmNotDuplicate}})
	})
	if err != nil {
		return Patient{}, err
	}
	if !replayed {
		_ = s.events.Publish(ctx, TopicPatients, "patient.registered", map[string]string{"id": p.ID})
	}
	return p, nil
}

// Duplicates returns the likely duplicates of a registration, best first,
// without creating anything. Returns EFORBIDDEN without patient.write.
func (s *Service) Duplicates(ctx context.Context, in RegisterInput) ([]Duplicate, error) {
	if _, err := hospital.Require(ctx, identity.PermPatientWrite); err != nil {
		return nil, err
	}
	var v hospital.Validation
	birth := in.Demographics.normalize(&v, s.now())
	if err := v.Err(); err != nil {
		return nil, err
	}
	var dups []Duplicate
	err := s.db.InTx(ctx, func(q *dbgen.Queries) error {
		var err error
		dups, err = storeDuplicates(ctx, q, in, birth, similarityThreshold)
		return err
	})
	return dups, err
}

// Get returns one patient with identifiers and contacts (cached), and its
// JSON encoding as cached (nil if it could not be encoded), which the
// handler sends as it is; the read is audited and checked against the
// actor's scope. Returns ENOTFOUND for an unknown id, EFORBIDDEN without
// patient.read or outside the actor's care.
func (s *Service) Get(ctx context.Context, id string) (Patient, []byte, error) {
	if _, err := hospital.Require(ctx, identity.PermPatientRead); err != nil {
		return Patient{}, nil, err
	}
	pid, err := parseID(id)
	if err != nil {
		return Patient{}, nil, err
	}
	p, raw, err := cache.GetOrLoadJSON(ctx, s.cache, cacheKey(pid), s.cacheTTL, func() (Patient, error) {
		return storeGet(ctx, s.db.Queries(), pid)
	})
	if hospital.ErrorCode(err) == hospital.ENOTFOUND {
		return Patient{}, nil, hospital.Errorf(hospital.ENOTFOUND, "No patient has this id.")
	} else if err != nil {
		return Patient{}, nil, err
	}
	// Scope is checked and the read audited even when served from the
	// cache; the record is returned only once its audit row is committed.
	if err := s.access.Patient(ctx, s.db.Queries(), pid, "patient.read"); err != nil {
		return Patient{}, nil, err
	}
	if err := s.reads.Record(ctx, audit.Entry{Action: "patient.read", ResourceType: "patient", ResourceID: p.ID, PatientID: &pid}); err != nil {
		return Patient{}, nil, err
	}
	return p, raw, nil
}

// Exists checks that the patient exists, is active and is in the actor's
// scope, inside q (other modules call it before attaching records).
// Returns ENOTFOUND, ECONFLICT for a merged record, EFORBIDDEN.
func (s *Service) Exists(ctx context.Context, q *dbgen.Queries, pid uuid.UUID, action string) error {
	if err := s.Active(ctx, q, pid); err != nil {
		return err
	}
	return s.access.Patient(ctx, q, pid, action)
}

// Active checks that the patient exists and is not merged, without the
// scope check: for the acts that create a care relationship (admission).
func (s *Service) Active(ctx context.Context, q *dbgen.Queries, pid uuid.UUID) error {
	row, err := q.PatientGet(ctx, pid)
	if err != nil {
		return notFound(postgres.Translate(err))
	}
	if !row.Active {
		return hospital.Errorf(hospital.ECONFLICT, "This record was merged into another; use the surviving record.")
	}
	return nil
}

// Update replaces a patient's demographics when version is the version the
// caller read (If-Match). Returns EPRECONDITION when it changed meanwhile,
// ENOTFOUND, EINVALID, EFORBIDDEN without patient.write.
func (s *Service) Update(ctx context.Context, id string, version int, in UpdateInput) (Patient, error) {
	if _, err := hospital.Require(ctx, identity.PermPatientWrite); err != nil {
		return Patient{}, err
	}
	pid, err := parseID(id)
	if err != nil {
		return Patient{}, err
	}
	var v hospital.Validation
	birth := in.Demographics.normalize(&v, s.now())
	var deceasedAt *time.Time
	if in.DeceasedAt = strings.TrimSpace(in.DeceasedAt); in.DeceasedAt != "" {
		t, err := time.Parse(time.RFC3339, in.DeceasedAt)
		v.Check(err == nil, "deceased_at", "must be a time such as 2026-11-26T14:30:00Z")
		v.Check(in.Deceased, "deceased_at", "needs deceased set")
		v.Check(err != nil || !t.After(s.now()), "deceased_at", "cannot be in the future")
		deceasedAt = &t
	}
	if err := v.Err(); err != nil {
		return Patient{}, err
	}
	var p Patient
	replayed, err := idempotency.Do(ctx, s.db, &p, func(q *dbgen.Queries) error {
		if err := s.access.Patient(ctx, q, pid, "patient.update"); err != nil {
			return err
		}
		if p, err = storeUpdate(ctx, q, pid, version, in, birth, deceasedAt); err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: "patient.update", ResourceType: "patient", ResourceID: p.ID, PatientID: &pid,
			Details: map[string]any{"version": p.Version}})
	})
	if err != nil {
		return Patient{}, notFound(err)
	}
	if !replayed {
		s.changed(ctx, pid, "patient.updated", p.Version)
	}
	return p, nil
}

// changed drops the cached copy on every replica (after commit) and tells
// live screens.
func (s *Service) changed(ctx context.Context, pid uuid.UUID, event string, version int) {
	s.cache.Delete(ctx, cacheKey(pid))
	_ = s.events.Publish(ctx, TopicPatients, event, map[string]any{"id": pid.String(), "version": version})
}

// AddIdentifier adds an identifier to a patient. Returns ECONFLICT when
// another patient has it.
func (s *Service) AddIdentifier(ctx context.Context, id string, in Identifier) (Identifier, error) {
	if _, err := hospital.Require(ctx, identity.PermPatientWrite); err != nil {
		return Identifier{}, err
	}
	pid, err := parseID(id)
	if err != nil {
		return Identifier{}, err
	}
	var v hospital.Validation
	in.normalize(&v, "identifier")
	if err := v.Err(); err != nil {
		return Identifier{}, err
	}
	var out Identifier
	replayed, err := idempotency.Do(ctx, s.db, &out, func(q *dbgen.Queries) error {
		if err := s.Exists(ctx, q, pid, "patient.update"); err != nil {
			return err
		}
		if out, err = storeAddIdentifier(ctx, q, pid, in); err != nil {
			return err
		}
		if err := q.PatientTouch(ctx, pid); err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: "patient.identifier_add", ResourceType: "patient_identifier",
			ResourceID: out.ID, PatientID: &pid, Details: map[string]any{"type": in.Type, "system": in.System}})
	})
	if err != nil {
		return Identifier{}, err
	}
	if !replayed {
		s.changed(ctx, pid, "patient.updated", 0)
	}
	return out, nil
}

// RemoveIdentifier deletes one identifier of a patient.
func (s *Service) RemoveIdentifier(ctx context.Context, id, identifierID string) error {
	return s.removeChild(ctx, id, identifierID, "patient.identifier_remove", "patient_identifier",
		func(q *dbgen.Queries, pid, cid uuid.UUID) (int64, error) {
			return q.IdentifierDelete(ctx, dbgen.IdentifierDeleteParams{ID: cid, PatientID: pid})
		})
}

// AddContact adds a next of kin or other contact.
func (s *Service) AddContact(ctx context.Context, id string, in Contact) (Contact, error) {
	if _, err := hospital.Require(ctx, identity.PermPatientWrite); err != nil {
		return Contact{}, err
	}
	pid, err := parseID(id)
	if err != nil {
		return Contact{}, err
	}
	var v hospital.Validation
	in.normalize(&v, "contact")
	if err := v.Err(); err != nil {
		return Contact{}, err
	}
	var out Contact
	replayed, err := idempotency.Do(ctx, s.db, &out, func(q *dbgen.Queries) error {
		if err := s.Exists(ctx, q, pid, "patient.update"); err != nil {
			return err
		}
		if out, err = storeAddContact(ctx, q, pid, in); err != nil {
			return err
		}
		if err := q.PatientTouch(ctx, pid); err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: "patient.contact_add", ResourceType: "patient_contact",
			ResourceID: out.ID, PatientID: &pid, Details: map[string]any{"relationship": in.Relationship}})
	})
	if err != nil {
		return Contact{}, err
	}
	if !replayed {
		s.changed(ctx, pid, "patient.updated", 0)
	}
	return out, nil
}

// RemoveContact deletes one contact of a patient.
func (s *Service) RemoveContact(ctx context.Context, id, contactID string) error {
	return s.removeChild(ctx, id, contactID, "patient.contact_remove", "patient_contact",
		func(q *dbgen.Queries, pid, cid uuid.UUID) (int64, error) {
			return q.ContactDelete(ctx, dbgen.ContactDeleteParams{ID: cid, PatientID: pid})
		})
}

func (s *Service) removeChild(ctx context.Context, id, childID, action, resource string, del func(q *dbgen.Queries, pid, cid uuid.UUID) (int64, error)) error {
	if _, err := hospital.Require(ctx, identity.PermPatientWrite); err != nil {
		return err
	}
	pid, err := parseID(id)
	if err != nil {
		return err
	}
	cid, err := uuid.Parse(childID)
	if err != nil {
		return hospital.Errorf(hospital.ENOTFOUND, "Not found.")
	}
	var none struct{}
	replayed, err := idempotency.Do(ctx, s.db, &none, func(q *dbgen.Queries) error {
		if err := s.Exists(ctx, q, pid, "patient.update"); err != nil {
			return err
		}
		n, err := del(q, pid, cid)
		if err != nil {
			return err
		}
		if n == 0 {
			return hospital.Errorf(hospital.ENOTFOUND, "This patient has no such entry.")
		}
		if err := q.PatientTouch(ctx, pid); err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: action, ResourceType: resource, ResourceID: childID, PatientID: &pid})
	})
	if err == nil && !replayed {
		s.changed(ctx, pid, "patient.updated", 0)
	}
	return err
}

// List returns a page of patients. With a query, the default sort is
// relevance. Returns EINVALID for a bad cursor or sort, EFORBIDDEN without
// patient.read.
func (s *Service) List(ctx context.Context, f ListFilter, page httpx.PageRequest) (httpx.Page[Patient], error) {
	if _, err := hospital.Require(ctx, identity.PermPatientRead); err != nil {
		return httpx.Page[Patient]{}, err
	}
	if f.Query != nil {
		q := strings.TrimSpace(*f.Query)
		if q == "" {
			f.Query = nil
		} else {
			f.Query = &q
		}
	}
	if f.Phone != nil {
		d := digits(*f.Phone)
		if d == "" {
			return httpx.Page[Patient]{}, &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.",
				Fields: map[string]string{"phone": "must contain digits"}}
		}
		f.Phone = &d
	}
	if page.Sort == "relevance" || page.Sort == "-relevance" {
		if f.Query == nil {
			return httpx.Page[Patient]{}, &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.",
				Fields: map[string]string{"sort": "relevance needs a search query (q)"}}
		}
		page.Sort = "relevance"
	}
	var items []Patient
	var next string
	err := s.db.InTx(ctx, func(q *dbgen.Queries) error {
		var err error
		items, next, err = storeList(ctx, q, f, access.ScopeOf(ctx), page)
		return err
	})
	if err == nil {
		err = s.reads.Record(ctx, audit.Entry{Action: "patient.list", ResourceType: "patient",
			Details: map[string]any{"count": len(items), "sort": page.Sort, "filtered": f.Query != nil || f.MRN != nil ||
				f.BirthDate != nil || f.Phone != nil || f.Identifier != nil}})
	}
	if err != nil {
		return httpx.Page[Patient]{}, err
	}
	return httpx.Page[Patient]{Items: items, NextCursor: next, Sort: page.Sort, Limit: page.Limit}, nil
}

// Merge merges the record in.MergedID into survivor: every row that
// references it (appointments, identifiers, contacts, care relationships,
// and the tables of later modules) moves to the survivor, the merged record
// becomes inactive and points at the survivor. Audited; undone by Unmerge.
// Returns ECONFLICT when either record is already merged or when moving
// would break an invariant (e.g. two active admissions).
func (s *Service) Merge(ctx context.Context, survivor string, in MergeInput) (Merge, error) {
	actor, err := hospital.Require(ctx, identity.PermPatientMerge)
	if err != nil {
		return Merge{}, err
	}
	sid, err := parseID(survivor)
	if err != nil {
		return Merge{}, err
	}
	mid, err := uuid.Parse(in.MergedID)
	if err != nil {
		return Merge{}, &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.",
			Fields: map[string]string{"merged_id": "must be a patient id"}}
	}
	if sid == mid {
		return Merge{}, &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.",
			Fields: map[string]string{"merged_id": "must be another record"}}
	}
	by, _ := uuid.Parse(actor.UserID)
	var m Merge
	replayed, err := idempotency.Do(ctx, s.db, &m, func(q *dbgen.Queries) error {
		// Lock both records in id order (no deadlock with a reverse merge).
		first, second := sid, mid
		if second.String() < first.String() {
			first, second = second, first
		}
		for _, id := range []uuid.UUID{first, second} {
			row, err := q.PatientGetForUpdate(ctx, id)
			if err != nil {
				return notFound(postgres.Translate(err))
			}
			if !row.Active {
				return hospital.Errorf(hospital.ECONFLICT, "Record %s is already merged into another.", row.Mrn)
			}
		}
		moved, err := q.PatientMerge(ctx, dbgen.PatientMergeParams{Survivor: sid, Merged: mid})
		if err != nil {
			if hospital.ErrorCode(postgres.Translate(err)) == hospital.ECONFLICT {
				return hospital.Wrap(hospital.ECONFLICT, err, "These records cannot be merged now: both have something that may exist only once (an active admission or a waiting queue entry). Finish one first.")
			}
			return err
		}
		if err := q.PatientMarkMerged(ctx, dbgen.PatientMarkMergedParams{ID: mid, MergedInto: &sid}); err != nil {
			return err
		}
		if err := q.PatientTouch(ctx, sid); err != nil {
			return err
		}
		rec, err := q.PatientMergeRecord(ctx, dbgen.PatientMergeRecordParams{SurvivorID: sid, MergedID: mid, Moved: moved, MergedBy: &by})
		if err != nil {
			return err
		}
		m = mergeFromRow(rec)
		for _, pid := range []*uuid.UUID{&sid, &mid} {
			if err := audit.Write(ctx, q, audit.Entry{Action: "patient.merge", ResourceType: "patient_merge", ResourceID: m.ID,
				PatientID: pid, Details: map[string]any{"survivor_id": sid.String(), "merged_id": mid.String(), "moved": m.Moved}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Merge{}, err
	}
	if !replayed {
		s.changed(ctx, sid, "patient.merged", 0)
		s.changed(ctx, mid, "patient.merged", 0)
	}
	return m, nil
}

// Unmerge undoes a merge: the rows that moved go back to the merged record,
// which becomes active again. Audited. Returns ECONFLICT when already undone.
func (s *Service) Unmerge(ctx context.Context, mergeID string) (Merge, error) {
	actor, err := hospital.Require(ctx, identity.PermPatientMerge)
	if err != nil {
		return Merge{}, err
	}
	id, err := uuid.Parse(mergeID)
	if err != nil {
		return Merge{}, hospital.Errorf(hospital.ENOTFOUND, "No such merge.")
	}
	by, _ := uuid.Parse(actor.UserID)
	var m Merge
	replayed, err := idempotency.Do(ctx, s.db, &m, func(q *dbgen.Queries) error {
		rec, err := q.PatientMergeForUpdate(ctx, id)
		if err != nil {
			if hospital.ErrorCode(postgres.Translate(err)) == hospital.ENOTFOUND {
				return hospital.Errorf(hospital.ENOTFOUND, "No such merge.")
			}
			return err
		}
		if rec.UndoneAt != nil {
			return hospital.Errorf(hospital.ECONFLICT, "This merge was already undone.")
		}
		if err := q.PatientUnmerge(ctx, dbgen.PatientUnmergeParams{Merged: rec.MergedID, Moved: rec.Moved}); err != nil {
			return err
		}
		if err := q.PatientReactivate(ctx, rec.MergedID); err != nil {
			return err
		}
		if err := q.PatientTouch(ctx, rec.SurvivorID); err != nil {
			return err
		}
		if err := q.PatientMergeUndone(ctx, dbgen.PatientMergeUndoneParams{ID: id, UndoneBy: &by}); err != nil {
			return err
		}
		m = mergeFromRow(rec)
		now := s.now()
		m.UndoneAt = &now
		for _, pid := range []*uuid.UUID{&rec.SurvivorID, &rec.MergedID} {
			if err := audit.Write(ctx, q, audit.Entry{Action: "patient.unmerge", ResourceType: "patient_merge", ResourceID: m.ID,
				PatientID: pid, Details: map[string]any{"survivor_id": m.SurvivorID, "merged_id": m.MergedID}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Merge{}, err
	}
	if !replayed {
		s.changed(ctx, uuid.MustParse(m.SurvivorID), "patient.unmerged", 0)
		s.changed(ctx, uuid.MustParse(m.MergedID), "patient.unmerged", 0)
	}
	return m, nil
}

// Merges lists the merges patient took part in, as the survivor or as the
// merged record, newest first, undone ones included: the record's page
// offers to undo those still in force. Needs patient.merge; audited.
// Returns ENOTFOUND for an unknown patient, EFORBIDDEN outside the actor's
// care.
func (s *Service) Merges(ctx context.Context, patient string) ([]Merge, error) {
	if _, err := hospital.Require(ctx, identity.PermPatientMerge); err != nil {
		return nil, err
	}
	pid, err := parseID(patient)
	if err != nil {
		return nil, err
	}
	out := []Merge{}
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		if _, err := q.PatientGet(ctx, pid); err != nil {
			return notFound(postgres.Translate(err))
		}
		if err := s.access.Patient(ctx, q, pid, "patient.merge.list"); err != nil {
			return err
		}
		rows, err := q.PatientMergeList(ctx, pid)
		if err != nil {
			return err
		}
		for _, r := range rows {
			m := mergeFromRow(r.PatientMerge)
			m.SurvivorMRN, m.MergedMRN = r.SurvivorMrn, r.MergedMrn
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.reads.Record(ctx, audit.Entry{Action: "patient.merge.list", ResourceType: "patient", ResourceID: pid.String(),
		PatientID: &pid, Details: map[string]any{"count": len(out)}}); err != nil {
		return nil, err
	}
	return out, nil
}

func notFound(err error) error {
	if hospital.ErrorCode(err) == hospital.ENOTFOUND {
		return hospital.Errorf(hospital.ENOTFOUND, "No patient has this id.")
	}
	return err
}
