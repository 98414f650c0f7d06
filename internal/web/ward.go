package web

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

// BedBar is a stacked bar of bed counts by status. It is drawn as SVG
// rectangles (the CSP forbids style attributes) and described in words
// for screen readers.
type BedBar struct {
	Segments []BarSegment
	Label    string
}

// BarSegment is one status's part of a BedBar, in percent of its width.
type BarSegment struct {
	Status string
	X      string
	Width  string
}

// StatusCount is the number of beds in one status.
type StatusCount struct {
	Status string
	Label  string
	Count  int
}

func countsByStatus(c ward.BedCounts) []StatusCount {
	n := map[string]int{"available": c.Available, "occupied": c.Occupied, "reserved": c.Reserved,
		"cleaning": c.Cleaning, "out_of_service": c.OutOfService}
	out := make([]StatusCount, 0, len(bedStatuses))
	for _, st := range bedStatuses {
		out = append(out, StatusCount{Status: st, Label: bedStatusLabel(st), Count: n[st]})
	}
	return out
}

func newBedBar(c ward.BedCounts) BedBar {
	counts := countsByStatus(c)
	total := 0
	for _, sc := range counts {
		total += sc.Count
	}
	var b BedBar
	var words []string
	x := 0.0
	for _, sc := range counts {
		if sc.Count == 0 {
			continue
		}
		w := 100 * float64(sc.Count) / float64(total)
		b.Segments = append(b.Segments, BarSegment{Status: sc.Status,
			X: strconv.FormatFloat(x, 'f', 2, 64), Width: strconv.FormatFloat(w, 'f', 2, 64)})
		words = append(words, strconv.Itoa(sc.Count)+" "+strings.ToLower(sc.Label))
		x += w
	}
	if total == 0 {
		b.Label = "No beds"
	} else {
		b.Label = strconv.Itoa(total) + " beds: " + strings.Join(words, ", ")
	}
	return b
}

func addCounts(a, b ward.BedCounts) ward.BedCounts {
	return ward.BedCounts{Total: a.Total + b.Total, Available: a.Available + b.Available, Occupied: a.Occupied + b.Occupied,
		Reserved: a.Reserved + b.Reserved, Cleaning: a.Cleaning + b.Cleaning, OutOfService: a.OutOfService + b.OutOfService}
}

// wardURL is a ward's page: its beds and the patients in them.
func wardURL(id string) string { return "/wards/" + url.PathEscape(id) }

// handleWardList keeps the old address of the ward list working: the bed
// board took its place.
func (s *Server) handleWardList(w http.ResponseWriter, r *http.Request) error {
	http.Redirect(w, r, "/beds", http.StatusMovedPermanently)
	return nil
}

// WardShowPage is one ward: who lies where since when, and its beds, live.
// Live is also served alone as the fragment app.js swaps in when a bed
// of the ward changes.
type WardShowPage struct {
	Layout
	Ward        ward.Ward
	Tabs        []NavItem
	Live        WardLive
	Legend      []StatusCount
	FragmentURL string
	BoardURL    string
}

// WardLive is the live part of the ward page.
type WardLive struct {
	Ward WardBoard
	// Patients are the occupied beds whose patient the user may see, in
	// bed order.
	Patients []BedView
	// Hidden counts the other occupied beds (patients outside the user's
	// care, or a role that does not see patients).
	Hidden   int
	CanAdmit bool
	At       string
}

