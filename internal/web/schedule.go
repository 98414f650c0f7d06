package web

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/appointment"
	"github.com/hospital-erp/hospital-erp/internal/client"
)

// isoDate is how days travel in URLs and date inputs.
const isoDate = "2006-01-02"

// Views of the calendar and the slot pickers.
const (
	viewDay  = "day"
	viewWeek = "week"
)

// maxRange is the longest period the backend lists appointments or slots
// for in one call.
const maxRange = 31 * 24 * time.Hour

// parseDay reads YYYY-MM-DD as midnight in loc.
func parseDay(s string, loc *time.Location) (time.Time, bool) {
	d, err := time.ParseInLocation(isoDate, strings.TrimSpace(s), loc)
	if err != nil || d.Year() < 2000 || d.Year() > 2100 {
		return time.Time{}, false
	}
	return d, true
}

// midnight is the start of t's day in loc.
func midnight(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
}

// mondayOf is the Monday of d's week (weeks start on Monday, as ISO and
// the availability rules count them).
func mondayOf(d time.Time) time.Time {
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
}

// period is the days a calendar or slot picker shows: one day, or the
// Monday-to-Sunday week around it. Days are added with AddDate, so a
// day of a daylight saving change is still one calendar day.
type period struct {
	view     string
	day      time.Time // the day asked for, midnight
	from, to time.Time
}

func newPeriod(view string, day time.Time) period {
	if view != viewDay {
		view = viewWeek
	}
	p := period{view: view, day: day, from: day, to: day.AddDate(0, 0, 1)}
	if view == viewWeek {
		p.from = mondayOf(day)
		p.to = p.from.AddDate(0, 0, 7)
	}
	return p
}

// step is the period before or after (-1, +1) as its day.
func (p period) step(n int) time.Time {
	if p.view == viewDay {
		return p.day.AddDate(0, 0, n)
	}
	return p.day.AddDate(0, 0, 7*n)
}

// days lists the period's days.
func (p period) days() []time.Time {
	var out []time.Time
	for d := p.from; d.Before(p.to); d = d.AddDate(0, 0, 1) {
		out = append(out, d)
	}
	return out
}

// label says the period in words: "Monday 2 March 2026" or
// "Week of 2 March 2026 (2–8 Mar)".
func (p period) label() string {
	if p.view == viewDay {
		return p.day.Format("Monday 2 January 2006")
	}
	last := p.to.AddDate(0, 0, -1)
	return "Week of " + p.from.Format("2 January 2006") + " (" + p.from.Format("2 Jan") + " – " + last.Format("2 Jan") + ")"
}

// viewTabs are the Day and Week links of a calendar or slot picker.
func viewTabs(view string, link func(view string) string) []NavItem {
	return []NavItem{
		{Href: link(viewDay), Label: "Day", Current: view == viewDay},
		{Href: link(viewWeek), Label: "Week", Current: view == viewWeek},
	}
}

// dayHeading is a column or group heading: "Mon 2 Mar".
func dayHeading(t time.Time) string { return t.Format("Mon 2 Jan") }

// timeOfDay is "09:15" in loc.
func timeOfDay(t time.Time, loc *time.Location) string { return t.In(loc).Format("15:04") }

// timeRange is "09:15–09:30" in loc.
func timeRange(from, to time.Time, loc *time.Location) string {
	return timeOfDay(from, loc) + "–" + timeOfDay(to, loc)
}

// whenText is a full appointment time: "Monday 2 March 2026, 09:15–09:30".
func whenText(from, to time.Time, loc *time.Location) string {
	return from.In(loc).Format("Monday 2 January 2006") + ", " + timeRange(from, to, loc)
}

// shortWhen is "Mon 2 Mar, 09:15", for messages.
func shortWhen(t time.Time, loc *time.Location) string { return t.In(loc).Format("Mon 2 Jan, 15:04") }

var appointmentStatusLabels = map[string]string{
	appointment.StatusBooked:    "Booked",
	appointment.StatusCheckedIn: "Checked in",
	appointment.StatusCompleted: "Completed",
	appointment.StatusCancelled: "Cancelled",
	appointment.StatusNoShow:    "Did not attend",
}

func appointmentStatusLabel(s string) string {
	if l, ok := appointmentStatusLabels[s]; ok {
		return l
	}
	return s
}

// scheduleData are the practitioners and clinics, for the choosers and for
// the names that booking and slot answers do not carry.
type scheduleData struct {
	practitioners []appointment.Practitioner
	clinics       []appointment.Clinic
}

