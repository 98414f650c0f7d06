package web

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/hospital-erp/hospital-erp/internal/access"
	"github.com/hospital-erp/hospital-erp/internal/admission"
	"github.com/hospital-erp/hospital-erp/internal/appointment"
	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
	"github.com/hospital-erp/hospital-erp/internal/queue"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

// fakeAPI answers the few backend endpoints the web UI calls with canned
// data. It stands in for the backend in web-layer tests only; the backend
// itself is tested against real PostgreSQL.
type fakeAPI struct {
	t  *testing.T
	mu sync.Mutex

	role      string
	perms     []string
	expiresIn int
	access    map[string]bool // valid access tokens
	refresh   map[string]bool // unused refresh tokens
	seq       int

	refreshCalls int
	requestIDs   []string
	routes       []string // "GET /api/v1/...", every request in order
	patientQuery url.Values
	registered   []patient.RegisterInput
	down         bool // answer 503
	wardsDown    bool // answer 503 for the ward list only

	patients []patient.Patient
	wards    []ward.Ward
	beds     []ward.Bed

	// Identity and access: the signed-in user's MFA state and the
	// administration's data.
	mfaOn      bool // login needs a one-time code
	mustEnrol  bool // role requires MFA, not enrolled: only enrolment works
	mfaRole    bool
	enrolling  bool // an enrolment was started
	idle       int
	password   string
	logins     []identity.LoginRequest
	users      []identity.User
	userQuery  url.Values
	created    []identity.NewUser
	updated    []identity.UserUpdate
	actions    []string        // "disable u-2", "revoke u-2", ...
	restricted map[string]bool // patients outside the user's care
	grants     []access.Grant
	reviewed   map[string]string
	auditQuery url.Values
	csvQuery   url.Values
	events     []audit.Event
	auditMore  bool
	verify     audit.Report

	// The registry and scheduling (issue 4).
	reg   registryState
	sched scheduleState
	// Wards, beds and admissions (issue 5).
	inpt inpatientState
}

// inpatientState is the fake's beds, admissions and census.
type inpatientState struct {
	beds       []fakeBed
	admissions []admission.Admission
	admits     []admission.AdmitInput
	keys       []string          // Idempotency-Key of every admit and command
	byKey      map[string]string // key -> body
	keyAdm     map[string]admission.Admission
	commands   []string // "discharge a1 if-match=\"2\""
	bedActions []string // "clean b3"
	boardReads []url.Values
	census     ward.Census
	censusQ    url.Values
	csvQ       url.Values
	// takeNext: the next admission or transfer finds its bed taken by
	// someone else (409), and the bed is occupied from then on.
	takeNext bool
}

// fakeBed is a bed of the fake's board, with its ward.
type fakeBed struct {
	ward.BoardBed
	WardID string
}

// registryState is the fake's patient registry beyond list and read.
type registryState struct {
	dupQueries []patient.RegisterInput
	updates    []patient.UpdateInput
	ifMatch    []string
	identAdds  []patient.Identifier
	removed    []string // "identifier x", "contact y"
	contacts   []patient.Contact
	merges     map[string]patient.Merge
	mergeLists []string // patients whose merges were listed
	undone     []string
}

// scheduleState is the fake's clinics, calendar and queue.
type scheduleState struct {
	practitioners []appointment.Practitioner
	clinics       []appointment.Clinic
	slots         []appointment.Slot
	appts         []appointment.Appointment
	slotQuery     url.Values
	apptQueries   []url.Values
	booked        []appointment.BookInput
	keys          []string
	byKey         map[string]string // idempotency key -> body
	keyAppt       map[string]appointment.Appointment
	taken         bool // the next booking or move answers 409
	commands      []string
	board         queue.Board
	calls         []string
	finished      []string
	walkIns       []string
}

const (
	testPatientID    = "0b9f2f3e-5d0c-4c55-9d56-3f1f2f0b7a01"
	testWardID       = "5e0c3a90-8a37-4b6e-a1c4-8f0d3f9e2b10"
	testOtherPatient = "7c1d1b5a-2a9c-4d42-8f4e-6a7c9e0d1f22"
	testUserID       = "3f7a0c1e-9b2d-4e8f-a6c5-1d2e3f4a5b60"
	testDeptID       = "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6"
	// The fake's TOTP secret, current code and one recovery code.
	testSecret       = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	testOTP          = "123456"
	testRecoveryCode = "k7f3-9qpx-2mdn"
	testPassword     = "correct horse"

	testPractitionerID = "a1b2c3d4-0000-4000-8000-000000000001"
	testClinicID       = "a1b2c3d4-0000-4000-8000-000000000002"
	testApptID         = "a1b2c3d4-0000-4000-8000-000000000003"
	testBusyApptID     = "a1b2c3d4-0000-4000-8000-000000000004"
	testEntryID        = "a1b2c3d4-0000-4000-8000-000000000005"
	testCalledEntryID  = "a1b2c3d4-0000-4000-8000-000000000006"
	testMergeID        = "a1b2c3d4-0000-4000-8000-000000000007"
	testNewApptID      = "a1b2c3d4-0000-4000-8000-000000000008"
	testAdmissionID    = "a1b2c3d4-0000-4000-8000-000000000009"
	testNewAdmissionID = "a1b2c3d4-0000-4000-8000-00000000000a"
	testWard2ID        = "9d3f7e21-0c4b-4f0e-9a51-2b6c8d7e1a33"
	// testDay is a Monday in the future; the web server of the tests runs
	// in UTC.
	testDay = "2030-03-04"
)

// at is a time on testDay, UTC.
func at(hour, minute int) time.Time { return time.Date(2030, 3, 4, hour, minute, 0, 0, time.UTC) }

