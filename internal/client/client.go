// Package client is the typed Go client of the REST API. The web frontend,
// the tests and the load generator use it, so the frontend knows the
// backend only through its HTTP API, exactly as a separate pod would.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/access"
	"github.com/hospital-erp/hospital-erp/internal/admission"
	"github.com/hospital-erp/hospital-erp/internal/appointment"
	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
	"github.com/hospital-erp/hospital-erp/internal/queue"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

// Client calls the API at a base URL, optionally as a signed-in user.
type Client struct {
	base    string
	http    *http.Client
	token   string
	discard bool // read answers without decoding them
}

// New returns a client for the API at baseURL (without /api/v1). A nil
// hc gets a client with a 30-second timeout.
func New(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: baseURL, http: hc}
}

// WithToken returns a copy of c that sends the access token.
func (c *Client) WithToken(accessToken string) *Client {
	cp := *c
	cp.token = accessToken
	return &cp
}

// Discarding returns a copy of c that reads successful answers without
// decoding them: its methods return zero values and only their errors
// count. For load generation, where decoding would cost the generator
// (often on the core of what it measures) more CPU than it tells.
func (c *Client) Discarding() *Client {
	cp := *c
	cp.discard = true
	return &cp
}

// Error is a problem+json answer from the API.
type Error struct {
	httpx.Problem
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("api: %d %s: %s", e.Status, e.Code, e.Detail)
}

// StatusOf returns the HTTP status of an API error, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

type requestIDKey struct{}

// WithRequestID makes requests made with ctx carry X-Request-ID id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

type idempotencyKey struct{}

// NewKey returns a new Idempotency-Key: a time-ordered UUID (version 7).
// Any unique string up to 200 bytes will do, but keys made one after
// another land next to each other in the server's index of keys, where
// random ones each touch a page of their own (see migration 00019).
func NewKey() string { return uuid.Must(uuid.NewV7()).String() }

// WithIdempotencyKey makes the commands sent with ctx carry
// Idempotency-Key key, so that sending one again (after a time-out or a
// dropped connection) returns the first answer instead of acting twice.
// Use a new key (NewKey) for each new command and the same key for its
// retries.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKey{}, key)
}

type forwardedKey struct{}

type forwarded struct{ ip, userAgent string }

// WithForwardedFor makes requests made with ctx say on whose behalf they are
// sent: X-Forwarded-For carries the end user's IP (the backend believes it
// only from TRUSTED_PROXIES, which must include the frontend pods) and
// User-Agent the user's browser. Rate limits and session records then see the
// user, not the frontend pod.
func WithForwardedFor(ctx context.Context, ip, userAgent string) context.Context {
	return context.WithValue(ctx, forwardedKey{}, forwarded{ip: ip, userAgent: userAgent})
}

// Do sends one request. in, when not nil, is sent as JSON; out, when not
// nil, receives the JSON answer. Non-2xx answers return *Error.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) (*http.Response, error) {
	return c.do(ctx, method, path, in, out, nil)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any, header http.Header) (*http.Response, error) {
	req, err := c.newRequest(ctx, method, path, in, header)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		e := &Error{}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &e.Problem) != nil || e.Problem.Status == 0 {
			e.Problem = httpx.Problem{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode),
				Title: http.StatusText(resp.StatusCode), Detail: string(bytes.TrimSpace(b))}
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return resp, e
	}
	if out != nil && !c.discard {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return resp, nil
}

// newRequest builds a request with the JSON body in, the token, the
// request id and the forwarded client of ctx.
func (c *Client) newRequest(ctx context.Context, method, path string, in any, header http.Header) (*http.Request, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if id, _ := ctx.Value(requestIDKey{}).(string); id != "" {
		req.Header.Set("X-Request-ID", id)
	}
	if key, _ := ctx.Value(idempotencyKey{}).(string); key != "" && method != http.MethodGet && req.Header.Get("Idempotency-Key") == "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if f, ok := ctx.Value(forwardedKey{}).(forwarded); ok {
		if f.ip != "" {
			req.Header.Set("X-Forwarded-For", f.ip)
		}
		if f.userAgent != "" {
			req.Header.Set("User-Agent", f.userAgent)
		}
	}
	return req, nil
}

