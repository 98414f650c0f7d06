package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

// BedBoardPage is the bed board: every ward's beds and their states, or
// one ward's, live. Board is also served alone as the fragment app.js
// swaps in when a bed changes; after a reconnect it fetches the whole
// board again.
type BedBoardPage struct {
	Layout
	Tabs        []NavItem
	WardID      string
	Status      string
	WardOptions []Option
	ShowOptions []Option
	Legend      []StatusCount
	Board       BoardView
	FragmentURL string
	// WardURL is the chosen ward's own page (patients and stays).
	WardURL string
}

// boardBedLimit is the most beds one page lists as bed tiles, as the
// options of a bed select or in a housekeeping list. A hospital with more
// asks for a ward first: the whole board of the benchmark's 40,000 beds
// was 25 MB of HTML and took 1.7 s.
const boardBedLimit = 400

// BoardView is the live part of the bed board.
type BoardView struct {
	Totals []StatusCount
	Total  int
	Bar    BedBar
	Wards  []WardBoard
	// Summary: more than one ward, so a table compares them.
	Summary bool
	// StatusLabel is the state the beds are filtered to ("" for all);
	// the counts still cover every bed.
	StatusLabel string
	CanAdmit    bool
	At          string
	// ChooseWard: more beds than one page lists; the wards' counts are
	// shown, each linking to its own board.
	ChooseWard bool
}

// WardBoard is one ward on the board with its counts and rooms.
type WardBoard struct {
	ID, Code, Name string
	URL            string
	// BoardURL is the ward's own bed board (same status filter).
	BoardURL string
	Counts   ward.BedCounts
	Bar      BedBar
	Rooms    []RoomView
	Shown    int // beds listed (after the status filter)
}

// RoomView is one room's beds.
type RoomView struct {
	Code string
	Beds []BedView
}

// BedView is one bed as a tile: its state in colour and in words, and
// for an occupied bed the patient, when the API named them (the user may
// see that patient), and the stay.
type BedView struct {
	ID, Code, RoomCode, WardID, WardName string
	Type, TypeLabel                      string
	Status, StatusLabel                  string
	PatientID, PatientName, PatientMRN   string
	// AdmissionURL links the admission for users who may read it.
	AdmissionURL string
	AdmittedAt   string
	AdmittedISO  string
	Stay         string
	Overdue      bool
	// AdmitURL is set on a free bed for users who may admit.
	AdmitURL string
}

// bedStatusFilters are the "Show" choices of the bed board.
var bedStatusFilters = []Option{{Value: "", Label: "All beds"}, {Value: "available", Label: "Available beds"},
	{Value: "occupied", Label: "Occupied beds"}, {Value: "cleaning", Label: "Beds being cleaned"},
	{Value: "reserved", Label: "Reserved beds"}, {Value: "out_of_service", Label: "Beds out of service"}}

func boardURL(wardID, status string) string {
	v := url.Values{}
	if wardID != "" {
		v.Set("ward_id", wardID)
	}
	if status != "" {
		v.Set("status", status)
	}
	if len(v) == 0 {
		return "/beds"
	}
	return "/beds?" + v.Encode()
}

// addQuery appends a query parameter (already encoded) to a local URL.
func addQuery(u, param string) string {
	if strings.Contains(u, "?") {
		return u + "&" + param
	}
	return u + "?" + param
}

