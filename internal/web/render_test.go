package web

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/hospital-erp/hospital-erp/internal/access"
	"github.com/hospital-erp/hospital-erp/internal/admission"
	"github.com/hospital-erp/hospital-erp/internal/appointment"
	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
	"github.com/hospital-erp/hospital-erp/internal/queue"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

// Every page struct renders through the layout, with data and without,
// into HTML that keeps the CSP (no inline script or style), labels every
// control and repeats no id.
func TestEveryPageRenders(t *testing.T) {
	t.Parallel()
	s := testServer(t, testKey)
	s.loc = time.UTC
	now := time.Now()
	pt := patient.Patient{ID: testPatientID, MRN: "10000017", FamilyName: "O'Brien <b>", GivenNames: "Siobhán",
		BirthDate: "1950-12-31", Sex: "female", CreatedAt: time.Now()}
	wd := ward.Ward{ID: testWardID, Name: "Ward 1", DepartmentName: "Medicine", Specialty: "Cardiology", Floor: "2",
		Beds: ward.BedCounts{Total: 3, Available: 1, Occupied: 1, OutOfService: 1}}
	bedsBoard := testBoard(now)
	adm := testAdmission(now)
	user := &UserView{Name: "Nia Nurse", RoleName: "Nurse"}
	nav := navFor(&session{UserID: "u", Access: "a", Perms: []string{"patient.read", "bed.read"}}, "patients")
	choices := assignmentChoices{roles: identity.RoleList(), depts: []ward.Department{{ID: testDeptID, Name: "Medicine"}},
		wards: []ward.Ward{wd}}
	full := pt
	full.NamePrefix, full.PreferredName, full.GenderIdentity, full.BirthSex, full.Language = "Dr", "Shiv", "woman", "F", "ga"
	full.MobilePhone, full.Email, full.AddressLine2, full.District, full.Deceased = "07700 900000", "s@example.org", "Flat 2", "Cork", true
	full.DeceasedAt = &now
	full.Identifiers = []patient.Identifier{{ID: "i", Type: "NI", System: "urn:x", Value: "1"}}
	full.Contacts = []patient.Contact{{ID: "c", Relationship: "N", Name: "Aoife", Phone: "1", Email: "a@example.org", Address: "Here"}}
	appt := appointment.Appointment{ID: testApptID, PatientID: pt.ID, PatientName: "O'BRIEN, Siobhán", PatientMRN: pt.MRN,
		PractitionerID: "p", PractitionerName: "Dr. A", ClinicID: "c", ClinicName: "Clinic", StartsAt: at(9, 15), EndsAt: at(9, 30),
		Status: "booked", Reason: "Check", CreatedAt: now}
	board := func(write, display bool) QueueBoard {
		s := testServer(t, testKey)
		s.loc = time.UTC
		return s.newQueueBoard(queue.Board{DepartmentID: testDeptID, Entries: []queue.Entry{
			{ID: "e1", Ticket: "004", Status: "called", PatientID: pt.ID, PatientName: "O'BRIEN", CalledAt: &now, CallPoint: "Room 2", CheckedInAt: now},
			{ID: "e2", Ticket: "005", Status: "waiting", PatientName: "X", PatientMRN: "9", CheckedInAt: now.Add(-75 * time.Minute)},
		}}, "csrf", write, display)
	}
	signedIn := func(l Layout) Layout {
		l.User, l.NavItems, l.CSRF, l.RequestID = user, nav, "csrf", "req-1"
		l.Flash = &Flash{Kind: "success", Message: "Saved."}
		l.IdleTimeout = 900
		return l
	}
	mfaPage := func(s *Server, sess *session) *MFAPage {
		p := s.newMFAPage(sess, "/")
		p.Layout = signedIn(p.Layout)
		return p
	}
	userShow := func(s *Server, u identity.User, editErrs, pwErrs map[string]string) *UserShowPage {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, &session{UserID: "1"}))
		p := s.newUserShowPage(r, choices, u, nil, editErrs, pwErrs)
		p.Layout = signedIn(p.Layout)
		return p
	}
	auditPage := func(s *Server, events []audit.Event) *AuditListPage {
		f, _, _ := parseAuditFilter(url.Values{"sort": {"actor"}}, now)
		p := &AuditListPage{Layout: signedIn(Layout{Title: "Audit"}), Cols: map[string]SortColumn{}, Sort: f.Sort,
			Fields: auditFields(f, map[string]string{"to": "is wrong"}), Searched: events != nil, CSVURL: "/audit/export.csv",
			PrevURL: "/audit?offset=0", NextURL: "/audit?offset=100"}
		for k, c := range auditSorts {
			p.Cols[k] = SortColumn{Label: c.label, Href: "/audit?sort=" + k}
		}
		for _, e := range events {
			p.Events = append(p.Events, newAuditRow(e, f))
		}
		return p
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
		{"patient_list", &PatientListPage{Layout: signedIn(Layout{Title: "Patients"}), Search: patientSearch{Q: "O'B", MRN: "1"},
			Searched: true, MoreOpen: true, Sort: "-created", SortOptions: []Option{{Value: "-created", Label: "Newest", Selected: true}},
			Columns: []SortColumn{{Label: "MRN", Href: "/patients?sort=mrn"}, {Label: "Name", Href: "/patients"},
				{Label: "Registered", Href: "/patients?sort=created", AriaSort: "descending"}},
			Patients: []patient.Patient{pt, {ID: "x", MRN: "2", FamilyName: "A", Deceased: true}},
			NextURL:  "/patients?cursor=c", FirstURL: "/patients", CanWrite: true}},
		{"patient_list", &PatientListPage{Layout: signedIn(Layout{Title: "Patients"}), Error: "The search could not be run."}},
		{"patient_new", newPatientNewPage(patient.RegisterInput{}, nil)},
		{"patient_new", newPatientNewPage(patient.RegisterInput{Demographics: patient.Demographics{GivenNames: "A", Sex: "other"}},
			map[string]string{"family_name": "is required", "birth_date": "cannot be in the future", "extra": "is unknown"})},
		{"patient_show", &PatientShowPage{Layout: signedIn(Layout{Title: "Patient record", BodyClass: "print-wristband"}), Patient: pt,
			Address: []string{"1 High St", "LS1 Leeds"}}},
		{"patient_show", &PatientShowPage{Layout: signedIn(Layout{Title: "Patient record"}), Patient: patient.Patient{ID: "y", MRN: "3"}}},
		{"bed_board", func() page {
			bv := s.newBoardView(&session{UserID: "u", Access: "a", Perms: []string{"admission.read", "admission.write"}}, bedsBoard, "")
			return &BedBoardPage{Layout: signedIn(Layout{Title: "Bed board"}), Tabs: bedTabs(&session{}, "beds"), Board: bv,
				Legend: countsByStatus(ward.BedCounts{}), FragmentURL: "/beds?fragment=board",
				WardOptions: []Option{{Value: "", Label: "All wards"}}, ShowOptions: bedStatusFilters}
		}()},
		{"bed_board", &BedBoardPage{Layout: signedIn(Layout{Title: "Bed board"}), WardID: testWardID, Status: "cleaning",
			WardURL: "/wards/" + testWardID, Board: s.newBoardView(&session{}, ward.Board{Wards: bedsBoard.Wards[:1]}, "cleaning")}},
		{"bed_board", &BedBoardPage{Layout: signedIn(Layout{Title: "Bed board"})}},
		{"ward_show", &WardShowPage{Layout: signedIn(Layout{Title: "Ward"}), Ward: wd, Live: wardLive(s, bedsBoard),
			Legend: countsByStatus(ward.BedCounts{}), FragmentURL: "/wards/x?fragment=beds"}},
		{"ward_show", &WardShowPage{Layout: signedIn(Layout{Title: "Ward"}), Ward: wd, Live: WardLive{Ward: WardBoard{Name: "Empty"}}}},
		{"housekeeping", &HousekeepingPage{Layout: signedIn(Layout{Title: "Housekeeping"}), Tabs: bedTabs(&session{}, "housekeeping"),
			List: HousekeepingList{Cleaning: s.housekeepingBeds(bedsBoard), OutOfService: s.housekeepingBeds(bedsBoard), CanWrite: true, CSRF: "c",
				Back: "/housekeeping", Available: newBedSelect(bedsBoard, "bed_id", "Bed", "", "")}}},
		{"housekeeping", &HousekeepingPage{Layout: signedIn(Layout{Title: "Housekeeping"}), List: HousekeepingList{
			Available: BedSelect{Name: "bed_id", Label: "Bed", Empty: "None", Error: "Choose"}, CanWrite: true}}},
		{"census", censusPage(s)},
		{"census", &CensusPage{Layout: signedIn(Layout{Title: "Census"}), FromError: "Enter a date", ToError: "Too long",
			Summary: []SummaryItem{{Text: "Enter a date", Href: "#f-from"}}, WardOptions: []Option{{Value: "", Label: "All wards"}}}},
		{"admission_new", &AdmitPage{Layout: signedIn(Layout{Title: "Admit"}), Key: "k", Params: admitParams{PatientQ: "o"},
			PatientSearched: true, PatientResults: []PatientChoice{{Patient: pt, InputID: "patient-0"}},
			Beds:    newBedSelect(bedsBoard, "bed_id", "Bed", "b1", ""),
			Sources: []Choice{{ID: "source-emergency", Value: "emergency", Label: "Emergency", Hint: "ED"}, {ID: "source-direct", Value: "direct", Label: "Direct"}},
			Reason:  Field{Name: "reason", Label: "Reason", Rows: 3}, ExpectedDays: Field{Name: "expected_days", Label: "Days", Type: "number", Optional: true}}},
		{"admission_new", &AdmitPage{Layout: signedIn(Layout{Title: "Admit"}), Key: "k", Patient: &pt, ChangePatientURL: "/admissions/new",
			Current: &AdmissionRow{URL: "/admissions/a", Where: "Ward 1, bed B1"}, Appointment: &AppointmentRef{ID: "a", When: "Monday", URL: "/appointments/a"},
			Taken: true, Beds: BedSelect{Name: "bed_id", Label: "Bed", Empty: "No bed is free.", Error: "Choose a free bed"},
			Sources:     []Choice{{ID: "source-appointment", Value: "appointment", Label: "From an appointment", Checked: true}},
			SourceError: "Choose", PatientError: "Choose the patient",
			Reason:       Field{Name: "reason", Label: "Reason", Rows: 3, Error: "Enter the reason"},
			ExpectedDays: Field{Name: "expected_days", Label: "Days", Type: "number", Error: "Enter a number"},
			Summary:      []SummaryItem{{Text: bedTakenMessage, Href: "#f-bed_id"}}}},
		{"admission_show", admissionPage(s, adm, true)},
		{"admission_show", func() page {
			ended := adm
			ended.Status, ended.EndedAt, ended.Disposition, ended.DischargeSummary = "discharged", &now, "home", "Well.\nFollow-up in 2 weeks."
			return admissionPage(s, ended, false)
		}()},
		{"admission_command", commandPage(s, adm, "transfer", bedsBoard)},
		{"admission_command", commandPage(s, adm, "discharge", bedsBoard)},
		{"admission_command", commandPage(s, adm, "cancel", bedsBoard)},
		{"login", &LoginPage{Layout: Layout{Title: "Enter your one-time code"}, MFAStep: true, Username: "nurse"}},
		{"login", &LoginPage{Layout: Layout{Title: "Enter your one-time code"}, MFAStep: true, Username: "nurse",
			OTPError: "The code is not valid.", Summary: []SummaryItem{{Text: "The code is not valid.", Href: "#f-otp"}}}},
		{"patient_show", &PatientShowPage{Layout: signedIn(Layout{Title: "Patient record"}), Patient: pt,
			Emergency: &EmergencyBanner{Until: "14:05", UntilISO: "2026-03-02T14:05:00Z"}}},
		{"patient_forbidden", newPatientForbiddenPage(&session{}, testPatientID, "", nil)},
		{"patient_forbidden", newPatientForbiddenPage(&session{UserID: "u", Access: "a", Perms: []string{identity.PermEmergencyAccess}},
			testPatientID, "short", map[string]string{"reason": "explain the emergency in 10 to 500 characters"})},
		{"account", &AccountPage{Layout: signedIn(Layout{Title: "My account"}), Me: identity.Me{User: identity.User{Username: "n",
			MFARequired: true}}, RoleName: "Nurse"}},
		{"account", &AccountPage{Layout: signedIn(Layout{Title: "My account"}), Me: identity.Me{User: identity.User{MFAEnabled: true}},
			LastLogin: "1 Mar 2026, 10:00"}},
		{"account_password", newPasswordPage(nil)},
		{"account_password", newPasswordPage(map[string]string{"current_password": "is not your current password",
			"confirm_password": "The new passwords do not match"})},
		{"account_mfa", mfaPage(s, &session{MFAOn: true})},
		{"account_mfa", mfaPage(s, &session{MFAOn: true, MFARole: true})},
		{"account_mfa", mfaPage(s, &session{})},
		{"account_mfa", mfaPage(s, &session{MustEnrol: true, Role: identity.RoleAdmin,
			Enrol: &pendingEnrol{Secret: testSecret, URI: "otpauth://totp/H:n?secret=" + testSecret, Until: time.Now().Add(time.Hour).Unix()}})},
		{"account_mfa_codes", &MFACodesPage{Layout: signedIn(Layout{Title: "Save your recovery codes"}), Codes: []string{"a-b-c"}, Next: "/"}},
		{"admin_users", &UserListPage{Layout: signedIn(Layout{Title: "Users"}), Tab: "users"}},
		{"admin_users", &UserListPage{Layout: signedIn(Layout{Title: "Users"}), Tab: "users", Q: "j", Filtered: true,
			RoleOptions: roleOptions(localRoles(), "nurse", "All roles"), StatusOptions: []Option{{Value: "", Label: "Any"}},
			Users: []UserRow{newUserRow(identity.User{ID: "1", Username: "j", Active: true, MFARequired: true}, time.UTC),
				newUserRow(identity.User{ID: "2", Username: "k", MFAEnabled: true, LastLoginAt: &now}, time.UTC)},
			NextURL: "/admin/users?cursor=x", FirstURL: "/admin/users"}},
		{"admin_user_new", newUserNewPage(choices, identity.NewUser{}, nil)},
		{"admin_user_new", newUserNewPage(choices, identity.NewUser{Username: "x", WardIDs: []string{testWardID}},
			map[string]string{"password": "is too common", "ward_ids": "must be ward ids", "": "Something else."})},
		{"admin_user_show", userShow(s, identity.User{ID: "1", Username: "j", Active: true, MFAEnabled: true, WardIDs: []string{testWardID}}, nil, nil)},
		{"admin_user_show", userShow(s, identity.User{ID: "1", Username: "j"}, map[string]string{"role": "is unknown"},
			map[string]string{"new_password": "is too short"})},
		{"admin_user_confirm", &UserConfirmPage{Layout: signedIn(Layout{Title: "Disable j?"}), Account: identity.User{ID: "1"},
			Heading: "Disable j?", Explain: "x", Button: "Disable user", Action: "/admin/users/1/disable", Cancel: "/admin/users/1"}},
		{"admin_roles", &RolesPage{Layout: signedIn(Layout{Title: "Roles"}), Tab: "roles", Roles: identity.RoleList(),
			Rows: []PermissionRow{{Perm: "patient.read", Label: "See patients", Has: make([]bool, 9)}}}},
		{"emergency_review", &GrantListPage{Layout: signedIn(Layout{Title: "Review"}), Show: "unreviewed",
			Tabs: []NavItem{{Href: "/emergency-access", Label: "Not yet reviewed", Current: true}}}},
		{"emergency_review", &GrantListPage{Layout: signedIn(Layout{Title: "Review"}), Show: "all", Limit: 2,
			Summary: []SummaryItem{{Text: "Too long", Href: "#note-0"}},
			Grants: []GrantRow{{Grant: access.Grant{ID: "g1", Reason: "Arrest"}, NoteID: "note-0", NoteError: "Too long", Active: true},
				{Grant: access.Grant{ID: "g2", ReviewedAt: &now, ReviewNote: "ok"}, NoteID: "note-1"}}}},
		{"audit_list", auditPage(s, nil)},
		{"audit_list", auditPage(s, []audit.Event{{ID: 1, OccurredAt: now, ActorID: "a", ActorUsername: "j", Action: "patient.read",
			PatientID: testPatientID, Outcome: "denied", Details: []byte(`{"x":1}`)}})},
		{"audit_verify", &AuditVerifyPage{Layout: signedIn(Layout{Title: "Verify"}), Report: audit.Report{OK: true, Blocks: 1}}},
		{"audit_verify", &AuditVerifyPage{Layout: signedIn(Layout{Title: "Verify"}), Report: audit.Report{Problem: "row 7 altered",
			ProblemEventID: 7, ProblemBlock: 2}}},
		{"patient_new", func() page {
			p := newPatientNewPage(patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "O'Brien"}}, nil)
			p.Duplicates = newDuplicateViews([]patient.Duplicate{{Patient: pt, Score: 0.81, NameSimilarity: 0.9, SameBirthDate: true,
				SamePhone: true, SameIdentifier: true}})
			p.CanBook = true
			return p
		}()},
		{"patient_show", func() page {
			p := &PatientShowPage{Layout: signedIn(Layout{Title: "Patient record"}), Patient: full, Details: patientDetails(full, time.UTC),
				CanWrite: true, CanMerge: true, CanBook: true, ShowAppointments: true, AppointmentDays: 31,
				Identifiers: identifierRows(full.Identifiers), Contacts: contactRows(full.Contacts),
				IdentifierFields: withErrors(identifierFields(patient.Identifier{}), map[string]string{"identifier_value": "is taken"}),
				ContactFields:    contactFields(patient.Contact{}),
				Summary:          []SummaryItem{{Text: "Identifier is taken", Href: "#f-identifier_value"}},
				Upcoming:         []AppointmentRow{{Appointment: appt, When: "Mon 4 Mar, 09:15–09:30", StatusLabel: "Booked"}},
				Merges:           []MergeBanner{{MergeID: "m", Survivor: true, OtherID: "o", OtherMRN: "2"}, {MergeID: "n", OtherID: "p", OtherMRN: "3"}},
				Departments:      []Option{{Value: "", Label: "Select"}, {Value: testDeptID, Label: "Medicine"}}}
			return p
		}()},
		{"patient_show", &PatientShowPage{Layout: signedIn(Layout{Title: "Patient record"}), Patient: patient.Patient{ID: "m", MRN: "4", MergedInto: "x"},
			MergedInto: "x", ShowAppointments: true, AppointmentsError: unavailableSection}},
		{"patient_edit", func() page {
			s := testServer(t, testKey)
			p := s.newPatientEditPage(full, 3, patientUpdateInput(full, time.UTC), map[string]string{"deceased_at": "is wrong", "": "Other."})
			p.Layout = signedIn(p.Layout)
			return p
		}()},
		{"patient_edit", &PatientEditPage{Layout: signedIn(Layout{Title: "Change"}), Patient: full, Version: 4, Conflict: true,
			Groups: editGroups(patient.UpdateInput{}, nil), ConflictRows: []ConflictRow{{Label: "Phone", Saved: "1", Yours: ""}},
			Summary: []SummaryItem{{Text: "Changed", Href: "#conflict-title"}}}},
		{"patient_merge", &MergePage{Layout: signedIn(Layout{Title: "Merge"}), Survivor: pt, Q: "x", Searched: true,
			Likely: newDuplicateViews([]patient.Duplicate{{Patient: full, Score: 0.7}}), Candidates: []patient.Patient{full}}},
		{"patient_merge", &MergePage{Layout: signedIn(Layout{Title: "Merge"}), Survivor: pt, Q: "x", Searched: true}},
		{"patient_merge", &MergePage{Layout: signedIn(Layout{Title: "Confirm"}), Survivor: pt, Merged: &full,
			SurvivorDetails: prefixIDs("kept-", patientDetails(pt, time.UTC)), MergedDetails: prefixIDs("merged-", patientDetails(full, time.UTC)),
			Summary: []SummaryItem{{Text: "Already merged."}}}},
		{"appointment_calendar", &CalendarPage{Layout: signedIn(Layout{Title: "Appointments"}), View: "day", Date: testDay,
			Practitioners: []Option{{Value: "", Label: "Any"}}, Clinics: []Option{{Value: "", Label: "Any"}}, DateError: "Enter a date",
			Summary: []SummaryItem{{Text: "Enter a date", Href: "#f-date"}}}},
		{"appointment_calendar", func() page {
			s := testServer(t, testKey)
			s.loc = time.UTC
			per := newPeriod(viewWeek, at(0, 0))
			busy := appt
			busy.ID, busy.PatientID, busy.PatientName, busy.PatientMRN = "b", "", "", ""
			return &CalendarPage{Layout: signedIn(Layout{Title: "Appointments"}), View: "week", Date: testDay, Chosen: true,
				Subject: "Dr. A", Period: per.label(), ViewTabs: viewTabs("week", func(v string) string { return "/appointments?view=" + v }),
				PrevURL: "/p", NextURL: "/n", TodayURL: "/t", CancelledURL: "/c", Count: 2, CanWrite: true, BookURL: "/appointments/book",
				Grid: s.newCalendarGrid(per, at(0, 0), []appointment.Appointment{appt, busy}, false, true, 15, true)}
		}()},
		{"appointment_show", &AppointmentPage{Layout: signedIn(Layout{Title: "Appointment"}), Appt: appt, When: "Monday", StatusLabel: "Booked",
			Ticket: "007", QueueURL: "/queue/x", DepartmentName: "Medicine", CalendarURL: "/appointments",
			Commands: appointmentCommands, CanCancel: true, CanReschedule: true,
			Reason:  Field{Name: "reason", Label: "Reason", Rows: 3, Error: "Reason is required"},
			Summary: []SummaryItem{{Text: "Reason is required", Href: "#f-reason"}}}},
		{"appointment_show", &AppointmentPage{Layout: signedIn(Layout{Title: "Appointment"}), Appt: appointment.Appointment{ID: "x", Status: "cancelled",
			CancelReason: "Ill"}, CalendarURL: "/appointments"}},
		{"appointment_book", &BookPage{Layout: signedIn(Layout{Title: "Book"}), Params: bookParams{Date: testDay, View: "week", PatientQ: "o"},
			Clinics: []Option{{Value: "", Label: "Any"}}, Practitioners: []Option{{Value: "", Label: "Any"}}, PatientSearched: true,
			PatientResults: []PatientChoice{{Patient: pt, InputID: "patient-0"}}, Key: "k",
			Reason: Field{Name: "reason", Label: "Reason", Rows: 2, Optional: true}}},
		{"appointment_book", &BookPage{Layout: signedIn(Layout{Title: "Book"}), Params: bookParams{ClinicID: testClinicID, Date: testDay,
			View: "day", PatientID: pt.ID}, Chosen: true, Patient: &pt, ChangePatientURL: "/appointments/book",
			ViewTabs: viewTabs("day", func(v string) string { return "/appointments/book?view=" + v }), Period: "Monday", Taken: true,
			SlotError: "Choose a free time", PatientError: "Choose the patient", DateError: "Enter a date", Key: "k",
			Days: slotDays([]appointment.Slot{{PractitionerID: "p", ClinicID: "c", StartsAt: at(9, 0), EndsAt: at(9, 15)}},
				scheduleData{}, time.UTC, "", true),
			Reason:  Field{Name: "reason", Label: "Reason", Rows: 2, Optional: true},
			Summary: []SummaryItem{{Text: slotTakenMessage, Href: "#slots"}}}},
		{"appointment_reschedule", &ReschedulePage{Layout: signedIn(Layout{Title: "Move"}), Appt: appt, When: "Monday", Date: testDay,
			View: "week", Practitioners: []Option{{Value: "p", Label: "Dr", Selected: true}}, Taken: true, SlotError: "Choose",
			Days: slotDays([]appointment.Slot{{PractitionerID: "p", ClinicID: "c", StartsAt: at(9, 0), EndsAt: at(9, 15)}},
				scheduleData{}, time.UTC, "", false),
			Summary: []SummaryItem{{Text: slotTakenMessage, Href: "#slots"}}}},
		{"queue_list", &QueueListPage{Layout: signedIn(Layout{Title: "Queues"})}},
		{"queue_list", &QueueListPage{Layout: signedIn(Layout{Title: "Queues"}), Departments: []QueueDepartment{{Department: ward.Department{ID: "d",
			Name: "Medicine"}, URL: "/queue/d", DisplayURL: "/queue/d?display=1"}}}},
		{"queue_board", &QueueBoardPage{Layout: signedIn(Layout{Title: "Queue"}), Department: ward.Department{ID: testDeptID, Name: "Medicine"},
			Board: board(true, false), CanWrite: true, CallPoint: Field{Name: "call_point", Label: "Call to", Type: "text", Optional: true},
			FragmentURL: "/queue/x?fragment=queue"}},
		{"queue_board", &QueueBoardPage{Layout: signedIn(Layout{Title: "Queue", BodyClass: "queue-display"}), Display: true,
			Department: ward.Department{ID: testDeptID, Name: "Medicine"}, Board: board(false, true)}},
		{"queue_board", &QueueBoardPage{Layout: signedIn(Layout{Title: "Queue"}), Department: ward.Department{ID: testDeptID, Name: "Medicine"}}},
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
	for _, f := range []struct {
		page, tmpl string
		data       any
	}{
		{"bed_board", "bed_board_live", s.newBoardView(&session{}, bedsBoard, "")},
		{"ward_show", "ward_live", wardLive(s, bedsBoard)},
		{"housekeeping", "housekeeping_live", HousekeepingList{Cleaning: s.housekeepingBeds(bedsBoard), CanWrite: true}},
	} {
		if _, err := s.views.execute(f.page, f.tmpl, f.data); err != nil {
			t.Errorf("%s fragment: %v", f.tmpl, err)
		}
	}
	for _, display := range []bool{false, true} {
		if _, err := s.views.execute("queue_board", "queue_board", board(true, display)); err != nil {
			t.Errorf("queue_board fragment: %v", err)
		}
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
	for _, c := range slices.Concat(findAll(doc, byTag("input")), findAll(doc, byTag("select")), findAll(doc, byTag("textarea"))) {
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

// testBoard is a board of two wards: every bed state, a patient shown
// (with a stay past its expected length) and one not shown.
func testBoard(now time.Time) ward.Board {
	admitted := now.Add(-9 * 24 * time.Hour)
	three := 3
	return ward.Board{At: now, Totals: ward.BedCounts{Total: 7, Available: 2, Occupied: 2, Cleaning: 1, Reserved: 1, OutOfService: 1},
		Wards: []ward.BoardWard{
			{ID: testWardID, Code: "W1", Name: "Ward 1 – Acute Medicine", Counts: ward.BedCounts{Total: 5, Available: 1, Occupied: 2, Cleaning: 1, OutOfService: 1},
				Beds: []ward.BoardBed{
					{ID: "b1", Code: "B10", RoomCode: "101", Type: "general", Status: "available", UpdatedAt: now},
					{ID: "b2", Code: "B2", RoomCode: "101", Type: "general", Status: "occupied", AdmissionID: "a1", AdmittedAt: &admitted,
						ExpectedDays: &three, Patient: &ward.BoardPatient{ID: testPatientID, Name: "O'BRIEN <b>, Siobhán", MRN: "10000017"}},
					{ID: "b3", Code: "B1", RoomCode: "102", Type: "icu", Status: "cleaning", UpdatedAt: now.Add(-90 * time.Minute)},
					{ID: "b4", Code: "B1", RoomCode: "20", Type: "isolation", Status: "out_of_service", UpdatedAt: now.Add(-72 * time.Hour)},
					{ID: "b5", Code: "B3", RoomCode: "101", Type: "general", Status: "occupied", AdmissionID: "a2", AdmittedAt: &admitted},
				}},
			{ID: "9d3f7e21-0c4b-4f0e-9a51-2b6c8d7e1a33", Code: "W2", Name: "Ward 2 – Surgery", Counts: ward.BedCounts{Total: 2, Available: 1, Reserved: 1},
				Beds: []ward.BoardBed{{ID: "b6", Code: "S1", RoomCode: "1", Type: "general", Status: "available"},
					{ID: "b7", Code: "S2", RoomCode: "1", Type: "maternity", Status: "reserved"}}},
		}}
}

func testAdmission(now time.Time) admission.Admission {
	five := 5
	return admission.Admission{ID: "a1", PatientID: testPatientID, PatientName: "O'BRIEN <b>, Siobhán", PatientMRN: "10000017",
		BedID: "b2", BedCode: "B2", WardID: testWardID, WardName: "Ward 1", Source: "appointment", AppointmentID: testApptID,
		Reason: "Pneumonia", ExpectedDays: &five, Status: "active", AdmittedAt: now.Add(-50 * time.Hour), Version: 2,
		History: []admission.Event{{Event: "admitted", ToBedCode: "B1", ToWardName: "Ward 2", OccurredAt: now.Add(-50 * time.Hour), ActorName: "Jo"},
			{Event: "transferred", FromBedCode: "B1", FromWardName: "Ward 2", ToBedCode: "B2", ToWardName: "Ward 1", OccurredAt: now}}}
}

func wardLive(s *Server, b ward.Board) WardLive {
	bv := s.newBoardView(&session{UserID: "u", Access: "a", Perms: []string{"admission.read"}}, ward.Board{Wards: b.Wards[:1]}, "")
	live := WardLive{Ward: bv.Wards[0]}
	for _, r := range live.Ward.Rooms {
		for _, bed := range r.Beds {
			switch {
			case bed.Status == "occupied" && bed.PatientName != "":
				live.Patients = append(live.Patients, bed)
			case bed.Status == "occupied":
				live.Hidden++
			}
		}
	}
	return live
}

func censusPage(s *Server) *CensusPage {
	days := []ward.CensusDay{{Day: "2030-03-01", Census: 3, Admissions: 1, Occupancy: 0.5}, {Day: "2030-03-02", Census: 4, Discharges: 1, Occupancy: 0.8}}
	w := ward.CensusWard{ID: testWardID, Name: "Ward <1>", Beds: 5, Census: 4, Admissions: 1, Discharges: 1, Occupancy: 0.65,
		AverageLengthOfStay: 4.25, Days: days}
	p := &CensusPage{Layout: Layout{Title: "Census", User: &UserView{Name: "N"}, CSRF: "c"}, Shown: true, Period: "1 – 2 Mar 2030",
		Subject: "all wards", TimeZone: "UTC", CSVURL: "/census.csv?from=2030-03-01&to=2030-03-02",
		Params: censusParams{From: "2030-03-01", To: "2030-03-02"}, WardOptions: []Option{{Value: "", Label: "All wards"}},
		Quick: []NavItem{{Href: "/census", Label: "Last 7 days"}}, Tabs: bedTabs(&session{}, "census"),
		Rows: []CensusRow{newCensusRow(w, "/census?ward_id=x")}}
	t := newCensusRow(w, "")
	p.Total = &t
	p.Chart = newOccupancyChart("all wards", p.Period, days, 0.65)
	return p
}

func admissionPage(s *Server, a admission.Admission, canWrite bool) *AdmissionPage {
	return &AdmissionPage{Layout: Layout{Title: "Admission", User: &UserView{Name: "N"}, CSRF: "c"}, Adm: a, Row: s.admissionRow(a),
		SourceLabel: sourceLabel(a.Source), AppointmentURL: "/appointments/x", ExpectedText: "5 days", CanWrite: canWrite,
		DispositionLabel: dispositionLabel(a.Disposition),
		History:          []HistoryRow{{When: "1 Mar", What: "Admitted", Beds: "To Ward 1, bed B2", By: "Jo"}}}
}

func commandPage(s *Server, a admission.Admission, kind string, b ward.Board) *AdmissionCommandPage {
	cmd := admissionCommands[kind]
	p := &AdmissionCommandPage{Layout: Layout{Title: cmd.Title, User: &UserView{Name: "N"}, CSRF: "c"}, Cmd: cmd, Adm: a,
		Row: s.admissionRow(a), Key: "k", Taken: true, Summary: []SummaryItem{{Text: "x", Href: "#f-bed_id"}}}
	switch kind {
	case "transfer":
		p.Beds = newBedSelect(b, "bed_id", "New bed", "", a.BedID)
		p.Beds.Error = "Choose"
	case "discharge":
		p.Disposition = Field{Name: "disposition", Label: "Discharged to", Options: dispositionOptions("home"), Error: "Choose"}
		p.Notes = Field{Name: "summary", Label: "Summary", Rows: 8, Optional: true, Hint: "h"}
	case "cancel":
		p.Reason = Field{Name: "reason", Label: "Why", Rows: 3, Error: "Enter"}
	}
	return p
}
