package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

func TestAuditReport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.as(identity.RoleAuditor)
	e.api.auditMore = true
	e.login()
	res := e.get("/audit?from=2026-03-01&to=2026-03-02&outcome=denied&action=patient.read&sort=-action&offset=50")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /audit: %d", res.StatusCode)
	}
	want := url.Values{"from": {"2026-03-01T00:00:00Z"}, "to": {"2026-03-03T00:00:00Z"}, "outcome": {"denied"},
		"action": {"patient.read"}, "sort": {"-action"}, "limit": {"50"}, "offset": {"50"}}
	if got := e.api.auditQuery; got.Encode() != want.Encode() {
		t.Errorf("API query\n got %v\nwant %v", got, want)
	}

	// Every sort link uses an allowed key, and leaves the filter as it is.
	heads := findAll(find(res.doc, byTag("thead")), byTag("th"))
	var keys []string
	for _, th := range heads {
		a := find(th, byTag("a"))
		if a == nil {
			continue
		}
		u, err := url.Parse(attr(a, "href"))
		if err != nil || u.Path != "/audit" {
			t.Fatalf("sort link %q", attr(a, "href"))
		}
		q := u.Query()
		sort := q.Get("sort")
		if sort == "" {
			sort = "-time"
		}
		if !slices.Contains(audit.SortKeys, strings.TrimPrefix(sort, "-")) {
			t.Errorf("sort link with key %q outside the allow-list", sort)
		}
		if q.Get("from") != "2026-03-01" || q.Get("outcome") != "denied" || q.Has("offset") {
			t.Errorf("sort link %q loses the filter or keeps the page", attr(a, "href"))
		}
		keys = append(keys, strings.TrimPrefix(sort, "-"))
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"action", "actor", "outcome", "resource", "time"}) {
		t.Errorf("sortable columns %v", keys)
	}
	sorted := findAll(res.doc, and(byTag("th"), func(n *html.Node) bool { return hasAttr(n, "aria-sort") }))
	if len(sorted) != 1 || attr(sorted[0], "aria-sort") != "descending" || !strings.Contains(text(sorted[0]), "Action") {
		t.Fatalf("aria-sort on %d headers", len(sorted))
	}
	if href := attr(find(sorted[0], byTag("a")), "href"); !strings.Contains(href, "sort=action") {
		t.Errorf("the active column toggles to %q", href)
	}

	rows := findAll(find(res.doc, byTag("tbody")), byTag("tr"))
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, want := range []string{"2026-03-02 14:05:09 UTC", "j.smith", "Nurse", "patient.read", "denied", "10.0.0.7"} {
		if !strings.Contains(text(rows[0]), want) {
			t.Errorf("row lacks %q: %q", want, text(rows[0]))
		}
	}
	if !strings.Contains(text(rows[1]), "system") {
		t.Errorf("a row without actor: %q", text(rows[1]))
	}
	actor := find(rows[0], and(byTag("a"), func(n *html.Node) bool { return text(n) == "j.smith" }))
	if u, _ := url.Parse(attr(actor, "href")); u.Query().Get("user_id") != testUserID {
		t.Errorf("actor link %q does not filter by the user", attr(actor, "href"))
	}

	// Paging by offset, with the more flag.
	prev, next := find(res.doc, byAttr("rel", "prev")), find(res.doc, byAttr("rel", "next"))
	if u, _ := url.Parse(attr(prev, "href")); u == nil || u.Query().Has("offset") {
		t.Errorf("previous page %q, want offset 0", attr(prev, "href"))
	}
	if u, _ := url.Parse(attr(next, "href")); u == nil || u.Query().Get("offset") != "100" || u.Query().Get("sort") != "-action" {
		t.Errorf("next page %q", attr(next, "href"))
	}
	e.api.mu.Lock()
	e.api.auditMore = false
	e.api.mu.Unlock()
	if r := e.get("/audit"); find(r.doc, byAttr("rel", "next")) != nil || find(r.doc, byAttr("rel", "prev")) != nil {
		t.Error("paging links without more rows")
	}

	// A sort key outside the allow-list never reaches the backend.
	e.get("/audit?sort=occurred_at;drop%20table")
	if got := e.api.auditQuery.Get("sort"); got != "-time" {
		t.Errorf("unknown sort sent as %q", got)
	}
	// Defaults: the last seven days, newest first.
	today := time.Now().UTC().Format(time.DateOnly)
	page := e.get("/audit")
	if v := attr(find(page.doc, byID("f-to")), "value"); v != today {
		t.Errorf("default end date %q, want %s", v, today)
	}

	// The CSV link carries the filter and the sort.
	csv := find(res.doc, and(byTag("a"), func(n *html.Node) bool { return strings.HasPrefix(attr(n, "href"), "/audit/export.csv?") }))
	if csv == nil || !strings.Contains(text(csv), "Download CSV") {
		t.Fatal("no Download CSV link")
	}
	u, _ := url.Parse(attr(csv, "href"))
	if q := u.Query(); q.Get("sort") != "-action" || q.Get("outcome") != "denied" || q.Has("offset") {
		t.Errorf("CSV link %q", attr(csv, "href"))
	}
}

