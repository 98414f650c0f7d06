package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/config"
	"github.com/hospital-erp/hospital-erp/internal/demo"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
)

// runSeed bulk-loads synthetic patients with COPY, for benchmarks and load
// tests: deterministic for a seed, with accents and common typos in names.
func runSeed(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stdout)
	n := fs.Int("patients", 100000, "patients to add")
	seed := fs.Uint64("seed", 1, "random seed (the same seed gives the same patients)")
	batch := fs.Int("batch", 20000, "rows per COPY")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *batch < 1 {
		return fmt.Errorf("seed: --patients and --batch must be positive")
	}
	cfg, err := loadConfig(config.CmdSeed, getenv, nil)
	if err != nil {
		return err
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{MaxConns: 2, StatementTimeout: time.Hour, ConnectTimeout: cfg.DatabaseConnectRetry})
	if err != nil {
		return err
	}
	defer db.Close()
	rng := mrand.New(mrand.NewPCG(*seed, 2))
	start := time.Now()
	for done := 0; done < *n; {
		size := min(*batch, *n-done)
		if err := demo.CopyPatients(ctx, db, size, rng); err != nil {
			return err
		}
		done += size
		elapsed := time.Since(start)
		rate := float64(done) / elapsed.Seconds()
		fmt.Fprintf(stdout, "\r  %s %d/%d patients  %.0f/s  eta %s   ", bar(done, *n, 30), done, *n, rate,
			(time.Duration(float64(*n-done)/rate) * time.Second).Round(time.Second))
	}
	fmt.Fprintf(stdout, "\n  %d patients in %s\n", *n, time.Since(start).Round(time.Millisecond))
	return nil
}

func bar(done, total, width int) string {
	filled := done * width / total
	b := make([]byte, width)
	for i := range b {
		if i < filled {
			b[i] = '#'
		} else {
			b[i] = '.'
		}
	}
	return "[" + string(b) + "]"
}
