package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/bench/baseline"
	"github.com/flowd/flowd/bench/benchflows"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/store/storetest"
)

// The in-process half of the load benchmark: flowd's prebuilt flows
// (jwks, protected-api, token, and bench/benchflows' copies) through
// flowd.Handler, no network, against bench/baseline, the hand-written
// server, on the same requests. It isolates what flowd adds per request
// from the kernel and wrk, which dominate bench/run.sh on the cheap
// endpoints.

const (
	issuer       = "http://flowd.test"
	demoSecret   = "demo-secret-0123456789"
	otherSecret  = "other-secret-0123456789"
	otherAud     = "https://other.example"
	poolSize     = 1000 // tokens reused round-robin (the token-pool mode)
	distinctSize = 5000 // more than jose.validate's default cache: every use misses
)

type pair struct {
	fd          *flowd.Flowd
	flowd, base http.Handler
	tokens      map[string]string // rs256, es256, wrongaud
}

func setup(tb testing.TB) *pair {
	tb.Helper()
	st := storetest.TempBolt(tb)
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
	clients := []baseline.Client{
		{ID: "demo", Secret: demoSecret, Scopes: []string{"read", "write"}},
		{ID: "other", Secret: otherSecret, Scopes: []string{"read"}, Audiences: []string{otherAud}},
	}
	for _, c := range clients {
		if _, _, err := fd.Clients().Add(ctx, oauth.Client{ID: c.ID, Scopes: c.Scopes, Audiences: c.Audiences}, c.Secret); err != nil {
			tb.Fatal(err)
		}
	}
	docs, err := benchflows.Docs(examples.FS)
	if err != nil {
		tb.Fatal(err)
	}
	for _, doc := range docs {
		if _, err := fd.App().Import(ctx, doc, true); err != nil {
			tb.Fatal(err)
		}
	}
	h := fd.Handler() // as flowd serve mounts it
	p := &pair{fd: fd, flowd: h, tokens: map[string]string{}}
	for name, req := range map[string]struct{ path, form, id, secret string }{
		"rs256":    {"/oauth/token", "grant_type=client_credentials&scope=read", "demo", demoSecret},
		"es256":    {"/bench/token-es256", "grant_type=client_credentials&scope=read", "demo", demoSecret},
		"wrongaud": {"/oauth/token", "grant_type=client_credentials&resource=" + url.QueryEscape(otherAud), "other", otherSecret},
	} {
		p.tokens[name] = accessToken(tb, h, req.path, req.form, req.id, req.secret)
	}
	jw := serve(h, "GET", "/.well-known/jwks.json", "", "")
	if jw.Code != 200 {
		tb.Fatalf("jwks: %d %s", jw.Code, jw.Body)
	}
	b, err := baseline.NewServer(baseline.Options{JWKS: jw.Body.Bytes(), Issuer: issuer, Audience: "flowd-api", Clients: clients})
	if err != nil {
		tb.Fatal(err)
	}
	p.base = b.Handler()
	// The baseline's first token request per client runs argon2id, as
	// flowd's did above: warm it the same way.
	accessToken(tb, p.base, "/oauth/token", "grant_type=client_credentials", "demo", demoSecret)
	accessToken(tb, p.base, "/oauth/token", "grant_type=client_credentials&resource="+url.QueryEscape(otherAud), "other", otherSecret)
	return p
}

func accessToken(tb testing.TB, h http.Handler, path, form, id, secret string) string {
	tb.Helper()
	w := serve(h, "POST", path, form, "Basic "+basic(id, secret))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &tok) != nil || tok.AccessToken == "" {
		tb.Fatalf("token from %s: %d %s", path, w.Code, w.Body)
	}
	return tok.AccessToken
}

// mint signs n distinct access tokens like the token endpoint's (at+jwt,
// sub and client_id demo, scope read, 1 h) with flowd's keyset.
func (p *pair) mint(tb testing.TB, alg string, n int) []string {
	tb.Helper()
	s := jose.NewSigner(p.fd.Keysets())
	out := make([]string, n)
	for i := range out {
		tok, _, err := s.Sign(context.Background(), jose.SignRequest{Keyset: "main", Alg: alg, Typ: "at+jwt",
			Issuer: issuer, Subject: "demo", Audience: []string{"flowd-api"}, TTL: time.Hour,
			Claims: map[string]any{"client_id": "demo", "scope": "read"}})
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = tok
	}
	return out
}

