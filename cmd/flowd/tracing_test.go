package main

import (
	"bytes"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestServeTracing: with the standard OTEL_* variables naming a
// collector, serve exports a span per run over OTLP/HTTP, continuing the
// request's traceparent, and flushes them when it shuts down.
func TestServeTracing(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" {
			mu.Lock()
			bodies = append(bodies, b)
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	vars := map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL,
		"OTEL_SERVICE_NAME": "flowd-serve-test"}
	for k, v := range vars { // the exporter reads the process environment
		t.Setenv(k, v)
	}
	s := serveWith(t, &cli{getenv: envOf(vars)}, "--data", t.TempDir())
	if !strings.Contains(s.out.String(), "Tracing: spans exported over OTLP (http/protobuf)") {
		t.Errorf("serve did not say it traces: %s", s.out)
	}
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	code, _ := s.get(t, "/.well-known/jwks.json", map[string]string{"Traceparent": "00-" + traceID + "-b7ad6b7169203331-01"})
	if code != 200 {
		t.Fatalf("jwks: %d", code)
	}
	s.shutdown(t)
	raw, _ := hex.DecodeString(traceID)
	mu.Lock()
	defer mu.Unlock()
	all := bytes.Join(bodies, nil)
	for _, want := range [][]byte{raw, []byte("jwks"), []byte("flowd-serve-test"), []byte("flowd.run.id")} {
		if !bytes.Contains(all, want) {
			t.Errorf("the collector got no export holding %q (%d exports)", want, len(bodies))
		}
	}
}

func TestServeRefusesBadTracingEnv(t *testing.T) {
	code, _, errs := flowdCmd(t, map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"}, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir())
	if code != 2 || !strings.Contains(errs, `OTEL_TRACES_EXPORTER="jaeger": flowd exports traces over OTLP only`) {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}
