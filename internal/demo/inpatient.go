package demo

import (
	"context"
	mrand "math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// historyDays is how far back the demo's admissions go (the census page
// shows a month).
const historyDays = 30

var admitReasons = map[string][]string{
	"general":    {"Community-acquired pneumonia", "Exacerbation of COPD", "Cellulitis of the leg", "Heart failure, decompensated", "Acute kidney injury", "Elective hip replacement", "Appendicectomy", "Falls, for assessment"},
	"icu":        {"Septic shock", "Post-operative ventilation", "Diabetic ketoacidosis"},
	"isolation":  {"Suspected tuberculosis", "C. difficile infection", "Influenza A with hypoxia"},
	"paediatric": {"Bronchiolitis", "Dehydration with gastroenteritis", "Asthma attack"},
	"maternity":  {"Labour, term", "Elective caesarean section", "Pre-eclampsia, monitoring"},
}

var summaries = []string{
	"Recovered well; follow up in clinic in two weeks.",
	"Discharged home with oral antibiotics; GP to review.",
	"Stable on discharge; community nursing arranged.",
}

// loadInpatients gives every available bed a month of stays: admitted,
// discharged, cleaned, admitted again, and for most beds a patient now,
// written the way the application would (the triggers keep beds, stays
// and history), with the ward's care relationship for current patients.
// A bed discharged in the last three hours is still being cleaned.
func loadInpatients(ctx context.Context, db *postgres.DB, rng *mrand.Rand, now time.Time) error {
	return db.InTx(ctx, func(q *dbgen.Queries) error {
		beds, err := q.DemoBeds(ctx)
		if err != nil {
			return err
		}
		all, err := q.PatientListByCreated(ctx, dbgen.PatientListByCreatedParams{Lim: 10000, ScopeWards: []uuid.UUID{}})
		if err != nil {
			return err
		}
		pools := map[string][]dbgen.Patient{}
		for _, p := range all[52:] { // the first ones are the outpatient clinics' own
			pools[fitFor(p, now)] = append(pools[fitFor(p, now)], p)
		}
		// pick takes a patient who is not in hospital: one never admitted
		// first, then one discharged earlier (they come back).
		pick := func(bedType string) (dbgen.Patient, bool) {
			kind := "adult"
			switch bedType {
			case "paediatric":
				kind = "child"
			case "maternity":
				kind = "woman"
			}
			if len(pools[kind]) == 0 {
				kind = "adult"
			}
			pool := pools[kind]
			if len(pool) == 0 {
				return dbgen.Patient{}, false
			}
			i := rng.IntN(len(pool))
			p := pool[i]
			pool[i] = pool[len(pool)-1]
			pools[kind] = pool[:len(pool)-1]
			return p, true
		}
		start := now.AddDate(0, 0, -historyDays)
		for _, b := range beds {
			t := start.Add(time.Duration(rng.IntN(72)) * time.Hour)
			for t.Before(now) {
				stay := time.Duration(6+rng.IntN(24*7)) * time.Hour
				p, ok := pick(b.BedType)
				if !ok {
					break
				}
				reason := admitReasons[b.BedType][rng.IntN(len(admitReasons[b.BedType]))]
				days := int32(1 + rng.IntN(7))
				source := []string{"emergency", "direct", "emergency"}[rng.IntN(3)]
				id, err := q.DemoAdmit(ctx, dbgen.DemoAdmitParams{PatientID: p.ID, BedID: b.ID, WardID: b.WardID, Source: source,
					Reason: reason, ExpectedDays: &days, AdmittedAt: t})
				if err != nil {
					return err
				}
				end := t.Add(stay)
				if end.After(now) {
					// Still here: the ward cares for them.
					if _, err := q.CareAssign(ctx, dbgen.CareAssignParams{PatientID: p.ID, WardID: &b.WardID, Reason: "admission"}); err != nil {
						return err
					}
					break
				}
				disposition := "home"
				if rng.IntN(15) == 0 {
					disposition = "transfer_out"
				}
				if err := q.DemoDischarge(ctx, dbgen.DemoDischargeParams{ID: id, Disposition: &disposition, EndedAt: &end,
					DischargeSummary: summaries[rng.IntN(len(summaries))]}); err != nil {
					return err
				}
				pools[fitFor(p, now)] = append(pools[fitFor(p, now)], p)
				if now.Sub(end) < 3*time.Hour {
					break // housekeeping has not been yet
				}
				if _, err := q.BedSetStatus(ctx, dbgen.BedSetStatusParams{ID: b.ID, FromStatus: "cleaning", ToStatus: "available"}); err != nil {
					return err
				}
				// Empty for a few hours to two days; a quarter of the beds stay free.
				t = end.Add(time.Duration(2+rng.IntN(48)) * time.Hour)
				if rng.IntN(4) == 0 && now.Sub(t) < 48*time.Hour {
					break
				}
			}
		}
		return nil
	})
}

// fitFor says which beds suit a patient: children's, maternity, or adult.
func fitFor(p dbgen.Patient, now time.Time) string {
	if p.BirthDate != nil {
		age := now.Sub(*p.BirthDate).Hours() / 24 / 365.25
		switch {
		case age < 16:
			return "child"
		case p.Sex == "female" && age < 45:
			return "woman"
		}
	}
	return "adult"
}
