package httpblock

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store/storeerr"
)

func inSpec() engine.Spec {
	return engine.Spec{
		Type:     "http.in",
		Title:    "HTTP endpoint",
		Category: Category,
		Description: "Starts a run for every request to a route. The message carries the request: " +
			"msg.req.method, path, params (path wildcards), query (first value of each parameter), " +
			"query_all (every value), headers (lowercase names), remote_addr, host; and msg.body: " +
			"parsed JSON, form fields (first value; all values in msg.body_all) or raw text. " +
			"The flow answers with http.respond; a run that ends without answering gets " +
			"500 {\"error\":\"internal_error\",\"run_id\":...}, or 503 {\"error\":\"temporarily_unavailable\"," +
			"\"run_id\":...} with Retry-After when it failed because the store could not be reached, or " +
			"because a block cannot serve yet but will shortly (a keyset whose first keys are being " +
			"made; its error_description says which).",
		Trigger: true,
		Fields: []engine.Field{
			{Name: "method", Label: "Method", Kind: engine.KindEnum, Default: "GET",
				Enum: []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"},
				Help: "HTTP method of the route. GET also answers HEAD. ANY accepts every method."},
			{Name: "path", Label: "Path", Kind: engine.KindString, Required: true,
				Help: "Path pattern starting with \"/\", in Go ServeMux syntax: /users/{id} puts the " +
					"segment in msg.req.params.id; /files/{rest...} takes the remainder; a path ending " +
					"in \"/\" matches everything below it; /{$} matches only \"/\". Two flows may not " +
					"claim routes that match the same requests."},
			{Name: "max_body", Label: "Body limit (bytes)", Kind: engine.KindInt, Min: "1", Max: strconv.Itoa(maxBodyCap),
				Help: "Largest request body accepted; a larger one is answered 413 without a run. " +
					"Empty: the server's default (1 MiB unless configured). At most 10 MiB, and no more " +
					"than the runtime's message size limit."},
		},
		Outputs:   []string{"out"},
		Sensitive: tokenHeaders(),
	}
}

// inTrigger is one deployed http.in node. It is built at deploy (pattern
// checked, wildcard names parsed) and serves from Start to Stop.
type inTrigger struct {
	router  *Router
	pattern string   // ServeMux pattern: "GET /users/{id}"
	params  []string // wildcard names of the pattern
	maxBody int64
	maxMsg  int // the runtime's message size limit (Limits.MaxMessageBytes)
	// tctx is set by Start before the route is claimed; the claim's atomic
	// publication makes it visible to serving goroutines.
	tctx *engine.TriggerContext
	obs  RequestObserver // nil: not observed
	// tracer takes the caller's trace context (traceparent) from the
	// request, so the run's span continues its trace; nil: not traced.
	tracer engine.Tracer
	// The last path and Host seen, boxed (see boxCached).
	lastPath, lastHost atomic.Pointer[boxed]
}

var (
	_ engine.Block   = (*inTrigger)(nil)
	_ engine.Trigger = (*inTrigger)(nil)
)

func newInFromConfig(s *engine.Setup, router *Router) (engine.Block, error) {
	c := s.Config
	pattern, params, err := routePattern(c.String("method"), c.String("path"))
	if err != nil {
		return nil, s.Errorf("path", "%v", err)
	}
	limit := int64(s.Limits.MaxMessageBytes)
	maxBody := min(router.maxBody, limit)
	if c.Has("max_body") {
		maxBody = c.Int("max_body")
		if maxBody > limit {
			return nil, s.Errorf("max_body", "must not be more than the runtime's message size limit (%s)", sizeText(limit))
		}
	}
	t := newIn(router, pattern, params, maxBody)
	t.tracer = s.Tracer
	t.maxMsg = int(limit)
	if o, ok := s.Observer.(Observer); ok {
		t.obs = o.Requests(s.FlowID, s.NodeID, pattern)
	}
	return t, nil
}

func newIn(router *Router, pattern string, params []string, maxBody int64) *inTrigger {
	return &inTrigger{router: router, pattern: pattern, params: params, maxBody: maxBody, maxMsg: int(maxBody)}
}

