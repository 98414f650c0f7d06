package ratelimit

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/config"
	"github.com/hospital-erp/hospital-erp/internal/redisclient"
	"github.com/hospital-erp/hospital-erp/internal/testenv"
)

func TestMemoryGCRA(t *testing.T) {
	m := NewMemory()
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	rate := config.Rate{N: 3, Period: time.Minute}
	for i := range 3 {
		if r := m.Allow(context.Background(), "k", rate); !r.Allowed {
			t.Fatalf("request %d refused within the burst", i+1)
		}
	}
	r := m.Allow(context.Background(), "k", rate)
	if r.Allowed || r.RetryAfter <= 0 || r.RetryAfter > 20*time.Second {
		t.Fatalf("4th request: %+v; want refused with retry within 20s", r)
	}
	if other := m.Allow(context.Background(), "other", rate); !other.Allowed {
		t.Fatal("keys are not independent")
	}
	now = now.Add(20 * time.Second) // one emission interval
	if r := m.Allow(context.Background(), "k", rate); !r.Allowed {
		t.Fatalf("after the interval: %+v", r)
	}
	// A refused request does not push the next allowed time further out,
	// so hammering cannot lock a key out for ever.
	for range 100 {
		m.Allow(context.Background(), "k", rate)
	}
	now = now.Add(20 * time.Second)
	if r := m.Allow(context.Background(), "k", rate); !r.Allowed {
		t.Fatalf("refusals extended the lock-out: %+v", r)
	}
}

// Against a real Redis: two replicas (two limiters) sharing a busy key
// never allow more than the quota between them, and leasing saves most
// Redis calls; a key used less than once per lease period is counted in
// Redis at every request.
func TestResilientLeases(t *testing.T) {
	srv := testenv.NewRedis(t, t.TempDir())
	newLimiter := func() *Resilient {
		c, err := redisclient.New(redisclient.Options{URL: "redis://" + srv.Addr(), DialTimeout: time.Second, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return NewResilient(c, "test:")
	}
	a, b := newLimiter(), newLimiter()
	ctx := context.Background()
	evals := func() int {
		info, err := a.redis.Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, line := range strings.Split(info, "\n") {
			if strings.HasPrefix(line, "cmdstat_evalsha:") || strings.HasPrefix(line, "cmdstat_eval:") {
				v := strings.TrimPrefix(strings.Split(line, ",")[0], strings.Split(line, "=")[0]+"=")
				c, _ := strconv.Atoi(v)
				n += c
			}
		}
		return n
	}
	rate := config.Rate{N: 3000, Period: time.Minute}
	before := evals()
	allowed := 0
	start := time.Now()
	for i := range 4000 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if r := l.Allow(ctx, "busy", rate); r.Allowed {
			if r.Degraded {
				t.Fatal("answer from memory though Redis is up")
			}
			allowed++
		}
	}
	// The quota, plus what flowed back in while the loop ran.
	if most := rate.N + 1 + int(time.Since(start)*time.Duration(rate.N)/rate.Period); allowed > most {
		t.Fatalf("two replicas allowed %d; the quota allows %d", allowed, most)
	}
	if allowed < rate.N*9/10 {
		t.Errorf("allowed %d of a quota of %d: leases voided too many tokens", allowed, rate.N)
	}
	if n := evals() - before; n > 4000/4 {
		t.Errorf("%d Redis calls for 4,000 requests of a busy key: leases not used", n)
	}
	// A quiet key: every request is a Redis call.
	before = evals()
	for range 3 {
		if r := a.Allow(ctx, "quiet", rate); !r.Allowed {
			t.Fatal("quiet key refused")
		}
		time.Sleep(leaseTTL + 20*time.Millisecond)
	}
	if n := evals() - before; n != 3 {
		t.Errorf("quiet key: %d Redis calls for 3 requests, want 3", n)
	}
}
