package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/demo"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/loadgen"
)

// scenarioNames are the scenarios --scenario and --as name.
var scenarioNames = []string{"search", "read", "register", "book", "checkin", "admit", "transfer", "login", "fanout", "mix"}

// runLoadgen drives a running system through its API at a constant rate
// and reports latency percentiles (docs/BENCHMARKS.md).
func runLoadgen(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stdout)
	url := fs.String("url", "http://localhost:3000", "base URL of the system")
	user := fs.String("user", "reception", "username (a role that needs no MFA, such as a receptionist); password in LOADGEN_PASSWORD or --logins")
	loginsFile := fs.String("logins", "", "a demo-logins.txt (ROLE USERNAME PASSWORD NAME, as `make run` writes it): passwords of --user, --housekeeper and --as users")
	asFlag := fs.String("as", "", "run scenarios as other users: scenario=user,... with a username or a role from --logins (read=physician,book=receptionist); the rest run as --user")
	scenarios := fs.String("scenario", "search", "comma-separated: search, read, register, book, checkin (uses up the next day's booked appointments), admit, transfer (admits first, unmeasured), login, fanout, mix (see --mix)")
	mixFlag := fs.String("mix", "read=8,search=2,book=1,checkin=1,login=1", "scenario mix: scenarios run at once, each request chosen by weight (search, read, register, book, checkin, admit, login)")
	rate := fs.Float64("rate", 200, "requests per second")
	duration := fs.Duration("duration", 30*time.Second, "how long to send")
	inflight := fs.Int("max-in-flight", 512, "requests in flight beyond which new ones are dropped (counted)")
	seed := fs.Uint64("seed", 1, "the --seed the database was seeded with (search looks for those patients)")
	population := fs.Int("population", 100000, "search among the first N seeded patients")
	jsonOut := fs.String("json", "", "write results as JSON to this file")
	mdOut := fs.String("markdown", "", "write results as a Markdown table to this file")
	housekeeper := fs.String("housekeeper", "", "a user with bed.write (a nurse; password in LOADGEN_HOUSEKEEPER_PASSWORD): cleans beds after admit, changes beds for fanout; with --logins, its nurse by default")
	findMax := fs.Duration("find-max-p95", 0, "instead of --rate: find the highest rate (up to --max-rate) whose p95 stays under this")
	maxRate := fs.Float64("max-rate", 20000, "upper bound of --find-max-p95")
	subscribers := fs.Int("subscribers", 1000, "fanout: WebSocket clients")
	events := fs.Int("events", 50, "fanout: bed changes to deliver")
	readSample := fs.Int("read-sample", 5000, "read: patients sampled (newest first)")
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's own CPU profile to this file (is the generator the bottleneck?)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The generator trades memory for CPU: it often shares a core with what
	// it measures, and collecting four times less often leaves that more.
	debug.SetGCPercent(400)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	transport := &http.Transport{DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns: 2048, MaxIdleConnsPerHost: 2048, IdleConnTimeout: 90 * time.Second}
	anon := client.New(*url, &http.Client{Transport: transport, Timeout: 30 * time.Second})
	users := &loadgenUsers{anon: anon, getenv: getenv}
	if *loginsFile != "" {
		if err := users.readLogins(*loginsFile); err != nil {
			return err
		}
	}
	mainLogin, err := users.credentials(*user, "--user", "LOADGEN_PASSWORD")
	if err != nil {
		return err
	}
	main, err := users.signIn(ctx, mainLogin)
	if err != nil {
		return err
	}
	runAs := map[string]*signedIn{}
	if *asFlag != "" {
		for _, item := range strings.Split(*asFlag, ",") {
			sc, name, ok := strings.Cut(strings.TrimSpace(item), "=")
			if !ok || !slices.Contains(scenarioNames, sc) || name == "" {
				return fmt.Errorf("loadgen: --as %q: want scenario=user,... with scenarios among %s", *asFlag, strings.Join(scenarioNames, ", "))
			}
			env := ""
			if name == *user {
				env = "LOADGEN_PASSWORD"
			}
			l, err := users.credentials(name, "--as", env)
			if err != nil {
				return err
			}
			if runAs[sc], err = users.signIn(ctx, l); err != nil {
				return err
			}
		}
	}
	// as is the user a scenario runs as: its own --as, else the --as of
	// the mix it is part of, else --user.
	as := func(scenarios ...string) *signedIn {
		for _, sc := range scenarios {
			if s, ok := runAs[sc]; ok {
				return s
			}
		}
		return main
	}
	var hk *signedIn
	switch {
	case *housekeeper != "":
		l, err := users.credentials(*housekeeper, "--housekeeper", "LOADGEN_HOUSEKEEPER_PASSWORD")
		if err != nil {
			return err
		}
		if hk, err = users.signIn(ctx, l); err != nil {
			return err
		}
	case len(users.known) > 0:
		// The logins' nurse (bed.write), when there is one.
		if l, err := users.credentials(identity.RoleNurse, "--housekeeper", ""); err == nil {
			if hk, err = users.signIn(ctx, l); err != nil {
				return err
			}
		}
	}
	var results []loadgen.Result
	for _, name := range strings.Split(*scenarios, ",") {
		name = strings.TrimSpace(name)
		users.refresh(ctx)
		if name == "fanout" {
			if hk == nil {
				return fmt.Errorf("loadgen: fanout needs --housekeeper (a user with bed.write)")
			}
			u := as("fanout")
			a, err := loadgen.NewAdmit(ctx, u.c, 1)
			if err != nil {
				return err
			}
			r, err := loadgen.Fanout(ctx, hk.c, a.FirstBed(), loadgen.FanoutOptions{URL: *url, Token: u.token,
				Subscribers: *subscribers, Events: *events, Gap: 50 * time.Millisecond,
				Progress: func(done, total int) { fmt.Fprintf(stdout, "\r  fan-out %d/%d   ", done, total) }})
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout)
			results = append(results, r)
			continue
		}
		var admit *loadgen.Admit
		// capacity is how many one-off commands (check-ins, admissions,
		// transfers) a run can make: its rate for its duration, with room.
		capacity := func() int {
			if *findMax > 0 {
				return int(*maxRate * duration.Seconds())
			}
			return int(*rate * duration.Seconds() * 1.2)
		}
		var build func(name, mix string) (loadgen.Scenario, error)
		newScenario := func() (loadgen.Scenario, error) {
			if name != "mix" {
				return build(name, "")
			}
			var parts []loadgen.Scenario
			var weights []int
			for _, item := range strings.Split(*mixFlag, ",") {
				part, weight, _ := strings.Cut(strings.TrimSpace(item), "=")
				w, err := strconv.Atoi(weight)
				if err != nil || w <= 0 {
					return nil, fmt.Errorf("loadgen: --mix %q: want name=weight,... with positive weights", *mixFlag)
				}
				if part == "transfer" || part == "fanout" || part == "mix" {
					return nil, fmt.Errorf("loadgen: --mix: %s cannot be part of a mix", part)
				}
				sc, err := build(part, "mix")
				if err != nil {
					return nil, err
				}
				parts, weights = append(parts, sc), append(weights, w)
			}
			return loadgen.NewMix(parts, weights, *seed)
		}
		build = func(name, mix string) (loadgen.Scenario, error) {
			u := as(name, mix)
			c := u.c
			switch name {
			case "search":
				return loadgen.NewSearch(c, *seed, *population), nil
			case "read":
				return loadgen.NewRead(ctx, c, *readSample, *seed)
			case "register":
				return loadgen.NewRegister(c, *seed), nil
			case "login":
				return &loadgen.Login{C: anon, Username: u.login.Username, Password: u.login.Password}, nil
			case "book":
				b, err := loadgen.NewBook(ctx, c, 28, 42)
				if err == nil {
					fmt.Fprintf(stdout, "  %d free slots to book\n", b.Slots())
				}
				return b, err
			case "checkin":
				ci, err := loadgen.NewCheckIn(ctx, c, capacity())
				if err == nil {
					fmt.Fprintf(stdout, "  %d booked appointments to check in\n", ci.Capacity())
				}
				return ci, err
			case "admit":
				a, err := loadgen.NewAdmit(ctx, c, capacity())
				if err == nil {
					fmt.Fprintf(stdout, "  %d free beds and patients to admit\n", a.Capacity())
				}
				admit = a
				return a, err
			case "transfer":
				a, err := loadgen.NewAdmit(ctx, c, capacity())
				if err != nil {
					return nil, err
				}
				// Half the free beds at most, so that each patient has a
				// free bed to move to.
				a.Keep(a.Capacity() / 2)
				admit = a
				fmt.Fprintf(stdout, "  admitting %d patients to transfer (not measured)\n", a.Capacity())
				for range a.Capacity() {
					if err := a.Next()(ctx); err != nil {
						return nil, err
					}
				}
				t, err := loadgen.NewTransfer(ctx, c, a)
				if err == nil {
					fmt.Fprintf(stdout, "  %d transfers to make\n", t.Capacity())
				}
				return t, err
			}
			return nil, fmt.Errorf("loadgen: unknown scenario %q", name)
		}
		cleanup := func() error {
			if admit == nil {
				return nil
			}
			fmt.Fprintf(stdout, "  discharging the load test's admissions\n")
			var cleaner *client.Client
			if hk != nil {
				cleaner = hk.c
			}
			err := admit.Cleanup(ctx, 16, cleaner)
			admit = nil
			return err
		}
		if *findMax > 0 {
			trials, best, err := loadgen.FindMax(ctx, func() (loadgen.Scenario, error) {
				if err := cleanup(); err != nil {
					return nil, err
				}
				return newScenario()
			}, *findMax, 50, *maxRate, *duration, nil, stdout)
			if err != nil {
				return errors.Join(err, cleanup())
			}
			results = append(results, trials...)
			fmt.Fprintf(stdout, "  highest rate with p95 under %v: %.0f/s (p95 %.1f ms)\n", *findMax, best.Throughput, best.LatencyMS.P95)
		} else {
			s, err := newScenario()
			if err != nil {
				// Discharge what the setup admitted before it failed.
				return errors.Join(err, cleanup())
			}
			results = append(results, loadgen.Run(ctx, s, loadgen.Options{Rate: *rate, Duration: *duration, MaxInFlight: *inflight, Progress: stdout}))
		}
		if err := cleanup(); err != nil {
			return err
		}
	}
	md := loadgen.Markdown(results)
	fmt.Fprint(stdout, "\n"+md)
	if *jsonOut != "" {
		if err := os.WriteFile(*jsonOut, loadgen.JSON(results), 0o644); err != nil {
			return err
		}
	}
	if *mdOut != "" {
		if err := os.WriteFile(*mdOut, []byte(md), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// loadgenUsers are the users a load test runs as: their credentials (from
// the environment or a logins file) and their signed-in clients.
type loadgenUsers struct {
	anon     *client.Client
	getenv   func(string) string
	known    []demo.Login
	sessions []*signedIn
}

// signedIn is a user's client and tokens; the token is also the fan-out
// WebSocket clients'.
type signedIn struct {
	login   demo.Login
	c       *client.Client
	token   string
	refresh string
}

func (u *loadgenUsers) readLogins(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("loadgen: --logins: %w", err)
	}
	defer f.Close()
	if u.known, err = demo.ReadLogins(f); err != nil {
		return fmt.Errorf("loadgen: --logins %s: %w", path, err)
	}
	return nil
}

// credentials finds a user's password: the environment variable env's
// when set (for --user and --housekeeper), else the logins file's, by
// username or by role.
func (u *loadgenUsers) credentials(name, flagName, env string) (demo.Login, error) {
	if env != "" {
		if pw := u.getenv(env); pw != "" {
			return demo.Login{Username: name, Password: pw}, nil
		}
	}
	for _, l := range u.known {
		if l.Username == name {
			return l, nil
		}
	}
	for _, l := range u.known {
		if l.Role == name {
			return l, nil
		}
	}
	if env != "" {
		return demo.Login{}, fmt.Errorf("loadgen: no password for %s %s: set %s or give --logins", flagName, name, env)
	}
	return demo.Login{}, fmt.Errorf("loadgen: %s %s: no such username or role in --logins", flagName, name)
}

// signIn signs l in, once per user.
func (u *loadgenUsers) signIn(ctx context.Context, l demo.Login) (*signedIn, error) {
	for _, s := range u.sessions {
		if s.login.Username == l.Username {
			return s, nil
		}
	}
	tok, err := u.anon.Login(ctx, l.Username, l.Password)
	if err != nil {
		return nil, fmt.Errorf("loadgen: sign in as %s: %w", l.Username, err)
	}
	s := &signedIn{login: l, c: u.anon.WithToken(tok.AccessToken), token: tok.AccessToken, refresh: tok.RefreshToken}
	u.sessions = append(u.sessions, s)
	return s, nil
}

// refresh renews every user's access token (it lives minutes): before each
// scenario. A user whose refresh fails keeps the token it has.
func (u *loadgenUsers) refresh(ctx context.Context) {
	for _, s := range u.sessions {
		if tok, err := u.anon.Refresh(ctx, s.refresh); err == nil {
			s.c, s.token, s.refresh = u.anon.WithToken(tok.AccessToken), tok.AccessToken, tok.RefreshToken
		}
	}
}
