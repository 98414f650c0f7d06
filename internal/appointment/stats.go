package appointment

import (
	"context"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// TodayByStatus counts the appointments starting today, in the hospital's
// time zone, by status: for the metrics (a system read: no actor, no
// patient).
func (s *Service) TodayByStatus(ctx context.Context) (map[string]int, error) {
	now := s.now().In(s.loc)
	from := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, s.loc)
	rows, err := s.db.Queries().AppointmentCountByStatus(ctx, dbgen.AppointmentCountByStatusParams{
		FromTime: from, ToTime: from.AddDate(0, 0, 1)})
	if err != nil {
		return nil, postgres.Translate(err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.Status] = int(r.Appointments)
	}
	return out, nil
}
