package queue

import (
	"context"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/metrics"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
)

// Lengths reads every department's queue for the metrics (a system read:
// no actor, no patient).
func (s *Service) Lengths(ctx context.Context) ([]metrics.DepartmentQueue, error) {
	rows, err := s.db.Queries().QueueLengths(ctx)
	if err != nil {
		return nil, postgres.Translate(err)
	}
	out := make([]metrics.DepartmentQueue, 0, len(rows))
	for _, r := range rows {
		out = append(out, metrics.DepartmentQueue{DepartmentID: r.DepartmentID.String(), Department: r.DepartmentCode,
			Waiting: int(r.Waiting), LongestWait: time.Duration(r.LongestWaitSeconds * float64(time.Second))})
	}
	return out, nil
}
