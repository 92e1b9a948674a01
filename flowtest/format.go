package flowtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// Suffix is how test files end.
const Suffix = ".test.json"

// MaxFileBytes caps a test file.
const MaxFileBytes = 4 << 20

// DefaultClock is where a case's clock starts unless it says otherwise.
var DefaultClock = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// ErrBadFile is wrapped by every error about a test file's content.
var ErrBadFile = errors.New("bad flow test file")

// File is one test file.
type File struct {
	// Path is where the file was read from (not part of the JSON).
	Path string `json:"-"`
	// Flows are the ids of the flows deployed for every case, looked up
	// among the flow documents of the folder tree; the first is the flow
	// under test (the default of run.flow).
	Flows []string `json:"flows"`
	// Issuer is the OAuth/OpenID issuer (default http://flowd.test).
	Issuer   string   `json:"issuer,omitempty"`
	Fixtures Fixtures `json:"fixtures"`
	// Stubs answer the flows' outgoing requests in every case (after the
	// case's own stubs).
	Stubs []Stub `json:"stubs,omitempty"`
	Cases []Case `json:"cases"`
}

// Stub answers the outgoing requests (http.request, remote JWKS fetches)
// that match its method and URL. Exactly one of URL and URLRegex, and of
// Respond and Sequence.
type Stub struct {
	Name string `json:"name,omitempty"`
	// Method is the request method (default GET; "*" for any).
	Method string `json:"method,omitempty"`
	// URL is the exact URL, query included ({{name}} expands; a variable
	// not saved yet matches nothing).
	URL string `json:"url,omitempty"`
	// URLRegex is an RE2 pattern the whole URL must match.
	URLRegex string `json:"url_regex,omitempty"`
	// Respond answers every matching call.
	Respond *StubResponse `json:"respond,omitempty"`
	// Sequence answers the first matching call with its first entry, the
	// second with its second, and so on; the last one repeats.
	Sequence []StubResponse `json:"sequence,omitempty"`
}

// StubResponse is one answer. At most one of JSON and Body; Error alone.
type StubResponse struct {
	Status  int               `json:"status,omitempty"` // default 200
	Headers map[string]string `json:"headers,omitempty"`
	// JSON is the body as JSON (Content-Type application/json unless
	// Headers say otherwise); Body is text (text/plain by default).
	// {{name}} expands in both and in header values.
	JSON any    `json:"json,omitempty"`
	Body string `json:"body,omitempty"`
	// Error makes the call fail as a network error with this text (the
	// calling block's error port), e.g. "connection refused".
	Error string `json:"error,omitempty"`
}

// Fixtures are created in each case's fresh store before the flows deploy.
type Fixtures struct {
	Keysets []KeysetFixture `json:"keysets,omitempty"`
	Clients []ClientFixture `json:"clients,omitempty"`
	Users   []UserFixture   `json:"users,omitempty"`
}

// KeysetFixture makes a keyset with an active and a next key per alg.
type KeysetFixture struct {
	Name string   `json:"name"`
	Algs []string `json:"algs"`
}

// ClientFixture registers an OAuth client; Secret is its plain secret
// (a test value: never a real one).
type ClientFixture struct {
	ID                     string   `json:"id"`
	Secret                 string   `json:"secret,omitempty"`
	Public                 bool     `json:"public,omitempty"`
	Scopes                 []string `json:"scopes,omitempty"`
	Audiences              []string `json:"audiences,omitempty"`
	RedirectURIs           []string `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes             []string `json:"grant_types,omitempty"`
	// TokenEndpointAuthMethod and JWKSURI register a private_key_jwt
	// client whose keys are fetched (through the case's stubs).
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	JWKSURI                 string `json:"jwks_uri,omitempty"`
}

// UserFixture registers a person who signs in.
type UserFixture struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Name          string `json:"name,omitempty"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified,omitempty"`
}

// Case is one test case: a fresh flowd, then its steps in order.
type Case struct {
	Name string `json:"name"`
	// Clock is the frozen start time (RFC 3339; default DefaultClock).
	Clock string `json:"clock,omitempty"`
	// Stubs answer the flows' outgoing requests, before the file's stubs.
	Stubs []Stub `json:"stubs,omitempty"`
	Steps []Step `json:"steps"`
}

// Step does one thing (http, run or advance), then checks Expect, then
// saves values for later steps ({{name}} in strings of later steps).
type Step struct {
	Name string `json:"name,omitempty"`
	// HTTP sends a request to the flows' endpoints.
	HTTP *HTTPInput `json:"http,omitempty"`
	// Run starts a run from a trigger node: a manual input, a cron tick
	// (a schedule.cron node fires as the scheduler would, at the frozen
	// time), or any other trigger with Input as its message.
	Run *RunInput `json:"run,omitempty"`
	// Advance moves the frozen clock forward (a Go duration, e.g. "25h"),
	// firing on the way every schedule tick that falls due, each at its
	// own time, in order.
	Advance string  `json:"advance,omitempty"`
	Expect  *Expect `json:"expect,omitempty"`
	// Save maps a variable name to a source: "json.<path>" (response
	// body), "header.<Name>", "status", "body", "msg.<path>" (the run's
	// final message).
	Save map[string]string `json:"save,omitempty"`
}

