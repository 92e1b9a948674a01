package flowtest

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func runDir(t *testing.T, dir string) []Result {
	t.Helper()
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s.Run(t.Context(), Options{})
}

// TestBrokenFlowFails: a flow that answers the wrong thing fails its tests
// with a message naming the file, the case, the node and the expectation.
func TestBrokenFlowFails(t *testing.T) {
	results := runDir(t, "testdata/broken")
	tests := []struct {
		name    string
		failed  bool
		message string
	}{
		{"greets by name", true, `hello.test.json: case "greets by name": step 1: node "reply": expected json message = "hello, ada", got "bye"`},
		{"greets the world without a name", true, `hello.test.json: case "greets the world without a name": step 1: node "reply": expected json message = "hello, world", got "bye"`},
		{"answers only GET", false, ""},
	}
	if len(results) != len(tests) {
		t.Fatalf("%d results, want %d", len(results), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := results[i]
			if r.Case != tt.name {
				t.Fatalf("case %q, want %q", r.Case, tt.name)
			}
			if (r.Failure != nil) != tt.failed {
				t.Fatalf("failure %v, want failed=%v", r.Failure, tt.failed)
			}
			if tt.failed {
				if got := r.Failure.Error(); got != tt.message {
					t.Errorf("message\n got %s\nwant %s", got, tt.message)
				}
				if r.Failure.Node != "reply" || r.Failure.Step != 1 {
					t.Errorf("node %q step %d, want reply, 1", r.Failure.Node, r.Failure.Step)
				}
			}
		})
	}
}

// TestKeyDeadline: inside one case, the frozen clock advances past hourly
// rotations; a token keeps validating after its key retires, until the
// key's deadline, and fails with unknown_kid after it.
func TestKeyDeadline(t *testing.T) {
	results := runDir(t, "testdata/deadline")
	if len(results) != 1 {
		t.Fatalf("%d results", len(results))
	}
	if f := results[0].Failure; f != nil {
		t.Fatal(f)
	}
}

