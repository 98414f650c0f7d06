package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/config"
	"github.com/hospital-erp/hospital-erp/internal/events"
	"github.com/hospital-erp/hospital-erp/internal/identity"
	"github.com/hospital-erp/hospital-erp/internal/metrics"
	"github.com/hospital-erp/hospital-erp/internal/patient"
	"github.com/hospital-erp/hospital-erp/internal/testenv"
)

// counterValue sums the samples of a metric whose label values include label.
func counterValue(t *testing.T, m *metrics.Metrics, name, label string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, metric := range mf.GetMetric() {
			match := label == ""
			for _, l := range metric.GetLabel() {
				match = match || l.GetValue() == label
			}
			if !match {
				continue
			}
			switch {
			case metric.Counter != nil:
				sum += metric.Counter.GetValue()
			case metric.Gauge != nil:
				sum += metric.Gauge.GetValue()
			}
		}
	}
	return sum
}

// Redis stops in the middle of traffic: requests keep succeeding, the
// breaker opens, and once Redis is back the cache is used again.
func TestRedisOutage(t *testing.T) {
	redis := testenv.NewRedis(t, testenv.TempDir(t))
	tb := startBackend(t, backendOpts{redisURL: "redis://" + redis.Addr()})
	ctx := context.Background()
	rec, _ := tb.user(t, identity.RoleReceptionist)
	p, err := rec.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Cache", GivenNames: "Test"}})
	if err != nil {
		t.Fatal(err)
	}

	var failures atomic.Int64
	var total atomic.Int64
	stop := make(chan struct{})
	var stopOnce sync.Once
	var wg sync.WaitGroup
	// A failed assertion must not leave the readers running into a closed server.
	defer func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				total.Add(1)
				if _, err := rec.Patient(ctx, p.ID); err != nil {
					failures.Add(1)
					t.Errorf("request failed during the Redis outage: %v", err)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	redis.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for tb.Redis.Available() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := counterValue(t, tb.Metrics, "redis_circuit_breaker_state", ""); got != 2 {
		t.Fatalf("breaker state metric = %v, want 2 (open)", got)
	}
	// In-process copies of hot keys live a second (cache.Tiered); after
	// that every read bypasses the cache.
	time.Sleep(1500 * time.Millisecond)
	bypassed := counterValue(t, tb.Metrics, "cache_requests_total", "bypass")
	if bypassed == 0 {
		t.Fatal("no cache bypass counted while Redis was down")
	}
	if err := redis.Start(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(15 * time.Second)
	for counterValue(t, tb.Metrics, "redis_circuit_breaker_state", "") != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	hitsBefore := counterValue(t, tb.Metrics, "cache_requests_total", "hit")
	time.Sleep(500 * time.Millisecond)
	stopOnce.Do(func() { close(stop) })
	wg.Wait()
	if got := counterValue(t, tb.Metrics, "redis_circuit_breaker_state", ""); got != 0 {
		t.Fatalf("breaker did not close after Redis returned (state %v)", got)
	}
	if hitsAfter := counterValue(t, tb.Metrics, "cache_requests_total", "hit"); hitsAfter <= hitsBefore {
		t.Fatalf("cache not used again after recovery: hits %v -> %v", hitsBefore, hitsAfter)
	}
	if failures.Load() != 0 || total.Load() < 20 {
		t.Fatalf("%d of %d requests failed", failures.Load(), total.Load())
	}
	// Login limiting holds while Redis is down (in-process fallback).
	redis.Stop()
	if _, err := tb.Identity.CreateUserAsSystem(ctx, "limited.user", "Limited", identity.RoleNurse, "", "a long enough password"); err != nil {
		t.Fatal(err)
	}
	limited := startBackend(t, backendOpts{dbURL: tb.DBURL, adminURL: tb.AdminURL, redisURL: "redis://" + redis.Addr(),
		env: map[string]string{"RATE_LIMIT_LOGIN": "3/1m"}})
	c := client.New(limited.URL, nil)
	var last error
	for range 5 {
		_, last = c.Login(ctx, "limited.user", "wrong password!!")
	}
	var apiErr *client.Error
	if !errors.As(last, &apiErr) || apiErr.Status != http.StatusTooManyRequests || apiErr.RetryAfter <= 0 {
		t.Fatalf("5th login with Redis down: %v, want 429 with Retry-After", last)
	}
}

// SIGTERM while requests are in flight: every request that reached the
// server finishes successfully; readiness turned 503 first.
func TestGracefulShutdown(t *testing.T) {
	_, d := testenv.OpenDB(t)
	keys, _ := identity.GenerateKeyPEM()
	port := freePort(t)
	env := map[string]string{"DATABASE_URL": d.URL, "JWT_PRIVATE_KEYS": keys, "LISTEN_ADDR": "127.0.0.1:" + port,
		"MFA_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"METRICS_ADDR":       "off", "DRAIN_DELAY": "400ms", "SHUTDOWN_TIMEOUT": "10s"}
	cfg, err := config.Load(config.CmdAPI, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := newLogger(logs, cfg.LogLevel, "backend")
	m := metrics.New("backend")
	b, err := newBackend(context.Background(), cfg, log, m, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// A slow endpoint stands in for a long database request.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(700 * time.Millisecond)
		fmt.Fprint(w, "done")
	})
	mux.Handle("/", b.Server)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		served <- serve(ctx, log, cfg, mux, m, func(net.Addr) { close(started) }, b.StopStreams, b.Server)
	}()
	<-started
	base := "http://127.0.0.1:" + port
	var wg sync.WaitGroup
	results := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(base + "/slow")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			results <- err
		}()
	}
	time.Sleep(150 * time.Millisecond) // all 20 are in flight
	cancel()
	time.Sleep(100 * time.Millisecond)
	resp, err := http.Get(base + "/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("readiness while draining = %d, want 503: %s\n%s", resp.StatusCode, b, logs.String())
	}
	live, err := http.Get(base + "/health/live")
	if err != nil || live.StatusCode != 200 {
		t.Fatalf("liveness while draining: %v", err)
	}
	live.Body.Close()
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Fatalf("in-flight request failed during shutdown: %v", err)
		}
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// An event published on one backend instance reaches a WebSocket client
// connected to another.
func TestEventsAcrossInstances(t *testing.T) {
	a := startBackend(t, backendOpts{})
	redisAddr, _ := testenv.SharedRedis(t)
	b := startBackend(t, backendOpts{dbURL: a.DBURL, adminURL: a.AdminURL, keys: a.Keys, redisURL: "redis://" + redisAddr})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec, token := a.user(t, identity.RoleReceptionist)

	// Ticket from instance A, WebSocket on instance B.
	ticket, err := rec.WSTicket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wsURL := "ws" + strings.TrimPrefix(b.URL, "http") + "/api/v1/events?topics=patients&ticket=" + ticket.Ticket
	conn, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	var hello map[string]any
	readJSON(t, ctx, conn, &hello)
	if hello["type"] != "hello" {
		t.Fatalf("first message %v, want hello", hello)
	}
	p, err := rec.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Event", GivenNames: "Test"}})
	if err != nil {
		t.Fatal(err)
	}
	var e events.Event
	readJSON(t, ctx, conn, &e)
	if e.Type != "patient.registered" || e.Topic != "patients" || !strings.Contains(string(e.Data), p.ID) {
		t.Fatalf("event = %+v", e)
	}
	if strings.Contains(string(e.Data), "Event") {
		t.Fatalf("event carries the patient's name: %s", e.Data)
	}
	conn.Close(websocket.StatusNormalClosure, "")

	// A client that reconnects with since= gets what it missed.
	p2, err := rec.RegisterPatient(ctx, patient.RegisterInput{Demographics: patient.Demographics{FamilyName: "Missed", GivenNames: "Test"}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let instance B receive it from Redis
	conn2, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.URL, "http")+"/api/v1/events?topics=patients&since="+e.ID,
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.CloseNow()
	readJSON(t, ctx, conn2, &hello)
	var missed events.Event
	readJSON(t, ctx, conn2, &missed)
	if missed.Type != "patient.registered" || !strings.Contains(string(missed.Data), p2.ID) {
		t.Fatalf("replayed event = %+v", missed)
	}
	// An unknown since= gets a resync signal.
	conn3, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.URL, "http")+"/api/v1/events?topics=patients&since=gone-1",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn3.CloseNow()
	readJSON(t, ctx, conn3, &hello)
	var resync events.Event
	readJSON(t, ctx, conn3, &resync)
	if resync.Type != events.Resync {
		t.Fatalf("unknown since: got %+v, want resync", resync)
	}
	// Topics need permissions; unknown topics and missing auth are refused.
	inv, invToken := a.user(t, identity.RoleInventoryManager)
	_ = inv
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.URL, "http")+"/api/v1/events?topics=patients",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + invToken}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("inventory manager subscribing to patients: %v", err)
	}
	_, resp, err = websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.URL, "http")+"/api/v1/events?topics=patients", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous WebSocket: %v", err)
	}
}