// HTTPInput is a request to the flows' endpoints. At most one of Form,
// JSON and Body.
type HTTPInput struct {
	Method  string            `json:"method,omitempty"` // default GET
	Path    string            `json:"path"`             // with the query, e.g. "/hello?name=ada"
	Headers map[string]string `json:"headers,omitempty"`
	// BasicAuth is [user, password] for an Authorization: Basic header.
	BasicAuth []string          `json:"basic_auth,omitempty"`
	Form      map[string]string `json:"form,omitempty"`
	JSON      any               `json:"json,omitempty"`
	Body      string            `json:"body,omitempty"`
}

// RunInput starts a run from a trigger node.
type RunInput struct {
	Flow  string         `json:"flow,omitempty"` // default: the flow under test
	Node  string         `json:"node,omitempty"` // default: the flow's only (or manual) trigger
	Input map[string]any `json:"input,omitempty"`
}

// Expect is what a step's result must be. Every member is optional.
type Expect struct {
	// Response (http steps).
	Status int `json:"status,omitempty"`
	// Headers maps header names to exact values ("" means absent, {{name}}
	// expands) or matchers as in JSON.
	Headers map[string]any `json:"headers,omitempty"`
	// JSON maps paths in the response body ("a.b[0].c", "" for the whole
	// body) to values or matchers ({"$exists": bool}, {"$regex": "..."},
	// {"$contains": "..."}, {"$var": "name"}, {"$not": value or matcher}).
	JSON map[string]any `json:"json,omitempty"`
	// BodyContains is a text the response body must contain, and
	// BodyExcludes one it must not ({{name}} expands in both).
	BodyContains string `json:"body_contains,omitempty"`
	BodyExcludes string `json:"body_excludes,omitempty"`

	// Run (http and run steps). Flow picks which flow's run the
	// expectations below are about (default: the run the step started).
	Flow string `json:"flow,omitempty"`
	// Path is every node the run executed, in order, trigger first.
	Path []string `json:"path,omitempty"`
	// Ports maps node ids to the port the node sent its message out of
	// ("" for a node that ended its branch, "-" for a node not executed).
	Ports map[string]string `json:"ports,omitempty"`
	// Message maps paths in the run's final message (its last step, as
	// the trace records it: tokens and secrets redacted) to values or
	// matchers.
	Message map[string]any `json:"message,omitempty"`
	// Error: the run must fail with an error containing this text. Without
	// it a failed run fails the step.
	Error string `json:"error,omitempty"`
	// Ticks (advance steps) is how many schedule ticks fired.
	Ticks *int `json:"ticks,omitempty"`
	// Requests are the outgoing requests the step made, in order: as many
	// as listed ([] for none), each as described. Without it they are
	// not checked (but each one needs a stub).
	Requests []RequestExpect `json:"requests,omitempty"`
}

// RequestExpect describes one outgoing request. Every member is optional.
type RequestExpect struct {
	Method string `json:"method,omitempty"`
	// URL is the exact URL ({{name}} expands) or a matcher.
	URL any `json:"url,omitempty"`
	// Headers maps header names to values or matchers ("" means absent).
	Headers map[string]any `json:"headers,omitempty"`
	// JSON maps paths in the request body (JSON, or a form's fields) to
	// values or matchers.
	JSON map[string]any `json:"json,omitempty"`
	// BodyContains is a text the request body must contain.
	BodyContains string `json:"body_contains,omitempty"`
}

// ReadFile reads and checks one test file.
func ReadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.Path = path
	return f, nil
}

// Parse decodes a test file strictly (unknown members are errors) and
// checks its structure.
func Parse(data []byte) (*File, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBadFile, MaxFileBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the JSON value", ErrBadFile)
	}
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFile, err)
	}
	return &f, nil
}

func (f *File) check() error {
	if len(f.Flows) == 0 {
		return errors.New("flows: name at least the flow under test")
	}
	if len(f.Cases) == 0 {
		return errors.New("cases: no test cases")
	}
	if len(f.Stubs) > maxStubs {
		return fmt.Errorf("stubs: more than %d", maxStubs)
	}
	for i := range f.Stubs {
		if err := f.Stubs[i].check(); err != nil {
			return fmt.Errorf("stubs[%d]: %v", i, err)
		}
	}
	names := map[string]bool{}
	for i, c := range f.Cases {
		where := fmt.Sprintf("cases[%d]", i)
		if strings.TrimSpace(c.Name) == "" {
			return fmt.Errorf("%s: missing name", where)
		}
		if names[c.Name] {
			return fmt.Errorf("%s: duplicate case name %q", where, c.Name)
		}
		names[c.Name] = true
		if c.Clock != "" {
			if _, err := time.Parse(time.RFC3339, c.Clock); err != nil {
				return fmt.Errorf("case %q: clock: %v", c.Name, err)
			}
		}
		if len(c.Steps) == 0 {
			return fmt.Errorf("case %q: no steps", c.Name)
		}
		if len(c.Stubs) > maxStubs {
			return fmt.Errorf("case %q: stubs: more than %d", c.Name, maxStubs)
		}
		for j := range c.Stubs {
			if err := c.Stubs[j].check(); err != nil {
				return fmt.Errorf("case %q: stubs[%d]: %v", c.Name, j, err)
			}
		}
		for j, s := range c.Steps {
			if err := s.check(); err != nil {
				return fmt.Errorf("case %q: steps[%d]: %v", c.Name, j, err)
			}
		}
	}
	return nil
}