// TestExpectationFailures: each kind of expectation fails with its own
// message when the flow does something else.
func TestExpectationFailures(t *testing.T) {
	tests := []struct {
		name   string
		expect string
		want   string // the failure message after "step 1: "
	}{
		{"status", `{"status": 201}`, `node "reply": expected status 201, got 200 (body "{\"message\":\"bye\"}")`},
		{"header", `{"headers": {"Content-Type": "text/plain"}}`, `node "reply": expected header Content-Type: "text/plain", got "application/json"`},
		{"header absent", `{"headers": {"Content-Type": ""}}`, `node "reply": expected header Content-Type: "", got "application/json"`},
		{"path", `{"path": ["in", "reply"]}`, `node "reply": expected path in > reply, got in > greet > reply`},
		{"port", `{"ports": {"greet": "error"}}`, `node "greet": expected port "error", got "out"`},
		{"port of a node not run", `{"ports": {"nope": "out"}}`, `node "nope": expected port "out", got "-"`},
		{"message", `{"message": {"payload.message": "hi"}}`, `node "reply": expected message payload.message = "hi", got "bye"`},
		{"json missing", `{"json": {"other": {"$exists": true}}}`, `node "reply": expected json other = {"$exists":true}, got nothing there`},
		{"regex", `{"json": {"message": {"$regex": "^hello"}}}`, `node "reply": expected json message = {"$regex":"^hello"}, got "bye"`},
		{"not", `{"json": {"message": {"$not": "bye"}}}`, `node "reply": expected json message = {"$not":"bye"}, got "bye"`},
		{"body", `{"body_contains": "hello"}`, `node "reply": expected a body containing "hello", got "{\"message\":\"bye\"}"`},
		{"error", `{"error": "boom"}`, `node "reply": expected the run to fail with "boom", got success`},
		{"passes", `{"status": 200, "json": {"message": "bye"}, "path": ["in", "greet", "reply"]}`, ""},
	}
	s, err := Load("testdata/broken")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runStep1(t, s, "c", `{"flows": ["hello"], "cases": [{"name": "c", "steps": [{"http": {"path": "/hello"}, "expect": `+tt.expect+`}]}]}`, tt.want)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"not json", `{`, "unexpected EOF"},
		{"unknown member", `{"flows": ["a"], "cases": [], "extra": 1}`, `unknown field "extra"`},
		{"no flows", `{"cases": [{"name": "c", "steps": [{"advance": "1h"}]}]}`, "flows: name at least"},
		{"no cases", `{"flows": ["a"]}`, "no test cases"},
		{"unnamed case", `{"flows": ["a"], "cases": [{"steps": [{"advance": "1h"}]}]}`, "missing name"},
		{"duplicate case", `{"flows": ["a"], "cases": [{"name": "c", "steps": [{"advance": "1h"}]}, {"name": "c", "steps": [{"advance": "1h"}]}]}`, `duplicate case name "c"`},
		{"bad clock", `{"flows": ["a"], "cases": [{"name": "c", "clock": "today", "steps": [{"advance": "1h"}]}]}`, "clock"},
		{"no steps", `{"flows": ["a"], "cases": [{"name": "c"}]}`, "no steps"},
		{"two actions", `{"flows": ["a"], "cases": [{"name": "c", "steps": [{"advance": "1h", "run": {}}]}]}`, "exactly one of"},
		{"bad advance", `{"flows": ["a"], "cases": [{"name": "c", "steps": [{"advance": "-1h"}]}]}`, "positive duration"},
		{"huge advance", `{"flows": ["a"], "cases": [{"name": "c", "steps": [{"advance": "10000h"}]}]}`, "at most"},
		{"relative path", `{"flows": ["a"], "cases": [{"name": "c", "steps": [{"http": {"path": "x"}}]}]}`, "must start with /"},
		{"two bodies", `{"flows": ["a"], "cases": [{"name": "c", "steps": [{"http": {"path": "/", "body": "x", "form": {}}}]}]}`, "at most one of"},
		{"bad basic auth", `{"flows": ["a"], "cases": [{"name": "c", "steps": [{"http": {"path": "/", "basic_auth": ["x"]}}]}]}`, "basic_auth"},
		{"bad save", `{"flows": ["a"], "cases": [{"name": "c", "steps": [{"http": {"path": "/"}, "save": {"x": "cookie.a"}}]}]}`, "source"},
		{"bad var name", `{"flows": ["a"], "cases": [{"name": "c", "steps": [{"http": {"path": "/"}, "save": {"a b": "status"}}]}]}`, "bad variable name"},
		{"advance expects a status", `{"flows": ["a"], "cases": [{"name": "c", "steps": [{"advance": "1h", "expect": {"status": 200}}]}]}`, "only checks ticks"},
		{"stub without url", `{"flows": ["a"], "stubs": [{"respond": {}}], "cases": [{"name": "c", "steps": [{"advance": "1h"}]}]}`, "stubs[0]: give exactly one of url and url_regex"},
		{"stub with url and regex", `{"flows": ["a"], "cases": [{"name": "c", "stubs": [{"url": "https://a.example/", "url_regex": "x", "respond": {}}], "steps": [{"advance": "1h"}]}]}`, `case "c": stubs[0]: give exactly one of url and url_regex`},
		{"stub without answer", `{"flows": ["a"], "stubs": [{"url": "https://a.example/"}], "cases": [{"name": "c", "steps": [{"advance": "1h"}]}]}`, "exactly one of respond and sequence"},
		{"stub with both answers", `{"flows": ["a"], "stubs": [{"url": "https://a.example/", "respond": {}, "sequence": [{}]}], "cases": [{"name": "c", "steps": [{"advance": "1h"}]}]}`, "exactly one of respond and sequence"},
		{"stub relative url", `{"flows": ["a"], "stubs": [{"url": "/x", "respond": {}}], "cases": [{"name": "c", "steps": [{"advance": "1h"}]}]}`, "an http or https URL with a host"},
		{"stub bad regex", `{"flows": ["a"], "stubs": [{"url_regex": "(", "respond": {}}], "cases": [{"name": "c", "steps": [{"advance": "1h"}]}]}`, "url_regex"},
		{"stub bad method", `{"flows": ["a"], "stubs": [{"method": "GE T", "url": "https://a.example/", "respond": {}}], "cases": [{"name": "c", "steps": [{"advance": "1h"}]}]}`, "not an HTTP method"},
		{"stub bad status", `{"flows": ["a"], "stubs": [{"url": "https://a.example/", "sequence": [{}, {"status": 700}]}], "cases": [{"name": "c", "steps": [{"advance": "1h"}]}]}`, "sequence[1]: status 700"},
		{"stub json and body", `{"flows": ["a"], "stubs": [{"url": "https://a.example/", "respond": {"json": 1, "body": "x"}}], "cases": [{"name": "c", "steps": [{"advance": "1h"}]}]}`, "at most one of json and body"},
		{"stub error and status", `{"flows": ["a"], "stubs": [{"url": "https://a.example/", "respond": {"error": "refused", "status": 500}}], "cases": [{"name": "c", "steps": [{"advance": "1h"}]}]}`, "an error answer has nothing else"},
		{"stub bad header", `{"flows": ["a"], "stubs": [{"url": "https://a.example/", "respond": {"headers": {"a b": "x"}}}], "cases": [{"name": "c", "steps": [{"advance": "1h"}]}]}`, "not a header name"},
		{"lower case request method", `{"flows": ["a"], "cases": [{"name": "c", "steps": [{"advance": "1h", "expect": {"requests": [{"method": "get"}]}}]}]}`, "must be upper case"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if !errors.Is(err, ErrBadFile) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want ErrBadFile with %q", err, tt.want)
			}
		})
	}
}