func readJSON(t *testing.T, ctx context.Context, conn *websocket.Conn, v any) {
	t.Helper()
	_, data, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("websocket read: %v", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("websocket message %s: %v", data, err)
	}
}

// /metrics exposes every metric the foundation promises, in a format
// Prometheus parses.
func TestMetricsExposition(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	ctx := context.Background()
	rec, _ := tb.user(t, identity.RoleReceptionist)
	if _, err := rec.Patients(ctx, client.PatientQuery{}); err != nil {
		t.Fatal(err)
	}
	raw(t, "GET", tb.URL+"/api/v1/nope", "", nil, "")
	srv := metricsServer(t, tb.Metrics)
	resp, err := http.Get(srv + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for _, name := range []string{
		"http_requests_total", "http_request_duration_seconds", "http_requests_in_flight", "app_errors_total",
		"db_pool_acquired_connections", "db_pool_total_connections", "db_pool_acquire_wait_seconds_total",
		"cache_requests_total", "ratelimit_rejections_total", "redis_circuit_breaker_state", "websocket_connections",
		"events_published_total", "db_transaction_retries_total", "go_goroutines", "process_resident_memory_bytes",
		"hospital_erp_build_info",
	} {
		if _, ok := families[name]; !ok {
			t.Errorf("metric %s missing", name)
		}
	}
	// Routes are labelled by template, never by raw path.
	for _, m := range families["http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && strings.Contains(l.GetValue(), "nope") {
				t.Fatalf("raw path in route label: %s", l.GetValue())
			}
		}
	}
}

