package httpblock

import (
	"bytes"
	"errors"
	"math"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

func TestRespond(t *testing.T) {
	e := newEnv(t, engine.Options{})
	tests := []struct {
		name    string
		config  map[string]any
		target  string
		status  int
		body    string
		headers map[string][]string // exact values; nil slice: header absent
	}{
		{name: "defaults: msg.payload unset sends no body", config: map[string]any{},
			status: 200, body: "",
			headers: map[string][]string{"Content-Type": nil, "Content-Length": {"0"}, "Cache-Control": {"no-store"},
				"X-Content-Type-Options": {"nosniff"}}},
		{name: "JSON map with status", config: map[string]any{"status": 201, "body": `{"id": 7, "tags": ["a"], "ok": true}`},
			status: 201, body: `{"id":7,"ok":true,"tags":["a"]}` + "\n",
			headers: map[string][]string{"Content-Type": {"application/json"}, "Content-Length": {"32"}, "Cache-Control": {"no-store"}}},
		{name: "no HTML escaping", config: map[string]any{"body": `"<a href='x'>&</a>"`},
			status: 200, body: `"<a href='x'>&</a>"` + "\n",
			headers: map[string][]string{"Content-Type": {"application/json"}}},
		{name: "text content type writes a string as is", config: map[string]any{"body": `"hello"`, "content_type": "text/plain; charset=utf-8"},
			status: 200, body: "hello",
			headers: map[string][]string{"Content-Type": {"text/plain; charset=utf-8"}, "Content-Length": {"5"}}},
		{name: "application/jwt writes the token as is", config: map[string]any{"body": `"a.b.c"`, "content_type": "application/jwt"},
			status: 200, body: "a.b.c", headers: map[string][]string{"Content-Type": {"application/jwt"}}},
		{name: "+json content type encodes JSON", config: map[string]any{"body": `{"keys": []}`, "content_type": "application/jwk-set+json"},
			status: 200, body: `{"keys":[]}` + "\n", headers: map[string][]string{"Content-Type": {"application/jwk-set+json"}}},
		{name: "text content type still encodes a map as JSON", config: map[string]any{"body": `{"a": 1}`, "content_type": "text/plain"},
			status: 200, body: `{"a":1}` + "\n", headers: map[string][]string{"Content-Type": {"text/plain"}}},
		{name: "body from the message", config: map[string]any{"body": `msg.req.query`},
			target: "/r?x=1&y=2", status: 200, body: `{"x":"1","y":"2"}` + "\n", headers: map[string][]string{}},
		{name: "flow's own 404 is not rewritten", config: map[string]any{"status": 404, "body": `{"error": "no_such_user"}`},
			status: 404, body: `{"error":"no_such_user"}` + "\n", headers: map[string][]string{}},
		{name: "204 drops the body", config: map[string]any{"status": 204, "body": `{"ignored": true}`},
			status: 204, body: "", headers: map[string][]string{"Content-Type": nil, "Content-Length": nil}},
		{name: "304 with ETag", config: map[string]any{"status": 304, "headers": map[string]any{"ETag": `"\"v1\""`}},
			status: 304, body: "",
			headers: map[string][]string{"Etag": {`"v1"`}, "Content-Type": nil, "Cache-Control": {"no-store"}}},
		{name: "flow sets Cache-Control", config: map[string]any{"body": `{}`, "headers": map[string]any{"cache-control": `"public, max-age=300"`}},
			status: 200, body: "{}\n", headers: map[string][]string{"Cache-Control": {"public, max-age=300"}}},
		{name: "a list sends a header per item", config: map[string]any{"headers": map[string]any{
			"Set-Cookie": `["a=1; HttpOnly", "b=2; Secure"]`}},
			status: 200, body: "", headers: map[string][]string{"Set-Cookie": {"a=1; HttpOnly", "b=2; Secure"}}},
		{name: "nil or empty header values are left out", config: map[string]any{"headers": map[string]any{
			"X-Nil": "msg.nothing", "X-Empty": `""`, "X-Num": "42"}},
			status: 200, headers: map[string][]string{"X-Nil": nil, "X-Empty": nil, "X-Num": {"42"}}},
		{name: "Content-Type header overrides content_type", config: map[string]any{"body": `"x"`,
			"headers": map[string]any{"Content-Type": `"text/csv"`}},
			status: 200, body: "x", headers: map[string][]string{"Content-Type": {"text/csv"}}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := endpoint(t, "r", "GET", "/r", tc.config)
			e.deploy(t, f, i+1)
			target := tc.target
			if target == "" {
				target = "/r"
			}
			w := e.do("GET", target, "", "")
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %q", w.Code, tc.status, w.Body)
			}
			if w.Body.String() != tc.body {
				t.Errorf("body = %q, want %q", w.Body, tc.body)
			}
			for k, want := range tc.headers {
				if got := w.Header().Values(k); !reflect.DeepEqual(got, want) {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q", got)
			}
			if !w.Flushed {
				t.Error("response was not flushed")
			}
		})
	}
}