// newBoardView turns the API's board into tiles grouped by ward and room.
func (s *Server) newBoardView(sess *session, b ward.Board, status string) BoardView {
	now := s.now()
	v := BoardView{Totals: countsByStatus(b.Totals), Total: b.Totals.Total, Bar: newBedBar(b.Totals), Summary: len(b.Wards) > 1,
		CanAdmit: sess.can(identity.PermAdmissionWrite), At: timeOfDay(b.At, s.loc), ChooseWard: b.BedsOmitted}
	if status != "" {
		v.StatusLabel = bedStatusLabel(status)
	}
	readAdmission := sess.can(identity.PermAdmissionRead)
	for _, w := range b.Wards {
		wb := WardBoard{ID: w.ID, Code: w.Code, Name: w.Name, URL: wardURL(w.ID), BoardURL: boardURL(w.ID, status),
			Counts: w.Counts, Bar: newBedBar(w.Counts)}
		byRoom := map[string][]BedView{}
		for _, bed := range w.Beds {
			bv := BedView{ID: bed.ID, Code: bed.Code, RoomCode: bed.RoomCode, WardID: w.ID, WardName: w.Name, Type: bed.Type,
				TypeLabel: bedTypeLabel(bed.Type), Status: bed.Status, StatusLabel: bedStatusLabel(bed.Status)}
			if p := bed.Patient; p != nil {
				bv.PatientID, bv.PatientName, bv.PatientMRN = p.ID, p.Name, p.MRN
				if readAdmission && bed.AdmissionID != "" {
					bv.AdmissionURL = admissionURL(bed.AdmissionID)
				}
			}
			// The stay shows only with the patient: without a name it
			// would still tell a curious user when someone came in.
			if bed.AdmittedAt != nil && bv.PatientName != "" {
				bv.AdmittedAt, bv.AdmittedISO = dateTimeIn(*bed.AdmittedAt, s.loc), isoTime(*bed.AdmittedAt)
				bv.Stay, bv.Overdue = stayText(*bed.AdmittedAt, now, bed.ExpectedDays, s.loc)
			}
			if bed.Status == "available" && v.CanAdmit {
				bv.AdmitURL = admitParams{BedID: bed.ID, WardID: w.ID}.url()
			}
			byRoom[bed.RoomCode] = append(byRoom[bed.RoomCode], bv)
			wb.Shown++
		}
		for code, list := range byRoom {
			slices.SortFunc(list, func(a, b BedView) int { return naturalCompare(a.Code, b.Code) })
			wb.Rooms = append(wb.Rooms, RoomView{Code: code, Beds: list})
		}
		slices.SortFunc(wb.Rooms, func(a, b RoomView) int { return naturalCompare(a.Code, b.Code) })
		v.Wards = append(v.Wards, wb)
	}
	return v
}

func (s *Server) handleBedBoard(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	qs := r.URL.Query()
	wardID, status := strings.TrimSpace(qs.Get("ward_id")), qs.Get("status")
	if !slices.ContainsFunc(bedStatusFilters, func(o Option) bool { return o.Value == status }) {
		status = ""
	}
	fragment := qs.Get("fragment") == "board"
	var b ward.Board
	var wards []ward.Ward
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		if b, err = api.BedBoard(ctx, client.BoardQuery{WardID: wardID, Status: status, MaxBeds: s.maxBeds(wardID)}); err != nil || fragment {
			return err
		}
		wards, err = api.Wards(ctx)
		return err
	})
	if st := client.StatusOf(err); (st == http.StatusNotFound || st == http.StatusBadRequest) && wardID != "" {
		if fragment {
			return errNotFound
		}
		s.setFlash(w, Flash{Kind: "error", Message: "That ward does not exist (any more); here are all wards."})
		http.Redirect(w, r, boardURL("", status), http.StatusSeeOther)
		return nil
	}
	if err != nil {
		return err
	}
	board := s.newBoardView(sess, b, status)
	if fragment {
		return s.renderFragment(w, "bed_board", "bed_board_live", board)
	}
	p := &BedBoardPage{
		Layout:      Layout{Title: "Bed board", Area: "Wards & beds", Nav: "beds"},
		Tabs:        bedTabs(sess, "beds"),
		WardID:      wardID,
		Status:      status,
		Legend:      countsByStatus(ward.BedCounts{}),
		Board:       board,
		FragmentURL: addQuery(boardURL(wardID, status), "fragment=board"),
	}
	p.WardOptions = []Option{{Value: "", Label: "All wards"}}
	for _, wd := range wards {
		p.WardOptions = append(p.WardOptions, Option{Value: wd.ID, Label: wd.Name, Selected: wd.ID == wardID})
	}
	for _, o := range bedStatusFilters {
		o.Selected = o.Value == status
		p.ShowOptions = append(p.ShowOptions, o)
	}
	if wardID != "" && len(board.Wards) == 1 {
		p.Title = board.Wards[0].Name + " – bed board"
		p.WardURL = board.Wards[0].URL
	}
	return s.render(w, r, http.StatusOK, "bed_board", p)
}

