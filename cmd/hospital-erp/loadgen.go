package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/loadgen"
)

// runLoadgen drives a running system through its API at a constant rate
// and reports latency percentiles (docs/BENCHMARKS.md).
func runLoadgen(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stdout)
	url := fs.String("url", "http://localhost:3000", "base URL of the system")
	user := fs.String("user", "reception", "username (a role that needs no MFA, such as a receptionist)")
	scenarios := fs.String("scenario", "search", "comma-separated: search, book")
	rate := fs.Float64("rate", 200, "requests per second")
	duration := fs.Duration("duration", 30*time.Second, "how long to send")
	inflight := fs.Int("max-in-flight", 512, "requests in flight beyond which new ones are dropped (counted)")
	seed := fs.Uint64("seed", 1, "the --seed the database was seeded with (search looks for those patients)")
	population := fs.Int("population", 100000, "search among the first N seeded patients")
	jsonOut := fs.String("json", "", "write results as JSON to this file")
	mdOut := fs.String("markdown", "", "write results as a Markdown table to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	password := getenv("LOADGEN_PASSWORD")
	if password == "" {
		return fmt.Errorf("loadgen: set LOADGEN_PASSWORD to the password of --user")
	}
	transport := &http.Transport{DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns: 2048, MaxIdleConnsPerHost: 2048, IdleConnTimeout: 90 * time.Second}
	c := client.New(*url, &http.Client{Transport: transport, Timeout: 30 * time.Second})
	tok, err := c.Login(ctx, *user, password)
	if err != nil {
		return fmt.Errorf("loadgen: sign in as %s: %w", *user, err)
	}
	c = c.WithToken(tok.AccessToken)
	var results []loadgen.Result
	for _, name := range strings.Split(*scenarios, ",") {
		var s loadgen.Scenario
		switch strings.TrimSpace(name) {
		case "search":
			s = loadgen.NewSearch(c, *seed, *population)
		case "book":
			b, err := loadgen.NewBook(ctx, c, 28, 42)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "  %d free slots to book\n", b.Slots())
			s = b
		default:
			return fmt.Errorf("loadgen: unknown scenario %q", name)
		}
		// The access token lives minutes; renew before each scenario.
		if tok, err = c.Refresh(ctx, tok.RefreshToken); err == nil {
			c = c.WithToken(tok.AccessToken)
		}
		r := loadgen.Run(ctx, s, loadgen.Options{Rate: *rate, Duration: *duration, MaxInFlight: *inflight, Progress: stdout})
		results = append(results, r)
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