func TestRespondDeployErrors(t *testing.T) {
	e := newEnv(t, engine.Options{})
	tests := []struct {
		name   string
		config map[string]any
		field  string
		msg    string
		line   int // of an expression error
		column int
	}{
		{"status below 200", map[string]any{"status": 101}, "status", "at least 200", 0, 0},
		{"status above 599", map[string]any{"status": 600}, "status", "at most 599", 0, 0},
		{"bad header name", map[string]any{"headers": map[string]any{"X Bad": `"v"`}}, "headers.X Bad", "not a valid header name", 0, 0},
		{"server-owned header", map[string]any{"headers": map[string]any{"content-length": `"1"`}}, "headers.content-length", "set by the server", 0, 0},
		{"header given twice", map[string]any{"headers": map[string]any{"X-A": `"1"`, "x-a": `"2"`}}, "headers.x-a", "given twice", 0, 0},
		{"bad body expression", map[string]any{"body": `msg.(`}, "body", "expected name", 1, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enginetest.Refused(t, e.rt, endpoint(t, "bad", "GET", "/bad", tc.config),
				engine.ValidationError{Node: "respond", Field: tc.field, Line: tc.line, Column: tc.column, Msg: tc.msg})
		})
	}
}

// http.respond in a run that no request started (the editor's Run button)
// fails with ErrNoRequest instead of writing somewhere.
func TestRespondWithoutRequest(t *testing.T) {
	e := newEnv(t, engine.Options{})
	e.deploy(t, endpoint(t, "manual", "GET", "/m", map[string]any{"body": `"x"`}), 1)
	tr, err := e.rt.Run(t.Context(), "manual", "", engine.Msg{})
	if !errors.Is(err, ErrNoRequest) {
		t.Fatalf("err = %v, want %v", err, ErrNoRequest)
	}
	if tr == nil || tr.ErrorNode != "respond" {
		t.Errorf("trace = %+v, want an error at node respond", tr)
	}
}

func TestHeaderValues(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want []string
		err  bool
	}{
		{"nil", nil, nil, false},
		{"empty", "", nil, false},
		{"string", "a", []string{"a"}, false},
		{"number", 3.5, []string{"3.5"}, false},
		{"list", []any{"a", 1}, []string{"a", "1"}, false},
		{"CRLF", "a\r\nb", nil, true},
		{"NUL in list", []string{"ok", "a\x00"}, nil, true},
		{"tab is fine", "a\tb", []string{"a\tb"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := headerValues(tc.in)
			if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("headerValues(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestEncodeBody(t *testing.T) {
	tests := []struct {
		name   string
		in     any
		asJSON bool
		want   string
		err    string
	}{
		{"nil is no body", nil, true, "", ""},
		{"bytes as is, even for JSON", []byte("raw\x00"), true, "raw\x00", ""},
		{"string as is", "plain", false, "plain", ""},
		{"string as JSON", "q\"", true, `"q\""` + "\n", ""},
		{"number", 1.5, false, "1.5\n", ""},
		{"NaN", math.NaN(), true, "", "cannot encode as JSON"},
		{"a channel", make(chan int), true, "", "cannot encode as JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := encodeBody(&buf, tc.in, tc.asJSON)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || buf.Len() != 0 {
					t.Errorf("err = %v, buf %q; want %q and nothing written", err, buf.String(), tc.err)
				}
				return
			}
			if err != nil || buf.String() != tc.want {
				t.Errorf("got %q, %v; want %q", buf.String(), err, tc.want)
			}
		})
	}
}

