package httpblock

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

func TestRouterConflicts(t *testing.T) {
	tests := []struct {
		name       string
		first      [2]string // method, path of flow "a"
		second     [2]string // method, path of flow "b"
		conflict   bool
		firstURL   string // served by a either way
		secondURL  string // served by b when there is no conflict
		wantRoutes []RouteInfo
	}{
		{name: "same route", first: [2]string{"GET", "/x"}, second: [2]string{"GET", "/x"}, conflict: true,
			firstURL: "/x", wantRoutes: []RouteInfo{{"a", 1, "in", "GET /x"}}},
		{name: "same route, other wildcard name", first: [2]string{"GET", "/u/{id}"}, second: [2]string{"GET", "/u/{name}"},
			conflict: true, firstURL: "/u/1", wantRoutes: []RouteInfo{{"a", 1, "in", "GET /u/{id}"}}},
		{name: "overlap where neither is more specific", first: [2]string{"GET", "/a/{x}"}, second: [2]string{"GET", "/{y}/b"},
			conflict: true, firstURL: "/a/z", wantRoutes: []RouteInfo{{"a", 1, "in", "GET /a/{x}"}}},
		{name: "same path, any method", first: [2]string{"ANY", "/same"}, second: [2]string{"ANY", "/same"},
			conflict: true, firstURL: "/same", wantRoutes: []RouteInfo{{"a", 1, "in", "/same"}}},
		{name: "other method", first: [2]string{"GET", "/x"}, second: [2]string{"POST", "/x"},
			firstURL: "/x", secondURL: "/x",
			wantRoutes: []RouteInfo{{"a", 1, "in", "GET /x"}, {"b", 1, "in", "POST /x"}}},
		{name: "more specific literal beside a wildcard", first: [2]string{"GET", "/u/{id}"}, second: [2]string{"GET", "/u/me"},
			firstURL: "/u/1", secondURL: "/u/me",
			wantRoutes: []RouteInfo{{"b", 1, "in", "GET /u/me"}, {"a", 1, "in", "GET /u/{id}"}}},
		{name: "subtree beside an exact path", first: [2]string{"GET", "/static/"}, second: [2]string{"GET", "/static/app.js"},
			firstURL: "/static/x.css", secondURL: "/static/app.js",
			wantRoutes: []RouteInfo{{"a", 1, "in", "GET /static/"}, {"b", 1, "in", "GET /static/app.js"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, engine.Options{})
			e.deploy(t, endpoint(t, "a", tc.first[0], tc.first[1], map[string]any{"body": `"a"`}), 1)
			err := e.rt.Deploy(t.Context(), endpoint(t, "b", tc.second[0], tc.second[1], map[string]any{"body": `"b"`}), 1)
			if tc.conflict {
				if !errors.Is(err, ErrRouteConflict) {
					t.Fatalf("deploy of b: err = %v, want ErrRouteConflict", err)
				}
				if ve := engine.FirstValidation(err); ve == nil || ve.Node != "in" || ve.Field != "path" {
					t.Errorf("error %v is not a validation error of node in, field path", err)
				}
				for _, part := range []string{`flow "a"`, `flow "b"`, fmt.Sprintf("%q", routeOf(tc.first)), fmt.Sprintf("%q", routeOf(tc.second))} {
					if !strings.Contains(err.Error(), part) {
						t.Errorf("error %q does not name %s", err, part)
					}
				}
				if _, ok := e.rt.Deployed("b"); ok {
					t.Error("b is deployed after a failed deploy")
				}
			} else if err != nil {
				t.Fatalf("deploy of b: %v", err)
			}
			if w := e.do("GET", tc.firstURL, "", ""); w.Code != 200 || w.Body.String() != "\"a\"\n" {
				t.Errorf("GET %s = %d %q, want a's answer", tc.firstURL, w.Code, w.Body)
			}
			if tc.secondURL != "" {
				method := tc.second[0]
				if method == "ANY" {
					method = "GET"
				}
				if w := e.do(method, tc.secondURL, "", ""); w.Code != 200 || w.Body.String() != "\"b\"\n" {
					t.Errorf("%s %s = %d %q, want b's answer", method, tc.secondURL, w.Code, w.Body)
				}
			}
			if routes := e.router.Routes(); !reflect.DeepEqual(routes, tc.wantRoutes) {
				t.Errorf("Routes() = %v, want %v", routes, tc.wantRoutes)
			}
		})
	}
}