// Login signs in.
func (c *Client) Login(ctx context.Context, username, password string) (identity.LoginResponse, error) {
	var out identity.LoginResponse
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/auth/login", identity.LoginRequest{Username: username, Password: password}, &out)
	return out, err
}

// Refresh exchanges a refresh token for new tokens.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (identity.LoginResponse, error) {
	var out identity.LoginResponse
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/auth/refresh", identity.RefreshRequest{RefreshToken: refreshToken}, &out)
	return out, err
}

// Logout ends the session of the client's token.
func (c *Client) Logout(ctx context.Context) error {
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/auth/logout", nil, nil)
	return err
}

// Me returns the signed-in user.
func (c *Client) Me(ctx context.Context) (identity.Me, error) {
	var out identity.Me
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/auth/me", nil, &out)
	return out, err
}

// WSTicket returns a ticket for opening the event WebSocket.
func (c *Client) WSTicket(ctx context.Context) (identity.Ticket, error) {
	var out identity.Ticket
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/auth/ws-ticket", nil, &out)
	return out, err
}

// PatientQuery selects a page of patients.
type PatientQuery struct {
	Q      string
	Sort   string
	Cursor string
	Limit  int
}

// Patients lists patients.
func (c *Client) Patients(ctx context.Context, q PatientQuery) (httpx.Page[patient.Patient], error) {
	v := url.Values{}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if q.Sort != "" {
		v.Set("sort", q.Sort)
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out httpx.Page[patient.Patient]
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/patients?"+v.Encode(), nil, &out)
	return out, err
}

// Patient reads one patient.
func (c *Client) Patient(ctx context.Context, id string) (patient.Patient, error) {
	var out patient.Patient
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/patients/"+url.PathEscape(id), nil, &out)
	return out, err
}

// RegisterPatient registers a patient.
func (c *Client) RegisterPatient(ctx context.Context, in patient.RegisterInput) (patient.Patient, error) {
	var out patient.Patient
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/patients", in, &out)
	return out, err
}

// UpdatePatient replaces a patient's demographics; version is the ETag
// (version) read before the change.
func (c *Client) UpdatePatient(ctx context.Context, id string, version int, in patient.UpdateInput) (patient.Patient, error) {
	var out patient.Patient
	_, err := c.do(ctx, http.MethodPut, "/api/v1/patients/"+url.PathEscape(id), in, &out,
		http.Header{"If-Match": {`"` + strconv.Itoa(version) + `"`}})
	return out, err
}

// Departments lists departments.
func (c *Client) Departments(ctx context.Context) ([]ward.Department, error) {
	var out ward.List[ward.Department]
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/departments", nil, &out)
	return out.Items, err
}

// Wards lists wards with bed counts.
func (c *Client) Wards(ctx context.Context) ([]ward.Ward, error) {
	var out ward.List[ward.Ward]
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/wards", nil, &out)
	return out.Items, err
}

// Ward returns one ward with its beds.
func (c *Client) Ward(ctx context.Context, id string) (ward.WardDetail, error) {
	var out ward.WardDetail
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/wards/"+url.PathEscape(id), nil, &out)
	return out, err
}

// ChangePassword changes the signed-in user's password.
func (c *Client) ChangePassword(ctx context.Context, in identity.PasswordChange) error {
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/auth/password", in, nil)
	return err
}

// EnrolMFA starts MFA enrolment and returns the secret and QR code.
func (c *Client) EnrolMFA(ctx context.Context) (identity.MFAEnrolment, error) {
	var out identity.MFAEnrolment
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/auth/mfa/enrol", nil, &out)
	return out, err
}

// ConfirmMFA turns MFA on with a current code and returns recovery codes.
func (c *Client) ConfirmMFA(ctx context.Context, code string) (identity.RecoveryCodes, error) {
	var out identity.RecoveryCodes
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/auth/mfa/confirm", identity.MFAConfirm{Code: code}, &out)
	return out, err
}

// DisableMFA turns MFA off (roles that must use MFA are refused).
func (c *Client) DisableMFA(ctx context.Context, password string) error {
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/auth/mfa/disable", identity.MFADisable{Password: password}, nil)
	return err
}

// LoginMFA signs in with a one-time code.
func (c *Client) LoginMFA(ctx context.Context, username, password, otp string) (identity.LoginResponse, error) {
	var out identity.LoginResponse
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/auth/login", identity.LoginRequest{Username: username, Password: password, OTP: otp}, &out)
	return out, err
}

// Roles lists roles and their permissions.
func (c *Client) Roles(ctx context.Context) ([]identity.RoleInfo, error) {
	var out struct {
		Items []identity.RoleInfo `json:"items"`
	}
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/roles", nil, &out)
	return out.Items, err
}

// UserQuery selects a page of users.
type UserQuery struct {
	Q      string
	Role   string
	Active *bool
	Cursor string
	Limit  int
}

// Users lists users.
func (c *Client) Users(ctx context.Context, q UserQuery) (httpx.Page[identity.User], error) {
	v := url.Values{}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if q.Role != "" {
		v.Set("role", q.Role)
	}
	if q.Active != nil {
		v.Set("active", strconv.FormatBool(*q.Active))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out httpx.Page[identity.User]
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/users?"+v.Encode(), nil, &out)
	return out, err
}

// User reads one user.
func (c *Client) User(ctx context.Context, id string) (identity.User, error) {
	var out identity.User
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/users/"+url.PathEscape(id), nil, &out)
	return out, err
}

// CreateUser adds a user.
func (c *Client) CreateUser(ctx context.Context, in identity.NewUser) (identity.User, error) {
	var out identity.User
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/users", in, &out)
	return out, err
}

// UpdateUser changes a user's name, role, department and wards; version is
// the user's current version (ETag).
func (c *Client) UpdateUser(ctx context.Context, id string, version int, in identity.UserUpdate) (identity.User, error) {
	var out identity.User
	_, err := c.do(ctx, http.MethodPut, "/api/v1/users/"+url.PathEscape(id), in, &out,
		http.Header{"If-Match": {`"` + strconv.Itoa(version) + `"`}})
	return out, err
}

// SetUserActive disables or enables a user.
func (c *Client) SetUserActive(ctx context.Context, id string, active bool) (identity.User, error) {
	action := "disable"
	if active {
		action = "enable"
	}
	var out identity.User
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(id)+"/"+action, nil, &out)
	return out, err
}

// ResetUserPassword sets a user's password.
func (c *Client) ResetUserPassword(ctx context.Context, id, password string) error {
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(id)+"/password", identity.PasswordReset{NewPassword: password}, nil)
	return err
}