func metricsServer(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	port := freePort(t)
	cfg := &config.Config{ListenAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:" + port, ShutdownTimeout: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		_ = serve(ctx, newLogger(&syncBuffer{}, 0, "t"), cfg, http.NotFoundHandler(), m, func(net.Addr) { close(started) }, nil)
		close(done)
	}()
	<-started
	t.Cleanup(func() { cancel(); <-done })
	return "http://127.0.0.1:" + port
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

func TestReadiness(t *testing.T) {
	tb := startBackend(t, backendOpts{})
	status, _, body := raw(t, "GET", tb.URL+"/health/ready", "", nil, "")
	if status != 200 || !strings.Contains(string(body), `"migrations":"current"`) || !strings.Contains(string(body), `"redis":"up"`) {
		t.Fatalf("ready: %d %s", status, body)
	}
	tb.Server.SetDraining()
	status, _, _ = raw(t, "GET", tb.URL+"/health/ready", "", nil, "")
	if status != 503 {
		t.Fatalf("draining ready = %d, want 503", status)
	}
}

// A JSON response carries the security headers a client acts on and the
// rate limit in the IETF draft's two fields; the headers only a document
// uses are on the API's HTML page, not on every JSON response.
func TestAPIResponseHeaders(t *testing.T) {
	tb := startBackend(t, backendOpts{env: map[string]string{"RATE_LIMIT_USER": "1000/1m"}})
	_, token := tb.user(t, identity.RoleReceptionist)
	status, h, _ := raw(t, "GET", tb.URL+"/api/v1/departments", "", nil, token)
	if status != http.StatusOK {
		t.Fatalf("departments: %d", status)
	}
	for k, want := range map[string]string{
		"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Cross-Origin-Resource-Policy": "same-origin",
		"Cache-Control": "no-store", "RateLimit-Policy": `"user";q=1000;w=60`,
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("X-Request-Id") == "" {
		t.Errorf("no CSP or request id: %v", h)
	}
	if ok, _ := regexp.MatchString(`^"user";r=99[0-9];t=[0-9]+$`, h.Get("RateLimit")); !ok {
		t.Errorf("RateLimit: %q", h.Get("RateLimit"))
	}
	for _, k := range []string{"Referrer-Policy", "Cross-Origin-Opener-Policy", "Permissions-Policy", "RateLimit-Remaining"} {
		if v := h.Get(k); v != "" {
			t.Errorf("a JSON response has %s: %q", k, v)
		}
	}
	status, h, _ = raw(t, "GET", tb.URL+"/api/v1/docs", "", nil, "")
	if status != http.StatusOK || h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cross-Origin-Opener-Policy") != "same-origin" ||
		h.Get("Permissions-Policy") == "" || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("the API's HTML page: %d %v", status, h)
	}
}

// Signed-in staff are limited per user, not per address (a hospital's
// staff share one address behind NAT); requests without a session and
// refused credentials are limited per address.
func TestRateLimitPerUserNotPerAddress(t *testing.T) {
	tb := startBackend(t, backendOpts{env: map[string]string{"RATE_LIMIT_IP": "6/1m", "RATE_LIMIT_USER": "1000/1m"}})
	ctx := context.Background()
	a, _ := tb.user(t, identity.RoleReceptionist) // one sign-in from 127.0.0.1
	b, _ := tb.user(t, identity.RoleNurse)        // and another
	for i := range 20 {
		for _, c := range []*client.Client{a, b} {
			if _, err := c.Departments(ctx); err != nil {
				t.Fatalf("signed-in request %d from the shared address: %v", i, err)
			}
		}
	}
	forged := client.New(tb.URL, nil).WithToken("eyJhbGciOiJFZERTQSJ9.e30.AAAA")
	var statuses []int
	for range 6 {
		_, err := forged.Departments(ctx)
		statuses = append(statuses, client.StatusOf(err))
	}
	if statuses[0] != http.StatusUnauthorized || statuses[5] != http.StatusTooManyRequests {
		t.Fatalf("forged tokens from one address: %v, want 401s then 429", statuses)
	}
}
