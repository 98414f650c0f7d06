package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/testenv"
)

// `hospital-erp dev` from nothing: it starts its own PostgreSQL, loads the
// demo hospital, prints the URL and logins, routes /api/* to the backend
// and the rest to the frontend; a second start reuses the data.
func TestDevMode(t *testing.T) {
	dataDir := filepath.Join(testenv.TempDir(t), "data")
	port := freePort(t)
	env := map[string]string{"DATA_DIR": dataDir, "LISTEN_ADDR": "127.0.0.1:" + port, "METRICS_ADDR": "off"}
	base := "http://127.0.0.1:" + port

	var startOut *syncBuffer // the output of the latest start
	start := func() (stop func() string, readyAfter time.Duration) {
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncBuffer{}
		startOut = out
		done := make(chan error, 1)
		began := time.Now()
		go func() {
			done <- run(ctx, []string{"hospital-erp", "dev"}, func(k string) string { return env[k] }, out, out)
		}()
		deadline := time.Now().Add(60 * time.Second)
		for {
			resp, err := http.Get(base + "/health/ready")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			select {
			case err := <-done:
				t.Fatalf("dev exited: %v\n%s", err, out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("not ready after 60s:\n%s", out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		return func() string {
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("dev: %v", err)
			}
			return out.String()
		}, time.Since(began)
	}

	stop, first := start()
	t.Logf("first start ready after %s", first)
	logins, err := os.ReadFile(filepath.Join(dataDir, "demo-logins.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var user, pass string
	for _, line := range strings.Split(string(logins), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "receptionist" {
			user, pass = f[1], f[2]
		}
	}
	ctx := context.Background()
	c := client.New(base, nil)
	tok, err := c.Login(ctx, user, pass)
	if err != nil {
		t.Fatalf("demo login %q: %v", user, err)
	}
	page, err := c.WithToken(tok.AccessToken).Patients(ctx, client.PatientQuery{Limit: 200})
	if err != nil || len(page.Items) != 200 || page.NextCursor == "" {
		t.Fatalf("demo patients: %d, %v", len(page.Items), err)
	}
	wards, err := c.WithToken(tok.AccessToken).Wards(ctx)
	if err != nil || len(wards) != 8 {
		t.Fatalf("demo wards: %d, %v", len(wards), err)
	}
	// The demo load ends with ANALYZE: the planner knows the loaded rows
	// (migration analyzed the name dictionary empty; without statistics a
	// typo search took seconds until autovacuum's analyze).
	pgPort := regexp.MustCompile(`"msg":"local PostgreSQL started".*"port":(\d+)`).FindStringSubmatch(startOut.String())
	pgPass, err := os.ReadFile(filepath.Join(dataDir, "pg.password"))
	if err != nil || pgPort == nil {
		t.Fatalf("local PostgreSQL: port %v, password %v", pgPort, err)
	}
	pg, err := pgx.Connect(ctx, fmt.Sprintf("postgres://hospital:%s@127.0.0.1:%s/hospital?sslmode=disable", strings.TrimSpace(string(pgPass)), pgPort[1]))
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"patients", "patient_name_keys", "appointments", "beds"} {
		var tuples float64
		if err := pg.QueryRow(ctx, "SELECT reltuples FROM pg_class WHERE relname = $1", table).Scan(&tuples); err != nil || tuples < 100 {
			t.Errorf("%s: the planner counts %v rows after the demo load (%v)", table, tuples, err)
		}
	}
	pg.Close(ctx)
	// The frontend answers everything that is not /api/*.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("GET / = %d %s, want a redirect to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = http.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<form") {
		t.Fatalf("GET /login = %d", resp.StatusCode)
	}
	output := stop()
	for _, want := range []string{"http://localhost:" + port, "receptionist", pass} {
		if !strings.Contains(output, want) {
			t.Errorf("start-up output lacks %q:\n%s", want, output)
		}
	}

	// Second start: same data, same logins, no second demo load.
	stop, second := start()
	t.Logf("second start ready after %s", second)
	if _, err := c.Login(ctx, user, pass); err != nil {
		t.Fatalf("login after restart: %v", err)
	}
	if out := stop(); strings.Contains(out, "demo hospital loaded") {
		t.Fatal("demo data loaded twice")
	}
}
