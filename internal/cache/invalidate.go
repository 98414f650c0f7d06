package cache

import (
	"context"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/redisclient"
)

// invalidations carries deletions between the replicas' in-process tiers
// over a Redis channel (the client-side caching pattern with broadcast
// invalidation). Pub/sub delivers at most once: a replica that is not
// subscribed may miss deletions, so while it is not (and when it
// subscribes again) it drops its whole tier and keeps copies briefly.
type invalidations struct {
	client    *redisclient.Client
	channel   string
	longTTL   time.Duration
	listening atomic.Bool
	// versions counts the deletions seen per hash bucket of keys, and
	// gaps the subscriptions lost or made, which stand for a deletion of
	// every key: a copy read before either is not kept long.
	versions [256]atomic.Uint64
	gaps     atomic.Uint64
	seed     maphash.Seed
	// shared is the shared tier when it is Redis reached through the
	// broadcast's own client, as the backend wires them: a deletion and
	// its broadcast then go in one round trip. nil otherwise.
	shared *Redis
}

// separator joins the keys of one deletion in a message; keys are ours
// (session:<uuid>, patient:<uuid>, ...) and never contain it.
const separator = "\n"

// seen is what a reader saw of key's deletions before reading it.
type seen struct{ gaps, version uint64 }

func (inv *invalidations) seen(key string) seen {
	return seen{inv.gaps.Load(), inv.versions[maphash.String(inv.seed, key)%uint64(len(inv.versions))].Load()}
}

func (inv *invalidations) bump(keys []string) {
	for _, k := range keys {
		inv.versions[maphash.String(inv.seed, k)%uint64(len(inv.versions))].Add(1)
	}
}

// delete deletes keys from the shared tier l2 and broadcasts the deletion.
func (inv *invalidations) delete(ctx context.Context, l2 Cache, keys []string) {
	if inv.shared != nil {
		inv.shared.deleteAndPublish(ctx, keys, inv.channel, strings.Join(keys, separator))
		return
	}
	l2.Delete(ctx, keys...)
	inv.publish(ctx, keys)
}

func (inv *invalidations) publish(ctx context.Context, keys []string) {
	if !inv.client.Available() {
		return
	}
	// Lost only with Redis, when the receivers' subscriptions fail too
	// and they drop their tiers themselves.
	_ = inv.client.Publish(ctx, inv.channel, strings.Join(keys, separator)).Err()
}

// Listen receives the deletions other replicas (and this one) broadcast
// and drops those keys from the in-process tier, until ctx ends; it also
// makes Delete broadcast. While subscribed, copies live up to longTTL
// instead of l1TTL; listening (may be nil) is told each change. Call it
// once, before serving, in its own goroutine.
func (t *Tiered) Listen(ctx context.Context, c *redisclient.Client, prefix string, longTTL time.Duration, log *slog.Logger,
	listening func(bool)) {
	if listening == nil {
		listening = func(bool) {}
	}
	inv := &invalidations{client: c, channel: prefix + "cache:invalidate", longTTL: longTTL, seed: maphash.MakeSeed()}
	if r, ok := t.l2.(*Redis); ok && r.client == c {
		inv.shared = r
	}
	t.inv.Store(inv)
	gap := func() {
		listening(false)
		inv.listening.Store(false)
		inv.gaps.Add(1)
		t.l1.clear()
	}
	c.Listen(ctx, inv.channel, redisclient.Listener{
		// Deletions made before the subscription may have been missed.
		Subscribed: func() { gap(); inv.listening.Store(true); listening(true) },
		Message: func(payload string) {
			keys := strings.Split(payload, separator)
			inv.bump(keys)
			t.l1.Delete(ctx, keys...)
		},
		Lost: func(err error) {
			gap()
			log.Warn("cache: invalidation channel lost; in-process copies kept briefly until it is back", "error", err)
		},
	})
}