// HousekeepingPage lists the beds housekeeping and maintenance act on:
// beds to clean (longest waiting first) and beds out of service, with
// the buttons that change them.
type HousekeepingPage struct {
	Layout
	Tabs        []NavItem
	WardID      string
	WardOptions []Option
	List        HousekeepingList
	FragmentURL string
}

// HousekeepingList is the live part of the housekeeping page.
type HousekeepingList struct {
	Cleaning     []HousekeepingBed
	OutOfService []HousekeepingBed
	// The counts are of every bed in the state, listed or not.
	CleaningCount, OutOfServiceCount int
	// ChooseWard says why a list is not shown: more beds than one page
	// lists, across the hospital.
	ChooseWard string
	// Available are the beds that can be taken out of service.
	Available BedSelect
	CanWrite  bool
	CSRF      string
	// Back is where the buttons return to.
	Back string
}

// HousekeepingBed is one bed of the housekeeping list.
type HousekeepingBed struct {
	ID, Code, WardName, RoomCode, TypeLabel string
	Since, SinceISO, Waiting                string
}

// BedSelect is a <select> of beds grouped by ward (optgroups), for the
// admission and transfer forms and for taking a bed out of service.
type BedSelect struct {
	Name, Label, Hint, Error string
	Groups                   []BedGroup
	// Empty is said instead of the select when no bed is available.
	Empty string
	// Wards is set when the hospital has more free beds than one select
	// holds (boardBedLimit): the user chooses a ward first, with the GET
	// form WardForm, and Groups lists that ward's beds only. Each option
	// is a ward with free beds.
	Wards    []Option
	WardID   string // the chosen ward
	WardForm WardForm
	// WardStep puts the ward select and its button in the page's own POST
	// form instead: the button posts the form with show_ward=1 to
	// WardForm.Action, and the page comes back with that ward's beds and
	// every choice made on it kept (the admission form, where a patient
	// ticked among the search results could not ride along a GET).
	WardStep bool
}

// WardForm is the GET form that chooses a BedSelect's ward. It stands
// outside the page's POST form (the ward select and its button join it
// with the form attribute) and keeps the page's other choices.
type WardForm struct {
	ID, Action string
	Keep       []Hidden
}

// Hidden is a hidden form field.
type Hidden struct{ Name, Value string }

// Lists reports whether the select offers every free bed the user may
// pick from: not so while a large hospital's ward is still to be chosen.
func (b BedSelect) Lists() bool { return len(b.Wards) == 0 || b.WardID != "" }

// ID is the select's id.
func (b BedSelect) ID() string { return "f-" + b.Name }

// DescribedBy lists the ids of the hint and the error.
func (b BedSelect) DescribedBy() string {
	return Field{Name: b.Name, Hint: b.Hint, Error: b.Error}.DescribedBy()
}

// Has reports whether bed id is one of the choices.
func (b BedSelect) Has(id string) bool {
	for _, g := range b.Groups {
		for _, o := range g.Beds {
			if o.Value == id {
				return true
			}
		}
	}
	return false
}

// BedGroup is one ward's beds in a BedSelect.
type BedGroup struct {
	Label string
	Beds  []Option
}

// newBedSelect lists the beds of board (the API's board filtered to
// available beds) by ward, with room and type: "A-01B · room A-01 ·
// ICU". selected is pre-chosen; skip is left out (the bed the patient is
// in).
func newBedSelect(b ward.Board, name, label, selected, skip string) BedSelect {
	sel := BedSelect{Name: name, Label: label}
	for _, w := range b.Wards {
		g := BedGroup{Label: w.Name}
		beds := slices.Clone(w.Beds)
		slices.SortFunc(beds, func(a, b ward.BoardBed) int {
			if c := naturalCompare(a.RoomCode, b.RoomCode); c != 0 {
				return c
			}
			return naturalCompare(a.Code, b.Code)
		})
		for _, bed := range beds {
			if bed.Status != "available" || bed.ID == skip {
				continue
			}
			g.Beds = append(g.Beds, Option{Value: bed.ID, Label: bed.Code + " · room " + bed.RoomCode + " · " + bedTypeLabel(bed.Type),
				Selected: bed.ID == selected})
		}
		if len(g.Beds) > 0 {
			sel.Groups = append(sel.Groups, g)
		}
	}
	return sel
}

