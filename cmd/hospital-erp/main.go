// Command hospital-erp is the whole hospital ERP in one binary: the backend
// (api), the server-rendered frontend (web), the database migrations
// (migrate), the demo data generator and an all-in-one laptop mode (dev).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/hospital-erp/hospital-erp/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "hospital-erp:", err)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `hospital-erp: a hospital ERP in one binary.

Usage:
  hospital-erp api              serve the REST/JSON backend (/api/v1)
  hospital-erp web              serve the web frontend, calling the backend at API_URL
  hospital-erp migrate          apply pending database migrations (connect directly, not via PgBouncer)
  hospital-erp migrate status   list migrations and whether they are applied
  hospital-erp dev              everything on one port for a laptop: local PostgreSQL, demo hospital
  hospital-erp audit verify     walk the audit hash chain and report the first altered or missing row
  hospital-erp audit archive P  verify, record and detach an ended month partition P of the audit trail (as its owner)
  hospital-erp audit unarchive P   attach an archived partition again (restored from its dump)
  hospital-erp seed --patients N   bulk-load N synthetic patients (benchmarks, load tests)
  hospital-erp backup [--out F]    consistent logical backup with checksums (docs/reliability.md)
  hospital-erp restore --in F      restore a backup into an empty database, verifying every table
  hospital-erp loadgen          drive a running system at a constant rate and report latency (see --help)
  hospital-erp version          print the version

Every command is configured by environment variables; "hospital-erp <command> --help" lists them.
`

// run is the program; main only supplies the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[1], args[2:]
	if cmd == "-h" || cmd == "--help" || cmd == "help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	if wantsHelp(rest) && cmd == "loadgen" {
		return runLoadgen(ctx, []string{"-h"}, getenv, stdout)
	}
	if wantsHelp(rest) {
		if cmd == "version" {
			fmt.Fprintln(stdout, "hospital-erp version: print the version")
			return nil
		}
		if !knownCommand(cmd) {
			fmt.Fprint(stderr, usage)
			return errUsage
		}
		fmt.Fprintf(stdout, "hospital-erp %s: settings (environment variables)\n\n", cmd)
		config.Usage(stdout, cmd)
		return nil
	}
	switch cmd {
	case config.CmdAPI:
		return runAPI(ctx, getenv, stdout)
	case config.CmdWeb:
		return runWeb(ctx, getenv, stdout)
	case config.CmdMigrate:
		return runMigrate(ctx, rest, getenv, stdout)
	case config.CmdDev:
		return runDev(ctx, getenv, stdout)
	case config.CmdAudit:
		return runAudit(ctx, rest, getenv, stdout)
	case config.CmdSeed:
		return runSeed(ctx, rest, getenv, stdout)
	case config.CmdBackup:
		return runBackup(ctx, rest, getenv, stdout, stderr)
	case config.CmdRestore:
		return runRestore(ctx, rest, getenv, stdout, stderr)
	case "loadgen":
		return runLoadgen(ctx, rest, getenv, stdout)
	case "version":
		fmt.Fprintln(stdout, version())
		return nil
	}
	fmt.Fprintf(stderr, "hospital-erp: unknown command %q\n\n%s", cmd, usage)
	return errUsage
}

func knownCommand(c string) bool {
	switch c {
	case config.CmdAPI, config.CmdWeb, config.CmdMigrate, config.CmdDev, config.CmdAudit, config.CmdSeed, config.CmdBackup, config.CmdRestore:
		return true
	}
	return false
}

func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "help" {
			return true
		}
	}
	return false
}

func newLogger(w io.Writer, level slog.Level, service string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})).With("service", service)
}

func loadConfig(command string, getenv func(string) string, overrides map[string]string) (*config.Config, error) {
	cfg, err := config.Load(command, getenv, overrides)
	if err != nil {
		return nil, fmt.Errorf("configuration:\n%w\n(run \"hospital-erp %s --help\" for every setting)", err, command)
	}
	return cfg, nil
}
