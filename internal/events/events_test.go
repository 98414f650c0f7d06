package events

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

func newBus(replay int) *Bus {
	return New(Options{Replay: replay, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func next(t *testing.T, s *Subscription) Event {
	t.Helper()
	select {
	case e := <-s.C:
		return e
	case <-time.After(2 * time.Second):
		t.Fatal("no event")
		return Event{}
	}
}

func TestTopicsAndReplay(t *testing.T) {
	b := newBus(3)
	ctx := context.Background()
	beds := b.Subscribe([]string{"beds"}, "")
	defer beds.Close()
	_ = b.Publish(ctx, "patients", "x", nil)
	_ = b.Publish(ctx, "beds", "bed.changed", map[string]string{"id": "1"})
	first := next(t, beds)
	if first.Type != "bed.changed" || first.Topic != "beds" {
		t.Fatalf("got %+v", first)
	}
	_ = b.Publish(ctx, "beds", "bed.changed", map[string]string{"id": "2"})
	// A client that saw `first` reconnects and gets only what followed.
	again := b.Subscribe([]string{"beds"}, first.ID)
	defer again.Close()
	if e := next(t, again); string(e.Data) != `{"id":"2"}` {
		t.Fatalf("replay: %+v", e)
	}
	// Once the buffer has moved on, a reconnect gets a resync.
	for range 5 {
		_ = b.Publish(ctx, "beds", "bed.changed", nil)
	}
	late := b.Subscribe([]string{"beds"}, first.ID)
	defer late.Close()
	if e := next(t, late); e.Type != Resync {
		t.Fatalf("want resync, got %+v", e)
	}
}

func TestSlowConsumerGetsResync(t *testing.T) {
	b := newBus(10)
	s := b.Subscribe([]string{"beds"}, "")
	defer s.Close()
	for range cap(s.C) + 10 {
		_ = b.Publish(context.Background(), "beds", "bed.changed", nil)
	}
	if e := next(t, s); e.Type != Resync {
		t.Fatalf("overflowing consumer: first event %+v, want resync", e)
	}
	s.CatchUp()
	_ = b.Publish(context.Background(), "beds", "bed.changed", nil)
	if e := next(t, s); e.Type != "bed.changed" {
		t.Fatalf("after catch-up: %+v", e)
	}
}
