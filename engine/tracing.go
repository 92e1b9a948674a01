package engine

import (
	"context"
	"errors"
)

// Tracer is the seam between the runtime (and the blocks) and a
// distributed tracing system: package tracing implements it with
// OpenTelemetry. The engine knows no tracing library; it asks the tracer
// once per deployed flow version and, per run, opens a span for the run
// and one per step:
//
//	deploy:  Tracer.Flow(flow, version)              -> FlowTracer (per version)
//	run:     FlowTracer.StartRun(ctx, run, trigger)  -> ctx, RunSpan
//	         RunSpan.StartStep(ctx, node, type)      -> ctx, StepSpan (per step)
//	         StepSpan.End(port, error)               per step
//	         RunSpan.End(error)                      once per run
//
// The run's span is a child of whatever span ctx carries: the one
// http.in extracted from a request's traceparent (Extract), or the step
// of the run that called this one as a sub-flow. A block gets the step's
// context, so http.request passes the trace on (Inject).
//
// With no tracer (Options.Tracer nil, the default) none of this runs: the
// run loop checks one nil field, and a run costs no allocation more.
//
// What the engine hands a tracer is names and ids (flow, version, run,
// node, block type, port) and error texts cleaned as the run's trace
// cleans them (Exec.RedactText); never a message.
//
// Implementations must be safe for concurrent use and must not block.
type Tracer interface {
	// Flow returns the tracer of one deployed flow version.
	Flow(flow string, version int) FlowTracer
	// Extract returns ctx carrying the remote span context c holds (the
	// W3C traceparent and tracestate of an incoming request), for a
	// trigger whose run continues a caller's trace.
	Extract(ctx context.Context, c Carrier) context.Context
	// Inject writes the span context of ctx into c, for a block sending a
	// request on behalf of the run.
	Inject(ctx context.Context, c Carrier)
}

// FlowTracer starts the runs' spans of one flow version.
type FlowTracer interface {
	// StartRun starts the span of one run as a child of the span ctx
	// carries, and returns ctx carrying the run's span.
	StartRun(ctx context.Context, runID, triggerNode, triggerType string) (context.Context, RunSpan)
}

// RunSpan is the span of one run.
type RunSpan interface {
	// IDs are the run span's trace and span ids in lowercase hex (as in a
	// traceparent); both "" when the run is not sampled (no trace will
	// exist to look at).
	IDs() (traceID, spanID string)
	// StartStep starts the span of one step, a child of the run's span,
	// and returns the context the block runs with. It may return a nil
	// StepSpan (the run is not sampled).
	StartStep(ctx context.Context, node, blockType string) (context.Context, StepSpan)
	// End ends the run's span; errText is "" when the run succeeded.
	End(errText string)
}

// StepSpan is the span of one step.
type StepSpan interface {
	// End ends the step: port is the port its message left by ("" when
	// the branch ended there), errText "" when the block succeeded.
	End(port, errText string)
}

// Carrier is where a span context travels: request headers. Its method
// set is OpenTelemetry's propagation.TextMapCarrier, so an implementation
// hands it to a propagator as it is.
type Carrier interface {
	Get(key string) string
	Set(key, value string)
	Keys() []string
}

// startRunSpan opens the run's span when the flow is traced, and records
// its ids in the trace. ctx is returned unchanged when it is not.
func (d *deployment) startRunSpan(ctx context.Context, tr *Trace, start *nodeInst) (context.Context, RunSpan) {
	if d.tracer == nil {
		return ctx, nil
	}
	ctx, span := d.tracer.StartRun(ctx, tr.ID, start.node.ID, start.node.Type)
	if span != nil {
		tr.TraceID, tr.SpanID = span.IDs()
	}
	return ctx, span
}

// triggerStepSpan records the trigger's own step (the first of the
// trace) as a span, so the spans of a run match its trace's steps.
func triggerStepSpan(ctx context.Context, span RunSpan, start *nodeInst) {
	if _, ss := span.StartStep(ctx, start.node.ID, start.node.Type); ss != nil {
		ss.End(start.firePort, "")
	}
}

// endStepSpan ends a step's span with the port the run loop sends its
// message out of: a failed step goes out of "error" when that is wired,
// and otherwise ends its branch (and the run).
func endStepSpan(ss StepSpan, x *Exec, n *nodeInst, port string, err error) {
	if err == nil {
		ss.End(port, "")
		return
	}
	port = ""
	if len(n.out[ErrorPort]) > 0 && !errors.Is(err, ErrDeadline) {
		port = ErrorPort
	}
	ss.End(port, x.RedactText(err.Error()))
}
