package redisclient

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Listener receives a channel's messages (Listen). Pub/sub delivers at
// most once: messages published while a subscription is being made again
// are lost, which Subscribed and Lost let the listener make up for.
type Listener struct {
	Subscribed func()               // each time the subscription is made (first, and again after a loss)
	Message    func(payload string) // each message, in order
	Lost       func(err error)      // a subscription failed (not called when ctx ends); may be nil
}

// Listen subscribes to channel and hands its messages to l until ctx
// ends, subscribing again (every 500 ms) after a failure. A quiet channel
// is pinged every 30 s to tell it from a dead connection.
func (c *Client) Listen(ctx context.Context, channel string, l Listener) {
	for ctx.Err() == nil {
		ps := c.Subscribe(ctx, channel)
		if _, err := ps.Receive(ctx); err != nil {
			ps.Close()
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		l.Subscribed()
		err := receive(ctx, ps, l.Message)
		ps.Close()
		if ctx.Err() == nil && l.Lost != nil {
			l.Lost(err)
		}
	}
}

func receive(ctx context.Context, ps *redis.PubSub, message func(string)) error {
	for {
		msg, err := ps.ReceiveTimeout(ctx, 30*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if perr := ps.Ping(ctx); perr != nil {
				return perr
			}
			continue
		}
		if m, ok := msg.(*redis.Message); ok {
			message(m.Payload)
		}
	}
}