func newFakeAPI(t *testing.T) *fakeAPI {
	return &fakeAPI{
		t:          t,
		role:       identity.RoleReceptionist,
		perms:      identity.RolePermissions[identity.RoleReceptionist],
		expiresIn:  300,
		access:     map[string]bool{},
		refresh:    map[string]bool{},
		idle:       900,
		password:   testPassword,
		restricted: map[string]bool{},
		reviewed:   map[string]string{},
		users: []identity.User{
			{ID: testUserID, Username: "j.smith", DisplayName: "Jo Smith", Role: identity.RoleNurse, Active: true,
				WardIDs: []string{testWardID}, DepartmentID: testDeptID, Version: 3, CreatedAt: time.Date(2026, 1, 2, 8, 0, 0, 0, time.UTC)},
			{ID: "4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d", Username: "a.admin", DisplayName: "Ann Admin", Role: identity.RoleAdmin,
				Active: false, MFARequired: true, Version: 1},
		},
		grants: []access.Grant{
			{ID: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", UserID: "u-1", Username: "nurse", DisplayName: "Nia Nurse",
				Role: identity.RoleNurse, PatientID: testPatientID, PatientMRN: "10000017", Reason: "Cardiac arrest call in A&E",
				GrantedAt: time.Now().Add(-time.Hour), ExpiresAt: time.Now().Add(-20 * time.Minute)},
		},
		events: []audit.Event{
			{ID: 2, OccurredAt: time.Date(2026, 3, 2, 14, 5, 9, 0, time.UTC), ActorID: testUserID, ActorUsername: "j.smith",
				ActorRole: identity.RoleNurse, Action: "patient.read", ResourceType: "patient", ResourceID: testPatientID,
				PatientID: testPatientID, Outcome: "denied", RequestID: "req-7", ClientIP: "10.0.0.7",
				Details: json.RawMessage(`{"reason":"no care relationship"}`)},
			{ID: 1, OccurredAt: time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC), Action: "auth.login", ResourceType: "session",
				Outcome: "success", Details: json.RawMessage(`{}`)},
		},
		verify: audit.Report{OK: true, Blocks: 12, Rows: 3400, Unsealed: 3, Head: "ab12"},
		patients: []patient.Patient{
			{ID: testPatientID, MRN: "10000017", FamilyName: "Okonkwo", GivenNames: "Adaeze Grace", BirthDate: "1984-03-02",
				Sex: "female", City: "Leeds", Phone: "+44 113 496 0000", CreatedAt: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC),
				Active: true, Version: 3, Language: "pt-BR",
				Identifiers: []patient.Identifier{{ID: "i-1", Type: "NI", System: "urn:oid:2.16.840.1.113883.2.1.4.1", Value: "943 476 5919"}},
				Contacts:    []patient.Contact{{ID: "c-1", Relationship: "N", Name: "Chidi Okonkwo", Phone: "+44 113 496 0001"}}},
			{ID: "7c1d1b5a-2a9c-4d42-8f4e-6a7c9e0d1f22", MRN: "10000025", FamilyName: "Smith", GivenNames: "John",
				Sex: "male", City: "York", CreatedAt: time.Date(2026, 1, 6, 9, 0, 0, 0, time.UTC), Active: true, Version: 1},
		},
		wards: []ward.Ward{
			{ID: testWardID, Code: "W1", Name: "Ward 1 – Acute Medicine", Specialty: "General medicine", DepartmentName: "Medicine",
				Beds: ward.BedCounts{Total: 4, Available: 1, Occupied: 1, Cleaning: 1, OutOfService: 1}},
			{ID: testWard2ID, Code: "W2", Name: "Ward 2 – Surgery", DepartmentName: "Surgery",
				Beds: ward.BedCounts{Total: 2, Available: 2}},
		},
		reg: registryState{merges: map[string]patient.Merge{}},
		sched: scheduleState{
			byKey:   map[string]string{},
			keyAppt: map[string]appointment.Appointment{},
			practitioners: []appointment.Practitioner{{ID: testPractitionerID, UserID: "u-9", DisplayName: "Dr. Amara Okafor",
				DepartmentID: testDeptID, DepartmentName: "Medicine", Specialty: "General medicine"}},
			clinics: []appointment.Clinic{{ID: testClinicID, DepartmentID: testDeptID, DepartmentName: "Medicine", Code: "MED-OPD",
				Name: "General Medicine Clinic", Location: "Outpatients, level 1", SlotMinutes: 15}},
			slots: []appointment.Slot{
				{PractitionerID: testPractitionerID, ClinicID: testClinicID, StartsAt: at(9, 30), EndsAt: at(9, 45)},
				{PractitionerID: testPractitionerID, ClinicID: testClinicID, StartsAt: at(9, 45), EndsAt: at(10, 0)},
			},
			appts: []appointment.Appointment{
				{ID: testApptID, PatientID: testPatientID, PatientName: "OKONKWO, Adaeze Grace", PatientMRN: "10000017",
					PractitionerID: testPractitionerID, PractitionerName: "Dr. Amara Okafor", ClinicID: testClinicID,
					ClinicName: "General Medicine Clinic", StartsAt: at(9, 15), EndsAt: at(9, 30), Status: appointment.StatusBooked,
					Reason: "Follow-up", Version: 1, CreatedAt: time.Date(2030, 2, 1, 10, 0, 0, 0, time.UTC)},
				// A patient outside the user's care: the calendar gets the time only.
				{ID: testBusyApptID, PractitionerID: testPractitionerID, PractitionerName: "Dr. Amara Okafor", ClinicID: testClinicID,
					ClinicName: "General Medicine Clinic", StartsAt: at(10, 0), EndsAt: at(10, 15), Status: appointment.StatusBooked, Version: 1},
			},
			board: queue.Board{DepartmentID: testDeptID, Waiting: 1, Entries: []queue.Entry{
				{ID: testCalledEntryID, DepartmentID: testDeptID, Ticket: "004", Status: "called", PatientID: testOtherPatient,
					PatientName: "SMITH, John", PatientMRN: "10000025", CheckedInAt: at(8, 40), CalledAt: ptr(at(8, 55)), CallPoint: "Room 2"},
				{ID: testEntryID, DepartmentID: testDeptID, Ticket: "005", Status: "waiting", PatientID: testPatientID,
					PatientName: "OKONKWO, Adaeze Grace", PatientMRN: "10000017", CheckedInAt: at(8, 50)},
			}},
		},
		inpt: newInpatientState(),
		beds: []ward.Bed{
			{ID: "b1", Code: "B10", RoomCode: "101", Type: "general", Status: "available"},
			{ID: "b2", Code: "B2", RoomCode: "101", Type: "general", Status: "occupied"},
			{ID: "b3", Code: "B1", RoomCode: "102", Type: "icu", Status: "cleaning"},
			{ID: "b4", Code: "B1", RoomCode: "20", Type: "isolation", Status: "out_of_service"},
		},
	}
}

func ptr[T any](v T) *T { return &v }

func (f *fakeAPI) problem(w http.ResponseWriter, status int, code, detail string, fields map[string]string) {
	httpx.WriteProblem(w, httpx.Problem{Type: "urn:hospital-erp:problem:" + code, Title: http.StatusText(status),
		Status: status, Code: code, Detail: detail, Errors: fields})
}

// issue makes a new token pair, as login and refresh do.
func (f *fakeAPI) issue() identity.LoginResponse {
	f.seq++
	a, r := fmt.Sprintf("access-%d", f.seq), fmt.Sprintf("refresh-%d", f.seq)
	f.access[a], f.refresh[r] = true, true
	return identity.LoginResponse{TokenResponse: identity.TokenResponse{AccessToken: a, TokenType: "Bearer",
		ExpiresIn: f.expiresIn}, RefreshToken: r}
}

// revokeAccess makes every access token fail, as after a key rotation.
func (f *fakeAPI) revokeAccess() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.access)
}