func routeOf(mp [2]string) string {
	if mp[0] == "ANY" {
		return mp[1]
	}
	return mp[0] + " " + mp[1]
}

func TestRouterSameFlowTwoNodesOneRoute(t *testing.T) {
	e := newEnv(t, engine.Options{})
	f := enginetest.Flow(t, "dup", []enginetest.Node{
		{ID: "in1", Type: "http.in", Config: map[string]any{"path": "/dup"}},
		{ID: "in2", Type: "http.in", Config: map[string]any{"path": "/dup"}},
	})
	err := e.rt.Deploy(t.Context(), f, 1)
	if !errors.Is(err, ErrRouteConflict) || !strings.Contains(err.Error(), `node "in1"`) ||
		!strings.Contains(err.Error(), `node "in2"`) || !strings.Contains(err.Error(), "same flow") {
		t.Fatalf("err = %v, want a conflict naming both nodes", err)
	}
	if r := e.router.Routes(); len(r) != 0 {
		t.Errorf("routes left after the failed deploy: %v", r)
	}
}

// A redeploy never leaves a gap: the new version claims before the old one
// releases, and a request that reached the old version as it retired is
// handed to the new one. Alternating paths with different wildcard names
// makes the two versions' patterns conflict (the newer shadows the older).
func TestRedeployKeepsServing(t *testing.T) {
	e := newEnv(t, engine.Options{})
	versions := []*engine.Flow{
		endpoint(t, "svc", "GET", "/items/{id}", map[string]any{"body": `{"id": msg.req.params.id}`}),
		endpoint(t, "svc", "GET", "/items/{key}", map[string]any{"body": `{"id": msg.req.params.key}`}),
	}
	e.deploy(t, versions[0], 1)

	var stop atomic.Bool
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := map[string]int{}
	var ok atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				id := fmt.Sprintf("%d-%d", g, i)
				w := e.do("GET", "/items/"+id, "", "")
				if w.Code == 200 && w.Body.String() == fmt.Sprintf("{\"id\":%q}\n", id) {
					ok.Add(1)
					continue
				}
				mu.Lock()
				bad[fmt.Sprintf("%d %s", w.Code, strings.TrimSpace(w.Body.String()))]++
				mu.Unlock()
			}
		})
	}
	deadline := time.Now().Add(2 * time.Second)
	v := 2
	for ; v < 200 && time.Now().Before(deadline); v++ {
		e.deploy(t, versions[v%2], v)
	}
	stop.Store(true)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("answers other than 200 during %d redeploys: %v", v-2, bad)
	}
	if ok.Load() == 0 {
		t.Error("no request was served")
	}
	if r := e.router.Routes(); len(r) != 1 || r[0].Version != v-1 {
		t.Errorf("routes after redeploys = %v, want one of version %d", r, v-1)
	}
	t.Logf("%d redeploys, %d requests served", v-2, ok.Load())
}

func TestUndeployRemovesRouteAtOnce(t *testing.T) {
	e := newEnv(t, engine.Options{})
	f := endpoint(t, "gone", "GET", "/gone", map[string]any{"body": `"here"`})
	e.deploy(t, f, 1)
	if w := e.do("GET", "/gone", "", ""); w.Code != 200 {
		t.Fatalf("before undeploy: %d", w.Code)
	}
	if err := e.rt.Undeploy(t.Context(), "gone"); err != nil {
		t.Fatal(err)
	}
	w := e.do("GET", "/gone", "", "")
	if w.Code != 404 || w.Body.String() != "{\"error\":\"not_found\"}\n" {
		t.Errorf("after undeploy: %d %q, want 404 not_found", w.Code, w.Body)
	}
	if r := e.router.Routes(); len(r) != 0 {
		t.Errorf("routes after undeploy: %v", r)
	}
	// The route is free again, for any flow.
	e.deploy(t, endpoint(t, "other", "GET", "/gone", map[string]any{"body": `"other"`}), 1)
	if w := e.do("GET", "/gone", "", ""); w.Code != 200 || w.Body.String() != "\"other\"\n" {
		t.Errorf("after redeploy by another flow: %d %q", w.Code, w.Body)
	}
}