func (s *Server) handleWardShow(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	id := r.PathValue("id")
	fragment := r.URL.Query().Get("fragment") == "beds"
	var b ward.Board
	var d ward.WardDetail
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		if b, err = api.BedBoard(ctx, client.BoardQuery{WardID: id}); err != nil || fragment {
			return err
		}
		d, err = api.Ward(ctx, id)
		return err
	})
	if st := client.StatusOf(err); st == http.StatusNotFound || st == http.StatusBadRequest {
		return errNotFound
	}
	if err != nil {
		return err
	}
	if len(b.Wards) != 1 {
		return errNotFound
	}
	bv := s.newBoardView(sess, b, "")
	live := WardLive{Ward: bv.Wards[0], CanAdmit: bv.CanAdmit, At: bv.At}
	for _, room := range live.Ward.Rooms {
		for _, bed := range room.Beds {
			if bed.Status != "occupied" {
				continue
			}
			if bed.PatientName == "" {
				live.Hidden++
				continue
			}
			live.Patients = append(live.Patients, bed)
		}
	}
	slices.SortFunc(live.Patients, func(a, b BedView) int { return naturalCompare(a.Code, b.Code) })
	if fragment {
		return s.renderFragment(w, "ward_show", "ward_live", live)
	}
	p := &WardShowPage{
		Layout:      Layout{Title: d.Name + " – ward", Area: "Wards & beds", Nav: "beds"},
		Ward:        d.Ward,
		Tabs:        bedTabs(sess, ""),
		Live:        live,
		Legend:      countsByStatus(ward.BedCounts{}),
		FragmentURL: wardURL(d.ID) + "?fragment=beds",
		BoardURL:    "/beds?ward_id=" + url.QueryEscape(d.ID),
	}
	return s.render(w, r, http.StatusOK, "ward_show", p)
}

// bedTabs is the sub-navigation of the bed pages; current is the key of
// the page shown ("" for none, as on a ward's page).
func bedTabs(sess *session, current string) []NavItem {
	tabs := []NavItem{{Href: "/beds", Label: "Bed board", Current: current == "beds"},
		{Href: "/housekeeping", Label: "Housekeeping", Current: current == "housekeeping"},
		{Href: "/census", Label: "Census", Current: current == "census"}}
	if sess.can(identity.PermAdmissionWrite) {
		tabs = append(tabs, NavItem{Href: "/admissions/new", Label: "Admit a patient", Current: current == "admit"})
	}
	return tabs
}

// naturalCompare orders "Bed 2" before "Bed 10".
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da != "" && db != "" {
			na, _ := strconv.Atoi(da)
			nb, _ := strconv.Atoi(db)
			if c := cmp.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if c := cmp.Compare(a[0], b[0]); c != 0 {
			return c
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitPrefix(s string) string {
	i := 0
	for i < len(s) && i < 9 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// dateTimeIn is "2 Mar 2026, 14:05" in the hospital's time zone.
func dateTimeIn(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format("2 Jan 2006, 15:04")
}

// durationText is a time span as a ward says it: "40 min", "5 h", "3 days".
func durationText(d time.Duration) string {
	switch {
	case d < time.Hour:
		return strconv.Itoa(max(0, int(d.Minutes()))) + " min"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + " h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + " days"
}

// stayDay is the day of a stay: the day of admission is day 1, counted
// in the hospital's calendar days.
func stayDay(admitted, now time.Time, loc *time.Location) int {
	a, n := midnight(admitted, loc), midnight(now, loc)
	days := 0
	for d := a; d.Before(n) && days < 100000; d = d.AddDate(0, 0, 1) {
		days++
	}
	return days + 1
}

// stayText says where a stay is against its expected length: "day 3 of
// 5", "day 6 · discharge due today", "day 8 · discharge was due 7 Mar"
// (overdue). A stay of 5 days is due to end on day 6, the discharge day.
func stayText(admitted, now time.Time, expected *int, loc *time.Location) (string, bool) {
	day := stayDay(admitted, now, loc)
	text := "day " + strconv.Itoa(day)
	switch {
	case expected == nil:
		return text, false
	case day <= *expected:
		return text + " of " + strconv.Itoa(*expected), false
	case day == *expected+1:
		return text + " · discharge due today", false
	}
	due := midnight(admitted, loc).AddDate(0, 0, *expected)
	return text + " · discharge was due " + due.Format("2 Jan"), true
}
