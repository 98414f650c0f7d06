// Package cache is the API response cache (cache-aside): Redis when
// configured, an in-process map for a single instance. When Redis is down
// the cache is bypassed, never replaced by per-instance memory, because
// other replicas could not invalidate it; the only per-instance copies are
// Tiered's, which every replica drops when a key is deleted anywhere, and
// which live about a second while those deletions cannot reach them.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hospital-erp/hospital-erp/internal/redisclient"
)

// Cache stores byte values by key with a time-to-live. Errors are absorbed:
// a failing cache behaves as an empty one.
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, bool)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration)
	Delete(ctx context.Context, keys ...string)
}

// Observer counts cache outcomes for metrics: "hit", "miss", "error", "bypass".
type Observer func(result string)

// Redis is a Cache on the shared Redis client.
type Redis struct {
	client  *redisclient.Client
	prefix  string
	observe Observer
}

// NewRedis returns a cache storing keys under prefix+"cache:".
func NewRedis(c *redisclient.Client, prefix string, observe Observer) *Redis {
	if observe == nil {
		observe = func(string) {}
	}
	return &Redis{client: c, prefix: prefix + "cache:", observe: observe}
}

func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool) {
	if !r.client.Available() {
		r.observe("bypass")
		return nil, false
	}
	b, err := r.client.Get(ctx, r.prefix+key).Bytes()
	switch {
	case err == nil:
		r.observe("hit")
		return b, true
	case errors.Is(err, redis.Nil):
		r.observe("miss")
	case errors.Is(err, redisclient.ErrUnavailable):
		r.observe("bypass")
	default:
		r.observe("error")
	}
	return nil, false
}

func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) {
	if !r.client.Available() {
		return
	}
	_ = r.client.Set(ctx, r.prefix+key, value, ttl).Err()
}

func (r *Redis) Delete(ctx context.Context, keys ...string) {
	if len(keys) == 0 {
		return
	}
	// Not checked against the breaker first: an open one refuses the
	// command at once anyway. A key we could not delete expires with its TTL.
	_ = r.client.Del(ctx, r.full(keys)...).Err()
}

// full is keys with the cache's prefix.
func (r *Redis) full(keys []string) []string {
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = r.prefix + k
	}
	return full
}

// deleteAndPublish is Delete and the broadcast of the deletion (PUBLISH
// msg on channel) in one round trip, the DEL first: a replica that hears
// of it reads the key again from Redis already without it.
func (r *Redis) deleteAndPublish(ctx context.Context, keys []string, channel, msg string) {
	pipe := r.client.Pipeline()
	pipe.Del(ctx, r.full(keys)...)
	pipe.Publish(ctx, channel, msg)
	_, _ = pipe.Exec(ctx)
}

// Memory is an in-process Cache for a single instance (no REDIS_URL). It
// holds at most maxEntries; when full, expired entries are swept and, if
// still full, arbitrary ones are evicted down to nine tenths of it.
type Memory struct {
	mu         sync.Mutex
	entries    map[string]memEntry
	maxEntries int
	now        func() time.Time
	observe    Observer
}

type memEntry struct {
	value   []byte
	expires time.Time
	decoded any // value decoded by GetOrLoad, shared by its callers
}

// NewMemory returns an in-process cache.
func NewMemory(maxEntries int, observe Observer) *Memory {
	if observe == nil {
		observe = func(string) {}
	}
	return &Memory{entries: map[string]memEntry{}, maxEntries: maxEntries, now: time.Now, observe: observe}
}

func (m *Memory) Get(_ context.Context, key string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok || m.now().After(e.expires) {
		m.observe("miss")
		return nil, false
	}
	m.observe("hit")
	return e.value, true
}

func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) {
	m.setWith(key, value, func() time.Duration { return ttl })
}

// setWith stores value with the time-to-live ttl returns, calling ttl
// under the lock that Delete takes.
func (m *Memory) setWith(key string, value []byte, ttl func() time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.makeRoom()
	m.entries[key] = memEntry{value: value, expires: m.now().Add(ttl())}
}

