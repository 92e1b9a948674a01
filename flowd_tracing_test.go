package flowd_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/tracing"
)

const (
	incomingTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingSpan  = "00f067aa0ba902b7"
	traceparent   = "00-" + incomingTrace + "-" + incomingSpan + "-01"
)

// newTracedEnv is a flowd with the shipped examples whose spans go to an
// in-memory exporter, emptied of the start-up runs' spans.
func newTracedEnv(t *testing.T) (*metricsEnv, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	e := newEnvWith(t, func(o *flowd.Options) { o.TracerProvider = tp })
	exp.Reset()
	return e, exp
}

// tracedHello calls the shipped protected-api flow with a traceparent and
// a token of keyset main for audience, checks the answer's status and
// returns the token.
func tracedHello(t *testing.T, e *metricsEnv, audience string, wantCode int) string {
	t.Helper()
	k := activeKey(t, e.fd.Keysets(), "main")
	tok := e.sign("main", k.Alg, jose.SignRequest{Typ: "at+jwt", Issuer: "http://flowd.test", Subject: "alice",
		Audience: []string{audience}, TTL: time.Hour})
	w := e.do("GET", "/api/hello", map[string]string{"Authorization": "Bearer " + tok, "Traceparent": traceparent}, "")
	if w.Code != wantCode {
		t.Fatalf("GET /api/hello: %d %s, want %d", w.Code, w.Body, wantCode)
	}
	return tok
}

func attrs(s tracetest.SpanStub) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

