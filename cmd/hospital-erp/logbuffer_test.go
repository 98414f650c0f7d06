package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Info lines wait in the buffer; a warning, from any derived logger, is
// written at once with everything before it.
func TestLogBufferFlushesWarnings(t *testing.T) {
	out := &syncBuffer{}
	buf := newLogBuffer(out)
	log := slog.New(flushOnWarn{Handler: slog.NewJSONHandler(buf, nil), buf: buf})
	log.Info("request", "n", 1)
	if s := out.String(); s != "" {
		t.Fatalf("an info line was written at once: %s", s)
	}
	log.With("route", "x").WithGroup("g").Warn("slow", "n", 2)
	if s := out.String(); !strings.Contains(s, `"n":1`) || !strings.Contains(s, `"n":2`) {
		t.Fatalf("a warning did not write itself and what came before it:\n%s", s)
	}
}

// A service's info lines are written within a few flush intervals, and
// stopping writes the rest.
func TestServiceLoggerWritesWithinAnInterval(t *testing.T) {
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log, stop := serviceLogger(ctx, out, slog.LevelInfo, "backend")
	log.Info("request", "n", 1)
	deadline := time.Now().Add(20 * logFlushEvery)
	for !strings.Contains(out.String(), `"n":1`) {
		if time.Now().After(deadline) {
			t.Fatalf("the info line was not written within %v", 20*logFlushEvery)
		}
		time.Sleep(logFlushEvery / 10)
	}
	log.Info("stopping", "n", 2)
	stop()
	if s := out.String(); !strings.Contains(s, `"n":2`) || !strings.Contains(s, `"service":"backend"`) {
		t.Fatalf("stop did not write the rest:\n%s", s)
	}
}
