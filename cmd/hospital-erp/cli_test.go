package main

import (
	"context"
	"strings"
	"testing"

	"github.com/hospital-erp/hospital-erp/internal/config"
	"github.com/hospital-erp/hospital-erp/internal/testenv"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	out := &syncBuffer{}
	err := run(context.Background(), append([]string{"hospital-erp"}, args...), func(k string) string { return env[k] }, out, out)
	return out.String(), err
}

func TestHelpListsEverySetting(t *testing.T) {
	for _, cmd := range []string{config.CmdAPI, config.CmdWeb, config.CmdMigrate, config.CmdDev} {
		out, err := runCLI(t, nil, cmd, "--help")
		if err != nil {
			t.Fatalf("%s --help: %v", cmd, err)
		}
		for _, name := range config.Names(cmd) {
			if !strings.Contains(out, name) {
				t.Errorf("%s --help does not list %s", cmd, name)
			}
		}
	}
	if out, err := runCLI(t, nil); err == nil || !strings.Contains(out, "Usage") {
		t.Fatalf("no command: %v %q", err, out)
	}
	if _, err := runCLI(t, nil, "bogus"); err == nil {
		t.Fatal("unknown command accepted")
	}
}

func TestBadConfigurationStopsTheStart(t *testing.T) {
	_, err := runCLI(t, map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/x", "JWT_PRIVATE_KEYS": "not a key",
		"REQUEST_TIMEOUT": "forever"}, "api")
	if err == nil || !strings.Contains(err.Error(), "REQUEST_TIMEOUT") {
		t.Fatalf("bad duration: %v", err)
	}
	_, err = runCLI(t, map[string]string{"MFA_ENCRYPTION_KEY": "short"}, "api")
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || !strings.Contains(err.Error(), "JWT_PRIVATE_KEYS") ||
		!strings.Contains(err.Error(), "MFA_ENCRYPTION_KEY") {
		t.Fatalf("missing settings: %v", err)
	}
	_, err = runCLI(t, map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/x", "JWT_PRIVATE_KEYS": "not a key",
		"MFA_ENCRYPTION_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, "api")
	if err == nil || !strings.Contains(err.Error(), "JWT_PRIVATE_KEYS") {
		t.Fatalf("bad key: %v", err)
	}
	_, err = runCLI(t, map[string]string{"API_URL": "ftp://x"}, "web")
	if err == nil || !strings.Contains(err.Error(), "API_URL") || !strings.Contains(err.Error(), "WEB_SESSION_KEY") {
		t.Fatalf("web: %v", err)
	}
}

func TestMigrateStatus(t *testing.T) {
	d := testenv.NewDatabase(t)
	out, err := runCLI(t, map[string]string{"DATABASE_URL": d.DirectURL}, "migrate", "status")
	if err != nil || !strings.Contains(out, "00001_foundation.sql") || !strings.Contains(out, "applied") {
		t.Fatalf("migrate status: %v\n%s", err, out)
	}
	if _, err := runCLI(t, map[string]string{"DATABASE_URL": d.DirectURL}, "migrate"); err != nil {
		t.Fatalf("migrate on a current database: %v", err)
	}
	if _, err := runCLI(t, map[string]string{"DATABASE_URL": d.DirectURL}, "migrate", "sideways"); err == nil {
		t.Fatal("bad migrate argument accepted")
	}
}
