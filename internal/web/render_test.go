package web

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/hospital-erp/hospital-erp/internal/patient"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

// Every page struct renders through the layout, with data and without,
// into HTML that keeps the CSP (no inline script or style), labels every
// control and repeats no id.
func TestEveryPageRenders(t *testing.T) {
	t.Parallel()
	s := testServer(t, testKey)
	pt := patient.Patient{ID: testPatientID, MRN: "10000017", FamilyName: "O'Brien <b>", GivenNames: "Siobhán",
		BirthDate: "1950-12-31", Sex: "female", CreatedAt: time.Now()}
	wd := ward.Ward{ID: testWardID, Name: "Ward 1", DepartmentName: "Medicine", Specialty: "Cardiology", Floor: "2",
		Beds: ward.BedCounts{Total: 3, Available: 1, Occupied: 1, OutOfService: 1}}
	beds := []ward.Bed{{Code: "B1", RoomCode: "1", Status: "available", Type: "icu"}, {Code: "B2", RoomCode: "1 A", Status: "occupied"}}
	user := &UserView{Name: "Nia Nurse", RoleName: "Nurse"}
	nav := navFor(&session{UserID: "u", Access: "a", Perms: []string{"patient.read", "bed.read"}}, "patients")
	signedIn := func(l Layout) Layout {
		l.User, l.NavItems, l.CSRF, l.RequestID = user, nav, "csrf", "req-1"
		l.Flash = &Flash{Kind: "success", Message: "Saved."}
		return l
	}

	cases := []struct {
		name string
		page page
	}{
		{"login", newLoginPage("/")},
		{"login", &LoginPage{Layout: Layout{Title: "Sign in"}, Summary: []SummaryItem{{Text: "Enter your username", Href: "#f-username"}},
			UsernameError: "Enter your username"}},
		{"dashboard", &DashboardPage{Layout: signedIn(Layout{Title: "Dashboard"}), Name: "Nia"}},
		{"dashboard", &DashboardPage{Layout: signedIn(Layout{Title: "Dashboard"}), Name: "Nia", ShowBeds: true, ShowPatients: true,
			Beds: countsByStatus(wd.Beds), BedTotal: 3, BedBar: newBedBar(wd.Beds), Wards: 1, Recent: []patient.Patient{pt},
			Actions: []Action{{Href: "/patients/new", Label: "Register patient", Primary: true}}}},
		{"dashboard", &DashboardPage{Layout: signedIn(Layout{Title: "Dashboard"}), ShowBeds: true, ShowPatients: true,
			BedsError: unavailableSection, RecentError: unavailableSection}},
		{"patient_list", &PatientListPage{Layout: signedIn(Layout{Title: "Patients"}), Sort: "name"}},
		{"patient_list", &PatientListPage{Layout: signedIn(Layout{Title: "Patients"}), Q: "O'B", Sort: "-created",
			Columns: []SortColumn{{Label: "MRN", Href: "/patients?sort=mrn"}, {Label: "Name", Href: "/patients"},
				{Label: "Registered", Href: "/patients?sort=created", AriaSort: "descending"}},
			Patients: []patient.Patient{pt, {ID: "x", MRN: "2", FamilyName: "A", Deceased: true}},
			NextURL:  "/patients?cursor=c", FirstURL: "/patients", CanWrite: true}},
		{"patient_list", &PatientListPage{Layout: signedIn(Layout{Title: "Patients"}), Error: "The search could not be run."}},
		{"patient_new", newPatientNewPage(patient.RegisterInput{}, nil)},
		{"patient_new", newPatientNewPage(patient.RegisterInput{GivenNames: "A", Sex: "other"},
			map[string]string{"family_name": "is required", "birth_date": "cannot be in the future", "extra": "is unknown"})},
		{"patient_show", &PatientShowPage{Layout: signedIn(Layout{Title: "Patient record", BodyClass: "print-wristband"}), Patient: pt,
			Address: []string{"1 High St", "LS1 Leeds"}}},
		{"patient_show", &PatientShowPage{Layout: signedIn(Layout{Title: "Patient record"}), Patient: patient.Patient{ID: "y", MRN: "3"}}},
		{"ward_list", &WardListPage{Layout: signedIn(Layout{Title: "Wards"})}},
		{"ward_list", &WardListPage{Layout: signedIn(Layout{Title: "Wards"}), Wards: []WardRow{{Ward: wd, Bar: newBedBar(wd.Beds)}},
			Totals: wd.Beds, TotalBar: newBedBar(wd.Beds)}},
		{"ward_show", &WardShowPage{Layout: signedIn(Layout{Title: "Ward"}), Ward: wd, Board: newBedBoard(beds),
			Legend: countsByStatus(ward.BedCounts{}), FragmentURL: "/wards/x?fragment=beds"}},
		{"ward_show", &WardShowPage{Layout: signedIn(Layout{Title: "Ward"}), Ward: wd, Board: newBedBoard(nil)}},
		{"error", errorPage(404, 0)},
		{"error", errorPage(503, 0)},
		{"error", errorPage(429, 3e9)},
		{"error", errorPage(500, 0)},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		seen[tc.name] = true
		body, err := s.views.execute(tc.name, "layout", tc.page)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		doc, err := html.Parse(bytes.NewReader(body))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		checkPage(t, tc.name, doc)
	}
	for _, name := range pageNames {
		if !seen[name] {
			t.Errorf("page %s has no render case", name)
		}
	}
	if _, err := s.views.execute("ward_show", "bed_board", newBedBoard(beds)); err != nil {
		t.Errorf("bed_board fragment: %v", err)
	}
}