func basic(id, secret string) string {
	req := httptest.NewRequest("GET", "/", nil)
	req.SetBasicAuth(id, secret)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// serve sends one request the way wrk does (a few plain headers).
func serve(h http.Handler, method, path, form, authz string) *httptest.ResponseRecorder {
	var req *http.Request
	if method == "POST" {
		req = httptest.NewRequest(method, path, strings.NewReader(form))
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

// comparable is the part of a response both servers must agree on. An
// access token in the body is replaced by what must agree in it: the
// header's alg and typ, and the claims with the times and jti checked
// for shape and left out.
func comparable(t *testing.T, w *httptest.ResponseRecorder) (int, map[string]string, any) {
	t.Helper()
	hdr := map[string]string{}
	for _, k := range []string{"Content-Type", "Cache-Control", "Pragma", "Etag", "Access-Control-Allow-Origin", "Www-Authenticate", "X-Content-Type-Options"} {
		hdr[k] = w.Header().Get(k)
	}
	var body any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("body is not JSON: %v: %q", err, w.Body)
		}
	}
	if m, ok := body.(map[string]any); ok {
		if tok, ok := m["access_token"].(string); ok {
			m["access_token"] = tokenShape(t, tok)
		}
	}
	return w.Code, hdr, body
}

func tokenShape(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d parts", len(parts))
	}
	var h, c map[string]any
	for i, dst := range []*map[string]any{&h, &c} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(raw, dst) != nil {
			t.Fatalf("access token part %d is not base64url JSON", i)
		}
	}
	iat, _ := c["iat"].(float64)
	if c["exp"] != iat+3600 || c["nbf"] != iat || len(c["jti"].(string)) != 22 {
		t.Errorf("access token times or jti: %v", c)
	}
	for _, k := range []string{"iat", "exp", "nbf", "jti"} {
		delete(c, k)
	}
	return map[string]any{"alg": h["alg"], "typ": h["typ"], "has_kid": h["kid"] != nil, "header_members": len(h), "claims": c}
}

// endpoint is one benchmarked request.
type endpoint struct {
	name, method, path, form, authz string
	status                          int
	poolAlg                         string // with poolN: tokens of this alg round-robin instead of authz
	poolN                           int
	warm                            bool // send every pool token once before timing
}

func ep(name, method, path, form, authz string, status int) endpoint {
	return endpoint{name: name, method: method, path: path, form: form, authz: authz, status: status}
}

func (p *pair) endpoints() []endpoint {
	bearer := func(name string) string { return "Bearer " + p.tokens[name] }
	demo := "Basic " + basic("demo", demoSecret)
	return []endpoint{
		ep("jwks", "GET", "/.well-known/jwks.json", "", "", 200),
		ep("validate-rs256", "GET", "/api/hello", "", bearer("rs256"), 200),
		ep("validate-es256", "GET", "/api/hello", "", bearer("es256"), 200),
		ep("validate-401", "GET", "/api/hello", "", bearer("wrongaud"), 401),
		ep("validate-rs256-nocache", "GET", "/bench/hello-nocache", "", bearer("rs256"), 200),
		ep("validate-es256-nocache", "GET", "/bench/hello-nocache", "", bearer("es256"), 200),
		ep("token-rs256", "POST", "/oauth/token", "grant_type=client_credentials&scope=read", demo, 200),
		ep("token-es256", "POST", "/bench/token-es256", "grant_type=client_credentials&scope=read", demo, 200),
	}
}

