package httpblock

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RouterOptions configure a Router.
type RouterOptions struct {
	// MaxBodyBytes is the request body limit of http.in nodes that do not
	// set max_body (default 1 MiB, at most 10 MiB).
	MaxBodyBytes int64
	// Logger receives route changes and refused claims (default: discarded).
	Logger *slog.Logger
	// BodyReadTimeout bounds reading one request body, counted from the
	// moment the route starts reading it (default 15 s; negative: no
	// deadline of the router's own, the server's ReadTimeout alone). A
	// client trickling its body slower is answered 400 and its connection
	// closed. Once a body is read to its end net/http lifts the read
	// deadline, so it does not cut a run that takes longer.
	BodyReadTimeout time.Duration
	// Unmatched, if set, observes the requests no route claimed (the
	// router's own 404, 405 and path-cleaning redirects), with the route
	// label left to the observer. Claimed routes are observed by their
	// http.in node through the engine's observer (see Observer).
	Unmatched RequestObserver
	// Outbound, if set, carries every call of the http.request nodes
	// registered with this router (Register), instead of a connection pool
	// of each node's own: a host's proxying transport, or a flow test's
	// stub (package flowtest) that never reaches the network.
	Outbound http.RoundTripper
}

// DefaultBodyReadTimeout is RouterOptions.BodyReadTimeout when left zero.
const DefaultBodyReadTimeout = 15 * time.Second

// AdminPrefix is the path flowd serves its admin UI and API under; no
// http.in route may claim it.
const AdminPrefix = "/admin"

// RouteInfo describes one served route, for the admin UI.
type RouteInfo struct {
	Flow    string `json:"flow"`
	Version int    `json:"version"`
	Node    string `json:"node"`
	Pattern string `json:"pattern"` // a ServeMux pattern: "GET /users/{id}"
}

// Router serves the routes of deployed http.in nodes. Mount it at "/".
//
// Claims change on deploy; serving reads one immutable table through an
// atomic pointer. Unclaimed paths answer 404 {"error":"not_found"}, a
// claimed path with another method 405 {"error":"method_not_allowed"}
// with an Allow header.
type Router struct {
	maxBody     int64
	bodyTimeout time.Duration // <= 0: none of the router's own
	log         *slog.Logger
	unmatched   RequestObserver   // nil: not observed
	outbound    http.RoundTripper // nil: each http.request node its own transport

	mu     sync.Mutex // guards claims and seq; serializes table builds
	claims []*claim
	seq    uint64

	cur atomic.Pointer[table]
}

// claim is one http.in instance's hold on a pattern.
type claim struct {
	owner   *inTrigger
	flow    string
	version int
	node    string
	pattern string
	seq     uint64 // newer claims have higher numbers
	handler http.Handler
}

// table is what serving reads: immutable once published.
type table struct {
	mux    *http.ServeMux
	routes []RouteInfo
	// exact holds the placed routes whose path is a plain literal (no
	// wildcard, not a subtree, nothing ServeMux would clean or unescape),
	// by path and then method ("" for a route of any method): a request
	// for exactly that path finds its route without ServeMux (see match).
	exact map[string]map[string]*claim
}

// match returns the claim ServeMux would pick for r when r's path is
// one of the table's exact literal paths, and nil otherwise (ServeMux
// then decides, with its cleaning, redirects, wildcards, 404 and 405).
//
// For such a path ServeMux picks, as here, the route of r's method, then
// for HEAD the GET route, then the route of any method: a wildcard or
// subtree route that also matches is less specific than the literal one,
// or conflicts with it and was never placed beside it.
func (t *table) match(r *http.Request) *claim {
	if t.exact == nil || r.URL.RawPath != "" || r.Method == "CONNECT" {
		return nil
	}
	byMethod := t.exact[r.URL.Path]
	if byMethod == nil {
		return nil
	}
	if c := byMethod[r.Method]; c != nil {
		return c
	}
	if r.Method == http.MethodHead {
		if c := byMethod[http.MethodGet]; c != nil {
			return c
		}
	}
	return byMethod[""]
}

// exactPath splits a ServeMux pattern into method and path when its path
// is a plain literal: "/" then segments of unreserved characters, no
// empty, "." or ".." segment, no trailing slash. Such a path is its own
// cleaned and escaped form, so a request whose Path equals it (and has
// no RawPath) is matched by ServeMux against exactly this text.
func exactPath(pattern string) (method, path string, ok bool) {
	method, path, found := strings.Cut(pattern, " ")
	if !found {
		method, path = "", pattern
	}
	if len(path) < 2 || path[0] != '/' || path[len(path)-1] == '/' {
		return "", "", false
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", "", false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
				return "", "", false
			}
		}
	}
	return method, path, true
}

