package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/bench/baseline"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/store"
)

// The in-process half of the load benchmark: flowd's prebuilt jwks and
// protected-api flows (through FlowHandler, no network) against
// bench/baseline, the hand-written server, on the same requests. It
// isolates what flowd adds per request from the kernel and wrk, which
// dominate bench/run.sh on the cheap endpoint.

const issuer = "http://flowd.test"

type pair struct {
	flowd, base http.Handler
	token       string
}

func setup(tb testing.TB) *pair {
	tb.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	st, err := store.OpenBolt(filepath.Join(tb.TempDir(), "flowd.db"), store.BoltOptions{MasterKey: key})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	opts := flowd.Options{Store: st, Examples: examples.FS, Issuer: issuer, AdminToken: "bench-admin"}
	if os.Getenv("FLOWD_BENCH_METRICS") == "1" {
		// Count everything, as `flowd serve --metrics-addr` does.
		opts.Metrics = prometheus.NewRegistry()
	}
	fd, err := flowd.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	if err := fd.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { fd.Close(context.Background()) })
	if _, _, err := fd.Clients().Add(ctx, oauth.Client{ID: "demo", Scopes: []string{"read", "write"}}, "demo-secret-0123456789"); err != nil {
		tb.Fatal(err)
	}
	h := fd.Handler() // as flowd serve mounts it
	w := serve(h, "POST", "/oauth/token", "grant_type=client_credentials&scope=read", "Basic "+basic("demo", "demo-secret-0123456789"))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &tok) != nil || tok.AccessToken == "" {
		tb.Fatalf("token: %d %s", w.Code, w.Body)
	}
	jw := serve(h, "GET", "/.well-known/jwks.json", "", "")
	if jw.Code != 200 {
		tb.Fatalf("jwks: %d %s", jw.Code, jw.Body)
	}
	b, err := baseline.New(jw.Body.Bytes(), issuer, "flowd-api")
	if err != nil {
		tb.Fatal(err)
	}
	return &pair{flowd: h, base: b.Handler(), token: tok.AccessToken}
}

