// Package loadgen drives the API at a constant arrival rate (open loop:
// requests start on schedule whether or not earlier ones finished, and
// latency is measured from the scheduled start, so a slow server cannot
// hide its queueing — no coordinated omission) and reports latency
// percentiles and errors.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/client"
)

// ErrExhausted is a scenario's answer when it has used up what it can act
// on (free beds, booked appointments to check in, patients the user may
// see): counted apart from the system's errors, as "exhausted".
var ErrExhausted = errors.New("scenario exhausted")

// Op is one request of a scenario. It returns an error for a failed
// request; client errors carry the HTTP status.
type Op func(ctx context.Context) error

// Scenario makes the next request.
type Scenario interface {
	Name() string
	Next() Op
}

// Options of one run.
type Options struct {
	Rate        float64       // requests per second
	Duration    time.Duration // how long to send
	MaxInFlight int           // requests beyond this are counted as dropped
	Progress    io.Writer     // a progress line every second; nil for none
	// Warmup sends at the rate for this long first, unrecorded (opens
	// connections, fills caches).
	Warmup time.Duration
}

// Result of one run.
type Result struct {
	Scenario    string         `json:"scenario"`
	Rate        float64        `json:"target_rate"`
	Duration    float64        `json:"duration_seconds"`
	Sent        int64          `json:"sent"`
	OK          int64          `json:"ok"`
	Errors      map[string]int `json:"errors"` // by HTTP status, "transport", or "exhausted" (ErrExhausted)
	Dropped     int64          `json:"dropped"`
	Throughput  float64        `json:"throughput"` // successful requests per second
	LatencyMS   Percentiles    `json:"latency_ms"`
	StartedAt   time.Time      `json:"started_at"`
	MaxInFlight int            `json:"max_in_flight"`
	// Parts: a Mix's scenarios, each with its own counts and latencies.
	Parts []Result `json:"parts,omitempty"`
}

