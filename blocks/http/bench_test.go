package httpblock

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// BenchmarkInRespond compares a request through Router -> http.in ->
// http.respond (static JSON) with a plain http.HandlerFunc writing the same
// bytes and headers. "interleaved" times both in one loop and reports their
// ratio, so both halves see the same machine state.
func BenchmarkInRespond(b *testing.B) {
	e := newEnv(b, engine.Options{})
	e.deploy(b, endpoint(b, "bench", "GET", "/users/{id}", map[string]any{"body": `{"ok": true, "n": 1}`}), 1)
	want := "{\"n\":1,\"ok\":true}\n"
	plain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.PathValue("id")
		h := w.Header()
		h["X-Content-Type-Options"] = []string{"nosniff"}
		h["Cache-Control"] = []string{"no-store"}
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{"19"}
		w.WriteHeader(200)
		w.Write([]byte(want))
	})
	mux := http.NewServeMux()
	mux.Handle("GET /users/{id}", plain)
	serve := func(b *testing.B, h http.Handler) {
		req := httptest.NewRequest("GET", "/users/42?q=1", nil)
		req.Header.Set("Accept", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 || w.Body.String() != want {
			b.Fatalf("got %d %q", w.Code, w.Body)
		}
	}
	b.Run("router", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serve(b, e.router)
		}
	})
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serve(b, mux)
		}
	})
	b.Run("interleaved", func(b *testing.B) {
		var flow, base time.Duration
		n := 0
		for b.Loop() {
			t0 := time.Now()
			serve(b, e.router)
			t1 := time.Now()
			serve(b, mux)
			base += time.Since(t1)
			flow += t1.Sub(t0)
			n++
		}
		b.ReportMetric(float64(flow.Nanoseconds())/float64(n), "router-ns/req")
		b.ReportMetric(float64(base.Nanoseconds())/float64(n), "plain-ns/req")
		b.ReportMetric(float64(flow)/float64(base), "ratio")
	})
}
