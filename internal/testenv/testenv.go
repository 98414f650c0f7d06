// Package testenv starts the real servers tests run against: a throwaway
// PostgreSQL (initdb in a temp dir), PgBouncer in transaction pooling mode in
// front of it, and Redis, each on a free loopback port, once per test binary.
// Every test gets its own database cloned from a migrated template and its
// own Redis key prefix. Missing binaries fail the test run with the apt-get
// line to run; nothing is skipped silently.
package testenv

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hospital-erp/hospital-erp/internal/localpg"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
)

// AptLine is what to run when a server binary is missing.
const AptLine = "sudo apt-get install -y postgresql pgbouncer redis-server (or run `make test` as root, which installs them)"

const templateDB = "hospital_template"

// atExit holds what Main runs after the tests whatever their outcome.
var atExit []func()

// AtExit registers f to run when Main ends, passed or failed: for removing
// what a package's TestMain made outside the servers' directory.
func AtExit(f func()) { atExit = append(atExit, f) }

var (
	once    sync.Once
	shared  *env
	initErr error
	dbSeq   atomic.Int64
)

type env struct {
	root    string
	pg      *localpg.Server
	bouncer *PgBouncer
	redis   *Redis
	appPass string
}

// AppRole is the login role the application connects as in tests: a
// member of hospital_app, like in production, so privilege rules (no
// UPDATE or DELETE on the audit trail) hold in every test.
const AppRole = "hospital_api"

// Main runs the package's tests and stops the servers afterwards. Call it
// from TestMain. after, if given, runs once the tests have passed and may
// fail the run by returning non-zero (checks over the whole run).
func Main(m *testing.M, after ...func() int) {
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	for _, f := range atExit {
		f()
	}
	for _, f := range after {
		if code == 0 {
			code = f()
		}
	}
	os.Exit(code)
}

func get(t testing.TB) *env {
	t.Helper()
	once.Do(func() { shared, initErr = start() })
	if initErr != nil {
		t.Fatalf("testenv: %v", initErr)
	}
	return shared
}

func start() (*env, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, err := os.MkdirTemp("", "hospital-erp-test-")
	if err != nil {
		return nil, err
	}
	e := &env{root: root}
	logs := logFile(root, "postgres.log")
	e.pg, err = localpg.Start(ctx, localpg.Options{DataDir: filepath.Join(root, "pg"), Ephemeral: true, Log: logs})
	if err != nil {
		e.stop()
		return nil, fmt.Errorf("start PostgreSQL: %w (%s)", err, AptLine)
	}
	if err := e.pg.CreateDatabase(ctx, templateDB); err != nil {
		e.stop()
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := postgres.Migrate(ctx, e.pg.URL(templateDB), quiet); err != nil {
		e.stop()
		return nil, err
	}
	e.appPass = localpg.RandomPassword()
	if _, err := e.pg.EnsureLoginRole(ctx, AppRole, e.appPass, "hospital_app", templateDB); err != nil {
		e.stop()
		return nil, err
	}
	e.bouncer, err = StartPgBouncer(root, e.pg, 5, map[string]string{AppRole: e.appPass})
	if err != nil {
		e.stop()
		return nil, err
	}
	e.redis, err = StartRedis(root)
	if err != nil {
		e.stop()
		return nil, err
	}
	return e, nil
}

func (e *env) stop() {
	if e.redis != nil {
		e.redis.Stop()
	}
	if e.bouncer != nil {
		e.bouncer.Stop()
	}
	if e.pg != nil {
		_ = e.pg.Stop()
	}
	_ = os.RemoveAll(e.root)
}

// Database is one test's database.
type Database struct {
	Name string
	// URL connects through PgBouncer (transaction pooling) as the
	// application's role: what the backend uses.
	URL string
	// DirectURL connects to PostgreSQL itself as the superuser that owns
	// the schema: for migrations and for tests that play an attacker with
	// full database access.
	DirectURL string
}

// NewDatabase creates a fresh, migrated database for t by cloning the
// template. It is reachable through the shared PgBouncer.
func NewDatabase(t testing.TB) Database {
	t.Helper()
	e := get(t)
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.pg.URL("postgres"))
	if err != nil {
		t.Fatalf("testenv: connect: %v", err)
	}
	defer conn.Close(ctx)
	// CREATE DATABASE ... TEMPLATE fails while another session is connected
	// to the template; our template is only ever touched here, serially.
	templateMu.Lock()
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+templateDB)
	templateMu.Unlock()
	if err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	// A copy does not carry the template's database settings; set them as
	// migrate does, so tests run with the settings production has.
	if _, err := conn.Exec(ctx, postgres.DatabaseSettings(name)); err != nil {
		t.Fatalf("testenv: database settings: %v", err)
	}
	return Database{Name: name, URL: e.bouncer.UserURL(AppRole, e.appPass, name), DirectURL: e.pg.URL(name)}
}

var templateMu sync.Mutex

// OpenDB returns a pool on a fresh database through PgBouncer, closed when t ends.
func OpenDB(t testing.TB) (*postgres.DB, Database) {
	t.Helper()
	d := NewDatabase(t)
	db, err := postgres.Open(context.Background(), d.URL, postgres.Options{
		MaxConns: 10, StatementTimeout: 10 * time.Second, ConnectTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("testenv: open %s: %v", d.Name, err)
	}
	t.Cleanup(db.Close)
	return db, d
}

// SharedRedis returns the shared Redis and a key prefix unique to t. Tests
// that stop Redis must start their own with StartRedis.
func SharedRedis(t testing.TB) (addr, prefix string) {
	t.Helper()
	e := get(t)
	return e.redis.Addr(), fmt.Sprintf("t%d:%s:", dbSeq.Add(1), strings.ReplaceAll(t.Name(), "/", "."))
}

// PostgresServer returns the shared PostgreSQL server (for tests that need
// to create their own PgBouncer in front of it).
func PostgresServer(t testing.TB) *localpg.Server { return get(t).pg }

// TempDir returns a directory the 'postgres' user can reach, for servers
// that must not run as root; it is removed when t ends.
func TempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hospital-erp-t-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func logFile(dir, name string) io.Writer {
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return io.Discard
	}
	return f
}