// RevokeUserSessions ends every session of a user.
func (c *Client) RevokeUserSessions(ctx context.Context, id string) (int, error) {
	var out identity.RevokedSessions
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(id)+"/sessions/revoke", nil, &out)
	return out.Revoked, err
}

// ResetUserMFA turns a user's MFA off so they enrol again.
func (c *Client) ResetUserMFA(ctx context.Context, id string) error {
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(id)+"/mfa/reset", nil, nil)
	return err
}

// RequestEmergencyAccess opens a patient outside the caller's scope.
func (c *Client) RequestEmergencyAccess(ctx context.Context, patientID, reason string) (access.Grant, error) {
	var out access.Grant
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/patients/"+url.PathEscape(patientID)+"/emergency-access", access.GrantRequest{Reason: reason}, &out)
	return out, err
}

// EmergencyGrants lists emergency access grants for review.
func (c *Client) EmergencyGrants(ctx context.Context, unreviewed *bool, limit int) ([]access.Grant, error) {
	v := url.Values{}
	if unreviewed != nil {
		v.Set("unreviewed", strconv.FormatBool(*unreviewed))
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Items []access.Grant `json:"items"`
	}
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/emergency-access?"+v.Encode(), nil, &out)
	return out.Items, err
}

// ReviewEmergencyGrant marks a grant reviewed.
func (c *Client) ReviewEmergencyGrant(ctx context.Context, id, note string) error {
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/emergency-access/"+url.PathEscape(id)+"/review", access.ReviewRequest{Note: note}, nil)
	return err
}

// AuditQuery selects audit rows.
type AuditQuery struct {
	From, To          time.Time
	UserID, PatientID string
	Action, Outcome   string
	Sort              string
	Limit, Offset     int
}

