// Package redisclient builds the one Redis client the backend shares
// between cache, rate limiter and event bus: a plain client or a Sentinel
// failover client, short timeouts, and a circuit breaker so that a Redis
// outage costs a request nothing but a skipped cache lookup.
package redisclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
)

// ErrUnavailable is returned instead of talking to Redis while the breaker
// is open.
var ErrUnavailable = errors.New("redis unavailable (circuit breaker open)")

// Options configure New.
type Options struct {
	URL           string   // redis:// or rediss://
	SentinelAddrs []string // when set, a failover client is built
	MasterName    string
	Password      string
	DialTimeout   time.Duration
	Timeout       time.Duration
	// PoolSize is the most connections to Redis (zero: 64). go-redis'
	// default (10 per GOMAXPROCS) is 10 in a one-core pod: requests then
	// queue for a connection, time out, and open the breaker though Redis
	// is fine.
	PoolSize int
	// OpenFor is how long the breaker stays open before letting one probe
	// through. Zero means 2s.
	OpenFor time.Duration
	// OnStateChange reports breaker state: 0 closed, 1 half-open, 2 open.
	OnStateChange func(state int)
}

// Client is a go-redis client guarded by a circuit breaker.
type Client struct {
	redis.UniversalClient
	breaker *gobreaker.CircuitBreaker[struct{}]
}

type quietLogger struct{ log *slog.Logger }

func (q quietLogger) Printf(ctx context.Context, format string, v ...any) {
	q.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// SetLogger sends go-redis's own messages (dial failures during an
// outage, which the breaker already reports) to log at debug level. The
// go-redis logger is process-wide.
func SetLogger(log *slog.Logger) { redis.SetLogger(quietLogger{log}) }

// New builds the client. It does not connect: the first command does, and a
// Redis that is down at start-up only opens the breaker.
func New(o Options) (*Client, error) {
	if o.DialTimeout == 0 {
		o.DialTimeout = 250 * time.Millisecond
	}
	if o.Timeout == 0 {
		o.Timeout = 150 * time.Millisecond
	}
	if o.OpenFor == 0 {
		o.OpenFor = 2 * time.Second
	}
	if o.PoolSize == 0 {
		o.PoolSize = 64
	}
	var rc redis.UniversalClient
	switch {
	case len(o.SentinelAddrs) > 0:
		rc = redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:       o.MasterName,
			SentinelAddrs:    o.SentinelAddrs,
			Password:         o.Password,
			SentinelPassword: o.Password,
			DialTimeout:      o.DialTimeout,
			ReadTimeout:      o.Timeout,
			WriteTimeout:     o.Timeout,
			PoolTimeout:      o.Timeout,
			PoolSize:         o.PoolSize,
			MaxRetries:       1,
			MinRetryBackoff:  10 * time.Millisecond,
			MaxRetryBackoff:  50 * time.Millisecond,
			DialerRetries:    1,
		})
	case o.URL != "":
		opts, err := redis.ParseURL(o.URL)
		if err != nil {
			return nil, err
		}
		opts.DialTimeout = o.DialTimeout
		opts.ReadTimeout = o.Timeout
		opts.WriteTimeout = o.Timeout
		opts.PoolTimeout = o.Timeout
		opts.PoolSize = o.PoolSize
		// Retrying a slow Redis only makes the request slower; the breaker
		// handles outages.
		opts.MaxRetries = -1
		// One dial attempt: the default (5 with back-off) stalls every
		// request for half a second before the breaker can open.
		opts.DialerRetries = 1
		rc = redis.NewClient(opts)
	default:
		return nil, errors.New("redis: neither URL nor sentinel addresses given")
	}
	c := &Client{UniversalClient: rc}
	c.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         "redis",
		MaxRequests:  1,
		Interval:     tripWindow,
		BucketPeriod: tripWindow / 10,
		Timeout:      o.OpenFor,
		ReadyToTrip:  readyToTrip,
		IsSuccessful: func(err error) bool { return !isOutage(err) },
		IsExcluded:   isLocal,
		OnStateChange: func(_ string, _, to gobreaker.State) {
			if o.OnStateChange != nil {
				o.OnStateChange(int(to))
			}
		},
	})
	rc.AddHook(breakerHook{c.breaker})
	return c, nil
}

