package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/identity"
)

func testServer(t *testing.T, key []byte) *Server {
	t.Helper()
	s, err := New(Options{API: client.New("http://127.0.0.1:1", nil), PublicURL: "http://localhost:3000", SessionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSessionCookieRoundTripAndTamper(t *testing.T) {
	t.Parallel()
	s := testServer(t, testKey)
	in := session{Access: "a", Refresh: "r", Expiry: 1700000000, CSRF: "c", UserID: "u", Name: "Nia Nurse",
		Role: identity.RoleNurse, Perms: []string{identity.PermBedRead}}
	v, err := s.seal(sessionCookie, in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(v, "Nia") || strings.Contains(mustDecode(t, v), "Nia") {
		t.Fatal("the sealed cookie shows its content")
	}
	var out session
	if err := s.open(sessionCookie, v, &out); err != nil {
		t.Fatalf("open: %v", err)
	}
	if out.Name != in.Name || out.Access != in.Access || out.Perms[0] != identity.PermBedRead || out.Expiry != in.Expiry {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}

	raw := []byte(mustDecode(t, v))
	for _, i := range []int{0, len(raw) / 2, len(raw) - 1} {
		bad := bytes.Clone(raw)
		bad[i] ^= 1
		if err := s.open(sessionCookie, base64.RawURLEncoding.EncodeToString(bad), &out); err == nil {
			t.Errorf("a value with byte %d flipped was accepted", i)
		}
	}
	if err := s.open(sessionCookie, v[:len(v)-4], &out); err == nil {
		t.Error("a truncated value was accepted")
	}
	if err := s.open(flashCookie, v, &out); err == nil {
		t.Error("a session value was accepted as a flash: the cookie name must be bound")
	}
	other := testServer(t, bytes.Repeat([]byte{8}, 32))
	if err := other.open(sessionCookie, v, &out); err == nil {
		t.Error("a value sealed with another key was accepted")
	}
	v2, _ := s.seal(sessionCookie, in)
	if v2 == v {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
}

func mustDecode(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	api := client.New("http://127.0.0.1:1", nil)
	for name, o := range map[string]Options{
		"no API":      {SessionKey: testKey},
		"short key":   {API: api, SessionKey: []byte("short")},
		"bad URL":     {API: api, SessionKey: testKey, PublicURL: "localhost:3000"},
		"ftp URL":     {API: api, SessionKey: testKey, PublicURL: "ftp://example.org"},
		"missing key": {API: api},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/patients", "/patients"},
		{"/patients?q=smi&sort=-name", "/patients?q=smi&sort=-name"},
		{"/wards/5e0c3a90", "/wards/5e0c3a90"},
		{"//evil.example/x", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"/login", "/"},
		{"/pa\ttients", "/"},
		{"/pa\r\nLocation: x", "/"},
		{"/%2F%2Fevil.example", "/%2F%2Fevil.example"},
	} {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLoginURLKeepsWhereTheUserWas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ method, target, want string }{
		{"GET", "/", "/login"},
		{"GET", "/patients?q=smi", "/login?next=%2Fpatients%3Fq%3Dsmi"},
		{"GET", "/wards/x?fragment=beds", "/login?next=%2Fwards%2Fx"},
		{"POST", "/patients/new", "/login?next=%2Fpatients%2Fnew"},
	} {
		r, _ := http.NewRequest(tc.method, "http://localhost"+tc.target, nil)
		if got := loginURL(r); got != tc.want {
			t.Errorf("%s %s: loginURL = %q, want %q", tc.method, tc.target, got, tc.want)
		}
		u, _ := url.Parse(loginURL(r))
		if next := u.Query().Get("next"); next != "" && safeNext(next) != next {
			t.Errorf("%s %s: next %q would not survive safeNext", tc.method, tc.target, next)
		}
	}
}

// The refresher must turn concurrent renewals of one refresh token into
// one backend call: the backend ends the session on a token's second use.
func TestRefresherSharesOneCall(t *testing.T) {
	t.Parallel()
	f := newRefresher()
	var (
		mu    sync.Mutex
		calls int
	)
	release := make(chan struct{})
	fn := func(context.Context) (identity.LoginResponse, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		<-release
		return identity.LoginResponse{RefreshToken: "next"}, nil
	}
	var wg sync.WaitGroup
	results := make(chan string, 20)
	for range 20 {
		wg.Go(func() {
			res, err := f.do(context.Background(), "old", fn)
			if err != nil {
				t.Error(err)
			}
			results <- res.RefreshToken
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	close(results)
	for r := range results {
		if r != "next" {
			t.Fatalf("a caller got %q", r)
		}
	}
	// A late request with the old cookie gets the same answer.
	if res, _ := f.do(context.Background(), "old", fn); res.RefreshToken != "next" {
		t.Fatalf("late caller got %q", res.RefreshToken)
	}
	if calls != 1 {
		t.Fatalf("%d refresh calls, want 1", calls)
	}
	// Failures are not remembered.
	boom := errors.New("backend down")
	failing := func(context.Context) (identity.LoginResponse, error) { return identity.LoginResponse{}, boom }
	if _, err := f.do(context.Background(), "other", failing); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if res, err := f.do(context.Background(), "other", fn); err != nil || res.RefreshToken != "next" {
		t.Fatalf("after a failure: %v %q", err, res.RefreshToken)
	}
}

func TestAgeAndNaturalOrder(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ birth, want string }{
		{"1984-03-02", "42 y"},
		{"1984-11-27", "41 y"},
		{"2025-11-26", "12 mo"},
		{"2026-01-30", "9 mo"},
		{"2026-11-14", "12 d"},
		{"2027-01-01", ""},
		{"not a date", ""},
	} {
		if got := ageAt(tc.birth, now); got != tc.want {
			t.Errorf("ageAt(%s) = %q, want %q", tc.birth, got, tc.want)
		}
	}
	if naturalCompare("B2", "B10") >= 0 || naturalCompare("B10", "B2") <= 0 || naturalCompare("101", "101") != 0 {
		t.Error("naturalCompare does not order numbers by value")
	}
}

// The fullest session still fits a cookie: browsers drop cookies over
// 4096 bytes (name and value), which would sign the user out silently.
func TestLargestSessionFitsACookie(t *testing.T) {
	t.Parallel()
	s := testServer(t, testKey)
	now := time.Now()
	sess := &session{SID: newToken(), Access: strings.Repeat("a", 1100), Refresh: newToken(), Expiry: now.Unix(), CSRF: newToken(),
		UserID: "3f7a0c1e-9b2d-4e8f-a6c5-1d2e3f4a5b60", Name: strings.Repeat("N", 200), Role: identity.RolePhysician,
		Perms: identity.RolePermissions[identity.RolePhysician], MFAOn: true, Idle: 900,
		Enrol: &pendingEnrol{Secret: testSecret, URI: "otpauth://totp/Hospital%20ERP:" + strings.Repeat("u", 64) + "?algorithm=SHA1&digits=6&issuer=Hospital%20ERP&period=30&secret=" + testSecret,
			Until: now.Unix()}}
	for range maxGrants + 3 {
		sess.addGrant(newToken()[:36], now.Add(time.Hour), now)
	}
	if len(sess.Grants) != maxGrants {
		t.Fatalf("%d grants kept, want %d", len(sess.Grants), maxGrants)
	}
	v, err := s.seal(secureSessionCookie, sess)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(secureSessionCookie) + 1 + len(v); n > 4000 {
		t.Fatalf("the session cookie is %d bytes", n)
	}
}

func TestGrantsExpire(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var s session
	s.addGrant("p1", now.Add(time.Minute), now)
	s.addGrant("p2", now.Add(-time.Minute), now)
	if _, ok := s.grant("p1", now); !ok {
		t.Error("an unexpired grant is not found")
	}
	if _, ok := s.grant("p2", now); ok {
		t.Error("an expired grant counts")
	}
	s.addGrant("p3", now.Add(time.Hour), now.Add(2*time.Minute))
	if len(s.Grants) != 1 || s.Grants[0].PatientID != "p3" {
		t.Errorf("expired grants kept: %+v", s.Grants)
	}
}
