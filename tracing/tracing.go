// Package tracing implements the engine's Tracer seam (engine.Tracer) with
// OpenTelemetry: a span per run, named after its flow, and a span per
// step under it; W3C trace context (traceparent, tracestate) taken from
// requests and passed on with the standard TraceContext propagator.
//
//	<incoming span>                   from http.in's traceparent, if any
//	  └─ protected-api                the run: flowd.flow.id, flowd.flow.version,
//	       │                          flowd.run.id, flowd.trigger
//	       ├─ in                      one span per step: flowd.node.id,
//	       ├─ check                   flowd.block.type, flowd.port; status
//	       └─ respond                 Error with the cleaned error text
//
// Spans carry names and ids only: never a message, a header, a token or a
// key. Error texts are those of the run's trace, with credentials and the
// values the run marked secret cut out (engine.Exec.RedactText).
//
// The package needs only the OpenTelemetry API: the host brings the
// TracerProvider (flowd.Options.TracerProvider). tracing/otlp builds one
// exporting over OTLP from the standard OTEL_* environment variables, as
// `flowd serve` does.
package tracing

import (
	"context"

	"github.com/flowd/flowd/engine"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Instrumentation is the name of flowd's tracer (the instrumentation scope).
const Instrumentation = "github.com/flowd/flowd"

// Span attribute keys.
const (
	AttrFlowID      = "flowd.flow.id"
	AttrFlowVersion = "flowd.flow.version"
	AttrRunID       = "flowd.run.id"
	AttrTrigger     = "flowd.trigger" // the trigger node's id
	AttrNodeID      = "flowd.node.id"
	AttrBlockType   = "flowd.block.type"
	AttrPort        = "flowd.port" // the port a step's message left by
)

// Tracer is an engine.Tracer over an OpenTelemetry TracerProvider.
type Tracer struct {
	tracer trace.Tracer
	prop   propagation.TraceContext
}

var (
	_ engine.Tracer     = (*Tracer)(nil)
	_ engine.FlowTracer = (*flowTracer)(nil)
	_ engine.RunSpan    = (*runSpan)(nil)
	_ engine.StepSpan   = stepSpan{}
)

// New returns a Tracer whose spans go to tp.
func New(tp trace.TracerProvider) *Tracer {
	return &Tracer{tracer: tp.Tracer(Instrumentation)}
}

// Flow resolves, at deploy, what every run of one flow version shares.
func (t *Tracer) Flow(flow string, version int) engine.FlowTracer {
	return &flowTracer{tracer: t.tracer, name: flow,
		attrs: []attribute.KeyValue{attribute.String(AttrFlowID, flow), attribute.Int(AttrFlowVersion, version)}}
}

// Extract returns ctx carrying the remote span context of c's traceparent
// and tracestate; ctx unchanged when they are absent or malformed.
func (t *Tracer) Extract(ctx context.Context, c engine.Carrier) context.Context {
	return t.prop.Extract(ctx, c)
}

// Inject writes ctx's span context into c as traceparent and tracestate.
func (t *Tracer) Inject(ctx context.Context, c engine.Carrier) {
	t.prop.Inject(ctx, c)
}

type flowTracer struct {
	tracer trace.Tracer
	name   string
	attrs  []attribute.KeyValue // flow id and version
}

func (f *flowTracer) StartRun(ctx context.Context, runID, trigger, triggerType string) (context.Context, engine.RunSpan) {
	kind := trace.SpanKindInternal
	if triggerType == "http.in" {
		kind = trace.SpanKindServer // the run answers the request
	}
	ctx, span := f.tracer.Start(ctx, f.name, trace.WithSpanKind(kind), trace.WithAttributes(f.attrs...),
		trace.WithAttributes(attribute.String(AttrRunID, runID), attribute.String(AttrTrigger, trigger)))
	return ctx, &runSpan{tracer: f.tracer, span: span}
}

type runSpan struct {
	tracer trace.Tracer
	span   trace.Span
}

func (r *runSpan) IDs() (traceID, spanID string) {
	sc := r.span.SpanContext()
	if !sc.IsSampled() {
		return "", ""
	}
	return sc.TraceID().String(), sc.SpanID().String()
}

func (r *runSpan) StartStep(ctx context.Context, node, blockType string) (context.Context, engine.StepSpan) {
	if !r.span.IsRecording() {
		return ctx, nil // not sampled: no step spans either
	}
	kind := trace.SpanKindInternal
	if blockType == "http.request" {
		kind = trace.SpanKindClient
	}
	ctx, span := r.tracer.Start(ctx, node, trace.WithSpanKind(kind),
		trace.WithAttributes(attribute.String(AttrNodeID, node), attribute.String(AttrBlockType, blockType)))
	return ctx, stepSpan{span}
}

func (r *runSpan) End(errText string) {
	if errText != "" {
		r.span.SetStatus(codes.Error, errText)
	}
	r.span.End()
}

type stepSpan struct{ span trace.Span }

func (s stepSpan) End(port, errText string) {
	if port != "" {
		s.span.SetAttributes(attribute.String(AttrPort, port))
	}
	if errText != "" {
		s.span.SetStatus(codes.Error, errText)
	}
	s.span.End()
}