func checkPage(t *testing.T, name string, doc *html.Node) {
	t.Helper()
	if find(doc, byTag("title")) == nil || find(doc, byID("main")) == nil || len(findAll(doc, byTag("h1"))) != 1 {
		t.Errorf("%s: needs a title, one h1 and #main", name)
	}
	if a := find(doc, byClass("skip-link")); attr(a, "href") != "#main" {
		t.Errorf("%s: no skip link", name)
	}
	if find(doc, byTag("style")) != nil {
		t.Errorf("%s: inline <style> breaks the CSP", name)
	}
	ids := map[string]bool{}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if hasAttr(n, "style") {
			t.Errorf("%s: style attribute on <%s> breaks the CSP", name, n.Data)
		}
		for _, a := range n.Attr {
			if len(a.Key) > 2 && a.Key[:2] == "on" {
				t.Errorf("%s: inline handler %s on <%s>", name, a.Key, n.Data)
			}
		}
		if n.Data == "script" && (attr(n, "src") == "" || n.FirstChild != nil) {
			t.Errorf("%s: inline script", name)
		}
		if id := attr(n, "id"); id != "" {
			if ids[id] {
				t.Errorf("%s: id %q repeated", name, id)
			}
			ids[id] = true
		}
	}
	for _, c := range slices.Concat(findAll(doc, byTag("input")), findAll(doc, byTag("select"))) {
		if attr(c, "type") == "hidden" {
			continue
		}
		if find(doc, and(byTag("label"), byAttr("for", attr(c, "id")))) == nil {
			t.Errorf("%s: control %q has no label", name, attr(c, "name"))
		}
		for _, ref := range splitFields(attr(c, "aria-describedby")) {
			if !ids[ref] {
				t.Errorf("%s: %q is described by missing #%s", name, attr(c, "name"), ref)
			}
		}
	}
	for _, form := range findAll(doc, byTag("form")) {
		if attr(form, "method") == "post" && find(form, byAttr("name", "csrf_token")) == nil {
			t.Errorf("%s: a POST form without csrf_token", name)
		}
	}
}

func splitFields(s string) []string {
	var out []string
	start := -1
	for i, c := range s + " " {
		if c == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
			}
			start = -1
		} else if start < 0 {
			start = i
		}
	}
	return out
}
