package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/admission"
	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/patient"
)

// Operations of a journey.
const (
	OpRegister  = "register"
	OpRead      = "read"
	OpAdmit     = "admit"
	OpDischarge = "discharge"
	OpClean     = "clean"
)

// Load drives the API like a ward's clerks and nurses: each worker runs
// journeys on its own bed — register a patient, read the record, admit
// them, discharge them, clean the bed — sending every command with a new
// Idempotency-Key and retrying it with the same key after a transport
// error, a 502/503/504 or a lost answer, until it is acknowledged. Every
// attempt and every acknowledgement is recorded for the checker.
type Load struct {
	// Base is the API's base URL (NGINX or one backend).
	Base string
	// Desk and Nurse are access tokens: the receptionist registers, admits
	// and discharges; the nurse cleans beds.
	Desk, Nurse string
	// Beds: one per worker.
	Beds []string
	// Every is the pause between a worker's requests (0: none).
	Every time.Duration
	// LoseEvery makes the client lose the answer of every n-th command
	// after the backend sent it (the work is done, the client does not
	// know): the retry must return the first answer, not act twice.
	LoseEvery int
	// Run tags the tokens so runs never collide.
	Run string

	rec *Record
}

// Attempt is one HTTP request.
type Attempt struct {
	Op      string
	Start   time.Time
	Latency time.Duration
	// Outcome: "ok", "lost" (answer dropped by the client), "transport",
	// or the HTTP status as text ("503").
	Outcome string
	// Clean: an error answer in problem+json (503s also with Retry-After).
	Clean bool
	Retry bool   // a retry of an earlier attempt (same key)
	Code  string // the problem's code of an error answer
}

// Ack is an acknowledged command: the first 2xx answer the client saw.
type Ack struct {
	Op       string
	Key      string
	Token    string // the registration's unique given names
	ID       string // the created or changed record
	Ref      string // admit: the patient; clean: the bed
	Attempts int
	At       time.Time
}

// Record collects a load run.
type Record struct {
	mu       sync.Mutex
	Attempts []Attempt
	Acks     []Ack
	// Abandoned are commands given up (with their last error); a run
	// where the system recovered has none.
	Abandoned []string
	// Tokens of every registration sent, acknowledged or not.
	Tokens []string
}

func (r *Record) attempt(a Attempt) {
	r.mu.Lock()
	r.Attempts = append(r.Attempts, a)
	r.mu.Unlock()
}

func (r *Record) ack(a Ack) {
	r.mu.Lock()
	r.Acks = append(r.Acks, a)
	r.mu.Unlock()
}

// errLost is the client losing an answer the backend sent.
var errLost = errors.New("chaos: answer lost after the backend sent it")

// lossy drops the answer of every n-th command.
type lossy struct {
	next http.RoundTripper
	n    int
	seen atomic.Int64
}

func (l *lossy) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err != nil || l.n == 0 || req.Method == http.MethodGet || resp.StatusCode >= 300 {
		return resp, err
	}
	if l.seen.Add(1)%int64(l.n) == 0 {
		resp.Body.Close()
		return nil, errLost
	}
	return resp, nil
}

// Start runs the load until ctx ends; each worker then finishes its
// journey (retrying for at most finish). Wait for the record with the
// returned function.
func (l *Load) Start(ctx context.Context, finish time.Duration) func() *Record {
	l.rec = &Record{}
	var wg sync.WaitGroup
	for w, bed := range l.Beds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.worker(ctx, w, bed, finish)
		}()
	}
	return func() *Record {
		wg.Wait()
		return l.rec
	}
}

// httpClient is worker w's client. Each worker connects from its own
// loopback address (127.0.1.w), as separate workstations would, so the
// ingress's and the backend's per-client-IP limits apply per worker.
func (l *Load) httpClient(w int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+w%250))}}
	tr.DialContext = dialer.DialContext
	return &http.Client{Timeout: 20 * time.Second, Transport: &lossy{next: tr, n: l.LoseEvery}}
}