// Percentiles of latency in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Run sends s's requests at o.Rate for o.Duration.
func Run(ctx context.Context, s Scenario, o Options) Result {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 1000
	}
	if o.Warmup > 0 {
		Run(ctx, s, Options{Rate: o.Rate, Duration: o.Warmup, MaxInFlight: o.MaxInFlight})
	}
	res := Result{Scenario: s.Name(), Rate: o.Rate, Errors: map[string]int{}, StartedAt: time.Now().UTC(), MaxInFlight: o.MaxInFlight}
	interval := time.Duration(float64(time.Second) / o.Rate)
	var (
		mu        sync.Mutex
		latencies []time.Duration
		wg        sync.WaitGroup
		inFlight  atomic.Int64
		ok, sent  atomic.Int64
		dropped   atomic.Int64
	)
	// Requests run on workers that stay for the next request, started as
	// needed up to MaxInFlight: a goroutine per request cost the generator
	// (on the database's core) about a tenth of its CPU in stack growth.
	type job struct {
		op        Op
		scheduled time.Time
		part      int // the Mix's scenario, 0 otherwise
	}
	mix, _ := s.(*Mix)
	var parts []partResult
	if mix != nil {
		parts = make([]partResult, len(mix.parts))
		for i := range parts {
			parts[i].errors = map[string]int{}
		}
	}
	jobs := make(chan job)
	run := func(j job) {
		defer inFlight.Add(-1)
		err := j.op(ctx)
		lat := time.Since(j.scheduled)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			key := "transport"
			if st := client.StatusOf(err); st != 0 {
				key = fmt.Sprint(st)
			} else if errors.Is(err, ErrExhausted) {
				key = "exhausted"
			}
			res.Errors[key]++
			if parts != nil {
				parts[j.part].errors[key]++
			}
			return
		}
		ok.Add(1)
		latencies = append(latencies, lat)
		if parts != nil {
			parts[j.part].latencies = append(parts[j.part].latencies, lat)
		}
	}
	worker := func(j job) {
		defer wg.Done()
		for {
			run(j)
			var more bool
			if j, more = <-jobs; !more {
				return
			}
		}
	}
	start := time.Now()
	end := start.Add(o.Duration)
	progressAt := start.Add(time.Second)
	for i := int64(0); ; i++ {
		scheduled := start.Add(time.Duration(i) * interval)
		if !scheduled.Before(end) || ctx.Err() != nil {
			break
		}
		if d := time.Until(scheduled); d > 0 {
			time.Sleep(d)
		}
		if o.Progress != nil && time.Now().After(progressAt) {
			progressAt = progressAt.Add(time.Second)
			fmt.Fprintf(o.Progress, "\r  %s  %5.0fs  sent %d  ok %d  errors %d  dropped %d  in flight %d   ", s.Name(),
				time.Since(start).Seconds(), sent.Load(), ok.Load(), sent.Load()-ok.Load()-inFlight.Load(), dropped.Load(), inFlight.Load())
		}
		if inFlight.Load() >= int64(o.MaxInFlight) {
			dropped.Add(1)
			continue
		}
		j := job{scheduled: scheduled}
		if mix != nil {
			j.part, j.op = mix.pick()
			mu.Lock()
			parts[j.part].sent++
			mu.Unlock()
		} else {
			j.op = s.Next()
		}
		sent.Add(1)
		inFlight.Add(1)
		select {
		case jobs <- j: // an idle worker takes it
		default:
			wg.Add(1)
			go worker(j)
		}
	}
	close(jobs)
	wg.Wait()
	if o.Progress != nil {
		fmt.Fprintln(o.Progress)
	}
	elapsed := time.Since(start)
	res.Duration = elapsed.Seconds()
	res.Sent, res.OK, res.Dropped = sent.Load(), ok.Load(), dropped.Load()
	res.Throughput = float64(res.OK) / elapsed.Seconds()
	res.LatencyMS = percentiles(latencies)
	for i, p := range parts {
		res.Parts = append(res.Parts, Result{Scenario: mix.parts[i].Name(), Rate: o.Rate * float64(mix.weights[i]) / float64(mix.total),
			Duration: res.Duration, Sent: p.sent, OK: int64(len(p.latencies)), Errors: p.errors,
			Throughput: float64(len(p.latencies)) / elapsed.Seconds(), LatencyMS: percentiles(p.latencies), StartedAt: res.StartedAt})
	}
	return res
}

// partResult is what Run gathers for one of a Mix's scenarios.
type partResult struct {
	sent      int64
	latencies []time.Duration
	errors    map[string]int
}

func percentiles(l []time.Duration) Percentiles {
	if len(l) == 0 {
		return Percentiles{}
	}
	slices.Sort(l)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(l)))) - 1
		return ms(l[max(i, 0)])
	}
	var sum time.Duration
	for _, d := range l {
		sum += d
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P95: at(0.95), P99: at(0.99), Max: ms(l[len(l)-1]),
		Mean: ms(sum / time.Duration(len(l)))}
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/10) / 100 }

// onlyShed reports whether r's only errors, if any, are 503s: refusals of
// an overloaded system, not failures of the requests.
func onlyShed(r Result) bool {
	for k := range r.Errors {
		if k != "503" {
			return false
		}
	}
	return true
}

// Markdown renders results as a table.
func Markdown(results []Result) string { return MarkdownWith(results, "", nil) }

