package web

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

// maxCensusDays is the longest period the API counts in one census.
const maxCensusDays = 366

// censusParams is the period and ward of the census page and its CSV.
type censusParams struct {
	From, To, WardID string
}

func (c censusParams) values() url.Values {
	v := url.Values{"from": {c.From}, "to": {c.To}}
	if c.WardID != "" {
		v.Set("ward_id", c.WardID)
	}
	return v
}

func (c censusParams) url(path string) string { return path + "?" + c.values().Encode() }

// parseCensusParams reads the period (default: the 30 days up to today
// in the hospital's time zone) and says what is wrong with it.
func (s *Server) parseCensusParams(qs url.Values) (censusParams, map[string]string) {
	today := midnight(s.now(), s.loc)
	c := censusParams{From: strings.TrimSpace(qs.Get("from")), To: strings.TrimSpace(qs.Get("to")), WardID: strings.TrimSpace(qs.Get("ward_id"))}
	errs := map[string]string{}
	to, from := today, today.AddDate(0, 0, -29)
	if c.To != "" {
		d, ok := parseDay(c.To, s.loc)
		if !ok {
			errs["to"] = "Enter the last day as a date, for example " + today.Format(isoDate)
		}
		to = d
	}
	if to.After(today) {
		// The census ends today; a later last day means "up to now".
		to = today
	}
	if c.From != "" {
		d, ok := parseDay(c.From, s.loc)
		if !ok {
			errs["from"] = "Enter the first day as a date, for example " + today.AddDate(0, 0, -29).Format(isoDate)
		}
		from = d
	} else if c.To != "" && errs["to"] == "" {
		from = to.AddDate(0, 0, -29)
	}
	if len(errs) == 0 {
		switch {
		case from.After(today):
			errs["from"] = "The first day cannot be in the future"
		case to.Before(from):
			errs["to"] = "The last day cannot be before the first day"
		case !to.Before(from.AddDate(0, 0, maxCensusDays)):
			errs["to"] = "The period can be at most 366 days; choose a shorter one"
		}
	}
	if len(errs) == 0 {
		c.From, c.To = from.Format(isoDate), to.Format(isoDate)
	}
	return c, errs
}

// CensusPage is the census of a period: per ward the patients at its end,
// admissions, discharges, average length of stay and occupancy; and the
// daily occupancy as a chart with the same numbers as a table.
type CensusPage struct {
	Layout
	Tabs        []NavItem
	Params      censusParams
	FromError   string
	ToError     string
	WardOptions []Option
	Quick       []NavItem
	Summary     []SummaryItem
	// Shown: the census was counted (the period is valid).
	Shown    bool
	Period   string
	Subject  string
	TimeZone string
	Rows     []CensusRow
	Total    *CensusRow
	Chart    OccupancyChart
	Days     []CensusDayRow
	CSVURL   string
}

// CensusRow is one ward's numbers over the period.
type CensusRow struct {
	Name, URL                               string
	Beds, Census, Admissions, Discharges    int
	AverageStay, Occupancy, OccupancyDetail string
}

// CensusDayRow is one day of the chart's data table.
type CensusDayRow struct {
	Day, ISO                       string
	Census, Admissions, Discharges int
	BedDays, Occupancy             string
}

// OccupancyChart is the daily occupancy as an inline SVG bar chart, drawn
// on the server (no script, no style attributes: the CSP forbids them).
// Coordinates are in the viewBox, 720 by 240.
type OccupancyChart struct {
	Title, Desc string
	Bars        []ChartBar
	YTicks      []ChartTick
	XTicks      []ChartTick
	// Average is the y of the period's average occupancy line.
	Average      string
	AverageLabel string
}

// ChartBar is one day's bar with its tooltip.
type ChartBar struct {
	X, Y, Width, Height string
	Label               string
}

// ChartTick is an axis label (and grid line).
type ChartTick struct {
	Pos, Label string
}

const (
	chartLeft, chartRight = 44.0, 712.0
	chartTop, chartBottom = 12.0, 208.0
)