func (s *Step) check() error {
	n := 0
	if s.HTTP != nil {
		n++
		if !strings.HasPrefix(s.HTTP.Path, "/") {
			return errors.New("http.path must start with /")
		}
		bodies := 0
		if s.HTTP.Form != nil {
			bodies++
		}
		if s.HTTP.JSON != nil {
			bodies++
		}
		if s.HTTP.Body != "" {
			bodies++
		}
		if bodies > 1 {
			return errors.New("http: give at most one of form, json, body")
		}
		if s.HTTP.BasicAuth != nil && len(s.HTTP.BasicAuth) != 2 {
			return errors.New("http.basic_auth must be [user, password]")
		}
	}
	if s.Run != nil {
		n++
	}
	if s.Advance != "" {
		n++
		d, err := time.ParseDuration(s.Advance)
		if err != nil || d <= 0 {
			return fmt.Errorf("advance: %q is not a positive duration like \"25h\"", s.Advance)
		}
		if d > maxAdvance {
			return fmt.Errorf("advance: at most %s per step", maxAdvance)
		}
	}
	if n != 1 {
		return errors.New("a step does exactly one of http, run, advance")
	}
	if s.Expect != nil && s.Advance != "" {
		e := *s.Expect
		e.Ticks, e.Requests = nil, nil
		if !isZeroExpect(&e) {
			return errors.New("expect: an advance step only checks ticks and requests")
		}
	}
	if s.Expect != nil {
		for i, r := range s.Expect.Requests {
			if r.Method != "" && r.Method != strings.ToUpper(r.Method) {
				return fmt.Errorf("expect.requests[%d].method: %q must be upper case", i, r.Method)
			}
		}
	}
	for name, src := range s.Save {
		if !validVar(name) {
			return fmt.Errorf("save: bad variable name %q (letters, digits, _)", name)
		}
		kind, _, _ := strings.Cut(src, ".")
		switch kind {
		case "json", "header", "msg", "status", "body":
		default:
			return fmt.Errorf("save.%s: source %q must start with json., header., msg., or be status or body", name, src)
		}
	}
	return nil
}

// maxStubs bounds the stubs of a file or a case.
const maxStubs = 1000

func (s *Stub) check() error {
	switch {
	case (s.URL == "") == (s.URLRegex == ""):
		return errors.New("give exactly one of url and url_regex")
	case (s.Respond == nil) == (len(s.Sequence) == 0):
		return errors.New("give exactly one of respond and sequence")
	case s.Method != "" && s.Method != "*" && !validToken(s.Method):
		return fmt.Errorf("method %q is not an HTTP method", s.Method)
	}
	if s.URLRegex != "" {
		if _, err := regexp.Compile(`^(?:` + s.URLRegex + `)$`); err != nil {
			return fmt.Errorf("url_regex: %v", err)
		}
	} else if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q: an http or https URL with a host", s.URL)
	}
	answers := s.Sequence
	if s.Respond != nil {
		answers = []StubResponse{*s.Respond}
	}
	for i, r := range answers {
		if err := r.check(); err != nil {
			if s.Respond != nil {
				return fmt.Errorf("respond: %v", err)
			}
			return fmt.Errorf("sequence[%d]: %v", i, err)
		}
	}
	return nil
}

func (r *StubResponse) check() error {
	switch {
	case r.Status != 0 && (r.Status < 100 || r.Status > 599):
		return fmt.Errorf("status %d is not 100-599", r.Status)
	case r.JSON != nil && r.Body != "":
		return errors.New("give at most one of json and body")
	case r.Error != "" && (r.Status != 0 || r.JSON != nil || r.Body != "" || r.Headers != nil):
		return errors.New("an error answer has nothing else")
	}
	for k := range r.Headers {
		if !validToken(k) {
			return fmt.Errorf("headers: %q is not a header name", k)
		}
	}
	return nil
}

// validToken reports whether s is an RFC 9110 token (a method, a header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// maxAdvance bounds one advance step, so a typo cannot fire a year of ticks.
const maxAdvance = 31 * 24 * time.Hour

func isZeroExpect(e *Expect) bool {
	return e.Status == 0 && e.Headers == nil && e.JSON == nil && e.BodyContains == "" && e.BodyExcludes == "" && e.Flow == "" &&
		e.Path == nil && e.Ports == nil && e.Message == nil && e.Error == "" && e.Ticks == nil && e.Requests == nil
}

func validVar(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
