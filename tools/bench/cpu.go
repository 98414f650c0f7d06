package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/loadgen"
)

// components are the processes whose CPU is accounted, by name.
var components = []string{"backend", "PostgreSQL", "PgBouncer", "Redis", "load generator"}

// cpuSnap is a moment's CPU counters: busy and total ticks of each CPU,
// and the ticks each component's processes have used.
type cpuSnap struct {
	busy, total []uint64
	used        map[string]uint64
}

// cpuUse is where the CPU went during one run at a fixed rate.
type cpuUse struct {
	Scenario   string             `json:"scenario"`
	Rate       float64            `json:"rate"`
	Throughput float64            `json:"throughput"`
	P95        float64            `json:"p95_ms"`
	Busy       []float64          `json:"cpu_busy_percent"` // per CPU, every process and the kernel
	PerRequest map[string]float64 `json:"cpu_us_per_request"`
}

func snapCPU(apiPID int) cpuSnap {
	s := cpuSnap{used: map[string]uint64{}}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 8 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
				continue
			}
			var busy, total uint64
			for i, v := range f[1:] {
				n, _ := strconv.ParseUint(v, 10, 64)
				total += n
				if i != 3 && i != 4 { // idle, iowait
					busy += n
				}
			}
			s.busy, s.total = append(s.busy, busy), append(s.total, total)
		}
	}
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		st := string(b)
		open, end := strings.IndexByte(st, '('), strings.LastIndexByte(st, ')')
		if open < 0 || end < open {
			continue
		}
		comm := st[open+1 : end]
		f := strings.Fields(st[end+2:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseUint(f[11], 10, 64)
		stt, _ := strconv.ParseUint(f[12], 10, 64)
		var name string
		switch {
		case pid == apiPID:
			name = "backend"
		case pid == self:
			name = "load generator"
		case comm == "postgres":
			name = "PostgreSQL"
		case comm == "pgbouncer":
			name = "PgBouncer"
		case comm == "redis-server":
			name = "Redis"
		default:
			continue
		}
		s.used[name] += ut + stt
	}
	return s
}

// account runs the scenario at rate for d and divides each component's CPU
// by the requests answered: which core is the bottleneck, and what one
// request costs each process.
func (s *stack) account(ctx context.Context, name string, newScenario func() (loadgen.Scenario, error), rate float64, d time.Duration) (cpuUse, error) {
	sc, err := newScenario()
	if err != nil {
		return cpuUse{}, err
	}
	say("where the CPU goes: %s at %.0f/s", name, rate)
	// Skip the first seconds (connections, caches), as the measured runs do.
	loadgen.Run(ctx, sc, loadgen.Options{Rate: rate, Duration: 3 * time.Second, MaxInFlight: 1000})
	before := snapCPU(s.api.Process.Pid)
	res := loadgen.Run(ctx, sc, loadgen.Options{Rate: rate, Duration: d, MaxInFlight: 1000})
	after := snapCPU(s.api.Process.Pid)
	u := cpuUse{Scenario: name, Rate: rate, Throughput: res.Throughput, P95: res.LatencyMS.P95, PerRequest: map[string]float64{}}
	for i := range after.busy {
		if i < len(before.busy) && after.total[i] > before.total[i] {
			u.Busy = append(u.Busy, 100*float64(after.busy[i]-before.busy[i])/float64(after.total[i]-before.total[i]))
		}
	}
	const hz = 100 // USER_HZ on Linux
	if n := float64(res.OK); n > 0 {
		for _, c := range components {
			u.PerRequest[c] = float64(after.used[c]-before.used[c]) / hz * 1e6 / n
		}
	}
	return u, nil
}
