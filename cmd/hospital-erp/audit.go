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

func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) != 1 || args[0] != "verify" {
		return fmt.Errorf("audit: use \"audit verify\"")
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
	rep, err := audit.Verify(ctx, db)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
	if !rep.OK {
		return errAuditBroken
	}
	return nil
}
