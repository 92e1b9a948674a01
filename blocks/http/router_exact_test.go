package httpblock

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRouterExactMatch holds the router's literal-path fast path
// (table.match) to ServeMux: on random route tables (literal, wildcard,
// subtree and method-less patterns, placed as build places them) and
// requests (every method, escaped, unclean and trailing-slash paths), a
// route the fast path picks is the one ServeMux picks, and a request for
// a literal route's exact path takes the fast path.
func TestRouterExactMatch(t *testing.T) {
	methods := []string{"", "GET ", "POST ", "HEAD ", "DELETE "}
	paths := []string{"/a", "/a/b", "/a/{x}", "/{x}", "/a/", "/", "/b", "/b/{rest...}",
		"/.well-known/jwks.json", "/c/d.e", "/{$}", "/a%20b", "/x/y", "/x/{y}/z"}
	reqMethods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"}
	reqPaths := []string{"/a", "/a/b", "/a/", "/b", "/b/c", "/x", "/x/y", "/a/b/", "//a", "/a/./b", "/a/../a",
		"/.well-known/jwks.json", "/a%2Fb", "/a%20b", "/c/d.e", "/A", "/", "/x/y/z", "/.well-known/jwks.json/"}
	rng := rand.New(rand.NewPCG(18, 6))
	rt := NewRouter(RouterOptions{})
	fast, checked := 0, 0
	for table := range 300 {
		var claims []*claim
		for i := range 1 + rng.IntN(8) {
			pattern := methods[rng.IntN(len(methods))] + paths[rng.IntN(len(paths))]
			claims = append(claims, &claim{flow: "f" + string(rune('a'+i)), version: 1, node: "in", pattern: pattern,
				seq: uint64(i + 1), handler: http.NotFoundHandler()})
		}
		tb, err := rt.build(claims, nil)
		if err != nil {
			t.Fatalf("table %d: %v", table, err)
		}
		for _, m := range reqMethods {
			for _, p := range reqPaths {
				r := httptest.NewRequest(m, p, nil)
				c := tb.match(r)
				_, want := tb.mux.Handler(r)
				checked++
				if c == nil {
					if _, path, ok := exactPath(want); ok && r.URL.Path == path && r.URL.RawPath == "" {
						t.Errorf("table %v: %s %s: ServeMux picks literal route %q, the fast path none", tb.routes, m, p, want)
					}
					continue
				}
				fast++
				if c.pattern != want {
					t.Errorf("table %v: %s %s: fast path %q, ServeMux %q", tb.routes, m, p, c.pattern, want)
				}
			}
		}
	}
	if fast < checked/50 {
		t.Errorf("the fast path answered %d of %d requests: the test does not exercise it", fast, checked)
	}
	r := &http.Request{Method: "CONNECT", URL: httptest.NewRequest("GET", "/a", nil).URL, Host: "x"}
	tb, _ := rt.build([]*claim{{flow: "f", pattern: "/a", seq: 1, handler: http.NotFoundHandler()}}, nil)
	if tb.match(r) != nil {
		t.Error("CONNECT took the fast path (ServeMux does not clean its path)")
	}
}

// TestExactPath: which patterns have a plain literal path.
func TestExactPath(t *testing.T) {
	for pattern, want := range map[string][2]string{
		"GET /.well-known/jwks.json": {"GET", "/.well-known/jwks.json"},
		"/oauth/token":               {"", "/oauth/token"},
		"POST /a-b_c~d.e/F9":         {"POST", "/a-b_c~d.e/F9"},
	} {
		if method, path, ok := exactPath(pattern); !ok || method != want[0] || path != want[1] {
			t.Errorf("exactPath(%q) = %q, %q, %v; want %q, %q, true", pattern, method, path, ok, want[0], want[1])
		}
	}
	// Subtrees, wildcards, paths ServeMux cleans or unescapes, hosts.
	for _, pattern := range []string{"GET /", "GET /a/", "GET /a/{id}", "GET /{$}", "GET /a//b", "GET /a/./b",
		"GET /a/../b", "GET /a%20b", "GET /a:b", "example.com/a"} {
		if method, path, ok := exactPath(pattern); ok {
			t.Errorf("exactPath(%q) = %q, %q, true; want not a plain literal", pattern, method, path)
		}
	}
}
