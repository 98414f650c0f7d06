package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/client"
	"github.com/hospital-erp/hospital-erp/internal/config"
	"github.com/hospital-erp/hospital-erp/internal/httpx"
	"github.com/hospital-erp/hospital-erp/internal/metrics"
	"github.com/hospital-erp/hospital-erp/internal/web"
)

func runWeb(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig(config.CmdWeb, getenv, nil)
	if err != nil {
		return err
	}
	log, stopLogs := serviceLogger(ctx, stdout, cfg.LogLevel, "frontend")
	defer stopLogs()
	m := metrics.New("frontend")
	w, err := newWeb(cfg, cfg.APIURL, log, m)
	if err != nil {
		return err
	}
	return serve(ctx, log, cfg, w, m, nil, nil, w)
}

// newWeb builds the frontend, which reaches the backend at apiURL over HTTP
// through the typed client only.
func newWeb(cfg *config.Config, apiURL string, log *slog.Logger, m *metrics.Metrics) (*web.Server, error) {
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	api := client.New(apiURL, &http.Client{Transport: transport, Timeout: cfg.RequestTimeout})
	return web.New(web.Options{
		API:            api,
		Log:            log,
		PublicURL:      cfg.PublicURL,
		Location:       cfg.Location,
		SessionKey:     cfg.WebSessionKey,
		CookieSecure:   cfg.CookieSecure,
		TrustedProxies: cfg.TrustedProxies,
		Observe: func(info *httpx.RequestInfo, method string, status int, d time.Duration) {
			m.HTTPRequests.WithLabelValues(info.Route, method, itoa(status)).Inc()
			m.HTTPDuration.WithLabelValues(info.Route, method).Observe(d.Seconds())
		},
	})
}