// TestSameWork proves the comparison is fair: on every request the
// benchmarks send, and on the error cases, both servers answer the same
// status, headers and JSON body (access tokens: the same header and
// claims but for times and jti).
func TestSameWork(t *testing.T) {
	p := setup(t)
	rs := p.tokens["rs256"]
	tampered := rs[:len(rs)-4] + "AAAA"
	if tampered == rs {
		tampered = rs[:len(rs)-4] + "BBBB"
	}
	etag := serve(p.base, "GET", "/.well-known/jwks.json", "", "").Header().Get("ETag")
	type tcase struct {
		endpoint
		inm string
	}
	var cases []tcase
	for _, ep := range p.endpoints() {
		cases = append(cases, tcase{endpoint: ep})
	}
	demo := "Basic " + basic("demo", demoSecret)
	cases = append(cases,
		tcase{ep("jwks 304", "GET", "/.well-known/jwks.json", "", "", 304), etag},
		tcase{endpoint: ep("validate pool token", "GET", "/api/hello", "", "Bearer "+p.mint(t, "RS256", 1)[0], 200)},
		tcase{endpoint: ep("validate no token", "GET", "/api/hello", "", "", 401)},
		tcase{endpoint: ep("validate tampered", "GET", "/api/hello", "", "Bearer "+tampered, 401)},
		tcase{endpoint: ep("validate garbage", "GET", "/api/hello", "", "Bearer not.a.jwt", 401)},
		tcase{endpoint: ep("token wrong secret", "POST", "/oauth/token", "grant_type=client_credentials", "Basic "+basic("demo", "wrong-secret-0123456789"), 401)},
		tcase{endpoint: ep("token unknown client", "POST", "/oauth/token", "grant_type=client_credentials", "Basic "+basic("nobody", demoSecret), 401)},
		tcase{endpoint: ep("token no grant", "POST", "/oauth/token", "scope=read", demo, 400)},
		tcase{endpoint: ep("token other grant", "POST", "/oauth/token", "grant_type=password", demo, 400)},
		tcase{endpoint: ep("token bad scope", "POST", "/bench/token-es256", "grant_type=client_credentials&scope=admin", demo, 400)},
		tcase{endpoint: ep("token resource not allowed", "POST", "/oauth/token", "grant_type=client_credentials&resource="+url.QueryEscape(otherAud), demo, 400)},
		tcase{endpoint: ep("token other audience", "POST", "/oauth/token", "grant_type=client_credentials&resource="+url.QueryEscape(otherAud), "Basic "+basic("other", otherSecret), 200)},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			do := func(h http.Handler) *httptest.ResponseRecorder {
				var req *http.Request
				if c.method == "POST" {
					req = httptest.NewRequest("POST", c.path, strings.NewReader(c.form))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				} else {
					req = httptest.NewRequest("GET", c.path, nil)
				}
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
			if fs != c.status || bs != c.status {
				t.Errorf("status: flowd %d, baseline %d, want %d", fs, bs, c.status)
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
// throughput relative to the baseline's next to both per-request times:
// wall clock (throughput-ratio) and this thread's CPU time (cpu-ratio,
// baseline CPU / flowd CPU: the throughput ratio on an otherwise idle
// core; it leaves out work on other goroutines, such as the GC's
// background marking and flowd's trace writer).
// pool-rs256 sends 1000 distinct RS256 tokens round-robin (what clients
// reusing their access tokens look like: jose.validate's cache answers
// most), distinct-es256 5000 (more than the cache holds: every one
// misses, the cache's worst case).
//
//	go test -run='^$' -bench=BenchmarkPaired -count=5 ./bench/
func BenchmarkPaired(b *testing.B) {
	p := setup(b)
	eps := append(p.endpoints(),
		endpoint{name: "pool-rs256", method: "GET", path: "/api/hello", status: 200, poolAlg: "RS256", poolN: poolSize, warm: true},
		endpoint{name: "distinct-es256", method: "GET", path: "/api/hello", status: 200, poolAlg: "ES256", poolN: distinctSize},
		// The same tokens with the cache off: what the miss path adds.
		endpoint{name: "distinct-es256-nocache", method: "GET", path: "/bench/hello-nocache", status: 200, poolAlg: "ES256", poolN: distinctSize})
	for _, ep := range eps {
		b.Run(ep.name, func(b *testing.B) {
			var auths []string
			if ep.poolN > 0 {
				for _, tok := range p.mint(b, ep.poolAlg, ep.poolN) {
					auths = append(auths, "Bearer "+tok)
				}
				// Steady state: every token has been used before (twice:
				// jose.validate caches a token on its second validation).
				for _, a := range auths {
					if !ep.warm {
						break
					}
					serve(p.flowd, ep.method, ep.path, ep.form, a)
					serve(p.flowd, ep.method, ep.path, ep.form, a)
					serve(p.base, ep.method, ep.path, ep.form, a)
				}
				b.ResetTimer()
			}
			// The handlers run on this goroutine; locked to its thread, the
			// thread's CPU clock times each request without the waits for a
			// core that other processes cause.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var tf, tb time.Duration
			var cf, cb int64
			var hf, hb cpuHist // per-request CPU, for its tail
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				authz := ep.authz
				if auths != nil {
					authz = auths[n%len(auths)]
				}
				c0, t0 := threadCPU(), time.Now()
				wf := serve(p.flowd, ep.method, ep.path, ep.form, authz)
				c1, t1 := threadCPU(), time.Now()
				wb := serve(p.base, ep.method, ep.path, ep.form, authz)
				tb += time.Since(t1)
				cb += threadCPU() - c1
				tf += t1.Sub(t0)
				cf += c1 - c0
				hf.add(c1 - c0)
				hb.add(threadCPU() - c1)
				n++
				if wf.Code != ep.status || wb.Code != ep.status {
					b.Fatalf("flowd %d, baseline %d, want %d", wf.Code, wb.Code, ep.status)
				}
			}
			b.ReportMetric(float64(tf.Nanoseconds())/float64(n), "flowd-ns/req")
			b.ReportMetric(float64(tb.Nanoseconds())/float64(n), "base-ns/req")
			b.ReportMetric(float64(tb)/float64(tf), "throughput-ratio")
			if cf > 0 {
				b.ReportMetric(float64(cf)/float64(n), "flowd-cpu-ns/req")
				b.ReportMetric(float64(cb)/float64(n), "base-cpu-ns/req")
				b.ReportMetric(float64(cb)/float64(cf), "cpu-ratio")
				// The tail of the work per request (allocation slow
				// paths, GC assists), without the waits for a core.
				b.ReportMetric(hf.quantile(0.99, n), "flowd-p99-cpu-ns")
				b.ReportMetric(hb.quantile(0.99, n), "base-p99-cpu-ns")
			}
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
	for _, ep := range p.endpoints() {
		for _, srv := range []struct {
			name string
			h    http.Handler
		}{{"flowd", p.flowd}, {"baseline", p.base}} {
			b.Run(ep.name+"/"+srv.name, func(b *testing.B) {
				req := httptest.NewRequest(ep.method, ep.path, nil)
				req.Header.Set("Accept", "*/*")
				if ep.method == "POST" {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				if ep.authz != "" {
					req.Header.Set("Authorization", ep.authz)
				}
				body := strings.NewReader(ep.form)
				w := &nopWriter{h: http.Header{}}
				b.ReportAllocs()
				// This thread's CPU time per request, as in BenchmarkPaired:
				// the waits for a core that other load causes are not in it.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				c0, n := threadCPU(), 0
				for b.Loop() {
					n++
					clear(w.h)
					w.code = 0
					if ep.method == "POST" {
						// A fresh body (and form) per request, as on the network.
						body.Reset(ep.form)
						req.Body = io.NopCloser(body)
						req.ContentLength = int64(len(ep.form))
						req.Form, req.PostForm = nil, nil
					}
					srv.h.ServeHTTP(w, req)
					if w.code != ep.status {
						b.Fatalf("status %d, want %d", w.code, ep.status)
					}
				}
				if c := threadCPU() - c0; c > 0 {
					b.ReportMetric(float64(c)/float64(n), "cpu-ns/op")
				}
			})
		}
	}
}

// cpuHist counts per-request CPU times in buckets 1/16 of a doubling wide
// (4.4 %), from 1 ns to past an hour: a quantile without keeping every
// sample.
type cpuHist [42 * 16]int64

func (h *cpuHist) add(ns int64) {
	i := int(math.Log2(float64(max(ns, 1))) * 16)
	h[min(i, len(h)-1)]++
}

// quantile returns the upper edge of the bucket holding quantile q of n
// samples.
func (h *cpuHist) quantile(q float64, n int) float64 {
	target, seen := int64(math.Ceil(q*float64(n))), int64(0)
	for i, c := range h {
		if seen += c; seen >= target {
			return math.Exp2(float64(i+1) / 16)
		}
	}
	return 0
}
