// Package metrics defines the Prometheus metrics of the process in one
// place, registered on a registry of our own (served on METRICS_ADDR, never
// through the ingress).
package metrics

import (
	"context"
	"runtime/debug"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every collector the application updates.
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests    *prometheus.CounterVec
	HTTPDuration    *prometheus.HistogramVec
	HTTPInFlight    prometheus.Gauge
	Errors          *prometheus.CounterVec
	CacheRequests   *prometheus.CounterVec
	RateLimited     *prometheus.CounterVec
	RedisBreaker    prometheus.Gauge
	CacheListening  prometheus.Gauge
	WebSockets      prometheus.Gauge
	EventsPublished *prometheus.CounterVec
	DBRetries       prometheus.Counter
	Logins          *prometheus.CounterVec
	BreakGlass      prometheus.Counter
	AuditSealed     prometheus.Counter
	AuditUnsealed   prometheus.Gauge
	AuditBatchRows  prometheus.Histogram
	AuditBatchTime  prometheus.Histogram

	// Hospital operations, counted where the services report them.
	Admissions    *prometheus.CounterVec
	Discharges    *prometheus.CounterVec
	Transfers     prometheus.Counter
	Cancellations prometheus.Counter
	QueueWait     *prometheus.HistogramVec

	// Audit chain verification (audit.RunVerifier).
	AuditVerified      *prometheus.GaugeVec // no labels: absent until the first verification
	AuditVerifications *prometheus.CounterVec
	AuditVerifiedAt    prometheus.Gauge
	AuditVerifiedRows  prometheus.Counter

	// audit_events month partitions (audit.RunPartitions).
	AuditPartitionsAt prometheus.Gauge

	departments *queueCollector // set by RegisterQueues; names the department of a queue wait
}

// New registers the collectors on a new registry, with Go runtime and
// process metrics and build information.
func New(service string) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "HTTP request latency by route template and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		HTTPInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "http_requests_in_flight", Help: "HTTP requests being served.",
		}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "app_errors_total", Help: "Errors returned to clients by application error code.",
		}, []string{"code"}),
		CacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cache_requests_total", Help: "Cache lookups by result: hit, miss, error, bypass (Redis unavailable).",
		}, []string{"result"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ratelimit_rejections_total", Help: "Requests refused with 429 by limit scope (ip, user, login).",
		}, []string{"scope"}),
		RedisBreaker: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "redis_circuit_breaker_state", Help: "Redis circuit breaker: 0 closed, 1 half-open, 2 open.",
		}),
		CacheListening: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cache_invalidations_listening", Help: "1 while this replica hears the cache deletions every replica broadcasts (in-process copies kept up to 30 s), 0 otherwise (kept one second).",
		}),
		WebSockets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "websocket_connections", Help: "Open WebSocket connections on /api/v1/events.",
		}),
		EventsPublished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_published_total", Help: "Events published by transport (redis, local) and result.",
		}, []string{"transport", "result"}),
		DBRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "db_transaction_retries_total", Help: "Transactions retried after serialization failure or deadlock.",
		}),
		Logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auth_logins_total", Help: "Sign-in attempts by result: success, failure, throttled, mfa_required.",
		}, []string{"result"}),
		BreakGlass: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "emergency_access_grants_total", Help: "Emergency (break the glass) access grants.",
		}),
		AuditSealed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audit_rows_sealed_total", Help: "Audit rows sealed into the hash chain by this process.",
		}),
		AuditUnsealed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "audit_rows_unsealed", Help: "Committed audit rows not yet sealed into the chain.",
		}),
		AuditBatchRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "audit_read_batch_rows", Help: "Audit rows of reads committed together (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 500},
		}),
		AuditBatchTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "audit_read_batch_seconds", Help: "Time to write and commit one group of read audit rows (what each read waits for, besides gathering).",
			Buckets: []float64{.0005, .001, .002, .004, .008, .016, .032, .064, .128, .256, .512, 1},
		}),
		Admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "admissions_total", Help: "Patients admitted, by source (appointment, emergency, direct).",
		}, []string{"source"}),
		Discharges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "discharges_total", Help: "Admissions ended by discharge, by disposition.",
		}, []string{"disposition"}),
		Transfers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "transfers_total", Help: "Admitted patients moved to another bed.",
		}),
		Cancellations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "admission_cancellations_total", Help: "Admissions cancelled as entered in error.",
		}),
		QueueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "queue_wait_seconds",
			Help:    "Time from check-in to being called, per department (code).",
			Buckets: []float64{60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800, 14400},
		}, []string{"department"}),
		AuditVerified: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "audit_chain_verified", Help: "1 when the last verification of the recent audit chain found it intact, 0 when it found it broken.",
		}, nil),
		AuditVerifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audit_chain_verifications_total", Help: "Background verifications of the recent audit chain by result: ok, broken, error (could not read).",
		}, []string{"result"}),
		AuditVerifiedRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audit_chain_verified_rows_total", Help: "Audit rows the background verification read and re-hashed (its load on the database).",
		}),
		AuditVerifiedAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "audit_chain_last_verification_timestamp_seconds", Help: "When the audit chain was last verified (ok or broken), Unix time.",
		}),
		AuditPartitionsAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "audit_partitions_last_ensured_timestamp_seconds", Help: "When this process last made sure the audit trail's month partitions exist ahead of time, Unix time.",
		}),
	}
	r.MustRegister(m.HTTPRequests, m.HTTPDuration, m.HTTPInFlight, m.Errors, m.CacheRequests,
		m.RateLimited, m.RedisBreaker, m.CacheListening, m.WebSockets, m.EventsPublished, m.DBRetries,
		m.Logins, m.BreakGlass, m.AuditSealed, m.AuditUnsealed, m.AuditVerifiedRows, m.AuditBatchRows, m.AuditBatchTime,
		m.Admissions, m.Discharges, m.Transfers, m.Cancellations, m.QueueWait,
		m.AuditVerified, m.AuditVerifications, m.AuditVerifiedAt, m.AuditPartitionsAt,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(service))
	// Series that alerts and dashboards rely on exist from the start, at 0.
	for _, scope := range []string{"ip", "user", "login"} {
		m.RateLimited.WithLabelValues(scope)
	}
	for _, t := range []string{"redis", "local"} {
		for _, r := range []string{"ok", "error"} {
			m.EventsPublished.WithLabelValues(t, r)
		}
	}
	for _, r := range []string{"success", "failure", "throttled", "mfa_required", "busy"} {
		m.Logins.WithLabelValues(r)
	}
	for _, r := range []string{"hit", "miss", "error", "bypass"} {
		m.CacheRequests.WithLabelValues(r)
	}
	for _, s := range []string{"appointment", "emergency", "direct"} {
		m.Admissions.WithLabelValues(s)
	}
	for _, d := range []string{"home", "transfer_out", "deceased", "against_advice"} {
		m.Discharges.WithLabelValues(d)
	}
	for _, r := range []string{"ok", "broken", "error"} {
		m.AuditVerifications.WithLabelValues(r)
	}
	return m
}

