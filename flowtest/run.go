package flowtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store/memstore"
)

// Options configure a run of flow tests.
type Options struct {
	// Register adds the embedder's own block types (as flowd.Options.Register).
	Register func(*engine.Registry) error
	// Match, if set, runs only the cases whose "file.test.json: case name"
	// it matches.
	Match *regexp.Regexp
}

// Suite is a set of test files and the flow documents they can deploy.
type Suite struct {
	Files []*File
	// flows by id: the document and where it was read from.
	flows map[string]flowDoc
}

type flowDoc struct {
	path string
	doc  []byte
	flow *engine.Flow
}

// Load reads every test file (*.test.json) under each path (a folder,
// searched recursively, or one test file) and every flow document (*.json)
// in the same folders and, for a test file given alone, its folder and
// the folder above. Two flow documents with one id are an error.
func Load(paths ...string) (*Suite, error) {
	s := &Suite{flows: map[string]flowDoc{}}
	var flowDirs []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			f, err := ReadFile(p)
			if err != nil {
				return nil, err
			}
			s.Files = append(s.Files, f)
			dir := filepath.Dir(p)
			flowDirs = append(flowDirs, dir, filepath.Dir(dir))
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				flowDirs = append(flowDirs, path)
				return nil
			}
			if strings.HasSuffix(path, Suffix) {
				f, err := ReadFile(path)
				if err != nil {
					return err
				}
				s.Files = append(s.Files, f)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	seenDir := map[string]bool{}
	for _, dir := range flowDirs {
		if seenDir[filepath.Clean(dir)] {
			continue
		}
		seenDir[filepath.Clean(dir)] = true
		names, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, name := range names {
			if strings.HasSuffix(name, Suffix) {
				continue
			}
			doc, err := os.ReadFile(name)
			if err != nil {
				return nil, err
			}
			f, err := engine.DecodeFlow(doc)
			if err != nil {
				continue // not a flow document; a test naming its id says so
			}
			if prev, dup := s.flows[f.ID]; dup && prev.path != name {
				return nil, fmt.Errorf("flow id %q is in both %s and %s", f.ID, prev.path, name)
			}
			s.flows[f.ID] = flowDoc{path: name, doc: doc, flow: f}
		}
	}
	if len(s.Files) == 0 {
		return nil, fmt.Errorf("no test files (*%s) in %s", Suffix, strings.Join(paths, ", "))
	}
	sort.Slice(s.Files, func(i, j int) bool { return s.Files[i].Path < s.Files[j].Path })
	return s, nil
}

// Covered returns the ids of the flows some test file deploys first (the
// flows under test).
func (s *Suite) Covered() []string {
	var out []string
	for _, f := range s.Files {
		if !slices.Contains(out, f.Flows[0]) {
			out = append(out, f.Flows[0])
		}
	}
	slices.Sort(out)
	return out
}

// Result is the outcome of one case.
type Result struct {
	File    string
	Case    string
	Failure *Failure // nil: passed
	Elapsed time.Duration
}

// Failure says where and why a case failed.
type Failure struct {
	File string
	Case string
	Step int    // 1-based; 0 for set-up (fixtures, deploy)
	Name string // the step's name, if it has one
	Node string // the node the failed expectation is about, if any
	// Expectation is what was expected ("status 200", "port of sign: out").
	Expectation string
	Got         string
}

func (f *Failure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: case %q", filepath.Base(f.File), f.Case)
	switch {
	case f.Step == 0:
		b.WriteString(": set-up")
	case f.Name != "":
		fmt.Fprintf(&b, ": step %d (%s)", f.Step, f.Name)
	default:
		fmt.Fprintf(&b, ": step %d", f.Step)
	}
	if f.Node != "" {
		fmt.Fprintf(&b, ": node %q", f.Node)
	}
	fmt.Fprintf(&b, ": expected %s, got %s", f.Expectation, f.Got)
	return b.String()
}

// Run runs every case of every file, one after the other.
func (s *Suite) Run(ctx context.Context, opts Options) []Result {
	var out []Result
	for _, f := range s.Files {
		for i, c := range f.Cases {
			if opts.Match != nil && !opts.Match.MatchString(filepath.Base(f.Path)+": "+c.Name) {
				continue
			}
			out = append(out, s.RunCase(ctx, opts, f, i))
		}
	}
	return out
}

