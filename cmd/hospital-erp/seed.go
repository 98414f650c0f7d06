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

// runSeed bulk-loads synthetic data with COPY, for benchmarks and load
// tests: patients (deterministic for a seed, with accents and common typos
// in names), and optionally outpatient practitioners with a year of
// appointments and wards of beds.
func runSeed(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stdout)
	n := fs.Int("patients", 100000, "patients to add")
	seed := fs.Uint64("seed", 1, "random seed (the same seed gives the same patients)")
	batch := fs.Int("batch", 20000, "rows per COPY")
	practitioners := fs.Int("practitioners", 0, "outpatient practitioners to add, each with a clinic open 08:00-18:00 every day (10-minute slots)")
	pastDays := fs.Int("past-days", 180, "days of past appointments for those practitioners (70% of slots)")
	futureDays := fs.Int("future-days", 28, "days of booked future appointments (30% of slots; the rest stay free)")
	beds := fs.Int("beds", 0, "available beds to add, in wards of 40 (admission benchmarks)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 0 || *batch < 1 || *practitioners < 0 || *pastDays < 0 || *futureDays < 0 || *beds < 0 {
		return fmt.Errorf("seed: counts must not be negative and --batch must be positive")
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
	if *n > 0 {
		fmt.Fprintf(stdout, "\n  %d patients in %s\n", *n, time.Since(start).Round(time.Millisecond))
	}
	if *practitioners == 0 && *beds == 0 {
		return postgres.Analyze(ctx, db.Pool)
	}
	start = time.Now()
	err = demo.SeedScale(ctx, db, rng, cfg.Location, demo.Scale{Practitioners: *practitioners, PastDays: *pastDays,
		FutureDays: *futureDays, Beds: *beds, Progress: func(what string, done, total int) {
			fmt.Fprintf(stdout, "\r  %s %d/%d %s   ", bar(done, total, 30), done, total, what)
		}})
	if err != nil {
		return err
	}
	var appts, bedCount int64
	_ = db.Pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM appointments), (SELECT count(*) FROM beds)").Scan(&appts, &bedCount)
	fmt.Fprintf(stdout, "\n  now %d appointments and %d beds (%s)\n", appts, bedCount, time.Since(start).Round(time.Millisecond))
	return postgres.Analyze(ctx, db.Pool)
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