// A failed deploy (its second trigger cannot claim) must not disturb the
// running version: the old claim, shadowed for a moment, serves again.
func TestFailedRedeployKeepsOldVersion(t *testing.T) {
	e := newEnv(t, engine.Options{})
	e.deploy(t, endpoint(t, "a", "GET", "/a", map[string]any{"body": `"a1"`}), 1)
	e.deploy(t, endpoint(t, "b", "GET", "/b", map[string]any{"body": `"b"`}), 1)
	v2 := enginetest.Flow(t, "a", []enginetest.Node{
		{ID: "in", Type: "http.in", Config: map[string]any{"path": "/a"}},
		{ID: "in2", Type: "http.in", Config: map[string]any{"path": "/b"}}, // b's route
		{ID: "respond", Type: "http.respond", Config: map[string]any{"body": `"a2"`}},
	}, "in:out->respond", "in2:out->respond")
	if err := e.rt.Deploy(t.Context(), v2, 2); !errors.Is(err, ErrRouteConflict) {
		t.Fatalf("err = %v, want a route conflict", err)
	}
	for path, want := range map[string]string{"/a": "\"a1\"\n", "/b": "\"b\"\n"} {
		if w := e.do("GET", path, "", ""); w.Code != 200 || w.Body.String() != want {
			t.Errorf("GET %s = %d %q, want %q", path, w.Code, w.Body, want)
		}
	}
	want := []RouteInfo{{"a", 1, "in", "GET /a"}, {"b", 1, "in", "GET /b"}}
	if r := e.router.Routes(); !reflect.DeepEqual(r, want) {
		t.Errorf("Routes() = %v, want %v", r, want)
	}
}

