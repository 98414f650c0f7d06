package web

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/queue"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

// maxCallPoint is the longest call point the API takes ("Room 3").
const maxCallPoint = 60

func queueURL(department string, display bool) string {
	u := "/queue/" + url.PathEscape(department)
	if display {
		u += "?display=1"
	}
	return u
}

// QueueListPage lets the user choose a department's queue.
type QueueListPage struct {
	Layout
	Departments []QueueDepartment
}

// QueueDepartment is one department with links to its board.
type QueueDepartment struct {
	ward.Department
	URL, DisplayURL string
}

func (s *Server) handleQueueList(w http.ResponseWriter, r *http.Request) error {
	depts, err := s.queueDepartments(w, r)
	if err != nil {
		return err
	}
	p := &QueueListPage{Layout: Layout{Title: "Queues", Area: "Queue", Nav: "queue"}}
	for _, d := range depts {
		p.Departments = append(p.Departments, QueueDepartment{Department: d, URL: queueURL(d.ID, false), DisplayURL: queueURL(d.ID, true)})
	}
	return s.render(w, r, http.StatusOK, "queue_list", p)
}

// QueueBoardPage is a department's queue: called and waiting tickets,
// live over the WebSocket. Display mode is for a waiting-room screen: big
// ticket numbers and call points, never a name.
type QueueBoardPage struct {
	Layout
	Department  ward.Department
	Board       QueueBoard
	FragmentURL string
	DisplayURL  string
	BoardURL    string
	CallPoint   Field
	CanWrite    bool
	Display     bool
}

// QueueBoard is the live part of the page, also served alone as the
// fragment app.js swaps in.
type QueueBoard struct {
	DepartmentID string
	Called       []QueueEntryView
	Waiting      []QueueEntryView
	// ShowNames: the API gave names (the user may read patients) and the
	// page is not the waiting-room display.
	ShowNames bool
	CanWrite  bool
	Display   bool
	CSRF      string
}

// QueueEntryView is one ticket on the board.
type QueueEntryView struct {
	ID          string
	Ticket      string
	CallPoint   string
	PatientID   string
	PatientName string
	PatientMRN  string
	CheckedIn   string
	CheckedISO  string
	Called      string
	Waited      string
}

func (s *Server) newQueueBoard(b queue.Board, csrf string, canWrite, display bool) QueueBoard {
	out := QueueBoard{DepartmentID: b.DepartmentID, CanWrite: canWrite && !display, Display: display, CSRF: csrf}
	now := s.now()
	for _, e := range b.Entries {
		v := QueueEntryView{ID: e.ID, Ticket: e.Ticket, CallPoint: e.CallPoint, CheckedIn: timeOfDay(e.CheckedInAt, s.loc),
			CheckedISO: isoTime(e.CheckedInAt)}
		if !display {
			v.PatientID, v.PatientName, v.PatientMRN = e.PatientID, e.PatientName, e.PatientMRN
			if e.PatientName != "" {
				out.ShowNames = true
			}
		}
		if e.CalledAt != nil {
			v.Called = timeOfDay(*e.CalledAt, s.loc)
		}
		switch e.Status {
		case "called":
			out.Called = append(out.Called, v)
		case "waiting":
			v.Waited = waitedText(now.Sub(e.CheckedInAt))
			out.Waiting = append(out.Waiting, v)
		}
	}
	// The most recent call first: the display's headline.
	calledAt := map[string]time.Time{}
	for _, e := range b.Entries {
		if e.CalledAt != nil {
			calledAt[e.ID] = *e.CalledAt
		}
	}
	slices.SortStableFunc(out.Called, func(a, b QueueEntryView) int { return calledAt[b.ID].Compare(calledAt[a.ID]) })
	return out
}

// waitedText is a wait in minutes: "12 min", "1 h 05 min".
func waitedText(d time.Duration) string {
	m := max(0, int(d.Minutes()))
	if m < 60 {
		return strconv.Itoa(m) + " min"
	}
	return strconv.Itoa(m/60) + " h " + leftPad(strconv.Itoa(m%60)) + " min"
}

func leftPad(s string) string { return strings.Repeat("0", max(0, 2-len(s))) + s }