func (s *Server) loadSchedule(w http.ResponseWriter, r *http.Request) (scheduleData, error) {
	var d scheduleData
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		if d.practitioners, err = api.Practitioners(ctx, ""); err != nil {
			return err
		}
		d.clinics, err = api.Clinics(ctx)
		return err
	})
	slices.SortFunc(d.practitioners, func(a, b appointment.Practitioner) int { return strings.Compare(a.DisplayName, b.DisplayName) })
	slices.SortFunc(d.clinics, func(a, b appointment.Clinic) int { return strings.Compare(a.Name, b.Name) })
	return d, err
}

func (d scheduleData) practitioner(id string) (appointment.Practitioner, bool) {
	for _, p := range d.practitioners {
		if p.ID == id {
			return p, true
		}
	}
	return appointment.Practitioner{}, false
}

func (d scheduleData) clinic(id string) (appointment.Clinic, bool) {
	for _, c := range d.clinics {
		if c.ID == id {
			return c, true
		}
	}
	return appointment.Clinic{}, false
}

func (d scheduleData) practitionerName(id string) string {
	if p, ok := d.practitioner(id); ok {
		return p.DisplayName
	}
	return ""
}

func (d scheduleData) clinicName(id string) string {
	if c, ok := d.clinic(id); ok {
		return c.Name
	}
	return ""
}

// practitionerOptions lists the practitioners for a select, the first
// option being blank.
func (d scheduleData) practitionerOptions(selected, blank string) []Option {
	opts := []Option{{Value: "", Label: blank}}
	for _, p := range d.practitioners {
		label := p.DisplayName
		if p.Specialty != "" {
			label += " (" + p.Specialty + ")"
		}
		opts = append(opts, Option{Value: p.ID, Label: label, Selected: p.ID == selected})
	}
	return opts
}

// clinicOptions lists the clinics for a select, the first being blank.
func (d scheduleData) clinicOptions(selected, blank string) []Option {
	opts := []Option{{Value: "", Label: blank}}
	for _, c := range d.clinics {
		opts = append(opts, Option{Value: c.ID, Label: c.Name, Selected: c.ID == selected})
	}
	return opts
}

// known keeps id only when it is one of the listed practitioners or
// clinics, so that what reaches the backend and the page's links is
// always an id the backend gave.
func (d scheduleData) knownPractitioner(id string) string {
	if _, ok := d.practitioner(id); ok {
		return id
	}
	return ""
}

func (d scheduleData) knownClinic(id string) string {
	if _, ok := d.clinic(id); ok {
		return id
	}
	return ""
}

// SlotDay is one day of free slots, for the "slot_days" partial.
type SlotDay struct {
	Heading string
	ISO     string
	Slots   []SlotChoice
}

// SlotChoice is one free slot as a radio button.
type SlotChoice struct {
	// ID is the radio button's id; Value carries practitioner, clinic,
	// start and end (slotValue).
	ID, Value string
	Time      string
	// Who is the practitioner and clinic, when the picker shows several.
	Who     string
	Checked bool
}

// slotValue encodes a slot for a radio button's value.
func slotValue(sl appointment.Slot) string {
	return sl.PractitionerID + "|" + sl.ClinicID + "|" + sl.StartsAt.UTC().Format(time.RFC3339) + "|" + sl.EndsAt.UTC().Format(time.RFC3339)
}

// parseSlot reverses slotValue.
func parseSlot(v string) (appointment.Slot, bool) {
	parts := strings.Split(v, "|")
	if len(parts) != 4 || parts[0] == "" || parts[1] == "" {
		return appointment.Slot{}, false
	}
	from, err1 := time.Parse(time.RFC3339, parts[2])
	to, err2 := time.Parse(time.RFC3339, parts[3])
	if err1 != nil || err2 != nil || !to.After(from) {
		return appointment.Slot{}, false
	}
	return appointment.Slot{PractitionerID: parts[0], ClinicID: parts[1], StartsAt: from, EndsAt: to}, true
}

// slotDays groups slots by day in loc. who says whether each slot names
// its practitioner and clinic (when more than one can appear).
func slotDays(slots []appointment.Slot, d scheduleData, loc *time.Location, checked string, who bool) []SlotDay {
	var out []SlotDay
	for i, sl := range slots {
		day := midnight(sl.StartsAt, loc)
		iso := day.Format(isoDate)
		if len(out) == 0 || out[len(out)-1].ISO != iso {
			out = append(out, SlotDay{Heading: day.Format("Monday 2 January"), ISO: iso})
		}
		c := SlotChoice{ID: "slot-" + strconv.Itoa(i), Value: slotValue(sl), Time: timeRange(sl.StartsAt, sl.EndsAt, loc)}
		c.Checked = c.Value == checked
		if who {
			c.Who = strings.Trim(d.practitionerName(sl.PractitionerID)+" · "+d.clinicName(sl.ClinicID), " ·")
		}
		out[len(out)-1].Slots = append(out[len(out)-1].Slots, c)
	}
	return out
}