// routePattern builds and checks the ServeMux pattern of a route, and
// returns the names of its wildcards.
func routePattern(method, path string) (string, []string, error) {
	if !strings.HasPrefix(path, "/") {
		return "", nil, errors.New(`must start with "/" (a path only: no scheme, host or method)`)
	}
	if path == AdminPrefix || strings.HasPrefix(path, AdminPrefix+"/") {
		// flowd serves its admin UI and API there before the router sees
		// the request: such a route would deploy and never run.
		return "", nil, errors.New(`must not be under "` + AdminPrefix + `": flowd's admin UI and API answer every path there`)
	}
	for i := 0; i < len(path); i++ {
		if c := path[i]; c <= ' ' || c == 0x7f {
			return "", nil, errors.New("must not contain spaces or control characters")
		}
	}
	pattern := path
	if method != "ANY" && method != "" {
		pattern = method + " " + path
	}
	if err := handle(http.NewServeMux(), pattern, http.NotFoundHandler()); err != nil {
		msg := err.Error()
		if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "parsing ") && i >= 0 {
			msg = msg[i+2:]
		}
		return "", nil, errors.New("not a valid route pattern: " + msg)
	}
	var params []string
	for seg := range strings.SplitSeq(path, "/") {
		if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' {
			name := strings.TrimSuffix(seg[1:len(seg)-1], "...")
			if name != "$" {
				params = append(params, name)
			}
		}
	}
	return pattern, params, nil
}

// Process is not called for triggers: the runtime sends the message on "out".
func (t *inTrigger) Process(context.Context, *engine.Exec, engine.Msg) (string, error) {
	return "out", nil
}

// Start claims the route. A conflict with another flow's route fails the
// deploy with an error naming both routes; it is a validation error of the
// path field that still matches ErrRouteConflict.
func (t *inTrigger) Start(_ context.Context, tc *engine.TriggerContext) error {
	t.tctx = tc
	if err := t.router.claimRoute(t, tc.FlowID, tc.Version(), tc.NodeID); err != nil {
		ve := engine.ValidationErrors{{Node: tc.NodeID, Field: "path", Msg: err.Error()}}
		return &startError{ve: ve, cause: err}
	}
	return nil
}

// startError lets the engine report a refused claim as a validation error
// (it passes ValidationErrors through as they are) while errors.Is still
// finds ErrRouteConflict.
type startError struct {
	ve    engine.ValidationErrors
	cause error
}

func (e *startError) Error() string   { return e.ve.Error() }
func (e *startError) Unwrap() []error { return []error{e.ve, e.cause} }

// Stop releases the route; a newer version's claim of it stays.
func (t *inTrigger) Stop(context.Context) error {
	t.router.releaseRoute(t)
	return nil
}

// exchange is the request being answered, carried on the run's context.
// A run executes on one goroutine (the handler's), so it needs no lock.
type exchange struct {
	// The request's context: the exchange is the run's parent context
	// itself (one allocation instead of a context.WithValue besides).
	context.Context
	w       http.ResponseWriter
	written bool
	status  int
}

type exchangeKey struct{}

func (e *exchange) Value(key any) any {
	if _, ok := key.(exchangeKey); ok {
		return e
	}
	return e.Context.Value(key)
}

