// Command bench is `make bench`: it starts the whole stack on this machine
// with the backend on one core (GOMAXPROCS=1, pinned to CPU 0, like the
// 1000m limit in production) and PostgreSQL, PgBouncer, Redis and the load
// generator on the other, measures the raw ceilings of the same machine in
// the same run (an empty Go handler, pgbench -S through PgBouncer, Redis
// GET, the storage's write-and-flush latency), runs the scenarios, and
// writes docs/BENCHMARKS.md with every figure and each scenario as a ratio
// to its ceiling.
//
// The dataset (1,000,000 patients by default, a year of appointments, beds)
// is built once into the data directory and reused.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/demo"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/loadgen"
	"github.com/hospital-erp/hospital-erp/internal/localpg"
	"github.com/hospital-erp/hospital-erp/internal/postgres/explain"
	"github.com/hospital-erp/hospital-erp/internal/testenv"
)

type options struct {
	dir, out, bin       string
	patients, beds, prs int
	duration            time.Duration
	quick, profile      bool
	serve, render       bool
	plansOnly, keepData bool
	only                string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "empty-server" {
		emptyServer(os.Args[2])
		return
	}
	var o options
	flag.StringVar(&o.dir, "dir", ".bench", "data directory (the dataset is built once and kept)")
	flag.StringVar(&o.out, "out", "docs/BENCHMARKS.md", "report to write")
	flag.StringVar(&o.bin, "bin", "bin/hospital-erp", "the hospital-erp binary to measure")
	flag.IntVar(&o.patients, "patients", 1_000_000, "patients in the dataset")
	flag.IntVar(&o.prs, "practitioners", 200, "outpatient practitioners (each with a year of appointments)")
	flag.IntVar(&o.beds, "beds", 40_000, "beds for the admission scenario")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "length of each measured run")
	flag.BoolVar(&o.quick, "quick", false, "small dataset and short runs (checks the tool, not the system)")
	flag.BoolVar(&o.profile, "profile", false, "also record a CPU and an allocation profile of the backend under each scenario (in the data directory)")
	flag.BoolVar(&o.render, "render", false, "only rewrite the report from the last run's results (after editing tools/bench/analysis.md)")
	flag.BoolVar(&o.serve, "serve", false, "start the measured stack and wait (until Ctrl-C) instead of measuring: for profiling by hand")
	flag.BoolVar(&o.keepData, "keep-data", false, "measure the dataset as earlier runs left it, instead of a fresh copy of it as built")
	flag.BoolVar(&o.plansOnly, "plans", false, "only measure the query plans again on the kept dataset and rewrite the report (after a migration)")
	flag.StringVar(&o.only, "only", "", "run only these scenarios (comma-separated: read, search, book, admit, fanout)")
	flag.Parse()
	if o.quick {
		o.patients, o.prs, o.beds, o.duration = 20_000, 10, 2_000, 3*time.Second
	}
	if o.render {
		fail(render(o))
		return
	}
	// This process is the load generator, on the core it shares with the
	// database: collecting garbage four times less often leaves that core more.
	debug.SetGCPercent(400)
	// Everything but the backend runs on CPU 1: re-run pinned there (children inherit it).
	if os.Getenv("BENCH_PINNED") != "1" {
		if runtime.NumCPU() < 2 {
			fail(errors.New("bench needs two CPUs: one for the backend, one for everything else"))
		}
		self, err := os.Executable()
		fail(err)
		cmd := exec.Command("taskset", append([]string{"-c", "1", self}, os.Args[1:]...)...)
		cmd.Env = append(os.Environ(), "BENCH_PINNED=1", "BENCH_CPUS="+strconv.Itoa(runtime.NumCPU()))
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fail(err)
	}
}

// resultsFile is where a run keeps its raw results: one per dataset, so a
// quick run does not replace the full run's.
func resultsFile(o options) string {
	if o.quick {
		return filepath.Join(o.dir, "benchquick-results.json")
	}
	return filepath.Join(o.dir, "bench-results.json")
}

