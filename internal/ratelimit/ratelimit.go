// Package ratelimit limits requests per key (client IP, user, login name)
// with the generic cell rate algorithm: in Redis, shared by every replica,
// and in process memory when Redis is unset or unavailable, so that limits
// (the login limit above all) stay enforced during a Redis outage.
package ratelimit

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"

	"github.com/hospital-erp/hospital-erp/internal/config"
	"github.com/hospital-erp/hospital-erp/internal/redisclient"
)

// Result of one Allow call.
type Result struct {
	Allowed    bool
	Limit      int
	Remaining  int
	RetryAfter time.Duration // when not allowed: wait this long
	ResetAfter time.Duration // until the full quota is back
	// Degraded is true when the answer came from process memory because
	// Redis was unavailable.
	Degraded bool
}

// Limiter decides whether one more event for key is allowed under rate.
type Limiter interface {
	// Allow counts one event and says whether it was within the rate.
	Allow(ctx context.Context, key string, rate config.Rate) Result
	// Peek says whether one more event would be allowed, without counting
	// it (login failures are counted only when they happen).
	Peek(ctx context.Context, key string, rate config.Rate) Result
	// Reset forgets key (after a successful login).
	Reset(ctx context.Context, key string)
}

// Resilient asks Redis and falls back to process memory when Redis fails.
type Resilient struct {
	redis    *redisclient.Client
	rl       *redis_rate.Limiter
	prefix   string
	fallback *Memory
}

// NewResilient returns a limiter on the shared Redis with a memory fallback.
func NewResilient(c *redisclient.Client, prefix string) *Resilient {
	return &Resilient{redis: c, rl: redis_rate.NewLimiter(c), prefix: prefix + "rl:", fallback: NewMemory()}
}

func (r *Resilient) Allow(ctx context.Context, key string, rate config.Rate) Result {
	if r.redis.Available() {
		res, err := r.rl.Allow(ctx, r.prefix+key, redis_rate.Limit{Rate: rate.N, Burst: rate.N, Period: rate.Period})
		if err == nil {
			out := Result{Allowed: res.Allowed > 0, Limit: rate.N, Remaining: res.Remaining, ResetAfter: res.ResetAfter}
			if !out.Allowed {
				out.RetryAfter = res.RetryAfter
			}
			return out
		}
	}
	out := r.fallback.Allow(ctx, key, rate)
	out.Degraded = true
	return out
}

func (r *Resilient) Peek(ctx context.Context, key string, rate config.Rate) Result {
	if r.redis.Available() {
		res, err := r.rl.AllowN(ctx, r.prefix+key, redis_rate.Limit{Rate: rate.N, Burst: rate.N, Period: rate.Period}, 0)
		if err == nil {
			interval := rate.Period / time.Duration(rate.N)
			out := Result{Allowed: res.Remaining >= 1, Limit: rate.N, Remaining: res.Remaining, ResetAfter: res.ResetAfter}
			if !out.Allowed {
				out.RetryAfter = max(res.ResetAfter-time.Duration(rate.N-1)*interval, time.Second)
			}
			return out
		}
	}
	out := r.fallback.Peek(ctx, key, rate)
	out.Degraded = true
	return out
}

func (r *Resilient) Reset(ctx context.Context, key string) {
	r.fallback.Reset(ctx, key)
	if r.redis.Available() {
		_ = r.rl.Reset(ctx, r.prefix+key)
	}
}

// Memory is an in-process GCRA limiter.
type Memory struct {
	mu       sync.Mutex
	tat      map[string]time.Time // theoretical arrival time per key
	now      func() time.Time
	lastScan time.Time
}

// NewMemory returns an in-process limiter.
func NewMemory() *Memory {
	return &Memory{tat: map[string]time.Time{}, now: time.Now}
}

func (m *Memory) Allow(_ context.Context, key string, rate config.Rate) Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweep(now)
	interval := rate.Period / time.Duration(rate.N)
	burst := time.Duration(rate.N) * interval
	tat := m.tat[key]
	if tat.Before(now) {
		tat = now
	}
	newTat := tat.Add(interval)
	allowAt := newTat.Add(-burst)
	if now.Before(allowAt) {
		return Result{Allowed: false, Limit: rate.N, Remaining: 0,
			RetryAfter: allowAt.Sub(now), ResetAfter: tat.Sub(now)}
	}
	m.tat[key] = newTat
	remaining := int(math.Floor(float64(now.Sub(allowAt)) / float64(interval)))
	return Result{Allowed: true, Limit: rate.N, Remaining: min(remaining, rate.N-1), ResetAfter: newTat.Sub(now)}
}

func (m *Memory) Peek(_ context.Context, key string, rate config.Rate) Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	interval := rate.Period / time.Duration(rate.N)
	burst := time.Duration(rate.N) * interval
	tat := m.tat[key]
	if tat.Before(now) {
		tat = now
	}
	allowAt := tat.Add(interval).Add(-burst)
	if now.Before(allowAt) {
		return Result{Allowed: false, Limit: rate.N, RetryAfter: allowAt.Sub(now), ResetAfter: tat.Sub(now)}
	}
	remaining := int(math.Floor(float64(now.Sub(allowAt)) / float64(interval)))
	return Result{Allowed: true, Limit: rate.N, Remaining: min(remaining+1, rate.N), ResetAfter: tat.Sub(now)}
}

func (m *Memory) Reset(_ context.Context, key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.tat, key)
}

// sweep drops keys whose quota is fully back, at most once a minute.
func (m *Memory) sweep(now time.Time) {
	if now.Sub(m.lastScan) < time.Minute {
		return
	}
	m.lastScan = now
	for k, t := range m.tat {
		if t.Before(now) {
			delete(m.tat, k)
		}
	}
}