// maxBeds is the limit of a board read: the whole hospital's is limited
// (bedLimit), one ward's is not.
func (s *Server) maxBeds(wardID string) int {
	if wardID == "" {
		return s.bedLimit
	}
	return 0
}

// freeBedSelect reads the free beds a form offers, as a BedSelect (see
// newBedSelect for name, label, selected and skip): every ward's when the
// hospital has at most boardBedLimit of them, otherwise the wards with
// free beds to choose from and the beds of wardID, when one is chosen. The
// board is filtered to available beds, so it names no patient (and the
// read is not a read of patients). The caller sets WardForm.
func (s *Server) freeBedSelect(w http.ResponseWriter, r *http.Request, wardID, name, label, selected, skip string) (BedSelect, error) {
	var all, one ward.Board
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		all, err = api.BedBoard(ctx, client.BoardQuery{Status: "available", MaxBeds: s.bedLimit})
		if err != nil || !all.BedsOmitted || wardID == "" {
			return err
		}
		one, err = api.BedBoard(ctx, client.BoardQuery{WardID: wardID, Status: "available"})
		return err
	})
	if st := client.StatusOf(err); (st == http.StatusNotFound || st == http.StatusBadRequest) && wardID != "" && all.BedsOmitted {
		err, wardID = nil, "" // a ward that does not exist (any more): choose again
	}
	if err != nil {
		return BedSelect{}, err
	}
	if !all.BedsOmitted {
		return newBedSelect(all, name, label, selected, skip), nil
	}
	sel := newBedSelect(one, name, label, selected, skip)
	for _, wd := range all.Wards {
		if wd.Counts.Available > 0 || wd.ID == wardID {
			sel.Wards = append(sel.Wards, Option{Value: wd.ID, Label: fmt.Sprintf("%s (%d free)", wd.Name, wd.Counts.Available),
				Selected: wd.ID == wardID})
			if wd.ID == wardID {
				sel.WardID = wardID
			}
		}
	}
	return sel, nil
}

func (s *Server) handleHousekeeping(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	qs := r.URL.Query()
	wardID := strings.TrimSpace(qs.Get("ward_id"))
	fragment := qs.Get("fragment") == "list"
	// Three reads filtered by state, at once: none of them names a
	// patient. A large hospital's lists are of one ward at a time.
	var cleaning, outOfService, available ward.Board
	var wards []ward.Ward
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		max := s.maxBeds(wardID)
		var errs [4]error
		var wg sync.WaitGroup
		wg.Go(func() {
			cleaning, errs[0] = api.BedBoard(ctx, client.BoardQuery{WardID: wardID, Status: "cleaning", MaxBeds: max})
		})
		wg.Go(func() {
			outOfService, errs[1] = api.BedBoard(ctx, client.BoardQuery{WardID: wardID, Status: "out_of_service", MaxBeds: max})
		})
		wg.Go(func() {
			available, errs[2] = api.BedBoard(ctx, client.BoardQuery{WardID: wardID, Status: "available", MaxBeds: max})
		})
		if !fragment { // the live list refreshes without the ward menu
			wg.Go(func() { wards, errs[3] = api.Wards(ctx) })
		}
		wg.Wait()
		return cmp.Or(errs[:]...)
	})
	if st := client.StatusOf(err); (st == http.StatusNotFound || st == http.StatusBadRequest) && wardID != "" {
		if fragment {
			return errNotFound
		}
		http.Redirect(w, r, "/housekeeping", http.StatusSeeOther)
		return nil
	}
	if err != nil {
		return err
	}
	back := "/housekeeping"
	if wardID != "" {
		back += "?ward_id=" + url.QueryEscape(wardID)
	}
	list := HousekeepingList{Cleaning: s.housekeepingBeds(cleaning), CleaningCount: cleaning.Totals.Cleaning,
		OutOfService: s.housekeepingBeds(outOfService), OutOfServiceCount: outOfService.Totals.OutOfService,
		Available: newBedSelect(available, "bed_id", "Bed", "", ""), CanWrite: sess.can(identity.PermBedWrite), CSRF: sess.CSRF, Back: back}
	list.Available.Hint = "For repairs or infection control. It cannot be given to a patient until it is back in service."
	list.Available.Empty = "No bed is available to take out of service."
	if cleaning.BedsOmitted || outOfService.BedsOmitted || available.BedsOmitted {
		list.ChooseWard = fmt.Sprintf("The hospital has %s beds: choose a ward above to list its beds.", thousands(cleaning.Totals.Total))
	}
	if available.BedsOmitted {
		list.Available.Empty = "Choose a ward above to take one of its beds out of service."
	}
	if fragment {
		return s.renderFragment(w, "housekeeping", "housekeeping_live", list)
	}
	p := &HousekeepingPage{
		Layout:      Layout{Title: "Housekeeping", Area: "Wards & beds", Nav: "housekeeping"},
		Tabs:        bedTabs(sess, "housekeeping"),
		WardID:      wardID,
		List:        list,
		FragmentURL: addQuery(back, "fragment=list"),
	}
	if !sess.can(identity.PermBedWrite) {
		p.Nav = "beds"
	}
	p.WardOptions = []Option{{Value: "", Label: "All wards"}}
	for _, wd := range wards {
		p.WardOptions = append(p.WardOptions, Option{Value: wd.ID, Label: wd.Name, Selected: wd.ID == wardID})
	}
	return s.render(w, r, http.StatusOK, "housekeeping", p)
}

