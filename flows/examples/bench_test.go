//go:build unix

package examples_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/flows/examples"
)

// BenchmarkTokenSubflow measures what sharing client authentication as a
// sub-flow costs the token endpoint (client_credentials). One flowd serves
// the token flow as shipped (core.call to client-auth) and, on another
// path, the token flow as shipped at 8206c10, the last version with client
// authentication inline (app/testdata/token-8206c10.json). Requests go to
// one and then the other in alternating chunks, and each chunk is charged
// the CPU time the whole process used meanwhile (getrusage: its own
// goroutines, the trace writer and the GC, but not time spent waiting for
// a core, which other processes on a loaded machine cause). It reports
// both CPU times per request and subflow/inline. "es256" signs with ES256
// instead of RS256, so signing hides less of the call.
//
//	go test -run='^$' -bench=BenchmarkTokenSubflow -count=5 ./flows/examples/
func BenchmarkTokenSubflow(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(strings.ToLower(alg), func(b *testing.B) {
			h := tokenPair(b, alg)
			send := [2]func(*testing.B, http.Handler){tokenRequest("/bench/token-inline"), tokenRequest("/bench/token-subflow")}
			// Warm up until start-up work (key generation) is done.
			for range 200 {
				send[0](b, h)
				send[1](b, h)
			}
			const chunk = 50
			var cpu [2]time.Duration
			var n [2]int
			side, k, c0 := 0, 0, processCPU()
			b.ReportAllocs()
			for b.Loop() {
				send[side](b, h)
				n[side]++
				if k++; k == chunk {
					c := processCPU()
					cpu[side] += c - c0
					c0, k, side = c, 0, 1-side
				}
			}
			cpu[side] += processCPU() - c0
			if n[0] == 0 || n[1] == 0 {
				return // too few iterations to compare (b.N's first probe)
			}
			in, sub := float64(cpu[0])/float64(n[0]), float64(cpu[1])/float64(n[1])
			b.ReportMetric(in, "inline-cpu-ns/req")
			b.ReportMetric(sub, "subflow-cpu-ns/req")
			b.ReportMetric(sub/in, "subflow/inline")
		})
	}
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tokenPair deploys both token flows signing with alg, at
// /bench/token-inline and /bench/token-subflow.
func tokenPair(b *testing.B, alg string) http.Handler {
	fd := newFlowd(b, flowd.Options{Examples: examples.FS, Issuer: "http://flowd.test"})
	ctx := context.Background()
	if err := fd.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if _, _, err := fd.Clients().Add(ctx, oauth.Client{ID: "demo", Scopes: []string{"read"}}, "demo-secret-0123456789"); err != nil {
		b.Fatal(err)
	}
	old, err := os.ReadFile(filepath.Join("..", "..", "app", "testdata", "token-8206c10.json"))
	if err != nil {
		b.Fatal(err)
	}
	shipped, err := examples.FS.ReadFile("token.json")
	if err != nil {
		b.Fatal(err)
	}
	for id, doc := range map[string][]byte{"token-inline": old, "token-subflow": shipped} {
		if _, err := fd.App().Import(ctx, retarget(b, doc, id, alg), true); err != nil {
			b.Fatal(err)
		}
	}
	h := fd.Handler()
	for _, path := range []string{"/bench/token-inline", "/bench/token-subflow"} {
		tokenRequest(path)(b, h) // the first one checks the secret with argon2id
	}
	return h
}

// retarget gives a token flow document another id, the path /bench/<id>
// and alg on its jose.sign nodes.
func retarget(b *testing.B, doc []byte, id, alg string) []byte {
	var f map[string]any
	if err := json.Unmarshal(doc, &f); err != nil {
		b.Fatal(err)
	}
	f["id"] = id
	nodes, _ := f["nodes"].([]any)
	for _, n := range nodes {
		node, _ := n.(map[string]any)
		conf, _ := node["config"].(map[string]any)
		switch node["type"] {
		case "http.in":
			conf["path"] = "/bench/" + id
		case "jose.sign":
			conf["alg"] = alg
		}
	}
	out, err := json.Marshal(f)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

func tokenRequest(path string) func(*testing.B, http.Handler) {
	authz := "Basic " + base64.StdEncoding.EncodeToString([]byte("demo:demo-secret-0123456789"))
	return func(b *testing.B, h http.Handler) {
		req := httptest.NewRequest("POST", path, strings.NewReader("grant_type=client_credentials&scope=read"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", authz)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
	}
}
