package ward

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

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
}

// BoardFilter narrows the board.
type BoardFilter struct {
	WardID *string
	Status *string // only beds in this state (the housekeeping list: cleaning)
}

// Board returns every bed and its state, with the patient in it for users
// allowed to see that patient (care scope and patient.read). The read is
// audited once (it may show many patients). Returns EFORBIDDEN without bed.read.
func (s *Service) Board(ctx context.Context, f BoardFilter) (Board, error) {
	actor, err := hospital.Require(ctx, identity.PermBedRead)
	if err != nil {
		return Board{}, err
	}
	var ward *uuid.UUID
	if f.WardID != nil {
		id, err := uuid.Parse(*f.WardID)
		if err != nil {
			return Board{}, hospital.Errorf(hospital.ENOTFOUND, "No ward has this id.")
		}
		ward = &id
	}
	if f.Status != nil && !validStatus(*f.Status) {
		return Board{}, &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.",
			Fields: map[string]string{"status": "must be available, occupied, reserved, cleaning or out_of_service"}}
	}
	scope := access.ScopeOf(ctx)
	wards := scope.Wards
	if wards == nil {
		wards = []uuid.UUID{}
	}
	showNames := actor.Can(identity.PermPatientRead)
	b := Board{At: s.now().UTC(), Wards: []BoardWard{}}
	err = s.db.InTx(ctx, func(q *dbgen.Queries) error {
		rows, err := q.BedBoard(ctx, dbgen.BedBoardParams{WardID: ward, ScopeUser: scope.User, ScopeWards: wards, ScopeDepartment: scope.Department})
		if err != nil {
			return err
		}
		shown := 0
		var cur *BoardWard
		for _, r := range rows {
			if cur == nil || cur.ID != r.WardID.String() {
				b.Wards = append(b.Wards, BoardWard{ID: r.WardID.String(), Code: r.WardCode, Name: r.WardName, Beds: []BoardBed{}})
				cur = &b.Wards[len(b.Wards)-1]
			}
			count(&cur.Counts, r.Status)
			count(&b.Totals, r.Status)
			if f.Status != nil && r.Status != *f.Status {
				continue
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
			cur.Beds = append(cur.Beds, bed)
		}
		if shown == 0 {
			return nil
		}
		return audit.Write(ctx, q, audit.Entry{Action: "bedboard.read", ResourceType: "bed_board",
			Details: map[string]any{"patients_shown": shown, "ward_id": deref(f.WardID)}})
	})
	if err != nil {
		return Board{}, postgres.Translate(err)
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

func count(c *BedCounts, status string) {
	c.Total++
	switch status {
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
