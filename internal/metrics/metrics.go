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
	WebSockets      prometheus.Gauge
	EventsPublished *prometheus.CounterVec
	DBRetries       prometheus.Counter
	Logins          *prometheus.CounterVec
	BreakGlass      prometheus.Counter
	AuditSealed     prometheus.Counter
	AuditUnsealed   prometheus.Gauge
	AuditBatchRows  prometheus.Histogram
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
	}
	r.MustRegister(m.HTTPRequests, m.HTTPDuration, m.HTTPInFlight, m.Errors, m.CacheRequests,
		m.RateLimited, m.RedisBreaker, m.WebSockets, m.EventsPublished, m.DBRetries,
		m.Logins, m.BreakGlass, m.AuditSealed, m.AuditUnsealed, m.AuditBatchRows,
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
	for _, r := range []string{"success", "failure", "throttled", "mfa_required"} {
		m.Logins.WithLabelValues(r)
	}
	for _, r := range []string{"hit", "miss", "error", "bypass"} {
		m.CacheRequests.WithLabelValues(r)
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
	m.Registry.MustRegister(&wardCollector{load: load, maxAge: maxAge})
}

var (
	wardBedsDesc = prometheus.NewDesc("ward_beds", "Beds of a ward by state.", []string{"ward", "status"}, nil)
	wardOccDesc  = prometheus.NewDesc("ward_occupancy_ratio", "Occupied beds over beds in service, per ward.", []string{"ward"}, nil)
)

type wardCollector struct {
	load   func(context.Context) ([]WardBeds, error)
	maxAge time.Duration

	mu   sync.Mutex
	at   time.Time
	last []WardBeds
}

func (c *wardCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- wardBedsDesc
	ch <- wardOccDesc
}

// Collect reports the last good reading when the database does not answer
// within two seconds (the scrape still succeeds; the numbers age).
func (c *wardCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > c.maxAge {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		wards, err := c.load(ctx)
		cancel()
		if err == nil {
			c.last, c.at = wards, time.Now()
		}
	}
	for _, w := range c.last {
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
