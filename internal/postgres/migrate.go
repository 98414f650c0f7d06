package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationTable is where goose records applied versions.
const migrationTable = "goose_db_version"

// LatestMigration is the highest migration version embedded in this binary.
func LatestMigration() int64 { return latestMigration }

var latestMigration = func() int64 {
	entries, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		panic(err)
	}
	var latest int64
	for _, e := range entries {
		digits, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			// Embedded at build time: a badly named file is a bug.
			panic(fmt.Sprintf("migration %s: name must start with a version number", e.Name()))
		}
		latest = max(latest, v)
	}
	return latest
}()

func migrationFS() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err)
	}
	return sub
}

// openDirect opens a database/sql handle for goose. Migrations connect to
// PostgreSQL directly, never through PgBouncer: they take a session advisory
// lock so that two migration jobs never run at once.
func openDirect(url string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	return stdlib.OpenDB(*cfg), nil
}

func provider(db *sql.DB, logger *slog.Logger) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithSessionLocker(locker),
		goose.WithTableName(migrationTable),
	}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	return goose.NewProvider(goose.DialectPostgres, db, migrationFS(), opts...)
}

// Migrate applies every pending migration, each in its own transaction.
func Migrate(ctx context.Context, url string, logger *slog.Logger) error {
	db, err := openDirect(url)
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := provider(db, logger)
	if err != nil {
		return err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		logger.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	var name string
	if err := db.QueryRowContext(ctx, "SELECT current_database()").Scan(&name); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := db.ExecContext(ctx, DatabaseSettings(name)); err != nil {
		return fmt.Errorf("migrate: database settings: %w", err)
	}
	return nil
}

// DatabaseSettings is the statement that sets, on database name, the
// settings of the database itself that the application relies on: no JIT
// compilation (migration 00008 says why). A migration set them once, but
// they belong to the database, not to its contents: a copy made with
// CREATE DATABASE ... TEMPLATE, or a dump restored into a database created
// by hand, silently lost them, and with JIT on every typo search spent
// 220 ms compiling (found by the benchmark, whose runs start from such a
// copy). Every migrate run sets them again; they apply to sessions opened
// afterwards.
func DatabaseSettings(name string) string {
	return "ALTER DATABASE " + pgx.Identifier{name}.Sanitize() + " SET jit = off"
}

// MigrationStatus writes one line per embedded migration: applied or pending.
func MigrationStatus(ctx context.Context, url string, w io.Writer) error {
	db, err := openDirect(url)
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := provider(db, nil)
	if err != nil {
		return err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return fmt.Errorf("migration status: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tFILE\tSTATE\tAPPLIED AT")
	for _, s := range st {
		at := ""
		if !s.AppliedAt.IsZero() {
			at = s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Source.Version, s.Source.Path, s.State, at)
	}
	return tw.Flush()
}

// SchemaVersion returns the highest applied migration version, read through
// the application pool (PgBouncer); readiness compares it with LatestMigration.
func (db *DB) SchemaVersion(ctx context.Context) (int64, error) {
	var v int64
	err := db.Pool.QueryRow(ctx,
		"SELECT coalesce(max(version_id), 0) FROM "+migrationTable+" WHERE is_applied").Scan(&v)
	return v, err
}

// MigrateTo applies the pending migrations up to and including version
// (restore brings an empty database to the backup's schema first).
func MigrateTo(ctx context.Context, url string, version int64, logger *slog.Logger) error {
	db, err := openDirect(url)
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := provider(db, logger)
	if err != nil {
		return err
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	return nil
}

// MigrationTable is the table goose records applied migrations in.
const MigrationTable = migrationTable
