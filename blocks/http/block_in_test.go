package httpblock

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/store"
)

func TestInRequestMessage(t *testing.T) {
	e := newEnv(t, engine.Options{})
	e.deploy(t, endpoint(t, "users", "GET", "/users/{id}", map[string]any{
		"body": `{"id": msg.req.params.id, "q": msg.req.query.q, "tags": msg.req.query_all.tag,
			"method": msg.req.method, "path": msg.req.path, "accept": msg.req.headers.accept,
			"host": msg.req.host, "remote": msg.req.remote_addr, "has_body": "body" in msg}`,
		"headers": map[string]any{"X-User": "msg.req.params.id", "Cache-Control": "msg.req.query.cache"},
	}), 1)

	// user is the answer's body; every request is sent with the same
	// Accept header from the same address.
	user := func(id string, q, tags any, method, path string) map[string]any {
		return map[string]any{"id": id, "q": q, "tags": tags, "method": method, "path": path,
			"accept": "application/json", "host": "example.com", "remote": "192.0.2.1:1234", "has_body": false}
	}
	tests := []struct {
		name      string
		method    string
		target    string
		status    int
		body      map[string]any // nil: check the error code instead
		errCode   string
		xUser     string
		cache     string
		allowHdr  string
		traceDiff int
	}{
		{name: "path param", method: "GET", target: "/users/42", status: 200,
			body: user("42", nil, nil, "GET", "/users/42"), xUser: "42", cache: "no-store", traceDiff: 1},
		{name: "query first value and all values", method: "GET", target: "/users/7?q=hello&tag=a&tag=b&q=second", status: 200,
			body: user("7", "hello", []any{"a", "b"}, "GET", "/users/7"), xUser: "7", cache: "no-store", traceDiff: 1},
		{name: "escaped param is decoded", method: "GET", target: "/users/a%20b", status: 200,
			body: user("a b", nil, nil, "GET", "/users/a b"), xUser: "a b", cache: "no-store", traceDiff: 1},
		{name: "flow sets Cache-Control", method: "GET", target: "/users/1?cache=max-age%3D60", status: 200,
			body: user("1", nil, nil, "GET", "/users/1"), xUser: "1", cache: "max-age=60", traceDiff: 1},
		{name: "HEAD is served by GET", method: "HEAD", target: "/users/5", status: 200,
			body: user("5", nil, nil, "HEAD", "/users/5"), xUser: "5", cache: "no-store", traceDiff: 1},
		{name: "wrong method", method: "POST", target: "/users/1", status: 405, errCode: "method_not_allowed",
			cache: "no-store", allowHdr: "GET, HEAD"},
		{name: "unclaimed path", method: "GET", target: "/nope", status: 404, errCode: "not_found", cache: "no-store"},
		{name: "deeper path", method: "GET", target: "/users/1/x", status: 404, errCode: "not_found", cache: "no-store"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := traceCount(e, "users")
			req := httptest.NewRequest(tc.method, tc.target, nil)
			req.Header.Set("Accept", "application/json")
			req.RemoteAddr = "192.0.2.1:1234"
			w := e.serve(req)

			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			got := decodeBody(t, w)
			if tc.body != nil {
				if !reflect.DeepEqual(got, tc.body) {
					t.Errorf("body = %v\nwant   %v", got, tc.body)
				}
			} else if got["error"] != tc.errCode {
				t.Errorf("error = %v, want %q", got["error"], tc.errCode)
			}
			if h := w.Header().Get("X-User"); h != tc.xUser {
				t.Errorf("X-User = %q, want %q", h, tc.xUser)
			}
			if h := w.Header().Get("Allow"); h != tc.allowHdr {
				t.Errorf("Allow = %q, want %q", h, tc.allowHdr)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			checkSecurityHeaders(t, w.Header(), tc.cache)
			if d := traceCount(e, "users") - before; d != tc.traceDiff {
				t.Errorf("runs = %d, want %d", d, tc.traceDiff)
			}
		})
	}
}

