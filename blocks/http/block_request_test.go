package httpblock

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// upstream is the API http.request calls in these tests.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	auth []string // Authorization headers received on /json
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	mux := http.NewServeMux()
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.auth = append(u.auth, r.Header.Get("Authorization"))
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("Set-Cookie", "sid=cookie-s3cr3t; HttpOnly")
		w.Header().Add("Set-Cookie", "theme=dark, blue")
		fmt.Fprint(w, `{"ok": true, "n": 1, "access_token": "at-s3cr3t"}`)
	})
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "hello")
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		var code int
		fmt.Sscan(r.PathValue("code"), &code)
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"code": %d}`, code)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "4096")
		w.Write(make([]byte, 4096))
	})
	mux.HandleFunc("/big-streamed", func(w http.ResponseWriter, r *http.Request) {
		for range 8 {
			w.Write(make([]byte, 512))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/json", http.StatusFound)
	})
	mux.HandleFunc("/redirect-away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://blocked.example/x", http.StatusFound)
	})
	mux.HandleFunc("/badjson", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"truncated": `)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "ct": r.Header.Get("Content-Type"),
			"ua": r.Header.Get("User-Agent"), "body": string(body)})
	})
	u.Server = httptest.NewServer(mux)
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) received() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.auth...)
}

// callFlow is http.in -> http.request; its answer goes out as JSON, its
// error as a 502 with the error text (fine in a test; a real flow would not
// show it).
func callFlow(t *testing.T, config map[string]any) *engine.Flow {
	return enginetest.Flow(t, "call", []enginetest.Node{
		{ID: "in", Type: "http.in", Config: map[string]any{"method": "POST", "path": "/call"}},
		{ID: "req", Type: "http.request", Config: config},
		{ID: "ok", Type: "http.respond", Config: map[string]any{"body": "msg.response"}},
		{ID: "fail", Type: "http.respond", Config: map[string]any{"status": 502, "body": "msg.error.message",
			"content_type": "text/plain"}},
	}, "in:out->req", "req:out->ok", "req:error->fail")
}

func quote(s string) string { return "'" + s + "'" }

