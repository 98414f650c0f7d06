// Package demo loads a small, deterministic demo hospital into an empty
// database: departments, wards, rooms and beds, one user per role and a
// few hundred patients, a month of admissions and discharges with most
// beds occupied now, clinics with appointments and queues. Only the
// passwords are random, generated at load.
package demo

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// Login is one demo user's credentials.
type Login struct {
	Role     string
	Username string
	Password string
	Name     string
}

// WriteLogins writes the logins as a table.
func WriteLogins(w io.Writer, logins []Login) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tUSERNAME\tPASSWORD\tNAME")
	for _, l := range logins {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Role, l.Username, l.Password, l.Name)
	}
	tw.Flush()
}

// ReadLogins reads what WriteLogins wrote (the demo-logins.txt that
// `make run` leaves in its data directory): one login per line after the
// header, the name being the rest of the line.
func ReadLogins(r io.Reader) ([]Login, error) {
	var out []Login
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 0 || (n == 1 && f[0] == "ROLE"):
			continue
		case len(f) < 3:
			return nil, fmt.Errorf("demo logins: line %d: want ROLE USERNAME PASSWORD NAME", n)
		}
		out = append(out, Login{Role: f[0], Username: f[1], Password: f[2], Name: strings.Join(f[3:], " ")})
	}
	return out, sc.Err()
}

type departmentSpec struct {
	code, name, kind string
	wards            []wardSpec
}

type wardSpec struct {
	code, name, specialty, sex, floor, bedType string
	rooms, bedsPerRoom                         int
}

var departments = []departmentSpec{
	{"EMER", "Emergency Department", "clinical", []wardSpec{
		{"ED-OBS", "Emergency Observation", "Emergency medicine", "", "G", "general", 4, 2}}},
	{"MED", "Internal Medicine", "clinical", []wardSpec{
		{"MED-A", "Medical Ward A", "General medicine", "", "2", "general", 6, 4},
		{"MED-B", "Medical Ward B", "Cardiology", "", "2", "general", 6, 4}}},
	{"SURG", "Surgery", "clinical", []wardSpec{
		{"SURG-1", "Surgical Ward 1", "General surgery", "", "3", "general", 6, 4}}},
	{"PAED", "Paediatrics", "clinical", []wardSpec{
		{"PAED", "Children's Ward", "Paediatrics", "", "4", "paediatric", 5, 2}}},
	{"OBGYN", "Obstetrics and Gynaecology", "clinical", []wardSpec{
		{"MAT", "Maternity Ward", "Obstetrics", "female", "4", "maternity", 5, 2}}},
	{"ICU", "Intensive Care", "clinical", []wardSpec{
		{"ICU", "Intensive Care Unit", "Critical care", "", "1", "icu", 8, 1},
		{"ISO", "Isolation Unit", "Infectious diseases", "", "1", "isolation", 4, 1}}},
	{"RAD", "Radiology", "support", nil},
	{"LAB", "Laboratory", "support", nil},
	{"PHARM", "Pharmacy", "support", nil},
	{"ADMIN", "Administration", "administrative", nil},
}

var users = []struct{ role, username, name, dept string }{
	{identity.RoleAdmin, "admin", "Sam Whitaker", "ADMIN"},
	{identity.RolePhysician, "dr.okafor", "Dr. Amara Okafor", "MED"},
	{identity.RoleNurse, "nurse.lindqvist", "Ingrid Lindqvist", "MED"},
	{identity.RoleReceptionist, "reception", "Tomás Ferreira", "ADMIN"},
	{identity.RolePharmacist, "pharmacist", "Mei Chen", "PHARM"},
	{identity.RoleLabTechnician, "labtech", "Kwame Mensah", "LAB"},
	{identity.RoleBillingClerk, "billing", "Zofia Nowak", "ADMIN"},
	{identity.RoleInventoryManager, "stores", "Rahul Iyer", "ADMIN"},
	{identity.RoleAuditor, "auditor", "Elif Demir", "ADMIN"},
}

// Loaded reports whether the database already holds users (and so the demo
// or real data): Load then does nothing.
func Loaded(ctx context.Context, db *postgres.DB) (bool, error) {
	n, err := db.Queries().UserCount(ctx)
	return n > 0, err
}