func (l *Load) worker(ctx context.Context, w int, bed string, finish time.Duration) {
	hc := l.httpClient(w)
	desk := client.New(l.Base, hc).WithToken(l.Desk)
	nurse := client.New(l.Base, hc).WithToken(l.Nurse)
	for j := 0; ctx.Err() == nil; j++ {
		// A journey is finished even after ctx ends, within finish. One
		// with an abandoned command is recorded and the worker goes on
		// (its bed may be stuck; the checker reports every abandonment).
		jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finish)
		if !l.journey(ctx, jctx, desk, nurse, w, j, bed) {
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
	}
}

// journey runs one patient's stay; false when a command had to be given up.
func (l *Load) journey(run, ctx context.Context, desk, nurse *client.Client, w, j int, bed string) bool {
	token := fmt.Sprintf("Chaos %s w%d j%d", l.Run, w, j)
	l.rec.mu.Lock()
	l.rec.Tokens = append(l.rec.Tokens, token)
	l.rec.mu.Unlock()
	var p patient.Patient
	if !l.command(ctx, OpRegister, token, "", func(ctx context.Context) (string, error) {
		var err error
		p, err = desk.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Chaos",
			GivenNames: token, BirthDate: "1970-01-01", Sex: "unknown"}, ConfirmNotDuplicate: true})
		return p.ID, err
	}) {
		return false
	}
	l.read(run, desk, p.ID)
	var a admission.Admission
	if !l.command(ctx, OpAdmit, "", p.ID, func(ctx context.Context) (string, error) {
		var err error
		a, err = desk.Admit(ctx, admission.AdmitInput{PatientID: p.ID, BedID: bed, Source: "emergency", Reason: "Chaos test"}, "")
		return a.ID, err
	}) {
		return false
	}
	if !l.command(ctx, OpDischarge, "", a.ID, func(ctx context.Context) (string, error) {
		d, err := desk.Discharge(ctx, a.ID, 0, admission.DischargeInput{Disposition: "home"}, "")
		return d.ID, err
	}) {
		return false
	}
	return l.command(ctx, OpClean, "", bed, func(ctx context.Context) (string, error) {
		b, err := nurse.BedAction(ctx, bed, "clean")
		return b.ID, err
	})
}

// read fetches the record once (reads are retried by nobody: a failure is
// a failure), unless the run is over.
func (l *Load) read(run context.Context, c *client.Client, id string) {
	if run.Err() != nil {
		return
	}
	l.pause()
	start := time.Now()
	_, err := c.Patient(run, id)
	if run.Err() != nil {
		return
	}
	l.rec.attempt(classify(OpRead, start, err, false))
}

