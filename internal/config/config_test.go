package config

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md")

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigurationDoc(t *testing.T) {
	want := Markdown()
	path := "../../docs/configuration.md"
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("docs/configuration.md is stale: go test ./internal/config -update (%v)", err)
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	_, err := Load(CmdAPI, env(map[string]string{"DATABASE_URL": "mysql://x", "CACHE_TTL": "soon",
		"RATE_LIMIT_IP": "lots", "TRUSTED_PROXIES": "10.0.0.0/33"}), nil)
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, name := range []string{"DATABASE_URL", "CACHE_TTL", "RATE_LIMIT_IP", "TRUSTED_PROXIES", "JWT_PRIVATE_KEYS"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
	if strings.Contains(err.Error(), "mysql://x") {
		t.Errorf("error repeats a secret value:\n%v", err)
	}
}

func TestSecretFromFile(t *testing.T) {
	path := t.TempDir() + "/db"
	if err := os.WriteFile(path, []byte("postgres://u:p@db/hospital\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(CmdMigrate, env(map[string]string{"DATABASE_URL_FILE": path}), nil)
	if err != nil || c.DatabaseURL != "postgres://u:p@db/hospital" {
		t.Fatalf("from file: %+v %v", c, err)
	}
	_, err = Load(CmdMigrate, env(map[string]string{"DATABASE_URL_FILE": path, "DATABASE_URL": "postgres://x"}), nil)
	if err == nil || !strings.Contains(err.Error(), "both set") {
		t.Fatalf("both set: %v", err)
	}
	_, err = Load(CmdMigrate, env(map[string]string{"DATABASE_URL_FILE": "/nonexistent"}), nil)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL_FILE") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load(CmdDev, env(nil), map[string]string{"DRAIN_DELAY": "0s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenAddr != ":3000" || c.MetricsAddr != ":9464" || c.CacheTTL != 5*time.Minute || c.DrainDelay != 0 ||
		c.SessionIdleTimeout != 15*time.Minute || c.RateLimitLogin.N != 10 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestParseRate(t *testing.T) {
	for in, ok := range map[string]bool{"10/1m": true, "1/1s": true, "0/1m": false, "10": false, "10/x": false, "-1/1m": false} {
		if _, err := ParseRate(in); (err == nil) != ok {
			t.Errorf("ParseRate(%q) err=%v", in, err)
		}
	}
}
