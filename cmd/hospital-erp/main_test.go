package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/config"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/metrics"
	"github.com/hospital-erp/hospital-erp/internal/testenv"
)

// TestMain runs the tests, then checks every log line any backend wrote
// during the run for the passwords, tokens and patient names the tests
// registered with sensitive: none may appear.
func TestMain(m *testing.M) {
	testenv.Main(m, func() int {
		if leaks := logLeaks(); len(leaks) > 0 {
			fmt.Fprintln(os.Stderr, "sensitive values found in logs:")
			for _, l := range leaks {
				fmt.Fprintln(os.Stderr, "  ", l)
			}
			return 1
		}
		return 0
	})
}

var (
	secretsMu sync.Mutex
	secrets   = map[string]bool{testPassword: true}
	allLogs   []*syncBuffer
)

// sensitive registers values that must never appear in a log line.
func sensitive(values ...string) {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	for _, v := range values {
		if len(v) >= 6 {
			secrets[v] = true
		}
	}
}

func captureLogs() *syncBuffer {
	b := &syncBuffer{}
	secretsMu.Lock()
	allLogs = append(allLogs, b)
	secretsMu.Unlock()
	return b
}

func logLeaks() []string {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	var out []string
	for _, b := range allLogs {
		text := b.String()
		for s := range secrets {
			if strings.Contains(text, s) {
				out = append(out, fmt.Sprintf("%.12s…", s))
			}
		}
	}
	return out
}

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testBackend is a backend wired exactly as `hospital-erp api` wires it, on
// a fresh database reached through PgBouncer.
type testBackend struct {
	*backend
	URL      string
	Config   *config.Config
	Metrics  *metrics.Metrics
	Logs     *syncBuffer
	Keys     string
	DBURL    string
	AdminURL string
	clock    func() time.Time
	server   *httptest.Server
}

type backendOpts struct {
	env      map[string]string // extra settings
	dbURL    string            // share a database with another instance
	adminURL string            // its superuser URL
	redisURL string            // "" uses the shared Redis; "none" runs without Redis
	keys     string
	mfaKey   string
	clock    func() time.Time // nil: the real clock
}

func startBackend(t *testing.T, o backendOpts) *testBackend {
	t.Helper()
	if o.dbURL == "" {
		d := testenv.NewDatabase(t)
		o.dbURL, o.adminURL = d.URL, d.DirectURL
	}
	if o.keys == "" {
		var err error
		if o.keys, err = identity.GenerateKeyPEM(); err != nil {
			t.Fatal(err)
		}
	}
	if o.mfaKey == "" {
		o.mfaKey = base64.StdEncoding.EncodeToString(make([]byte, 32))
	}
	if o.clock == nil {
		o.clock = time.Now
	}
	env := map[string]string{
		"MFA_ENCRYPTION_KEY":  o.mfaKey,
		"AUDIT_SEAL_INTERVAL": "100ms",
		"REFRESH_REUSE_GRACE": "0s",
		"DATABASE_URL":        o.dbURL,
		"JWT_PRIVATE_KEYS":    o.keys,
		"LOG_LEVEL":           "debug",
		"RATE_LIMIT_IP":       "100000/1m",
		"RATE_LIMIT_USER":     "100000/1m",
		"RATE_LIMIT_LOGIN":    "1000/1m",
	}
	// Instances on one database share their Redis keys (events, cache);
	// tests on different databases must not see each other's.
	sum := sha256.Sum256([]byte(o.dbURL))
	env["REDIS_KEY_PREFIX"] = fmt.Sprintf("t%x:", sum[:6])
	switch o.redisURL {
	case "":
		addr, _ := testenv.SharedRedis(t)
		env["REDIS_URL"] = "redis://" + addr
	case "none":
	default:
		env["REDIS_URL"] = o.redisURL
	}
	for k, v := range o.env {
		env[k] = v
	}
	cfg, err := config.Load(config.CmdAPI, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := captureLogs()
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := metrics.New("backend")
	b, err := newBackend(context.Background(), cfg, log, m, o.clock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b.Server)
	t.Cleanup(func() {
		b.StopStreams()
		srv.Close()
		b.Close()
	})
	return &testBackend{backend: b, URL: srv.URL, Config: cfg, Metrics: m, Logs: logs, Keys: o.keys, DBURL: o.dbURL,
		AdminURL: o.adminURL, clock: o.clock, server: srv}
}

// user creates a user with role and returns a client signed in as them
// and the access token.
func (tb *testBackend) user(t *testing.T, role string) (*client.Client, string) {
	t.Helper()
	ctx := context.Background()
	name := strings.ReplaceAll(role, "_", "") + "." + strings.ToLower(strings.NewReplacer("/", "", "_", "").Replace(t.Name()))
	if len(name) > 60 {
		name = name[:60]
	}
	pw := testPassword
	if _, err := tb.Identity.CreateUserAsSystem(ctx, name, "Test "+role, role, "", pw); err != nil {
		t.Fatalf("create %s: %v", role, err)
	}
	c := client.New(tb.URL, nil)
	tok, err := c.Login(ctx, name, pw)
	if err != nil {
		t.Fatalf("login %s: %v", role, err)
	}
	return c.WithToken(tok.AccessToken), tok.AccessToken
}

// raw sends a request and returns status, headers and body.
func raw(t *testing.T, method, url, contentType string, body io.Reader, token string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// openAdmin connects to the test's database as the superuser that owns
// the schema (an attacker with full database access, or the migrator).
func openAdmin(t *testing.T, tb *testBackend) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), tb.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func newRequest(method, url, token string) (*http.Request, error) {
	req, err := http.NewRequest(method, url, nil)
	if err == nil && token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, err
}

func httpDo(req *http.Request) (*http.Response, error) { return http.DefaultClient.Do(req) }