// command sends fn with a new key until it is acknowledged or ctx ends.
func (l *Load) command(ctx context.Context, op, token, ref string, fn func(ctx context.Context) (string, error)) bool {
	key := client.NewKey()
	kctx := client.WithIdempotencyKey(ctx, key)
	backoff := 20 * time.Millisecond
	for n := 1; ; n++ {
		l.pause()
		start := time.Now()
		id, err := fn(kctx)
		a := classify(op, start, err, n > 1)
		l.rec.attempt(a)
		if err == nil {
			l.rec.ack(Ack{Op: op, Key: key, Token: token, ID: id, Ref: ref, Attempts: n, At: time.Now()})
			return true
		}
		if !retryable(a, err) || ctx.Err() != nil {
			l.rec.mu.Lock()
			l.rec.Abandoned = append(l.rec.Abandoned, fmt.Sprintf("%s %s after %d attempts: %v", op, key, n, err))
			l.rec.mu.Unlock()
			return false
		}
		wait := backoff + time.Duration(rand.Int64N(int64(backoff)))
		var ce *client.Error
		if errors.As(err, &ce) && ce.RetryAfter > 0 {
			// Honour Retry-After, but keep the test short.
			wait = min(ce.RetryAfter, 500*time.Millisecond)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		backoff = min(backoff*2, 400*time.Millisecond)
	}
}

func (l *Load) pause() {
	if l.Every > 0 {
		time.Sleep(l.Every)
	}
}

func classify(op string, start time.Time, err error, retry bool) Attempt {
	a := Attempt{Op: op, Start: start, Latency: time.Since(start), Retry: retry, Outcome: "ok"}
	var ce *client.Error
	switch {
	case err == nil:
	case errors.Is(err, errLost):
		a.Outcome = "lost"
	case errors.As(err, &ce):
		a.Outcome = fmt.Sprint(ce.Status)
		a.Code = ce.Code
		problem := !strings.HasPrefix(ce.Code, "http_")
		a.Clean = problem && (ce.Status != http.StatusServiceUnavailable || ce.RetryAfter > 0)
	default:
		a.Outcome = "transport"
	}
	return a
}

// retryable: what a client retries with the same key.
func retryable(a Attempt, err error) bool {
	switch a.Outcome {
	case "lost", "transport", "502", "503", "504":
		return true
	case "409":
		// A concurrent attempt with this key still holds it.
		return strings.Contains(err.Error(), "still being processed")
	}
	return false
}

// Stats summarise attempts.
type Stats struct {
	Attempts, OK, Retries int
	// Failures are attempts that did not succeed (any outcome but ok).
	Failures int
	// Unclean are failures that were neither a problem+json answer (503s
	// with Retry-After) nor an answer the client chose to lose.
	Unclean       int
	Outcomes      map[string]int
	P50, P95, Max time.Duration
}

// Stats summarises the attempts that started in [from, to) (zero times:
// all) and match op ("" for all).
func (r *Record) Stats(op string, from, to time.Time) Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Outcomes: map[string]int{}}
	var lat []time.Duration
	for _, a := range r.Attempts {
		if (op != "" && a.Op != op) || (!from.IsZero() && a.Start.Before(from)) || (!to.IsZero() && !a.Start.Before(to)) {
			continue
		}
		s.Attempts++
		s.Outcomes[a.Outcome]++
		if a.Retry {
			s.Retries++
		}
		if a.Outcome == "ok" {
			s.OK++
		} else {
			s.Failures++
			if a.Outcome != "lost" && !a.Clean {
				s.Unclean++
			}
		}
		lat = append(lat, a.Latency)
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		s.P50 = lat[len(lat)*50/100]
		s.P95 = lat[min(len(lat)*95/100, len(lat)-1)]
		s.Max = lat[len(lat)-1]
	}
	return s
}

// String is a one-line report.
func (s Stats) String() string {
	return fmt.Sprintf("%d attempts, %d ok, %d failed (%d unclean), %d retries, p50 %v, p95 %v, max %v, outcomes %v",
		s.Attempts, s.OK, s.Failures, s.Unclean, s.Retries, s.P50.Round(100*time.Microsecond), s.P95.Round(100*time.Microsecond),
		s.Max.Round(time.Millisecond), s.Outcomes)
}

// LastFailure returns when the last failed attempt started (zero if none).
func (r *Record) LastFailure() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var t time.Time
	for _, a := range r.Attempts {
		if a.Outcome != "ok" && a.Outcome != "lost" && a.Start.After(t) {
			t = a.Start
		}
	}
	return t
}

// FirstOKAfter returns when the first successful command attempt after t
// ended (zero if none).
func (r *Record) FirstOKAfter(t time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first time.Time
	for _, a := range r.Attempts {
		if a.Outcome == "ok" && a.Op != OpRead && a.Start.After(t) {
			if end := a.Start.Add(a.Latency); first.IsZero() || end.Before(first) {
				first = end
			}
		}
	}
	return first
}

// AcksOf counts the acknowledgements of op.
func (r *Record) AcksOf(op string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.Acks {
		if a.Op == op {
			n++
		}
	}
	return n
}

// Record is the run's record so far (safe to read while the load runs).
func (l *Load) Record() *Record { return l.rec }

// Stats summarises the attempts so far; see Record.Stats.
func (l *Load) Stats(op string, from, to time.Time) Stats { return l.rec.Stats(op, from, to) }
