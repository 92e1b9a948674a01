// Package otlp builds the OpenTelemetry TracerProvider `flowd serve` uses:
// spans batched and exported over OTLP, configured by the standard OTEL_*
// environment variables. Tracing is off unless they ask for it.
//
// This package decides only whether to trace and over which protocol; the
// OpenTelemetry SDK and exporters read every other variable themselves
// (endpoints, headers, TLS files, timeouts, compression, sampler, batch
// sizes, resource attributes), so they mean here what the OpenTelemetry
// specification says.
package otlp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// ErrConfig is wrapped by the errors of an OTEL_* value flowd cannot use.
var ErrConfig = errors.New("tracing configuration")

// Protocols an OTLP exporter speaks here.
const (
	ProtocolHTTP = "http/protobuf" // the default, as the specification says
	ProtocolGRPC = "grpc"
)

// Enabled reports whether the environment asks for traces, and over which
// OTLP protocol:
//
//   - OTEL_SDK_DISABLED=true, or OTEL_TRACES_EXPORTER=none: off;
//   - OTEL_TRACES_EXPORTER=otlp: on;
//   - OTEL_TRACES_EXPORTER unset: on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
//     or OTEL_EXPORTER_OTLP_ENDPOINT is set, off otherwise (the
//     specification's default exporter is otlp, but flowd sends nothing
//     anywhere unless told where);
//   - any other exporter: an error (flowd exports OTLP only).
//
// The protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else
// OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf; grpc is the other one
// (http/json is not supported by the Go exporter).
func Enabled(getenv func(string) string) (on bool, protocol string, err error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return false, "", nil
	}
	switch exp := strings.ToLower(get("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return false, "", nil
	case "otlp":
	case "":
		if get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" && get("OTEL_EXPORTER_OTLP_ENDPOINT") == "" {
			return false, "", nil
		}
	default:
		return false, "", fmt.Errorf("%w: OTEL_TRACES_EXPORTER=%q: flowd exports traces over OTLP only (otlp or none)", ErrConfig, exp)
	}
	name, protocol := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		name, protocol = "OTEL_EXPORTER_OTLP_PROTOCOL", get("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch protocol {
	case "":
		return true, ProtocolHTTP, nil
	case ProtocolHTTP, ProtocolGRPC:
		return true, protocol, nil
	}
	return false, "", fmt.Errorf("%w: %s=%q: want %s or %s", ErrConfig, name, protocol, ProtocolHTTP, ProtocolGRPC)
}

// FromEnv returns a TracerProvider exporting over OTLP as the environment
// says (see Enabled), or nil when tracing is off. getenv decides on and
// off; the SDK and exporter read the process environment for the rest.
// The service is named "flowd" (version serviceVersion) unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise. Shut the
// provider down on exit: that flushes the spans still batched.
func FromEnv(ctx context.Context, getenv func(string) string, serviceVersion string) (*sdktrace.TracerProvider, error) {
	on, protocol, err := Enabled(getenv)
	if err != nil || !on {
		return nil, err
	}
	var exp sdktrace.SpanExporter
	if protocol == ProtocolGRPC {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: OTLP %s exporter: %w", ErrConfig, protocol, err)
	}
	fromEnv, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("%w: OTEL_RESOURCE_ATTRIBUTES: %w", ErrConfig, err)
	}
	defaults := []attribute.KeyValue{attribute.String("service.name", "flowd")}
	if serviceVersion != "" {
		defaults = append(defaults, attribute.String("service.version", serviceVersion))
	}
	// The environment's attributes win over flowd's defaults.
	res, err := resource.Merge(resource.NewSchemaless(defaults...), fromEnv)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("%w: resource: %w", ErrConfig, err)
	}
	// The sampler is the SDK's default unless OTEL_TRACES_SAMPLER names
	// one: parent-based, always on.
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
