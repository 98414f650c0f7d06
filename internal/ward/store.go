package ward

import (
	"context"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

func storeDepartments(ctx context.Context, q *dbgen.Queries) ([]Department, error) {
	rows, err := q.DepartmentList(ctx)
	if err != nil {
		return nil, postgres.Translate(err)
	}
	out := make([]Department, len(rows))
	for i, r := range rows {
		out[i] = Department{ID: r.ID.String(), Code: r.Code, Name: r.Name, Kind: r.Kind}
	}
	return out, nil
}

func storeWards(ctx context.Context, q *dbgen.Queries) ([]Ward, error) {
	rows, err := q.WardList(ctx)
	if err != nil {
		return nil, postgres.Translate(err)
	}
	out := make([]Ward, len(rows))
	for i, r := range rows {
		w := Ward{ID: r.ID.String(), Code: r.Code, Name: r.Name, Specialty: r.Specialty, Floor: r.Floor,
			DepartmentID: r.DepartmentID.String(), DepartmentName: r.DepartmentName,
			Beds: BedCounts{Total: int(r.BedsTotal), Available: int(r.BedsAvailable), Occupied: int(r.BedsOccupied),
				Reserved: int(r.BedsReserved), Cleaning: int(r.BedsCleaning), OutOfService: int(r.BedsOutOfService)}}
		if r.SexRestriction != nil {
			w.SexRestriction = *r.SexRestriction
		}
		out[i] = w
	}
	return out, nil
}

func storeWard(ctx context.Context, q *dbgen.Queries, id uuid.UUID) (WardDetail, error) {
	r, err := q.WardGet(ctx, id)
	if err != nil {
		return WardDetail{}, postgres.Translate(err)
	}
	beds, err := q.BedListByWard(ctx, id)
	if err != nil {
		return WardDetail{}, postgres.Translate(err)
	}
	d := WardDetail{Ward: Ward{ID: r.ID.String(), Code: r.Code, Name: r.Name, Specialty: r.Specialty, Floor: r.Floor,
		DepartmentID: r.DepartmentID.String(), DepartmentName: r.DepartmentName}, BedList: make([]Bed, len(beds))}
	if r.SexRestriction != nil {
		d.SexRestriction = *r.SexRestriction
	}
	for i, b := range beds {
		d.BedList[i] = Bed{ID: b.ID.String(), Code: b.Code, RoomID: b.RoomID.String(), RoomCode: b.RoomCode,
			Type: b.BedType, Status: b.Status, Version: int(b.Version)}
		d.Beds.Total++
		switch b.Status {
		case "available":
			d.Beds.Available++
		case "occupied":
			d.Beds.Occupied++
		case "reserved":
			d.Beds.Reserved++
		case "cleaning":
			d.Beds.Cleaning++
		case "out_of_service":
			d.Beds.OutOfService++
		}
	}
	return d, nil
}