func basic(id, secret string) string {
	req := httptest.NewRequest("GET", "/", nil)
	req.SetBasicAuth(id, secret)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// serve sends one request the way wrk does (a few plain headers).
func serve(h http.Handler, method, path, form, authz string) *httptest.ResponseRecorder {
	var body *strings.Reader
	if form != "" {
		body = strings.NewReader(form)
	}
	var req *http.Request
	if body != nil {
		req = httptest.NewRequest(method, path, body)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	req.Header.Set("Accept", "*/*")
	req.Header.Set("User-Agent", "wrk")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// comparable is the part of a response both servers must agree on.
func comparable(t *testing.T, w *httptest.ResponseRecorder) (int, map[string]string, any) {
	t.Helper()
	hdr := map[string]string{}
	for _, k := range []string{"Content-Type", "Cache-Control", "Etag", "Access-Control-Allow-Origin", "Www-Authenticate", "X-Content-Type-Options"} {
		hdr[k] = w.Header().Get(k)
	}
	var body any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("body is not JSON: %v: %q", err, w.Body)
		}
	}
	return w.Code, hdr, body
}

// TestSameWork proves the comparison is fair: on every request the
// benchmarks send, and on the error cases, both servers answer the same
// status, headers and JSON body.
func TestSameWork(t *testing.T) {
	p := setup(t)
	tampered := p.token[:len(p.token)-4] + "AAAA"
	if tampered == p.token {
		tampered = p.token[:len(p.token)-4] + "BBBB"
	}
	etag := serve(p.base, "GET", "/.well-known/jwks.json", "", "").Header().Get("ETag")
	cases := []struct{ name, path, authz, inm string }{
		{"jwks", "/.well-known/jwks.json", "", ""},
		{"jwks 304", "/.well-known/jwks.json", "", etag},
		{"hello", "/api/hello", "Bearer " + p.token, ""},
		{"hello no token", "/api/hello", "", ""},
		{"hello tampered", "/api/hello", "Bearer " + tampered, ""},
		{"hello garbage", "/api/hello", "Bearer not.a.jwt", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			do := func(h http.Handler) *httptest.ResponseRecorder {
				req := httptest.NewRequest("GET", c.path, nil)
				if c.authz != "" {
					req.Header.Set("Authorization", c.authz)
				}
				if c.inm != "" {
					req.Header.Set("If-None-Match", c.inm)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				return w
			}
			fw, bw := do(p.flowd), do(p.base)
			fs, fh, fb := comparable(t, fw)
			bs, bh, bb := comparable(t, bw)
			if fs != bs {
				t.Errorf("status: flowd %d, baseline %d", fs, bs)
			}
			for k, v := range bh {
				if fh[k] != v {
					t.Errorf("%s: flowd %q, baseline %q", k, fh[k], v)
				}
			}
			fj, _ := json.Marshal(fb)
			bj, _ := json.Marshal(bb)
			if !bytes.Equal(fj, bj) {
				t.Errorf("body:\nflowd    %s\nbaseline %s", fj, bj)
			}
		})
	}
}

// BenchmarkPaired alternates one flowd request and one baseline request
// per iteration, so both see the same machine, and reports flowd's
// throughput relative to the baseline's (the figure bench/run.sh targets:
// 0.8 or more) next to both per-request times.
//
//	go test -run='^$' -bench=BenchmarkPaired -count=5 ./bench/
func BenchmarkPaired(b *testing.B) {
	p := setup(b)
	for _, ep := range []struct{ name, path, authz string }{
		{"jwks", "/.well-known/jwks.json", ""},
		{"hello", "/api/hello", "Bearer " + p.token},
	} {
		b.Run(ep.name, func(b *testing.B) {
			var tf, tb time.Duration
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				wf := serve(p.flowd, "GET", ep.path, "", ep.authz)
				t1 := time.Now()
				wb := serve(p.base, "GET", ep.path, "", ep.authz)
				tb += time.Since(t1)
				tf += t1.Sub(t0)
				n++
				if wf.Code != 200 || wb.Code != 200 {
					b.Fatalf("flowd %d, baseline %d", wf.Code, wb.Code)
				}
			}
			b.ReportMetric(float64(tf.Nanoseconds())/float64(n), "flowd-ns/req")
			b.ReportMetric(float64(tb.Nanoseconds())/float64(n), "base-ns/req")
			b.ReportMetric(float64(tb)/float64(tf), "throughput-ratio")
		})
	}
}

// nopWriter is a ResponseWriter that keeps nothing, so BenchmarkHandler
// times the handlers and not a recorder.
type nopWriter struct {
	h    http.Header
	code int
}

func (w *nopWriter) Header() http.Header { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}
func (w *nopWriter) WriteHeader(code int) { w.code = code }

// BenchmarkHandler times the two handlers alone on one reused request:
// what flowd adds per request, without the request parsing and response
// recording both would share.
//
//	go test -run='^$' -bench=BenchmarkHandler -benchmem ./bench/
func BenchmarkHandler(b *testing.B) {
	p := setup(b)
	for _, ep := range []struct{ name, path, authz string }{
		{"jwks", "/.well-known/jwks.json", ""},
		{"hello", "/api/hello", "Bearer " + p.token},
	} {
		for _, srv := range []struct {
			name string
			h    http.Handler
		}{{"flowd", p.flowd}, {"baseline", p.base}} {
			b.Run(ep.name+"/"+srv.name, func(b *testing.B) {
				req := httptest.NewRequest("GET", ep.path, nil)
				req.Header.Set("Accept", "*/*")
				if ep.authz != "" {
					req.Header.Set("Authorization", ep.authz)
				}
				w := &nopWriter{h: http.Header{}}
				b.ReportAllocs()
				for b.Loop() {
					clear(w.h)
					w.code = 0
					srv.h.ServeHTTP(w, req)
					if w.code != 200 {
						b.Fatalf("status %d", w.code)
					}
				}
			})
		}
	}
}
