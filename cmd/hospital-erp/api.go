package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/access"
	"github.com/hospital-erp/hospital-erp/internal/admission"
	"github.com/hospital-erp/hospital-erp/internal/appointment"
	"github.com/hospital-erp/hospital-erp/internal/audit"
	"github.com/hospital-erp/hospital-erp/internal/cache"
	"github.com/hospital-erp/hospital-erp/internal/config"
	"github.com/hospital-erp/hospital-erp/internal/events"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/httpapi"
	"github.com/hospital-erp/hospital-erp/internal/idempotency"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/metrics"
	"github.com/hospital-erp/hospital-erp/internal/patient"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/queue"
	"github.com/hospital-erp/hospital-erp/internal/ratelimit"
	"github.com/hospital-erp/hospital-erp/internal/redisclient"
	"github.com/hospital-erp/hospital-erp/internal/ward"
)

func runAPI(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig(config.CmdAPI, getenv, nil)
	if err != nil {
		return err
	}
	log, stopLogs := serviceLogger(ctx, stdout, cfg.LogLevel, "backend")
	defer stopLogs()
	m := metrics.New("backend")
	b, err := newBackend(ctx, cfg, log, m, time.Now)
	if err != nil {
		return err
	}
	defer b.Close()
	return serve(ctx, log, cfg, b.Server, m, nil, b.StopStreams, b.Server)
}

// localCacheTTL is how long a replica keeps its in-process copy of a
// cached key while it hears the deletions broadcast by every replica (at
// most the key's own time-to-live: a session's 5 s, a record's CACHE_TTL).
const localCacheTTL = 30 * time.Second

// backend is the wired backend: pools, Redis, event bus, services, handler.
type backend struct {
	DB       *postgres.DB
	Redis    *redisclient.Client
	Bus      *events.Bus
	Identity *identity.Service
	Access   *access.Checker
	Server   *httpapi.Server
	shutdown chan struct{}
	cancel   context.CancelFunc
}