// tripWindow is how far back readyToTrip looks (a rolling window).
const tripWindow = 2 * time.Second

// readyToTrip opens the breaker when at least half of the commands of the
// last two seconds failed, and at least 5. A Redis that is down, hung or
// too slow fails every command and opens it within the window (at once
// when the traffic is light). A backend saturated by its own load fails
// some in bursts (a command whose goroutine ran after its read deadline
// times out though Redis answered): counting consecutive failures, as
// before, opened the breaker on such a burst and sent every cached read
// to the database, which turned a busy minute into a collapse.
func readyToTrip(c gobreaker.Counts) bool {
	counted := c.Requests - min(c.Requests, c.TotalExclusions)
	return c.TotalFailures >= 5 && 2*c.TotalFailures >= counted
}

// State is the breaker state: 0 closed, 1 half-open, 2 open. Asking moves
// an open breaker whose time is up to half-open, so callers that check
// Available before sending anything (the cache, the rate limiter) let the
// probe through: a breaker that changed state only when a command was sent
// stayed open as long as every caller asked first (seen in the benchmark:
// 30 s instead of OpenFor, every read going to the database meanwhile).
func (c *Client) State() int { return int(c.breaker.State()) }

// Available reports whether commands are currently sent to Redis.
func (c *Client) Available() bool { return c.State() != int(gobreaker.StateOpen) }

// Status describes the connection for /health/ready.
func (c *Client) Status() string {
	switch c.State() {
	case int(gobreaker.StateOpen):
		return "down"
	case int(gobreaker.StateHalfOpen):
		return "recovering"
	}
	return "up"
}

// isOutage reports whether err means Redis is unreachable or too slow, as
// opposed to a command-level answer such as redis.Nil or WRONGTYPE.
func isOutage(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrClosed) ||
		errors.Is(err, redis.ErrPoolTimeout) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "EOF") ||
		strings.HasPrefix(msg, "LOADING") || strings.HasPrefix(msg, "READONLY") ||
		strings.HasPrefix(msg, "MASTERDOWN") || strings.Contains(msg, "no route to host") ||
		strings.Contains(msg, "redis: all sentinels")
}

// isLocal reports whether err says nothing about Redis: the caller gave up
// (its context ended) or this process had more commands in flight than
// connections (a pool time-out). A backend saturated by its own load sees
// both; counting them opened the breaker and sent every cached read to the
// database, the opposite of what an overloaded backend needs. A Redis that
// is slow or hung still opens it: the commands holding the connections
// time out reading.
func isLocal(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, errCallerDone)
}

// errCallerDone marks a command whose caller's context ended while it ran.
var errCallerDone = errors.New("caller's context ended")

// guarded marks the context of a command the breaker already admitted.
// go-redis sends a new connection's handshake (HELLO, CLIENT SETINFO)
// through the same hooks: counted on its own, the half-open probe's
// handshake was refused (one probe at a time) and the probe failed.
type guarded struct{}

type breakerHook struct {
	cb *gobreaker.CircuitBreaker[struct{}]
}

func (h breakerHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h breakerHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if ctx.Value(guarded{}) != nil {
			return next(ctx, cmd)
		}
		ctx = context.WithValue(ctx, guarded{}, true)
		var cmdErr error
		_, err := h.cb.Execute(func() (struct{}, error) {
			cmdErr = next(ctx, cmd)
			return struct{}{}, outcome(ctx, cmdErr)
		})
		return h.result(err, cmdErr, cmd)
	}
}

func (h breakerHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if ctx.Value(guarded{}) != nil {
			return next(ctx, cmds)
		}
		ctx = context.WithValue(ctx, guarded{}, true)
		var cmdErr error
		_, err := h.cb.Execute(func() (struct{}, error) {
			cmdErr = next(ctx, cmds)
			return struct{}{}, outcome(ctx, cmdErr)
		})
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			for _, c := range cmds {
				c.SetErr(ErrUnavailable)
			}
			return ErrUnavailable
		}
		return cmdErr
	}
}

// outcome is what the breaker counts for a command that ended with err.
func outcome(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return errCallerDone
	}
	return err
}

func (h breakerHook) result(err, cmdErr error, cmd redis.Cmder) error {
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		cmd.SetErr(ErrUnavailable)
		return ErrUnavailable
	}
	return cmdErr
}
