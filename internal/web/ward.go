package web

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

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

// WardListPage lists the wards with their bed counts.
type WardListPage struct {
	Layout
	Wards    []WardRow
	Totals   ward.BedCounts
	TotalBar BedBar
}

// WardRow is one ward of the list.
type WardRow struct {
	ward.Ward
	Bar BedBar
}

func (s *Server) handleWardList(w http.ResponseWriter, r *http.Request) error {
	if !sessionFrom(r.Context()).can(identity.PermBedRead) {
		return errForbidden
	}
	var wards []ward.Ward
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		wards, err = api.Wards(ctx)
		return err
	})
	if err != nil {
		return err
	}
	p := &WardListPage{Layout: Layout{Title: "Wards and beds", Area: "Wards & beds", Nav: "wards"}}
	for _, wd := range wards {
		p.Wards = append(p.Wards, WardRow{Ward: wd, Bar: newBedBar(wd.Beds)})
		p.Totals = addCounts(p.Totals, wd.Beds)
	}
	p.TotalBar = newBedBar(p.Totals)
	return s.render(w, r, http.StatusOK, "ward_list", p)
}

// WardShowPage is one ward's bed board. Board is also served alone as
// the fragment app.js swaps in when a bed changes.
type WardShowPage struct {
	Layout
	Ward        ward.Ward
	Board       BedBoard
	Legend      []StatusCount
	FragmentURL string
}

// BedBoard is the live part of the ward page: the counts and the beds
// grouped by room.
type BedBoard struct {
	Counts []StatusCount
	Total  int
	Bar    BedBar
	Rooms  []Room
}

// Room is one room's beds.
type Room struct {
	Code string
	Beds []ward.Bed
}

func newBedBoard(beds []ward.Bed) BedBoard {
	var c ward.BedCounts
	byRoom := map[string][]ward.Bed{}
	for _, b := range beds {
		c.Total++
		switch b.Status {
		case "available":
			c.Available++
		case "occupied":
			c.Occupied++
		case "reserved":
			c.Reserved++
		case "cleaning":
			c.Cleaning++
		case "out_of_service":
			c.OutOfService++
		}
		byRoom[b.RoomCode] = append(byRoom[b.RoomCode], b)
	}
	board := BedBoard{Counts: countsByStatus(c), Total: c.Total, Bar: newBedBar(c)}
	for code, list := range byRoom {
		slices.SortFunc(list, func(a, b ward.Bed) int { return naturalCompare(a.Code, b.Code) })
		board.Rooms = append(board.Rooms, Room{Code: code, Beds: list})
	}
	slices.SortFunc(board.Rooms, func(a, b Room) int { return naturalCompare(a.Code, b.Code) })
	return board
}

func (s *Server) handleWardShow(w http.ResponseWriter, r *http.Request) error {
	if !sessionFrom(r.Context()).can(identity.PermBedRead) {
		return errForbidden
	}
	id := r.PathValue("id")
	var d ward.WardDetail
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		d, err = api.Ward(ctx, id)
		return err
	})
	if st := client.StatusOf(err); st == http.StatusNotFound || st == http.StatusBadRequest {
		return errNotFound
	}
	if err != nil {
		return err
	}
	board := newBedBoard(d.BedList)
	if r.URL.Query().Get("fragment") == "beds" {
		return s.renderFragment(w, "ward_show", "bed_board", board)
	}
	p := &WardShowPage{
		Layout:      Layout{Title: d.Name + " – beds", Area: "Wards & beds", Nav: "wards"},
		Ward:        d.Ward,
		Board:       board,
		Legend:      countsByStatus(ward.BedCounts{}),
		FragmentURL: "/wards/" + url.PathEscape(d.ID) + "?fragment=beds",
	}
	return s.render(w, r, http.StatusOK, "ward_show", p)
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