// NewRouter returns a Router with no routes.
func NewRouter(opts RouterOptions) *Router {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = defaultMaxBody
	}
	opts.MaxBodyBytes = min(opts.MaxBodyBytes, maxBodyCap)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.BodyReadTimeout == 0 {
		opts.BodyReadTimeout = DefaultBodyReadTimeout
	}
	rt := &Router{maxBody: opts.MaxBodyBytes, bodyTimeout: opts.BodyReadTimeout, log: opts.Logger, unmatched: opts.Unmatched,
		outbound: opts.Outbound}
	t, _ := rt.build(nil, nil)
	rt.cur.Store(t)
	return rt
}

// bodyStart sets the read deadline of the request body about to be read.
// Writers that cannot set deadlines (a test recorder, some middleware)
// are left to the server's own timeouts.
func (rt *Router) bodyStart(w http.ResponseWriter) {
	if rt.bodyTimeout > 0 {
		setReadDeadline(w, time.Now().Add(rt.bodyTimeout))
	}
}

// setReadDeadline does what http.ResponseController.SetReadDeadline does
// (find the writer that can, through Unwrap), without the controller's
// allocation.
func setReadDeadline(w http.ResponseWriter, t time.Time) {
	for {
		switch x := w.(type) {
		case interface{ SetReadDeadline(time.Time) error }:
			_ = x.SetReadDeadline(t)
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return
		}
	}
}

// ServeHTTP routes a request to the http.in that claims it.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The wrapper is only used while ServeMux routes and answers: a matched
	// route's handler unwraps it at once, and runs end before ServeHTTP
	// returns, so it goes back to the pool then.
	t := rt.cur.Load()
	if c := t.match(r); c != nil {
		// As ServeMux would do (a literal route has no path values).
		r.Pattern = c.pattern
		c.owner.serve(w, r)
		return
	}
	mw := muxWriters.Get().(*muxWriter)
	*mw = muxWriter{ResponseWriter: w}
	if rt.unmatched == nil {
		t.mux.ServeHTTP(mw, r)
	} else {
		t0 := time.Now()
		t.mux.ServeHTTP(mw, r)
		if !mw.matched {
			rt.unmatched.Observe(mw.code, time.Since(t0))
		}
	}
	*mw = muxWriter{}
	muxWriters.Put(mw)
}

var muxWriters = sync.Pool{New: func() any { return new(muxWriter) }}

// Routes lists the served routes sorted by pattern. A route claimed by two
// versions of a flow during a redeploy is listed once, for the newer.
func (rt *Router) Routes() []RouteInfo {
	return slices.Clone(rt.cur.Load().routes)
}

// claimRoute adds owner's claim and publishes the new table, or refuses it
// when the pattern conflicts with another flow's route (or another node's
// route in the same flow version).
func (rt *Router) claimRoute(owner *inTrigger, flow string, version int, node string) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.seq++
	c := &claim{owner: owner, flow: flow, version: version, node: node, pattern: owner.pattern, seq: rt.seq}
	c.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mw, ok := w.(*muxWriter); ok {
			mw.matched = true
			w = mw.ResponseWriter
		}
		owner.serve(w, r)
	})
	claims := append(slices.Clip(rt.claims), c)
	t, err := rt.build(claims, c)
	if err != nil {
		return err
	}
	rt.claims = claims
	rt.cur.Store(t)
	rt.log.Info("http route claimed", "flow", flow, "version", version, "node", node, "pattern", c.pattern)
	return nil
}

// releaseRoute drops owner's claims and publishes the new table at once:
// when it returns, no new request reaches owner.
func (rt *Router) releaseRoute(owner *inTrigger) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	claims := slices.DeleteFunc(slices.Clone(rt.claims), func(c *claim) bool { return c.owner == owner })
	if len(claims) == len(rt.claims) {
		return
	}
	t, _ := rt.build(claims, nil)
	rt.claims = claims
	rt.cur.Store(t)
	rt.log.Info("http route released", "pattern", owner.pattern)
}