func TestInBodies(t *testing.T) {
	e := newEnv(t, engine.Options{})
	e.deploy(t, endpoint(t, "echo", "POST", "/echo", map[string]any{
		"body": `{"body": msg.body, "all": msg.body_all, "has_body": "body" in msg}`,
	}), 1)

	tests := []struct {
		name        string
		contentType string
		body        string
		want        map[string]any
	}{
		{name: "JSON object, numbers as float64", contentType: "application/json",
			body: `{"a": 1, "b": [true, null, "x"], "c": {"d": 2.5}}`,
			want: map[string]any{"body": map[string]any{"a": 1.0, "b": []any{true, nil, "x"}, "c": map[string]any{"d": 2.5}},
				"all": nil, "has_body": true}},
		{name: "JSON with charset", contentType: "application/json; charset=utf-8", body: `{"k":"v"}`,
			want: map[string]any{"body": map[string]any{"k": "v"}, "all": nil, "has_body": true}},
		{name: "+json media type", contentType: "application/merge-patch+json", body: `[1,2]`,
			want: map[string]any{"body": []any{1.0, 2.0}, "all": nil, "has_body": true}},
		{name: "JSON scalar", contentType: "application/json", body: `"hi"`,
			want: map[string]any{"body": "hi", "all": nil, "has_body": true}},
		{name: "form: first value, all values", contentType: "application/x-www-form-urlencoded",
			body: "grant_type=client_credentials&scope=a&scope=b&x=%C3%A9",
			want: map[string]any{"body": map[string]any{"grant_type": "client_credentials", "scope": "a", "x": "é"},
				"all":      map[string]any{"grant_type": []any{"client_credentials"}, "scope": []any{"a", "b"}, "x": []any{"é"}},
				"has_body": true}},
		{name: "text stays raw", contentType: "text/plain", body: "hello\nworld",
			want: map[string]any{"body": "hello\nworld", "all": nil, "has_body": true}},
		{name: "no content type is raw text", body: `{"not":"parsed"}`,
			want: map[string]any{"body": `{"not":"parsed"}`, "all": nil, "has_body": true}},
		{name: "empty body leaves msg.body out", contentType: "application/json",
			want: map[string]any{"body": nil, "all": nil, "has_body": false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do("POST", "/echo", tc.contentType, tc.body)
			if w.Code != 200 {
				t.Fatalf("status = %d, body %s", w.Code, w.Body)
			}
			if got := decodeBody(t, w); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestInRefusesBadRequestsWithoutRunning(t *testing.T) {
	e := newEnv(t, engine.Options{})
	small := enginetest.Flow(t, "small", []enginetest.Node{
		{ID: "in", Type: "http.in", Config: map[string]any{"method": "POST", "path": "/small", "max_body": 16}},
		{ID: "respond", Type: "http.respond", Config: map[string]any{"body": `"ok"`}},
	}, "in:out->respond")
	e.deploy(t, small, 1)
	e.deploy(t, endpoint(t, "big", "POST", "/big", map[string]any{"body": `"ok"`}), 1)

	nested := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name        string
		target      string
		contentType string
		body        string
		chunked     bool // no Content-Length: the limit is found while reading
		status      int
		errCode     string
		desc        string
	}{
		{name: "over max_body by Content-Length", target: "/small", contentType: "text/plain", body: strings.Repeat("x", 17),
			status: 413, errCode: "request_too_large", desc: "request body is larger than 16 bytes"},
		{name: "over max_body while reading", target: "/small", contentType: "text/plain", body: strings.Repeat("x", 17), chunked: true,
			status: 413, errCode: "request_too_large", desc: "request body is larger than 16 bytes"},
		{name: "over default limit", target: "/big", contentType: "text/plain", body: strings.Repeat("x", 1<<20+1), chunked: true,
			status: 413, errCode: "request_too_large", desc: "request body is larger than 1 MiB"},
		{name: "malformed JSON", target: "/big", contentType: "application/json", body: `{"a":`,
			status: 400, errCode: "invalid_request", desc: "body is not valid JSON"},
		{name: "JSON with trailing data", target: "/big", contentType: "application/json", body: `{} {}`,
			status: 400, errCode: "invalid_request", desc: "body is not valid JSON"},
		{name: "JSON duplicate key", target: "/big", contentType: "application/json", body: `{"role":"user","role":"admin"}`,
			status: 400, errCode: "invalid_request", desc: "body has a duplicate object key"},
		{name: "JSON nested 33 deep", target: "/big", contentType: "application/json", body: nested(33),
			status: 400, errCode: "invalid_request", desc: "body is nested deeper than 32 levels"},
		{name: "JSON nested 100000 deep", target: "/big", contentType: "application/json", body: nested(100000),
			status: 400, errCode: "invalid_request", desc: "body is nested deeper than 32 levels"},
		{name: "bad form escape", target: "/big", contentType: "application/x-www-form-urlencoded", body: "a=%zz",
			status: 400, errCode: "invalid_request", desc: "body is not a valid form"},
		{name: "form with semicolons", target: "/big", contentType: "application/x-www-form-urlencoded", body: "a=1;b=2",
			status: 400, errCode: "invalid_request", desc: "body is not a valid form"},
		{name: "bad query escape", target: "/big?a=%zz",
			status: 400, errCode: "invalid_request", desc: "query string is malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			flow := strings.TrimPrefix(strings.SplitN(tc.target, "?", 2)[0], "/")
			before := traceCount(e, flow)
			req := httptest.NewRequest("POST", tc.target, strings.NewReader(tc.body))
			if tc.chunked {
				req.ContentLength = -1
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			w := e.serve(req)
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			got := decodeBody(t, w)
			want := map[string]any{"error": tc.errCode, "error_description": tc.desc}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("body = %v, want %v", got, want)
			}
			checkSecurityHeaders(t, w.Header(), "no-store")
			if after := traceCount(e, flow); after != before {
				t.Errorf("a run happened: traces %d -> %d", before, after)
			}
		})
	}
	t.Run("body within max_body but message over the runtime's limit", func(t *testing.T) {
		before := traceCount(e, "big")
		w := e.do("POST", "/big", "text/plain", strings.Repeat("x", 1<<20))
		want := map[string]any{"error": "request_too_large", "error_description": "request is larger than the message size limit"}
		if got := decodeBody(t, w); w.Code != 413 || !reflect.DeepEqual(got, want) {
			t.Errorf("got %d %v, want 413 %v", w.Code, got, want)
		}
		// The engine refused the message: its trace says so.
		if traces := e.rt.Traces("big"); len(traces) != before+1 || !strings.Contains(traces[0].Error, engine.ErrMessageTooBig.Error()) {
			t.Errorf("traces %d -> %d, want one failed run", before, len(traces))
		}
	})
	t.Run("body exactly at the limit runs", func(t *testing.T) {
		w := e.do("POST", "/small", "text/plain", strings.Repeat("x", 16))
		if w.Code != 200 {
			t.Fatalf("status = %d, body %s", w.Code, w.Body)
		}
	})
}

// A run that ends without a response, or fails, answers 500 with its run id
// and nothing else: no error text, no node names; 503 with Retry-After
// when it failed because the store was unavailable (nothing was written:
// the client may try again).
func TestInRunWithoutResponse(t *testing.T) {
	e := newEnv(t, engine.Options{})
	in := enginetest.Node{ID: "in", Type: "http.in", Config: map[string]any{"method": "GET", "path": "/x"}}
	tests := []struct {
		name       string
		flow       *engine.Flow
		status     int
		wantRunID  bool
		errCode    string // of the run-id answer: internal_error unless set
		desc       string // of the run-id answer: none unless set
		retryAfter string
		body       string // exact body when not an internal_error
		traceState string
		traceErr   string
	}{
		{name: "flow never responds",
			flow:   enginetest.Flow(t, "silent", []enginetest.Node{in}),
			status: 500, wantRunID: true, traceState: engine.StatusOK},
		{name: "block fails before responding",
			flow:   enginetest.Flow(t, "failing", []enginetest.Node{in, {ID: "boom", Type: "test.fail"}}, "in:out->boom"),
			status: 500, wantRunID: true, traceState: engine.StatusError, traceErr: errTestBoom.Error()},
		{name: "store unavailable before responding",
			flow:   enginetest.Flow(t, "unavailable", []enginetest.Node{in, {ID: "read", Type: "test.unavailable"}}, "in:out->read"),
			status: 503, wantRunID: true, errCode: "temporarily_unavailable", retryAfter: "2",
			traceState: engine.StatusError, traceErr: store.ErrUnavailable.Error()},
		{name: "a block cannot serve yet: its public words, its Retry-After rounded up",
			flow:   enginetest.Flow(t, "notyet", []enginetest.Node{in, {ID: "sign", Type: "test.notyet"}}, "in:out->sign"),
			status: 503, wantRunID: true, errCode: "temporarily_unavailable", desc: `keyset "main" has no keys yet`, retryAfter: "2",
			traceState: engine.StatusError, traceErr: "generation at 10.0.0.7 failed"},
		{name: "a block cannot serve yet, without words",
			flow:   enginetest.Flow(t, "notyetbare", []enginetest.Node{in, {ID: "sign", Type: "test.notyetbare"}}, "in:out->sign"),
			status: 503, wantRunID: true, errCode: "temporarily_unavailable", retryAfter: "2",
			traceState: engine.StatusError, traceErr: engine.ErrUnavailable.Error()},
		{name: "respond body cannot be encoded",
			flow: enginetest.Flow(t, "nan", []enginetest.Node{in, {ID: "respond", Type: "http.respond",
				Config: map[string]any{"body": `{"x": 0.0 / 0.0}`}}}, "in:out->respond"),
			status: 500, wantRunID: true, traceState: engine.StatusError, traceErr: "cannot encode as JSON"},
		{name: "respond header with CRLF",
			flow: enginetest.Flow(t, "crlf", []enginetest.Node{in, {ID: "respond", Type: "http.respond",
				Config: map[string]any{"headers": map[string]any{"X-Evil": `"a\r\nSet-Cookie: x=1"`}}}}, "in:out->respond"),
			status: 500, wantRunID: true, traceState: engine.StatusError, traceErr: "control characters"},
		{name: "block fails after responding: the response stands",
			flow: enginetest.Flow(t, "late", []enginetest.Node{in, {ID: "respond", Type: "http.respond", Config: map[string]any{"body": `"done"`}},
				{ID: "boom", Type: "test.fail"}}, "in:out->respond", "respond:out->boom"),
			status: 200, body: "\"done\"\n", traceState: engine.StatusError, traceErr: errTestBoom.Error()},
		{name: "two responses: the first stands, the second fails the run",
			flow: enginetest.Flow(t, "twice", []enginetest.Node{in,
				{ID: "r1", Type: "http.respond", Config: map[string]any{"status": 201, "body": `"first"`}},
				{ID: "r2", Type: "http.respond", Config: map[string]any{"status": 202, "body": `"second"`}}},
				"in:out->r1", "in:out->r2"),
			status: 201, body: "\"first\"\n", traceState: engine.StatusError, traceErr: ErrAlreadyResponded.Error()},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.deploy(t, tc.flow, i+1)
			t.Cleanup(func() { e.rt.Undeploy(t.Context(), tc.flow.ID) })
			w := e.do("GET", "/x", "", "")
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			traces := e.rt.Traces(tc.flow.ID)
			if len(traces) != 1 {
				t.Fatalf("%d traces, want 1", len(traces))
			}
			tr := traces[0]
			if tc.wantRunID {
				code := "internal_error"
				if tc.errCode != "" {
					code = tc.errCode
				}
				want := map[string]any{"error": code, "run_id": tr.ID}
				if tc.desc != "" {
					want["error_description"] = tc.desc
				}
				if got := decodeBody(t, w); !reflect.DeepEqual(got, want) {
					t.Errorf("body = %v, want %v", got, want)
				}
				checkSecurityHeaders(t, w.Header(), "no-store")
			} else if w.Body.String() != tc.body {
				t.Errorf("body = %q, want %q", w.Body, tc.body)
			}
			if got := w.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			if tr.Status != tc.traceState || !strings.Contains(tr.Error, tc.traceErr) {
				t.Errorf("trace status %q error %q, want %q containing %q", tr.Status, tr.Error, tc.traceState, tc.traceErr)
			}
			for _, leak := range []string{"boom", "10.0.0.7", "NaN", "Set-Cookie", "respond"} {
				if strings.Contains(w.Body.String(), leak) {
					t.Errorf("response leaks %q: %s", leak, w.Body)
				}
			}
		})
	}
}