// endSessions makes every token fail, as after an idle timeout.
func (f *fakeAPI) endSessions() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.access)
	clear(f.refresh)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requestIDs = append(f.requestIDs, r.Header.Get("X-Request-ID"))
	if f.down {
		f.problem(w, http.StatusServiceUnavailable, "unavailable", "The database is not answering.", nil)
		return
	}
	authed := f.access[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	route := r.Method + " " + r.URL.Path
	f.routes = append(f.routes, route)
	switch route {
	case "POST /api/v1/auth/login":
		var req identity.LoginRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.logins = append(f.logins, req)
		switch {
		case req.Username == "busy":
			w.Header().Set("Retry-After", "1")
			f.problem(w, http.StatusServiceUnavailable, "unavailable", "Too many sign-ins at once; please try again in a moment.", nil)
		case req.Username == "locked":
			w.Header().Set("Retry-After", "42")
			f.problem(w, http.StatusTooManyRequests, "too_many_requests", "Too many sign-in attempts. Wait a moment and try again.", nil)
		case req.Username == "nurse" && req.Password == f.password && f.mfaOn && req.OTP == "":
			f.problem(w, http.StatusUnauthorized, "mfa_required", "Enter the 6-digit code from your authenticator app, or a recovery code.", nil)
		case req.Username == "nurse" && req.Password == f.password && f.mfaOn && req.OTP != testOTP && req.OTP != testRecoveryCode:
			f.problem(w, http.StatusUnauthorized, "mfa_required", "The code is not valid. Enter a current code from your authenticator app, or a recovery code.", nil)
		case req.Username == "nurse" && req.Password == f.password:
			httpx.JSON(w, http.StatusOK, f.issue())
		default:
			f.problem(w, http.StatusUnauthorized, "unauthorized", "Wrong username or password.", nil)
		}
		return
	case "POST /api/v1/auth/refresh":
		f.refreshCalls++
		var req identity.RefreshRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		if !f.refresh[req.RefreshToken] {
			// As the real backend: a reused token ends the session.
			clear(f.access)
			clear(f.refresh)
			f.problem(w, http.StatusUnauthorized, "unauthorized", "The refresh token is not valid.", nil)
			return
		}
		delete(f.refresh, req.RefreshToken)
		httpx.JSON(w, http.StatusOK, f.issue())
		return
	}
	if !authed {
		f.problem(w, http.StatusUnauthorized, "unauthorized", "Sign in first.", nil)
		return
	}
	if f.mustEnrol && !strings.HasPrefix(route, "POST /api/v1/auth/") && route != "GET /api/v1/auth/me" {
		f.problem(w, http.StatusForbidden, "forbidden", "Your role must use multi-factor authentication: enrol first.", nil)
		return
	}
	if f.identityRoute(w, r, route) || f.adminRoute(w, r, route) || f.auditRoute(w, r, route) ||
		f.registryRoute(w, r, route) || f.scheduleRoute(w, r, route) || f.inpatientRoute(w, r, route) {
		return
	}
	switch {
	case route == "POST /api/v1/auth/logout":
		// As the real backend: the session's tokens stop working at once.
		clear(f.access)
		clear(f.refresh)
		w.WriteHeader(http.StatusNoContent)
	case route == "GET /api/v1/auth/me":
		perms := f.perms
		if f.mustEnrol {
			perms = []string{}
		}
		httpx.JSON(w, http.StatusOK, identity.Me{User: identity.User{ID: "u-1", Username: "nurse",
			DisplayName: "Nia Nurse", Role: f.role, Active: true, MFAEnabled: f.mfaOn, MFARequired: f.mfaRole}, Permissions: perms,
			MFAEnrolmentRequired: f.mustEnrol, IdleTimeoutSeconds: f.idle, SessionID: "s-1"})
	case route == "POST /api/v1/auth/ws-ticket":
		httpx.JSON(w, http.StatusOK, identity.Ticket{Ticket: "ticket-1", ExpiresIn: 60})
	case route == "GET /api/v1/patients":
		f.patientQuery = r.URL.Query()
		if r.URL.Query().Get("cursor") == "stale" {
			f.problem(w, http.StatusBadRequest, "invalid", "Some fields are not valid.",
				map[string]string{"cursor": "is not a cursor this API returned"})
			return
		}
		var items []patient.Patient
		q := r.URL.Query()
		for _, p := range f.patients {
			if strings.HasPrefix(strings.ToLower(p.FamilyName), strings.ToLower(q.Get("q"))) &&
				(q.Get("mrn") == "" || q.Get("mrn") == p.MRN) && (q.Get("birth_date") == "" || q.Get("birth_date") == p.BirthDate) {
				items = append(items, p)
			}
		}
		httpx.JSON(w, http.StatusOK, httpx.Page[patient.Patient]{Items: items, NextCursor: "cursor-2",
			Sort: r.URL.Query().Get("sort"), Limit: 25})
	case route == "POST /api/v1/patients":
		var in patient.RegisterInput
		_ = json.NewDecoder(r.Body).Decode(&in)
		f.registered = append(f.registered, in)
		errs := map[string]string{}
		if in.FamilyName == "" {
			errs["family_name"] = "is required"
		}
		if in.Email != "" && !strings.Contains(in.Email, "@") {
			errs["email"] = "must be an e-mail address"
		}
		if len(errs) > 0 {
			f.problem(w, http.StatusBadRequest, "invalid", "Some fields are not valid.", errs)
			return
		}
		if dups := f.duplicatesOf(in); len(dups) > 0 && !in.ConfirmNotDuplicate {
			raw, _ := json.Marshal(dups)
			httpx.WriteProblem(w, httpx.Problem{Type: "urn:hospital-erp:problem:conflict", Title: "Conflict", Status: http.StatusConflict,
				Code: "conflict", Detail: "This patient may already be registered.", Extensions: map[string]json.RawMessage{"duplicates": raw}})
			return
		}
		httpx.JSON(w, http.StatusCreated, patient.Patient{ID: testPatientID, MRN: "10000033", FamilyName: in.FamilyName,
			GivenNames: in.GivenNames, Sex: "unknown"})
	case strings.HasPrefix(route, "GET /api/v1/patients/") && f.restricted[strings.TrimPrefix(r.URL.Path, "/api/v1/patients/")]:
		f.problem(w, http.StatusForbidden, "forbidden", "This patient is not under your care (ward, department or care team).", nil)
	case strings.HasPrefix(route, "GET /api/v1/patients/"):
		for _, p := range f.patients {
			if p.ID == r.PathValue("id") || "/api/v1/patients/"+p.ID == r.URL.Path {
				httpx.JSON(w, http.StatusOK, p)
				return
			}
		}
		f.problem(w, http.StatusNotFound, "not_found", "No patient has this id.", nil)
	case route == "GET /api/v1/wards" && f.wardsDown:
		f.problem(w, http.StatusServiceUnavailable, "unavailable", "Try again.", nil)
	case route == "GET /api/v1/wards":
		httpx.JSON(w, http.StatusOK, ward.List[ward.Ward]{Items: f.wards})
	case route == "GET /api/v1/wards/"+testWardID:
		httpx.JSON(w, http.StatusOK, ward.WardDetail{Ward: f.wards[0], BedList: f.beds})
	case strings.HasPrefix(route, "GET /api/v1/wards/"):
		f.problem(w, http.StatusNotFound, "not_found", "No ward has this id.", nil)
	default:
		f.problem(w, http.StatusNotFound, "not_found", "There is no such endpoint.", nil)
	}
}

