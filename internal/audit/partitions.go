package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/postgres"
)

// PartitionMonthsAhead is how many months of audit_events partitions are
// kept ready beyond the current one.
const PartitionMonthsAhead = 3

// RunPartitions creates the missing month partitions of audit_events
// (migration 00016) at start and then every interval until ctx ends. Every
// replica runs it; the database lets one create at a time. A month that
// never got its partition is not an outage: its rows go to the DEFAULT
// partition (docs/operations.md says what to do then). ensured is called
// after each pass that succeeded (metrics).
func RunPartitions(ctx context.Context, db *postgres.DB, log *slog.Logger, interval time.Duration, ensured func()) {
	if interval <= 0 {
		interval = time.Hour
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := db.Queries().AuditPartitionsEnsure(ctx, PartitionMonthsAhead)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("audit partitions could not be created; will retry", "error", err)
		case err == nil:
			if n > 0 {
				log.Info("audit partitions created", "partitions", n, "months_ahead", PartitionMonthsAhead)
			}
			ensured()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