func exchangeFrom(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

// refusal is a request answered without a run.
type refusal struct {
	status int
	body   errorBody
}

func badRequest(err error) *refusal {
	return &refusal{http.StatusBadRequest, errorBody{Error: "invalid_request", Description: err.Error()}}
}

func (t *inTrigger) tooLarge() *refusal {
	return &refusal{http.StatusRequestEntityTooLarge, errorBody{Error: "request_too_large",
		Description: "request body is larger than " + sizeText(t.maxBody)}}
}

// maxRedispatch bounds how often one request is routed again because the
// version it reached had just been replaced.
const maxRedispatch = 3

// redispatch carries a request routed again: its body was read and parsed
// once and is reused, while the new route builds its own msg.req.
type redispatch struct {
	body, bodyAll any // nil when absent
	size          int64
	count         int
}

type redispatchKey struct{}

func (t *inTrigger) serve(w http.ResponseWriter, r *http.Request) {
	if t.obs == nil {
		t.answer(w, r)
		return
	}
	t0 := time.Now()
	if status := t.answer(w, r); status != 0 {
		t.obs.Observe(status, time.Since(t0))
	}
}

// answer runs the flow for one request and returns the status answered,
// 0 when the request was routed again (the new route counts it).
func (t *inTrigger) answer(w http.ResponseWriter, r *http.Request) int {
	rd, _ := r.Context().Value(redispatchKey{}).(*redispatch)
	// The exchange and msg.req's stand-in live as long as the run: one
	// allocation for both.
	rr := &requestRun{ex: exchange{Context: r.Context(), w: w}}
	msg, size, ref := t.messageWith(w, r, rd, &rr.req)
	if ref != nil {
		writeError(w, ref.status, ref.body)
		return ref.status
	}
	ex := &rr.ex
	ctx := context.Context(ex)
	if t.tracer != nil {
		ctx = t.tracer.Extract(ctx, headerCarrier(r.Header))
	}
	var tr *engine.Trace
	var err error
	bound := bodyBound(msg, size)
	if bound >= 0 {
		bound += t.sizeBound(r)
	}
	if bound < 0 || (size > 0 && bound > t.maxMsg) {
		// The engine measures the decoded body: a JSON body, or a loose
		// bound past the limit, which must not refuse a message the
		// engine's own measure lets through.
		tr, err = t.tctx.Fire(ctx, msg)
	} else {
		tr, err = t.tctx.FireSized(ctx, msg, bound)
	}
	if tr == nil && errors.Is(err, engine.ErrNotDeployed) {
		// This version retired between the route lookup and the run: a
		// redeploy replaced it (its successor had claimed first) or an
		// undeploy removed it. Nothing ran, so route the request again
		// through the current table: to the successor, or to a 404.
		if rd == nil {
			rd = &redispatch{body: msg["body"], bodyAll: msg["body_all"], size: size}
		}
		if rd.count < maxRedispatch {
			rd.count++
			t.router.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), redispatchKey{}, rd)))
			return 0
		}
	}
	log := t.tctx.Logger
	switch {
	case ex.written:
		if err != nil {
			log.Warn("flow run failed after responding", "run", tr.ID, "err", err)
		}
		return ex.status
	case tr == nil && errors.Is(err, engine.ErrNotDeployed):
		// Still retired after redispatching: the route is being removed.
		writeError(w, http.StatusNotFound, notFoundBody)
		return http.StatusNotFound
	case tr == nil:
		log.Error("http.in could not start a run", "err", err)
		writeError(w, http.StatusServiceUnavailable, errorBody{Error: "unavailable"})
		return http.StatusServiceUnavailable
	case err != nil && errors.Is(err, engine.ErrMessageTooBig) && tr.ErrorNode == tr.Trigger:
		writeError(w, http.StatusRequestEntityTooLarge, errorBody{Error: "request_too_large",
			Description: "request is larger than the message size limit"})
		return http.StatusRequestEntityTooLarge
	case err != nil && errors.Is(err, storeerr.ErrUnavailable):
		// Nothing was written (a refused store call writes nothing, an
		// ambiguous one is resolved before it returns): the client may
		// send the same request again, which a 500 would not tell it.
		log.Warn("flow run failed: store unavailable; answered 503", "run", tr.ID, "err", err)
		w.Header().Set("Retry-After", retryAfterUnavailable)
		writeError(w, http.StatusServiceUnavailable, errorBody{Error: "temporarily_unavailable", RunID: tr.ID})
		return http.StatusServiceUnavailable
	case err != nil && errors.Is(err, engine.ErrUnavailable):
		// A block said it cannot serve yet but will shortly (a keyset
		// whose first keys are being made), and changed nothing: 503 with
		// the block's public words, not an anonymous 500.
		desc, retry := "", retryAfterUnavailable
		if ue := (*engine.UnavailableError)(nil); errors.As(err, &ue) {
			desc = ue.Public
			if ue.RetryAfter > 0 {
				retry = strconv.FormatInt(int64((ue.RetryAfter+time.Second-1)/time.Second), 10)
			}
		}
		log.Warn("flow run failed: temporarily unavailable; answered 503", "run", tr.ID, "err", err)
		w.Header().Set("Retry-After", retry)
		writeError(w, http.StatusServiceUnavailable, errorBody{Error: "temporarily_unavailable", Description: desc, RunID: tr.ID})
		return http.StatusServiceUnavailable
	case err != nil:
		log.Warn("flow run failed without responding; answered 500", "run", tr.ID, "err", err)
		writeError(w, http.StatusInternalServerError, errorBody{Error: "internal_error", RunID: tr.ID})
	default:
		log.Warn("flow run ended without responding; answered 500 (wire an http.respond)", "run", tr.ID)
		writeError(w, http.StatusInternalServerError, errorBody{Error: "internal_error", RunID: tr.ID})
	}
	return http.StatusInternalServerError
}

