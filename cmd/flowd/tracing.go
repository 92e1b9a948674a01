package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/flowd/flowd/tracing/otlp"
)

// startTracing builds serve's OpenTelemetry tracer provider from the
// OTEL_* environment (README "Tracing"): nil when tracing is off. The
// returned stop flushes the spans still batched and shuts the exporter
// down; serve calls it after flowd has closed, so the last runs' spans go
// out too.
func (c *cli) startTracing(ctx context.Context, log *slog.Logger) (*sdktrace.TracerProvider, func(), error) {
	tp, err := otlp.FromEnv(ctx, c.getenv, version())
	if err != nil {
		return nil, nil, usageError{err}
	}
	if tp == nil {
		return nil, func() {}, nil
	}
	// Export failures are the SDK's to report, through this one global
	// hook; flowd's log is where an operator looks.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: OpenTelemetry error", "err", err)
	}))
	_, protocol, _ := otlp.Enabled(c.getenv)
	fmt.Fprintf(c.stdout, "Tracing: spans exported over OTLP (%s)\n", protocol)
	return tp, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("tracing: flushing spans on exit failed", "err", err)
		}
	}, nil
}
