package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hospital-erp/hospital-erp/internal/appointment"
	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

const (
	// The calendar's grid shows at least the working day; appointments
	// outside it widen it.
	gridStartMinute = 8 * 60
	gridEndMinute   = 18 * 60
	// defaultStep is the grid's row height in minutes without a clinic's
	// slot length.
	defaultStep = 15
	// maxCancelReason is the longest cancellation reason the API takes.
	maxCancelReason = 500
)

// CalendarPage is a day or a week of one practitioner's or one clinic's
// appointments in a time grid.
type CalendarPage struct {
	Layout
	View           string
	Date           string
	PractitionerID string
	ClinicID       string
	// Practitioners and Clinics are the choosers' options.
	Practitioners []Option
	Clinics       []Option
	ViewTabs      []NavItem
	// Chosen: a practitioner or clinic is selected (else the page asks).
	Chosen   bool
	Subject  string
	Period   string
	PrevURL  string
	NextURL  string
	TodayURL string
	Grid     CalendarGrid
	Count    int
	// ShowCancelled also lists cancelled appointments; CancelledURL
	// toggles it.
	ShowCancelled bool
	CancelledURL  string
	CanWrite      bool
	BookURL       string
	Summary       []SummaryItem
	DateError     string
	Error         string
}

// CalendarGrid is the time grid: a column per day (week) or per
// practitioner (a clinic's day), a row per slot length.
type CalendarGrid struct {
	Caption string
	Columns []CalendarColumn
	Rows    []CalendarRow
}

// CalendarColumn is one column heading.
type CalendarColumn struct {
	Label string
	Today bool
}

// CalendarRow is one time band with a cell per column.
type CalendarRow struct {
	Time  string
	Cells [][]CalendarEntry
}

// CalendarEntry is one appointment in the grid. Busy entries are
// appointments of patients the user may not see: the API leaves the
// patient out and the grid shows "Booked".
type CalendarEntry struct {
	ID          string
	Time        string
	Busy        bool
	PatientName string
	PatientMRN  string
	Who         string
	Status      string
	StatusLabel string
	CanCheckIn  bool
}

func calendarURL(view, date, practitioner, clinic string, cancelled bool) string {
	v := url.Values{}
	for k, val := range map[string]string{"view": view, "date": date, "practitioner_id": practitioner, "clinic_id": clinic} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if cancelled {
		v.Set("cancelled", "1")
	}
	return "/appointments?" + v.Encode()
}

