package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"
)

// slow answers every request after a fixed time.
type slow struct{ d time.Duration }

func (s slow) Name() string { return "slow" }
func (s slow) Next() Op {
	return func(ctx context.Context) error {
		time.Sleep(s.d)
		return nil
	}
}

// A rate that keeps up but misses its bound is tried twice; a trial
// disturbed from outside up to four times; then the floor's miss is an
// error naming the p95.
func TestFindMaxRepeatsDisturbedTrials(t *testing.T) {
	newSlow := func() (Scenario, error) { return slow{20 * time.Millisecond}, nil }
	for _, c := range []struct {
		name      string
		disturbed func(Result) bool
		trials    int
	}{
		{"undisturbed", nil, 2},
		{"disturbed", func(Result) bool { return true }, 4},
		{"disturbed once", func() func(Result) bool {
			n := 0
			return func(Result) bool { n++; return n == 1 }
		}(), 2},
	} {
		trials, best, err := FindMax(context.Background(), newSlow, 5*time.Millisecond, 50, 100, 300*time.Millisecond, c.disturbed, nil)
		if best != nil || err == nil || !strings.Contains(err.Error(), "misses p95 5ms") {
			t.Errorf("%s: best %v, error %v; want the floor's miss", c.name, best, err)
		}
		if len(trials) != c.trials {
			t.Errorf("%s: %d trials at the floor, want %d", c.name, len(trials), c.trials)
		}
	}
	// Within the bound: no repeats, the bisection climbs.
	trials, best, err := FindMax(context.Background(), newSlow, 200*time.Millisecond, 50, 60, 300*time.Millisecond,
		func(Result) bool { return true }, nil)
	if err != nil || best == nil || len(trials) < 2 || trials[0].Rate != 50 || trials[1].Rate <= 50 {
		t.Errorf("within the bound: %d trials, best %v, error %v", len(trials), best, err)
	}
}
