package audit

import (
	"context"
	"fmt"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// Archive detaches partition, an ended month of audit_events, for
// archiving (migration 00021): in one transaction it verifies the blocks
// that hold the partition's rows, then records them as archived and
// detaches the partition, which stays in the database as a table of its
// own, to be dumped (pg_dump --table) and dropped. Verification checks
// those blocks' links but no longer their rows. It needs the schema
// owner's connection (the migrator's). It refuses a partition that is not
// a month of audit_events, a month not over, rows not sealed yet, and a
// chain that does not verify (the report says where).
func Archive(ctx context.Context, db *postgres.DB, partition string) (Archived, Report, error) {
	var out Archived
	var rep Report
	err := db.InTx(ctx, func(q *dbgen.Queries) error {
		plan, err := q.AuditArchivePlan(ctx, partition)
		if err != nil {
			return archiveError(err)
		}
		rep = Report{OK: true}
		if plan.FirstBlock != nil {
			arch, err := loadArchives(ctx, q)
			if err != nil {
				return err
			}
			if rep, err = verifyRange(ctx, q, *plan.FirstBlock, *plan.LastBlock, arch); err != nil {
				return err
			}
			if !rep.OK {
				return hospital.Errorf(hospital.ECONFLICT, "%s was not archived: its blocks do not verify (%s)", partition, rep.Problem)
			}
		}
		a, err := q.AuditArchive(ctx, dbgen.AuditArchiveParams{Partition: partition, FirstBlock: plan.FirstBlock,
			LastBlock: plan.LastBlock, RowCount: plan.RowCount})
		if err != nil {
			return archiveError(err)
		}
		out = archived(a)
		return nil
	})
	return out, rep, err
}

// Unarchive attaches an archived partition again, once restored from its
// dump under its name, and removes the record: its rows are verified
// again.
func Unarchive(ctx context.Context, db *postgres.DB, partition string) (Archived, error) {
	var out Archived
	err := db.InTx(ctx, func(q *dbgen.Queries) error {
		a, err := q.AuditUnarchive(ctx, partition)
		if err != nil {
			return archiveError(err)
		}
		out = archived(a)
		return nil
	})
	return out, err
}

func archived(a dbgen.AuditArchive) Archived {
	out := Archived{Partition: a.Partition, Rows: a.RowCount, ArchivedAt: a.ArchivedAt}
	if a.FirstBlock != nil && a.LastBlock != nil {
		out.FirstBlock, out.LastBlock = *a.FirstBlock, *a.LastBlock
	}
	return out
}

// archiveError keeps the database's own words for what it refused (the
// functions of migration 00021 say what is wrong).
func archiveError(err error) error {
	if msg, ok := postgres.Raised(err); ok {
		return fmt.Errorf("%s", msg)
	}
	return postgres.Translate(err)
}