func TestRequest(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t, engine.Options{})
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	type result struct {
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    any               `json:"body"`
	}
	tests := []struct {
		name    string
		config  map[string]any
		status  int    // of the response, on "out"
		body    any    // response body on the message
		header  string // "name: value" expected in the response headers
		errText string // non-empty: the call leaves by "error" with this text
		noText  string // must not appear in the error
		maxTime time.Duration
	}{
		{name: "JSON answer is parsed", config: map[string]any{"url": quote(up.URL + "/json")},
			status: 200, body: map[string]any{"ok": true, "n": 1.0, "access_token": "at-s3cr3t"},
			header: "set-cookie: sid=cookie-s3cr3t; HttpOnly\ntheme=dark, blue"},
		{name: "text answer stays text", config: map[string]any{"url": quote(up.URL + "/text")},
			status: 200, body: "hello", header: "content-type: text/plain"},
		{name: "4xx goes out", config: map[string]any{"url": quote(up.URL + "/status/404")},
			status: 404, body: map[string]any{"code": 404.0}},
		{name: "5xx goes out", config: map[string]any{"url": quote(up.URL + "/status/503")},
			status: 503, body: map[string]any{"code": 503.0}},
		{name: "allow_hosts refuses", config: map[string]any{"url": quote(up.URL + "/json"), "allow_hosts": []string{"api.example.com", "*.example.org"}},
			errText: `host "127.0.0.1": host is not in allow_hosts`},
		{name: "allow_hosts admits", config: map[string]any{"url": quote(up.URL + "/text"), "allow_hosts": []string{"api.example.com", "127.0.0.1"}},
			status: 200, body: "hello"},
		{name: "timeout", config: map[string]any{"url": quote(up.URL + "/slow"), "timeout": "50ms"},
			errText: "request timed out (timeout 50ms", maxTime: 2 * time.Second},
		{name: "answer over max_response by Content-Length", config: map[string]any{"url": quote(up.URL + "/big"), "max_response": 1024},
			errText: "response is larger than max_response (4096 bytes, limit 1 KiB)"},
		{name: "answer over max_response while reading", config: map[string]any{"url": quote(up.URL + "/big-streamed"), "max_response": 1024},
			errText: "response is larger than max_response (limit 1 KiB)"},
		{name: "redirect not followed: the 3xx is the answer", config: map[string]any{"url": quote(up.URL + "/redirect")},
			status: 302, header: "location: /json", body: "<a href=\"/json\">Found</a>.\n\n"},
		{name: "redirect followed", config: map[string]any{"url": quote(up.URL + "/redirect"), "follow_redirects": true},
			status: 200, body: map[string]any{"ok": true, "n": 1.0, "access_token": "at-s3cr3t"}},
		{name: "redirect to a host outside allow_hosts", config: map[string]any{"url": quote(up.URL + "/redirect-away"),
			"follow_redirects": true, "allow_hosts": []string{"127.0.0.1"}},
			errText: `redirect: host "blocked.example": host is not in allow_hosts`},
		{name: "answer that says JSON but is not", config: map[string]any{"url": quote(up.URL + "/badjson")},
			errText: "status 200: response is not valid JSON"},
		{name: "JSON request body", config: map[string]any{"method": "POST", "url": quote(up.URL + "/echo"), "body": `{"a": 1}`},
			status: 200, body: map[string]any{"method": "POST", "ct": "application/json", "ua": "flowd", "body": `{"a":1}`}},
		{name: "form request body", config: map[string]any{"method": "POST", "url": quote(up.URL + "/echo"),
			"headers": map[string]any{"Content-Type": quote("application/x-www-form-urlencoded"), "User-Agent": quote("test/1")},
			"body":    `{"grant_type": "client_credentials", "scope": ["a", "b"]}`},
			status: 200, body: map[string]any{"method": "POST", "ct": "application/x-www-form-urlencoded", "ua": "test/1",
				"body": "grant_type=client_credentials&scope=a&scope=b"}},
		{name: "text request body", config: map[string]any{"method": "PUT", "url": quote(up.URL + "/echo"), "body": quote("plain")},
			status: 200, body: map[string]any{"method": "PUT", "ct": "text/plain; charset=utf-8", "ua": "flowd", "body": "plain"}},
		{name: "only http and https", config: map[string]any{"url": quote("file:///etc/passwd")},
			errText: "url: scheme must be http or https"},
		{name: "network error names no path or query", config: map[string]any{"url": quote(closed.URL + "/p/secret-path?token=secret-query")},
			errText: "GET " + closed.URL + ": dial tcp", noText: "secret"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.deploy(t, callFlow(t, tc.config), i+1)
			start := time.Now()
			w := e.do("POST", "/call", "", "")
			if tc.maxTime > 0 && time.Since(start) > tc.maxTime {
				t.Errorf("took %s", time.Since(start))
			}
			if tc.errText != "" {
				if w.Code != 502 || !strings.Contains(w.Body.String(), tc.errText) {
					t.Fatalf("got %d %q, want the error port with %q", w.Code, w.Body, tc.errText)
				}
				if tc.noText != "" && strings.Contains(w.Body.String(), tc.noText) {
					t.Errorf("error %q contains %q", w.Body, tc.noText)
				}
				return
			}
			if w.Code != 200 {
				t.Fatalf("got %d %q, want the out port", w.Code, w.Body)
			}
			var got result
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.status {
				t.Errorf("status = %d, want %d", got.Status, tc.status)
			}
			if fmt.Sprint(got.Body) != fmt.Sprint(tc.body) {
				t.Errorf("body = %#v, want %#v", got.Body, tc.body)
			}
			if tc.header != "" {
				name, value, _ := strings.Cut(tc.header, ": ")
				if got.Headers[name] != value {
					t.Errorf("header %s = %q, want %q (all: %v)", name, got.Headers[name], value, got.Headers)
				}
			}
		})
	}
}

// Credentials sent by http.request, and secrets in its answer, stay out of
// the trace.
func TestRequestKeepsCredentialsOutOfTraces(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t, engine.Options{Env: map[string]string{"API_TOKEN": "tok-s3cr3t-value"}})
	e.deploy(t, enginetest.Flow(t, "cred", []enginetest.Node{
		{ID: "in", Type: "http.in", Config: map[string]any{"path": "/cred"}},
		{ID: "req", Type: "http.request", Config: map[string]any{"url": quote(up.URL + "/json"),
			"headers": map[string]any{"Authorization": "'Bearer ' + env.API_TOKEN", "X-Api-Key": "env.API_TOKEN"}}},
		{ID: "respond", Type: "http.respond", Config: map[string]any{"body": "msg.response.body.ok"}},
	}, "in:out->req", "req:out->respond"), 1)

	w := e.do("GET", "/cred", "", "")
	if w.Code != 200 || w.Body.String() != "true\n" {
		t.Fatalf("got %d %q", w.Code, w.Body)
	}
	if got := up.received(); len(got) != 1 || got[0] != "Bearer tok-s3cr3t-value" {
		t.Fatalf("upstream received Authorization %q", got)
	}
	data, err := json.Marshal(e.rt.Traces("cred"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"tok-s3cr3t-value", "cookie-s3cr3t", "at-s3cr3t"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("trace holds %q: %s", secret, data)
		}
	}
	if !strings.Contains(string(data), `"status":200`) {
		t.Errorf("trace lost msg.response: %s", data)
	}
}

