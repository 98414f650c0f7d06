package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/config"
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