// makeRoom, called with m.mu held, drops expired entries when the cache is
// full and, if it is still full, arbitrary ones down to nine tenths of
// maxEntries, so that a full cache is swept once per many Sets, not at
// every one.
func (m *Memory) makeRoom() {
	if len(m.entries) < m.maxEntries {
		return
	}
	now := m.now()
	for k, e := range m.entries {
		if now.After(e.expires) {
			delete(m.entries, k)
		}
	}
	keep := m.maxEntries - max(m.maxEntries/10, 1)
	for k := range m.entries {
		if len(m.entries) <= keep {
			break
		}
		delete(m.entries, k)
	}
}

// clear drops every entry.
func (m *Memory) clear() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.entries)
}

// getDecoded returns the decoded value GetOrLoad kept for key, with the
// bytes it was decoded from.
func (m *Memory) getDecoded(key string) (any, []byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok || e.decoded == nil || m.now().After(e.expires) {
		return nil, nil, false
	}
	m.observe("hit")
	return e.decoded, e.value, true
}

// setDecoded keeps v, decoded from raw, with key's entry if that entry
// still holds raw (not a newer value set meanwhile).
func (m *Memory) setDecoded(key string, raw []byte, v any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[key]; ok && len(raw) > 0 && len(e.value) == len(raw) && &e.value[0] == &raw[0] {
		e.decoded = v
		m.entries[key] = e
	}
}

func (m *Memory) Delete(_ context.Context, keys ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.entries, k)
	}
}

// boundedGetter is a Cache whose in-process copies can be kept no longer
// than the key's time-to-live (Tiered).
type boundedGetter interface {
	getWithin(ctx context.Context, key string, ttl time.Duration) ([]byte, bool)
}

// decodedCache is a Cache that can keep the decoded value of an in-process
// entry next to its bytes (Memory, and Tiered's in-process tier).
type decodedCache interface {
	getDecoded(key string) (any, []byte, bool)
	setDecoded(key string, raw []byte, v any)
}

// GetOrLoad returns the cached JSON value of key, or calls load, caches its
// result for ttl and returns it. Load errors are returned and not cached.
//
// An in-process entry keeps its decoded value too, so a hot key (the
// session checked on every request, a record being read) is decoded once
// per entry instead of once per request: decoding was a tenth of the
// backend's CPU per patient read. Callers of one key then share the
// slices and maps inside the value and must not change them.
func GetOrLoad[T any](ctx context.Context, c Cache, key string, ttl time.Duration, load func() (T, error)) (T, error) {
	v, _, err := GetOrLoadJSON(ctx, c, key, ttl, load)
	return v, err
}

// GetOrLoadJSON is GetOrLoad that also returns the value's JSON encoding
// (json.Marshal's), as cached: a handler whose response is that value
// sends these bytes instead of encoding it again. The bytes are shared
// and must not be changed; they are nil when v could not be encoded.
func GetOrLoadJSON[T any](ctx context.Context, c Cache, key string, ttl time.Duration, load func() (T, error)) (T, []byte, error) {
	d, _ := c.(decodedCache)
	if d != nil {
		if v, b, ok := d.getDecoded(key); ok {
			if tv, ok := v.(T); ok {
				return tv, b, nil
			}
		}
	}
	var b []byte
	var ok bool
	if w, within := c.(boundedGetter); within {
		b, ok = w.getWithin(ctx, key, ttl)
	} else {
		b, ok = c.Get(ctx, key)
	}
	if ok {
		var v T
		if err := json.Unmarshal(b, &v); err == nil {
			if d != nil {
				d.setDecoded(key, b, v)
			}
			return v, b, nil
		}
	}
	v, err := load()
	if err != nil {
		return v, nil, err
	}
	if b, err = json.Marshal(v); err != nil {
		return v, nil, nil // not cached; the caller encodes v itself
	}
	c.Set(ctx, key, b, ttl)
	return v, b, nil
}