func TestInDeployErrors(t *testing.T) {
	e := newEnv(t, engine.Options{Limits: engine.Limits{MaxMessageBytes: 2 << 20}})
	tests := []struct {
		name   string
		config map[string]any
		field  string
		msg    string
	}{
		{"relative path", map[string]any{"path": "users"}, "path", `must start with "/"`},
		{"host in path", map[string]any{"path": "example.com/users"}, "path", `must start with "/"`},
		{"method in path", map[string]any{"path": "GET /users"}, "path", `must start with "/"`},
		{"space in path", map[string]any{"path": "/a b"}, "path", "spaces or control characters"},
		{"unclosed wildcard", map[string]any{"path": "/a/{id"}, "path", "not a valid route pattern"},
		{"duplicate wildcard", map[string]any{"path": "/a/{id}/{id}"}, "path", "not a valid route pattern"},
		{"rest wildcard not last", map[string]any{"path": "/a/{x...}/b"}, "path", "not a valid route pattern"},
		{"missing path", map[string]any{}, "path", "required"},
		{"unknown method", map[string]any{"path": "/a", "method": "TRACE"}, "method", "must be one of"},
		{"max_body over the cap", map[string]any{"path": "/a", "max_body": 11 << 20}, "max_body", "at most 10485760"},
		{"max_body over the message limit", map[string]any{"path": "/a", "max_body": 3 << 20}, "max_body", "message size limit (2 MiB)"},
		{"max_body zero", map[string]any{"path": "/a", "max_body": 0}, "max_body", "at least 1"},
		{"admin root", map[string]any{"path": "/admin"}, "path", `must not be under "/admin": flowd's admin UI and API answer every path there`},
		{"admin subtree", map[string]any{"path": "/admin/"}, "path", `must not be under "/admin"`},
		{"admin page", map[string]any{"path": "/admin/hooks/{id}", "method": "POST"}, "path", `must not be under "/admin"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enginetest.Refused(t, e.rt, enginetest.Flow(t, "bad", []enginetest.Node{{ID: "in", Type: "http.in", Config: tc.config}}),
				engine.ValidationError{Node: "in", Field: tc.field, Msg: tc.msg})
			if len(e.router.Routes()) != 0 {
				t.Errorf("a failed deploy left routes: %v", e.router.Routes())
			}
		})
	}
}

func TestRoutePatternParams(t *testing.T) {
	tests := []struct {
		method, path string
		pattern      string
		params       []string
	}{
		{"GET", "/users/{id}", "GET /users/{id}", []string{"id"}},
		{"ANY", "/files/{dir}/{rest...}", "/files/{dir}/{rest...}", []string{"dir", "rest"}},
		{"POST", "/{$}", "POST /{$}", nil},
		{"DELETE", "/tree/", "DELETE /tree/", nil},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			pattern, params, err := routePattern(tc.method, tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if pattern != tc.pattern || !reflect.DeepEqual(params, tc.params) {
				t.Errorf("got %q %q, want %q %q", pattern, params, tc.pattern, tc.params)
			}
		})
	}
}

// The trace of an http.in run shows the request but not its credentials.
func TestInTraceRedactsCredentials(t *testing.T) {
	e := newEnv(t, engine.Options{})
	e.deploy(t, endpoint(t, "tok", "POST", "/token", map[string]any{"body": `"ok"`}), 1)
	req := httptest.NewRequest("POST", "/token?access_token=query-secret-1", strings.NewReader(
		"grant_type=client_credentials&client_secret=form-secret-2"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic aGVhZGVyLXNlY3JldC0z")
	req.Header.Set("Cookie", "session=cookie-secret-4")
	req.Header.Set("X-Auth-Token", "custom-secret-5")
	w := e.serve(req)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	data, err := json.Marshal(e.rt.Traces("tok"))
	if err != nil {
		t.Fatal(err)
	}
	// X-Auth-Token is not on the engine's list: http.in declares it in
	// Spec.Sensitive, which the engine applies to every step of the flow.
	for _, secret := range []string{"query-secret-1", "form-secret-2", "aGVhZGVyLXNlY3JldC0z", "cookie-secret-4", "custom-secret-5"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("trace holds %q: %s", secret, data)
		}
	}
	if !strings.Contains(string(data), "client_credentials") {
		t.Errorf("trace lost the non-secret fields: %s", data)
	}
}