func (s *Server) handleCalendar(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	qs := r.URL.Query()
	d, err := s.loadSchedule(w, r)
	if err != nil {
		return err
	}
	p := &CalendarPage{
		Layout:         Layout{Title: "Appointments", Area: "Appointments", Nav: "appointments"},
		View:           qs.Get("view"),
		PractitionerID: d.knownPractitioner(qs.Get("practitioner_id")),
		ClinicID:       d.knownClinic(qs.Get("clinic_id")),
		ShowCancelled:  qs.Get("cancelled") == "1",
		CanWrite:       sess.can(identity.PermAppointmentWrite),
	}
	if p.View != viewWeek {
		p.View = viewDay
	}
	if p.PractitionerID == "" && p.ClinicID == "" && !qs.Has("practitioner_id") && !qs.Has("clinic_id") {
		// A clinician opens their own calendar.
		for _, pr := range d.practitioners {
			if pr.UserID != "" && pr.UserID == sess.UserID {
				p.PractitionerID = pr.ID
			}
		}
	}
	today := midnight(s.now(), s.loc)
	day := today
	if raw := qs.Get("date"); raw != "" {
		if dd, ok := parseDay(raw, s.loc); ok {
			day = dd
		} else {
			p.DateError = "Enter a date, for example " + today.Format(isoDate)
			p.Summary = []SummaryItem{{Text: p.DateError, Href: "#f-date"}}
		}
	}
	p.Date = day.Format(isoDate)
	per := newPeriod(p.View, day)
	p.Period = per.label()
	p.Practitioners = d.practitionerOptions(p.PractitionerID, "Any clinician")
	p.Clinics = d.clinicOptions(p.ClinicID, "Any clinic")
	link := func(view, date string, cancelled bool) string {
		return calendarURL(view, date, p.PractitionerID, p.ClinicID, cancelled)
	}
	p.ViewTabs = viewTabs(p.View, func(v string) string { return link(v, p.Date, p.ShowCancelled) })
	p.PrevURL = link(p.View, per.step(-1).Format(isoDate), p.ShowCancelled)
	p.NextURL = link(p.View, per.step(1).Format(isoDate), p.ShowCancelled)
	p.TodayURL = link(p.View, today.Format(isoDate), p.ShowCancelled)
	p.CancelledURL = link(p.View, p.Date, !p.ShowCancelled)
	p.Chosen = p.PractitionerID != "" || p.ClinicID != ""
	if p.CanWrite {
		v := url.Values{"date": {p.Date}, "view": {p.View}}
		if p.PractitionerID != "" {
			v.Set("practitioner_id", p.PractitionerID)
		}
		if p.ClinicID != "" {
			v.Set("clinic_id", p.ClinicID)
		}
		p.BookURL = "/appointments/book?" + v.Encode()
	}
	if len(p.Summary) > 0 {
		p.Title = "Error: " + p.Title
	}
	if !p.Chosen {
		return s.render(w, r, http.StatusOK, "appointment_calendar", p)
	}
	var subject []string
	if p.PractitionerID != "" {
		subject = append(subject, d.practitionerName(p.PractitionerID))
	}
	if p.ClinicID != "" {
		subject = append(subject, d.clinicName(p.ClinicID))
	}
	p.Subject = strings.Join(subject, " · ")

	var appts []appointment.Appointment
	err = s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		appts, err = api.Appointments(ctx, client.AppointmentQuery{From: per.from, To: per.to, PractitionerID: p.PractitionerID,
			ClinicID: p.ClinicID})
		return err
	})
	if client.StatusOf(err) == http.StatusBadRequest {
		p.Error = "The calendar could not be shown. Check the date and try again."
		return s.render(w, r, http.StatusBadRequest, "appointment_calendar", p)
	}
	if err != nil {
		return err
	}
	if !p.ShowCancelled {
		appts = slices.DeleteFunc(appts, func(a appointment.Appointment) bool { return a.Status == appointment.StatusCancelled })
	}
	p.Count = len(appts)
	step := defaultStep
	if c, ok := d.clinic(p.ClinicID); ok && c.SlotMinutes >= 5 && c.SlotMinutes <= 60 {
		step = c.SlotMinutes
	}
	p.Grid = s.newCalendarGrid(per, today, appts, p.PractitionerID == "", p.ClinicID == "", step, p.CanWrite)
	p.Grid.Caption = p.Subject + ": " + p.Period
	return s.render(w, r, http.StatusOK, "appointment_calendar", p)
}

// newCalendarGrid lays the appointments out. byPractitioner: a day of a
// clinic gets a column per practitioner; named says which of practitioner
// and clinic each entry names (the one the calendar is not of).
func (s *Server) newCalendarGrid(per period, today time.Time, appts []appointment.Appointment, namePractitioner, nameClinic bool, step int, canWrite bool) CalendarGrid {
	var g CalendarGrid
	days := per.days()
	colOf := map[string]int{}
	if per.view == viewWeek {
		for i, d := range days {
			g.Columns = append(g.Columns, CalendarColumn{Label: dayHeading(d), Today: d.Equal(today)})
			colOf[d.Format(isoDate)] = i
		}
	} else if namePractitioner {
		var names []string
		ids := map[string]string{}
		for _, a := range appts {
			if _, ok := ids[a.PractitionerName]; !ok {
				ids[a.PractitionerName] = a.PractitionerID
				names = append(names, a.PractitionerName)
			}
		}
		slices.Sort(names)
		for i, n := range names {
			g.Columns = append(g.Columns, CalendarColumn{Label: orDefault(n, "Clinician")})
			colOf[ids[n]] = i
		}
		namePractitioner = false
	}
	if len(g.Columns) == 0 {
		g.Columns = []CalendarColumn{{Label: dayHeading(per.day), Today: per.day.Equal(today)}}
	}
	column := func(a appointment.Appointment) int {
		if per.view == viewWeek {
			return colOf[midnight(a.StartsAt, s.loc).Format(isoDate)]
		}
		return colOf[a.PractitionerID]
	}
	minuteOf := func(t time.Time) int { t = t.In(s.loc); return t.Hour()*60 + t.Minute() }
	start, end := gridStartMinute, gridEndMinute
	for _, a := range appts {
		start = min(start, minuteOf(a.StartsAt))
		em := minuteOf(a.EndsAt)
		if !midnight(a.EndsAt, s.loc).Equal(midnight(a.StartsAt, s.loc)) {
			em = 24 * 60
		}
		end = max(end, em)
	}
	start -= start % step
	for m := start; m < end; m += step {
		row := CalendarRow{Time: fmt.Sprintf("%02d:%02d", m/60, m%60), Cells: make([][]CalendarEntry, len(g.Columns))}
		g.Rows = append(g.Rows, row)
	}
	for _, a := range appts {
		e := CalendarEntry{ID: a.ID, Time: timeRange(a.StartsAt, a.EndsAt, s.loc), Busy: a.PatientID == "" && a.PatientName == "",
			PatientName: a.PatientName, PatientMRN: a.PatientMRN, Status: a.Status, StatusLabel: appointmentStatusLabel(a.Status)}
		var who []string
		if namePractitioner && a.PractitionerName != "" {
			who = append(who, a.PractitionerName)
		}
		if nameClinic && a.ClinicName != "" {
			who = append(who, a.ClinicName)
		}
		e.Who = strings.Join(who, " · ")
		e.CanCheckIn = canWrite && !e.Busy && a.Status == appointment.StatusBooked
		i := (minuteOf(a.StartsAt) - start) / step
		if i < 0 || i >= len(g.Rows) {
			continue
		}
		c := column(a)
		g.Rows[i].Cells[c] = append(g.Rows[i].Cells[c], e)
	}
	return g
}

