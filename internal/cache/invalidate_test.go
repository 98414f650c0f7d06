package cache

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/redisclient"
	"github.com/hospital-erp/hospital-erp/internal/testenv"
)

// replica is one backend's tiered cache on the shared Redis, listening for
// deletions, with a short copy time of 50 ms and a long one of an hour.
func replica(t *testing.T, ctx context.Context, addr string) (*Tiered, *redisclient.Client) {
	t.Helper()
	return replicaTold(t, ctx, addr, nil)
}

// replicaTold is replica, telling listening each change of its state.
func replicaTold(t *testing.T, ctx context.Context, addr string, listening func(bool)) (*Tiered, *redisclient.Client) {
	t.Helper()
	rc, err := redisclient.New(redisclient.Options{URL: "redis://" + addr, OpenFor: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	tc := NewTiered(NewRedis(rc, "t:", nil), 100, 50*time.Millisecond, nil)
	go tc.Listen(ctx, rc, "t:", time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)), listening)
	return tc, rc
}

// eventually fails t unless ok becomes true within 5 s.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5 s: %s", what)
		}
	}
}

// keptLong waits until c keeps its copy of key longer than its short copy
// time (it is listening): the value in Redis is changed under it, and c
// still answers the old one 100 ms later.
func keptLong(t *testing.T, ctx context.Context, c *Tiered, rc *redisclient.Client, key string) {
	t.Helper()
	eventually(t, "the in-process copy of "+key+" kept long (listening)", func() bool {
		if err := rc.Set(ctx, "t:cache:"+key, "old", time.Hour).Err(); err != nil {
			return false
		}
		c.l1.Delete(ctx, key)
		if b, ok := c.Get(ctx, key); !ok || string(b) != "old" {
			return false
		}
		_ = rc.Set(ctx, "t:cache:"+key, "changed", time.Hour).Err()
		time.Sleep(100 * time.Millisecond)
		b, ok := c.Get(ctx, key)
		return ok && string(b) == "old"
	})
}

// replicas starts a Redis of the test's own and two replicas on it, a and
// b, and waits until b is listening; bListening is what b last told of its
// state.
func replicas(t *testing.T) (ctx context.Context, r *testenv.Redis, a, b *Tiered, rcb *redisclient.Client, bListening *atomic.Bool) {
	t.Helper()
	ctx = t.Context()
	r = testenv.NewRedis(t, testenv.TempDir(t))
	a, _ = replica(t, ctx, r.Addr())
	bListening = new(atomic.Bool)
	b, rcb = replicaTold(t, ctx, r.Addr(), bListening.Store)
	keptLong(t, ctx, b, rcb, "warm")
	return ctx, r, a, b, rcb, bListening
}

// A replica keeps a copy while it hears deletions, drops it as soon as
// another replica deletes the key, drops every copy when it stops hearing
// (Redis gone), and hears again once Redis is back.
func TestDeletionsReachEveryReplica(t *testing.T) {
	ctx, r, a, b, rcb, bListening := replicas(t)
	keptLong(t, ctx, b, rcb, "k")
	a.Delete(ctx, "k")
	eventually(t, "b drops k deleted by a", func() bool { _, ok := b.Get(ctx, "k"); return !ok })

	keptLong(t, ctx, b, rcb, "k2")
	if !bListening.Load() {
		t.Fatal("b keeps copies long but does not say it is listening")
	}
	r.Stop()
	// Redis is gone: only an in-process copy could answer.
	eventually(t, "b drops its copies when it stops hearing deletions", func() bool { _, ok := b.Get(ctx, "k2"); return !ok })
	if bListening.Load() {
		t.Error("b says it is listening with Redis gone")
	}

	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	keptLong(t, ctx, b, rcb, "k3")
	a.Delete(ctx, "k3")
	eventually(t, "b drops k3 deleted by a after Redis came back", func() bool { _, ok := b.Get(ctx, "k3"); return !ok })
}

// racing is a shared tier whose Get runs during() after reading the value,
// as if another replica deleted the key at that moment.
type racing struct {
	Cache
	during func()
}

func (r racing) Get(ctx context.Context, key string) ([]byte, bool) {
	b, ok := r.Cache.Get(ctx, key)
	if ok && r.during != nil {
		r.during()
	}
	return b, ok
}

// A value read from Redis just before another replica deleted the key is
// the old one: it is kept only briefly, not for the long copy time.
func TestValueReadBeforeADeletionIsNotKeptLong(t *testing.T) {
	ctx, _, a, b, rcb, _ := replicas(t)

	if err := rcb.Set(ctx, "t:cache:k", "old", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	inv := b.inv.Load()
	before := inv.seen("k")
	b.l2 = racing{Cache: b.l2, during: func() {
		a.Delete(ctx, "k") // the value b has just read is now deleted
		eventually(t, "b hears the deletion", func() bool { return inv.seen("k") != before })
	}}
	if v, ok := b.Get(ctx, "k"); !ok || string(v) != "old" {
		t.Fatalf("Get = %q, %v; want the value read before the deletion", v, ok)
	}
	b.l2 = b.l2.(racing).Cache
	time.Sleep(100 * time.Millisecond) // past the short copy time
	if v, ok := b.Get(ctx, "k"); ok {
		t.Fatalf("b still answers %q after the key was deleted: the copy read before the deletion was kept long", v)
	}
}

// A key's copy lives no longer than the key's own time-to-live, so that a
// deletion that never reached Redis is not hidden longer than before.
func TestCopyLivesNoLongerThanTheKey(t *testing.T) {
	ctx, _, _, b, rcb, _ := replicas(t)

	loads := 0
	load := func() (string, error) { loads++; return "v", nil }
	for range 2 { // the first loads and stores, the second fills the copy
		if _, err := GetOrLoad(ctx, b, "s", 200*time.Millisecond, load); err != nil {
			t.Fatal(err)
		}
	}
	// Redis still holds s for a while; change it under the copy.
	if err := rcb.Set(ctx, "t:cache:s", `"changed"`, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if v, _ := GetOrLoad(ctx, b, "s", 200*time.Millisecond, load); v != "changed" {
		t.Fatalf("after the key's time-to-live the copy still answers %q", v)
	}
}
