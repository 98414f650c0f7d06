package ward

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/cache"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
)

// Service reads the facility structure, runs the bed board and the
// housekeeping changes, and counts the census.
type Service struct {
	db       *postgres.DB
	cache    cache.Cache
	cacheTTL time.Duration
	events   Publisher
	reads    audit.Recorder // group-commits the audit rows of reads
	loc      *time.Location // the hospital's days, for the census
	now      func() time.Time
}

// NewService wires the service; reads records the audit rows of reads
// (audit.Batcher); loc is the hospital's time zone.
func NewService(db *postgres.DB, c cache.Cache, ttl time.Duration, events Publisher, reads audit.Recorder, loc *time.Location,
	now func() time.Time) *Service {
	return &Service{db: db, cache: c, cacheTTL: ttl, events: events, reads: reads, loc: loc, now: now}
}

// Cache keys; InvalidateWards drops them after any bed change.
const (
	keyDepartments = "departments"
	keyWards       = "wards"
)

// Departments lists every department. Returns EFORBIDDEN without facility.read.
func (s *Service) Departments(ctx context.Context) ([]Department, error) {
	if _, err := hospital.Require(ctx, identity.PermFacilityRead); err != nil {
		return nil, err
	}
	return cache.GetOrLoad(ctx, s.cache, keyDepartments, s.cacheTTL, func() ([]Department, error) {
		return storeDepartments(ctx, s.db.Queries())
	})
}

// Wards lists every ward with bed counts. Returns EFORBIDDEN without bed.read.
func (s *Service) Wards(ctx context.Context) ([]Ward, error) {
	if _, err := hospital.Require(ctx, identity.PermBedRead); err != nil {
		return nil, err
	}
	return cache.GetOrLoad(ctx, s.cache, keyWards, s.cacheTTL, func() ([]Ward, error) {
		return storeWards(ctx, s.db.Queries())
	})
}

// Ward returns a ward with its beds. Returns ENOTFOUND for an unknown id.
func (s *Service) Ward(ctx context.Context, id string) (WardDetail, error) {
	if _, err := hospital.Require(ctx, identity.PermBedRead); err != nil {
		return WardDetail{}, err
	}
	wid, err := uuid.Parse(id)
	if err != nil {
		return WardDetail{}, hospital.Errorf(hospital.ENOTFOUND, "No ward has this id.")
	}
	d, err := storeWard(ctx, s.db.Queries(), wid)
	if hospital.ErrorCode(err) == hospital.ENOTFOUND {
		return WardDetail{}, hospital.Errorf(hospital.ENOTFOUND, "No ward has this id.")
	}
	return d, err
}

// InvalidateWards drops cached ward lists after a bed or ward change.
func (s *Service) InvalidateWards(ctx context.Context) {
	s.cache.Delete(ctx, keyWards, keyDepartments)
}
