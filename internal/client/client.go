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

	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/patient"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

// Client calls the API at a base URL, optionally as a signed-in user.
type Client struct {
	base  string
	http  *http.Client
	token string
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
	if f, ok := ctx.Value(forwardedKey{}).(forwarded); ok {
		if f.ip != "" {
			req.Header.Set("X-Forwarded-For", f.ip)
		}
		if f.userAgent != "" {
			req.Header.Set("User-Agent", f.userAgent)
		}
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
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return resp, nil
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
func (c *Client) UpdatePatient(ctx context.Context, id string, version int, in patient.RegisterInput) (patient.Patient, error) {
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