// inTrace returns the spans of one trace, in the order they started.
func inTrace(spans tracetest.SpanStubs, traceID string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.SpanContext.TraceID().String() == traceID {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b tracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
	return out
}

// TestTracingProtectedAPI: one request with a traceparent through the
// shipped protected-api flow gives one trace: the run's span, a child of
// the incoming span, named after the flow and carrying the run id, and
// one child span per step of the run's trace, with node, block type and
// port. The run record keeps the trace and span ids (the runs panel shows
// them). No span holds the token.
func TestTracingProtectedAPI(t *testing.T) {
	e, exp := newTracedEnv(t)
	tok := tracedHello(t, e, "flowd-api", 200)
	runs, err := e.fd.App().Runs(t.Context(), "protected-api", 1)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs: %v %v", runs, err)
	}
	run := runs[0]
	spans := inTrace(exp.GetSpans(), incomingTrace)
	if len(spans) != 1+len(run.Steps) {
		t.Fatalf("trace %s has %d spans, want the run's and one per step (%d):\n%v", incomingTrace, len(spans), 1+len(run.Steps), spans)
	}
	root := spans[0]
	if root.Name != "protected-api" || root.SpanKind != trace.SpanKindServer {
		t.Errorf("run span %q kind %v, want protected-api server", root.Name, root.SpanKind)
	}
	if p := root.Parent; !p.IsRemote() || p.SpanID().String() != incomingSpan || p.TraceID().String() != incomingTrace {
		t.Errorf("run span's parent %v, want the incoming span %s (remote)", p, incomingSpan)
	}
	version, _ := e.fd.App().Deployed("protected-api")
	wantRoot := map[string]string{tracing.AttrFlowID: "protected-api", tracing.AttrFlowVersion: fmt.Sprint(version),
		tracing.AttrRunID: run.ID, tracing.AttrTrigger: "in"}
	if got := attrs(root); !mapsEqual(got, wantRoot) {
		t.Errorf("run span attributes %v, want %v", got, wantRoot)
	}
	if root.Status.Code != codes.Unset {
		t.Errorf("run span status %v", root.Status)
	}
	if run.TraceID != incomingTrace || run.SpanID != root.SpanContext.SpanID().String() {
		t.Errorf("run record trace %q span %q, want %s %s", run.TraceID, run.SpanID, incomingTrace, root.SpanContext.SpanID())
	}
	for i, st := range run.Steps {
		s := spans[1+i]
		if s.Name != st.Node || s.Parent.SpanID() != root.SpanContext.SpanID() {
			t.Errorf("span %d: %q under %s, want step %q under the run span %s", i+1, s.Name, s.Parent.SpanID(), st.Node, root.SpanContext.SpanID())
		}
		want := map[string]string{tracing.AttrNodeID: st.Node, tracing.AttrBlockType: st.Type}
		if st.Port != "" {
			want[tracing.AttrPort] = st.Port
		}
		if got := attrs(s); !mapsEqual(got, want) {
			t.Errorf("step %s attributes %v, want %v", st.Node, got, want)
		}
	}
	if got := stepNames(run); !slices.Equal(got, []string{"in:out", "auth:valid", "hello:out", "ok:out"}) {
		t.Errorf("run steps %v", got)
	}
	// The served run (admin API, runs panel) carries the same ids.
	req := httptest.NewRequest("GET", "/admin/api/flows/protected-api/runs", nil)
	req.Header.Set("Authorization", "Bearer test-admin-token")
	aw := httptest.NewRecorder()
	e.h.ServeHTTP(aw, req)
	var served struct {
		Runs []struct {
			ID      string `json:"id"`
			TraceID string `json:"trace_id"`
			SpanID  string `json:"span_id"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(aw.Body.Bytes(), &served); err != nil || aw.Code != 200 || len(served.Runs) == 0 {
		t.Fatalf("admin API runs: %d %v %.300s", aw.Code, err, aw.Body)
	}
	if r := served.Runs[0]; r.ID != run.ID || r.TraceID != incomingTrace || r.SpanID != run.SpanID {
		t.Errorf("admin API run %+v, want %s with trace %s span %s", r, run.ID, incomingTrace, run.SpanID)
	}
	assertNoSecret(t, exp.GetSpans(), tok)
}

// TestTracingInvalidTokenSpan: a refused token leaves a trace too, the
// validate step's port naming the refusal, and still no token anywhere.
func TestTracingInvalidTokenSpan(t *testing.T) {
	e, exp := newTracedEnv(t)
	tok := tracedHello(t, e, "someone-else", 401)
	spans := inTrace(exp.GetSpans(), incomingTrace)
	var ports []string
	for _, s := range spans[1:] {
		ports = append(ports, s.Name+":"+attrs(s)[tracing.AttrPort])
	}
	if !slices.Equal(ports, []string{"in:out", "auth:invalid", "denied:out"}) {
		t.Errorf("step spans %v", ports)
	}
	assertNoSecret(t, exp.GetSpans(), tok)
}

func stepNames(tr *engine.Trace) []string {
	var out []string
	for _, st := range tr.Steps {
		out = append(out, st.Node+":"+st.Port)
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// assertNoSecret fails when any part of any span (name, attributes,
// status, events, links) holds tok or a third of it.
func assertNoSecret(t *testing.T, spans tracetest.SpanStubs, tok string) {
	t.Helper()
	parts := []string{tok, tok[:len(tok)/3], tok[len(tok)/3 : 2*len(tok)/3], tok[2*len(tok)/3:], "Bearer"}
	for _, s := range spans {
		texts := []string{s.Name, s.Status.Description}
		for _, kv := range s.Attributes {
			texts = append(texts, string(kv.Key), kv.Value.Emit())
		}
		for _, ev := range s.Events {
			texts = append(texts, ev.Name)
			for _, kv := range ev.Attributes {
				texts = append(texts, kv.Value.Emit())
			}
		}
		for _, r := range s.Resource.Attributes() {
			texts = append(texts, r.Value.Emit())
		}
		for _, text := range texts {
			for _, p := range parts {
				if strings.Contains(text, p) {
					t.Errorf("span %q holds part of the token or credential (%q) in %q", s.Name, p, text)
				}
			}
		}
	}
}

// TestTracingRequestPropagates: http.request sends the trace on, its
// traceparent naming the request step's span as the parent.
func TestTracingRequestPropagates(t *testing.T) {
	var mu sync.Mutex
	var got []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Traceparent"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	defer upstream.Close()
	e, exp := newTracedEnv(t)
	doc := map[string]any{"schema": "flowd/v1", "id": "relay", "name": "relay",
		"nodes": []map[string]any{
			{"id": "in", "type": "http.in", "config": map[string]any{"method": "GET", "path": "/relay"}},
			{"id": "call", "type": "http.request", "config": map[string]any{"url": fmt.Sprintf("%q", upstream.URL)}},
			{"id": "out", "type": "http.respond"},
		},
		"wires": []map[string]any{{"from": "in", "port": "out", "to": "call"}, {"from": "call", "port": "out", "to": "out"}},
	}
	raw, _ := json.Marshal(doc)
	if _, err := e.fd.App().Import(t.Context(), raw, true); err != nil {
		t.Fatal(err)
	}
	if w := e.do("GET", "/relay", map[string]string{"Traceparent": traceparent}, ""); w.Code != 200 {
		t.Fatalf("GET /relay: %d %s", w.Code, w.Body)
	}
	spans := inTrace(exp.GetSpans(), incomingTrace)
	var call tracetest.SpanStub
	for _, s := range spans {
		if s.Name == "call" {
			call = s
		}
	}
	if !call.SpanContext.IsValid() || call.SpanKind != trace.SpanKindClient {
		t.Fatalf("no client span for the http.request step in %v", spans)
	}
	want := "00-" + incomingTrace + "-" + call.SpanContext.SpanID().String() + "-01"
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != want {
		t.Errorf("upstream got traceparent %q, want [%s]", got, want)
	}
	if a := attrs(call); a[tracing.AttrPort] != "out" || a[tracing.AttrBlockType] != "http.request" {
		t.Errorf("call span attributes %v", a)
	}
}