func buildInfo(service string) prometheus.Collector {
	version, revision := "devel", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hospital_erp_build_info", Help: "Build information; always 1.",
		ConstLabels: prometheus.Labels{"service": service, "version": version, "revision": revision},
	})
	g.Set(1)
	return g
}

// CacheObserver returns a cache.Observer counting results.
func (m *Metrics) CacheObserver() func(string) {
	return func(result string) { m.CacheRequests.WithLabelValues(result).Inc() }
}

// RegisterPool exports pgxpool statistics.
func (m *Metrics) RegisterPool(p *pgxpool.Pool) {
	m.Registry.MustRegister(&poolCollector{pool: p})
}

type poolCollector struct{ pool *pgxpool.Pool }

var (
	poolAcquired  = prometheus.NewDesc("db_pool_acquired_connections", "Connections in use.", nil, nil)
	poolIdle      = prometheus.NewDesc("db_pool_idle_connections", "Idle connections.", nil, nil)
	poolTotal     = prometheus.NewDesc("db_pool_total_connections", "Open connections (to PgBouncer).", nil, nil)
	poolMax       = prometheus.NewDesc("db_pool_max_connections", "Configured maximum connections.", nil, nil)
	poolAcquires  = prometheus.NewDesc("db_pool_acquires_total", "Connection acquisitions.", nil, nil)
	poolEmpty     = prometheus.NewDesc("db_pool_empty_acquires_total", "Acquisitions that had to wait for a connection.", nil, nil)
	poolWait      = prometheus.NewDesc("db_pool_acquire_wait_seconds_total", "Time spent waiting for a connection.", nil, nil)
	poolCancelled = prometheus.NewDesc("db_pool_canceled_acquires_total", "Acquisitions cancelled by their context.", nil, nil)
)

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolAcquired, poolIdle, poolTotal, poolMax, poolAcquires, poolEmpty, poolWait, poolCancelled} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolAcquired, prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(poolIdle, prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolEmpty, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWait, prometheus.CounterValue, s.AcquireDuration().Seconds())
	ch <- prometheus.MustNewConstMetric(poolCancelled, prometheus.CounterValue, float64(s.CanceledAcquireCount()))
}

// reading is a database read shared by the scrapes of one replica: loaded
// at most once per maxAge, within two seconds. When the database does not
// answer, the last good reading is reported (the scrape still succeeds; the
// numbers age).
type reading[T any] struct {
	load   func(context.Context) (T, error)
	maxAge time.Duration

	mu   sync.Mutex
	at   time.Time
	last T
}

func (r *reading[T]) get(force bool) T {
	r.mu.Lock()
	defer r.mu.Unlock()
	if force || time.Since(r.at) > r.maxAge {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		v, err := r.load(ctx)
		cancel()
		if err == nil {
			r.last, r.at = v, time.Now()
		}
	}
	return r.last
}

// WardBeds is how many beds of a ward are in each state.
type WardBeds struct {
	Ward     string
	ByStatus map[string]int
}