// newBackend connects to PostgreSQL (through PgBouncer) and Redis and wires
// every module. It is the only place that builds the backend. now is the
// clock of every service (tests pass one they control).
func newBackend(ctx context.Context, cfg *config.Config, log *slog.Logger, m *metrics.Metrics, now hospital.Clock) (*backend, error) {
	keys, err := identity.ParseKeys(cfg.JWTPrivateKeys)
	if err != nil {
		return nil, fmt.Errorf("JWT_PRIVATE_KEYS: %w", err)
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{MaxConns: cfg.DatabaseMaxConns,
		StatementTimeout: cfg.DatabaseStmtTimeout, AcquireTimeout: cfg.DatabasePoolWait, ConnectTimeout: cfg.DatabaseConnectRetry,
		OnRetry: m.DBRetries.Inc})
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	m.RegisterPool(db.Pool)

	var (
		rc      *redisclient.Client
		tiered  *cache.Tiered
		c       cache.Cache
		limiter ratelimit.Limiter
	)
	if cfg.RedisURL != "" || len(cfg.RedisSentinelAddrs) > 0 {
		redisclient.SetLogger(log)
		rc, err = redisclient.New(redisclient.Options{URL: cfg.RedisURL, SentinelAddrs: cfg.RedisSentinelAddrs,
			MasterName: cfg.RedisMasterName, Password: cfg.RedisPassword, DialTimeout: cfg.RedisDialTimeout,
			Timeout: cfg.RedisTimeout, OnStateChange: func(s int) {
				m.RedisBreaker.Set(float64(s))
				log.Warn("redis circuit breaker", "state", []string{"closed", "half-open", "open"}[s])
			}})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		// Hot keys (sessions, records being read) are served from memory;
		// every replica drops its copy when a key is deleted anywhere
		// (tiered.Listen, started below), and keeps copies a second only
		// while it cannot hear those deletions.
		tiered = cache.NewTiered(cache.NewRedis(rc, cfg.RedisKeyPrefix, m.CacheObserver()), 20_000, time.Second, m.CacheObserver())
		c = tiered
		limiter = ratelimit.NewResilient(rc, cfg.RedisKeyPrefix)
		log.Info("redis configured", "sentinel", len(cfg.RedisSentinelAddrs) > 0)
	} else {
		c = cache.NewMemory(50_000, m.CacheObserver())
		limiter = ratelimit.NewMemory()
		log.Info("redis not configured: in-process cache, rate limits and event bus (run one replica only)")
	}
	bus := events.New(events.Options{Redis: rc, Prefix: cfg.RedisKeyPrefix, Replay: cfg.EventReplayBuffer, Logger: log,
		Published: func(transport string, ok bool) {
			result := "ok"
			if !ok {
				result = "error"
			}
			m.EventsPublished.WithLabelValues(transport, result).Inc()
		}})
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go bus.Run(bctx)
	if tiered != nil {
		go tiered.Listen(bctx, rc, cfg.RedisKeyPrefix, localCacheTTL, log, func(on bool) {
			v := 0.0
			if on {
				v = 1
			}
			m.CacheListening.Set(v)
		})
	}
	go audit.RunSealer(bctx, db, log, audit.SealerOptions{Interval: cfg.AuditSealInterval,
		Sealed: func(n int, unsealed int64) {
			m.AuditSealed.Add(float64(n))
			m.AuditUnsealed.Set(float64(unsealed))
		}})
	go audit.RunPartitions(bctx, db, log, time.Hour, m.AuditPartitionsAt.SetToCurrentTime)
	go audit.RunVerifier(bctx, db, log, audit.VerifierOptions{Interval: cfg.AuditVerifyInterval, Blocks: 1000, RecheckRows: 100_000,
		Verified: func(result string, rows int64) {
			m.AuditVerifications.WithLabelValues(result).Inc()
			m.AuditVerifiedRows.Add(float64(rows))
			switch result {
			case "ok":
				m.AuditVerified.WithLabelValues().Set(1)
			case "broken":
				m.AuditVerified.WithLabelValues().Set(0)
			default: // the chain could not be read: no verdict
				return
			}
			m.AuditVerifiedAt.SetToCurrentTime()
		}})

	ids, err := identity.NewService(db, c, limiter, keys, identity.Settings{
		Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, AccessTTL: cfg.AccessTokenTTL,
		IdleTimeout: cfg.SessionIdleTimeout, MaxLifetime: cfg.SessionMaxLifetime, LoginRate: cfg.RateLimitLogin,
		MFAKey: cfg.MFAKey, RefreshReuseGrace: cfg.RefreshReuseGrace,
	}, now, identity.Observer{
		Login:    func(result string) { m.Logins.WithLabelValues(result).Inc() },
		Rejected: func(scope string) { m.RateLimited.WithLabelValues(scope).Inc() },
	})
	if err != nil {
		cancel()
		db.Close()
		return nil, fmt.Errorf("MFA_ENCRYPTION_KEY: %w", err)
	}
	ac := access.NewChecker(db, cfg.EmergencyAccessTTL, now, m.BreakGlass.Inc)
	reads := audit.NewBatcher(db, audit.BatcherOptions{Observe: func(rows int, d time.Duration) {
		m.AuditBatchRows.Observe(float64(rows))
		m.AuditBatchTime.Observe(d.Seconds())
	}})
	go reads.Run(bctx, 2)
	patients := patient.NewService(db, c, cfg.CacheTTL, bus, ac, reads, now)
	queues := queue.NewService(db, bus, patients, cfg.Location, now, queue.Observer{Called: m.ObserveQueueWait})
	wards := ward.NewService(db, c, cfg.CacheTTL, bus, reads, cfg.Location, now)
	appts := appointment.NewService(db, patients, ac, queues, bus, reads, cfg.Location, now)
	m.RegisterWardOccupancy(wards.Occupancy, 15*time.Second)
	m.RegisterQueues(queues.Lengths, 15*time.Second)
	m.RegisterAppointmentsToday(appts.TodayByStatus, 15*time.Second)
	admissions := admission.NewService(db, patients, ac, wards, bus, reads, admission.Observer{
		Admitted:    func(source string) { m.Admissions.WithLabelValues(source).Inc() },
		Transferred: m.Transfers.Inc,
		Discharged:  func(disposition string) { m.Discharges.WithLabelValues(disposition).Inc() },
		Cancelled:   m.Cancellations.Inc,
	})
	go idempotency.RunExpiry(bctx, db, log, 24*time.Hour, 10*time.Minute)
	shutdown := make(chan struct{})
	srv := httpapi.New(httpapi.Deps{
		Log: log, Config: cfg, DB: db, Redis: rc, Metrics: m, Limiter: limiter,
		Identity:   ids,
		Access:     ac,
		Audit:      audit.NewReader(db),
		Patients:   patients,
		Appts:      appts,
		Queue:      queues,
		Wards:      wards,
		Admissions: admissions,
		Bus:        bus,
		Shutdown:   shutdown,
	})
	return &backend{DB: db, Redis: rc, Bus: bus, Identity: ids, Access: ac, Server: srv, shutdown: shutdown, cancel: cancel}, nil
}

// StopStreams closes WebSocket connections (with "going away") before the
// HTTP server shuts down; Shutdown does not wait for hijacked connections.
func (b *backend) StopStreams() {
	select {
	case <-b.shutdown:
	default:
		close(b.shutdown)
	}
}

// Close releases the pools.
func (b *backend) Close() {
	b.StopStreams()
	b.cancel()
	if b.Redis != nil {
		_ = b.Redis.Close()
	}
	b.DB.Close()
}