// identityRoute answers the signed-in user's own account routes.
func (f *fakeAPI) identityRoute(w http.ResponseWriter, r *http.Request, route string) bool {
	switch route {
	case "POST /api/v1/auth/mfa/enrol":
		if f.mfaOn {
			f.problem(w, http.StatusConflict, "conflict", "Multi-factor authentication is already on.", nil)
			return true
		}
		f.enrolling = true
		httpx.JSON(w, http.StatusOK, identity.MFAEnrolment{Secret: testSecret,
			OTPAuthURI: "otpauth://totp/Hospital%20ERP:nurse?algorithm=SHA1&digits=6&issuer=Hospital%20ERP&period=30&secret=" + testSecret,
			QRCodePNG:  "data:image/png;base64,iVBORw0KGgo="})
	case "POST /api/v1/auth/mfa/confirm":
		var in identity.MFAConfirm
		_ = json.NewDecoder(r.Body).Decode(&in)
		switch {
		case !f.enrolling:
			f.problem(w, http.StatusConflict, "conflict", "Start the enrolment first.", nil)
		case in.Code != testOTP:
			f.problem(w, http.StatusBadRequest, "invalid", "Some fields are not valid.",
				map[string]string{"code": "is not the current code from your authenticator app"})
		default:
			f.enrolling, f.mfaOn, f.mustEnrol = false, true, false
			httpx.JSON(w, http.StatusOK, identity.RecoveryCodes{Codes: []string{testRecoveryCode, "a1b2-c3d4-e5f6"}})
		}
	case "POST /api/v1/auth/mfa/disable":
		var in identity.MFADisable
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.Password != f.password {
			f.problem(w, http.StatusBadRequest, "invalid", "Some fields are not valid.",
				map[string]string{"password": "is not your current password"})
			return true
		}
		f.mfaOn = false
		w.WriteHeader(http.StatusNoContent)
	case "POST /api/v1/auth/password":
		var in identity.PasswordChange
		_ = json.NewDecoder(r.Body).Decode(&in)
		switch {
		case in.CurrentPassword != f.password:
			f.problem(w, http.StatusBadRequest, "invalid", "Some fields are not valid.",
				map[string]string{"current_password": "is not your current password"})
		case len(in.NewPassword) < 12:
			f.problem(w, http.StatusBadRequest, "invalid", "Some fields are not valid.",
				map[string]string{"new_password": "must be at least 12 characters"})
		default:
			f.password = in.NewPassword
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		return false
	}
	return true
}

// adminRoute answers the administration's and emergency access routes.
func (f *fakeAPI) adminRoute(w http.ResponseWriter, r *http.Request, route string) bool {
	user := func(id string) int {
		for i, u := range f.users {
			if u.ID == id {
				return i
			}
		}
		return -1
	}
	p := r.URL.Path
	switch {
	case route == "GET /api/v1/roles":
		httpx.JSON(w, http.StatusOK, struct {
			Items []identity.RoleInfo `json:"items"`
		}{identity.RoleList()})
	case route == "GET /api/v1/departments":
		httpx.JSON(w, http.StatusOK, ward.List[ward.Department]{Items: []ward.Department{{ID: testDeptID, Code: "MED", Name: "Medicine"}}})
	case route == "GET /api/v1/users":
		f.userQuery = r.URL.Query()
		httpx.JSON(w, http.StatusOK, httpx.Page[identity.User]{Items: f.users, NextCursor: "users-2", Sort: "username", Limit: 25})
	case route == "POST /api/v1/users":
		var in identity.NewUser
		_ = json.NewDecoder(r.Body).Decode(&in)
		f.created = append(f.created, in)
		errs := map[string]string{}
		if in.Username == "taken" {
			f.problem(w, http.StatusConflict, "conflict", "This username is taken.", map[string]string{"username": "is taken"})
			return true
		}
		if len(in.Password) < 12 {
			errs["password"] = "must be at least 12 characters"
		}
		if _, ok := identity.RoleNames[in.Role]; !ok {
			errs["role"] = "must be one of the roles"
		}
		if len(errs) > 0 {
			f.problem(w, http.StatusBadRequest, "invalid", "Some fields are not valid.", errs)
			return true
		}
		u := identity.User{ID: "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e", Username: in.Username, DisplayName: in.DisplayName,
			Role: in.Role, WardIDs: in.WardIDs, Active: true, Version: 1}
		f.users = append(f.users, u)
		httpx.JSON(w, http.StatusCreated, u)
	case strings.HasPrefix(p, "/api/v1/users/"):
		rest := strings.Split(strings.TrimPrefix(p, "/api/v1/users/"), "/")
		i := user(rest[0])
		if i < 0 {
			f.problem(w, http.StatusNotFound, "not_found", "No user has this id.", nil)
			return true
		}
		action := r.Method + " " + strings.Join(rest[1:], "/")
		switch action {
		case "GET ":
			httpx.JSON(w, http.StatusOK, f.users[i])
		case "PUT ":
			var in identity.UserUpdate
			_ = json.NewDecoder(r.Body).Decode(&in)
			if r.Header.Get("If-Match") != httpx.ETag(f.users[i].Version) {
				f.problem(w, http.StatusPreconditionFailed, "precondition_failed",
					"This user was changed by someone else; reload and try again.", nil)
				return true
			}
			f.updated = append(f.updated, in)
			u := &f.users[i]
			u.DisplayName, u.Role, u.DepartmentID, u.WardIDs = in.DisplayName, in.Role, in.DepartmentID, in.WardIDs
			u.Version++
			httpx.JSON(w, http.StatusOK, *u)
		case "POST disable", "POST enable":
			f.actions = append(f.actions, rest[1]+" "+rest[0])
			f.users[i].Active = rest[1] == "enable"
			httpx.JSON(w, http.StatusOK, f.users[i])
		case "POST password":
			var in identity.PasswordReset
			_ = json.NewDecoder(r.Body).Decode(&in)
			if len(in.NewPassword) < 12 {
				f.problem(w, http.StatusBadRequest, "invalid", "Some fields are not valid.",
					map[string]string{"new_password": "must be at least 12 characters"})
				return true
			}
			f.actions = append(f.actions, "password "+rest[0])
			w.WriteHeader(http.StatusNoContent)
		case "POST sessions/revoke":
			f.actions = append(f.actions, "revoke "+rest[0])
			httpx.JSON(w, http.StatusOK, identity.RevokedSessions{Revoked: 2})
		case "POST mfa/reset":
			f.actions = append(f.actions, "mfa-reset "+rest[0])
			w.WriteHeader(http.StatusNoContent)
		default:
			f.problem(w, http.StatusNotFound, "not_found", "There is no such endpoint.", nil)
		}
	case r.Method == http.MethodPost && strings.HasPrefix(p, "/api/v1/patients/") && strings.HasSuffix(p, "/emergency-access"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/api/v1/patients/"), "/emergency-access")
		var in access.GrantRequest
		_ = json.NewDecoder(r.Body).Decode(&in)
		if len([]rune(strings.TrimSpace(in.Reason))) < 10 {
			f.problem(w, http.StatusBadRequest, "invalid", "Some fields are not valid.",
				map[string]string{"reason": "explain the emergency in 10 to 500 characters"})
			return true
		}
		delete(f.restricted, id)
		g := access.Grant{ID: "g-new", UserID: "u-1", PatientID: id, Reason: in.Reason, GrantedAt: time.Now(),
			ExpiresAt: time.Now().Add(time.Hour)}
		f.grants = append(f.grants, g)
		httpx.JSON(w, http.StatusCreated, g)
	case route == "GET /api/v1/emergency-access":
		var out []access.Grant
		for _, g := range f.grants {
			if note := f.reviewed[g.ID]; note != "" {
				if r.URL.Query().Get("unreviewed") == "true" {
					continue
				}
				now := time.Now()
				g.ReviewedAt, g.ReviewNote = &now, strings.TrimPrefix(note, "note:")
			}
			out = append(out, g)
		}
		httpx.JSON(w, http.StatusOK, struct {
			Items []access.Grant `json:"items"`
		}{out})
	case r.Method == http.MethodPost && strings.HasPrefix(p, "/api/v1/emergency-access/"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/api/v1/emergency-access/"), "/review")
		var in access.ReviewRequest
		_ = json.NewDecoder(r.Body).Decode(&in)
		if f.reviewed[id] != "" {
			f.problem(w, http.StatusNotFound, "not_found", "No such grant, or it was already reviewed.", nil)
			return true
		}
		f.reviewed[id] = "note:" + in.Note
		w.WriteHeader(http.StatusNoContent)
	default:
		return false
	}
	return true
}

// auditRoute answers the audit report's routes.
func (f *fakeAPI) auditRoute(w http.ResponseWriter, r *http.Request, route string) bool {
	switch route {
	case "GET /api/v1/audit/events":
		f.auditQuery = r.URL.Query()
		httpx.JSON(w, http.StatusOK, audit.Page{Items: f.events, Limit: 50, Sort: r.URL.Query().Get("sort"), More: f.auditMore})
	case "GET /api/v1/audit/events.csv":
		f.csvQuery = r.URL.Query()
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		_, _ = io.WriteString(w, "id,occurred_at,actor\n2,2026-03-02T14:05:09Z,j.smith\n")
	case "GET /api/v1/audit/verify":
		httpx.JSON(w, http.StatusOK, f.verify)
	default:
		return false
	}
	return true
}

// env is a web server in front of a fake backend, and a browser-like
// client with a cookie jar that does not follow redirects.
type env struct {
	t      *testing.T
	api    *fakeAPI
	apiSrv *httptest.Server
	web    *Server
	srv    *httptest.Server
	hc     *http.Client
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var testKey = bytes.Repeat([]byte{7}, 32)

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith is newEnv with the web server changed by set before it
// serves (nil: unchanged).
func newEnvWith(t *testing.T, set func(*Server)) *env {
	t.Helper()
	e := &env{t: t, api: newFakeAPI(t), logs: &syncBuffer{}}
	e.apiSrv = httptest.NewServer(e.api)
	t.Cleanup(e.apiSrv.Close)

	e.srv = httptest.NewUnstartedServer(nil)
	web, err := New(Options{
		API:        client.New(e.apiSrv.URL, nil),
		Log:        slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		PublicURL:  "http://" + e.srv.Listener.Addr().String(),
		SessionKey: testKey,
		Location:   time.UTC,
	})
	if err != nil {
		t.Fatal(err)
	}
	if set != nil {
		set(web)
	}
	e.web = web
	e.srv.Config.Handler = web
	e.srv.Start()
	t.Cleanup(e.srv.Close)

	jar, _ := cookiejar.New(nil)
	e.hc = &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e
}

// response is a finished request: status, headers and parsed body.
type response struct {
	*http.Response
	body string
	doc  *html.Node
}

func (e *env) do(req *http.Request) *response {
	e.t.Helper()
	res, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := &response{Response: res, body: string(b)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		if out.doc, err = html.Parse(bytes.NewReader(b)); err != nil {
			e.t.Fatalf("parse HTML of %s: %v", req.URL, err)
		}
	}
	return out
}

func (e *env) get(path string) *response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	return e.do(req)
}

// post sends a form as a browser would from this site.
func (e *env) post(path string, form url.Values) *response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return e.do(req)
}

// csrf loads a page and returns the CSRF token of its forms.
func (e *env) csrf(path string) string {
	e.t.Helper()
	res := e.get(path)
	in := find(res.doc, byAttr("name", "csrf_token"))
	if in == nil {
		e.t.Fatalf("GET %s: no csrf_token field (status %d)", path, res.StatusCode)
	}
	return attr(in, "value")
}

// login signs in as the fake's user.
func (e *env) login() {
	e.t.Helper()
	res := e.post("/login", url.Values{"csrf_token": {e.csrf("/login")}, "username": {"nurse"}, "password": {"correct horse"}})
	if res.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("login: status %d, want 303", res.StatusCode)
	}
}

func (e *env) cookie(name string) *http.Cookie {
	u, _ := url.Parse(e.srv.URL)
	for _, c := range e.hc.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// --- HTML helpers: small queries over golang.org/x/net/html nodes ---

type matcher func(*html.Node) bool

func attr(n *html.Node, key string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

func byTag(tag string) matcher {
	return func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == tag }
}

func byAttr(key, val string) matcher {
	return func(n *html.Node) bool { return n.Type == html.ElementNode && hasAttr(n, key) && attr(n, key) == val }
}

func byID(id string) matcher { return byAttr("id", id) }

func byClass(class string) matcher {
	return func(n *html.Node) bool {
		return n.Type == html.ElementNode && strings.Contains(" "+attr(n, "class")+" ", " "+class+" ")
	}
}

func and(ms ...matcher) matcher {
	return func(n *html.Node) bool {
		for _, m := range ms {
			if !m(n) {
				return false
			}
		}
		return true
	}
}

func findAll(root *html.Node, m matcher) []*html.Node {
	var out []*html.Node
	if root == nil {
		return nil
	}
	for n := range root.Descendants() {
		if m(n) {
			out = append(out, n)
		}
	}
	return out
}

func find(root *html.Node, m matcher) *html.Node {
	if all := findAll(root, m); len(all) > 0 {
		return all[0]
	}
	return nil
}

// text is the node's text content with whitespace collapsed.
func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// unusedPort returns an address nothing listens on.
func unusedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// duplicatesOf is the fake's duplicate check: the same family name.
func (f *fakeAPI) duplicatesOf(in patient.RegisterInput) []patient.Duplicate {
	var out []patient.Duplicate
	for _, p := range f.patients {
		if in.FamilyName != "" && strings.EqualFold(p.FamilyName, in.FamilyName) && p.ID != "" {
			out = append(out, patient.Duplicate{Patient: p, Score: 0.87, NameSimilarity: 0.93,
				SameBirthDate: p.BirthDate != "" && p.BirthDate == in.BirthDate, SamePhone: p.Phone != "" && p.Phone == in.Phone})
		}
	}
	return out
}

func (f *fakeAPI) patientIndex(id string) int {
	for i, p := range f.patients {
		if p.ID == id {
			return i
		}
	}
	return -1
}

// registryRoute answers the registry's routes beyond list, register and read.
func (f *fakeAPI) registryRoute(w http.ResponseWriter, r *http.Request, route string) bool {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // api v1 patients {id} ...
	switch {
	case route == "POST /api/v1/patients/duplicates":
		var in patient.RegisterInput
		_ = json.NewDecoder(r.Body).Decode(&in)
		f.reg.dupQueries = append(f.reg.dupQueries, in)
		dups := []patient.Duplicate{}
		for _, p := range f.patients {
			if p.ID != "" && p.MergedInto == "" {
				dups = append(dups, patient.Duplicate{Patient: p, Score: 0.72, NameSimilarity: 0.5})
			}
		}
		httpx.JSON(w, http.StatusOK, struct {
			Items     []patient.Duplicate `json:"items"`
			Threshold float64             `json:"threshold"`
		}{dups, 0.6})
	case r.Method == http.MethodPut && len(parts) == 4 && parts[2] == "patients":
		i := f.patientIndex(parts[3])
		if i < 0 {
			f.problem(w, http.StatusNotFound, "not_found", "No patient has this id.", nil)
			return true
		}
		f.reg.ifMatch = append(f.reg.ifMatch, r.Header.Get("If-Match"))
		if r.Header.Get("If-Match") != httpx.ETag(f.patients[i].Version) {
			f.problem(w, http.StatusPreconditionFailed, "precondition_failed", "This patient was changed by someone else; reload and try again.", nil)
			return true
		}
		var in patient.UpdateInput
		_ = json.NewDecoder(r.Body).Decode(&in)
		f.reg.updates = append(f.reg.updates, in)
		p := &f.patients[i]
		p.FamilyName, p.GivenNames, p.Phone, p.City, p.Deceased = in.FamilyName, in.GivenNames, in.Phone, in.City, in.Deceased
		p.Version++
		httpx.JSON(w, http.StatusOK, *p)
	case len(parts) >= 5 && parts[2] == "patients" && (parts[4] == "identifiers" || parts[4] == "contacts" || parts[4] == "merge"):
		i := f.patientIndex(parts[3])
		if i < 0 {
			f.problem(w, http.StatusNotFound, "not_found", "No patient has this id.", nil)
			return true
		}
		switch {
		case r.Method == http.MethodPost && parts[4] == "identifiers":
			var in patient.Identifier
			_ = json.NewDecoder(r.Body).Decode(&in)
			if in.Value == "taken" {
				f.problem(w, http.StatusConflict, "conflict", "Another patient already has this identifier; check for a duplicate record.",
					map[string]string{"value": "belongs to another patient"})
				return true
			}
			in.ID = "i-new"
			f.reg.identAdds = append(f.reg.identAdds, in)
			f.patients[i].Identifiers = append(f.patients[i].Identifiers, in)
			httpx.JSON(w, http.StatusCreated, in)
		case r.Method == http.MethodPost && parts[4] == "contacts":
			var in patient.Contact
			_ = json.NewDecoder(r.Body).Decode(&in)
			if in.Email != "" && !strings.Contains(in.Email, "@") {
				f.problem(w, http.StatusBadRequest, "invalid", "Some fields are not valid.", map[string]string{"contact.email": "must be an e-mail address"})
				return true
			}
			in.ID = "c-new"
			f.reg.contacts = append(f.reg.contacts, in)
			f.patients[i].Contacts = append(f.patients[i].Contacts, in)
			httpx.JSON(w, http.StatusCreated, in)
		case r.Method == http.MethodDelete && len(parts) == 6:
			f.reg.removed = append(f.reg.removed, strings.TrimSuffix(parts[4], "s")+" "+parts[5])
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodPost && parts[4] == "merge":
			var in patient.MergeInput
			_ = json.NewDecoder(r.Body).Decode(&in)
			j := f.patientIndex(in.MergedID)
			switch {
			case j < 0:
				f.problem(w, http.StatusNotFound, "not_found", "No patient has this id.", nil)
			case f.patients[j].MergedInto != "":
				f.problem(w, http.StatusConflict, "conflict", "Record "+f.patients[j].MRN+" is already merged into another.", nil)
			default:
				m := patient.Merge{ID: testMergeID, SurvivorID: parts[3], MergedID: in.MergedID,
					Moved: map[string]int{"appointments.patient_id": 2, "patient_identifiers.patient_id": 1}, MergedAt: time.Now()}
				f.reg.merges[m.ID] = m
				f.patients[j].MergedInto, f.patients[j].Active = parts[3], false
				httpx.JSON(w, http.StatusOK, m)
			}
		default:
			f.problem(w, http.StatusNotFound, "not_found", "There is no such endpoint.", nil)
		}
	case r.Method == http.MethodGet && len(parts) == 5 && parts[2] == "patients" && parts[4] == "merges":
		if f.patientIndex(parts[3]) < 0 {
			f.problem(w, http.StatusNotFound, "not_found", "No patient has this id.", nil)
			return true
		}
		f.reg.mergeLists = append(f.reg.mergeLists, parts[3])
		out := []patient.Merge{}
		for _, m := range f.reg.merges {
			if m.SurvivorID == parts[3] || m.MergedID == parts[3] {
				if j := f.patientIndex(m.SurvivorID); j >= 0 {
					m.SurvivorMRN = f.patients[j].MRN
				}
				if j := f.patientIndex(m.MergedID); j >= 0 {
					m.MergedMRN = f.patients[j].MRN
				}
				out = append(out, m)
			}
		}
		httpx.JSON(w, http.StatusOK, map[string]any{"items": out})
	case r.Method == http.MethodPost && len(parts) == 5 && parts[2] == "patient-merges" && parts[4] == "undo":
		m, ok := f.reg.merges[parts[3]]
		switch {
		case !ok:
			f.problem(w, http.StatusNotFound, "not_found", "No such merge.", nil)
		case m.UndoneAt != nil:
			f.problem(w, http.StatusConflict, "conflict", "This merge was already undone.", nil)
		default:
			now := time.Now()
			m.UndoneAt = &now
			f.reg.merges[m.ID] = m
			f.reg.undone = append(f.reg.undone, m.ID)
			if j := f.patientIndex(m.MergedID); j >= 0 {
				f.patients[j].MergedInto, f.patients[j].Active = "", true
			}
			httpx.JSON(w, http.StatusOK, m)
		}
	default:
		return false
	}
	return true
}

func (f *fakeAPI) apptIndex(id string) int {
	for i, a := range f.sched.appts {
		if a.ID == id {
			return i
		}
	}
	return -1
}

// scheduleRoute answers clinics, slots, appointments and the queue.
func (f *fakeAPI) scheduleRoute(w http.ResponseWriter, r *http.Request, route string) bool {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	list := func(v any) { httpx.JSON(w, http.StatusOK, map[string]any{"items": v}) }
	switch {
	case route == "GET /api/v1/practitioners":
		list(f.sched.practitioners)
	case route == "GET /api/v1/clinics":
		list(f.sched.clinics)
	case route == "GET /api/v1/slots":
		f.sched.slotQuery = r.URL.Query()
		list(f.sched.slots)
	case route == "GET /api/v1/appointments":
		q := r.URL.Query()
		f.sched.apptQueries = append(f.sched.apptQueries, q)
		out := []appointment.Appointment{}
		for _, a := range f.sched.appts {
			if q.Get("patient_id") == "" || q.Get("patient_id") == a.PatientID {
				out = append(out, a)
			}
		}
		list(out)
	case route == "POST /api/v1/appointments":
		body, _ := io.ReadAll(r.Body)
		var in appointment.BookInput
		_ = json.Unmarshal(body, &in)
		key := r.Header.Get("Idempotency-Key")
		f.sched.keys = append(f.sched.keys, key)
		if prev, ok := f.sched.byKey[key]; ok && key != "" {
			if prev != string(body) {
				f.problem(w, http.StatusUnprocessableEntity, "unprocessable", "This Idempotency-Key was already used for a different request.", nil)
				return true
			}
			w.Header().Set("Idempotent-Replayed", "true")
			httpx.JSON(w, http.StatusCreated, f.sched.keyAppt[key])
			return true
		}
		if f.sched.taken {
			f.sched.taken = false
			// The slot goes, as it would once someone else booked it.
			f.sched.slots = f.sched.slots[1:]
			f.problem(w, http.StatusConflict, "conflict", "This time is already booked for this practitioner. Choose another slot.", nil)
			return true
		}
		f.sched.booked = append(f.sched.booked, in)
		a := appointment.Appointment{ID: testNewApptID, PatientID: in.PatientID, PractitionerID: in.PractitionerID, ClinicID: in.ClinicID,
			StartsAt: in.StartsAt, EndsAt: in.StartsAt.Add(15 * time.Minute), Status: appointment.StatusBooked, Reason: in.Reason, Version: 1}
		f.sched.byKey[key], f.sched.keyAppt[key] = string(body), a
		f.sched.appts = append(f.sched.appts, a)
		httpx.JSON(w, http.StatusCreated, a)
	case len(parts) >= 4 && parts[2] == "appointments":
		i := f.apptIndex(parts[3])
		if i < 0 {
			f.problem(w, http.StatusNotFound, "not_found", "No appointment has this id.", nil)
			return true
		}
		a := &f.sched.appts[i]
		if a.PatientID == "" {
			f.problem(w, http.StatusForbidden, "forbidden", "This patient is not under your care.", nil)
			return true
		}
		if r.Method == http.MethodGet && len(parts) == 4 {
			// As the API: the names of the list, the patient's only with
			// patient.read, and the clinic's location and department.
			out := *a
			for _, c := range f.sched.clinics {
				if c.ID == a.ClinicID {
					out.ClinicLocation, out.DepartmentID, out.DepartmentName = c.Location, c.DepartmentID, c.DepartmentName
				}
			}
			if !slices.Contains(f.perms, identity.PermPatientRead) {
				out.PatientName, out.PatientMRN = "", ""
			}
			httpx.JSON(w, http.StatusOK, out)
			return true
		}
		if r.Method != http.MethodPost || len(parts) != 5 {
			f.problem(w, http.StatusNotFound, "not_found", "There is no such endpoint.", nil)
			return true
		}
		f.sched.commands = append(f.sched.commands, parts[4]+" "+a.ID)
		next := map[string]string{"check-in": appointment.StatusCheckedIn, "no-show": appointment.StatusNoShow,
			"complete": appointment.StatusCompleted, "cancel": appointment.StatusCancelled}
		switch parts[4] {
		case "reschedule":
			var in appointment.RescheduleInput
			_ = json.NewDecoder(r.Body).Decode(&in)
			if f.sched.taken {
				f.sched.taken = false
				f.problem(w, http.StatusConflict, "conflict", "This time is already booked for this practitioner. Choose another slot.", nil)
				return true
			}
			a.StartsAt, a.EndsAt = in.StartsAt, in.StartsAt.Add(15*time.Minute)
			httpx.JSON(w, http.StatusOK, *a)
		case "cancel":
			var in appointment.CancelInput
			_ = json.NewDecoder(r.Body).Decode(&in)
			if strings.TrimSpace(in.Reason) == "" {
				f.problem(w, http.StatusBadRequest, "invalid", "Some fields are not valid.", map[string]string{"reason": "is required"})
				return true
			}
			fallthrough
		default:
			to, ok := next[parts[4]]
			if !ok {
				f.problem(w, http.StatusNotFound, "not_found", "There is no such endpoint.", nil)
				return true
			}
			allowed := map[string][]string{appointment.StatusBooked: {appointment.StatusCheckedIn, appointment.StatusCancelled, appointment.StatusNoShow},
				appointment.StatusCheckedIn: {appointment.StatusCompleted, appointment.StatusNoShow}}
			if !slices.Contains(allowed[a.Status], to) {
				f.problem(w, http.StatusConflict, "conflict", "An appointment that is "+a.Status+" cannot become "+to+".", nil)
				return true
			}
			a.Status = to
			out := *a
			if to == appointment.StatusCheckedIn {
				out.QueueTicket = "007"
				f.sched.board.Entries = append(f.sched.board.Entries, queue.Entry{ID: "e-new", DepartmentID: testDeptID, Ticket: "007",
					Status: "waiting", PatientID: a.PatientID, PatientName: a.PatientName, CheckedInAt: time.Now(), AppointmentID: a.ID})
			}
			httpx.JSON(w, http.StatusOK, out)
		}
	case len(parts) >= 5 && parts[2] == "departments" && parts[4] == "queue":
		if parts[3] != testDeptID {
			f.problem(w, http.StatusNotFound, "not_found", "No department has this id.", nil)
			return true
		}
		switch {
		case r.Method == http.MethodGet && len(parts) == 5:
			b := f.sched.board
			if !slices.Contains(f.perms, identity.PermPatientRead) {
				// As the API: tickets only without patient.read.
				b.Entries = slices.Clone(b.Entries)
				for i := range b.Entries {
					b.Entries[i].PatientID, b.Entries[i].PatientName, b.Entries[i].PatientMRN = "", "", ""
				}
			}
			httpx.JSON(w, http.StatusOK, b)
		case r.Method == http.MethodPost && len(parts) == 5:
			var in queue.WalkIn
			_ = json.NewDecoder(r.Body).Decode(&in)
			f.sched.walkIns = append(f.sched.walkIns, in.PatientID)
			e := queue.Entry{ID: "e-walk", DepartmentID: testDeptID, Ticket: "012", Status: "waiting", PatientID: in.PatientID, CheckedInAt: time.Now()}
			f.sched.board.Entries = append(f.sched.board.Entries, e)
			httpx.JSON(w, http.StatusCreated, e)
		case r.Method == http.MethodPost && len(parts) == 6 && parts[5] == "call-next":
			var in queue.CallNext
			_ = json.NewDecoder(r.Body).Decode(&in)
			f.sched.calls = append(f.sched.calls, in.CallPoint)
			for i := range f.sched.board.Entries {
				e := &f.sched.board.Entries[i]
				if e.Status == "waiting" {
					now := time.Now()
					e.Status, e.CallPoint, e.CalledAt = "called", in.CallPoint, &now
					httpx.JSON(w, http.StatusOK, *e)
					return true
				}
			}
			f.problem(w, http.StatusNotFound, "not_found", "Nobody is waiting in this queue.", nil)
		default:
			f.problem(w, http.StatusNotFound, "not_found", "There is no such endpoint.", nil)
		}
	case r.Method == http.MethodPost && len(parts) == 5 && parts[2] == "queue-entries":
		for i := range f.sched.board.Entries {
			e := &f.sched.board.Entries[i]
			if e.ID == parts[3] {
				if e.Status == "done" || e.Status == "left" {
					f.problem(w, http.StatusConflict, "conflict", "This patient has already left the queue.", nil)
					return true
				}
				e.Status = parts[4]
				f.sched.finished = append(f.sched.finished, parts[4]+" "+e.ID)
				httpx.JSON(w, http.StatusOK, *e)
				return true
			}
		}
		f.problem(w, http.StatusNotFound, "not_found", "No such queue entry.", nil)
	default:
		return false
	}
	return true
}

// newInpatientState is two wards' beds: ward 1 with every state and
// patient Okonkwo admitted to B2 two days ago; ward 2 with two free beds.
func newInpatientState() inpatientState {
	// 01:00 two days ago (UTC, the tests' time zone): day 3 of the stay at
	// any time of today (49 hours ago was day 4 in the first hour of a day).
	admitted := time.Now().UTC().Truncate(24 * time.Hour).Add(-47 * time.Hour)
	five := 5
	bed := func(id, wardID, code, room, typ, status string) fakeBed {
		return fakeBed{BoardBed: ward.BoardBed{ID: id, Code: code, RoomID: "r-" + room, RoomCode: room, Type: typ, Status: status,
			Version: 1, UpdatedAt: time.Now().Add(-2 * time.Hour)}, WardID: wardID}
	}
	return inpatientState{
		byKey:  map[string]string{},
		keyAdm: map[string]admission.Admission{},
		beds: []fakeBed{
			bed("b1", testWardID, "B10", "101", "general", "available"),
			bed("b2", testWardID, "B2", "101", "general", "occupied"),
			bed("b3", testWardID, "B1", "102", "icu", "cleaning"),
			bed("b4", testWardID, "B1", "20", "isolation", "out_of_service"),
			bed("b5", testWard2ID, "S1", "1", "general", "available"),
			bed("b6", testWard2ID, "S2", "1", "paediatric", "available"),
		},
		admissions: []admission.Admission{{ID: testAdmissionID, PatientID: testPatientID, BedID: "b2", WardID: testWardID,
			Source: "emergency", Reason: "Community-acquired pneumonia", ExpectedDays: &five, Status: "active", AdmittedAt: admitted,
			Version: 2, History: []admission.Event{{Event: "admitted", ToBedID: "b2", OccurredAt: admitted, ActorName: "Jo Smith"}}}},
		// The census of yesterday and today (the API answers for the
		// period asked; the fake's days stay these two).
		census: ward.Census{TimeZone: "UTC",
			Wards: []ward.CensusWard{
				{ID: testWardID, Code: "W1", Name: "Ward 1 – Acute Medicine", Beds: 4, Census: 1, Admissions: 6, Discharges: 5, Occupancy: 0.625,
					AverageLengthOfStay: 4.4, Days: []ward.CensusDay{{Day: censusDay(-1), Census: 2, Admissions: 1, Occupancy: 0.5},
						{Day: censusDay(0), Census: 1, Discharges: 1, Occupancy: 0.75}}},
				{ID: testWard2ID, Code: "W2", Name: "Ward 2 – Surgery", Beds: 2, Occupancy: 0},
			},
			Hospital: ward.CensusWard{Code: "ALL", Name: "Hospital", Beds: 6, Census: 1, Admissions: 6, Discharges: 5, Occupancy: 0.4167,
				AverageLengthOfStay: 4.4, Days: []ward.CensusDay{{Day: censusDay(-1), Census: 2, Admissions: 1, Occupancy: 0.3333},
					{Day: censusDay(0), Census: 1, Discharges: 1, Occupancy: 0.5}}}},
	}
}

// censusDay is today plus days, in UTC (the test web server's time zone).
func censusDay(days int) string { return time.Now().UTC().AddDate(0, 0, days).Format(isoDate) }

func (f *fakeAPI) bedIndex(id string) int {
	for i, b := range f.inpt.beds {
		if b.ID == id {
			return i
		}
	}
	return -1
}

func (f *fakeAPI) wardName(id string) string {
	for _, w := range f.wards {
		if w.ID == id {
			return w.Name
		}
	}
	return ""
}

// visible is the API's rule for names on the board and in admissions:
// patient.read and the patient in the user's care.
func (f *fakeAPI) visible(patientID string) bool {
	return slices.Contains(f.perms, identity.PermPatientRead) && !f.restricted[patientID]
}

// admissionView is an admission as the API answers it, with the names.
func (f *fakeAPI) admissionView(a admission.Admission) admission.Admission {
	if i := f.patientIndex(a.PatientID); i >= 0 {
		p := f.patients[i]
		a.PatientName, a.PatientMRN = strings.ToUpper(p.FamilyName)+", "+p.GivenNames, p.MRN
	}
	if i := f.bedIndex(a.BedID); i >= 0 {
		a.BedCode = f.inpt.beds[i].Code
	}
	a.WardName = f.wardName(a.WardID)
	a.History = slices.Clone(a.History)
	for i := range a.History {
		e := &a.History[i]
		if j := f.bedIndex(e.FromBedID); j >= 0 {
			e.FromBedCode, e.FromWardName = f.inpt.beds[j].Code, f.wardName(f.inpt.beds[j].WardID)
		}
		if j := f.bedIndex(e.ToBedID); j >= 0 {
			e.ToBedCode, e.ToWardName = f.inpt.beds[j].Code, f.wardName(f.inpt.beds[j].WardID)
		}
	}
	return a
}

// board builds the bed board as the API does: counts of every bed, beds
// filtered by state, the patient only when visible.
func (f *fakeAPI) board(q url.Values) (ward.Board, bool) {
	wardID, status := q.Get("ward_id"), q.Get("status")
	b := ward.Board{At: time.Now(), Wards: []ward.BoardWard{}}
	found := wardID == ""
	listed := 0
	for _, w := range f.wards {
		if wardID != "" && w.ID != wardID {
			continue
		}
		found = true
		bw := ward.BoardWard{ID: w.ID, Code: w.Code, Name: w.Name, Beds: []ward.BoardBed{}}
		for _, fb := range f.inpt.beds {
			if fb.WardID != w.ID {
				continue
			}
			for _, c := range []*ward.BedCounts{&bw.Counts, &b.Totals} {
				c.Total++
				switch fb.Status {
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
			if status != "" && fb.Status != status {
				continue
			}
			bed := fb.BoardBed
			for _, a := range f.inpt.admissions {
				if a.BedID != bed.ID || a.Status != "active" {
					continue
				}
				at := a.AdmittedAt
				bed.AdmissionID, bed.AdmittedAt, bed.ExpectedDays = a.ID, &at, a.ExpectedDays
				if i := f.patientIndex(a.PatientID); i >= 0 && f.visible(a.PatientID) {
					p := f.patients[i]
					bed.Patient = &ward.BoardPatient{ID: p.ID, Name: strings.ToUpper(p.FamilyName) + ", " + p.GivenNames, MRN: p.MRN}
				}
			}
			bw.Beds = append(bw.Beds, bed)
			listed++
		}
		b.Wards = append(b.Wards, bw)
	}
	if max, err := strconv.Atoi(q.Get("max_beds")); err == nil && listed > max {
		b.BedsOmitted = true
		for i := range b.Wards {
			b.Wards[i].Beds = []ward.BoardBed{}
		}
	}
	return b, found
}

// inpatientRoute answers the bed board, bed actions, admissions and census.
func (f *fakeAPI) inpatientRoute(w http.ResponseWriter, r *http.Request, route string) bool {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // api v1 ...
	st := &f.inpt
	admIndex := func(id string) int {
		for i, a := range st.admissions {
			if a.ID == id {
				return i
			}
		}
		return -1
	}
	// replay answers a repeated Idempotency-Key as the API does.
	replay := func(body []byte) bool {
		key := r.Header.Get("Idempotency-Key")
		st.keys = append(st.keys, key)
		if prev, ok := st.byKey[key]; ok && key != "" {
			if prev != r.URL.Path+string(body) {
				f.problem(w, http.StatusUnprocessableEntity, "unprocessable", "This Idempotency-Key was already used for a different request.", nil)
				return true
			}
			w.Header().Set("Idempotent-Replayed", "true")
			httpx.JSON(w, http.StatusOK, st.keyAdm[key])
			return true
		}
		return false
	}
	remember := func(body []byte, a admission.Admission) {
		if key := r.Header.Get("Idempotency-Key"); key != "" {
			st.byKey[key], st.keyAdm[key] = r.URL.Path+string(body), a
		}
	}
	switch {
	case route == "GET /api/v1/bed-board":
		st.boardReads = append(st.boardReads, r.URL.Query())
		if !slices.Contains(f.perms, identity.PermBedRead) {
			f.problem(w, http.StatusForbidden, "forbidden", "You may not see beds.", nil)
			return true
		}
		b, ok := f.board(r.URL.Query())
		if !ok {
			f.problem(w, http.StatusNotFound, "not_found", "No ward has this id.", nil)
			return true
		}
		httpx.JSON(w, http.StatusOK, b)
	case r.Method == http.MethodPost && len(parts) == 5 && parts[2] == "beds":
		i := f.bedIndex(parts[3])
		if i < 0 {
			f.problem(w, http.StatusNotFound, "not_found", "No bed has this id.", nil)
			return true
		}
		moves := map[string][2]string{"clean": {"cleaning", "available"}, "out-of-service": {"available", "out_of_service"},
			"in-service": {"out_of_service", "available"}}
		m, ok := moves[parts[4]]
		if !ok {
			f.problem(w, http.StatusNotFound, "not_found", "No such bed action.", nil)
			return true
		}
		b := &st.beds[i]
		if b.Status != m[0] {
			f.problem(w, http.StatusConflict, "conflict", "This bed is "+strings.ReplaceAll(b.Status, "_", " ")+", not "+
				strings.ReplaceAll(m[0], "_", " ")+".", nil)
			return true
		}
		st.bedActions = append(st.bedActions, parts[4]+" "+b.ID)
		b.Status = m[1]
		httpx.JSON(w, http.StatusOK, ward.Bed{ID: b.ID, Code: b.Code, RoomCode: b.RoomCode, Type: b.Type, Status: b.Status})
	case route == "POST /api/v1/admissions":
		body, _ := io.ReadAll(r.Body)
		if replay(body) {
			return true
		}
		var in admission.AdmitInput
		_ = json.Unmarshal(body, &in)
		errs := map[string]string{}
		if !slices.Contains(admission.Sources, in.Source) {
			errs["source"] = "must be appointment, emergency or direct"
		}
		if strings.TrimSpace(in.Reason) == "" {
			errs["reason"] = "is required (at most 500 characters)"
		}
		if in.Source == "appointment" && in.AppointmentID == "" {
			errs["appointment_id"] = "is required for an admission from an appointment"
		}
		if len(errs) > 0 {
			f.problem(w, http.StatusBadRequest, "invalid", "Some fields are not valid.", errs)
			return true
		}
		i := f.bedIndex(in.BedID)
		if i < 0 || f.patientIndex(in.PatientID) < 0 {
			f.problem(w, http.StatusNotFound, "not_found", "No bed or patient has this id.", nil)
			return true
		}
		if st.takeNext {
			st.takeNext = false
			st.beds[i].Status = "occupied"
		}
		for _, a := range st.admissions {
			if a.PatientID == in.PatientID && a.Status == "active" {
				f.problem(w, http.StatusConflict, "conflict", "This patient is already admitted. Transfer or discharge the current admission instead.", nil)
				return true
			}
		}
		if st.beds[i].Status != "available" {
			f.problem(w, http.StatusConflict, "conflict", "This bed is not available (occupied, reserved, being cleaned or out of service). Choose another bed.", nil)
			return true
		}
		st.admits = append(st.admits, in)
		st.beds[i].Status = "occupied"
		a := admission.Admission{ID: testNewAdmissionID, PatientID: in.PatientID, BedID: in.BedID, BedCode: st.beds[i].Code,
			WardID: st.beds[i].WardID, Source: in.Source, AppointmentID: in.AppointmentID, Reason: in.Reason, ExpectedDays: in.ExpectedDays,
			Status: "active", AdmittedAt: time.Now(), Version: 1,
			History: []admission.Event{{Event: "admitted", ToBedID: in.BedID, OccurredAt: time.Now(), ActorName: "Nia Nurse"}}}
		st.admissions = append(st.admissions, a)
		remember(body, a)
		httpx.JSON(w, http.StatusCreated, a)
	case r.Method == http.MethodGet && len(parts) == 5 && parts[2] == "patients" && parts[4] == "admissions":
		if f.restricted[parts[3]] {
			f.problem(w, http.StatusForbidden, "forbidden", "This patient is not under your care.", nil)
			return true
		}
		out := []admission.Admission{}
		for i := len(st.admissions) - 1; i >= 0; i-- {
			if a := st.admissions[i]; a.PatientID == parts[3] {
				a = f.admissionView(a)
				a.PatientName, a.PatientMRN, a.History = "", "", nil
				out = append(out, a)
			}
		}
		httpx.JSON(w, http.StatusOK, map[string]any{"items": out})
	case len(parts) >= 4 && parts[2] == "admissions":
		i := admIndex(parts[3])
		if i < 0 {
			f.problem(w, http.StatusNotFound, "not_found", "No admission has this id.", nil)
			return true
		}
		a := &st.admissions[i]
		if f.restricted[a.PatientID] {
			f.problem(w, http.StatusForbidden, "forbidden", "This patient is not under your care.", nil)
			return true
		}
		if r.Method == http.MethodGet && len(parts) == 4 {
			httpx.JSON(w, http.StatusOK, f.admissionView(*a))
			return true
		}
		if r.Method != http.MethodPost || len(parts) != 5 {
			f.problem(w, http.StatusNotFound, "not_found", "There is no such endpoint.", nil)
			return true
		}
		body, _ := io.ReadAll(r.Body)
		st.commands = append(st.commands, parts[4]+" "+a.ID+" if-match="+r.Header.Get("If-Match"))
		if replay(body) {
			return true
		}
		if m := r.Header.Get("If-Match"); m != "" && m != httpx.ETag(a.Version) {
			f.problem(w, http.StatusPreconditionFailed, "precondition_failed", "This admission was changed by someone else; reload it.", nil)
			return true
		}
		if a.Status != "active" {
			f.problem(w, http.StatusConflict, "conflict", "This patient is not admitted (the admission is "+a.Status+").", nil)
			return true
		}
		old := f.bedIndex(a.BedID)
		switch parts[4] {
		case "transfer":
			var in admission.TransferInput
			_ = json.Unmarshal(body, &in)
			j := f.bedIndex(in.BedID)
			if j < 0 {
				f.problem(w, http.StatusNotFound, "not_found", "No bed has this id.", nil)
				return true
			}
			if st.takeNext {
				st.takeNext = false
				st.beds[j].Status = "occupied"
			}
			if st.beds[j].Status != "available" {
				f.problem(w, http.StatusConflict, "conflict", "This bed is not available (occupied, reserved, being cleaned or out of service). Choose another bed.", nil)
				return true
			}
			st.beds[old].Status, st.beds[j].Status = "cleaning", "occupied"
			a.History = append(a.History, admission.Event{Event: "transferred", FromBedID: a.BedID, ToBedID: in.BedID, OccurredAt: time.Now()})
			a.BedID, a.WardID = in.BedID, st.beds[j].WardID
		case "discharge":
			var in admission.DischargeInput
			_ = json.Unmarshal(body, &in)
			if !slices.Contains(admission.Dispositions, in.Disposition) {
				f.problem(w, http.StatusBadRequest, "invalid", "Some fields are not valid.", map[string]string{"disposition": "must be home, transfer_out, deceased or against_advice"})
				return true
			}
			now := time.Now()
			st.beds[old].Status = "cleaning"
			a.Status, a.EndedAt, a.Disposition, a.DischargeSummary = "discharged", &now, in.Disposition, in.Summary
			a.History = append(a.History, admission.Event{Event: "discharged", FromBedID: a.BedID, OccurredAt: now})
		case "cancel":
			var in admission.CancelInput
			_ = json.Unmarshal(body, &in)
			if strings.TrimSpace(in.Reason) == "" {
				f.problem(w, http.StatusBadRequest, "invalid", "Some fields are not valid.", map[string]string{"reason": "is required (at most 500 characters)"})
				return true
			}
			now := time.Now()
			st.beds[old].Status = "available"
			a.Status, a.EndedAt, a.CancelReason = "cancelled", &now, in.Reason
			a.History = append(a.History, admission.Event{Event: "cancelled", FromBedID: a.BedID, OccurredAt: now})
		default:
			f.problem(w, http.StatusNotFound, "not_found", "There is no such endpoint.", nil)
			return true
		}
		a.Version++
		out := *a
		out.History = nil
		remember(body, out)
		httpx.JSON(w, http.StatusOK, out)
	case route == "GET /api/v1/census":
		st.censusQ = r.URL.Query()
		c := st.census
		c.From, c.To = cmp.Or(r.URL.Query().Get("from"), censusDay(-29)), cmp.Or(r.URL.Query().Get("to"), censusDay(0))
		if id := r.URL.Query().Get("ward_id"); id != "" {
			c.Wards = slices.DeleteFunc(slices.Clone(c.Wards), func(w ward.CensusWard) bool { return w.ID != id })
		}
		if r.URL.Query().Get("from") > r.URL.Query().Get("to") {
			f.problem(w, http.StatusBadRequest, "invalid", "Some fields are not valid.", map[string]string{"to": "must not be before from"})
			return true
		}
		httpx.JSON(w, http.StatusOK, c)
	case route == "GET /api/v1/census.csv":
		st.csvQ = r.URL.Query()
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		_, _ = io.WriteString(w, "day,ward_code,ward_name,beds,admissions,discharges,census,occupied_bed_days,occupancy\n2030-03-04,W1,Ward 1,4,0,1,1,0.75,0.7500\n")
	default:
		return false
	}
	return true
}