// Hostile requests must get a sane answer, never a panic or a hang.
func TestHostileRequests(t *testing.T) {
	e := newEnv(t, engine.Options{})
	e.deploy(t, endpoint(t, "files", "GET", "/files/{name}", map[string]any{
		"body": `{"name": msg.req.params.name, "q": msg.req.query.q}`}), 1)
	e.deploy(t, endpoint(t, "json", "POST", "/json", map[string]any{"body": `"ok"`}), 1)

	params := func(n int) string { return strings.Repeat("p=1&", n-1) + "q=last" }
	tests := []struct {
		name     string
		method   string
		target   string
		body     string
		status   int
		wantBody string
		location string
	}{
		{name: "dot-dot is cleaned by a redirect", method: "GET", target: "/files/../etc/passwd", status: 307, location: "/etc/passwd"},
		{name: "encoded slashes stay in the segment", method: "GET", target: "/files/..%2F..%2Fetc%2Fpasswd",
			status: 200, wantBody: `{"name":"../../etc/passwd","q":null}`},
		{name: "encoded NUL", method: "GET", target: "/files/a%00b", status: 200, wantBody: `{"name":"a\u0000b","q":null}`},
		{name: "invalid UTF-8 in path", method: "GET", target: "/files/%ff%fe", status: 200, wantBody: `{"name":"\ufffd\ufffd","q":null}`},
		{name: "invalid UTF-8 in query", method: "GET", target: "/files/x?q=%ff%c3", status: 200, wantBody: `{"name":"x","q":"\ufffd\ufffd"}`},
		{name: "10000 query parameters", method: "GET", target: "/files/x?" + params(10000), status: 200, wantBody: `{"name":"x","q":"last"}`},
		{name: "10001 query parameters (net/url's limit)", method: "GET", target: "/files/x?" + params(10001), status: 400,
			wantBody: `{"error":"invalid_request","error_description":"query string is malformed"}`},
		{name: "double slash", method: "GET", target: "//files/x", status: 307, location: "/files/x"},
		{name: "deep JSON", method: "POST", target: "/json", body: strings.Repeat(`{"a":`, 50000), status: 400,
			wantBody: `{"error":"invalid_request","error_description":"body is nested deeper than 32 levels"}`},
		{name: "huge JSON string", method: "POST", target: "/json", body: `"` + strings.Repeat("x", 1<<20) + `"`, status: 413,
			wantBody: `{"error":"request_too_large","error_description":"request body is larger than 1 MiB"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(tc.method, tc.target, "application/json", tc.body)
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %q", w.Code, tc.status, w.Body)
			}
			if tc.wantBody != "" && strings.TrimSpace(w.Body.String()) != tc.wantBody {
				t.Errorf("body = %q, want %q", w.Body, tc.wantBody)
			}
			if loc := w.Header().Get("Location"); loc != tc.location {
				t.Errorf("Location = %q, want %q", loc, tc.location)
			}
			checkSecurityHeaders(t, w.Header(), "no-store")
		})
	}

	t.Run("1000 concurrent requests", func(t *testing.T) {
		var wg sync.WaitGroup
		codes := make([]int, 1000)
		for i := range codes {
			wg.Go(func() {
				var w *httptest.ResponseRecorder
				switch i % 4 {
				case 0:
					w = e.do("GET", fmt.Sprintf("/files/f%d?q=%d", i, i), "", "")
				case 1:
					w = e.do("POST", "/json", "application/json", `{"n":`+fmt.Sprint(i)+`}`)
				case 2:
					w = e.do("POST", "/json", "application/json", `{"n":`)
				default:
					w = e.do("DELETE", "/files/x", "", "")
				}
				codes[i] = w.Code
			})
		}
		wg.Wait()
		want := [4]int{200, 200, 400, 405}
		for i, c := range codes {
			if c != want[i%4] {
				t.Errorf("request %d: status %d, want %d", i, c, want[i%4])
			}
		}
	})

	t.Run("real server", func(t *testing.T) {
		srv := httptest.NewServer(e.router)
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/files/%2e%2e?q=%ff")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

// The router's own table build: shadowing and conflicts, without a runtime.
func TestRouterBuild(t *testing.T) {
	rt := NewRouter(RouterOptions{})
	mk := func(pattern string) *inTrigger { return newIn(rt, pattern, nil, 1) }
	a1, a2, b := mk("GET /p/{x}"), mk("GET /p/{y}"), mk("GET /p/{z}")
	steps := []struct {
		name    string
		do      func() error
		want    []RouteInfo
		wantErr bool
	}{
		{"a v1 claims", func() error { return rt.claimRoute(a1, "a", 1, "in") },
			[]RouteInfo{{"a", 1, "in", "GET /p/{x}"}}, false},
		{"a v2 claims a conflicting pattern: it shadows v1", func() error { return rt.claimRoute(a2, "a", 2, "in") },
			[]RouteInfo{{"a", 2, "in", "GET /p/{y}"}}, false},
		{"b is refused", func() error { return rt.claimRoute(b, "b", 1, "in") },
			[]RouteInfo{{"a", 2, "in", "GET /p/{y}"}}, true},
		{"a v2 releases: v1 is back", func() error { rt.releaseRoute(a2); return nil },
			[]RouteInfo{{"a", 1, "in", "GET /p/{x}"}}, false},
		{"a v1 releases", func() error { rt.releaseRoute(a1); return nil }, []RouteInfo{}, false},
		{"releasing twice is harmless", func() error { rt.releaseRoute(a1); return nil }, []RouteInfo{}, false},
		{"now b may claim", func() error { return rt.claimRoute(b, "b", 1, "in") },
			[]RouteInfo{{"b", 1, "in", "GET /p/{z}"}}, false},
	}
	for _, s := range steps {
		err := s.do()
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: err = %v, want error %v", s.name, err, s.wantErr)
		}
		if got := rt.Routes(); !reflect.DeepEqual(got, s.want) {
			t.Fatalf("%s: routes = %v, want %v", s.name, got, s.want)
		}
	}
}