// boxedMethods are the usual methods as interface values, so storing one
// in a message does not allocate.
var boxedMethods = func() map[string]any {
	m := map[string]any{}
	for _, v := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		m[v] = v
	}
	return m
}()

func boxMethod(m string) any {
	if b, ok := boxedMethods[m]; ok {
		return b
	}
	return m
}

// boxed caches the last boxed value of a string that usually repeats (a
// route's path, the Host): a hit costs a load and a compare instead of an
// allocation.
type boxed struct {
	s string
	v any
}

func boxCached(c *atomic.Pointer[boxed], s string) any {
	if b := c.Load(); b != nil && b.s == s {
		return b.v
	}
	b := &boxed{s: s, v: s}
	c.Store(b)
	return b.v
}

func (t *inTrigger) boxPath(p string) any { return boxCached(&t.lastPath, p) }
func (t *inTrigger) boxHost(h string) any { return boxCached(&t.lastHost, h) }

// sizeBound is an upper bound of a bodyless request message's size in
// the engine's units (see engine.TriggerContext.FireSized), from the
// request it was built of: cheaper than the engine's walk of the message,
// and it iterates no map but the request's headers.
func (t *inTrigger) sizeBound(r *http.Request) int {
	const entry = 12                                            // a key's quotes, colon, comma and a value's quotes, with room
	n := 64 + 8*entry + len("remote_addr") + len("query_all") + // the fixed keys of msg and msg.req
		len(r.Method) + len(r.URL.Path) + len(r.RemoteAddr) + len(r.Host)
	for _, name := range t.params {
		n += len(name) + len(r.PathValue(name)) + entry
	}
	if q := r.URL.RawQuery; q != "" {
		// Each name and value appears in query and in query_all, decoded
		// (never longer than in the raw query), each pair with its keys.
		n += 2*len(q) + 4*entry*(strings.Count(q, "&")+1)
	}
	for k, vs := range r.Header {
		n += len(k) + entry
		for _, v := range vs {
			n += len(v) + 2 // the joined value and its separator
		}
	}
	return n
}

// bodyBound is an upper bound of what msg.body and msg.body_all add to
// the message's size (engine units, see sizeBound), from the raw body's
// size, or -1 when only the engine's walk can tell (a JSON body: a
// one-byte number counts 8). A form field's decoded name and value are
// never longer than in the raw body, and each pair appears once in body
// (first values) and once in body_all, each with its keys and quotes.
func bodyBound(msg engine.Msg, size int64) int {
	const entry = 16
	switch b := msg["body"].(type) {
	case nil:
		return 0
	case string:
		return len("body") + entry + len(b)
	case map[string]any:
		all, ok := msg["body_all"].(map[string][]string)
		if !ok {
			return -1 // a JSON object
		}
		pairs := 0
		for _, vs := range all {
			pairs += len(vs)
		}
		// body: 2 + per name len+4 and its first value len+2; body_all:
		// 2 + per name len+6 and per value len+3; their keys in msg 8 + 12.
		return 32 + 2*int(size) + 16*pairs
	}
	return -1
}

// requestRun is what one request's run holds besides its message.
type requestRun struct {
	ex  exchange
	req lazyReq
}

// lazyReq is msg.req, built on first use: a run of a flow whose blocks
// read the request only through expressions and engine.Lookup (say, a
// JWKS endpoint reading one header) never builds its seven maps. See
// engine.Lazy: the engine builds it before any other block, and the run
// ends before the handler returns, so r is still the request being served.
type lazyReq struct {
	t     *inTrigger
	r     *http.Request
	query url.Values
	built map[string]any
}

var _ engine.Lazy = (*lazyReq)(nil)

func (l *lazyReq) Value() any {
	if l.built == nil {
		l.built = l.t.request(l.r, l.query)
	}
	return l.built
}

// Lookup answers a header and the request's plain members without
// building msg.req.
func (l *lazyReq) Lookup(path []string) (any, bool) {
	if l.built != nil {
		return nil, false
	}
	switch {
	case len(path) == 2 && path[0] == "headers":
		return headerLookup(l.r.Header, path[1])
	case len(path) != 1:
		return nil, false
	}
	switch path[0] {
	case "method":
		return boxMethod(l.r.Method), true
	case "path":
		return l.t.boxPath(l.r.URL.Path), true
	case "host":
		return l.t.boxHost(l.r.Host), true
	}
	return nil, false
}