func (q AuditQuery) values() url.Values {
	v := url.Values{}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339))
	}
	for k, s := range map[string]string{"user_id": q.UserID, "patient_id": q.PatientID, "action": q.Action,
		"outcome": q.Outcome, "sort": q.Sort} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Offset > 0 {
		v.Set("offset", strconv.Itoa(q.Offset))
	}
	return v
}

// AuditEvents searches the audit trail.
func (c *Client) AuditEvents(ctx context.Context, q AuditQuery) (audit.Page, error) {
	var out audit.Page
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/audit/events?"+q.values().Encode(), nil, &out)
	return out, err
}

// AuditCSV returns the audit export as CSV bytes.
func (c *Client) AuditCSV(ctx context.Context, q AuditQuery) ([]byte, error) {
	return c.csv(ctx, "/api/v1/audit/events.csv?"+q.values().Encode())
}

// AuditVerify walks the audit chain.
func (c *Client) AuditVerify(ctx context.Context) (audit.Report, error) {
	var out audit.Report
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/audit/verify", nil, &out)
	return out, err
}

// PatientSearch selects patients with the registry's filters.
type PatientSearch struct {
	Q, BirthDate, MRN, Identifier, Phone string
	Sort, Cursor                         string
	Limit                                int
}

// SearchPatients searches the registry.
func (c *Client) SearchPatients(ctx context.Context, s PatientSearch) (httpx.Page[patient.Patient], error) {
	v := url.Values{}
	for k, val := range map[string]string{"q": s.Q, "birth_date": s.BirthDate, "mrn": s.MRN, "identifier": s.Identifier,
		"phone": s.Phone, "sort": s.Sort, "cursor": s.Cursor} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if s.Limit > 0 {
		v.Set("limit", strconv.Itoa(s.Limit))
	}
	var out httpx.Page[patient.Patient]
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/patients?"+v.Encode(), nil, &out)
	return out, err
}

// PatientDuplicates returns likely duplicates of a registration.
func (c *Client) PatientDuplicates(ctx context.Context, in patient.RegisterInput) ([]patient.Duplicate, error) {
	var out struct {
		Items []patient.Duplicate `json:"items"`
	}
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/patients/duplicates", in, &out)
	return out.Items, err
}

// Duplicates reads the likely duplicates from a refused registration.
func Duplicates(err error) []patient.Duplicate {
	var e *Error
	if !errors.As(err, &e) || e.Extensions["duplicates"] == nil {
		return nil
	}
	var out []patient.Duplicate
	_ = json.Unmarshal(e.Extensions["duplicates"], &out)
	return out
}

// AddIdentifier adds an identifier to a patient.
func (c *Client) AddIdentifier(ctx context.Context, patientID string, in patient.Identifier) (patient.Identifier, error) {
	var out patient.Identifier
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/patients/"+url.PathEscape(patientID)+"/identifiers", in, &out)
	return out, err
}

// RemoveIdentifier deletes an identifier of a patient.
func (c *Client) RemoveIdentifier(ctx context.Context, patientID, identifierID string) error {
	_, err := c.Do(ctx, http.MethodDelete, "/api/v1/patients/"+url.PathEscape(patientID)+"/identifiers/"+url.PathEscape(identifierID), nil, nil)
	return err
}

// AddContact adds a contact to a patient.
func (c *Client) AddContact(ctx context.Context, patientID string, in patient.Contact) (patient.Contact, error) {
	var out patient.Contact
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/patients/"+url.PathEscape(patientID)+"/contacts", in, &out)
	return out, err
}

// RemoveContact deletes a contact of a patient.
func (c *Client) RemoveContact(ctx context.Context, patientID, contactID string) error {
	_, err := c.Do(ctx, http.MethodDelete, "/api/v1/patients/"+url.PathEscape(patientID)+"/contacts/"+url.PathEscape(contactID), nil, nil)
	return err
}

// MergePatients merges mergedID into survivorID.
func (c *Client) MergePatients(ctx context.Context, survivorID, mergedID string) (patient.Merge, error) {
	var out patient.Merge
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/patients/"+url.PathEscape(survivorID)+"/merge", patient.MergeInput{MergedID: mergedID}, &out)
	return out, err
}