// Constant headers are evaluated once at deploy and their values shared;
// a wrapper that appends to a response's header values after the flow
// answered must not leak into later responses.
func TestRespondConstantHeadersShared(t *testing.T) {
	e := newEnv(t, engine.Options{})
	e.deploy(t, endpoint(t, "c", "GET", "/c", map[string]any{"body": `"ok"`, "content_type": "text/plain",
		"headers": map[string]any{"X-A": `"one"`, "Vary": `'Origin'`}}), 1)
	for i := range 3 {
		w := e.serve(httptest.NewRequest("GET", "/c", nil))
		h := w.Header()
		if got := h.Values("X-A"); len(got) != 1 || got[0] != "one" {
			t.Fatalf("response %d: X-A %q", i, got)
		}
		if got := h.Values("Vary"); len(got) != 1 || got[0] != "Origin" {
			t.Fatalf("response %d: Vary %q", i, got)
		}
		if got := h.Values("X-Content-Type-Options"); len(got) != 1 {
			t.Fatalf("response %d: nosniff %q", i, got)
		}
		// What a careless middleware might do afterwards.
		h.Add("Vary", "Accept-Encoding")
		h["X-Content-Type-Options"] = append(h["X-Content-Type-Options"], "extra")
		h["Content-Type"] = append(h["Content-Type"], "text/html")
	}
}

// TestRespondRepeatedHeaders: header values and Content-Length reused
// from the last response are only reused for the same text: each response
// carries its own values, and a bad value is refused after a good one.
func TestRespondRepeatedHeaders(t *testing.T) {
	e := newEnv(t, engine.Options{})
	e.deploy(t, endpoint(t, "r", "GET", "/r", map[string]any{
		"body":    `msg.req.query.b`,
		"headers": map[string]any{"ETag": "msg.req.query.e", "X-List": "[msg.req.query.e, 'x']"},
	}), 1)
	for _, tc := range []struct {
		name, query, etag, length string
		status                    int
	}{
		{"first", "e=one&b=aa", "one", "5", 200},
		{"same again", "e=one&b=aa", "one", "5", 200},
		{"another etag", "e=two&b=aa", "two", "5", 200},
		{"another length", "e=two&b=aaaaaaaaaaaa", "two", "15", 200},
		{"back to the first", "e=one&b=aa", "one", "5", 200},
		{"control characters refused", "e=bad%0d%0aX-Injected:+1&b=aa", "", "", 500},
		{"good after bad", "e=one&b=aa", "one", "5", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do("GET", "/r?"+tc.query, "", "")
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status != 200 {
				if w.Header().Get("X-Injected") != "" {
					t.Errorf("header injected: %v", w.Header())
				}
				return
			}
			if got := w.Header().Values("Etag"); !reflect.DeepEqual(got, []string{tc.etag}) {
				t.Errorf("ETag %q, want %q", got, tc.etag)
			}
			if got := w.Header().Values("X-List"); !reflect.DeepEqual(got, []string{tc.etag, "x"}) {
				t.Errorf("X-List %q", got)
			}
			if got := w.Header().Values("Content-Length"); !reflect.DeepEqual(got, []string{tc.length}) {
				t.Errorf("Content-Length %q, want %q", got, tc.length)
			}
		})
	}
}
