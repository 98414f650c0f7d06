package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/client"
)

const (
	// auditPageSize is the number of rows of one report page.
	auditPageSize = 50
	// auditDefaultDays is the default period: the last week, today included.
	auditDefaultDays = 7
	// auditMaxSpan is the longest period the backend accepts.
	auditMaxSpan     = 366 * 24 * time.Hour
	auditDefaultSort = "-time"
)

// auditSorts are the report's sortable columns, keyed by the backend's
// sort keys (audit.SortKeys), and the direction of a first click: newest
// first for the time, A to Z for the others.
var auditSorts = map[string]struct{ label, first string }{
	"time":     {"Time (UTC)", "-time"},
	"actor":    {"User", "actor"},
	"action":   {"Action", "action"},
	"resource": {"Record", "resource"},
	"outcome":  {"Outcome", "outcome"},
}

func validAuditSort(s string) bool {
	return slices.Contains(audit.SortKeys, strings.TrimPrefix(s, "-"))
}

var auditOutcomes = []struct{ value, label string }{
	{"", "Any outcome"}, {audit.Success, "Success"}, {audit.Denied, "Denied"}, {audit.Error, "Error"},
}

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// auditFilter is the report's query string: the filter as typed, the sort
// and the offset.
type auditFilter struct {
	From, To          string // YYYY-MM-DD, UTC days, both included
	UserID, PatientID string
	Action, Outcome   string
	Sort              string
	Offset            int
}

// values encodes f without the defaults, so links stay short.
func (f auditFilter) values(withOffset bool) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"from": f.From, "to": f.To, "user_id": f.UserID, "patient_id": f.PatientID,
		"action": f.Action, "outcome": f.Outcome} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if f.Sort != "" && f.Sort != auditDefaultSort {
		v.Set("sort", f.Sort)
	}
	if withOffset && f.Offset > 0 {
		v.Set("offset", strconv.Itoa(f.Offset))
	}
	return v
}

func (f auditFilter) url(path string, withOffset bool) string {
	if q := f.values(withOffset).Encode(); q != "" {
		return path + "?" + q
	}
	return path
}

// parseAuditFilter reads the report's query; errs are per field.
func parseAuditFilter(q url.Values, now time.Time) (auditFilter, client.AuditQuery, map[string]string) {
	f := auditFilter{
		From:      strings.TrimSpace(q.Get("from")),
		To:        strings.TrimSpace(q.Get("to")),
		UserID:    strings.TrimSpace(q.Get("user_id")),
		PatientID: strings.TrimSpace(q.Get("patient_id")),
		Action:    strings.TrimSpace(q.Get("action")),
		Outcome:   q.Get("outcome"),
		Sort:      q.Get("sort"),
	}
	errs := map[string]string{}
	today := now.UTC().Truncate(24 * time.Hour)
	if f.To == "" {
		f.To = today.Format(time.DateOnly)
	}
	if f.From == "" {
		f.From = today.AddDate(0, 0, 1-auditDefaultDays).Format(time.DateOnly)
	}
	from, ferr := time.Parse(time.DateOnly, f.From)
	if ferr != nil {
		errs["from"] = "Enter the start date as a date, for example " + today.Format(time.DateOnly)
	}
	to, terr := time.Parse(time.DateOnly, f.To)
	if terr != nil {
		errs["to"] = "Enter the end date as a date, for example " + today.Format(time.DateOnly)
	}
	// The end date is included: the period runs to the next midnight.
	to = to.AddDate(0, 0, 1)
	if ferr == nil && terr == nil {
		switch {
		case !from.Before(to):
			errs["to"] = "The end date must be the same as or after the start date"
		case to.Sub(from) > auditMaxSpan:
			errs["to"] = "The period can be at most a year; narrow it, or export several periods"
		}
	}
	for name, id := range map[string]string{"user_id": f.UserID, "patient_id": f.PatientID} {
		if id != "" && !uuidRe.MatchString(id) {
			errs[name] = "Enter an id such as 0b9f2f3e-5d0c-4c55-9d56-3f1f2f0b7a01, or select one in the results"
		}
	}
	if utf8.RuneCountInString(f.Action) > 100 {
		errs["action"] = "The action can be at most 100 characters"
	}
	if !slices.ContainsFunc(auditOutcomes, func(o struct{ value, label string }) bool { return o.value == f.Outcome }) {
		f.Outcome = ""
	}
	if !validAuditSort(f.Sort) {
		f.Sort = auditDefaultSort
	}
	if n, err := strconv.Atoi(q.Get("offset")); err == nil && n > 0 {
		f.Offset = min(n, audit.MaxOffset)
	}
	aq := client.AuditQuery{From: from, To: to, UserID: f.UserID, PatientID: f.PatientID, Action: f.Action,
		Outcome: f.Outcome, Sort: f.Sort, Limit: auditPageSize, Offset: f.Offset}
	return f, aq, errs
}

