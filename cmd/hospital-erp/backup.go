package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hospital-erp/hospital-erp/internal/backup"
	"github.com/hospital-erp/hospital-erp/internal/config"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
)

// runBackup writes a consistent logical backup (see internal/backup) to a
// file (atomically, with a .sha256 beside it), into a directory under a
// time-stamped name (the Kubernetes CronJob: the image has no shell to
// name files or delete old ones, hence --keep), or to stdout ("-", to pipe
// into an object store's upload command).
func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", `file to write, or a directory to write hospital-erp-<UTC time>.backup.gz into ("-" for stdout); default: that name here`)
	keep := fs.Int("keep", 0, "after a backup into a directory, delete all but the newest N hospital-erp-*.backup.gz there (0 keeps all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := ""
	if fi, err := os.Stat(*out); *out == "" || (err == nil && fi.IsDir()) {
		dir = *out
		if dir == "" {
			dir = "."
		}
	}
	if *keep < 0 || (*keep > 0 && dir == "") {
		return errors.New("backup: --keep N needs --out DIR (a directory) and N >= 0")
	}
	cfg, err := loadConfig(config.CmdBackup, getenv, nil)
	if err != nil {
		return err
	}
	logTo := stdout
	if *out == "-" {
		logTo = stderr
	}
	log := newLogger(logTo, cfg.LogLevel, "backup")
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var schema int64
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version_id), 0) FROM "+postgres.MigrationTable+" WHERE is_applied").Scan(&schema); err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	opts := backup.Options{SchemaVersion: schema, AppVersion: version(),
		Progress: func(t string, rows int64) { log.Debug("table saved", "table", t, "rows", rows) }}
	start := time.Now()
	if *out == "-" {
		m, err := backup.Write(ctx, conn, stdout, postgres.MigrationTable, opts)
		if err != nil {
			return err
		}
		log.Info("backup written", "tables", len(m.Tables), "rows", totalRows(m), "duration", time.Since(start).String())
		return nil
	}
	path := *out
	if dir != "" {
		path = filepath.Join(dir, backupPrefix+time.Now().UTC().Format("20060102T150405Z")+backupSuffix)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".backup-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	m, err := backup.Write(ctx, conn, io.MultiWriter(tmp, h), postgres.MigrationTable, opts)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := os.WriteFile(path+".sha256", []byte(sum+"  "+filepath.Base(path)+"\n"), 0o644); err != nil {
		return err
	}
	log.Info("backup written", "file", path, "sha256", sum, "tables", len(m.Tables), "rows", totalRows(m),
		"schema_version", schema, "duration", time.Since(start).String())
	if *keep > 0 {
		removed, err := pruneBackups(dir, *keep)
		if err != nil {
			return fmt.Errorf("backup written, but deleting old ones failed: %w", err)
		}
		if len(removed) > 0 {
			log.Info("old backups deleted", "kept", *keep, "deleted", removed)
		}
	}
	return nil
}

const backupPrefix, backupSuffix = "hospital-erp-", ".backup.gz"

// pruneBackups deletes all but the newest keep backups in dir (their names
// sort by time) with their .sha256 files, and returns the names deleted.
func pruneBackups(dir string, keep int) ([]string, error) {
	names, err := filepath.Glob(filepath.Join(dir, backupPrefix+"*"+backupSuffix))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var removed []string
	for len(names) > keep {
		old := names[0]
		names = names[1:]
		if err := os.Remove(old); err != nil {
			return removed, err
		}
		if err := os.Remove(old + ".sha256"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, err
		}
		removed = append(removed, filepath.Base(old))
	}
	return removed, nil
}

func totalRows(m backup.Manifest) int64 {
	var n int64
	for _, t := range m.Tables {
		n += t.Rows
	}
	return n
}

// runRestore loads a backup into an empty database (or, with --replace,
// over an existing one) and verifies every table before committing.
func runRestore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", `backup file ("-" for stdin)`)
	replace := fs.Bool("replace", false, "delete the data the database holds and restore over it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" {
		return errors.New("restore: --in FILE is required")
	}
	cfg, err := loadConfig(config.CmdRestore, getenv, nil)
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg.LogLevel, "restore")
	var r io.Reader = os.Stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := checkSum(*in, f); err != nil {
			return err
		}
		r = f
	}
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	start := time.Now()
	m, err := backup.Restore(ctx, conn, r, backup.RestoreOptions{
		Replace:  *replace,
		Occupied: occupied,
		Migrate: func(ctx context.Context, v int64) error {
			return postgres.MigrateTo(ctx, cfg.DatabaseURL, v, slog.New(slog.DiscardHandler))
		},
		// New audit rows must sort after the restored ones (see migration 00006).
		After: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "SELECT audit_after_restore()")
			return err
		},
		Progress: func(t string, rows int64) { log.Debug("table loaded", "table", t, "rows", rows) },
	})
	if errors.Is(err, backup.ErrNotEmpty) {
		return errors.New("restore: the database already holds users and patients; restore into an empty database, or pass --replace to delete them first")
	}
	if err != nil {
		return fmt.Errorf("restore (nothing was changed): %w", err)
	}
	if err := postgres.Analyze(ctx, conn); err != nil {
		// The data is restored; autovacuum gathers the statistics later.
		log.Warn("planner statistics not gathered after the restore", "error", err)
	}
	log.Info("backup restored and verified", "tables", len(m.Tables), "rows", totalRows(m), "schema_version", m.SchemaVersion,
		"backup_started_at", m.StartedAt, "duration", time.Since(start).String())
	return nil
}

// occupied reports whether the database has application data (users).
func occupied(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var busy bool
	err := conn.QueryRow(ctx, "SELECT to_regclass('users') IS NOT NULL AND EXISTS (SELECT 1 FROM users)").Scan(&busy)
	if err != nil {
		// users exists only after the migrations: an error here means it does not.
		var n bool
		if qerr := conn.QueryRow(ctx, "SELECT to_regclass('users') IS NOT NULL").Scan(&n); qerr == nil && !n {
			return false, nil
		}
	}
	return busy, err
}

// checkSum compares the file with the .sha256 written beside it, when
// there is one, and rewinds it.
func checkSum(path string, f *os.File) error {
	want, err := os.ReadFile(path + ".sha256")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); len(want) < 64 || string(want[:64]) != got {
		return fmt.Errorf("restore: %s does not match its .sha256 (damaged or incomplete copy)", path)
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}
