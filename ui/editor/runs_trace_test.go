package editor_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/ui/uitest"
)

const (
	tracedID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	sampled   = "00-" + tracedID + "-00f067aa0ba902b7-01"
	unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
)

// tracedRuns deploys lightFlow with runs traced to an in-memory exporter
// and makes one sampled and one unsampled run of /l/ok.
func tracedRuns(t *testing.T) (e *env, traced, untraced *engine.Trace) {
	t.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewInMemoryExporter()))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	e = newEnv(t, func(o *flowd.Options) { o.TracerProvider = tp })
	e.importFlow(t, lightFlow, true)
	get := func(traceparent string) *engine.Trace {
		before := len(e.fd.App().Traces("l"))
		req, _ := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+"/l/ok", nil)
		req.Header.Set("Traceparent", traceparent)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if trs := e.fd.App().Traces("l"); len(trs) > before {
				return trs[0]
			}
		}
		t.Fatal("no run")
		return nil
	}
	traced, untraced = get(sampled), get(unsampled)
	if traced.TraceID != tracedID || traced.SpanID == "" || untraced.TraceID != "" {
		t.Fatalf("runs' trace ids %q/%q and %q", traced.TraceID, traced.SpanID, untraced.TraceID)
	}
	return e, traced, untraced
}

// TestRunsTraceIDs: the runs list gives a traced run's trace and span ids,
// and none for a run whose trace was not sampled.
func TestRunsTraceIDs(t *testing.T) {
	e, traced, untraced := tracedRuns(t)
	status, _, body := e.do(t, "GET", "/admin/api/flows/l/runs?view=summary", "")
	if status != http.StatusOK {
		t.Fatalf("runs: %d %s", status, body)
	}
	var got struct {
		Runs []struct {
			ID      string `json:"id"`
			TraceID string `json:"trace_id"`
			SpanID  string `json:"span_id"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{traced.ID: {tracedID, traced.SpanID}, untraced.ID: {"", ""}}
	for _, r := range got.Runs {
		w, ok := want[r.ID]
		if !ok {
			continue
		}
		if r.TraceID != w[0] || r.SpanID != w[1] {
			t.Errorf("run %s: trace %q span %q, want %q %q", r.ID, r.TraceID, r.SpanID, w[0], w[1])
		}
		delete(want, r.ID)
	}
	if len(want) != 0 {
		t.Errorf("runs missing from the list: %v", want)
	}
}

// TestBrowserRunTraceID: the runs panel shows a traced run's run id and
// trace id, and no trace line for a run not sampled.
func TestBrowserRunTraceID(t *testing.T) {
	e, traced, untraced := tracedRuns(t)
	ctx := browser(t)
	openEditor(t, ctx, e, "l")
	for _, id := range []string{traced.ID, untraced.ID} {
		waitJS(t, ctx, "run "+id, `!!`+q("run-"+id))
	}
	uitest.JS[bool](t, ctx, `(document.querySelectorAll('.fe-run details').forEach((d) => { d.open = true; }), true)`)
	line := func(id string) string {
		return uitest.JS[string](t, ctx, `((`+q("run-"+id)+`.querySelector('[data-testid="trace-id"]')) || {}).textContent || ''`)
	}
	if got, want := line(traced.ID), "Run "+traced.ID+" · trace "+tracedID; got != want {
		t.Errorf("traced run's line %q, want %q", got, want)
	}
	if got := line(untraced.ID); got != "" {
		t.Errorf("untraced run shows %q", got)
	}
}