// PatientMerges lists the merges a patient took part in (as survivor or
// merged record), newest first, undone ones included.
func (c *Client) PatientMerges(ctx context.Context, patientID string) ([]patient.Merge, error) {
	var out struct {
		Items []patient.Merge `json:"items"`
	}
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/patients/"+url.PathEscape(patientID)+"/merges", nil, &out)
	return out.Items, err
}

// UndoMerge undoes a merge.
func (c *Client) UndoMerge(ctx context.Context, mergeID string) (patient.Merge, error) {
	var out patient.Merge
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/patient-merges/"+url.PathEscape(mergeID)+"/undo", nil, &out)
	return out, err
}

// Practitioners lists practitioners (of a department when not empty).
func (c *Client) Practitioners(ctx context.Context, departmentID string) ([]appointment.Practitioner, error) {
	var out struct {
		Items []appointment.Practitioner `json:"items"`
	}
	q := ""
	if departmentID != "" {
		q = "?department_id=" + url.QueryEscape(departmentID)
	}
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/practitioners"+q, nil, &out)
	return out.Items, err
}

// CreatePractitioner adds a practitioner.
func (c *Client) CreatePractitioner(ctx context.Context, in appointment.PractitionerInput) (appointment.Practitioner, error) {
	var out appointment.Practitioner
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/practitioners", in, &out)
	return out, err
}

// AvailabilityRules lists a practitioner's weekly availability.
func (c *Client) AvailabilityRules(ctx context.Context, practitionerID string) ([]appointment.Rule, error) {
	var out struct {
		Items []appointment.Rule `json:"items"`
	}
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/practitioners/"+url.PathEscape(practitionerID)+"/availability", nil, &out)
	return out.Items, err
}

// AddAvailabilityRule adds weekly availability.
func (c *Client) AddAvailabilityRule(ctx context.Context, practitionerID string, in appointment.Rule) (appointment.Rule, error) {
	var out appointment.Rule
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/practitioners/"+url.PathEscape(practitionerID)+"/availability", in, &out)
	return out, err
}

// AddAvailabilityException adds leave or a holiday.
func (c *Client) AddAvailabilityException(ctx context.Context, in appointment.Exception) (appointment.Exception, error) {
	var out appointment.Exception
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/availability-exceptions", in, &out)
	return out, err
}

// Clinics lists clinics.
func (c *Client) Clinics(ctx context.Context) ([]appointment.Clinic, error) {
	var out struct {
		Items []appointment.Clinic `json:"items"`
	}
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/clinics", nil, &out)
	return out.Items, err
}

// CreateClinic adds a clinic.
func (c *Client) CreateClinic(ctx context.Context, in appointment.ClinicInput) (appointment.Clinic, error) {
	var out appointment.Clinic
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/clinics", in, &out)
	return out, err
}

// Slots lists free slots in [from, to).
func (c *Client) Slots(ctx context.Context, practitionerID, clinicID string, from, to time.Time) ([]appointment.Slot, error) {
	v := url.Values{"from": {from.UTC().Format(time.RFC3339)}, "to": {to.UTC().Format(time.RFC3339)}}
	if practitionerID != "" {
		v.Set("practitioner_id", practitionerID)
	}
	if clinicID != "" {
		v.Set("clinic_id", clinicID)
	}
	var out struct {
		Items []appointment.Slot `json:"items"`
	}
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/slots?"+v.Encode(), nil, &out)
	return out.Items, err
}

// AppointmentQuery selects a calendar.
type AppointmentQuery struct {
	From, To                                    time.Time
	PractitionerID, ClinicID, PatientID, Status string
}

// Appointments lists appointments.
func (c *Client) Appointments(ctx context.Context, q AppointmentQuery) ([]appointment.Appointment, error) {
	v := url.Values{"from": {q.From.UTC().Format(time.RFC3339)}, "to": {q.To.UTC().Format(time.RFC3339)}}
	for k, val := range map[string]string{"practitioner_id": q.PractitionerID, "clinic_id": q.ClinicID,
		"patient_id": q.PatientID, "status": q.Status} {
		if val != "" {
			v.Set(k, val)
		}
	}
	var out struct {
		Items []appointment.Appointment `json:"items"`
	}
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/appointments?"+v.Encode(), nil, &out)
	return out.Items, err
}