// Load fills an empty database and returns the demo logins. patients is the
// number of patients to generate; appointments start on the day of now (in
// loc), and today's waiting room arrived in the 50 minutes before now.
func Load(ctx context.Context, db *postgres.DB, ids *identity.Service, patients int, loc *time.Location, now time.Time) ([]Login, error) {
	rng := mrand.New(mrand.NewPCG(20261126, 1))
	deptIDs := map[string]string{}
	err := db.InTx(ctx, func(q *dbgen.Queries) error {
		for _, d := range departments {
			dep, err := q.DepartmentCreate(ctx, dbgen.DepartmentCreateParams{Code: d.code, Name: d.name, Kind: d.kind})
			if err != nil {
				return err
			}
			deptIDs[d.code] = dep.ID.String()
			for _, ws := range d.wards {
				var sex *string
				if ws.sex != "" {
					sex = &ws.sex
				}
				w, err := q.WardCreate(ctx, dbgen.WardCreateParams{DepartmentID: dep.ID, Code: ws.code, Name: ws.name,
					Specialty: ws.specialty, SexRestriction: sex, Floor: ws.floor})
				if err != nil {
					return err
				}
				for r := 1; r <= ws.rooms; r++ {
					room, err := q.RoomCreate(ctx, dbgen.RoomCreateParams{WardID: w.ID, Code: fmt.Sprintf("%s-%02d", ws.code, r)})
					if err != nil {
						return err
					}
					for b := 0; b < ws.bedsPerRoom; b++ {
						status := "available"
						switch x := rng.IntN(20); {
						case x == 0:
							status = "out_of_service"
						case x < 3:
							status = "cleaning"
						}
						if _, err := q.BedCreate(ctx, dbgen.BedCreateParams{RoomID: room.ID,
							Code: fmt.Sprintf("%s%c", room.Code, 'A'+b), BedType: ws.bedType, Status: status}); err != nil {
							return err
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("demo facility: %w", err)
	}
	var logins []Login
	userIDs := map[string]uuid.UUID{}
	for _, u := range users {
		pw := password()
		created, err := ids.CreateUserAsSystem(ctx, u.username, u.name, u.role, deptIDs[u.dept], pw)
		if err != nil {
			return nil, fmt.Errorf("demo user %s: %w", u.username, err)
		}
		userIDs[u.username] = uuid.MustParse(created.ID)
		logins = append(logins, Login{Role: u.role, Username: u.username, Password: pw, Name: u.name})
	}
	if err := CopyPatients(ctx, db, patients, rng); err != nil {
		return nil, err
	}
	if err := loadSchedule(ctx, db, rng, deptIDs, userIDs, loc, now); err != nil {
		return nil, fmt.Errorf("demo schedule: %w", err)
	}
	if err := loadInpatients(ctx, db, rng, now); err != nil {
		return nil, fmt.Errorf("demo admissions: %w", err)
	}
	return logins, nil
}

// password returns a random 20-character password (about 100 bits).
func password() string {
	b := make([]byte, 13)
	_, _ = rand.Read(b)
	s := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:20]
	return s[:5] + "-" + s[5:10] + "-" + s[10:15] + "-" + s[15:]
}

// CopyPatients inserts n generated patients with COPY.
func CopyPatients(ctx context.Context, db *postgres.DB, n int, rng *mrand.Rand) error {
	rows := make([]dbgen.PatientCopyParams, 0, n)
	for range n {
		rows = append(rows, Patient(rng))
	}
	_, err := db.Queries().PatientCopy(ctx, rows)
	if err != nil {
		return fmt.Errorf("demo patients: %w", postgres.Translate(err))
	}
	return nil
}

var (
	cities = []struct{ city, country, postal, language string }{
		{"London", "GB", "SW1A 1AA", "en"}, {"Manchester", "GB", "M1 1AE", "en"}, {"Dublin", "IE", "D02 X285", "en"},
		{"Leeds", "GB", "LS1 4AP", "en"}, {"Bristol", "GB", "BS1 4ST", "en"}, {"Cork", "IE", "T12 K8AF", "ga"},
	}
	streets = []string{"High Street", "Station Road", "Church Lane", "Victoria Road", "Mill Lane", "Park Avenue",
		"Queen's Road", "The Green", "Orchard Close", "Riverside"}
)

// Patient generates one realistic patient from rng.
func Patient(rng *mrand.Rand) dbgen.PatientCopyParams {
	sex := "female"
	switch x := rng.IntN(100); {
	case x < 48:
		sex = "male"
	case x == 98:
		sex = "other"
	case x == 99:
		sex = "unknown"
	}
	given := givenNames(rng, sex != "male")
	c := cities[rng.IntN(len(cities))]
	age := rng.IntN(95)
	birth := time.Date(2025-age, time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
	fam := familyName(rng)
	if rng.IntN(50) == 0 {
		fam = typo(fam, rng) // registrations with a typo, as real registries have
	}
	return dbgen.PatientCopyParams{
		FamilyName:  fam,
		GivenNames:  given,
		BirthDate:   &birth,
		Sex:         sex,
		Phone:       fmt.Sprintf("+44 7700 9%05d", rng.IntN(100000)),
		AddressLine: fmt.Sprintf("%d %s", 1+rng.IntN(200), streets[rng.IntN(len(streets))]),
		City:        c.city,
		PostalCode:  c.postal,
		Country:     c.country,
		Language:    c.language,
	}
}

// typo swaps two neighbouring letters.
func typo(s string, rng *mrand.Rand) string {
	r := []rune(s)
	if len(r) < 4 {
		return s
	}
	i := 1 + rng.IntN(len(r)-2)
	r[i], r[i+1] = r[i+1], r[i]
	return string(r)
}
