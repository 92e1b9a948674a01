package tracing_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/flowd/flowd/tracing"
)

// carrier is an engine.Carrier over http.Header, as blocks/http's.
type carrier http.Header

func (c carrier) Get(k string) string { return http.Header(c).Get(k) }
func (c carrier) Set(k, v string)     { http.Header(c).Set(k, v) }
func (c carrier) Keys() []string {
	var out []string
	for k := range c {
		out = append(out, k)
	}
	return out
}

func newTracer(t *testing.T) (*tracing.Tracer, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tracing.New(tp), exp
}

const (
	traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	spanID  = "00f067aa0ba902b7"
)

// TestExtractHostile: a well-formed traceparent makes the run a child of
// the caller's span; anything else (as an attacker may send) is ignored
// and the run starts a trace of its own, without failing.
func TestExtractHostile(t *testing.T) {
	tests := []struct {
		name        string
		traceparent string
		child       bool
	}{
		{"valid", "00-" + traceID + "-" + spanID + "-01", true},
		{"absent", "", false},
		{"garbage", "hello", false},
		{"zero trace id", "00-00000000000000000000000000000000-" + spanID + "-01", false},
		{"zero span id", "00-" + traceID + "-0000000000000000-01", false},
		{"version ff", "ff-" + traceID + "-" + spanID + "-01", false},
		{"upper-case hex", "00-" + strings.ToUpper(traceID) + "-" + spanID + "-01", false},
		{"short trace id", "00-" + traceID[:30] + "-" + spanID + "-01", false},
		{"non-hex", "00-" + strings.Repeat("zz", 16) + "-" + spanID + "-01", false},
		{"huge", "00-" + traceID + "-" + spanID + "-01" + strings.Repeat("x", 100000), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, exp := newTracer(t)
			h := http.Header{}
			if tt.traceparent != "" {
				h.Set("Traceparent", tt.traceparent)
				h.Set("Tracestate", "vendor=x")
			}
			ctx := tr.Extract(t.Context(), carrier(h))
			_, run := tr.Flow("f", 1).StartRun(ctx, "run-1", "in", "http.in")
			run.End("")
			spans := exp.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("%d spans", len(spans))
			}
			s := spans[0]
			isChild := s.Parent.IsValid() && s.Parent.TraceID().String() == traceID && s.Parent.SpanID().String() == spanID &&
				s.SpanContext.TraceID().String() == traceID
			if isChild != tt.child {
				t.Errorf("run span parent %v (trace %s): child %v, want %v", s.Parent, s.SpanContext.TraceID(), isChild, tt.child)
			}
			if !tt.child && s.Parent.IsValid() {
				t.Errorf("a refused traceparent left a parent: %v", s.Parent)
			}
			if tid, sid := run.IDs(); tid != s.SpanContext.TraceID().String() || sid != s.SpanContext.SpanID().String() {
				t.Errorf("IDs %s %s, span %s %s", tid, sid, s.SpanContext.TraceID(), s.SpanContext.SpanID())
			}
		})
	}
}

// TestUnsampled: a caller's unsampled trace is honoured: no ids to show,
// no step spans, and the trace context still goes on unsampled.
func TestUnsampled(t *testing.T) {
	tr, exp := newTracer(t)
	h := http.Header{"Traceparent": {"00-" + traceID + "-" + spanID + "-00"}}
	ctx, run := tr.Flow("f", 1).StartRun(tr.Extract(t.Context(), carrier(h)), "run-1", "in", "http.in")
	if tid, sid := run.IDs(); tid != "" || sid != "" {
		t.Errorf("IDs %q %q of an unsampled run", tid, sid)
	}
	sctx, step := run.StartStep(ctx, "call", "http.request")
	if step != nil {
		t.Errorf("a step span for an unsampled run")
	}
	out := http.Header{}
	tr.Inject(sctx, carrier(out))
	if got := out.Get("Traceparent"); !strings.HasPrefix(got, "00-"+traceID+"-") || !strings.HasSuffix(got, "-00") {
		t.Errorf("outgoing traceparent %q", got)
	}
	run.End("")
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans exported", n)
	}
}

// TestSpansAndInject: step spans are children of the run span, carry the
// port and the error, and Inject names the step as the callee's parent.
func TestSpansAndInject(t *testing.T) {
	tr, exp := newTracer(t)
	ctx, run := tr.Flow("token", 7).StartRun(t.Context(), "run-9", "tick", "schedule.cron")
	sctx, call := run.StartStep(ctx, "call", "http.request")
	out := http.Header{}
	tr.Inject(sctx, carrier(out))
	call.End("error", "POST https://idp.example: timeout")
	run.End(`node "call": failed`)
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	step, root := spans[0], spans[1]
	if root.Parent.IsValid() || root.Name != "token" {
		t.Errorf("run span %q parent %v", root.Name, root.Parent)
	}
	if step.Parent.SpanID() != root.SpanContext.SpanID() || step.Name != "call" {
		t.Errorf("step %q parent %s, want the run span %s", step.Name, step.Parent.SpanID(), root.SpanContext.SpanID())
	}
	want := "00-" + root.SpanContext.TraceID().String() + "-" + step.SpanContext.SpanID().String() + "-01"
	if got := out.Get("Traceparent"); got != want {
		t.Errorf("traceparent %q, want %q", got, want)
	}
	if step.Status.Code != codes.Error || step.Status.Description != "POST https://idp.example: timeout" {
		t.Errorf("step status %+v", step.Status)
	}
	if root.Status.Code != codes.Error || root.Status.Description != `node "call": failed` {
		t.Errorf("run status %+v", root.Status)
	}
	attrs := map[string]string{}
	for _, kv := range append(root.Attributes, step.Attributes...) {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	for k, v := range map[string]string{tracing.AttrFlowID: "token", tracing.AttrFlowVersion: "7", tracing.AttrRunID: "run-9",
		tracing.AttrTrigger: "tick", tracing.AttrNodeID: "call", tracing.AttrBlockType: "http.request", tracing.AttrPort: "error"} {
		if attrs[k] != v {
			t.Errorf("%s = %q, want %q", k, attrs[k], v)
		}
	}
}
