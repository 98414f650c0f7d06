package patient

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/access"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

func fromRow(r dbgen.Patient) Patient {
	p := Patient{ID: r.ID.String(), MRN: r.Mrn, FamilyName: r.FamilyName, GivenNames: r.GivenNames, Sex: r.Sex,
		Phone: r.Phone, Email: r.Email, AddressLine: r.AddressLine, City: r.City, PostalCode: r.PostalCode,
		Country: r.Country, Deceased: r.Deceased, Version: int(r.Version), CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if r.BirthDate != nil {
		p.BirthDate = r.BirthDate.Format("2006-01-02")
	}
	return p
}

func storeCreate(ctx context.Context, q *dbgen.Queries, in RegisterInput, birth *time.Time, by *uuid.UUID) (Patient, error) {
	row, err := q.PatientCreate(ctx, dbgen.PatientCreateParams{FamilyName: in.FamilyName, GivenNames: in.GivenNames,
		BirthDate: birth, Sex: in.Sex, Phone: in.Phone, Email: in.Email, AddressLine: in.AddressLine, City: in.City,
		PostalCode: in.PostalCode, Country: in.Country, CreatedBy: by})
	if err != nil {
		return Patient{}, postgres.Translate(err)
	}
	return fromRow(row), nil
}

func storeGet(ctx context.Context, q *dbgen.Queries, id uuid.UUID) (Patient, error) {
	row, err := q.PatientGet(ctx, id)
	if err != nil {
		return Patient{}, postgres.Translate(err)
	}
	return fromRow(row), nil
}

// cursor is the sort key of the last row of a page.
type cursor struct {
	Family  string    `json:"f,omitempty"`
	Given   string    `json:"g,omitempty"`
	Created time.Time `json:"c,omitzero"`
	MRN     string    `json:"m,omitempty"`
	ID      uuid.UUID `json:"i"`
}

// storeList runs the keyset query of the requested sort; one query per
// sort key, so the sort parameter never becomes SQL.
func storeList(ctx context.Context, q *dbgen.Queries, f ListFilter, scope access.Scope, page httpx.PageRequest) ([]Patient, string, error) {
	var after *cursor
	if page.Cursor != "" {
		after = &cursor{}
		if err := httpx.DecodeCursor(page.Cursor, after); err != nil {
			return nil, "", err
		}
	}
	lim := int32(page.Limit + 1)
	wards := scope.Wards
	if wards == nil {
		wards = []uuid.UUID{}
	}
	var rows []dbgen.Patient
	var err error
	switch page.Sort {
	case "name", "-name":
		p := dbgen.PatientListByNameParams{Prefix: f.NamePrefix, Lim: lim, ScopeUser: scope.User, ScopeWards: wards, ScopeDepartment: scope.Department}
		if after != nil {
			p.AfterFamily, p.AfterGiven, p.AfterID = &after.Family, &after.Given, &after.ID
		}
		if page.Sort == "name" {
			rows, err = q.PatientListByName(ctx, p)
		} else {
			rows, err = q.PatientListByNameDesc(ctx, dbgen.PatientListByNameDescParams(p))
		}
	case "created", "-created":
		p := dbgen.PatientListByCreatedParams{Prefix: f.NamePrefix, Lim: lim, ScopeUser: scope.User, ScopeWards: wards, ScopeDepartment: scope.Department}
		if after != nil {
			p.AfterCreated, p.AfterID = &after.Created, &after.ID
		}
		if page.Sort == "created" {
			rows, err = q.PatientListByCreated(ctx, p)
		} else {
			rows, err = q.PatientListByCreatedDesc(ctx, dbgen.PatientListByCreatedDescParams(p))
		}
	case "mrn", "-mrn":
		p := dbgen.PatientListByMRNParams{Prefix: f.NamePrefix, Lim: lim, ScopeUser: scope.User, ScopeWards: wards, ScopeDepartment: scope.Department}
		if after != nil {
			p.AfterMrn = &after.MRN
		}
		if page.Sort == "mrn" {
			rows, err = q.PatientListByMRN(ctx, p)
		} else {
			rows, err = q.PatientListByMRNDesc(ctx, dbgen.PatientListByMRNDescParams(p))
		}
	}
	if err != nil {
		return nil, "", postgres.Translate(err)
	}
	next := ""
	if len(rows) > page.Limit {
		rows = rows[:page.Limit]
		last := rows[len(rows)-1]
		next = httpx.EncodeCursor(cursor{Family: last.FamilyName, Given: last.GivenNames, Created: last.CreatedAt, MRN: last.Mrn, ID: last.ID})
	}
	out := make([]Patient, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, next, nil
}

// storeUpdate writes in over version; it returns EPRECONDITION when the
// record changed since the client read it, ENOTFOUND when it is gone.
func storeUpdate(ctx context.Context, q *dbgen.Queries, id uuid.UUID, version int, in RegisterInput, birth *time.Time) (Patient, error) {
	row, err := q.PatientUpdate(ctx, dbgen.PatientUpdateParams{ID: id, Version: int32(version), FamilyName: in.FamilyName,
		GivenNames: in.GivenNames, BirthDate: birth, Sex: in.Sex, Phone: in.Phone, Email: in.Email,
		AddressLine: in.AddressLine, City: in.City, PostalCode: in.PostalCode, Country: in.Country})
	if err == nil {
		return fromRow(row), nil
	}
	if err = postgres.Translate(err); hospital.ErrorCode(err) != hospital.ENOTFOUND {
		return Patient{}, err
	}
	if _, err := storeGet(ctx, q, id); err != nil {
		return Patient{}, err
	}
	return Patient{}, hospital.Errorf(hospital.EPRECONDITION,
		"This patient was changed by someone else since you opened it; reload and apply your change again.")
}
