package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/hospital-erp/hospital-erp/internal/client"
)

// FanoutOptions configure the bed-board fan-out measurement.
type FanoutOptions struct {
	URL         string // base URL of the backend
	Token       string // access token of a user with bed.read
	Subscribers int    // WebSocket clients subscribed to the beds topic
	Events      int    // bed changes to make, one after another
	Gap         time.Duration
	Progress    func(done, total int)
}

// Fanout opens o.Subscribers bed-board WebSocket clients, then changes a
// bed o.Events times through the API (out of service, back in service),
// each time after every client saw the previous change, and reports how
// long each change took to reach each client: from just before the
// command was sent to the client receiving the event (so it includes the
// command's own transaction, the publish and the fan-out).
func Fanout(ctx context.Context, housekeeping *client.Client, bedID string, o FanoutOptions) (Result, error) {
	res := Result{Scenario: fmt.Sprintf("bed board fan-out to %d WebSocket clients", o.Subscribers), Errors: map[string]int{}, StartedAt: time.Now().UTC()}
	wsURL := "ws" + strings.TrimPrefix(o.URL, "http") + "/api/v1/events?topics=beds"
	conns := make([]*websocket.Conn, 0, o.Subscribers)
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	for i := range o.Subscribers {
		c, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + o.Token}}})
		if err != nil {
			if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
				// All the clients are one user.
				return res, fmt.Errorf("websocket %d: refused (429): the backend keeps %d event streams per user; start it with a higher EVENT_STREAMS_PER_USER", i, i)
			}
			return res, fmt.Errorf("websocket %d: %w", i, err)
		}
		if _, _, err := c.Read(ctx); err != nil { // hello
			return res, fmt.Errorf("websocket %d hello: %w", i, err)
		}
		conns = append(conns, c)
	}
	sent := make([]time.Time, o.Events)
	var mu sync.Mutex
	var latencies []time.Duration
	received := make(chan int, o.Subscribers*o.Events)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < o.Events; {
				_, data, err := c.Read(rctx)
				at := time.Now()
				if err != nil {
					return
				}
				var e struct{ Topic, Type string }
				if json.Unmarshal(data, &e) != nil || e.Topic != "beds" {
					continue
				}
				mu.Lock()
				latencies = append(latencies, at.Sub(sent[k]))
				mu.Unlock()
				received <- k
				k++
			}
		}()
	}
	start := time.Now()
	for k := range o.Events {
		action := "out-of-service"
		if k%2 == 1 {
			action = "in-service"
		}
		mu.Lock()
		sent[k] = time.Now()
		mu.Unlock()
		res.Sent++
		if _, err := housekeeping.BedAction(ctx, bedID, action); err != nil {
			return res, fmt.Errorf("bed %s %s: %w", bedID, action, err)
		}
		// Wait until every client has it (or give up after 5 s).
		deadline := time.After(5 * time.Second)
		for got := 0; got < len(conns); {
			select {
			case <-received:
				got++
			case <-deadline:
				res.Errors["late"] += len(conns) - got
				got = len(conns)
			}
		}
		res.OK++
		if o.Progress != nil {
			o.Progress(k+1, o.Events)
		}
		time.Sleep(o.Gap)
	}
	res.Duration = time.Since(start).Seconds()
	cancel()
	for _, c := range conns {
		c.CloseNow()
	}
	wg.Wait()
	if o.Events%2 == 1 {
		// An odd number of changes left the bed out of service: back in
		// service, as it was.
		if _, err := housekeeping.BedAction(ctx, bedID, "in-service"); err != nil {
			return res, fmt.Errorf("bed %s back in service: %w", bedID, err)
		}
	}
	res.Throughput = float64(len(latencies)) / res.Duration
	res.LatencyMS = percentiles(latencies)
	return res, nil
}