func (s *Server) handleQueueBoard(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	id := r.PathValue("department")
	qs := r.URL.Query()
	display := qs.Get("display") == "1"
	var b queue.Board
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		b, err = api.QueueBoard(ctx, id)
		return err
	})
	if st := client.StatusOf(err); st == http.StatusNotFound || st == http.StatusBadRequest {
		return errNotFound
	}
	if err != nil {
		return err
	}
	board := s.newQueueBoard(b, sess.CSRF, sess.can(identity.PermAppointmentWrite), display)
	if qs.Get("fragment") == "queue" {
		return s.renderFragment(w, "queue_board", "queue_board", board)
	}
	depts, err := s.queueDepartments(w, r)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(depts, func(d ward.Department) bool { return d.ID == id })
	if i < 0 {
		return errNotFound
	}
	callPoint := strings.TrimSpace(qs.Get("call_point"))
	if utf8.RuneCountInString(callPoint) > maxCallPoint {
		callPoint = ""
	}
	p := &QueueBoardPage{
		Layout:      Layout{Title: "Queue – " + depts[i].Name, Area: "Queue", Nav: "queue"},
		Department:  depts[i],
		Board:       board,
		FragmentURL: queueURL(id, false) + "?fragment=queue",
		DisplayURL:  queueURL(id, true),
		BoardURL:    queueURL(id, false),
		CanWrite:    board.CanWrite,
		Display:     display,
		CallPoint: Field{Name: "call_point", Label: "Call to", Type: "text", Value: callPoint, Width: "medium",
			MaxLength: maxCallPoint, Autocomplete: "off", Optional: true,
			Hint: "Where the patient should go, for example Room 3 or Desk B. It is shown on the waiting-room screen."},
	}
	if display {
		p.FragmentURL = queueURL(id, true) + "&fragment=queue"
		p.Title = "Waiting room – " + depts[i].Name
		p.BodyClass = "queue-display"
	}
	return s.render(w, r, http.StatusOK, "queue_board", p)
}

// handleQueueCallNext calls the longest-waiting patient to the call
// point; the board keeps the call point for the next call.
func (s *Server) handleQueueCallNext(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("department")
	callPoint := strings.TrimSpace(r.PostFormValue("call_point"))
	back := queueURL(id, false)
	if utf8.RuneCountInString(callPoint) > maxCallPoint {
		s.setFlash(w, Flash{Kind: "error", Message: "“Call to” can be at most 60 characters."})
		http.Redirect(w, r, back, http.StatusSeeOther)
		return nil
	}
	if callPoint != "" {
		back += "?call_point=" + url.QueryEscape(callPoint)
	}
	var e queue.Entry
	err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
		var err error
		e, err = api.QueueCallNext(ctx, id, callPoint)
		return err
	})
	var ae *client.Error
	switch {
	case err == nil:
		msg := "Ticket " + e.Ticket + " called"
		if e.CallPoint != "" {
			msg += " to " + e.CallPoint
		}
		if e.PatientName != "" {
			msg += " (" + e.PatientName + ")"
		}
		s.setFlash(w, Flash{Kind: "success", Message: msg + "."})
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		s.setFlash(w, Flash{Kind: "error", Message: "Nobody is waiting in this queue."})
	case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		s.setFlash(w, Flash{Kind: "error", Message: fieldMessage("“Call to”", orDefault(ae.Errors["call_point"], orDefault(ae.Detail, "is not accepted")))})
	default:
		return err
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}

// handleQueueFinish marks a ticket seen (done) or gone without being seen
// (left), and returns to the department's board.
func (s *Server) handleQueueFinish(status string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		dept := strings.TrimSpace(r.PostFormValue("department_id"))
		var e queue.Entry
		err := s.call(w, r, func(ctx context.Context, api *client.Client) error {
			var err error
			e, err = api.QueueFinish(ctx, id, status)
			return err
		})
		var ae *client.Error
		switch {
		case err == nil:
			dept = cmp.Or(e.DepartmentID, dept)
			msg := "Ticket " + e.Ticket + " was seen."
			if status == "left" {
				msg = "Ticket " + e.Ticket + " left without being seen."
			}
			s.setFlash(w, Flash{Kind: "success", Message: msg})
		case errors.As(err, &ae) && (ae.Status == http.StatusConflict || ae.Status == http.StatusNotFound):
			s.setFlash(w, Flash{Kind: "error", Message: orDefault(ae.Detail, "This ticket is no longer in the queue.")})
		default:
			return err
		}
		if dept == "" {
			http.Redirect(w, r, "/queue", http.StatusSeeOther)
			return nil
		}
		http.Redirect(w, r, queueURL(dept, false), http.StatusSeeOther)
		return nil
	}
}
