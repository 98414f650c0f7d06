package events

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/redisclient"
	"github.com/hospital-erp/hospital-erp/internal/testenv"
)

// A burst of events reaches another replica through Redis, every one and
// in order, sent by the publisher Run starts (many per round trip); and
// with Redis gone, this replica's own subscribers still get each event.
func TestBurstReachesAnotherReplicaInOrder(t *testing.T) {
	ctx := t.Context()
	r := testenv.NewRedis(t, testenv.TempDir(t))
	replica := func() *Bus {
		rc, err := redisclient.New(redisclient.Options{URL: "redis://" + r.Addr(), OpenFor: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rc.Close() })
		b := New(Options{Redis: rc, Prefix: "t:", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		go b.Run(ctx)
		return b
	}
	a, b := replica(), replica()
	sub := b.Subscribe([]string{"beds"}, "")
	defer sub.Close()
	for deadline := time.Now().Add(5 * time.Second); ; { // until b hears a
		if time.Now().After(deadline) {
			t.Fatal("no event from the other replica within 5 s")
		}
		_ = a.Publish(ctx, "beds", "probe", nil)
		select {
		case <-sub.C:
		case <-time.After(100 * time.Millisecond):
			continue
		}
		break
	}
	for len(sub.C) > 0 || func() bool { time.Sleep(200 * time.Millisecond); return len(sub.C) > 0 }() {
		<-sub.C // late probes
	}
	if !a.sending.Load() {
		t.Fatal("Run started no publisher")
	}

	const n = 200 // under the subscription's buffer
	for i := range n {
		if err := a.Publish(ctx, "beds", "bed.cleaning", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		e := next(t, sub)
		var d struct{ N int }
		if err := json.Unmarshal(e.Data, &d); err != nil || e.Type != "bed.cleaning" || d.N != i {
			t.Fatalf("event %d: %s %s (%v)", i, e.Type, e.Data, err)
		}
	}

	local := a.Subscribe([]string{"beds"}, "")
	defer local.Close()
	r.Stop()
	for i := range 3 {
		if err := a.Publish(ctx, "beds", "bed.available", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
		e := next(t, local)
		for e.Type == "bed.cleaning" { // the burst, still coming back from Redis
			e = next(t, local)
		}
		var d struct{ N int }
		if err := json.Unmarshal(e.Data, &d); err != nil || e.Type != "bed.available" || d.N != i {
			t.Fatalf("with Redis gone, this replica got %s %s, want its own event %d", e.Type, e.Data, i)
		}
	}
}