// AuditListPage is the audit report: filters, sortable results, paging,
// the CSV export and the chain verification.
type AuditListPage struct {
	Layout
	Summary []SummaryItem
	Fields  []Field
	// Cols are the sortable column headers, by sort key.
	Cols     map[string]SortColumn
	Events   []AuditRow
	Searched bool
	First    int
	Last     int
	PrevURL  string
	NextURL  string
	CSVURL   string
	ClearURL string
	// Sort is kept in the filter form so a new search keeps the order.
	Sort string
}

// AuditRow is one audit event as the report shows it.
type AuditRow struct {
	Time, TimeISO string
	Actor         string
	ActorRole     string
	ActorURL      string
	Action        string
	ActionURL     string
	Resource      string
	PatientID     string
	PatientURL    string
	Outcome       string
	ClientIP      string
	RequestID     string
	Details       string
}

func newAuditRow(e audit.Event, f auditFilter) AuditRow {
	row := AuditRow{Time: formatUTC(e.OccurredAt), TimeISO: isoTime(e.OccurredAt), Actor: orDefault(e.ActorUsername, "system"),
		Action: e.Action, Outcome: e.Outcome, ClientIP: e.ClientIP, RequestID: e.RequestID, PatientID: e.PatientID,
		Resource: strings.TrimSpace(e.ResourceType + " " + e.ResourceID)}
	if e.ActorRole != "" {
		row.ActorRole = roleName(e.ActorRole)
	}
	// Selecting a user, patient or action narrows the report to it.
	narrow := func(set func(*auditFilter)) string {
		g := f
		g.Offset = 0
		set(&g)
		return g.url("/audit", false)
	}
	if e.ActorID != "" {
		row.ActorURL = narrow(func(g *auditFilter) { g.UserID = e.ActorID })
	}
	if e.PatientID != "" {
		row.PatientURL = narrow(func(g *auditFilter) { g.PatientID = e.PatientID })
	}
	row.ActionURL = narrow(func(g *auditFilter) { g.Action = e.Action })
	if len(e.Details) > 0 && string(e.Details) != "null" && string(e.Details) != "{}" {
		var v any
		if json.Unmarshal(e.Details, &v) == nil {
			if b, err := json.MarshalIndent(v, "", "  "); err == nil {
				row.Details = string(b)
			}
		}
	}
	return row
}

func auditFields(f auditFilter, errs map[string]string) []Field {
	var outcomes []Option
	for _, o := range auditOutcomes {
		outcomes = append(outcomes, Option{Value: o.value, Label: o.label, Selected: o.value == f.Outcome})
	}
	return withErrors([]Field{
		{Name: "from", Label: "From", Type: "date", Value: f.From, Width: "medium"},
		{Name: "to", Label: "To (included)", Type: "date", Value: f.To, Width: "medium"},
		{Name: "user_id", Label: "User id", Type: "text", Value: f.UserID, Optional: true, Autocomplete: "off", MaxLength: 36},
		{Name: "patient_id", Label: "Patient id", Type: "text", Value: f.PatientID, Optional: true, Autocomplete: "off", MaxLength: 36},
		{Name: "action", Label: "Action", Hint: "For example patient.read", Type: "text", Value: f.Action, Optional: true,
			Autocomplete: "off", MaxLength: 100},
		{Name: "outcome", Label: "Outcome", Options: outcomes, Optional: true},
	}, errs)
}