// TestSetupFailures: a test naming a missing flow fails at set-up with the
// reason.
func TestSetupFailures(t *testing.T) {
	s, err := Load("testdata/broken")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse([]byte(`{"flows": ["missing"], "cases": [{"name": "c", "steps": [{"advance": "1h"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r := s.RunCase(t.Context(), Options{}, f, 0)
	if r.Failure == nil || r.Failure.Step != 0 || !strings.Contains(r.Failure.Got, `flow "missing": no flow document`) {
		t.Fatalf("failure %v", r.Failure)
	}
}

func TestReports(t *testing.T) {
	results := runDir(t, "testdata/broken")
	t.Run("tap", func(t *testing.T) {
		var b bytes.Buffer
		if err := WriteTAP(&b, results); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, want := range []string{"TAP version 13\n1..3\n", "not ok 1 - hello.test.json: greets by name\n",
			"ok 3 - hello.test.json: answers only GET\n", `  node: "reply"`, "# 1 passed, 2 failed\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("TAP lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("junit", func(t *testing.T) {
		var b bytes.Buffer
		if err := WriteJUnit(&b, results); err != nil {
			t.Fatal(err)
		}
		var doc junitSuites
		if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
			t.Fatalf("not XML: %v\n%s", err, b.String())
		}
		if doc.Tests != 3 || doc.Failures != 2 || len(doc.Suites) != 1 || len(doc.Suites[0].Cases) != 3 {
			t.Fatalf("counts: %+v", doc)
		}
		c := doc.Suites[0].Cases[0]
		if c.Name != "greets by name" || c.Failure == nil || !strings.Contains(c.Failure.Message, `node "reply"`) {
			t.Errorf("first case %+v", c)
		}
		if doc.Suites[0].Cases[2].Failure != nil {
			t.Error("passing case has a failure")
		}
	})
}

func TestLookupAndMatch(t *testing.T) {
	doc := map[string]any{"a": map[string]any{"b": []any{1.0, map[string]any{"c": "x"}}}}
	tests := []struct {
		name  string
		path  string
		want  any
		match bool
	}{
		{"nested", "a.b[1].c", "x", true},
		{"index", "a.b[0]", 1, true},
		{"wrong value", "a.b[0]", 2, false},
		{"out of range", "a.b[5]", map[string]any{"$exists": false}, true},
		{"exists", "a.b", map[string]any{"$exists": true}, true},
		{"contains", "a.b[1].c", map[string]any{"$contains": "x"}, true},
		{"var", "a.b[1].c", map[string]any{"$var": "v"}, true},
		{"unknown var", "a.b[1].c", map[string]any{"$var": "nope"}, false},
		{"not", "a.b[1].c", map[string]any{"$not": "y"}, true},
		{"bad index", "a.b[x]", map[string]any{"$exists": false}, true},
		{"whole", "", map[string]any{"$exists": true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := lookup(doc, tt.path)
			if ok, desc := match(tt.want, got, found, map[string]string{"v": "x"}); ok != tt.match {
				t.Errorf("match %v (%s), want %v", ok, desc, tt.match)
			}
		})
	}
}

// TestClockSleep: a wait on the frozen clock moves it at once, and a
// cancelled context stops it without moving it.
func TestClockSleep(t *testing.T) {
	c := NewClock(DefaultClock)
	if err := c.Sleep(t.Context(), 90*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := c.Now(); !got.Equal(DefaultClock.Add(90 * time.Second)) {
		t.Errorf("after sleep: %v", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled sleep: %v", err)
	}
	if got := c.Now(); !got.Equal(DefaultClock.Add(90 * time.Second)) {
		t.Errorf("a cancelled sleep moved the clock: %v", got)
	}
}

// TestErrorFlow: expect.flow picks the run of another flow a step caused,
// here the global catch run of an error flow.
func TestErrorFlow(t *testing.T) {
	results := runDir(t, "testdata/errorflow")
	if len(results) != 1 || results[0].Failure != nil {
		t.Fatalf("%+v", results)
	}
}

// FuzzParse: any bytes give a file or an ErrBadFile, never a panic.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{`{}`, `{"flows": ["a"], "cases": [{"name": "c", "steps": [{"advance": "1h"}]}]}`,
		`{"flows": ["a"], "cases": [{"name": "c", "steps": [{"http": {"path": "/x", "form": {"a": "{{v}}"}}, "save": {"v": "json.a[0]"}}]}]}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := Parse(data); err != nil && !errors.Is(err, ErrBadFile) {
			t.Fatalf("error %v is not ErrBadFile", err)
		}
	})
}

