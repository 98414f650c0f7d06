package audit

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// PermAuditRead is the permission to read the audit trail.
const PermAuditRead = "audit.read"

// Event is one audit row as the report shows it.
type Event struct {
	ID            int64           `json:"id"`
	OccurredAt    time.Time       `json:"occurred_at"`
	ActorID       string          `json:"actor_id,omitempty"`
	ActorUsername string          `json:"actor_username,omitempty"`
	ActorRole     string          `json:"actor_role,omitempty"`
	Action        string          `json:"action"`
	ResourceType  string          `json:"resource_type"`
	ResourceID    string          `json:"resource_id,omitempty"`
	PatientID     string          `json:"patient_id,omitempty"`
	Outcome       string          `json:"outcome"`
	RequestID     string          `json:"request_id,omitempty"`
	ClientIP      string          `json:"client_ip,omitempty"`
	UserAgent     string          `json:"user_agent,omitempty"`
	Details       json.RawMessage `json:"details"`
}

// Filter selects audit rows. From and To are required (a period).
type Filter struct {
	From      time.Time
	To        time.Time
	ActorID   *uuid.UUID
	PatientID *uuid.UUID
	Action    *string
	Outcome   *string
}

// SortKeys are the allowed sort keys of the report.
var SortKeys = []string{"time", "action", "actor", "outcome", "resource"}

// Page is one page of the report.
type Page struct {
	Items  []Event `json:"items"`
	Offset int     `json:"offset"`
	Limit  int     `json:"limit"`
	Sort   string  `json:"sort"`
	// More is true when another page follows.
	More bool `json:"more"`
}

// MaxOffset bounds paging through the report; narrower filters or the CSV
// export reach beyond it.
const MaxOffset = 10000

// Reader serves the audit report.
type Reader struct {
	db *postgres.DB
}

// NewReader returns the audit report service.
func NewReader(db *postgres.DB) *Reader { return &Reader{db: db} }

// Search returns a page of audit rows; the search itself is audited.
// Returns EFORBIDDEN without audit.read, EINVALID for a bad filter.
func (r *Reader) Search(ctx context.Context, f Filter, sort string, limit, offset int) (Page, error) {
	if _, err := hospital.Require(ctx, PermAuditRead); err != nil {
		return Page{}, err
	}
	if err := f.check(); err != nil {
		return Page{}, err
	}
	if offset < 0 || offset > MaxOffset {
		return Page{}, &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.",
			Fields: map[string]string{"offset": "must be from 0 to " + strconv.Itoa(MaxOffset) + "; narrow the period or export CSV"}}
	}
	var events []Event
	err := r.db.InTx(ctx, func(q *dbgen.Queries) error {
		rows, err := q.AuditSearch(ctx, f.params(sort, limit+1, offset))
		if err != nil {
			return err
		}
		events = make([]Event, len(rows))
		for i, row := range rows {
			events[i] = fromRow(row)
		}
		return Write(ctx, q, Entry{Action: "audit.search", ResourceType: "audit_event", Details: f.details(len(rows))})
	})
	if err != nil {
		return Page{}, err
	}
	p := Page{Items: events, Offset: offset, Limit: limit, Sort: sort}
	if len(events) > limit {
		p.Items, p.More = events[:limit], true
	}
	return p, nil
}

// ExportCSV writes every matching row (up to maxRows) as CSV. Cells that
// a spreadsheet would run as a formula are escaped.
func (r *Reader) ExportCSV(ctx context.Context, w io.Writer, f Filter, sort string, maxRows int) error {
	if _, err := hospital.Require(ctx, PermAuditRead); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	var rows []dbgen.AuditSearchRow
	err := r.db.InTx(ctx, func(q *dbgen.Queries) error {
		var err error
		if rows, err = q.AuditSearch(ctx, f.params(sort, maxRows, 0)); err != nil {
			return err
		}
		return Write(ctx, q, Entry{Action: "audit.export", ResourceType: "audit_event", Details: f.details(len(rows))})
	})
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "occurred_at", "actor_username", "actor_id", "actor_role", "action", "resource_type",
		"resource_id", "patient_id", "outcome", "request_id", "client_ip", "user_agent", "details"})
	for _, row := range rows {
		e := fromRow(row)
		rec := []string{strconv.FormatInt(e.ID, 10), e.OccurredAt.UTC().Format(time.RFC3339Nano), e.ActorUsername, e.ActorID,
			e.ActorRole, e.Action, e.ResourceType, e.ResourceID, e.PatientID, e.Outcome, e.RequestID, e.ClientIP,
			e.UserAgent, string(e.Details)}
		for i := range rec {
			rec[i] = httpx.CSVSafe(rec[i])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func (f Filter) check() error {
	var v hospital.Validation
	v.Check(!f.From.IsZero(), "from", "is required (RFC 3339 time or YYYY-MM-DD)")
	v.Check(!f.To.IsZero(), "to", "is required (RFC 3339 time or YYYY-MM-DD)")
	v.Check(f.From.IsZero() || f.To.IsZero() || f.From.Before(f.To), "to", "must be after from")
	v.Check(f.From.IsZero() || f.To.IsZero() || f.To.Sub(f.From) <= 366*24*time.Hour, "to", "the period can be at most a year")
	if f.Outcome != nil {
		o := *f.Outcome
		v.Check(o == Success || o == Denied || o == Error, "outcome", "must be success, denied or error")
	}
	if f.Action != nil {
		v.Check(len(*f.Action) <= 100, "action", "is too long")
	}
	return v.Err()
}

func (f Filter) params(sort string, limit, offset int) dbgen.AuditSearchParams {
	return dbgen.AuditSearchParams{FromTime: f.From, ToTime: f.To, ActorID: f.ActorID, PatientID: f.PatientID,
		Action: f.Action, Outcome: f.Outcome, Sort: sort, Lim: int32(limit), Off: int32(offset)}
}

func (f Filter) details(n int) map[string]any {
	d := map[string]any{"from": f.From, "to": f.To, "rows": n}
	if f.ActorID != nil {
		d["actor_id"] = f.ActorID.String()
	}
	if f.PatientID != nil {
		d["patient_id"] = f.PatientID.String()
	}
	if f.Action != nil {
		d["action"] = *f.Action
	}
	return d
}

func fromRow(r dbgen.AuditSearchRow) Event {
	e := Event{ID: r.ID, OccurredAt: r.OccurredAt, ActorUsername: r.ActorUsername, ActorRole: r.ActorRole, Action: r.Action,
		ResourceType: r.ResourceType, ResourceID: r.ResourceID, Outcome: r.Outcome, RequestID: r.RequestID,
		ClientIP: r.ClientIp, UserAgent: r.UserAgent, Details: json.RawMessage(r.Details)}
	if r.ActorID != nil {
		e.ActorID = r.ActorID.String()
	}
	if r.PatientID != nil {
		e.PatientID = r.PatientID.String()
	}
	return e
}

// ParseTime accepts RFC 3339 or a date (midnight UTC).
func ParseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, true
	}
	return time.Time{}, false
}
