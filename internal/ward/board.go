package ward

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/hospital-erp/hospital-erp/internal/access"
	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/idempotency"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/metrics"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// TopicBeds is the event topic of bed changes (ward, bed, status; never a
// patient).
const TopicBeds = "beds"

// BedEvent is the data of a beds event: which bed is now in which state.
// A board refetches the bed (or the board) to learn who is in it.
type BedEvent struct {
	WardID string `json:"ward_id"`
	BedID  string `json:"bed_id"`
	Status string `json:"status"`
}

// Publisher is the part of the event bus the service uses.
type Publisher interface {
	Publish(ctx context.Context, topic, typ string, data any) error
}

// BoardPatient is who lies in a bed, shown only to users who may see them.
type BoardPatient struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	MRN       string `json:"mrn"`
	Sex       string `json:"sex"`
	BirthDate string `json:"birth_date,omitempty"`
}

// BoardBed is one bed on the board.
type BoardBed struct {
	ID           string        `json:"id"`
	Code         string        `json:"code"`
	RoomID       string        `json:"room_id"`
	RoomCode     string        `json:"room_code"`
	Type         string        `json:"type"`
	Status       string        `json:"status"`
	Version      int           `json:"version"`
	UpdatedAt    time.Time     `json:"updated_at"`
	AdmissionID  string        `json:"admission_id,omitempty"`
	AdmittedAt   *time.Time    `json:"admitted_at,omitempty"`
	ExpectedDays *int          `json:"expected_days,omitempty"`
	Patient      *BoardPatient `json:"patient,omitempty"`
}

// BoardWard is a ward on the board with its beds and counts.
type BoardWard struct {
	ID     string     `json:"id"`
	Code   string     `json:"code"`
	Name   string     `json:"name"`
	Counts BedCounts  `json:"counts"`
	Beds   []BoardBed `json:"beds"`
}

// Board is the bed situation of the hospital (or one ward) right now.
type Board struct {
	At     time.Time   `json:"at"`
	Totals BedCounts   `json:"totals"`
	Wards  []BoardWard `json:"wards"`
	// BedsOmitted: more beds would be listed than the filter's MaxBeds,
	// so every ward has its counts and no beds.
	BedsOmitted bool `json:"beds_omitted,omitempty"`
}

// BoardFilter narrows the board.
type BoardFilter struct {
	WardID *string
	Status *string // only beds in this state (the housekeeping list: cleaning)
	// MaxBeds is the most beds listed: when more are in the ward (or the
	// state), the board has the counts only. A whole hospital's board is
	// tens of thousands of beds; a page asks for a ward first. nil: no
	// limit.
	MaxBeds *int
}

