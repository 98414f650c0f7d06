package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hospital-erp/hospital-erp/internal/config"
	"github.com/hospital-erp/hospital-erp/internal/demo"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/localpg"
	"github.com/hospital-erp/hospital-erp/internal/metrics"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
)

// demoPatients is how many patients the demo hospital gets.
const demoPatients = 400

// runDev is the laptop mode: a local PostgreSQL when DATABASE_URL is unset,
// migrations, the demo hospital, and backend plus frontend on one port with
// /api/* routed to the backend as the ingress does.
func runDev(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	overrides := map[string]string{"COOKIE_SECURE": "false", "DRAIN_DELAY": "0s", "SHUTDOWN_TIMEOUT": "5s",
		"HOSPITAL_TIMEZONE": "Europe/London"}
	if getenv("PUBLIC_URL") == "" {
		port := "3000"
		if addr := getenv("LISTEN_ADDR"); addr != "" {
			if _, p, err := net.SplitHostPort(addr); err == nil {
				port = p
			}
		}
		overrides["PUBLIC_URL"] = "http://localhost:" + port
	}
	cfg, err := loadConfig(config.CmdDev, getenv, overrides)
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg.LogLevel, "dev")
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("DATA_DIR=%s: %w", cfg.DataDir, err)
	}

	migrateURL := cfg.DatabaseURL
	var pg *localpg.Server
	if cfg.DatabaseURL == "" {
		pg, err = localpg.Start(ctx, localpg.Options{DataDir: filepath.Join(cfg.DataDir, "pg"),
			Log: logFile(filepath.Join(cfg.DataDir, "postgres.log"))})
		if err != nil {
			return err
		}
		defer pg.Stop()
		if err := pg.CreateDatabase(ctx, "hospital"); err != nil {
			return fmt.Errorf("create database: %w", err)
		}
		migrateURL = pg.URL("hospital")
		log.Info("local PostgreSQL started", "data_dir", filepath.Join(cfg.DataDir, "pg"), "port", pg.Port)
	}
	if err := postgres.Migrate(ctx, migrateURL, log); err != nil {
		return err
	}
	if pg != nil {
		// The backend connects as a member of hospital_app, like in
		// production: it cannot change or delete audit rows.
		pw, err := secretFile(filepath.Join(cfg.DataDir, "app-db.password"), func() (string, error) { return localpg.RandomPassword(), nil })
		if err != nil {
			return err
		}
		if cfg.DatabaseURL, err = pg.EnsureLoginRole(ctx, "hospital_api", strings.TrimSpace(pw), "hospital_app", "hospital"); err != nil {
			return fmt.Errorf("create the application's database role: %w", err)
		}
	}
	if cfg.JWTPrivateKeys == "" {
		if cfg.JWTPrivateKeys, err = secretFile(filepath.Join(cfg.DataDir, "jwt-ed25519.pem"), identity.GenerateKeyPEM); err != nil {
			return err
		}
	}
	if cfg.MFAKey == nil {
		k, err := secretFile(filepath.Join(cfg.DataDir, "mfa.key"), randomKey)
		if err != nil {
			return err
		}
		if cfg.MFAKey, err = base64.StdEncoding.DecodeString(strings.TrimSpace(k)); err != nil {
			return fmt.Errorf("%s/mfa.key: %w", cfg.DataDir, err)
		}
	}
	if cfg.WebSessionKey == nil {
		k, err := secretFile(filepath.Join(cfg.DataDir, "web-session.key"), randomKey)
		if err != nil {
			return err
		}
		if cfg.WebSessionKey, err = base64.StdEncoding.DecodeString(strings.TrimSpace(k)); err != nil {
			return fmt.Errorf("%s/web-session.key: %w", cfg.DataDir, err)
		}
	}

	m := metrics.New("dev")
	b, err := newBackend(ctx, cfg, log, m, time.Now)
	if err != nil {
		return err
	}
	defer b.Close()

	loginsPath := filepath.Join(cfg.DataDir, "demo-logins.txt")
	if cfg.DemoData {
		loaded, err := demo.Loaded(ctx, b.DB)
		if err != nil {
			return err
		}
		if !loaded {
			logins, err := demo.Load(ctx, b.DB, b.Identity, demoPatients, cfg.Location, time.Now())
			if err != nil {
				return err
			}
			// As the schema's owner: the backend's role may not analyze.
			if err := analyzeAs(ctx, migrateURL); err != nil {
				return err
			}
			var buf bytes.Buffer
			demo.WriteLogins(&buf, logins)
			if err := os.WriteFile(loginsPath, buf.Bytes(), 0o600); err != nil {
				return err
			}
			log.Info("demo hospital loaded", "patients", demoPatients, "logins", loginsPath)
		}
	}

	_, port, err := net.SplitHostPort(cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("LISTEN_ADDR=%s: %w", cfg.ListenAddr, err)
	}
	w, err := newWeb(cfg, "http://127.0.0.1:"+port, log, m)
	if err != nil {
		return err
	}
	mux := ingress(b.Server, w)

	banner := func(addr net.Addr) {
		fmt.Fprintf(stdout, "\n  Hospital ERP is running: %s\n", cfg.PublicURL)
		fmt.Fprintf(stdout, "  API reference:           %s/api/v1/docs\n", cfg.PublicURL)
		if cfg.MetricsAddr != "off" {
			host, port, _ := net.SplitHostPort(cfg.MetricsAddr)
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "localhost"
			}
			fmt.Fprintf(stdout, "  Metrics:                 http://%s/metrics\n", net.JoinHostPort(host, port))
		}
		fmt.Fprintln(stdout)
		if logins, err := os.ReadFile(loginsPath); err == nil {
			fmt.Fprintf(stdout, "  Demo logins (also in %s):\n\n", loginsPath)
			for _, line := range strings.Split(strings.TrimRight(string(logins), "\n"), "\n") {
				fmt.Fprintln(stdout, "    "+line)
			}
			fmt.Fprintln(stdout)
		}
		fmt.Fprintln(stdout, "  Press Ctrl+C to stop.")
		fmt.Fprintln(stdout)
	}
	return serve(ctx, log, cfg, mux, m, banner, b.StopStreams, b.Server, w)
}

// ingress routes one port like the Kubernetes ingress does: /api/* to the
// backend, the rest to the frontend. Probes reach the backend.
func ingress(api, web http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/", api)
	mux.Handle("/health/", api)
	mux.Handle("/", web)
	return mux
}

// secretFile returns the contents of path, creating it with gen (mode 0600)
// when it does not exist. Keys are generated on the machine, never committed.
func secretFile(path string, gen func() (string, error)) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return string(b), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	s, err := gen()
	if err != nil {
		return "", err
	}
	return s, os.WriteFile(path, []byte(s), 0o600)
}

// randomKey returns base64 of 32 random bytes.
func randomKey() (string, error) {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	return base64.StdEncoding.EncodeToString(b), err
}

func logFile(path string) io.Writer {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return io.Discard
	}
	return f
}

func itoa(n int) string { return strconv.Itoa(n) }

// analyzeAs gathers the planner's statistics connected as url's role (the
// schema's owner) after a bulk load; see postgres.Analyze.
func analyzeAs(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return postgres.Analyze(ctx, conn)
}
