package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowd/flowd/metrics"
)

// serveObs is serve's observability flags: where /metrics listens, and
// how logs are written.
type serveObs struct {
	metricsAddr string
	logFormat   string
	reg         *prometheus.Registry // set by start when metricsAddr is set
}

func (c *cli) bindObs(fs *flag.FlagSet) *serveObs {
	o := &serveObs{}
	fs.StringVar(&o.metricsAddr, "metrics-addr", c.getenv("FLOWD_METRICS_ADDR"),
		"serve Prometheus metrics at GET /metrics on this separate address, e.g. 127.0.0.1:9464 (default: off; env FLOWD_METRICS_ADDR)")
	fs.StringVar(&o.logFormat, "log-format", or(c.getenv("FLOWD_LOG_FORMAT"), "text"),
		"log format: text or json (env FLOWD_LOG_FORMAT)")
	return o
}

func (o *serveObs) check() error {
	switch o.logFormat {
	case "text", "json":
	default:
		return usageError{fmt.Errorf("--log-format %q: want text or json", o.logFormat)}
	}
	return nil
}

// logger is cli.logger in the chosen format.
func (c *cli) obsLogger(o *serveObs) *slog.Logger {
	level := slog.LevelInfo
	if strings.EqualFold(c.getenv("FLOWD_LOG"), "debug") {
		level = slog.LevelDebug
	}
	hopts := &slog.HandlerOptions{Level: level}
	if o != nil && o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(c.stderr, hopts))
	}
	return slog.New(slog.NewTextHandler(c.stderr, hopts))
}

// listen opens the metrics listener and its registry (with the Go
// runtime and process collectors), before flowd is built so flowd can
// register on it. It returns a nil listener when metrics are off.
func (o *serveObs) listen() (net.Listener, error) {
	if o.metricsAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", o.metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on --metrics-addr %s: %w", o.metricsAddr, err)
	}
	o.reg = prometheus.NewRegistry()
	if err := metrics.RegisterRuntime(o.reg); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// registerer is what flowd.Options.Metrics gets: nil when metrics are off.
func (o *serveObs) registerer() prometheus.Registerer {
	if o == nil || o.reg == nil {
		return nil
	}
	return o.reg
}

// serveMetrics answers GET /metrics on ln until ctx ends. The listener
// carries nothing else: no admin UI, no flow routes, so it can be bound to
// a private address that only the Prometheus server reaches.
func (o *serveObs) serveMetrics(ctx context.Context, ln net.Listener, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn), Timeout: 10 * time.Second,
		MaxRequestsInFlight: 4,
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 8 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
}