// RegisterWardOccupancy exports the beds per ward and state and each
// ward's occupancy (occupied over beds in service), read with load at most
// once per maxAge (every replica exports the same numbers: query them with
// max by (ward)).
func (m *Metrics) RegisterWardOccupancy(load func(context.Context) ([]WardBeds, error), maxAge time.Duration) {
	m.Registry.MustRegister(&wardCollector{r: reading[[]WardBeds]{load: load, maxAge: maxAge}})
}

var (
	wardBedsDesc = prometheus.NewDesc("ward_beds", "Beds of a ward by state.", []string{"ward", "status"}, nil)
	wardOccDesc  = prometheus.NewDesc("ward_occupancy_ratio", "Occupied beds over beds in service, per ward.", []string{"ward"}, nil)
)

type wardCollector struct{ r reading[[]WardBeds] }

func (c *wardCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- wardBedsDesc
	ch <- wardOccDesc
}

func (c *wardCollector) Collect(ch chan<- prometheus.Metric) {
	for _, w := range c.r.get(false) {
		inService := 0
		for _, status := range []string{"available", "occupied", "reserved", "cleaning", "out_of_service"} {
			n := w.ByStatus[status]
			ch <- prometheus.MustNewConstMetric(wardBedsDesc, prometheus.GaugeValue, float64(n), w.Ward, status)
			if status != "out_of_service" {
				inService += n
			}
		}
		ratio := 0.0
		if inService > 0 {
			ratio = float64(w.ByStatus["occupied"]) / float64(inService)
		}
		ch <- prometheus.MustNewConstMetric(wardOccDesc, prometheus.GaugeValue, ratio, w.Ward)
	}
}

// DepartmentQueue is one department's walk-in queue now.
type DepartmentQueue struct {
	DepartmentID string
	Department   string // code: the label
	Waiting      int
	LongestWait  time.Duration // of the patients waiting now; 0 when nobody waits
}

// RegisterQueues exports each department's queue length and longest
// current wait, read with load at most once per maxAge (the same on every
// replica: query with max by (department)). The reading also names the
// departments for ObserveQueueWait.
func (m *Metrics) RegisterQueues(load func(context.Context) ([]DepartmentQueue, error), maxAge time.Duration) {
	m.departments = &queueCollector{r: reading[[]DepartmentQueue]{load: load, maxAge: maxAge}}
	m.Registry.MustRegister(m.departments)
}

// ObserveQueueWait records how long a patient waited in a department's
// queue before being called. The department is labelled by its code; a
// department the last reading does not know triggers a fresh reading.
func (m *Metrics) ObserveQueueWait(departmentID string, waited time.Duration) {
	code := "unknown"
	if m.departments != nil {
		code = m.departments.code(departmentID)
	}
	m.QueueWait.WithLabelValues(code).Observe(waited.Seconds())
}

var (
	queueWaitingDesc = prometheus.NewDesc("queue_waiting_patients", "Patients waiting in a department's queue now.", []string{"department"}, nil)
	queueLongestDesc = prometheus.NewDesc("queue_longest_wait_seconds", "How long the longest-waiting patient of a department's queue has waited so far (0 when nobody waits).", []string{"department"}, nil)
)

type queueCollector struct{ r reading[[]DepartmentQueue] }

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueWaitingDesc
	ch <- queueLongestDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	for _, d := range c.r.get(false) {
		ch <- prometheus.MustNewConstMetric(queueWaitingDesc, prometheus.GaugeValue, float64(d.Waiting), d.Department)
		ch <- prometheus.MustNewConstMetric(queueLongestDesc, prometheus.GaugeValue, d.LongestWait.Seconds(), d.Department)
	}
}

func (c *queueCollector) code(departmentID string) string {
	for _, force := range []bool{false, true} {
		for _, d := range c.r.get(force) {
			if d.DepartmentID == departmentID {
				return d.Department
			}
		}
	}
	return "unknown"
}

// RegisterAppointmentsToday exports today's appointments by status, read
// with load at most once per maxAge (the same on every replica).
func (m *Metrics) RegisterAppointmentsToday(load func(context.Context) (map[string]int, error), maxAge time.Duration) {
	m.Registry.MustRegister(&appointmentCollector{r: reading[map[string]int]{load: load, maxAge: maxAge}})
}

var apptTodayDesc = prometheus.NewDesc("appointments_today", "Appointments starting today (hospital time zone) by status.", []string{"status"}, nil)

type appointmentCollector struct{ r reading[map[string]int] }

func (c *appointmentCollector) Describe(ch chan<- *prometheus.Desc) { ch <- apptTodayDesc }

func (c *appointmentCollector) Collect(ch chan<- prometheus.Metric) {
	byStatus := c.r.get(false)
	if byStatus == nil {
		return // never read
	}
	for _, status := range []string{"booked", "checked_in", "completed", "cancelled", "no_show"} {
		ch <- prometheus.MustNewConstMetric(apptTodayDesc, prometheus.GaugeValue, float64(byStatus[status]), status)
	}
}
