package tracing_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/store/memstore"
)

// An embedder traces flowd's runs by giving it a TracerProvider: here one
// with an in-memory exporter; a real host gives one exporting over OTLP
// (see tracing/otlp) and shuts it down on exit.
func Example() {
	ctx := context.Background()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(ctx)

	st, _ := memstore.New(memstore.Options{})
	defer st.Close()
	fd, err := flowd.New(flowd.Options{Store: st, TracerProvider: tp})
	if err != nil {
		panic(err)
	}
	if err := fd.Start(ctx); err != nil {
		panic(err)
	}
	defer fd.Close(ctx)
	doc := `{"schema":"flowd/v1","id":"hello","name":"hello","nodes":[
	  {"id":"in","type":"http.in","config":{"method":"GET","path":"/hello"}},
	  {"id":"answer","type":"http.respond","config":{"body":"{'hello': 'world'}"}}],
	 "wires":[{"from":"in","port":"out","to":"answer"}]}`
	if _, err := fd.App().Import(ctx, []byte(doc), true); err != nil {
		panic(err)
	}

	req := httptest.NewRequest("GET", "/hello", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	fd.FlowHandler().ServeHTTP(httptest.NewRecorder(), req)

	for _, s := range exp.GetSpans() {
		fmt.Printf("%s: trace %s, parent %s\n", s.Name, s.SpanContext.TraceID(), parentName(exp.GetSpans(), s))
	}
	// Output:
	// in: trace 4bf92f3577b34da6a3ce929d0e0e4736, parent hello
	// answer: trace 4bf92f3577b34da6a3ce929d0e0e4736, parent hello
	// hello: trace 4bf92f3577b34da6a3ce929d0e0e4736, parent the caller's span 00f067aa0ba902b7
}

func parentName(spans tracetest.SpanStubs, s tracetest.SpanStub) string {
	for _, p := range spans {
		if p.SpanContext.SpanID() == s.Parent.SpanID() {
			return p.Name
		}
	}
	return "the caller's span " + s.Parent.SpanID().String()
}