// appointmentCommand is a one-click change of an appointment's status.
type appointmentCommand struct {
	// Key is the path segment, as in the API.
	Key   string
	Label string
	Done  string
	// From are the statuses the command applies to.
	From    []string
	Primary bool
}

// appointmentCommands are the status changes besides cancel and
// reschedule, which need more input.
var appointmentCommands = []appointmentCommand{
	{Key: "check-in", Label: "Check in", Done: "Checked in.", From: []string{appointment.StatusBooked}, Primary: true},
	{Key: "complete", Label: "Mark as completed", Done: "The visit is marked as completed.",
		From: []string{appointment.StatusCheckedIn}, Primary: true},
	{Key: "no-show", Label: "Mark as did not attend", Done: "The appointment is marked as did not attend.",
		From: []string{appointment.StatusBooked, appointment.StatusCheckedIn}},
}

// AppointmentPage is one appointment with its actions. Everything on it
// comes from the one (audited) appointment read: no patient read, no
// clinic or practitioner list.
type AppointmentPage struct {
	Layout
	Appt        appointment.Appointment
	When        string
	StatusLabel string
	// Ticket is the queue ticket just given by check-in.
	Ticket         string
	QueueURL       string
	DepartmentName string
	CalendarURL    string
	Commands       []appointmentCommand
	CanCancel      bool
	CanReschedule  bool
	// AdmitURL admits the patient from this appointment (checked in or
	// seen, for users who may admit).
	AdmitURL string
	Reason   Field
	Summary  []SummaryItem
}

// ticketRe is what a queue ticket looks like ("007").
var ticketRe = regexp.MustCompile(`^[A-Za-z0-9-]{1,12}$`)

func appointmentURL(id, ticket string) string {
	u := "/appointments/" + url.PathEscape(id)
	if ticket != "" {
		u += "?ticket=" + url.QueryEscape(ticket)
	}
	return u
}

func (s *Server) handleAppointmentShow(w http.ResponseWriter, r *http.Request) error {
	ticket := r.URL.Query().Get("ticket")
	if !ticketRe.MatchString(ticket) {
		ticket = ""
	}
	return s.renderAppointment(w, r, http.StatusOK, r.PathValue("id"), ticket, "", nil)
}

// loadAppointment reads one appointment; not found and out of care are
// the error pages.
func (s *Server) loadAppointment(w http.ResponseWriter, r *http.Request, id string) (appointment.Appointment, error) {
	var a appointment.Appointment
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		a, err = api.Appointment(ctx, id)
		return err
	})
	switch client.StatusOf(err) {
	case http.StatusNotFound, http.StatusBadRequest:
		return a, errNotFound
	case http.StatusForbidden:
		return a, errForbidden
	}
	return a, err
}