// housekeepingBeds lists a filtered board's beds, the longest waiting
// first.
func (s *Server) housekeepingBeds(b ward.Board) []HousekeepingBed {
	type row struct {
		HousekeepingBed
		at time.Time
	}
	var rows []row
	now := s.now()
	for _, w := range b.Wards {
		for _, bed := range w.Beds {
			rows = append(rows, row{HousekeepingBed{ID: bed.ID, Code: bed.Code, WardName: w.Name, RoomCode: bed.RoomCode,
				TypeLabel: bedTypeLabel(bed.Type), Since: dateTimeIn(bed.UpdatedAt, s.loc), SinceISO: isoTime(bed.UpdatedAt),
				Waiting: durationText(now.Sub(bed.UpdatedAt))}, bed.UpdatedAt})
		}
	}
	slices.SortStableFunc(rows, func(a, b row) int { return a.at.Compare(b.at) })
	out := make([]HousekeepingBed, len(rows))
	for i, r := range rows {
		out[i] = r.HousekeepingBed
	}
	return out
}

// bedActions are the housekeeping and maintenance changes, with what the
// page says after each.
var bedActions = map[string]string{
	"clean":          "is clean and available.",
	"out-of-service": "is out of service.",
	"in-service":     "is back in service and available.",
}

// localPath accepts a path on this site to return to ("/housekeeping"),
// never another site ("//evil", "https://...").
func localPath(p, def string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return def
	}
	return p
}

// handleBedAction marks a bed clean, takes it out of service or puts it
// back, and returns to the page the button was on.
func (s *Server) handleBedAction(action string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		if id == "" {
			// The out-of-service form names its bed in a select.
			id = strings.TrimSpace(r.PostFormValue("bed_id"))
		}
		back := localPath(r.PostFormValue("back"), "/housekeeping")
		if id == "" {
			s.setFlash(w, Flash{Kind: "error", Message: "Choose a bed first."})
			http.Redirect(w, r, back, http.StatusSeeOther)
			return nil
		}
		var bed ward.Bed
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			var err error
			bed, err = api.BedAction(ctx, id, action)
			return err
		})
		var ae *client.Error
		switch {
		case err == nil:
			s.setFlash(w, Flash{Kind: "success", Message: "Bed " + bed.Code + " " + bedActions[action]})
		case errors.As(err, &ae) && (ae.Status == http.StatusConflict || ae.Status == http.StatusNotFound):
			// Someone else was quicker, or the bed is gone: the list the
			// user returns to is current.
			s.setFlash(w, Flash{Kind: "error", Message: orDefault(ae.Detail, "The bed could not be changed.") + " The list is up to date now."})
		default:
			return err
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
		return nil
	}
}
