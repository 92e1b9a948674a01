package httpblock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/store/storeerr"
)

// errTestBoom is the error of the test.fail block; its text must never
// reach a client.
var errTestBoom = errors.New("boom: internal detail db=10.0.0.7")

// testRegistry has the http blocks plus two test-only blocks, so these
// tests do not depend on blocks/core:
//
//	test.fail  always fails with errTestBoom
//	test.unavailable  fails as a store call to an unreachable cluster does
//	test.notyet  fails with an engine.UnavailableError (keys not made yet)
//	test.notyetbare  fails wrapping engine.ErrUnavailable alone
//	test.set   assigns message fields from expressions (exprmap "set")
func testRegistry(t testing.TB) *engine.Registry {
	t.Helper()
	reg := enginetest.Registry(t, Register)
	enginetest.Fail(t, reg, "test.fail", errTestBoom)
	reg.MustRegister(engine.Spec{Type: "test.unavailable", Outputs: []string{"out"}},
		func(*engine.Setup) (engine.Block, error) {
			return engine.BlockFunc(func(context.Context, *engine.Exec, engine.Msg) (string, error) {
				return "", fmt.Errorf("read client: etcd at 10.0.0.7 did not answer: %w", storeerr.ErrUnavailable)
			}), nil
		})
	reg.MustRegister(engine.Spec{Type: "test.notyet", Outputs: []string{"out"}},
		func(*engine.Setup) (engine.Block, error) {
			return engine.BlockFunc(func(context.Context, *engine.Exec, engine.Msg) (string, error) {
				return "", fmt.Errorf("sign: %w", &engine.UnavailableError{Public: "keyset \"main\" has no keys yet",
					RetryAfter: 1500 * time.Millisecond, Err: errors.New("generation at 10.0.0.7 failed")})
			}), nil
		})
	reg.MustRegister(engine.Spec{Type: "test.notyetbare", Outputs: []string{"out"}},
		func(*engine.Setup) (engine.Block, error) {
			return engine.BlockFunc(func(context.Context, *engine.Exec, engine.Msg) (string, error) {
				return "", fmt.Errorf("warming up at 10.0.0.7: %w", engine.ErrUnavailable)
			}), nil
		})
	enginetest.Set(t, reg, "test.set")
	return reg
}

// env is a router and a runtime wired together, as flowd does.
type env struct {
	router *Router
	rt     *engine.Runtime
}

func newEnv(t testing.TB, opts engine.Options) *env {
	t.Helper()
	router := NewRouter(RouterOptions{})
	opts.Services = services(t, router)
	return &env{router: router, rt: enginetest.Runtime(t, testRegistry(t), opts)}
}

// services gives a runtime's http.in nodes router, as flowd does.
func services(t testing.TB, router *Router) *engine.Services {
	t.Helper()
	svc := engine.NewServices()
	if err := Provide(svc, router); err != nil {
		t.Fatal(err)
	}
	return svc
}

// endpoint is the usual test flow: http.in -> http.respond.
func endpoint(t testing.TB, id, method, path string, respond map[string]any) *engine.Flow {
	return enginetest.Flow(t, id, []enginetest.Node{
		{ID: "in", Type: "http.in", Config: map[string]any{"method": method, "path": path}},
		{ID: "respond", Type: "http.respond", Config: respond},
	}, "in:out->respond")
}

func (e *env) deploy(t testing.TB, f *engine.Flow, version int) {
	t.Helper()
	if err := e.rt.Deploy(t.Context(), f, version); err != nil {
		t.Fatalf("deploy %s v%d: %v", f.ID, version, err)
	}
}

// do sends one request through the router.
func (e *env) do(method, target, contentType, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return e.serve(req)
}

// serve sends req through the router and returns the answer.
func (e *env) serve(req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.router.ServeHTTP(w, req)
	return w
}

// decodeBody parses a JSON response body, failing the test if it is not JSON.
func decodeBody(t testing.TB, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %q", err, w.Body.String())
	}
	return m
}

func traceCount(e *env, flow string) int { return len(e.rt.Traces(flow)) }

// checkSecurityHeaders asserts the headers every answer of this package has.
func checkSecurityHeaders(t testing.TB, h http.Header, cacheControl string) {
	t.Helper()
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}
	if got := h.Get("Cache-Control"); got != cacheControl {
		t.Errorf("Cache-Control = %q, want %q", got, cacheControl)
	}
}