// lastResults reads the last run's raw results.
func lastResults(o options) (report, error) {
	var r report
	b, err := os.ReadFile(resultsFile(o))
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	r.Options = o
	return r, err
}

// render rewrites the report from the last run's raw results.
func render(o options) error {
	r, err := lastResults(o)
	if err != nil {
		return err
	}
	return os.WriteFile(o.out, []byte(r.markdown()), 0o644)
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

type stack struct {
	pg       *localpg.Server
	pgb      *testenv.PgBouncer
	redis    *testenv.Redis
	appPass  string
	api      *exec.Cmd
	apiURL   string
	debugURL string            // metrics and pprof of the backend
	logins   map[string]string // username -> password
	report   report
	disk     *diskWatch // nil: the database's device is not watched
	dir, bin string
	dbName   string
}

func run(ctx context.Context, o options) error {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	_ = os.Chmod(dir, 0o755) // PostgreSQL runs as its own user when we are root
	s := &stack{dir: dir, bin: o.bin}
	s.report.Started = time.Now().UTC()
	s.report.Options = o
	say("PostgreSQL (CPU 1, shared_buffers 1GB, fsync and synchronous_commit on)")
	s.pg, err = localpg.Start(ctx, localpg.Options{DataDir: filepath.Join(dir, "pg"), Log: logTo(dir, "postgres.log"),
		// Checkpoint settings spelled out: on the command line they also
		// override an ALTER SYSTEM left in the kept data directory by hand
		// (one was, for a session's runs). PostgreSQL's defaults, as the
		// report says; docs/operations.md recommends more for production.
		Settings: []string{"shared_buffers=1GB", "max_connections=300", "work_mem=16MB", "shared_preload_libraries=pg_stat_statements",
			"max_wal_size=1GB", "checkpoint_timeout=5min"}})
	if err != nil {
		return err
	}
	defer s.pg.Stop()
	if err := s.dataset(ctx, o); err != nil {
		return err
	}
	say("PgBouncer (transaction pooling) and Redis (CPU 1)")
	// PgBouncer's and Redis's working directories are the run's own,
	// removed after it (runs left a directory of each behind).
	bdir, err := runDir(dir, "pgbouncer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bdir)
	if s.pgb, err = testenv.StartPgBouncer(bdir, s.pg, 20, map[string]string{"hospital_api": s.appPass}); err != nil {
		return err
	}
	defer s.pgb.Stop()
	rdir, err := runDir(dir, "redis-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(rdir)
	if s.redis, err = testenv.StartRedis(rdir); err != nil {
		return err
	}
	defer s.redis.Stop()
	if o.serve {
		if err := s.startAPI(ctx); err != nil {
			return err
		}
		defer s.stopAPI()
		say("backend %s (pprof and metrics at %s); logins in %s; Ctrl-C stops", s.apiURL, s.debugURL, filepath.Join(dir, s.dbName+"-logins.txt"))
		say("PgBouncer %s", s.pgb.UserURL("hospital_api", s.appPass, s.dbName))
		<-ctx.Done()
		return nil
	}
	if o.plansOnly {
		return s.plansAgain(ctx, o)
	}
	if err := s.ceilings(ctx, o); err != nil {
		return err
	}
	if err := s.startAPI(ctx); err != nil {
		return err
	}
	defer s.stopAPI()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	s.disk = watchDisk(wctx, filepath.Join(dir, "pg"))
	if err := s.scenarios(ctx, o); err != nil {
		return err
	}
	s.peakSince("end", false)
	for _, m := range s.report.MemoryBy {
		s.report.Memory = max(s.report.Memory, m.MiB)
	}
	s.stopAPI()
	// The plans are taken on the dataset as the scenarios leave it: on a
	// fresh one the audit table is empty at the start, and a plan over
	// nine rows says nothing about the millions a day of load writes.
	if err := s.plans(ctx); err != nil {
		return err
	}
	if err := s.endCounts(ctx); err != nil {
		return err
	}
	if s.report.StartToReady, err = s.timeStart(ctx); err != nil {
		return err
	}
	s.stopAPI()
	s.report.Finished = time.Now().UTC()
	if err := os.WriteFile(resultsFile(o), must(json.MarshalIndent(s.report, "", "  ")), 0o644); err != nil {
		return err
	}
	say("writing %s", o.out)
	return os.WriteFile(o.out, []byte(s.report.markdown()), 0o644)
}

func must[T any](v T, err error) T {
	fail(err)
	return v
}

func logTo(dir, name string) io.Writer {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return io.Discard
	}
	return f
}

// dataset builds the benchmark database once: the demo hospital (users,
// wards, clinics), the patients, a year of appointments and the beds.
func (s *stack) dataset(ctx context.Context, o options) error {
	db := "bench"
	if o.quick {
		db = "benchquick"
	}
	marker := filepath.Join(s.dir, db+".ready")
	logins := filepath.Join(s.dir, db+"-logins.txt") // one per dataset: each has its own demo passwords
	_, built := os.Stat(marker)
	if built == nil && !o.keepData && !o.plansOnly && !o.serve {
		restored, err := s.restoreSeeded(ctx, db)
		if err != nil {
			return err
		}
		s.report.FromSeeded = restored
		if !restored {
			say("this dataset has no copy as built (older bench): measuring it as earlier runs left it; delete %s for a fresh one", s.dir)
		}
	}
	if err := s.pg.CreateDatabase(ctx, db); err != nil {
		return err
	}
	superURL := s.pg.URL(db)
	s.dbName = db
	if built != nil {
		say("building the dataset (once): demo hospital, %d patients, %d practitioners' appointments, %d beds", o.patients, o.prs, o.beds)
		// The demo hospital, loaded by `dev` against this database.
		port, _ := localpg.FreePort()
		dev := exec.CommandContext(ctx, s.bin, "dev")
		dev.Env = append(os.Environ(), "DATABASE_URL="+superURL, "DATA_DIR="+filepath.Join(s.dir, "dev"),
			"LISTEN_ADDR=127.0.0.1:"+strconv.Itoa(port), "METRICS_ADDR=off", "HOSPITAL_TIMEZONE=Europe/London")
		dev.Stdout, dev.Stderr = logTo(s.dir, "dev.log"), logTo(s.dir, "dev.log")
		if err := dev.Start(); err != nil {
			return err
		}
		err := waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/health/ready", port), 2*time.Minute)
		_ = dev.Process.Signal(syscall.SIGTERM)
		_ = dev.Wait()
		if err != nil {
			return fmt.Errorf("demo hospital: %w (see %s/dev.log)", err, s.dir)
		}
		if err := os.Rename(filepath.Join(s.dir, "dev", "demo-logins.txt"), logins); err != nil {
			return fmt.Errorf("demo logins: %w", err)
		}
		seed := exec.CommandContext(ctx, s.bin, "seed", "--patients", strconv.Itoa(o.patients), "--practitioners", strconv.Itoa(o.prs),
			"--past-days", "180", "--future-days", "28", "--beds", strconv.Itoa(o.beds))
		seed.Env = append(os.Environ(), "DATABASE_URL="+superURL, "HOSPITAL_TIMEZONE=Europe/London")
		seed.Stdout, seed.Stderr = os.Stdout, os.Stderr
		start := time.Now()
		if err := seed.Run(); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		conn, err := pgx.Connect(ctx, superURL)
		if err != nil {
			return err
		}
		_, err = conn.Exec(ctx, "VACUUM ANALYZE")
		conn.Close(ctx)
		if err != nil {
			return err
		}
		if err := s.keepSeeded(ctx, db); err != nil {
			return err
		}
		s.report.FromSeeded = true
		_ = os.WriteFile(marker, []byte(time.Since(start).String()), 0o644)
	}
	// A dataset built by an older version gets this version's schema.
	mig := exec.CommandContext(ctx, s.bin, "migrate")
	mig.Env = append(os.Environ(), "DATABASE_URL="+superURL)
	mig.Stdout, mig.Stderr = logTo(s.dir, "migrate.log"), logTo(s.dir, "migrate.log")
	if err := mig.Run(); err != nil {
		return fmt.Errorf("migrate the dataset: %w (see %s/migrate.log)", err, s.dir)
	}
	var err error
	if s.logins, err = readLogins(logins); err != nil {
		return err
	}
	pw := filepath.Join(s.dir, "app.password")
	if b, err := os.ReadFile(pw); err == nil {
		s.appPass = strings.TrimSpace(string(b))
	} else {
		s.appPass = localpg.RandomPassword()
		_ = os.WriteFile(pw, []byte(s.appPass), 0o600)
	}
	if _, err := s.pg.EnsureLoginRole(ctx, "hospital_api", s.appPass, "hospital_app", db); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, superURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	// A kept dataset carries the previous run's dead rows (cancelled
	// bookings, discharged admissions): vacuum them now, so that autovacuum
	// does not take the database's core in the middle of a measurement
	// (seen: a tenth of it during a read trial). About 15 s.
	if _, err := conn.Exec(ctx, "VACUUM (ANALYZE)"); err != nil {
		return err
	}
	s.report.Data, err = countData(ctx, conn)
	return err
}

// countData counts what the dataset holds.
func countData(ctx context.Context, conn *pgx.Conn) (dataCounts, error) {
	var d dataCounts
	err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM patients), (SELECT count(*) FROM appointments),
		(SELECT count(*) FROM beds), (SELECT count(*) FROM audit_events), pg_database_size(current_database())`).Scan(
		&d.Patients, &d.Appointments, &d.Beds, &d.AuditRows, &d.Bytes)
	return d, err
}

// readLogins reads the dataset's demo logins: username -> password.
func readLogins(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	logins, err := demo.ReadLogins(f)
	out := map[string]string{}
	for _, l := range logins {
		out[l.Username] = l.Password
	}
	return out, err
}

func waitHTTP(ctx context.Context, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready within %s", url, limit)
}

// startAPI starts `hospital-erp api` on CPU 0 with GOMAXPROCS=1 through
// PgBouncer and Redis.
func (s *stack) startAPI(ctx context.Context) error {
	port, err := localpg.FreePort()
	if err != nil {
		return err
	}
	keys := filepath.Join(s.dir, "jwt.pem")
	if _, err := os.Stat(keys); err != nil {
		k, err := identity.GenerateKeyPEM()
		if err != nil {
			return err
		}
		_ = os.WriteFile(keys, []byte(k), 0o600)
	}
	pem, _ := os.ReadFile(keys)
	db := s.dbName
	s.apiURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	mport, err := localpg.FreePort()
	if err != nil {
		return err
	}
	s.debugURL = fmt.Sprintf("http://127.0.0.1:%d", mport)
	env := append(os.Environ(),
		"GOMAXPROCS=1",
		"DATABASE_URL="+s.pgb.UserURL("hospital_api", s.appPass, db),
		"DATABASE_MAX_CONNS=20",
		"REDIS_URL=redis://"+s.redis.Addr(),
		"JWT_PRIVATE_KEYS="+string(pem),
		"MFA_ENCRYPTION_KEY="+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		"LISTEN_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"METRICS_ADDR="+strings.TrimPrefix(s.debugURL, "http://"),
		"DEBUG_PPROF=true",
		"HOSPITAL_TIMEZONE=Europe/London",
		// The load comes from one address and a handful of users; the
		// fan-out's 1,000 clients are one nurse.
		"RATE_LIMIT_IP=10000000/1m", "RATE_LIMIT_USER=10000000/1m", "RATE_LIMIT_LOGIN=10000000/1m",
		"EVENT_STREAMS_PER_USER=100000", "EVENT_STREAMS=100000",
	)
	cmd := exec.CommandContext(ctx, "taskset", "-c", "0", s.bin, "api")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logTo(s.dir, "api.log"), logTo(s.dir, "api.log")
	if err := cmd.Start(); err != nil {
		return err
	}
	s.api = cmd
	return waitHTTP(ctx, s.apiURL+"/health/ready", time.Minute)
}

func (s *stack) stopAPI() {
	if s.api != nil && s.api.ProcessState == nil {
		_ = s.api.Process.Signal(syscall.SIGTERM)
		_ = s.api.Wait()
	}
}

// timeStart measures start to ready on the migrated database.
func (s *stack) timeStart(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	if err := s.startAPI(ctx); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// runDir makes a new working directory under dir for one run of a server,
// readable by others (PgBouncer runs as the PostgreSQL user when the bench
// runs as root).
func runDir(dir, prefix string) (string, error) {
	d, err := os.MkdirTemp(dir, prefix)
	if err == nil {
		err = os.Chmod(d, 0o755)
	}
	return d, err
}

// peakSince records the backend's peak resident memory since the last
// call under phase (a scenario's trials, or the time before one), and
// starts a new peak (clear_refs 5 resets VmHWM).
func (s *stack) peakSince(phase string, scenario bool) {
	pid := s.api.Process.Pid
	s.report.MemoryBy = append(s.report.MemoryBy, phasePeak{Phase: phase, Scenario: scenario, MiB: residentMiB(pid)})
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

func residentMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// emptyServer is the ceiling of Go's HTTP stack on one core.
func emptyServer(addr string) {
	ln, err := net.Listen("tcp", addr)
	fail(err)
	fail(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	})))
}

// ceilings measures the machine: an empty Go handler on CPU 0 driven by
// the load generator, pgbench -S through PgBouncer, an 8 KB write and
// fdatasync in the data directory, redis-benchmark GET.
func (s *stack) ceilings(ctx context.Context, o options) error {
	say("ceiling: empty Go HTTP handler on CPU 0, GOMAXPROCS=1")
	port, _ := localpg.FreePort()
	self, _ := os.Executable()
	srv := exec.CommandContext(ctx, "taskset", "-c", "0", self, "empty-server", "127.0.0.1:"+strconv.Itoa(port))
	srv.Env = append(os.Environ(), "GOMAXPROCS=1")
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitHTTP(ctx, url, 10*time.Second); err != nil {
		return err
	}
	c := newClient(url)
	_, best, err := loadgen.FindMax(ctx, func() (loadgen.Scenario, error) { return &getScenario{c: c, path: "/"}, nil },
		5*time.Millisecond, 1000, 80000, o.duration/2, nil, os.Stdout)
	if err != nil {
		s.report.Notes = append(s.report.Notes, "empty handler: "+err.Error())
	}
	if best != nil {
		s.report.Ceilings.HTTP = *best
	}

	say("ceiling: pgbench -S through PgBouncer (16 clients, from CPU 0)")
	bin, err := localpg.FindBinDir()
	if err != nil {
		return err
	}
	if err := s.pg.CreateDatabase(ctx, "pgbench"); err != nil {
		return err
	}
	env := append(os.Environ(), "PGPASSWORD="+s.pg.Password)
	pgbURL := strings.Replace(s.pgb.URL("pgbench"), "?sslmode=disable", "", 1)
	ini := exec.CommandContext(ctx, filepath.Join(bin, "pgbench"), "-i", "-q", "-s", "10", s.pg.URL("pgbench"))
	ini.Env = env
	if b, err := ini.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %v\n%s", err, b)
	}
	pb := exec.CommandContext(ctx, "taskset", "-c", "0", filepath.Join(bin, "pgbench"), "-S", "-c", "16", "-j", "1", "-T",
		strconv.Itoa(int(max(o.duration/time.Second, 3))), "-n", pgbURL+"?sslmode=disable")
	pb.Env = env
	b, err := pb.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgbench -S: %v\n%s", err, b)
	}
	if m := regexp.MustCompile(`tps = ([0-9.]+)`).FindSubmatch(b); m != nil {
		s.report.Ceilings.PgbenchTPS, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := regexp.MustCompile(`latency average = ([0-9.]+) ms`).FindSubmatch(b); m != nil {
		s.report.Ceilings.PgbenchLatencyMS, _ = strconv.ParseFloat(string(m[1]), 64)
	}

	say("ceiling: 8 KB write and fdatasync on the database's file system, one writer")
	if sc, err := measureSync(o.dir, max(o.duration/2, 2*time.Second)); err != nil {
		s.report.Notes = append(s.report.Notes, "fdatasync ceiling: "+err.Error())
	} else {
		s.report.Ceilings.Sync = sc
	}

	say("ceiling: redis-benchmark GET (32 clients, from CPU 0)")
	rb := exec.CommandContext(ctx, "taskset", "-c", "0", "redis-benchmark", "-p", strconv.Itoa(s.redis.Port), "-t", "get",
		"-n", "300000", "-c", "32", "-q")
	b, err = rb.CombinedOutput()
	if err != nil {
		return fmt.Errorf("redis-benchmark: %v\n%s (apt-get install redis-tools)", err, b)
	}
	if m := regexp.MustCompile(`GET: ([0-9.]+) requests per second`).FindSubmatch(b); m != nil {
		s.report.Ceilings.RedisGetPerSec, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	return nil
}

func newClient(url string) *client.Client {
	tr := &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: 90 * time.Second}
	return client.New(url, &http.Client{Transport: tr, Timeout: 30 * time.Second})
}

type getScenario struct {
	c    *client.Client
	path string
}

func (g *getScenario) Name() string { return "empty handler" }
func (g *getScenario) Next() loadgen.Op {
	return func(ctx context.Context) error {
		_, err := g.c.Do(ctx, http.MethodGet, g.path, nil, nil)
		return err
	}
}

// scenarios runs the system's scenarios against the backend.
func (s *stack) scenarios(ctx context.Context, o options) error {
	anon := newClient(s.apiURL)
	login := func(user string) (*client.Client, string, error) {
		pw, ok := s.logins[user]
		if !ok {
			return nil, "", fmt.Errorf("no demo login %s", user)
		}
		tok, err := anon.Login(ctx, user, pw)
		if err != nil {
			return nil, "", fmt.Errorf("sign in %s: %w", user, err)
		}
		return anon.WithToken(tok.AccessToken), tok.AccessToken, nil
	}
	var (
		desk, nurse *client.Client
		nurseToken  string
	)
	type plan struct {
		name  string
		bound time.Duration
		lo    float64
		hi    float64
		make  func() (loadgen.Scenario, error)
		after func() error
	}
	// Access tokens live minutes and a scenario's trials and clean-ups take
	// longer: every trial and clean-up signs in afresh.
	fresh := func() (err error) {
		if desk, _, err = login("reception"); err != nil {
			return err
		}
		nurse, nurseToken, err = login("nurse.lindqvist")
		return err
	}
	var admit *loadgen.Admit
	plans := []plan{
		{"read", 15 * time.Millisecond, 200, 20000, func() (loadgen.Scenario, error) {
			if err := fresh(); err != nil {
				return nil, err
			}
			return loadgen.NewRead(ctx, desk, 5000, 1)
		}, nil},
		{"search", 20 * time.Millisecond, 50, 5000, func() (loadgen.Scenario, error) {
			if err := fresh(); err != nil {
				return nil, err
			}
			return loadgen.NewSearch(desk, 1, min(o.patients, 100000)), nil
		}, nil},
		{"book", 30 * time.Millisecond, 100, 10000, func() (loadgen.Scenario, error) {
			if err := fresh(); err != nil {
				return nil, err
			}
			if err := s.freeSlots(ctx); err != nil {
				return nil, err
			}
			return loadgen.NewBook(ctx, desk, 28, 42)
		}, nil},
		{"admit", 30 * time.Millisecond, 50, 5000, func() (loadgen.Scenario, error) {
			if err := fresh(); err != nil {
				return nil, err
			}
			if admit != nil {
				if err := admit.Cleanup(ctx, 16, nurse); err != nil {
					return nil, err
				}
			}
			var err error
			admit, err = loadgen.NewAdmit(ctx, desk, int(5000*o.duration.Seconds()))
			return admit, err
		}, func() error {
			if admit == nil {
				return nil
			}
			say("discharging the admission scenario's patients")
			if err := fresh(); err != nil {
				return err
			}
			return admit.Cleanup(ctx, 16, nurse)
		}},
	}
	wanted := func(name string) bool {
		return o.only == "" || strings.Contains(","+o.only+",", ","+name+",")
	}
	for _, p := range plans {
		if !wanted(p.name) {
			continue
		}
		say("scenario %s: highest rate with p95 under %v", p.name, p.bound)
		s.peakSince(p.name+" (before)", false)
		// A trial during which the database's storage completed no write
		// for longer than the bound is measured again: every read waits
		// for its audit row's commit, every command for its own, so such
		// a trial measured the disk, not the system.
		stalled := func(r loadgen.Result) bool { return s.disk.trialStall(r) > p.bound }
		trials, best, err := loadgen.FindMax(ctx, p.make, p.bound, p.lo, p.hi, o.duration, stalled, os.Stdout)
		if err == nil && len(trials) > 0 {
			// At the highest throughput any trial sustained, whichever its
			// latency: the saturated resource shows.
			top := 0.0
			for _, t := range trials {
				top = max(top, t.Throughput)
			}
			u, aerr := s.account(ctx, p.name, p.make, math.Round(top), o.duration)
			if aerr != nil {
				return aerr
			}
			s.report.CPU = append(s.report.CPU, u)
		}
		s.peakSince(p.name, true)
		if p.after != nil {
			if aerr := p.after(); aerr != nil && err == nil {
				err = aerr
			}
		}
		if err != nil {
			s.report.Notes = append(s.report.Notes, fmt.Sprintf("%s: %v", p.name, err))
			say("%s: %v", p.name, err)
		}
		if len(trials) > 0 {
			r := scenarioResult{Name: p.name, Bound: p.bound.String(), Trials: trials, Best: best}
			s.disk.stallsOf(&r)
			s.report.Scenarios = append(s.report.Scenarios, r)
		}
		if o.profile && p.name != "admit" {
			rate := p.lo
			if best != nil {
				rate = best.Rate
			}
			if err := s.profileUnder(ctx, p.name, p.make, rate); err != nil {
				return err
			}
		}
	}
	if !wanted("fanout") {
		return nil
	}
	say("scenario fan-out: 1000 bed-board WebSocket clients")
	if err := fresh(); err != nil {
		return err
	}
	a, err := loadgen.NewAdmit(ctx, desk, 1)
	if err != nil {
		return err
	}
	s.peakSince("fanout (before)", false)
	fan, err := loadgen.Fanout(ctx, nurse, a.FirstBed(), loadgen.FanoutOptions{URL: s.apiURL, Token: nurseToken, Subscribers: 1000,
		Events: 40, Gap: 50 * time.Millisecond})
	if err != nil {
		return err
	}
	s.peakSince("fanout", true)
	s.report.Fanout = fan
	return nil
}

// freeSlots cancels the future appointments earlier trials and runs booked
// (as the benchmark's receptionist, still booked), so every trial books among
// the same free slots instead of running out. (Cancelling, not deleting:
// deleting would check every admission for a reference to each row.)
func (s *stack) freeSlots(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.pg.URL(s.dbName))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `UPDATE appointments
		SET status = 'cancelled', cancel_reason = 'benchmark: slot freed for the next trial', version = version + 1, updated_at = now()
		WHERE created_by = (SELECT id FROM users WHERE username = 'reception') AND starts_at > now() AND status = 'booked'`)
	return err
}

// profileUnder records 10 s CPU and allocation profiles of the backend
// while the scenario runs at rate.
func (s *stack) profileUnder(ctx context.Context, name string, newScenario func() (loadgen.Scenario, error), rate float64) error {
	sc, err := newScenario()
	if err != nil {
		return err
	}
	say("profiling %s at %.0f/s", name, rate)
	done := make(chan error, 1)
	go func() {
		done <- fetch(ctx, s.debugURL+"/debug/pprof/profile?seconds=10", filepath.Join(s.dir, name+".cpu.pprof"))
	}()
	loadgen.Run(ctx, sc, loadgen.Options{Rate: rate, Duration: 11 * time.Second, MaxInFlight: 1000})
	if err := <-done; err != nil {
		return err
	}
	return fetch(ctx, s.debugURL+"/debug/pprof/allocs", filepath.Join(s.dir, name+".allocs.pprof"))
}

func fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// Every run starts from the dataset as it was built: each run adds a
// million or more audit rows, and appointments and admissions, and the
// cost of every audited write grows with the audit table's indexes (a
// kept dataset measured read, search and booking 10–20% lower after a
// day of runs). The built dataset is kept as a second database, copied
// file by file; --keep-data measures the dataset as earlier runs left it.
func seededName(db string) string { return db + "_seeded" }

// keepSeeded keeps a copy of the freshly built dataset db.
func (s *stack) keepSeeded(ctx context.Context, db string) error {
	_, err := s.pg.CopyDatabase(ctx, db, seededName(db))
	return err
}

// restoreSeeded replaces db with a copy of the dataset as built, if one
// was kept; it reports whether it did.
func (s *stack) restoreSeeded(ctx context.Context, db string) (bool, error) {
	restored, err := s.pg.CopyDatabase(ctx, seededName(db), db)
	if restored {
		say("the dataset as built: a fresh copy of %s", seededName(db))
	}
	return restored, err
}

// endCounts records what the run leaves behind.
func (s *stack) endCounts(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.pg.URL(s.dbName))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	s.report.DataEnd, err = countData(ctx, conn)
	return err
}

// plansAgain measures the plans again on the kept dataset and rewrites the
// last run's report with them.
func (s *stack) plansAgain(ctx context.Context, o options) error {
	last, err := lastResults(o)
	if err != nil {
		return err
	}
	if err := s.plans(ctx); err != nil {
		return err
	}
	// The data counts stay the run's: the report gives them as what the
	// run left behind.
	last.Plans = s.report.Plans
	if err := os.WriteFile(resultsFile(o), must(json.MarshalIndent(last, "", "  ")), 0o644); err != nil {
		return err
	}
	say("writing %s", o.out)
	return os.WriteFile(o.out, []byte(last.markdown()), 0o644)
}

// plans runs the main queries with EXPLAIN (ANALYZE, BUFFERS) on the
// dataset, twice (the second run shows the warm cache).
func (s *stack) plans(ctx context.Context) error {
	say("query plans: EXPLAIN (ANALYZE, BUFFERS) of the main queries")
	conn, err := pgx.Connect(ctx, s.pg.URL(s.dbName))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	sample, err := explain.LoadSample(ctx, conn, "Europe/London")
	if err != nil {
		return err
	}
	for range 2 {
		r := &explain.Recorder{Conn: conn, Analyze: true}
		explain.MainQueries(ctx, r, sample)
		if r.Err != nil {
			return r.Err
		}
		s.report.Plans = r.Plans
	}
	return nil
}
