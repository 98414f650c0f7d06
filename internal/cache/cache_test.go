package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// counted counts how often it is decoded.
type counted struct{ N int }

var decodes atomic.Int64

func (c *counted) UnmarshalJSON(b []byte) error {
	decodes.Add(1)
	var v struct{ N int }
	err := json.Unmarshal(b, &v)
	c.N = v.N
	return err
}

// An in-process entry is decoded once, however often it is read, until it
// changes, is deleted or expires; a different type asked of the same key
// is decoded for itself.
func TestGetOrLoadDecodesAnEntryOnce(t *testing.T) {
	ctx := context.Background()
	for name, c := range map[string]Cache{
		"memory": NewMemory(100, nil),
		"tiered": NewTiered(NewMemory(100, nil), 100, time.Hour, nil),
	} {
		t.Run(name, func(t *testing.T) {
			loads := 0
			load := func(n int) func() (counted, error) {
				return func() (counted, error) { loads++; return counted{N: n}, nil }
			}
			get := func(n int) counted {
				t.Helper()
				v, err := GetOrLoad(ctx, c, "k", time.Hour, load(n))
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			get(1) // loaded; a tiered cache fills its in-process tier on the next read
			decodes.Store(0)
			var wg sync.WaitGroup
			for range 50 {
				wg.Add(1)
				go func() { defer wg.Done(); get(1) }()
			}
			wg.Wait()
			if n := decodes.Load(); n < 1 || n > 2 {
				t.Fatalf("50 reads decoded %d times, want once (twice if two raced to the first)", n)
			}
			c.Set(ctx, "k", []byte(`{"N":2}`), time.Hour)
			if v := get(9); v.N != 2 {
				t.Fatalf("after a new value: %+v", v)
			}
			if v, err := GetOrLoad(ctx, c, "k", time.Hour, func() (map[string]int, error) { return nil, nil }); err != nil || v["N"] != 2 {
				t.Fatalf("another type of the same key: %v, %v", v, err)
			}
			c.Delete(ctx, "k")
			if v := get(3); v.N != 3 || loads != 2 {
				t.Fatalf("after a delete: %+v, %d loads", v, loads)
			}
		})
	}
}

// GetOrLoadJSON's bytes are always the encoding of the value it returns:
// when loaded, when decoded, when the decoded copy is reused, and after
// another value replaced it.
func TestGetOrLoadJSONBytesMatchTheValue(t *testing.T) {
	ctx := context.Background()
	for name, c := range map[string]Cache{
		"memory": NewMemory(100, nil),
		"tiered": NewTiered(NewMemory(100, nil), 100, time.Hour, nil),
	} {
		t.Run(name, func(t *testing.T) {
			check := func(step string, want int) {
				t.Helper()
				v, b, err := GetOrLoadJSON(ctx, c, "k", time.Hour, func() (counted, error) { return counted{N: 1}, nil })
				if err != nil {
					t.Fatal(err)
				}
				if v.N != want || string(b) != fmt.Sprintf(`{"N":%d}`, want) {
					t.Fatalf("%s: value %+v with bytes %s, want N=%d", step, v, b, want)
				}
			}
			check("loaded", 1)
			check("decoded", 1)
			check("decoded copy", 1)
			c.Set(ctx, "k", []byte(`{"N":2}`), time.Hour)
			check("replaced", 2)
			check("replaced, decoded copy", 2)
		})
	}
}

// The decoded value expires with its entry.
func TestDecodedValueExpires(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(10, nil)
	now := time.Now()
	m.now = func() time.Time { return now }
	n := 0
	load := func() (counted, error) { n++; return counted{N: n}, nil }
	for range 3 {
		if _, err := GetOrLoad(ctx, m, "k", time.Second, load); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(2 * time.Second)
	if v, _ := GetOrLoad(ctx, m, "k", time.Second, load); v.N != 2 {
		t.Fatalf("after expiry: %+v, want the value loaded again", v)
	}
}

// A full cache makes room for a tenth of its size at once, keeping the
// newest entry, so that it is not swept at every Set.
func TestFullMemoryMakesRoom(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(100, nil)
	for i := range 100 {
		m.Set(ctx, strconv.Itoa(i), []byte("v"), time.Hour)
	}
	m.Set(ctx, "new", []byte("v"), time.Hour)
	if n := len(m.entries); n != 91 {
		t.Fatalf("%d entries after a Set on a full cache, want 91 (90 kept and the new one)", n)
	}
	if _, ok := m.Get(ctx, "new"); !ok {
		t.Fatal("the new entry was evicted")
	}
}
