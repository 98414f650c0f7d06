package redisclient_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hospital-erp/hospital-erp/internal/redisclient"
	"github.com/hospital-erp/hospital-erp/internal/testenv"
)

// An open breaker lets a probe through once OpenFor has passed, even when
// every caller asks Available before sending anything (as the cache and
// the rate limiter do), and closes when the probe succeeds.
func TestBreakerRecoversWhenCallersAskFirst(t *testing.T) {
	r := testenv.NewRedis(t, testenv.TempDir(t))
	c, err := redisclient.New(redisclient.Options{URL: "redis://" + r.Addr(), OpenFor: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	for i := 0; c.Available(); i++ {
		if i == 50 {
			t.Fatal("breaker still closed after 50 failed commands")
		}
		_ = c.Get(ctx, "k").Err()
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	// Only callers that ask first: nothing is sent while the breaker is open.
	deadline := time.Now().Add(5 * time.Second)
	for !c.Available() {
		if time.Now().After(deadline) {
			t.Fatalf("breaker still open %v after Redis came back (state %d)", 5*time.Second, c.State())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := c.State(); got != 1 {
		t.Fatalf("state after OpenFor = %d, want 1 (half-open)", got)
	}
	if err := c.Get(ctx, "k").Err(); err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("probe: %v", err)
	}
	if got := c.State(); got != 0 {
		t.Fatalf("state after a successful probe = %d, want 0 (closed)", got)
	}
}

// Commands that wait for a connection longer than the time-out (this
// process has more in flight than its pool) fail, but say nothing about
// Redis: the breaker stays closed. So do commands whose caller gave up.
func TestBreakerIgnoresLocalFailures(t *testing.T) {
	r := testenv.NewRedis(t, testenv.TempDir(t))
	c, err := redisclient.New(redisclient.Options{URL: "redis://" + r.Addr(), PoolSize: 1, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	// BLPOP holds the only connection for 400 ms (go-redis extends the
	// read deadline of blocking commands by their own time-out).
	held := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		close(held)
		_ = c.BLPop(ctx, 400*time.Millisecond, "empty-list").Err()
	}()
	<-held
	time.Sleep(20 * time.Millisecond)
	pooled := 0
	for range 6 {
		if err := c.Get(ctx, "k").Err(); errors.Is(err, redis.ErrPoolTimeout) {
			pooled++
		}
	}
	wg.Wait()
	if pooled < 3 {
		t.Fatalf("%d of 6 commands timed out waiting for the pool, want at least 3 (the test did not hold the connection)", pooled)
	}
	if !c.Available() {
		t.Fatal("breaker opened on pool time-outs")
	}
	for range 6 {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := c.Get(cctx, "k").Err(); err == nil {
			t.Fatal("a command with an ended context succeeded")
		}
	}
	if !c.Available() {
		t.Fatal("breaker opened on commands whose caller gave up")
	}
	// A Redis that does not answer still opens it.
	r.Pause()
	defer r.Resume()
	for i := 0; c.Available(); i++ {
		if i == 50 {
			t.Fatal("breaker still closed after 50 commands to a hung Redis")
		}
		_ = c.Get(ctx, "k").Err()
	}
}