// MarkdownWith renders results as a table with one more column, header,
// whose cell for results[i] is extra[i] (a Mix's parts leave it empty).
func MarkdownWith(results []Result, header string, extra []string) string {
	var b strings.Builder
	head, rule := "", ""
	if header != "" {
		head, rule = " "+header+" |", "---:|"
	}
	b.WriteString("| scenario | target rate | sent | ok | throughput | p50 ms | p95 ms | p99 ms | max ms | errors | dropped |" + head + "\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|" + rule + "\n")
	var rows []Result
	var cells []string
	for i, r := range results {
		rows = append(rows, r)
		cell := ""
		if i < len(extra) {
			cell = extra[i]
		}
		cells = append(cells, cell)
		for _, part := range r.Parts {
			part.Scenario = r.Scenario + " › " + part.Scenario
			rows = append(rows, part)
			cells = append(cells, "")
		}
	}
	for i, r := range rows {
		errs := []string{}
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			errs = append(errs, fmt.Sprintf("%s: %d", k, r.Errors[k]))
		}
		more := ""
		if header != "" {
			more = " " + cells[i] + " |"
		}
		fmt.Fprintf(&b, "| %s | %.0f/s | %d | %d | %.0f/s | %.1f | %.1f | %.1f | %.1f | %s | %d |%s\n", r.Scenario, r.Rate, r.Sent, r.OK,
			r.Throughput, r.LatencyMS.P50, r.LatencyMS.P95, r.LatencyMS.P99, r.LatencyMS.Max, strings.Join(errs, ", "), r.Dropped, more)
	}
	return b.String()
}

// JSON renders results.
func JSON(results []Result) []byte {
	b, _ := json.MarshalIndent(results, "", "  ")
	return b
}

// FindMax looks for the highest rate between lo and hi (requests per
// second) at which a run of d keeps p95 under bound with no errors and
// nothing dropped, by bisection to within 5%. A trial that kept up with
// its rate (95% of it answered, no errors but 503s) but missed the p95
// bound, or dropped requests while a stall held 1,000 in flight, is run
// once more, and the rate misses only if that one misses too. A trial
// that disturbed reports was disturbed from outside (the storage stopped
// under it, say) is run again up to three more times, if it answered 80%
// of its rate; disturbed may be nil. newScenario gives each trial a
// fresh scenario. It returns every trial and the best one (nil when even
// lo missed the bound, with an error saying so).
func FindMax(ctx context.Context, newScenario func() (Scenario, error), bound time.Duration, lo, hi float64, d time.Duration,
	disturbed func(Result) bool, progress io.Writer) ([]Result, *Result, error) {
	var trials []Result
	var best *Result
	trial := func(rate float64) (Result, error) {
		s, err := newScenario()
		if err != nil {
			return Result{}, err
		}
		r := Run(ctx, s, Options{Rate: rate, Duration: d, MaxInFlight: 1000, Progress: progress, Warmup: min(d/3, 2*time.Second)})
		trials = append(trials, r)
		return r, nil
	}
	good := func(r Result) bool {
		return r.Dropped == 0 && len(r.Errors) == 0 && r.LatencyMS.P95 <= float64(bound.Microseconds())/1000
	}
	for hi-lo > lo*0.05 && ctx.Err() == nil {
		rate := (lo + hi) / 2
		if best == nil && len(trials) == 0 {
			rate = lo // the floor must hold, or there is nothing to report
		}
		r, err := trial(rate)
		if err != nil {
			return trials, best, err
		}
		for tries := 1; !good(r) && ctx.Err() == nil; tries++ {
			// It kept up but missed: a one-off stall (a checkpoint, the
			// audit verifier's periodic pass) may have decided it, by its
			// p95, by the requests dropped while it lasted, or by those
			// the system refused with 503 while it lasted (it sheds load
			// instead of queueing it).
			keptUp := onlyShed(r) && r.Throughput >= 0.95*rate
			outside := disturbed != nil && disturbed(r) && onlyShed(r) && r.Throughput >= 0.8*rate
			if !(keptUp && tries == 1 || outside && tries < 4) {
				break
			}
			if r, err = trial(rate); err != nil {
				return trials, best, err
			}
		}
		if good(r) {
			lo = rate
			rr := r
			best = &rr
		} else if rate == lo {
			return trials, nil, fmt.Errorf("even %.0f/s misses p95 %v (p95 %.1f ms, %d errors, %d dropped)", rate, bound, r.LatencyMS.P95, len(r.Errors), r.Dropped)
		} else {
			hi = rate
		}
	}
	return trials, best, nil
}