func TestAuditCSVDownload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.as(identity.RoleAuditor)
	e.login()
	res := e.get("/audit/export.csv?from=2026-03-01&to=2026-03-02&patient_id=" + testPatientID + "&sort=actor")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("CSV: %d", res.StatusCode)
	}
	for h, want := range map[string]string{
		"Content-Type":        "text/csv; charset=utf-8",
		"Content-Disposition": `attachment; filename="audit-20260301-20260302.csv"`,
		"Cache-Control":       "no-store",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if !strings.HasPrefix(res.body, "id,occurred_at,actor\n") {
		t.Errorf("body %q", res.body)
	}
	q := e.api.csvQuery
	if q.Get("patient_id") != testPatientID || q.Get("sort") != "actor" || q.Get("to") != "2026-03-03T00:00:00Z" || q.Has("limit") {
		t.Errorf("CSV API query %v", q)
	}
	// A bad filter goes back to the report, which explains it.
	res = e.get("/audit/export.csv?from=2026-03-05&to=2026-03-01")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/audit?") {
		t.Fatalf("bad filter: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	// Only with audit.read.
	e2 := newEnv(t)
	e2.login()
	if r := e2.get("/audit/export.csv"); r.StatusCode != http.StatusForbidden || e2.api.csvQuery != nil {
		t.Errorf("receptionist export: %d", r.StatusCode)
	}
}

func TestAuditFilterErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.as(identity.RoleAuditor)
	e.login()
	res := e.get("/audit?from=2026-03-05&to=2026-03-01&user_id=bob&patient_id=1%27--")
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad filter: %d", res.StatusCode)
	}
	if e.api.auditQuery != nil {
		t.Error("a bad filter reached the backend")
	}
	for _, id := range []string{"f-to", "f-user_id", "f-patient_id"} {
		in := find(res.doc, byID(id))
		if attr(in, "aria-invalid") != "true" || find(res.doc, byID(id+"-error")) == nil {
			t.Errorf("#%s not marked with its error", id)
		}
	}
	if v := attr(find(res.doc, byID("f-user_id")), "value"); v != "bob" {
		t.Errorf("typed value lost: %q", v)
	}
	if r := e.get("/audit?from=2024-01-01&to=2026-01-01"); r.StatusCode != http.StatusBadRequest ||
		!strings.Contains(text(find(r.doc, byID("f-to-error"))), "at most a year") {
		t.Errorf("two-year period: %d", r.StatusCode)
	}
}

func TestAuditVerify(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.as(identity.RoleAuditor)
	e.login()
	list := e.get("/audit")
	if f := find(list.doc, and(byTag("form"), byAttr("action", "/audit/verify"))); f == nil || find(f, byTag("button")) == nil {
		t.Fatal("no Verify chain button")
	}
	res := e.get("/audit/verify")
	ok := find(res.doc, byClass("result--ok"))
	if res.StatusCode != http.StatusOK || !strings.Contains(text(ok), "intact") {
		t.Fatalf("verify: %d %q", res.StatusCode, text(ok))
	}
	rows := map[string]string{}
	for _, row := range findAll(res.doc, byClass("summary__row")) {
		rows[text(find(row, byTag("dt")))] = text(find(row, byTag("dd")))
	}
	if rows["Sealed blocks checked"] != "12" || rows["Sealed rows checked"] != "3400" || !strings.HasPrefix(rows["Rows not yet sealed"], "3") {
		t.Errorf("verify figures %v", rows)
	}

	e.api.mu.Lock()
	e.api.verify = audit.Report{OK: false, Blocks: 4, Rows: 90, Problem: "Row 17 does not match its hash.", ProblemEventID: 17, ProblemBlock: 3}
	e.api.mu.Unlock()
	res = e.get("/audit/verify")
	fail := find(res.doc, byClass("result--fail"))
	if attr(fail, "role") != "alert" || !strings.Contains(text(fail), "Row 17 does not match its hash.") {
		t.Errorf("failed verification shows %q", text(fail))
	}
	rows = map[string]string{}
	for _, row := range findAll(res.doc, byClass("summary__row")) {
		rows[text(find(row, byTag("dt")))] = text(find(row, byTag("dd")))
	}
	if rows["Audit row with the problem"] != "17" || rows["Block with the problem"] != "3" {
		t.Errorf("the altered row is not named: %v", rows)
	}
}