// renderAppointment renders the appointment page; reason and errs are the
// cancel form's value and errors.
func (s *Server) renderAppointment(w http.ResponseWriter, r *http.Request, status int, id, ticket, reason string, errs map[string]string) error {
	sess := sessionFrom(r.Context())
	a, err := s.loadAppointment(w, r, id)
	if err != nil {
		return err
	}
	p := &AppointmentPage{
		Layout:         Layout{Title: "Appointment", Area: "Appointments", Nav: "appointments"},
		Appt:           a,
		When:           whenText(a.StartsAt, a.EndsAt, s.loc),
		StatusLabel:    appointmentStatusLabel(a.Status),
		Ticket:         ticket,
		DepartmentName: a.DepartmentName,
		CalendarURL: calendarURL(viewDay, midnight(a.StartsAt, s.loc).Format(isoDate), a.PractitionerID, "",
			false),
		Reason: Field{Name: "reason", Label: "Reason for cancelling", Rows: 3, MaxLength: maxCancelReason, Value: reason,
			Hint: "For example “Patient asked to cancel by phone” or “Clinic closed”. The reason is kept with the appointment."},
	}
	if a.DepartmentID != "" {
		p.QueueURL = queueURL(a.DepartmentID, false)
	}
	if sess.can(identity.PermAppointmentWrite) {
		for _, c := range appointmentCommands {
			if slices.Contains(c.From, a.Status) {
				p.Commands = append(p.Commands, c)
			}
		}
		p.CanCancel = a.Status == appointment.StatusBooked
		p.CanReschedule = a.Status == appointment.StatusBooked
	}
	if sess.can(identity.PermAdmissionWrite) && a.PatientID != "" &&
		(a.Status == appointment.StatusCheckedIn || a.Status == appointment.StatusCompleted) {
		p.AdmitURL = admitParams{PatientID: a.PatientID, AppointmentID: a.ID, Source: "appointment"}.url()
	}
	p.Reason.Error = fieldMessage(p.Reason.Label, errs["reason"])
	p.Summary = summaryFor([]Field{p.Reason}, errs)
	if len(p.Summary) > 0 {
		p.Title = "Error: " + p.Title
	}
	return s.render(w, r, status, "appointment_show", p)
}

// handleAppointmentCommand runs check-in, complete or no-show. Check-in
// shows the queue ticket on the appointment page.
func (s *Server) handleAppointmentCommand(c appointmentCommand) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		var a appointment.Appointment
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			var err error
			a, err = api.AppointmentCommand(ctx, id, c.Key)
			return err
		})
		var ae *client.Error
		switch {
		case err == nil:
			msg := c.Done
			if a.QueueTicket != "" {
				msg = "Checked in: queue ticket " + a.QueueTicket + "."
			}
			s.setFlash(w, Flash{Kind: "success", Message: msg})
			http.Redirect(w, r, appointmentURL(id, a.QueueTicket), http.StatusSeeOther)
			return nil
		case errors.As(err, &ae) && (ae.Status == http.StatusConflict || ae.Status == http.StatusPreconditionFailed):
			s.setFlash(w, Flash{Kind: "error", Message: orDefault(ae.Detail, "The appointment could not be changed.")})
			http.Redirect(w, r, appointmentURL(id, ""), http.StatusSeeOther)
			return nil
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			return errNotFound
		case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
			return errForbidden
		}
		return err
	}
}

// handleAppointmentCancel cancels with a reason; without one the page
// comes back with the error at the field.
func (s *Server) handleAppointmentCancel(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	switch n := utf8.RuneCountInString(reason); {
	case n == 0:
		return s.renderAppointment(w, r, http.StatusBadRequest, id, "", reason, map[string]string{"reason": "Enter the reason for cancelling"})
	case n > maxCancelReason:
		return s.renderAppointment(w, r, http.StatusBadRequest, id, "", reason,
			map[string]string{"reason": "The reason can be at most 500 characters"})
	}
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		_, err := api.CancelAppointment(ctx, id, reason)
		return err
	})
	var ae *client.Error
	switch {
	case err == nil:
		s.setFlash(w, Flash{Kind: "success", Message: "The appointment is cancelled; its time is free again."})
	case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		return s.renderAppointment(w, r, http.StatusBadRequest, id, "", reason,
			map[string]string{"reason": orDefault(ae.Errors["reason"], orDefault(ae.Detail, "is not accepted"))})
	case errors.As(err, &ae) && (ae.Status == http.StatusConflict || ae.Status == http.StatusPreconditionFailed):
		s.setFlash(w, Flash{Kind: "error", Message: orDefault(ae.Detail, "The appointment could not be cancelled.")})
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return errNotFound
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		return errForbidden
	default:
		return err
	}
	http.Redirect(w, r, appointmentURL(id, ""), http.StatusSeeOther)
	return nil
}