// Tiered puts an in-process copy in front of a shared cache: a hot key (a
// session checked on every request, a patient record being read) is served
// from memory, and only read again from the shared cache when it expires
// or is deleted. Deletes clear both tiers of this process and, once Listen
// runs, are broadcast to every replica, which drops its copy: then a copy
// lives up to longTTL. While this process is not receiving the broadcasts
// (no Listen, Redis down, the subscription being re-established), a copy
// lives l1TTL (about a second), which bounds how long a change made
// elsewhere (a revoked session, an edited record) can go unseen.
type Tiered struct {
	l1    *Memory
	l2    Cache
	l1TTL time.Duration
	inv   atomic.Pointer[invalidations] // nil until Listen
}

// NewTiered returns l2 behind an in-process tier of at most maxEntries
// entries kept for l1TTL; observe counts the in-process hits (l2 counts
// the rest).
func NewTiered(l2 Cache, maxEntries int, l1TTL time.Duration, observe Observer) *Tiered {
	hits := func(result string) {
		if result == "hit" && observe != nil {
			observe(result)
		}
	}
	return &Tiered{l1: NewMemory(maxEntries, hits), l2: l2, l1TTL: l1TTL}
}

func (t *Tiered) Get(ctx context.Context, key string) ([]byte, bool) { return t.get(ctx, key, 0) }

// getWithin is Get for a key stored with ttl: its in-process copy lives no
// longer than ttl either, so a deletion that could not be made (Redis
// unreachable from the replica that made the change) goes unseen no
// longer than the key's own time-to-live allows.
func (t *Tiered) getWithin(ctx context.Context, key string, ttl time.Duration) ([]byte, bool) {
	return t.get(ctx, key, ttl)
}

func (t *Tiered) get(ctx context.Context, key string, within time.Duration) ([]byte, bool) {
	if b, ok := t.l1.Get(ctx, key); ok {
		return b, true
	}
	inv := t.inv.Load()
	var before seen
	if inv != nil {
		before = inv.seen(key)
	}
	b, ok := t.l2.Get(ctx, key)
	if !ok {
		return b, ok
	}
	if inv == nil {
		t.l1.Set(ctx, key, b, t.l1TTL)
		return b, true
	}
	// A copy is kept long only when no deletion of key (nor a gap in the
	// broadcasts) came between reading it and keeping it: otherwise the
	// value read may be the one just deleted. The check is made under the
	// in-process tier's lock, which a received deletion takes to drop the
	// key, so it cannot fall between the check and the keeping.
	t.l1.setWith(key, b, func() time.Duration {
		if inv.listening.Load() && inv.seen(key) == before {
			if within > 0 {
				return max(min(inv.longTTL, within), t.l1TTL)
			}
			return inv.longTTL
		}
		return t.l1TTL
	})
	return b, true
}

func (t *Tiered) getDecoded(key string) (any, []byte, bool) { return t.l1.getDecoded(key) }

func (t *Tiered) setDecoded(key string, raw []byte, v any) { t.l1.setDecoded(key, raw, v) }

// Set writes the shared tier only (and drops this process's copy): the
// in-process tier is filled from shared hits alone, so when Redis is down
// nothing is kept per instance and the cache is bypassed as documented.
func (t *Tiered) Set(ctx context.Context, key string, value []byte, ttl time.Duration) {
	t.l1.Delete(ctx, key)
	t.l2.Set(ctx, key, value, ttl)
}

// Delete drops keys from this process's tier and the shared one and, once
// Listen runs, tells the other replicas to drop their copies.
func (t *Tiered) Delete(ctx context.Context, keys ...string) {
	if len(keys) == 0 {
		return
	}
	inv := t.inv.Load()
	if inv != nil {
		inv.bump(keys)
	}
	t.l1.Delete(ctx, keys...)
	if inv != nil {
		inv.delete(ctx, t.l2, keys)
		return
	}
	t.l2.Delete(ctx, keys...)
}