// RunCase runs one case on a fresh store and flowd.
func (s *Suite) RunCase(ctx context.Context, opts Options, f *File, i int) Result {
	c := &f.Cases[i]
	res := Result{File: f.Path, Case: c.Name}
	t0 := time.Now()
	e := &env{suite: s, file: f, c: c, vars: map[string]string{}, cookies: map[string]string{}}
	if err := e.setUp(ctx, opts); err != nil {
		res.Failure = e.fail(0, "", "set-up to succeed", err.Error())
	} else {
		res.Failure = e.steps(ctx)
	}
	e.tearDown()
	res.Elapsed = time.Since(t0)
	return res
}

// Clock is a frozen clock: Now returns the same instant until Set or
// Advance moves it. Safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock frozen at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the frozen time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Sleep moves the clock forward by d at once (after checking ctx): a
// waiting block takes no real time.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.t = c.t.Add(max(d, 0))
	c.mu.Unlock()
	return nil
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// env is one case's world.
type env struct {
	suite   *Suite
	file    *File
	c       *Case
	clock   *Clock
	st      *memstore.Store
	fd      *flowd.Flowd
	vars    map[string]string
	cookies map[string]string
	stub    *stubTransport
	// deployed is file.Flows and the sub-flows they call (core.call),
	// transitively, in that order.
	deployed []string
}

func (e *env) fail(step int, node, expectation, got string) *Failure {
	name := ""
	if step > 0 {
		name = e.c.Steps[step-1].Name
	}
	return &Failure{File: e.file.Path, Case: e.c.Name, Step: step, Name: name, Node: node, Expectation: expectation, Got: got}
}

func (e *env) setUp(ctx context.Context, opts Options) error {
	start := DefaultClock
	if e.c.Clock != "" {
		start, _ = time.Parse(time.RFC3339, e.c.Clock) // checked by Parse
	}
	e.clock = NewClock(start)
	var err error
	e.st, err = memstore.New(memstore.Options{Now: e.clock.Now})
	if err != nil {
		return err
	}
	issuer := e.file.Issuer
	if issuer == "" {
		issuer = "http://flowd.test"
	}
	e.stub = newStubTransport(e.c.Stubs, e.file.Stubs)
	e.stub.begin(e.vars)
	e.fd, err = flowd.New(flowd.Options{Store: e.st, Clock: e.clock.Now, Sleep: e.clock.Sleep, Issuer: issuer,
		SnapshotsPerSecond: -1, Register: opts.Register, Outbound: e.stub})
	if err != nil {
		return err
	}
	// 2048-bit RSA keys: generated in a fraction of the time of the
	// default 3072, and the flows behave the same.
	e.fd.Keysets().RSABits = 2048
	for _, k := range e.file.Fixtures.Keysets {
		if err := e.fd.Keysets().Create(ctx, k.Name, k.Algs...); err != nil {
			return fmt.Errorf("fixture keyset %q: %w", k.Name, err)
		}
	}
	for _, cl := range e.file.Fixtures.Clients {
		_, _, err := e.fd.Clients().Add(ctx, oauth.Client{ID: cl.ID, Public: cl.Public, Scopes: cl.Scopes,
			Audiences: cl.Audiences, RedirectURIs: cl.RedirectURIs, PostLogoutRedirectURIs: cl.PostLogoutRedirectURIs,
			GrantTypes: cl.GrantTypes, TokenEndpointAuthMethod: cl.TokenEndpointAuthMethod, JWKSURI: cl.JWKSURI}, cl.Secret)
		if err != nil {
			return fmt.Errorf("fixture client %q: %w", cl.ID, err)
		}
	}
	for _, u := range e.file.Fixtures.Users {
		_, err := e.fd.Users().Add(ctx, oidc.User{Username: u.Username, Name: u.Name, Email: u.Email,
			EmailVerified: u.EmailVerified}, u.Password)
		if err != nil {
			return fmt.Errorf("fixture user %q: %w", u.Username, err)
		}
	}
	e.deployed = e.suite.withCallees(e.file.Flows)
	for _, id := range e.deployed {
		fd, ok := e.suite.flows[id]
		if !ok {
			return fmt.Errorf("flow %q: no flow document with this id next to the test file", id)
		}
		if _, err := e.fd.App().Import(ctx, fd.doc, true); err != nil {
			return fmt.Errorf("deploy flow %q (%s): %w", id, fd.path, err)
		}
	}
	if err := e.waitStartup(ctx); err != nil {
		return err
	}
	if _, unmatched := e.stub.taken(); len(unmatched) > 0 {
		return fmt.Errorf("an outgoing request at start-up: %s", unmatched[0])
	}
	return nil
}