// FuzzLookup: any path on any JSON value gives a value or nothing.
func FuzzLookup(f *testing.F) {
	f.Add(`{"a": [1, {"b": 2}]}`, "a[1].b")
	f.Add(`[[1]]`, "[0][0]")
	f.Fuzz(func(t *testing.T, doc, path string) {
		var v any
		if json.Unmarshal([]byte(doc), &v) != nil {
			return
		}
		lookup(v, path)
	})
}

// TestStubs: outgoing requests answered by stubs: an upstream API (success,
// a 500, a sequence, a network error, the requests as made) and a remote
// JWKS refetched after a key rotation the frozen clock advances past.
func TestStubs(t *testing.T) {
	results := runDir(t, "testdata/stubs")
	if len(results) != 6 {
		t.Fatalf("%d results, want 6", len(results))
	}
	for _, r := range results {
		t.Run(r.Case, func(t *testing.T) {
			if r.Failure != nil {
				t.Fatal(r.Failure)
			}
		})
	}
}

// TestStubFailures: a request no stub answers, and each kind of request
// expectation, fail the case with a message naming method and URL; the
// reports carry it.
func TestStubFailures(t *testing.T) {
	const user1 = `{"url": "https://api.example/users/1", "respond": {"json": {"name": "Ada"}}}`
	const audit = `{"method": "POST", "url": "https://api.example/audit", "respond": {"status": 204}}`
	tests := []struct {
		name   string
		stubs  string
		expect string
		want   string // the failure message after "step 1: "
	}{
		{"no stub", `[]`, `{"status": 200}`,
			`node "fetch": expected a stub for every outgoing request, got no stub matched GET https://api.example/users/1`},
		{"second request without a stub", `[` + user1 + `]`, `{"status": 200}`,
			`node "audit": expected a stub for every outgoing request, got no stub matched POST https://api.example/audit`},
		{"method decides", `[` + user1 + `, {"url": "https://api.example/audit", "respond": {}}]`, `{}`,
			`node "audit": expected a stub for every outgoing request, got no stub matched POST https://api.example/audit`},
		{"a stub's variable not saved", `[{"url": "https://api.example/users/1", "respond": {"body": "{{nope}}"}}]`, `{}`,
			`node "fetch": expected a stub for every outgoing request, got stub GET https://api.example/users/1 could not answer GET https://api.example/users/1: flow test: stub body: no saved variable "nope"`},
		{"request count", `[` + user1 + `, ` + audit + `]`, `{"requests": []}`,
			`expected 0 outgoing requests, got 2: GET https://api.example/users/1, POST https://api.example/audit`},
		{"request method", `[` + user1 + `, ` + audit + `]`, `{"requests": [{}, {"method": "PUT"}]}`,
			`expected request 2 (POST https://api.example/audit): method PUT, got POST`},
		{"request url", `[` + user1 + `, ` + audit + `]`, `{"requests": [{"url": "https://api.example/users/2"}, {}]}`,
			`expected request 1 (GET https://api.example/users/1): url "https://api.example/users/2", got "https://api.example/users/1"`},
		{"request header", `[` + user1 + `, ` + audit + `]`, `{"requests": [{"headers": {"Authorization": "Bearer other"}}, {}]}`,
			`expected request 1 (GET https://api.example/users/1): header Authorization: "Bearer other", got "Bearer test-token"`},
		{"request body json", `[` + user1 + `, ` + audit + `]`, `{"requests": [{}, {"json": {"user": "2"}}]}`,
			`expected request 2 (POST https://api.example/audit): json user = "2", got "1"`},
		{"request without a body", `[` + user1 + `, ` + audit + `]`, `{"requests": [{"json": {"user": "1"}}, {}]}`,
			`expected request 1 (GET https://api.example/users/1): a JSON or form body, got ""`},
		{"passes", `[` + user1 + `, ` + audit + `]`, `{"status": 200, "requests": [{"method": "GET"}, {"method": "POST", "json": {"action": "read"}, "body_contains": "\"user\""}]}`, ""},
	}
	s, err := Load("testdata/stubs")
	if err != nil {
		t.Fatal(err)
	}
	var results []Result
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			results = append(results, runStep1(t, s, tt.name, `{"flows": ["upstream"], "cases": [{"name": "`+tt.name+`", "stubs": `+tt.stubs+
				`, "steps": [{"http": {"path": "/profile/1"}, "expect": `+tt.expect+`}]}]}`, tt.want))
		})
	}
	t.Run("reports", func(t *testing.T) {
		if len(results) != len(tests) {
			t.Skip("a case above did not run")
		}
		var tap, junit bytes.Buffer
		if err := WriteTAP(&tap, results); err != nil {
			t.Fatal(err)
		}
		if err := WriteJUnit(&junit, results); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"not ok 1 - x.test.json: no stub\n", `  node: "fetch"`,
			`  got: "no stub matched GET https://api.example/users/1"`, fmt.Sprintf("ok %d - x.test.json: passes\n", len(tests)),
			fmt.Sprintf("# 1 passed, %d failed\n", len(tests)-1)} {
			if !strings.Contains(tap.String(), want) {
				t.Errorf("TAP lacks %q:\n%s", want, tap.String())
			}
		}
		var doc junitSuites
		if err := xml.Unmarshal(junit.Bytes(), &doc); err != nil {
			t.Fatalf("not XML: %v", err)
		}
		if doc.Tests != len(tests) || doc.Failures != len(tests)-1 {
			t.Fatalf("junit counts %d tests %d failures", doc.Tests, doc.Failures)
		}
		if c := doc.Suites[0].Cases[0]; c.Failure == nil || !strings.Contains(c.Failure.Message, "no stub matched GET https://api.example/users/1") {
			t.Errorf("junit first case %+v", c)
		}
	})
}

// runStep1 runs the first case of a test file (doc, read as x.test.json)
// named name, whose step 1 must fail with want ("" must pass), and returns
// its result.
func runStep1(t *testing.T, s *Suite, name, doc, want string) Result {
	t.Helper()
	f, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	f.Path = "x.test.json"
	r := s.RunCase(t.Context(), Options{}, f, 0)
	switch {
	case want == "" && r.Failure != nil:
		t.Fatalf("failed: %v", r.Failure)
	case want == "":
	case r.Failure == nil:
		t.Fatal("passed; want a failure")
	default:
		want = `x.test.json: case "` + name + `": step 1: ` + want
		if got := r.Failure.Error(); got != want {
			t.Errorf("\n got %s\nwant %s", got, want)
		}
	}
	return r
}