// request builds msg.req (see message).
func (t *inTrigger) request(r *http.Request, query url.Values) map[string]any {
	if query == nil {
		query = url.Values{}
	}
	params := make(map[string]any, len(t.params))
	for _, name := range t.params {
		params[name] = r.PathValue(name)
	}
	return map[string]any{
		"method":      boxMethod(r.Method),
		"path":        t.boxPath(r.URL.Path),
		"params":      params,
		"query":       firstValues(query),
		"query_all":   map[string][]string(query),
		"headers":     headerMap(r.Header),
		"remote_addr": r.RemoteAddr,
		"host":        t.boxHost(r.Host),
	}
}

// message turns a request into a run's message, or refuses it. It also
// returns the body's size.
//
//	msg.req.method       "GET"
//	msg.req.path         "/users/42"               decoded
//	msg.req.params       {"id": "42"}              path wildcards
//	msg.req.query        {"q": "a"}                first value per name
//	msg.req.query_all    {"q": ["a", "b"]}         every value, map[string][]string
//	msg.req.headers      {"content-type": "..."}   lowercase names, repeats joined
//	msg.req.remote_addr  "192.0.2.1:51234"         the peer, not X-Forwarded-For
//	msg.req.host         "api.example.com"
//	msg.body             JSON value | form fields (first value) | text; absent if empty
//	msg.body_all         form bodies only: every value, map[string][]string
//
// params, query, headers and form fields are map[string]any holding
// strings, so a missing name reads as nil.
func (t *inTrigger) message(w http.ResponseWriter, r *http.Request, rd *redispatch) (engine.Msg, int64, *refusal) {
	return t.messageWith(w, r, rd, &lazyReq{})
}

// messageWith is message with msg.req's stand-in allocated by the caller
// (requestRun); it fills it in.
func (t *inTrigger) messageWith(w http.ResponseWriter, r *http.Request, rd *redispatch, lr *lazyReq) (engine.Msg, int64, *refusal) {
	var query url.Values // nil: none (request makes the empty maps)
	if r.URL.RawQuery != "" {
		var err error
		if query, err = url.ParseQuery(r.URL.RawQuery); err != nil {
			return nil, 0, badRequest(errBadQuery)
		}
	}
	// msg.req is built when a block needs it (lazyReq).
	*lr = lazyReq{t: t, r: r, query: query}
	msg := engine.Msg{"req": lr}
	if rd != nil {
		if rd.size > t.maxBody {
			return nil, 0, t.tooLarge()
		}
		if rd.body != nil {
			msg["body"] = rd.body
		}
		if rd.bodyAll != nil {
			msg["body_all"] = rd.bodyAll
		}
		return msg, rd.size, nil
	}
	if r.ContentLength > t.maxBody {
		return nil, 0, t.tooLarge()
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return msg, 0, nil
	}
	t.router.bodyStart(w)
	// The buffer grows as bytes arrive, never to the announced length
	// first: a client announcing a large body and sending nothing must not
	// cost the memory it announced.
	buf := getBuf()
	defer putBuf(buf)
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, t.maxBody)); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, 0, t.tooLarge()
		}
		return nil, 0, badRequest(errReadBody)
	}
	size := int64(buf.Len())
	if size == 0 {
		return msg, 0, nil
	}
	switch ct := r.Header.Get("Content-Type"); {
	case isJSONType(ct):
		v, err := decodeJSON(buf.Bytes())
		if err != nil {
			return nil, 0, badRequest(err)
		}
		msg["body"] = v
	case isFormType(ct):
		form, err := parseForm(buf.Bytes())
		if err != nil {
			return nil, 0, badRequest(err)
		}
		msg["body"] = firstValues(form)
		msg["body_all"] = map[string][]string(form)
	default:
		msg["body"] = buf.String()
	}
	return msg, size, nil
}

// headerCarrier lets a tracer read and write trace context headers
// (engine.Carrier over http.Header).
type headerCarrier http.Header

func (c headerCarrier) Get(key string) string { return http.Header(c).Get(key) }

func (c headerCarrier) Set(key, value string) { http.Header(c).Set(key, value) }

func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
