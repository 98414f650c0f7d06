package testenv

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/localpg"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
)

// Servers are a PostgreSQL and a PgBouncer of one test's own, for tests that
// crash, restart, kill or pause them (the shared ones must stay up). The
// database "hospital" is migrated and reachable through PgBouncer as the
// application's role, like production. PostgreSQL runs with durable
// settings (unlike the shared test server): a crash test counts lost
// commits, and synchronous_commit=off would lose some by design.
type Servers struct {
	PG      *localpg.Server
	Bouncer *PgBouncer
	DB      Database
	pgDir   string
	pgLog   io.Writer
	appPass string
}

// NewServers starts PostgreSQL and PgBouncer (a server pool of poolSize)
// for t; they stop when t ends.
func NewServers(t testing.TB, poolSize int) *Servers {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := TempDir(t)
	s := &Servers{pgDir: filepath.Join(dir, "pg"), pgLog: logFile(dir, "postgres.log"), appPass: localpg.RandomPassword()}
	var err error
	s.PG, err = localpg.Start(ctx, localpg.Options{DataDir: s.pgDir, Log: s.pgLog})
	if err != nil {
		t.Fatalf("testenv: start PostgreSQL: %v (%s)", err, AptLine)
	}
	t.Cleanup(func() { _ = s.PG.Stop() })
	const name = "hospital"
	if err := s.PG.CreateDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := postgres.Migrate(ctx, s.PG.URL(name), quiet); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PG.EnsureLoginRole(ctx, AppRole, s.appPass, "hospital_app", name); err != nil {
		t.Fatal(err)
	}
	s.Bouncer, err = StartPgBouncer(dir, s.PG, poolSize, map[string]string{AppRole: s.appPass})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { s.Bouncer.Stop() })
	s.DB = Database{Name: name, URL: s.Bouncer.UserURL(AppRole, s.appPass, name), DirectURL: s.PG.URL(name)}
	return s
}

// CrashPostgres stops PostgreSQL as a crash would (immediate shutdown: no
// checkpoint; the next start runs crash recovery).
func (s *Servers) CrashPostgres() { s.PG.Crash() }

// StartPostgres starts PostgreSQL again on the same port and data.
func (s *Servers) StartPostgres(ctx context.Context) error {
	pg, err := localpg.Start(ctx, localpg.Options{DataDir: s.pgDir, Port: s.PG.Port, Log: s.pgLog})
	if err != nil {
		return fmt.Errorf("restart PostgreSQL: %w", err)
	}
	s.PG = pg
	return nil
}

// AppURLVia returns the application's database URL with the host replaced
// by addr (a fault proxy in front of PgBouncer).
func (s *Servers) AppURLVia(addr string) string {
	u, _ := url.Parse(s.DB.URL)
	u.Host = addr
	return u.String()
}