func coord(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

func percentText(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" }

// newOccupancyChart draws days (of subject) as bars of 0 to 100 %.
func newOccupancyChart(subject, period string, days []ward.CensusDay, overall float64) OccupancyChart {
	c := OccupancyChart{Title: "Daily bed occupancy, " + subject + ", " + period}
	for _, pct := range []int{0, 25, 50, 75, 100} {
		y := chartBottom - (chartBottom-chartTop)*float64(pct)/100
		c.YTicks = append(c.YTicks, ChartTick{Pos: coord(y), Label: strconv.Itoa(pct) + "%"})
	}
	n := len(days)
	if n == 0 {
		c.Desc = "No days to show."
		return c
	}
	slot := (chartRight - chartLeft) / float64(n)
	width := math.Max(1, slot*0.72)
	every := int(math.Ceil(float64(n) / 8))
	lo, hi := 0, 0
	for i, d := range days {
		occ := math.Max(0, math.Min(1, d.Occupancy))
		h := (chartBottom - chartTop) * occ
		x := chartLeft + slot*float64(i) + (slot-width)/2
		day, _ := time.Parse(isoDate, d.Day)
		c.Bars = append(c.Bars, ChartBar{X: coord(x), Y: coord(chartBottom - h), Width: coord(width), Height: coord(h),
			Label: day.Format("Mon 2 Jan") + ": " + percentText(d.Occupancy) + " occupied, " + strconv.Itoa(d.Census) + " patients at midnight"})
		if i%every == 0 {
			c.XTicks = append(c.XTicks, ChartTick{Pos: coord(chartLeft + slot*float64(i) + slot/2), Label: day.Format("2 Jan")})
		}
		if d.Occupancy < days[lo].Occupancy {
			lo = i
		}
		if d.Occupancy > days[hi].Occupancy {
			hi = i
		}
	}
	c.Average = coord(chartBottom - (chartBottom-chartTop)*math.Max(0, math.Min(1, overall)))
	c.AverageLabel = "Average " + percentText(overall)
	dayOf := func(i int) string { d, _ := time.Parse(isoDate, days[i].Day); return d.Format("2 January") }
	c.Desc = "Bar chart of the share of beds occupied on each of " + plural(n, "day") + ". " +
		"Lowest " + percentText(days[lo].Occupancy) + " on " + dayOf(lo) + ", highest " + percentText(days[hi].Occupancy) +
		" on " + dayOf(hi) + "; " + strings.ToLower(c.AverageLabel) + " over the period. The same numbers are in the table below the chart."
	return c
}

func newCensusRow(w ward.CensusWard, url string) CensusRow {
	r := CensusRow{Name: w.Name, URL: url, Beds: w.Beds, Census: w.Census, Admissions: w.Admissions, Discharges: w.Discharges,
		Occupancy: percentText(w.Occupancy), AverageStay: "–"}
	if w.AverageLengthOfStay > 0 {
		r.AverageStay = strconv.FormatFloat(w.AverageLengthOfStay, 'f', 1, 64)
	}
	return r
}

// periodText is "4 Feb – 5 Mar 2030" or "5 Mar 2030".
func periodText(from, to string) string {
	f, err1 := time.Parse(isoDate, from)
	t, err2 := time.Parse(isoDate, to)
	if err1 != nil || err2 != nil {
		return from + " – " + to
	}
	if f.Equal(t) {
		return t.Format("2 Jan 2006")
	}
	if f.Year() == t.Year() {
		return f.Format("2 Jan") + " – " + t.Format("2 Jan 2006")
	}
	return f.Format("2 Jan 2006") + " – " + t.Format("2 Jan 2006")
}

func (s *Server) handleCensus(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	c, errs := s.parseCensusParams(r.URL.Query())
	var wards []ward.Ward
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		wards, err = api.Wards(ctx)
		return err
	})
	if err != nil {
		return err
	}
	known := false
	p := &CensusPage{Layout: Layout{Title: "Census and occupancy", Area: "Wards & beds", Nav: "census"}, Tabs: bedTabs(sess, "census")}
	p.WardOptions = []Option{{Value: "", Label: "All wards"}}
	for _, wd := range wards {
		p.WardOptions = append(p.WardOptions, Option{Value: wd.ID, Label: wd.Name, Selected: wd.ID == c.WardID})
		known = known || wd.ID == c.WardID
	}
	if !known {
		c.WardID = ""
	}
	today := midnight(s.now(), s.loc)
	for _, n := range []int{7, 30, 90} {
		q := censusParams{From: today.AddDate(0, 0, 1-n).Format(isoDate), To: today.Format(isoDate), WardID: c.WardID}
		p.Quick = append(p.Quick, NavItem{Href: q.url("/census"), Label: "Last " + strconv.Itoa(n) + " days",
			Current: len(errs) == 0 && q.From == c.From && q.To == c.To})
	}
	status := http.StatusOK
	var census ward.Census
	if len(errs) == 0 {
		f := ward.CensusFilter{From: c.From, To: c.To}
		if c.WardID != "" {
			f.WardID = &c.WardID
		}
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			var err error
			census, err = api.Census(ctx, f)
			return err
		})
		var ae *client.Error
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
			for k, msg := range ae.Errors {
				if k == "from" {
					errs["from"] = fieldMessage("The first day", msg)
				} else {
					errs["to"] = fieldMessage("The period", msg)
				}
			}
			if len(errs) == 0 {
				errs["to"] = orDefault(ae.Detail, "The period is not accepted")
			}
		case err != nil:
			return err
		}
	}
	p.Params = c
	if len(errs) > 0 {
		status = http.StatusBadRequest
		p.FromError, p.ToError = errs["from"], errs["to"]
		for _, k := range []string{"from", "to"} {
			if errs[k] != "" {
				p.Summary = append(p.Summary, SummaryItem{Text: errs[k], Href: "#f-" + k})
			}
		}
		p.Title = "Error: " + p.Title
		return s.render(w, r, status, "census", p)
	}
	p.Shown = true
	p.Params.From, p.Params.To = census.From, census.To
	p.Period = periodText(census.From, census.To)
	p.TimeZone = census.TimeZone
	p.CSVURL = p.Params.url("/census.csv")
	p.Subject = "all wards"
	series, overall := census.Hospital.Days, census.Hospital.Occupancy
	for _, wd := range census.Wards {
		p.Rows = append(p.Rows, newCensusRow(wd, censusParams{From: census.From, To: census.To, WardID: wd.ID}.url("/census")))
	}
	if c.WardID != "" && len(census.Wards) == 1 {
		p.Subject = census.Wards[0].Name
		series, overall = census.Wards[0].Days, census.Wards[0].Occupancy
	} else {
		t := newCensusRow(census.Hospital, "")
		t.Name = "All wards"
		p.Total = &t
	}
	p.Chart = newOccupancyChart(p.Subject, p.Period, series, overall)
	for _, d := range series {
		day, _ := time.Parse(isoDate, d.Day)
		p.Days = append(p.Days, CensusDayRow{Day: day.Format("Mon 2 Jan"), ISO: d.Day, Census: d.Census, Admissions: d.Admissions,
			Discharges: d.Discharges, BedDays: strconv.FormatFloat(d.OccupiedBedDays, 'f', 1, 64), Occupancy: percentText(d.Occupancy)})
	}
	return s.render(w, r, status, "census", p)
}

// handleCensusCSV passes the API's CSV through, with the user's session:
// the browser cannot call the API with the token itself.
func (s *Server) handleCensusCSV(w http.ResponseWriter, r *http.Request) error {
	c, errs := s.parseCensusParams(r.URL.Query())
	if len(errs) > 0 {
		http.Redirect(w, r, c.url("/census"), http.StatusSeeOther)
		return nil
	}
	f := ward.CensusFilter{From: c.From, To: c.To}
	if c.WardID != "" {
		f.WardID = &c.WardID
	}
	var body []byte
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		body, err = api.CensusCSV(ctx, f)
		return err
	})
	if client.StatusOf(err) == http.StatusBadRequest {
		http.Redirect(w, r, c.url("/census"), http.StatusSeeOther)
		return nil
	}
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="census-`+c.From+`-`+c.To+`.csv"`)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}
