package flowtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Outgoing requests in a flow test: every request a flow makes (http.request,
// a remote JWKS fetch of jose.validate or jose.decrypt, a private_key_jwt
// client's jwks_uri) goes through one stub transport per case
// (flowd.Options.Outbound). It answers from the case's stubs, then the
// file's, the first that matches method and URL; a request no stub matches
// gets an error (the calling block's error port) and fails the step, naming
// method and URL. Nothing reaches the network.
//
//	step begins --> stub.begin(vars): the requests list is emptied
//	run --> http.request --> stub.RoundTrip --> matching stub's next answer
//	step ends --> unmatched? fail : check expect.requests against the list

// maxStubBody caps a recorded request body; a larger one is refused.
const maxStubBody = 1 << 20

// errNoStub is the error a request without a matching stub gets.
var errNoStub = errors.New("flow test: no stub for this request")

// madeRequest is one outgoing request as the stub saw it.
type madeRequest struct {
	method string
	url    string
	header http.Header
	body   []byte
}

// stubState is a Stub with its compiled pattern and call count.
type stubState struct {
	Stub
	re    *regexp.Regexp
	calls int
}

// stubTransport answers every outgoing request of one case.
type stubTransport struct {
	mu        sync.Mutex
	stubs     []*stubState
	vars      map[string]string // a copy of the case's variables, for {{name}}
	made      []madeRequest     // since the step began
	unmatched []string          // requests no stub answered, described
}

var _ http.RoundTripper = (*stubTransport)(nil)

// newStubTransport compiles the case's stubs, then the file's (checked by
// Parse, so a pattern compiles).
func newStubTransport(caseStubs, fileStubs []Stub) *stubTransport {
	t := &stubTransport{}
	for _, list := range [][]Stub{caseStubs, fileStubs} {
		for _, s := range list {
			st := &stubState{Stub: s}
			if s.URLRegex != "" {
				st.re = regexp.MustCompile(`^(?:` + s.URLRegex + `)$`)
			}
			t.stubs = append(t.stubs, st)
		}
	}
	return t
}

// begin starts a step: the request list empties, and {{name}} in stubs
// expands with vars from now on.
func (t *stubTransport) begin(vars map[string]string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.vars = maps.Clone(vars)
	t.made, t.unmatched = nil, nil
}

// taken returns the requests made and those no stub answered since begin.
func (t *stubTransport) taken() (made []madeRequest, unmatched []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.made, t.unmatched
}

// RoundTrip implements http.RoundTripper.
func (t *stubTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(req.Body, maxStubBody+1))
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("flow test: reading the request body: %w", err)
		}
		if len(body) > maxStubBody {
			return nil, fmt.Errorf("flow test: request body larger than %d bytes", maxStubBody)
		}
	}
	u := req.URL.String()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.made = append(t.made, madeRequest{method: req.Method, url: u, header: req.Header.Clone(), body: body})
	for _, s := range t.stubs {
		if !s.matches(req.Method, u, t.vars) {
			continue
		}
		s.calls++
		r := s.Respond
		if len(s.Sequence) > 0 {
			r = &s.Sequence[min(s.calls, len(s.Sequence))-1]
		}
		resp, err := r.response(req, t.vars)
		if err != nil && r.Error == "" {
			// The stub itself is broken (say, a variable not saved yet):
			// the step fails with it, as with a request no stub matched.
			t.unmatched = append(t.unmatched, fmt.Sprintf("stub %s could not answer %s %s: %v", s.label(), req.Method, u, err))
		}
		return resp, err
	}
	t.unmatched = append(t.unmatched, "no stub matched "+req.Method+" "+u)
	// The URL stays out of the error, as http.request keeps paths and
	// queries out of its errors (and so out of traces); the step's
	// failure names it.
	return nil, errNoStub
}

func (s *stubState) label() string {
	if s.Name != "" {
		return strconv.Quote(s.Name)
	}
	if s.URL != "" {
		return s.method() + " " + s.URL
	}
	return s.method() + " ~" + s.URLRegex
}

func (s *Stub) method() string {
	if s.Method == "" {
		return http.MethodGet
	}
	return strings.ToUpper(s.Method)
}

// matches reports whether the stub answers method and URL u. A URL with
// a {{name}} not saved yet matches nothing.
func (s *stubState) matches(method, u string, vars map[string]string) bool {
	if m := s.method(); m != "*" && m != method {
		return false
	}
	if s.re != nil {
		return s.re.MatchString(u)
	}
	want, err := expand(s.URL, vars)
	return err == nil && want == u
}

