package patient

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/access"
	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/cache"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
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
	now      hospital.Clock
}

// NewService wires the registry.
func NewService(db *postgres.DB, c cache.Cache, ttl time.Duration, events Publisher, ac *access.Checker, now hospital.Clock) *Service {
	return &Service{db: db, cache: c, cacheTTL: ttl, events: events, access: ac, now: now}
}

func cacheKey(id uuid.UUID) string { return "patient:" + id.String() }

// Register creates a patient with a new MRN. Returns EINVALID with field
// messages for bad input, EFORBIDDEN without patient.write.
func (s *Service) Register(ctx context.Context, in RegisterInput) (Patient, error) {
	actor, err := hospital.Require(ctx, identity.PermPatientWrite)
	if err != nil {
		return Patient{}, err
	}
	birth, err := in.normalize(s.now())
	if err != nil {
		return Patient{}, err
	}
	by, _ := uuid.Parse(actor.UserID)
	var p Patient
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		if p, err = storeCreate(ctx, q, in, birth, &by); err != nil {
			return err
		}
		id := uuid.MustParse(p.ID)
		if !access.ScopeOf(ctx).All {
			// A clinician who registers a patient is caring for them.
			if _, err := s.access.Assign(ctx, q, id, nil, nil, &by, "registered by"); err != nil {
				return err
			}
		}
		return audit.Write(ctx, q, audit.Entry{Action: "patient.create", ResourceType: "patient", ResourceID: p.ID, PatientID: &id})
	})
	if err != nil {
		return Patient{}, err
	}
	_ = s.events.Publish(ctx, TopicPatients, "patient.registered", map[string]string{"id": p.ID})
	return p, nil
}

// Get returns one patient; the read is audited. Returns ENOTFOUND for an
// unknown id, EFORBIDDEN without patient.read.
func (s *Service) Get(ctx context.Context, id string) (Patient, error) {
	if _, err := hospital.Require(ctx, identity.PermPatientRead); err != nil {
		return Patient{}, err
	}
	pid, err := uuid.Parse(id)
	if err != nil {
		return Patient{}, hospital.Errorf(hospital.ENOTFOUND, "No patient has this id.")
	}
	p, err := cache.GetOrLoad(ctx, s.cache, cacheKey(pid), s.cacheTTL, func() (Patient, error) {
		return storeGet(ctx, s.db.Queries(), pid)
	})
	if hospital.ErrorCode(err) == hospital.ENOTFOUND {
		return Patient{}, hospital.Errorf(hospital.ENOTFOUND, "No patient has this id.")
	} else if err != nil {
		return Patient{}, err
	}
	// Scope is checked and the read audited even when served from the cache.
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		if err := s.access.Patient(ctx, q, pid, "patient.read"); err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: "patient.read", ResourceType: "patient", ResourceID: p.ID, PatientID: &pid})
	})
	if err != nil {
		return Patient{}, err
	}
	return p, nil
}

// Update replaces a patient's demographics when version is the version the
// caller read (If-Match). Returns EPRECONDITION when it changed meanwhile,
// ENOTFOUND, EINVALID, EFORBIDDEN without patient.write.
func (s *Service) Update(ctx context.Context, id string, version int, in RegisterInput) (Patient, error) {
	if _, err := hospital.Require(ctx, identity.PermPatientWrite); err != nil {
		return Patient{}, err
	}
	pid, err := uuid.Parse(id)
	if err != nil {
		return Patient{}, hospital.Errorf(hospital.ENOTFOUND, "No patient has this id.")
	}
	birth, err := in.normalize(s.now())
	if err != nil {
		return Patient{}, err
	}
	var p Patient
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		if err := s.access.Patient(ctx, q, pid, "patient.update"); err != nil {
			return err
		}
		if p, err = storeUpdate(ctx, q, pid, version, in, birth); err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: "patient.update", ResourceType: "patient", ResourceID: p.ID, PatientID: &pid,
			Details: map[string]any{"version": p.Version}})
	})
	if hospital.ErrorCode(err) == hospital.ENOTFOUND {
		return Patient{}, hospital.Errorf(hospital.ENOTFOUND, "No patient has this id.")
	} else if err != nil {
		return Patient{}, err
	}
	// After commit: drop the cached copy so no replica serves the old one.
	s.cache.Delete(ctx, cacheKey(pid))
	_ = s.events.Publish(ctx, TopicPatients, "patient.updated", map[string]any{"id": p.ID, "version": p.Version})
	return p, nil
}

// List returns a page of patients. Returns EINVALID for a bad cursor,
// EFORBIDDEN without patient.read.
func (s *Service) List(ctx context.Context, f ListFilter, page httpx.PageRequest) (httpx.Page[Patient], error) {
	if _, err := hospital.Require(ctx, identity.PermPatientRead); err != nil {
		return httpx.Page[Patient]{}, err
	}
	if f.NamePrefix != nil {
		p := strings.TrimSpace(*f.NamePrefix)
		if p == "" {
			f.NamePrefix = nil
		} else {
			p = escapeLike(p)
			f.NamePrefix = &p
		}
	}
	var items []Patient
	var next string
	err := s.db.InTx(ctx, func(q *dbgen.Queries) error {
		var err error
		if items, next, err = storeList(ctx, q, f, access.ScopeOf(ctx), page); err != nil {
			return err
		}
		return audit.Write(ctx, q, audit.Entry{Action: "patient.list", ResourceType: "patient",
			Details: map[string]any{"count": len(items), "sort": page.Sort, "filtered": f.NamePrefix != nil}})
	})
	if err != nil {
		return httpx.Page[Patient]{}, err
	}
	return httpx.Page[Patient]{Items: items, NextCursor: next, Sort: page.Sort, Limit: page.Limit}, nil
}

// escapeLike makes s match literally in a LIKE pattern.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
