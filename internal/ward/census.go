package ward

import (
	"context"
	"encoding/csv"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// MaxCensusDays is the longest period one census covers.
const MaxCensusDays = 366

// CensusDay is one ward's (or the hospital's) numbers for one local day.
type CensusDay struct {
	Day        string `json:"day"` // YYYY-MM-DD in the hospital's time zone
	Admissions int    `json:"admissions"`
	Discharges int    `json:"discharges"`
	// Census is the number of patients on the ward at the end of the day
	// (midnight census); for today, now.
	Census int `json:"census"`
	// OccupiedBedDays is the bed time used that day, in days.
	OccupiedBedDays float64 `json:"occupied_bed_days"`
	// Occupancy is occupied bed time over available bed time (0..1); for
	// today, of the hours so far.
	Occupancy float64 `json:"occupancy"`
}

// CensusWard is one ward's census over the period.
type CensusWard struct {
	ID   string `json:"id"`
	Code string `json:"code"`
	Name string `json:"name"`
	Beds int    `json:"beds"` // beds in service now
	// Census is the number of patients at the end of the period: now,
	// when the period ends today.
	Census int `json:"census"`
	// Totals over the period.
	Admissions int     `json:"admissions"`
	Discharges int     `json:"discharges"`
	Occupancy  float64 `json:"occupancy"`
	// AverageLengthOfStay is in days, of the patients discharged from this
	// ward in the period (0 when none was).
	AverageLengthOfStay float64     `json:"average_length_of_stay_days"`
	Days                []CensusDay `json:"days"`
}

// Census is the census and occupancy of the period [From, To].
type Census struct {
	From     string       `json:"from"`
	To       string       `json:"to"`
	TimeZone string       `json:"time_zone"`
	Wards    []CensusWard `json:"wards"`
	Hospital CensusWard   `json:"hospital"` // every ward together
}

// CensusFilter chooses the period (local days, inclusive) and a ward.
type CensusFilter struct {
	From, To string // YYYY-MM-DD; default the last 30 days
	WardID   *string
}

// Census counts admissions, discharges, the midnight census, length of
// stay and occupancy per ward and day from the bed stays. The numbers hold
// no patient, so the read is not audited. Returns EINVALID for a bad
// period, EFORBIDDEN without bed.read.
func (s *Service) Census(ctx context.Context, f CensusFilter) (Census, error) {
	if _, err := hospital.Require(ctx, identity.PermBedRead); err != nil {
		return Census{}, err
	}
	now := s.now().In(s.loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	from, to := today.AddDate(0, 0, -29), today
	var v hospital.Validation
	if f.From != "" {
		d, err := time.Parse(time.DateOnly, f.From)
		v.Check(err == nil, "from", "must be a date (YYYY-MM-DD)")
		from = d
	}
	if f.To != "" {
		d, err := time.Parse(time.DateOnly, f.To)
		v.Check(err == nil, "to", "must be a date (YYYY-MM-DD)")
		to = d
	}
	v.Check(!to.Before(from), "to", "must not be before from")
	v.Check(!from.After(today), "from", "must not be in the future")
	v.Check(to.Sub(from) < MaxCensusDays*24*time.Hour, "to", "the period may span at most 366 days")
	var ward *uuid.UUID
	if f.WardID != nil {
		id, err := uuid.Parse(*f.WardID)
		v.Check(err == nil, "ward_id", "must be a ward id")
		ward = &id
	}
	if err := v.Err(); err != nil {
		return Census{}, err
	}
	if to.After(today) {
		to = today
	}
	var rows []dbgen.CensusDailyRow
	var los []dbgen.LengthOfStayRow
	err := s.db.InTx(ctx, func(q *dbgen.Queries) error {
		var err error
		rows, err = q.CensusDaily(ctx, dbgen.CensusDailyParams{Tz: s.loc.String(), FromDay: from, ToDay: to, WardID: ward})
		if err != nil {
			return err
		}
		los, err = q.LengthOfStay(ctx, dbgen.LengthOfStayParams{FromTime: s.midnight(from), ToTime: s.midnight(to.AddDate(0, 0, 1))})
		return err
	})
	if err != nil {
		return Census{}, postgres.Translate(err)
	}
	c := Census{From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), TimeZone: s.loc.String(), Wards: []CensusWard{}}
	stays := map[uuid.UUID]dbgen.LengthOfStayRow{}
	for _, l := range los {
		stays[l.WardID] = l
	}
	days := int(to.Sub(from)/(24*time.Hour)) + 1
	h := CensusWard{Code: "ALL", Name: "Hospital", Days: make([]CensusDay, days)}
	var hDischarged int
	var hStay, hUsed, hAvailable float64
	dayUsed, dayCapacity := make([]float64, days), make([]float64, days)
	var cur *CensusWard
	var used, available float64
	finish := func() {
		if cur == nil {
			return
		}
		cur.Occupancy = ratio(used, available)
		if l, ok := stays[uuid.MustParse(cur.ID)]; ok {
			cur.AverageLengthOfStay = round(l.AverageDays, 2)
			hDischarged += int(l.Discharged)
			hStay += l.AverageDays * float64(l.Discharged)
		}
		hUsed += used
		hAvailable += available
	}
	for _, r := range rows {
		if cur == nil || cur.ID != r.WardID.String() {
			finish()
			c.Wards = append(c.Wards, CensusWard{ID: r.WardID.String(), Code: r.WardCode, Name: r.WardName, Beds: int(r.Beds), Days: make([]CensusDay, 0, days)})
			cur = &c.Wards[len(c.Wards)-1]
			used, available = 0, 0
			h.Beds += int(r.Beds)
		}
		start := s.midnight(r.Day)
		end := s.midnight(r.Day.AddDate(0, 0, 1))
		if end.After(s.now()) {
			end = s.now()
		}
		capacity := float64(r.Beds) * end.Sub(start).Seconds()
		d := CensusDay{Day: r.Day.Format(time.DateOnly), Admissions: int(r.Admissions), Discharges: int(r.Discharges), Census: int(r.Census),
			OccupiedBedDays: round(r.OccupiedSeconds/86400, 2), Occupancy: ratio(r.OccupiedSeconds, capacity)}
		cur.Days = append(cur.Days, d)
		cur.Admissions += d.Admissions
		cur.Discharges += d.Discharges
		cur.Census = d.Census
		used += r.OccupiedSeconds
		available += capacity
		i := len(cur.Days) - 1
		hd := &h.Days[i]
		hd.Day = d.Day
		hd.Admissions += d.Admissions
		hd.Discharges += d.Discharges
		hd.Census += d.Census
		dayUsed[i] += r.OccupiedSeconds
		dayCapacity[i] += capacity
		h.Admissions += d.Admissions
		h.Discharges += d.Discharges
	}
	finish()
	// The hospital's daily occupancy: bed time used over bed time there was.
	for i := range h.Days {
		h.Days[i].OccupiedBedDays = round(dayUsed[i]/86400, 2)
		h.Days[i].Occupancy = ratio(dayUsed[i], dayCapacity[i])
	}
	if len(h.Days) > 0 {
		h.Census = h.Days[len(h.Days)-1].Census
	}
	h.Occupancy = ratio(hUsed, hAvailable)
	if hDischarged > 0 {
		h.AverageLengthOfStay = round(hStay/float64(hDischarged), 2)
	}
	c.Hospital = h
	return c, nil
}

// midnight is the start of a local day (day is a date at UTC midnight).
func (s *Service) midnight(day time.Time) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, s.loc)
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return round(a/b, 4)
}

func round(f float64, places int) float64 {
	p := 1.0
	for range places {
		p *= 10
	}
	if f < 0 {
		return float64(int64(f*p-0.5)) / p
	}
	return float64(int64(f*p+0.5)) / p
}

// WriteCensusCSV writes the census as one row per ward and day, then the
// hospital's rows (ward code ALL).
func WriteCensusCSV(w io.Writer, c Census) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"day", "ward_code", "ward_name", "beds", "admissions", "discharges", "census", "occupied_bed_days", "occupancy"})
	for _, wd := range append(c.Wards, c.Hospital) {
		for _, d := range wd.Days {
			_ = cw.Write([]string{d.Day, httpx.CSVSafe(wd.Code), httpx.CSVSafe(wd.Name), strconv.Itoa(wd.Beds), strconv.Itoa(d.Admissions),
				strconv.Itoa(d.Discharges), strconv.Itoa(d.Census), strconv.FormatFloat(d.OccupiedBedDays, 'f', 2, 64),
				strconv.FormatFloat(d.Occupancy, 'f', 4, 64)})
		}
	}
	cw.Flush()
	return cw.Error()
}
