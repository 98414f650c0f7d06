package loadgen

import (
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
)

// Mix runs several scenarios at once, as a hospital's users do: each
// request is one of its scenarios', chosen at random in proportion to the
// weights, at the run's one rate. Run reports the whole and each scenario
// (Result.Parts), every latency from its scheduled start as for a single
// scenario.
type Mix struct {
	parts   []Scenario
	weights []int
	total   int
	mu      sync.Mutex
	rng     *mrand.Rand
}

// NewMix returns a mix of parts with the given positive weights.
func NewMix(parts []Scenario, weights []int, seed uint64) (*Mix, error) {
	if len(parts) == 0 || len(parts) != len(weights) {
		return nil, fmt.Errorf("mix: %d scenarios, %d weights", len(parts), len(weights))
	}
	m := &Mix{parts: parts, weights: weights, rng: mrand.New(mrand.NewPCG(seed, 13))}
	for _, w := range weights {
		if w <= 0 {
			return nil, fmt.Errorf("mix: weights must be positive")
		}
		m.total += w
	}
	return m, nil
}

// Name implements Scenario.
func (m *Mix) Name() string {
	names := make([]string, len(m.parts))
	for i, p := range m.parts {
		names[i] = fmt.Sprintf("%s %d%%", p.Name(), m.weights[i]*100/m.total)
	}
	return "mix (" + strings.Join(names, ", ") + ")"
}

// Next implements Scenario.
func (m *Mix) Next() Op {
	_, op := m.pick()
	return op
}

// pick chooses the next request's scenario by weight.
func (m *Mix) pick() (int, Op) {
	m.mu.Lock()
	n := m.rng.IntN(m.total)
	m.mu.Unlock()
	for i, w := range m.weights {
		if n < w {
			return i, m.parts[i].Next()
		}
		n -= w
	}
	return len(m.parts) - 1, m.parts[len(m.parts)-1].Next()
}