// withCallees returns ids and, after them, the flows their core.call nodes
// call (transitively) that the suite has documents for: a test deploys a
// flow with the sub-flows it needs. A call to a flow the suite does not
// have fails at run time, naming it.
func (s *Suite) withCallees(ids []string) []string {
	out := slices.Clone(ids)
	for i := 0; i < len(out); i++ {
		fd, ok := s.flows[out[i]]
		if !ok {
			continue
		}
		for _, n := range fd.flow.Nodes {
			if n.Type != "core.call" || n.Disabled {
				continue
			}
			var target string
			if json.Unmarshal(n.Config["flow"], &target) == nil && target != "" && !slices.Contains(out, target) {
				if _, have := s.flows[target]; have {
					out = append(out, target)
				}
			}
		}
	}
	return out
}

// waitStartup waits for the runs core.startup triggers fire in the
// background at deploy, so steps start from a settled state.
func (e *env) waitStartup(ctx context.Context) error {
	a := e.fd.App()
	for _, id := range e.deployed {
		for _, n := range e.suite.flows[id].flow.Nodes {
			if n.Type != "core.startup" {
				continue
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				var tr *engine.Trace
				for _, t := range a.Traces(id) {
					if t.Trigger == n.ID {
						tr = t
						break
					}
				}
				if tr != nil {
					if tr.Status != engine.StatusOK {
						return fmt.Errorf("start-up run of flow %q failed at node %q: %s", id, tr.ErrorNode, tr.Error)
					}
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("start-up run of flow %q did not finish in 30s", id)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
	}
	return nil
}

func (e *env) tearDown() {
	if e.fd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		e.fd.Close(ctx)
		cancel()
	}
	if e.st != nil {
		e.st.Close()
	}
}

// outcome is what a step produced.
type outcome struct {
	resp   *httptest.ResponseRecorder
	body   any // decoded JSON body, if it is JSON
	isJSON bool
	runs   map[string][]*engine.Trace // new traces by flow, newest first
	run    *engine.Trace              // the step's own run
	runErr error
	ticks  int
	// requests are the outgoing requests the step made; unmatched those
	// no stub answered.
	requests  []madeRequest
	unmatched []string
}

func (e *env) steps(ctx context.Context) *Failure {
	for i := range e.c.Steps {
		if f := e.step(ctx, i+1, &e.c.Steps[i]); f != nil {
			return f
		}
	}
	return nil
}

func (e *env) step(ctx context.Context, n int, s *Step) *Failure {
	before := e.newest()
	e.stub.begin(e.vars)
	var out outcome
	switch {
	case s.HTTP != nil:
		if err := e.doHTTP(s.HTTP, &out); err != nil {
			return e.fail(n, "", "a request to send", err.Error())
		}
	case s.Run != nil:
		if f := e.doRun(ctx, n, s.Run, &out); f != nil {
			return f
		}
	case s.Advance != "":
		if f := e.doAdvance(ctx, n, s.Advance, &out); f != nil {
			return f
		}
	}
	out.runs = e.since(before)
	if s.HTTP != nil {
		out.run = e.pickRun(s.Expect, out.runs)
	}
	out.requests, out.unmatched = e.stub.taken()
	if f := e.check(n, s, &out); f != nil {
		return f
	}
	return e.save(n, s, &out)
}

func (e *env) doHTTP(in *HTTPInput, out *outcome) error {
	path, err := expand(in.Path, e.vars)
	if err != nil {
		return err
	}
	method := in.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	ctype := ""
	switch {
	case in.Form != nil:
		v := url.Values{}
		for k, val := range in.Form {
			x, err := expand(val, e.vars)
			if err != nil {
				return err
			}
			v.Set(k, x)
		}
		body, ctype = strings.NewReader(v.Encode()), "application/x-www-form-urlencoded"
	case in.JSON != nil:
		x, err := expandAny(in.JSON, e.vars)
		if err != nil {
			return err
		}
		b, _ := json.Marshal(x)
		body, ctype = strings.NewReader(string(b)), "application/json"
	case in.Body != "":
		x, err := expand(in.Body, e.vars)
		if err != nil {
			return err
		}
		body = strings.NewReader(x)
	}
	req := httptest.NewRequest(method, "http://flowd.test"+path, body)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if in.BasicAuth != nil {
		u, err := expand(in.BasicAuth[0], e.vars)
		if err != nil {
			return err
		}
		p, err := expand(in.BasicAuth[1], e.vars)
		if err != nil {
			return err
		}
		req.SetBasicAuth(url.QueryEscape(u), url.QueryEscape(p))
	}
	for _, name := range slices.Sorted(maps.Keys(e.cookies)) {
		req.AddCookie(&http.Cookie{Name: name, Value: e.cookies[name]})
	}
	for k, v := range in.Headers {
		x, err := expand(v, e.vars)
		if err != nil {
			return err
		}
		req.Header.Set(k, x)
	}
	rec := httptest.NewRecorder()
	e.fd.FlowHandler().ServeHTTP(rec, req)
	for _, ck := range rec.Result().Cookies() {
		if ck.MaxAge < 0 || ck.Value == "" {
			delete(e.cookies, ck.Name)
		} else {
			e.cookies[ck.Name] = ck.Value
		}
	}
	out.resp = rec
	var v any
	if json.Unmarshal(rec.Body.Bytes(), &v) == nil {
		out.body, out.isJSON = v, true
	}
	return nil
}

func (e *env) doRun(ctx context.Context, n int, in *RunInput, out *outcome) *Failure {
	flow := in.Flow
	if flow == "" {
		flow = e.file.Flows[0]
	}
	input := engine.Msg{}
	if in.Input != nil {
		x, err := expandAny(in.Input, e.vars)
		if err != nil {
			return e.fail(n, in.Node, "an input to send", err.Error())
		}
		input = engine.CopyValue(x).(map[string]any)
	}
	isCron := false
	if fd, ok := e.suite.flows[flow]; ok && in.Node != "" {
		if node := fd.flow.Node(in.Node); node != nil && node.Type == "schedule.cron" {
			isCron = true
		}
	}
	var tr *engine.Trace
	var err error
	if isCron && in.Input == nil {
		tr, err = e.fd.Scheduler().RunNow(ctx, flow, in.Node)
	} else {
		tr, err = e.fd.App().Run(ctx, flow, in.Node, input)
	}
	if tr == nil && err != nil {
		return e.fail(n, in.Node, "a run to start", err.Error())
	}
	out.run, out.runErr = tr, err
	return nil
}

// maxTicks bounds the schedule ticks one advance step fires.
const maxTicks = 1000

func (e *env) doAdvance(ctx context.Context, n int, adv string, out *outcome) *Failure {
	d, _ := time.ParseDuration(adv) // checked by Parse
	target := e.clock.Now().Add(d)
	sched := e.fd.Scheduler()
	for {
		var due *struct {
			flow, node string
			at         time.Time
		}
		for _, in := range sched.List(1) {
			if in.Paused || len(in.Next) == 0 || in.Next[0].After(target) {
				continue
			}
			if due == nil || in.Next[0].Before(due.at) {
				due = &struct {
					flow, node string
					at         time.Time
				}{in.Flow, in.Node, in.Next[0]}
			}
		}
		if due == nil {
			break
		}
		if out.ticks++; out.ticks > maxTicks {
			return e.fail(n, "", fmt.Sprintf("at most %d schedule ticks in one advance", maxTicks), "more")
		}
		e.clock.Set(due.at)
		tr, err := sched.RunNow(ctx, due.flow, due.node)
		if err != nil {
			node := due.node
			if tr != nil && tr.ErrorNode != "" {
				node = tr.ErrorNode
			}
			return e.fail(n, node, fmt.Sprintf("the tick of %s/%s at %s to succeed", due.flow, due.node, due.at.Format(time.RFC3339)), err.Error())
		}
	}
	e.clock.Set(target)
	return nil
}

// newest returns each deployed flow's newest trace id.
func (e *env) newest() map[string]string {
	out := map[string]string{}
	for _, id := range e.deployed {
		if trs := e.fd.App().Traces(id); len(trs) > 0 {
			out[id] = trs[0].ID
		}
	}
	return out
}

// since returns the traces newer than before, by flow.
func (e *env) since(before map[string]string) map[string][]*engine.Trace {
	out := map[string][]*engine.Trace{}
	for _, id := range e.deployed {
		for _, tr := range e.fd.App().Traces(id) {
			if tr.ID == before[id] {
				break
			}
			out[id] = append(out[id], tr)
		}
	}
	return out
}

// pickRun chooses the run an http step's expectations are about: the
// newest of expect.flow, else the only new run, else the newest of the
// flow under test.
func (e *env) pickRun(x *Expect, runs map[string][]*engine.Trace) *engine.Trace {
	if x != nil && x.Flow != "" {
		if trs := runs[x.Flow]; len(trs) > 0 {
			return trs[0]
		}
		return nil
	}
	var all []*engine.Trace
	for _, id := range e.deployed {
		all = append(all, runs[id]...)
	}
	if len(all) == 1 {
		return all[0]
	}
	if trs := runs[e.file.Flows[0]]; len(trs) > 0 {
		return trs[0]
	}
	if len(all) > 0 {
		return all[0]
	}
	return nil
}

func lastNode(tr *engine.Trace) string {
	if tr == nil || len(tr.Steps) == 0 {
		return ""
	}
	return tr.Steps[len(tr.Steps)-1].Node
}

func finalMsg(tr *engine.Trace) any {
	if tr == nil || len(tr.Steps) == 0 {
		return nil
	}
	return normalize(tr.Steps[len(tr.Steps)-1].Msg)
}

func (e *env) check(n int, s *Step, out *outcome) *Failure {
	x := s.Expect
	if x == nil {
		x = &Expect{}
	}
	tr := out.run
	// A request no stub answered explains whatever failed after it.
	if len(out.unmatched) > 0 {
		return e.fail(n, e.stubNode(out), "a stub for every outgoing request", out.unmatched[0])
	}
	if f := e.checkRequests(n, x.Requests, out.requests); f != nil {
		return f
	}
	if s.Advance != "" {
		if x.Ticks != nil && *x.Ticks != out.ticks {
			return e.fail(n, "", fmt.Sprintf("%d schedule ticks", *x.Ticks), strconv.Itoa(out.ticks))
		}
		return nil
	}
	// The run's outcome first: a failure explains everything after it.
	if tr != nil {
		failed := tr.Status != engine.StatusOK
		switch {
		case x.Error == "" && failed:
			return e.fail(n, tr.ErrorNode, "the run of flow "+strconv.Quote(tr.Flow)+" to succeed", "error: "+tr.Error)
		case x.Error != "" && !failed:
			return e.fail(n, lastNode(tr), fmt.Sprintf("the run to fail with %q", x.Error), "success")
		case x.Error != "" && !strings.Contains(tr.Error, x.Error):
			return e.fail(n, tr.ErrorNode, fmt.Sprintf("the run to fail with %q", x.Error), "error: "+tr.Error)
		}
	} else if x.Error != "" || x.Path != nil || x.Ports != nil || x.Message != nil {
		flow := x.Flow
		if flow == "" {
			flow = "any deployed flow"
		}
		return e.fail(n, "", "a run of "+flow, "no run")
	}
	node := lastNode(tr)
	if r := out.resp; r != nil {
		if x.Status != 0 && r.Code != x.Status {
			return e.fail(n, node, fmt.Sprintf("status %d", x.Status), fmt.Sprintf("%d (body %s)", r.Code, clip(r.Body.String())))
		}
		for _, name := range slices.Sorted(maps.Keys(x.Headers)) {
			want := x.Headers[name]
			if str, isStr := want.(string); isStr {
				w, err := expand(str, e.vars)
				if err != nil {
					return e.fail(n, node, "header "+name+" to expand", err.Error())
				}
				want = w
			}
			got := r.Header().Get(name)
			found := got != ""
			if want == "" {
				want = map[string]any{"$exists": false}
			}
			if ok, desc := match(want, got, found, e.vars); !ok {
				return e.fail(n, node, fmt.Sprintf("header %s: %s", name, short(x.Headers[name])), desc)
			}
		}
		if x.BodyContains != "" {
			want, err := expand(x.BodyContains, e.vars)
			if err != nil {
				return e.fail(n, node, "body_contains to expand", err.Error())
			}
			if !strings.Contains(r.Body.String(), want) {
				return e.fail(n, node, fmt.Sprintf("a body containing %q", want), clip(r.Body.String()))
			}
		}
		if x.BodyExcludes != "" {
			bad, err := expand(x.BodyExcludes, e.vars)
			if err != nil {
				return e.fail(n, node, "body_excludes to expand", err.Error())
			}
			if strings.Contains(r.Body.String(), bad) {
				return e.fail(n, node, fmt.Sprintf("a body without %q", bad), clip(r.Body.String()))
			}
		}
		if x.JSON != nil && !out.isJSON {
			return e.fail(n, node, "a JSON body", clip(r.Body.String()))
		}
		for _, path := range slices.Sorted(maps.Keys(x.JSON)) {
			got, found := lookup(out.body, path)
			if ok, desc := match(x.JSON[path], got, found, e.vars); !ok {
				return e.fail(n, node, fmt.Sprintf("json %s = %s", pathName(path), short(x.JSON[path])), desc)
			}
		}
	} else if x.Status != 0 || x.Headers != nil || x.JSON != nil || x.BodyContains != "" || x.BodyExcludes != "" {
		return e.fail(n, "", "an HTTP response", "a step that sends no request")
	}
	if tr == nil {
		return nil
	}
	if x.Path != nil {
		got := make([]string, len(tr.Steps))
		for i, st := range tr.Steps {
			got[i] = st.Node
		}
		if !slices.Equal(got, x.Path) {
			i := 0
			for i < len(got) && i < len(x.Path) && got[i] == x.Path[i] {
				i++
			}
			at := ""
			if i < len(x.Path) {
				at = x.Path[i]
			} else if i < len(got) {
				at = got[i]
			}
			return e.fail(n, at, "path "+strings.Join(x.Path, " > "), strings.Join(got, " > "))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(x.Ports)) {
		want := x.Ports[id]
		got := "-"
		for _, st := range tr.Steps {
			if st.Node == id {
				got = st.Port
			}
		}
		if got != want {
			return e.fail(n, id, fmt.Sprintf("port %q", want), strconv.Quote(got))
		}
	}
	msg := finalMsg(tr)
	for _, path := range slices.Sorted(maps.Keys(x.Message)) {
		got, found := lookup(msg, path)
		if ok, desc := match(x.Message[path], got, found, e.vars); !ok {
			return e.fail(n, node, fmt.Sprintf("message %s = %s", pathName(path), short(x.Message[path])), desc)
		}
	}
	return nil
}

func pathName(p string) string {
	if p == "" {
		return "(whole value)"
	}
	return p
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		return strconv.Quote(s[:200]) + "..."
	}
	return strconv.Quote(s)
}

func (e *env) save(n int, s *Step, out *outcome) *Failure {
	for _, name := range slices.Sorted(maps.Keys(s.Save)) {
		src := s.Save[name]
		kind, path, _ := strings.Cut(src, ".")
		var v any
		found := false
		switch kind {
		case "status":
			if out.resp != nil {
				v, found = out.resp.Code, true
			}
		case "body":
			if out.resp != nil {
				v, found = out.resp.Body.String(), true
			}
		case "header":
			if out.resp != nil {
				if h := out.resp.Header().Get(path); h != "" {
					v, found = h, true
				}
			}
		case "json":
			if out.isJSON {
				v, found = lookup(out.body, path)
			}
		case "msg":
			v, found = lookup(finalMsg(out.run), path)
		}
		if !found {
			return e.fail(n, lastNode(out.run), fmt.Sprintf("a value at %s to save as %s", src, name), "nothing there")
		}
		if str, ok := v.(string); ok {
			e.vars[name] = str
		} else {
			e.vars[name] = short(v)
		}
	}
	return nil
}
