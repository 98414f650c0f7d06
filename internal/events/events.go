// Package events is the event bus that carries changes to WebSocket clients
// on every backend replica: Redis pub/sub between replicas, an in-process
// fan-out inside one, and a replay buffer so a reconnecting client gets what
// it missed or, when that is gone, a "resync" signal.
package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hospital-erp/hospital-erp/internal/redisclient"
)

// Event is one change notification. Data must not carry more than the
// subscribers of Topic may see.
type Event struct {
	ID    string          `json:"id"`
	Topic string          `json:"topic"`
	Type  string          `json:"type"`
	At    time.Time       `json:"at"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// Resync is the Type of the signal sent when a subscriber may have missed
// events and must reload its view.
const Resync = "resync"

// Bus publishes events and hands them to local subscribers.
type Bus struct {
	log       *slog.Logger
	redis     *redisclient.Client // nil: this process only
	channel   string
	instance  string
	seq       atomic.Uint64
	published func(transport string, ok bool)

	// out holds the events waiting for the publisher that Run starts;
	// while none runs (sending is false), Publish sends them itself.
	// Publish queues under a read lock of stop and the publisher drops
	// sending under its write lock, so nothing is queued after the
	// publisher's last look at out.
	out     chan outgoing
	sending atomic.Bool
	stop    sync.RWMutex

	mu   sync.Mutex
	subs map[*Subscription]struct{}
	ring []Event // most recent events, oldest first
	seen map[string]struct{}
	max  int
}

// Options configure New.
type Options struct {
	Redis  *redisclient.Client // nil for a single instance
	Prefix string              // Redis key/channel prefix
	Replay int                 // events kept for reconnecting clients
	Logger *slog.Logger
	// Published is called after each publish with the transport used
	// ("redis" or "local") and whether it succeeded; for metrics.
	Published func(transport string, ok bool)
}

// New returns a bus. Call Run to receive events from other replicas.
func New(o Options) *Bus {
	if o.Replay <= 0 {
		o.Replay = 1024
	}
	if o.Published == nil {
		o.Published = func(string, bool) {}
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	var out chan outgoing // only a bus with Redis has a publisher
	if o.Redis != nil {
		out = make(chan outgoing, publishQueue)
	}
	return &Bus{log: o.Logger, redis: o.Redis, channel: o.Prefix + "events", instance: hex.EncodeToString(b),
		published: o.Published, out: out, subs: map[*Subscription]struct{}{}, seen: map[string]struct{}{}, max: o.Replay}
}

// outgoing is an event and its message on the Redis channel.
type outgoing struct {
	e   Event
	msg []byte
}

// publishQueue bounds the events waiting for the publisher; past it,
// Publish sends the event itself.
const publishQueue = 1024

// Publish sends an event to every subscriber of its topic on every replica.
// It fills in ID and At. When Redis cannot take it, local subscribers still
// get it and the others get a resync once Redis is back.
func (b *Bus) Publish(ctx context.Context, topic, typ string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	e := Event{ID: b.instance + "-" + strconv.FormatUint(b.seq.Add(1), 10), Topic: topic, Type: typ, At: time.Now().UTC(), Data: raw}
	if b.redis == nil {
		b.deliver(e)
		b.published("local", true)
		return nil
	}
	msg, _ := json.Marshal(e)
	b.stop.RLock()
	queued := false
	if b.sending.Load() {
		select {
		case b.out <- outgoing{e, msg}:
			queued = true
		default:
		}
	}
	b.stop.RUnlock()
	if !queued {
		b.send(ctx, []outgoing{{e, msg}})
	}
	return nil
}

// send publishes events on the Redis channel in one round trip; an event
// Redis did not take is delivered to this replica's subscribers at least.
func (b *Bus) send(ctx context.Context, events []outgoing) {
	pipe := b.redis.Pipeline()
	cmds := make([]*redis.IntCmd, len(events))
	for i, o := range events {
		cmds[i] = pipe.Publish(ctx, b.channel, o.msg)
	}
	_, _ = pipe.Exec(ctx)
	for i, o := range events {
		if cmds[i].Err() != nil {
			b.published("redis", false)
			b.deliver(o.e)
			continue
		}
		b.published("redis", true)
	}
}

// publish sends what Publish queued, taking all that waits at once (one
// round trip for many events when busy), until ctx ends. The commands
// no longer wait for Redis: one PUBLISH round trip was 12% of the
// backend's CPU per booking.
func (b *Bus) publish(ctx context.Context) {
	b.sending.Store(true)
	defer func() {
		b.stop.Lock()
		b.sending.Store(false)
		b.stop.Unlock()
		for { // what was queued before the flag dropped
			select {
			case o := <-b.out:
				b.send(context.WithoutCancel(ctx), []outgoing{o})
			default:
				return
			}
		}
	}()
	batch := make([]outgoing, 0, 128)
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-b.out:
			batch = append(batch[:0], o)
		}
	more:
		for len(batch) < cap(batch) {
			select {
			case o := <-b.out:
				batch = append(batch, o)
			default:
				break more
			}
		}
		b.send(context.WithoutCancel(ctx), batch)
	}
}

// Run receives events from Redis until ctx ends, reconnecting as needed.
// After a gap in the subscription every local subscriber gets a resync. It
// returns at once for a bus without Redis.
func (b *Bus) Run(ctx context.Context) {
	if b.redis == nil {
		return
	}
	go b.publish(ctx)
	first := true
	b.redis.Listen(ctx, b.channel, redisclient.Listener{
		Subscribed: func() {
			if !first {
				b.resyncAll()
			}
			first = false
		},
		Message: func(payload string) {
			var e Event
			if err := json.Unmarshal([]byte(payload), &e); err != nil {
				b.log.Warn("events: dropping malformed message", "error", err)
				return
			}
			b.deliver(e)
		},
	})
}

func (b *Bus) deliver(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, dup := b.seen[e.ID]; dup {
		return
	}
	b.ring = append(b.ring, e)
	b.seen[e.ID] = struct{}{}
	if len(b.ring) > b.max {
		delete(b.seen, b.ring[0].ID)
		b.ring = b.ring[1:]
	}
	for s := range b.subs {
		if s.wants(e.Topic) {
			s.send(e)
		}
	}
}

func (b *Bus) resyncAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.send(Event{Type: Resync, At: time.Now().UTC()})
	}
}

// Subscription receives the events of some topics on C. When the consumer
// falls behind, it gets one resync event and the backlog is dropped.
type Subscription struct {
	C      chan Event
	bus    *Bus
	topics map[string]bool
	mu     sync.Mutex
	behind bool
}

// Subscribe registers a subscriber for topics. When since is not empty it
// is the ID of the last event the client saw: the events after it are
// queued first, or a resync when since is no longer in the replay buffer.
func (b *Bus) Subscribe(topics []string, since string) *Subscription {
	s := &Subscription{C: make(chan Event, 256), bus: b, topics: map[string]bool{}}
	for _, t := range topics {
		s.topics[t] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if since != "" {
		idx := -1
		for i := len(b.ring) - 1; i >= 0; i-- {
			if b.ring[i].ID == since {
				idx = i
				break
			}
		}
		if idx < 0 {
			s.send(Event{Type: Resync, At: time.Now().UTC()})
		} else {
			for _, e := range b.ring[idx+1:] {
				if s.wants(e.Topic) {
					s.send(e)
				}
			}
		}
	}
	b.subs[s] = struct{}{}
	return s
}

// SetTopics replaces the topics of s.
func (s *Subscription) SetTopics(topics []string) {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.topics = map[string]bool{}
	for _, t := range topics {
		s.topics[t] = true
	}
}

// Close unregisters s.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	delete(s.bus.subs, s)
}

func (s *Subscription) wants(topic string) bool { return s.topics[topic] }

// send never blocks the bus: a full buffer is replaced by a resync.
func (s *Subscription) send(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.behind {
		return
	}
	select {
	case s.C <- e:
	default:
		s.behind = true
		// Drain and leave only the resync signal.
		for len(s.C) > 0 {
			<-s.C
		}
		s.C <- Event{Type: Resync, At: time.Now().UTC()}
	}
}

// CatchUp is called by the consumer after handling a resync so that the
// subscription delivers events again.
func (s *Subscription) CatchUp() {
	s.mu.Lock()
	s.behind = false
	s.mu.Unlock()
}