func (s *Server) handleAuditList(w http.ResponseWriter, r *http.Request) error {
	f, aq, errs := parseAuditFilter(r.URL.Query(), s.now())
	p := &AuditListPage{
		Layout:   Layout{Title: "Audit trail", Area: "Audit", Nav: "audit"},
		Cols:     map[string]SortColumn{},
		Sort:     f.Sort,
		ClearURL: "/audit",
	}
	for key, c := range auditSorts {
		g := f
		g.Offset = 0
		col := SortColumn{Label: c.label}
		switch f.Sort {
		case key:
			col.AriaSort, g.Sort = "ascending", "-"+key
		case "-" + key:
			col.AriaSort, g.Sort = "descending", key
		default:
			g.Sort = c.first
		}
		col.Href = g.url("/audit", false)
		p.Cols[key] = col
	}
	status := http.StatusOK
	if len(errs) == 0 {
		var page audit.Page
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			var err error
			page, err = api.AuditEvents(ctx, aq)
			return err
		})
		var ae *client.Error
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
			errs = ae.Errors
			if len(errs) == 0 {
				errs = map[string]string{"": orDefault(ae.Detail, "The report could not be run with this filter.")}
			}
		case err != nil:
			return err
		default:
			p.Searched = true
			for _, e := range page.Items {
				p.Events = append(p.Events, newAuditRow(e, f))
			}
			if len(p.Events) > 0 {
				p.First, p.Last = f.Offset+1, f.Offset+len(p.Events)
			}
			if f.Offset > 0 {
				g := f
				g.Offset = max(0, f.Offset-auditPageSize)
				p.PrevURL = g.url("/audit", true)
			}
			if page.More && f.Offset+auditPageSize <= audit.MaxOffset {
				g := f
				g.Offset = f.Offset + auditPageSize
				p.NextURL = g.url("/audit", true)
			}
			p.CSVURL = f.url("/audit/export.csv", false)
		}
	}
	p.Fields = auditFields(f, errs)
	p.Summary = summaryFor(p.Fields, errs)
	if len(p.Summary) > 0 {
		p.Title = "Error: " + p.Title
		status = http.StatusBadRequest
	}
	return s.render(w, r, status, "audit_list", p)
}

// handleAuditExport sends the report as CSV, with every matching row (up
// to the backend's limit), formula-escaped by the backend.
func (s *Server) handleAuditExport(w http.ResponseWriter, r *http.Request) error {
	f, aq, errs := parseAuditFilter(r.URL.Query(), s.now())
	if len(errs) > 0 {
		// The report page says what is wrong with the filter.
		http.Redirect(w, r, f.url("/audit", false), http.StatusSeeOther)
		return nil
	}
	aq.Limit, aq.Offset = 0, 0
	var body []byte
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		body, err = api.AuditCSV(ctx, aq)
		return err
	})
	if client.StatusOf(err) == http.StatusBadRequest {
		http.Redirect(w, r, f.url("/audit", false), http.StatusSeeOther)
		return nil
	}
	if err != nil {
		return err
	}
	name := "audit-" + strings.ReplaceAll(f.From, "-", "") + "-" + strings.ReplaceAll(f.To, "-", "") + ".csv"
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

// AuditVerifyPage shows the result of walking the audit hash chain.
type AuditVerifyPage struct {
	Layout
	Report audit.Report
}

func (s *Server) handleAuditVerify(w http.ResponseWriter, r *http.Request) error {
	var rep audit.Report
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		rep, err = api.AuditVerify(ctx)
		return err
	})
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "audit_verify", &AuditVerifyPage{
		Layout: Layout{Title: "Audit chain verification", Area: "Audit", Nav: "audit"},
		Report: rep,
	})
}