// Appointment reads one appointment.
func (c *Client) Appointment(ctx context.Context, id string) (appointment.Appointment, error) {
	var out appointment.Appointment
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/appointments/"+url.PathEscape(id), nil, &out)
	return out, err
}

// Book books an appointment. A non-empty key is sent as Idempotency-Key.
func (c *Client) Book(ctx context.Context, in appointment.BookInput, key string) (appointment.Appointment, error) {
	var out appointment.Appointment
	var h http.Header
	if key != "" {
		h = http.Header{"Idempotency-Key": {key}}
	}
	_, err := c.do(ctx, http.MethodPost, "/api/v1/appointments", in, &out, h)
	return out, err
}

// Reschedule moves an appointment.
func (c *Client) Reschedule(ctx context.Context, id string, in appointment.RescheduleInput) (appointment.Appointment, error) {
	var out appointment.Appointment
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/appointments/"+url.PathEscape(id)+"/reschedule", in, &out)
	return out, err
}

// CancelAppointment cancels an appointment with a reason.
func (c *Client) CancelAppointment(ctx context.Context, id, reason string) (appointment.Appointment, error) {
	var out appointment.Appointment
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/appointments/"+url.PathEscape(id)+"/cancel", appointment.CancelInput{Reason: reason}, &out)
	return out, err
}

// AppointmentCommand runs check-in, no-show or complete.
func (c *Client) AppointmentCommand(ctx context.Context, id, command string) (appointment.Appointment, error) {
	var out appointment.Appointment
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/appointments/"+url.PathEscape(id)+"/"+command, nil, &out)
	return out, err
}

// QueueBoard returns a department's queue.
func (c *Client) QueueBoard(ctx context.Context, departmentID string) (queue.Board, error) {
	var out queue.Board
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/departments/"+url.PathEscape(departmentID)+"/queue", nil, &out)
	return out, err
}

// QueueWalkIn checks a patient into a department's queue.
func (c *Client) QueueWalkIn(ctx context.Context, departmentID, patientID string) (queue.Entry, error) {
	var out queue.Entry
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/departments/"+url.PathEscape(departmentID)+"/queue", queue.WalkIn{PatientID: patientID}, &out)
	return out, err
}

// QueueCallNext calls the next patient to callPoint.
func (c *Client) QueueCallNext(ctx context.Context, departmentID, callPoint string) (queue.Entry, error) {
	var out queue.Entry
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/departments/"+url.PathEscape(departmentID)+"/queue/call-next", queue.CallNext{CallPoint: callPoint}, &out)
	return out, err
}

// QueueFinish marks an entry done or left.
func (c *Client) QueueFinish(ctx context.Context, entryID, status string) (queue.Entry, error) {
	var out queue.Entry
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/queue-entries/"+url.PathEscape(entryID)+"/"+status, nil, &out)
	return out, err
}

// AppointmentsCSV returns a calendar as CSV bytes.
func (c *Client) AppointmentsCSV(ctx context.Context, q AppointmentQuery) ([]byte, error) {
	v := url.Values{"from": {q.From.UTC().Format(time.RFC3339)}, "to": {q.To.UTC().Format(time.RFC3339)}}
	for k, val := range map[string]string{"practitioner_id": q.PractitionerID, "clinic_id": q.ClinicID,
		"patient_id": q.PatientID, "status": q.Status} {
		if val != "" {
			v.Set(k, val)
		}
	}
	return c.csv(ctx, "/api/v1/appointments.csv?"+v.Encode())
}

