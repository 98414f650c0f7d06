package main

import (
	"context"
	"fmt"
	"io"

	"github.com/hospital-erp/hospital-erp/internal/config"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
)

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig(config.CmdMigrate, getenv, nil)
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg.LogLevel, "migrate")
	switch {
	case len(args) == 0:
		if err := postgres.Migrate(ctx, cfg.DatabaseURL, log); err != nil {
			return err
		}
		log.Info("database is up to date", "version", postgres.LatestMigration())
		return nil
	case len(args) == 1 && args[0] == "status":
		return postgres.MigrationStatus(ctx, cfg.DatabaseURL, stdout)
	}
	return fmt.Errorf("migrate: unexpected arguments %q; use \"migrate\" or \"migrate status\"", args)
}
