package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/config"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
)

// errAuditBroken makes `audit verify` exit non-zero when the chain is broken.
var errAuditBroken = errors.New("audit chain verification failed")

// runAudit runs `audit verify`, `audit archive PARTITION` and `audit
// unarchive PARTITION` (docs/operations.md#month-partitions); archiving
// needs the schema owner's DATABASE_URL.
func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	const usage = "audit: use \"audit verify\", \"audit archive PARTITION\" or \"audit unarchive PARTITION\""
	switch {
	case len(args) == 1 && args[0] == "verify":
	case len(args) == 2 && (args[0] == "archive" || args[0] == "unarchive"):
	default:
		return errors.New(usage)
	}
	cfg, err := loadConfig(config.CmdAudit, getenv, nil)
	if err != nil {
		return err
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{MaxConns: 2, StatementTimeout: 10 * time.Minute,
		ConnectTimeout: cfg.DatabaseConnectRetry})
	if err != nil {
		return err
	}
	defer db.Close()
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	switch args[0] {
	case "archive":
		a, rep, err := audit.Archive(ctx, db, args[1])
		if err != nil {
			if !rep.OK && rep.Problem != "" {
				_ = enc.Encode(rep)
			}
			return fmt.Errorf("audit archive: %w", err)
		}
		return enc.Encode(map[string]any{"archived": a, "verified_blocks": rep.Blocks, "verified_rows": rep.Rows,
			"next": fmt.Sprintf("pg_dump --table %s, keep the dump, then DROP TABLE %s", a.Partition, a.Partition)})
	case "unarchive":
		a, err := audit.Unarchive(ctx, db, args[1])
		if err != nil {
			return fmt.Errorf("audit unarchive: %w", err)
		}
		return enc.Encode(map[string]any{"attached": a})
	}
	rep, err := audit.Verify(ctx, db)
	if err != nil {
		return err
	}
	_ = enc.Encode(rep)
	if !rep.OK {
		return errAuditBroken
	}
	return nil
}
