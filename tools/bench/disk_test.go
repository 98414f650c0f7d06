package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/loadgen"
)

func TestLongestStall(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w := &diskWatch{samples: []diskSample{
		{at(0), 10, 0},
		{at(50), 12, 1},
		{at(100), 12, 3}, // stalled since 50
		{at(150), 12, 3}, // still: 100 ms
		{at(200), 15, 0}, // progress
		{at(250), 15, 0}, // idle, nothing in flight: not a stall
		{at(300), 15, 2}, // stalled since 250
		{at(350), 16, 0}, // progress: 50 ms
		{at(400), 16, 4}, // stalled since 350...
		{at(450), 16, 4},
		{at(500), 16, 4},
		{at(550), 16, 4}, // ...200 ms, but only partly in the window below
	}}
	for _, c := range []struct {
		from, to int
		want     time.Duration
	}{
		{0, 1000, 200 * time.Millisecond},
		{0, 400, 100 * time.Millisecond},
		{200, 360, 50 * time.Millisecond},
		{200, 260, 0},
		{460, 1000, 100 * time.Millisecond}, // from the window's first sample after progress
	} {
		if got := w.longestStall(at(c.from), at(c.to)); got != c.want {
			t.Errorf("longestStall(%d, %d) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
	var none *diskWatch
	if got := none.longestStall(at(0), at(1000)); got != 0 {
		t.Errorf("an unwatched disk stalled %v", got)
	}
}

func TestStallsInTheTrialsTable(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := watchDisk(ctx, t.TempDir())
	if w == nil {
		t.Skip("the temporary directory's device is not in /proc/diskstats")
	}
	time.Sleep(3 * diskSampleEvery)
	start := time.Now()
	r := scenarioResult{Name: "read", Trials: []loadgen.Result{
		{Scenario: "patient read", Rate: 100, Duration: 1, StartedAt: start},
		{Scenario: "patient read", Rate: 200, Duration: 1, StartedAt: start},
	}}
	w.stallsOf(&r)
	if len(r.DiskStallsMS) != 2 {
		t.Fatalf("stalls of 2 trials: %v", r.DiskStallsMS)
	}
	w.mu.Lock()
	n := len(w.samples)
	w.mu.Unlock()
	if n < 2 {
		t.Fatalf("%d samples in %v", n, 3*diskSampleEvery)
	}
	r.DiskStallsMS = []float64{0, 750}
	rep := report{Scenarios: []scenarioResult{r}}
	md := rep.markdown()
	if !strings.Contains(md, "| longest disk stall ms |") || !strings.Contains(md, "| 0 | 750 |") || !strings.Contains(md, "| 0 | – |") {
		t.Errorf("trials table without its stalls:\n%s", md)
	}
}

// The storage ceiling measures real flushes and orders its percentiles.
func TestMeasureSync(t *testing.T) {
	sc, err := measureSync(t.TempDir(), 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if sc.PerSec <= 0 || sc.P50MS <= 0 || sc.P50MS > sc.P99MS || sc.P99MS > sc.Max {
		t.Fatalf("%+v", sc)
	}
	if s := summarizeSync([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}, time.Second); s.PerSec != 3 || s.P50MS != 2 || s.Max != 3 {
		t.Fatalf("summary of 1, 2, 3 ms in 1 s: %+v", s)
	}
}