func (c *Client) csv(ctx context.Context, path string) ([]byte, error) {
	req, err := c.newRequest(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != http.StatusOK {
		e := &Error{}
		_ = json.Unmarshal(b, &e.Problem)
		if e.Status == 0 {
			e.Status = resp.StatusCode
		}
		return nil, e
	}
	return b, err
}

// BoardQuery chooses the bed board's beds; every field may be empty.
type BoardQuery struct {
	WardID string
	Status string // only beds in this state
	// MaxBeds lists the beds only when at most this many would be listed;
	// otherwise the board has the counts only (BedsOmitted). 0: no limit.
	MaxBeds int
}

// BedBoard returns the bed board.
func (c *Client) BedBoard(ctx context.Context, q BoardQuery) (ward.Board, error) {
	v := url.Values{}
	if q.WardID != "" {
		v.Set("ward_id", q.WardID)
	}
	if q.Status != "" {
		v.Set("status", q.Status)
	}
	if q.MaxBeds > 0 {
		v.Set("max_beds", strconv.Itoa(q.MaxBeds))
	}
	var out ward.Board
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/bed-board?"+v.Encode(), nil, &out)
	return out, err
}

// BedAction runs clean, out-of-service or in-service on a bed.
func (c *Client) BedAction(ctx context.Context, bedID, action string) (ward.Bed, error) {
	var out ward.Bed
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/beds/"+url.PathEscape(bedID)+"/"+url.PathEscape(action), nil, &out)
	return out, err
}

func censusQuery(f ward.CensusFilter) string {
	v := url.Values{}
	if f.From != "" {
		v.Set("from", f.From)
	}
	if f.To != "" {
		v.Set("to", f.To)
	}
	if f.WardID != nil {
		v.Set("ward_id", *f.WardID)
	}
	return v.Encode()
}

// Census returns census and occupancy for a period.
func (c *Client) Census(ctx context.Context, f ward.CensusFilter) (ward.Census, error) {
	var out ward.Census
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/census?"+censusQuery(f), nil, &out)
	return out, err
}

// CensusCSV returns the census as CSV bytes.
func (c *Client) CensusCSV(ctx context.Context, f ward.CensusFilter) ([]byte, error) {
	return c.csv(ctx, "/api/v1/census.csv?"+censusQuery(f))
}

// Admit admits a patient. A non-empty key is sent as Idempotency-Key.
func (c *Client) Admit(ctx context.Context, in admission.AdmitInput, key string) (admission.Admission, error) {
	var h http.Header
	if key != "" {
		h = http.Header{"Idempotency-Key": {key}}
	}
	var out admission.Admission
	_, err := c.do(ctx, http.MethodPost, "/api/v1/admissions", in, &out, h)
	return out, err
}

// Admission returns one admission with its history.
func (c *Client) Admission(ctx context.Context, id string) (admission.Admission, error) {
	var out admission.Admission
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/admissions/"+url.PathEscape(id), nil, &out)
	return out, err
}

// PatientAdmissions lists a patient's admissions, newest first.
func (c *Client) PatientAdmissions(ctx context.Context, patientID string) ([]admission.Admission, error) {
	var out struct {
		Items []admission.Admission `json:"items"`
	}
	_, err := c.Do(ctx, http.MethodGet, "/api/v1/patients/"+url.PathEscape(patientID)+"/admissions", nil, &out)
	return out.Items, err
}

// admissionCommand posts a command; version 0 sends no If-Match, and a
// non-empty key is sent as Idempotency-Key (a repeat of the same command
// with the same key gets the first answer, not a 409 or 412).
func (c *Client) admissionCommand(ctx context.Context, id, command string, version int, in any, key string) (admission.Admission, error) {
	h := http.Header{}
	if version > 0 {
		h.Set("If-Match", `"`+strconv.Itoa(version)+`"`)
	}
	if key != "" {
		h.Set("Idempotency-Key", key)
	}
	var out admission.Admission
	_, err := c.do(ctx, http.MethodPost, "/api/v1/admissions/"+url.PathEscape(id)+"/"+command, in, &out, h)
	return out, err
}

// Transfer moves an admission to another bed.
func (c *Client) Transfer(ctx context.Context, id string, version int, in admission.TransferInput, key string) (admission.Admission, error) {
	return c.admissionCommand(ctx, id, "transfer", version, in, key)
}

// Discharge ends an admission.
func (c *Client) Discharge(ctx context.Context, id string, version int, in admission.DischargeInput, key string) (admission.Admission, error) {
	return c.admissionCommand(ctx, id, "discharge", version, in, key)
}

// CancelAdmission cancels an admission entered in error.
func (c *Client) CancelAdmission(ctx context.Context, id string, version int, in admission.CancelInput, key string) (admission.Admission, error) {
	return c.admissionCommand(ctx, id, "cancel", version, in, key)
}
