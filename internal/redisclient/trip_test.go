package redisclient

import (
	"testing"

	"github.com/sony/gobreaker/v2"
)

func TestReadyToTrip(t *testing.T) {
	for _, c := range []struct {
		name string
		in   gobreaker.Counts
		want bool
	}{
		{"Redis down, light traffic", gobreaker.Counts{Requests: 5, TotalFailures: 5, ConsecutiveFailures: 5}, true},
		{"Redis down, busy window", gobreaker.Counts{Requests: 9000, TotalSuccesses: 4400, TotalFailures: 4600, ConsecutiveFailures: 4600}, true},
		{"overloaded backend: a burst of late reads among many answers", gobreaker.Counts{Requests: 14000, TotalSuccesses: 13500, TotalFailures: 500, ConsecutiveFailures: 500}, false},
		{"too few to say", gobreaker.Counts{Requests: 4, TotalFailures: 4, ConsecutiveFailures: 4}, false},
		{"excluded commands do not dilute failures", gobreaker.Counts{Requests: 100, TotalExclusions: 90, TotalSuccesses: 4, TotalFailures: 6}, true},
	} {
		if got := readyToTrip(c.in); got != c.want {
			t.Errorf("%s: readyToTrip = %v, want %v", c.name, got, c.want)
		}
	}
}