func TestRequestDeployErrors(t *testing.T) {
	e := newEnv(t, engine.Options{})
	tests := []struct {
		name   string
		config map[string]any
		field  string
		msg    string
	}{
		{"no url", map[string]any{}, "url", "required"},
		{"timeout over 60s", map[string]any{"url": quote("https://x"), "timeout": "2m"}, "timeout", "at most 60s"},
		{"max_response over 10 MiB", map[string]any{"url": quote("https://x"), "max_response": 11 << 20}, "max_response", "at most"},
		{"allow_hosts with a scheme", map[string]any{"url": quote("https://x"), "allow_hosts": []string{"https://x"}}, "allow_hosts", "no scheme, port or path"},
		{"allow_hosts with a port", map[string]any{"url": quote("https://x"), "allow_hosts": []string{"x:443"}}, "allow_hosts", "no scheme, port or path"},
		{"allow_hosts bare star", map[string]any{"url": quote("https://x"), "allow_hosts": []string{"*"}}, "allow_hosts", "no scheme, port or path"},
		{"Host header", map[string]any{"url": quote("https://x"), "headers": map[string]any{"Host": quote("evil")}}, "headers.Host", "set by the client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enginetest.Refused(t, e.rt, callFlow(t, tc.config), engine.ValidationError{Node: "req", Field: tc.field, Msg: tc.msg})
		})
	}
}

func TestAllowHosts(t *testing.T) {
	var rules []hostRule
	for _, h := range []string{"api.example.com", "*.example.org", "[::1]", "10.0.0.1", "Upper.Example.NET."} {
		r, err := parseHostRule(h)
		if err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		rules = append(rules, r)
	}
	b := &request{allow: rules}
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://api.example.com/x", true},
		{"https://API.EXAMPLE.COM./x", true},
		{"https://api.example.com:8443/x", true},
		{"https://evil-api.example.com/x", false},
		{"https://api.example.com.evil.net/x", false},
		{"https://a.example.org/x", true},
		{"https://a.b.example.org/x", true},
		{"https://example.org/x", false},
		{"https://badexample.org/x", false},
		{"http://[::1]:8080/x", true},
		{"http://[0:0:0:0:0:0:0:1]/x", true},
		{"http://10.0.0.1/x", true},
		{"http://10.0.0.2/x", false},
		{"http://upper.example.net/", true},
		{"http://user:pass@evil.com@api.example.com/", true}, // the host is api.example.com
		{"http://api.example.com@evil.com/", false},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.allowed(u); (err == nil) != tc.ok {
				t.Errorf("allowed(%s) = %v, want ok %v", tc.url, err, tc.ok)
			}
		})
	}
}

// roundTripFunc is a RoundTripper from a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestRequestOutbound: with RouterOptions.Outbound every call, redirects
// included, goes through that transport and never to the network.
func TestRequestOutbound(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	stub := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.String())
		mu.Unlock()
		h := http.Header{"Content-Type": {"application/json"}}
		status := 200
		if r.URL.Path == "/moved" {
			h.Set("Location", "https://api.example/users/1")
			status = http.StatusFound
		}
		return &http.Response{StatusCode: status, Header: h, Request: r,
			Body: io.NopCloser(strings.NewReader(`{"name": "Ada"}`))}, nil
	})
	router := NewRouter(RouterOptions{Outbound: stub})
	e := &env{router: router, rt: enginetest.Runtime(t, testRegistry(t), engine.Options{Services: services(t, router)})}
	e.deploy(t, callFlow(t, map[string]any{"url": quote("https://api.example/moved"), "follow_redirects": true}), 1)
	w := e.do("POST", "/call", "", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"name":"Ada"`) {
		t.Fatalf("answer %d %s", w.Code, w.Body)
	}
	want := []string{"GET https://api.example/moved", "GET https://api.example/users/1"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("outbound saw %q, want %q", seen, want)
	}
}
