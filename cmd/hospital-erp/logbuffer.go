package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logFlushEvery bounds how long a buffered info line waits before it is
// written (and is what a crash can lose of them).
const logFlushEvery = 100 * time.Millisecond

// logBuffer gathers the log lines of a busy service and writes them in
// batches: one write system call per access-log line was 2% of the
// backend's CPU per patient read. Lines are written when 32 KiB wait,
// every logFlushEvery (run), at once after a line at WARN or above
// (flushOnWarn), and when the service stops.
type logBuffer struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func newLogBuffer(w io.Writer) *logBuffer {
	return &logBuffer{w: bufio.NewWriterSize(w, 32<<10)}
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

// Flush writes what waits.
func (b *logBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}

// run flushes every interval until ctx ends, then once more.
func (b *logBuffer) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = b.Flush()
		case <-ctx.Done():
			_ = b.Flush()
			return
		}
	}
}

// serviceLogger is newLogger for a long-running service (api, web): it
// writes through a logBuffer, flushed every logFlushEvery and after every
// record at WARN or above, so that problems are never held back. stop
// writes what is left; call it when the service has stopped.
func serviceLogger(ctx context.Context, w io.Writer, level slog.Level, service string) (log *slog.Logger, stop func()) {
	buf := newLogBuffer(w)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf.run(ctx, logFlushEvery)
	}()
	h := slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level})
	log = slog.New(flushOnWarn{Handler: h, buf: buf}).With("service", service)
	return log, func() {
		cancel()
		<-done
		_ = buf.Flush()
	}
}

type flushOnWarn struct {
	slog.Handler
	buf *logBuffer
}

func (h flushOnWarn) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		_ = h.buf.Flush()
	}
	return err
}

func (h flushOnWarn) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushOnWarn{Handler: h.Handler.WithAttrs(attrs), buf: h.buf}
}

func (h flushOnWarn) WithGroup(name string) slog.Handler {
	return flushOnWarn{Handler: h.Handler.WithGroup(name), buf: h.buf}
}