// response builds the answer; {{name}} expands in headers and bodies.
func (r *StubResponse) response(req *http.Request, vars map[string]string) (*http.Response, error) {
	if r.Error != "" {
		return nil, errors.New(r.Error)
	}
	h := http.Header{}
	for k, v := range r.Headers {
		x, err := expand(v, vars)
		if err != nil {
			return nil, fmt.Errorf("flow test: stub header %s: %w", k, err)
		}
		h.Set(k, x)
	}
	var body []byte
	switch {
	case r.JSON != nil:
		x, err := expandAny(r.JSON, vars)
		if err != nil {
			return nil, fmt.Errorf("flow test: stub json: %w", err)
		}
		if body, err = json.Marshal(x); err != nil {
			return nil, fmt.Errorf("flow test: stub json: %w", err)
		}
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", "application/json")
		}
	case r.Body != "":
		x, err := expand(r.Body, vars)
		if err != nil {
			return nil, fmt.Errorf("flow test: stub body: %w", err)
		}
		body = []byte(x)
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", "text/plain; charset=utf-8")
		}
	}
	status := r.Status
	if status == 0 {
		status = http.StatusOK
	}
	return &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, Request: req,
		ContentLength: int64(len(body)), Body: io.NopCloser(bytes.NewReader(body))}, nil
}

// decodedBody is a request body for expect.requests json paths: JSON, or a
// form's fields (first value each) as an object.
func (m *madeRequest) decodedBody() (any, bool) {
	ct := m.header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(strings.ToLower(ct))
	if ct == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(m.body))
		if err != nil {
			return nil, false
		}
		out := map[string]any{}
		for k, vs := range form {
			out[k] = vs[0]
		}
		return out, true
	}
	var v any
	if json.Unmarshal(m.body, &v) != nil {
		return nil, false
	}
	return v, true
}

// stubNode names the node whose outgoing request no stub answered: the
// step of a run of this step whose error says so.
func (e *env) stubNode(out *outcome) string {
	for _, trs := range out.runs {
		for _, tr := range trs {
			for _, st := range tr.Steps {
				if strings.Contains(st.Error, errNoStub.Error()) || strings.Contains(st.Error, "flow test: stub") {
					return st.Node
				}
			}
		}
	}
	return ""
}

// checkRequests compares the step's outgoing requests with want (nil: not
// checked).
func (e *env) checkRequests(n int, want []RequestExpect, made []madeRequest) *Failure {
	if want == nil {
		return nil
	}
	if len(made) != len(want) {
		var got []string
		for _, m := range made {
			got = append(got, m.method+" "+m.url)
		}
		desc := "none"
		if len(got) > 0 {
			desc = strconv.Itoa(len(got)) + ": " + strings.Join(got, ", ")
		}
		return e.fail(n, "", fmt.Sprintf("%d outgoing requests", len(want)), desc)
	}
	for i, w := range want {
		m := made[i]
		where := fmt.Sprintf("request %d (%s %s): ", i+1, m.method, m.url)
		if w.Method != "" && w.Method != m.method {
			return e.fail(n, "", where+"method "+w.Method, m.method)
		}
		if w.URL != nil {
			wu := w.URL
			if str, ok := wu.(string); ok {
				x, err := expand(str, e.vars)
				if err != nil {
					return e.fail(n, "", where+"url to expand", err.Error())
				}
				wu = x
			}
			if ok, desc := match(wu, m.url, true, e.vars); !ok {
				return e.fail(n, "", where+"url "+short(w.URL), desc)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(w.Headers)) {
			hw := w.Headers[name]
			if str, isStr := hw.(string); isStr {
				x, err := expand(str, e.vars)
				if err != nil {
					return e.fail(n, "", where+"header "+name+" to expand", err.Error())
				}
				hw = x
			}
			if hw == "" {
				hw = map[string]any{"$exists": false}
			}
			got := m.header.Get(name)
			if ok, desc := match(hw, got, got != "", e.vars); !ok {
				return e.fail(n, "", fmt.Sprintf("%sheader %s: %s", where, name, short(w.Headers[name])), desc)
			}
		}
		if w.BodyContains != "" {
			x, err := expand(w.BodyContains, e.vars)
			if err != nil {
				return e.fail(n, "", where+"body_contains to expand", err.Error())
			}
			if !strings.Contains(string(m.body), x) {
				return e.fail(n, "", fmt.Sprintf("%sa body containing %q", where, x), clip(string(m.body)))
			}
		}
		if w.JSON != nil {
			body, ok := m.decodedBody()
			if !ok {
				return e.fail(n, "", where+"a JSON or form body", clip(string(m.body)))
			}
			for _, path := range slices.Sorted(maps.Keys(w.JSON)) {
				got, found := lookup(body, path)
				if ok, desc := match(w.JSON[path], got, found, e.vars); !ok {
					return e.fail(n, "", fmt.Sprintf("%sjson %s = %s", where, pathName(path), short(w.JSON[path])), desc)
				}
			}
		}
	}
	return nil
}