// Board returns every bed and its state, with the patient in it for users
// allowed to see that patient (care scope and patient.read). The read is
// audited once (it may show many patients). Returns EFORBIDDEN without bed.read.
func (s *Service) Board(ctx context.Context, f BoardFilter) (Board, error) {
	actor, err := hospital.Require(ctx, identity.PermBedRead)
	if err != nil {
		return Board{}, err
	}
	var v hospital.Validation
	var ward *uuid.UUID
	if f.WardID != nil {
		id, err := uuid.Parse(*f.WardID)
		if err != nil {
			return Board{}, hospital.Errorf(hospital.ENOTFOUND, "No ward has this id.")
		}
		ward = &id
	}
	v.Check(f.Status == nil || validStatus(*f.Status), "status", "must be available, occupied, reserved, cleaning or out_of_service")
	v.Check(f.MaxBeds == nil || *f.MaxBeds >= 0, "max_beds", "must be a whole number, 0 or more")
	if err := v.Err(); err != nil {
		return Board{}, err
	}
	scope := access.ScopeOf(ctx)
	wards := scope.Wards
	if wards == nil {
		wards = []uuid.UUID{}
	}
	showNames := actor.Can(identity.PermPatientRead)
	b := Board{At: s.now().UTC(), Wards: []BoardWard{}}
	shown := 0                // patients named
	at := map[uuid.UUID]int{} // ward id -> index in b.Wards
	wardAt := func(id uuid.UUID, code, name string) int {
		i, ok := at[id]
		if !ok {
			i = len(b.Wards)
			at[id] = i
			b.Wards = append(b.Wards, BoardWard{ID: id.String(), Code: code, Name: name, Beds: []BoardBed{}})
		}
		return i
	}
	// Every bed listed (the live board's refresh, on every bed event):
	// the counts come from the beds, one statement. Filtered or limited:
	// the counts of every bed first, then the beds, in one snapshot so
	// that they agree.
	filtered := f.Status != nil || f.MaxBeds != nil
	opts := pgx.TxOptions{}
	if filtered {
		opts.IsoLevel = pgx.RepeatableRead
	}
	err = s.db.InTxOpts(ctx, opts, func(q *dbgen.Queries) error {
		if filtered {
			counts, err := q.BedCounts(ctx, ward)
			if err != nil {
				return err
			}
			for _, c := range counts {
				i := wardAt(c.WardID, c.WardCode, c.WardName)
				add(&b.Wards[i].Counts, c.Status, int(c.Beds))
				add(&b.Totals, c.Status, int(c.Beds))
			}
			listed := b.Totals.Total
			if f.Status != nil {
				listed = b.Totals.in(*f.Status)
			}
			if f.MaxBeds != nil && listed > *f.MaxBeds {
				b.BedsOmitted = true
				return nil
			}
		}
		rows, err := q.BedBoard(ctx, dbgen.BedBoardParams{WardID: ward, Status: f.Status, ScopeUser: scope.User,
			ScopeWards: wards, ScopeDepartment: scope.Department})
		if err != nil {
			return err
		}
		for _, r := range rows {
			i := wardAt(r.WardID, r.WardCode, r.WardName)
			if !filtered {
				add(&b.Wards[i].Counts, r.Status, 1)
				add(&b.Totals, r.Status, 1)
			}
			bed := BoardBed{ID: r.ID.String(), Code: r.Code, RoomID: r.RoomID.String(), RoomCode: r.RoomCode, Type: r.BedType,
				Status: r.Status, Version: int(r.Version), UpdatedAt: r.UpdatedAt, AdmittedAt: r.AdmittedAt}
			if r.AdmissionID != nil {
				bed.AdmissionID = r.AdmissionID.String()
			}
			if r.ExpectedDays != nil {
				d := int(*r.ExpectedDays)
				bed.ExpectedDays = &d
			}
			if r.PatientID != nil && r.Visible && showNames {
				p := &BoardPatient{ID: r.PatientID.String(), Name: strings.ToUpper(deref(r.FamilyName)) + ", " + deref(r.GivenNames),
					MRN: deref(r.Mrn), Sex: deref(r.Sex)}
				if r.BirthDate != nil {
					p.BirthDate = r.BirthDate.Format("2006-01-02")
				}
				bed.Patient = p
				shown++
			}
			b.Wards[i].Beds = append(b.Wards[i].Beds, bed)
		}
		return nil
	})
	if err != nil {
		return Board{}, postgres.Translate(err)
	}
	if shown > 0 {
		if err := s.reads.Record(ctx, audit.Entry{Action: "bedboard.read", ResourceType: "bed_board",
			Details: map[string]any{"patients_shown": shown, "ward_id": deref(f.WardID)}}); err != nil {
			return Board{}, err
		}
	}
	return b, nil
}

// Bed actions of housekeeping and maintenance: from state, to state.
var bedActions = map[string][2]string{
	"clean":          {"cleaning", "available"},
	"out-of-service": {"available", "out_of_service"},
	"in-service":     {"out_of_service", "available"},
}