// build makes a table from claims, newest first. A claim whose pattern
// ServeMux refuses next to an already placed one is either shadowed (the
// placed one is a newer version of the same flow, or the same node again)
// or in conflict. A conflict involving fresh fails the build; any other
// (possible only when releasing a claim uncovers an old one) drops the
// older claim with a warning.
func (rt *Router) build(claims []*claim, fresh *claim) (*table, error) {
	order := slices.SortedFunc(slices.Values(claims), func(a, b *claim) int { return cmp.Compare(b.seq, a.seq) })
	t := &table{mux: http.NewServeMux()}
	placed := make([]*claim, 0, len(order))
	for _, c := range order {
		if handle(t.mux, c.pattern, c.handler) == nil {
			placed = append(placed, c)
			continue
		}
		var against, shadow *claim
		for _, p := range placed {
			if !conflicting(p.pattern, c.pattern) {
				continue
			}
			if p.flow != c.flow || (p.version == c.version && p.node != c.node) {
				against = p
				break
			}
			shadow = p
		}
		if against == nil {
			if shadow == nil && fresh == c {
				// Not a conflict: a pattern the deploy check should have refused.
				return nil, fmt.Errorf("route %q of flow %q (node %q) is not a valid pattern", c.pattern, c.flow, c.node)
			}
			continue // shadowed by a newer claim of the same flow
		}
		if fresh != nil && (c == fresh || against == fresh) {
			return nil, conflictError(fresh, other(fresh, c, against))
		}
		rt.log.Warn("http route dropped: it conflicts with a newer route",
			"flow", c.flow, "node", c.node, "pattern", c.pattern,
			"newer_flow", against.flow, "newer_node", against.node, "newer_pattern", against.pattern)
	}
	t.routes = make([]RouteInfo, 0, len(placed))
	for _, c := range placed {
		t.routes = append(t.routes, RouteInfo{Flow: c.flow, Version: c.version, Node: c.node, Pattern: c.pattern})
		if method, path, ok := exactPath(c.pattern); ok {
			if t.exact == nil {
				t.exact = map[string]map[string]*claim{}
			}
			if t.exact[path] == nil {
				t.exact[path] = map[string]*claim{}
			}
			t.exact[path][method] = c
		}
	}
	slices.SortFunc(t.routes, func(a, b RouteInfo) int {
		return cmp.Or(cmp.Compare(a.Pattern, b.Pattern), cmp.Compare(a.Flow, b.Flow))
	})
	return t, nil
}

func other(fresh, a, b *claim) *claim {
	if a == fresh {
		return b
	}
	return a
}

func conflictError(c, o *claim) error {
	if c.flow == o.flow {
		return &wrapped{fmt.Sprintf("route %q of node %q conflicts with route %q of node %q in the same flow",
			c.pattern, c.node, o.pattern, o.node), ErrRouteConflict}
	}
	return &wrapped{fmt.Sprintf("route %q of flow %q conflicts with route %q of flow %q (node %q): "+
		"two flows cannot serve the same requests", c.pattern, c.flow, o.pattern, o.flow, o.node), ErrRouteConflict}
}

// wrapped is an error with its own text that still matches a sentinel.
type wrapped struct {
	msg   string
	cause error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.cause }

// handle registers a pattern, turning ServeMux's panic into an error.
func handle(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// conflicting reports whether ServeMux refuses a and b side by side.
func conflicting(a, b string) bool {
	mux := http.NewServeMux()
	if handle(mux, a, http.NotFoundHandler()) != nil {
		return false
	}
	return handle(mux, b, http.NotFoundHandler()) != nil
}

// muxWriter stands between ServeMux and the client so that ServeMux's own
// plain-text 404 and 405 answers become JSON. A matched route's handler
// unwraps it first, so a flow's own 404 passes untouched.
type muxWriter struct {
	http.ResponseWriter
	matched bool
	swallow bool // the mux's text body is being replaced
	code    int  // the status of the mux's own answer
}

var (
	notFoundBody         = errorBody{Error: "not_found"}
	methodNotAllowedBody = errorBody{Error: "method_not_allowed"}
)

func (w *muxWriter) WriteHeader(code int) {
	if !w.matched && w.code == 0 {
		w.code = code
	}
	if !w.matched && !w.swallow {
		// ServeMux's own answers (404, 405, 307 to a cleaned path) get the
		// security headers every answer of this package has.
		h := w.ResponseWriter.Header()
		h["X-Content-Type-Options"] = []string{"nosniff"}
		h["Cache-Control"] = []string{"no-store"}
		switch code {
		case http.StatusNotFound:
			w.swallow = true
			writeError(w.ResponseWriter, code, notFoundBody)
			return
		case http.StatusMethodNotAllowed:
			w.swallow = true
			writeError(w.ResponseWriter, code, methodNotAllowedBody)
			return
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *muxWriter) Write(p []byte) (int, error) {
	if w.swallow {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

func (w *muxWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
