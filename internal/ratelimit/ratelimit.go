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
//
// A busy key does not cost a Redis round trip per request: when a key's
// tokens are being spent faster than one per leaseTTL in this process, the
// next Redis call takes several at once (a lease, at most 1% of the quota,
// doubling while the key stays busy, halving when it calms down) and
// requests spend them in process. Tokens a lease does not spend within
// leaseTTL are void, so a key can be limited up to one lease early per
// replica; a key used less than once per leaseTTL (a person, a login limit
// of a few per minute) is counted in Redis at every request, exactly. A
// busy key that was refused is refused in process until Redis said a token
// comes back (at most leaseTTL), so a client hammering past its limit does
// not hammer Redis too.
type Resilient struct {
	redis    *redisclient.Client
	rl       *redis_rate.Limiter
	prefix   string
	fallback *Memory

	mu        sync.Mutex
	leases    map[string]*lease
	lastSweep time.Time
	now       func() time.Time
}

// lease is tokens of one key taken from Redis in one call, spent here.
type lease struct {
	left      int       // tokens not spent yet
	size      int       // tokens the call that took them asked for
	until     time.Time // unspent tokens are void after this
	remaining int       // the quota Redis reported left after the call
	reset     time.Duration
	retryAt   time.Time // refused: Redis said no token before this (at most leaseTTL ahead)
}

const leaseTTL = 100 * time.Millisecond

// leaseMax is the most tokens taken at once for rate: 1% of the quota, at
// most 64; below 2, keys are not leased.
func leaseMax(rate config.Rate) int { return min(rate.N/100, 64) }

// limit is rate as redis_rate's GCRA limit: the whole quota may come at once.
func limit(rate config.Rate) redis_rate.Limit {
	return redis_rate.Limit{Rate: rate.N, Burst: rate.N, Period: rate.Period}
}

// NewResilient returns a limiter on the shared Redis with a memory fallback.
func NewResilient(c *redisclient.Client, prefix string) *Resilient {
	return &Resilient{redis: c, rl: redis_rate.NewLimiter(c), prefix: prefix + "rl:", fallback: NewMemory(),
		leases: map[string]*lease{}, now: time.Now}
}

func (r *Resilient) Allow(ctx context.Context, key string, rate config.Rate) Result {
	if r.redis.Available() {
		now := r.now()
		size, most := 1, leaseMax(rate)
		if most > 1 {
			r.mu.Lock()
			if l := r.leases[key]; l != nil {
				if now.Before(l.until) && l.left > 0 {
					l.left--
					out := Result{Allowed: true, Limit: rate.N, Remaining: l.remaining + l.left, ResetAfter: l.reset}
					r.mu.Unlock()
					return out
				}
				if now.Before(l.retryAt) { // refused a moment ago: no token before retryAt
					out := Result{Allowed: false, Limit: rate.N, RetryAfter: l.retryAt.Sub(now), ResetAfter: l.reset}
					r.mu.Unlock()
					return out
				}
				if now.Before(l.until) {
					size = min(l.size*2, most) // spent before it lapsed: busy
				} else {
					size = max(l.size/2, 1)
				}
			}
			r.mu.Unlock()
		}
		res, err := r.rl.AllowAtMost(ctx, r.prefix+key, limit(rate), size)
		if err == nil {
			if most > 1 {
				l := &lease{left: max(res.Allowed-1, 0), size: size, until: now.Add(leaseTTL),
					remaining: res.Remaining, reset: res.ResetAfter}
				if res.Allowed == 0 {
					l.retryAt = now.Add(min(res.RetryAfter, leaseTTL))
				}
				r.keep(key, l, now)
			}
			out := Result{Allowed: res.Allowed > 0, Limit: rate.N, Remaining: res.Remaining + max(res.Allowed-1, 0),
				ResetAfter: res.ResetAfter}
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

// keep stores key's lease, and drops leases idle for a minute (at most
// once a minute), so that the map holds only keys in use.
func (r *Resilient) keep(key string, l *lease, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leases[key] = l
	if now.Sub(r.lastSweep) < time.Minute {
		return
	}
	r.lastSweep = now
	for k, l := range r.leases {
		if now.Sub(l.until) > time.Minute {
			delete(r.leases, k)
		}
	}
}

func (r *Resilient) Peek(ctx context.Context, key string, rate config.Rate) Result {
	if r.redis.Available() {
		res, err := r.rl.AllowN(ctx, r.prefix+key, limit(rate), 0)
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
	r.mu.Lock()
	delete(r.leases, key)
	r.mu.Unlock()
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