// BedAction changes a bed that has no patient: "clean" (cleaning to
// available), "out-of-service" and "in-service". Returns ECONFLICT when the
// bed is not in the state the action starts from, ENOTFOUND, EFORBIDDEN
// without bed.write.
func (s *Service) BedAction(ctx context.Context, bedID, action string) (Bed, error) {
	_, err := hospital.Require(ctx, identity.PermBedWrite)
	if err != nil {
		return Bed{}, err
	}
	states, ok := bedActions[action]
	if !ok {
		return Bed{}, hospital.Errorf(hospital.ENOTFOUND, "No such bed action.")
	}
	bid, err := uuid.Parse(bedID)
	if err != nil {
		return Bed{}, hospital.Errorf(hospital.ENOTFOUND, "No bed has this id.")
	}
	var bed Bed
	var wardID string
	replayed, err := idempotency.Do(ctx, s.db, &bed, func(q *dbgen.Queries) error {
		cur, err := q.BedGet(ctx, bid)
		if err != nil {
			if hospital.ErrorCode(postgres.Translate(err)) == hospital.ENOTFOUND {
				return hospital.Errorf(hospital.ENOTFOUND, "No bed has this id.")
			}
			return err
		}
		wardID = cur.WardID.String()
		row, err := q.BedSetStatus(ctx, dbgen.BedSetStatusParams{ID: bid, FromStatus: states[0], ToStatus: states[1]})
		if err != nil {
			if hospital.ErrorCode(postgres.Translate(err)) == hospital.ENOTFOUND {
				return hospital.Errorf(hospital.ECONFLICT, "This bed is %s, not %s.", strings.ReplaceAll(cur.Status, "_", " "),
					strings.ReplaceAll(states[0], "_", " "))
			}
			return err
		}
		bed = Bed{ID: row.ID.String(), Code: row.Code, RoomID: row.RoomID.String(), RoomCode: cur.RoomCode, Type: row.BedType,
			Status: row.Status, Version: int(row.Version)}
		return audit.Write(ctx, q, audit.Entry{Action: "bed." + strings.ReplaceAll(action, "-", "_"), ResourceType: "bed",
			ResourceID: bed.ID, Details: map[string]any{"from": states[0], "to": states[1], "ward_id": wardID}})
	})
	if err != nil || replayed {
		return bed, err
	}
	s.InvalidateWards(ctx)
	_ = s.events.Publish(ctx, TopicBeds, "bed."+bed.Status, BedEvent{WardID: wardID, BedID: bed.ID, Status: bed.Status})
	return bed, nil
}

func validStatus(s string) bool {
	switch s {
	case "available", "occupied", "reserved", "cleaning", "out_of_service":
		return true
	}
	return false
}

func add(c *BedCounts, status string, n int) {
	c.Total += n
	switch status {
	case "available":
		c.Available += n
	case "occupied":
		c.Occupied += n
	case "reserved":
		c.Reserved += n
	case "cleaning":
		c.Cleaning += n
	case "out_of_service":
		c.OutOfService += n
	}
}

// in is the number of beds in state status.
func (c BedCounts) in(status string) int {
	switch status {
	case "available":
		return c.Available
	case "occupied":
		return c.Occupied
	case "reserved":
		return c.Reserved
	case "cleaning":
		return c.Cleaning
	case "out_of_service":
		return c.OutOfService
	}
	return 0
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Occupancy counts every ward's beds by state, for the metrics (a system
// read: no actor, no patient).
func (s *Service) Occupancy(ctx context.Context) ([]metrics.WardBeds, error) {
	rows, err := s.db.Queries().WardOccupancy(ctx)
	if err != nil {
		return nil, postgres.Translate(err)
	}
	var out []metrics.WardBeds
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].Ward != r.WardCode {
			out = append(out, metrics.WardBeds{Ward: r.WardCode, ByStatus: map[string]int{}})
		}
		out[len(out)-1].ByStatus[r.Status] = int(r.Beds)
	}
	return out, nil
}
