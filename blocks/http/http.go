// Package httpblock serves flow endpoints and makes outbound HTTP calls:
// the http.in trigger with its Router, http.respond and http.request.
//
// A request travels like this:
//
//	client --> Router.ServeHTTP --(atomic load: *table)--> ServeMux match
//	       --> http.in: body limit, parse --> TriggerContext.Fire (same goroutine)
//	           --> ... blocks ... --> http.respond writes the response
//	       <-- if the run ended without a response: 500 {"error","run_id"}
//	           (503 with Retry-After when the store was unavailable, or a block
//	           failed with engine.ErrUnavailable: keys not made yet)
//
// The Router holds claims: one per started http.in instance, tagged with
// its flow, version and node. Every change of claims builds a fresh
// http.ServeMux and swaps it in, so serving takes no lock of ours and reads
// nothing but that table. During a redeploy the new version claims before
// the old one releases; the newest claim of a flow wins, so a route never
// goes missing. A claim that conflicts (in ServeMux terms) with another
// flow's route is refused, and the deploy fails.
//
// The request/response exchange rides on the run's context; http.respond
// finds it there. A sub-flow called with core.call runs on its caller's
// context, so it can answer the caller's request; the exchange records
// that a response was written, so a second one fails whichever flow
// sends it. Nothing in this package is global: Register takes the
// Router the embedder mounts.
//
// Each block type lives in block_<name>.go (block_in.go, block_request.go,
// block_respond.go) with its spec, factory and an interface guard.
package httpblock

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/flowd/flowd/engine"
)

// Category is the editor palette group of every block in this package.
const Category = "http"

// Sentinel errors; check with errors.Is.
var (
	// ErrRouteConflict: an http.in route matches the same requests as
	// another flow's route (or another node's in the same flow version).
	ErrRouteConflict = errors.New("route conflict")
	// ErrNoRequest: http.respond ran in a run not started by http.in (nor
	// in a sub-flow such a run called).
	ErrNoRequest = errors.New("http.respond: no request to answer (the run was not started by http.in, nor called from a run that was)")
	// ErrAlreadyResponded: a second http.respond in the same run.
	ErrAlreadyResponded = errors.New("the response was already sent")
	// ErrHostNotAllowed: http.request refused a URL or redirect by allow_hosts.
	ErrHostNotAllowed = errors.New("host is not in allow_hosts")
	// ErrResponseTooLarge: an outbound response passed max_response.
	ErrResponseTooLarge = errors.New("response is larger than max_response")
	// ErrTimeout: an outbound request took longer than its timeout.
	ErrTimeout = errors.New("request timed out")
)

// Size limits shared by the blocks.
const (
	defaultMaxBody = 1 << 20  // request bodies, when RouterOptions leave it 0
	maxBodyCap     = 10 << 20 // the most max_body or max_response may be
	maxJSONDepth   = 32       // nesting of JSON bodies, in and out
)

// Register adds http.in, http.respond and http.request, and their lint
// checks, to reg. It needs no services: a runtime that deploys http.in
// gets its Router from Provide.
func Register(reg *engine.Registry) error {
	blocks := []struct {
		spec    engine.Spec
		factory engine.Factory
	}{
		{inSpec(), func(s *engine.Setup) (engine.Block, error) {
			router, err := routerFor(s)
			if err != nil {
				return nil, fmt.Errorf("http.in needs a router: %w", err)
			}
			return newInFromConfig(s, router)
		}},
		{respondSpec(), newRespondFromConfig},
		{requestSpec(), func(s *engine.Setup) (engine.Block, error) {
			// The runtime's router carries RouterOptions.Outbound; without
			// one (another embedder, a bare registry) the node dials itself.
			var outbound http.RoundTripper
			if router, err := engine.Service[*Router](s); err == nil {
				outbound = router.outbound
			}
			return newRequestFromConfig(s, outbound)
		}},
	}
	for _, b := range blocks {
		if err := reg.Register(b.spec, b.factory); err != nil {
			return err
		}
	}
	return registerLint(reg)
}

// Provide gives the http blocks of a runtime built with svc their router:
// every http.in deployed there claims its route on router.
func Provide(svc *engine.Services, router *Router) error {
	if router == nil {
		return errors.New("httpblock: Provide needs a Router (NewRouter)")
	}
	return engine.Provide(svc, router)
}

// routerFor finds the router of the runtime. A flow only validated without
// one is checked against a router with the default limits.
func routerFor(s *engine.Setup) (*Router, error) {
	return engine.ServiceOr(s, "httpblock.Provide", func() *Router { return NewRouter(RouterOptions{}) })
}

// tokenHeaders are header names that carry credentials besides the engine's
// built-in list (authorization, cookie, x-api-key, ...). Headers sit on
// messages with lowercase names, so these are lowercase too.
func tokenHeaders() []string {
	return []string{"x-auth-token", "x-access-token", "x-amz-security-token", "x-csrf-token", "x-xsrf-token"}
}

// errorBody is the JSON of every error this package answers itself.
// retryAfterUnavailable is the Retry-After of a 503 for an unreachable
// store, in seconds: about one leader election of a cluster store.
const retryAfterUnavailable = "2"

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	RunID       string `json:"run_id,omitempty"`
}

// writeError answers an error as JSON with the security headers. It never
// carries internals: codes and descriptions are fixed texts of this
// package, or an engine.UnavailableError's Public text, which its block
// writes for clients.
func writeError(w http.ResponseWriter, status int, e errorBody) {
	b, _ := json.Marshal(e)
	b = append(b, '\n')
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Cache-Control"] = []string{"no-store"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	w.Write(b) //nolint:errcheck // the client went away; nothing to do
}

// isJSONType reports whether a Content-Type names JSON: application/json
// or any "+json" type (application/problem+json, application/jwk-set+json).
func isJSONType(ct string) bool {
	mt := mediaType(ct)
	return strings.EqualFold(mt, "application/json") ||
		(len(mt) > 5 && strings.EqualFold(mt[len(mt)-5:], "+json"))
}

func isFormType(ct string) bool {
	return strings.EqualFold(mediaType(ct), "application/x-www-form-urlencoded")
}

// mediaType is the part of a Content-Type before its parameters, trimmed.
// It does not allocate, unlike mime.ParseMediaType.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.TrimSpace(ct)
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue refuses control characters (CR, LF, NUL, ...) that would
// split or corrupt a header; tab is allowed.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// hopHeaders are headers a flow may not set: the HTTP stack owns them.
var hopHeaders = map[string]bool{
	"Connection": true, "Content-Length": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Host": true,
}

// configHeader is one header of a block's "headers" config: its
// canonical name and its value expression.
type configHeader struct {
	name string // canonical
	expr *engine.Expr
}

// configHeaders reads a block's "headers" config (http.request,
// http.respond), checking each name: a valid token, not a header the HTTP
// stack owns (setBy says who sets those: "client" or "server"), and not
// given twice once canonical.
func configHeaders(s *engine.Setup, setBy string) ([]configHeader, error) {
	var out []configHeader
	for _, h := range s.Config.Exprs("headers") {
		field := "headers." + h.Name
		if !validHeaderName(h.Name) {
			return nil, s.Errorf(field, "%q is not a valid header name", h.Name)
		}
		name := http.CanonicalHeaderKey(h.Name)
		if hopHeaders[name] {
			return nil, s.Errorf(field, "%s is set by the %s, not the flow", name, setBy)
		}
		if slices.ContainsFunc(out, func(c configHeader) bool { return c.name == name }) {
			return nil, s.Errorf(field, "header %s is given twice", name)
		}
		out = append(out, configHeader{name, h.Expr})
	}
	return out, nil
}

// headerMap flattens headers for a message: values are strings (in a
// map[string]any, so a missing header reads as nil), lowercase names (so
// expressions read msg.req.headers.authorization and the engine's
// redaction list matches), repeated values joined with ", " as RFC 9110
// allows, except Cookie ("; ") and Set-Cookie (newline: its values may
// contain commas).
func headerMap(h http.Header) map[string]any {
	out := make(map[string]any, len(h))
	for k, vs := range h {
		lk := lowerHeader(k)
		out[lk] = headerText(lk, vs)
	}
	return out
}

// headerText is the message value of a header with lowercase name lk.
func headerText(lk string, vs []string) string {
	switch {
	case len(vs) == 1:
		return vs[0]
	case len(vs) == 0:
		return ""
	case lk == "cookie":
		return strings.Join(vs, "; ")
	case lk == "set-cookie":
		return strings.Join(vs, "\n")
	}
	return strings.Join(vs, ", ")
}

// headerLookup is headerMap(h)[name] without building the map: the text
// of the one header whose lowercase name is name, nil when none is. ok is
// false when two names in h lower to name (headerMap would keep either:
// only the built map can say which).
func headerLookup(h http.Header, name string) (v any, ok bool) {
	var found []string
	n := 0
	for k, vs := range h {
		if lowerIs(k, name) {
			found, n = vs, n+1
		}
	}
	switch n {
	case 0:
		return nil, true
	case 1:
		return headerText(name, found), true
	}
	return nil, false
}

// lowerIs reports whether lowerHeader(k) == name, without allocating for
// ASCII names.
func lowerIs(k, name string) bool {
	for i := 0; i < len(k); i++ {
		if k[i] >= utf8.RuneSelf {
			return strings.ToLower(k) == name
		}
	}
	if len(k) != len(name) {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// commonLower avoids an allocation per header for the usual names.
var commonLower = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cache-Control", "Connection", "Content-Length", "Content-Type", "Cookie", "Date",
		"Dpop", "Etag", "Expires", "If-Modified-Since", "If-None-Match", "Last-Modified",
		"Location", "Origin", "Pragma", "Referer", "Server", "Set-Cookie", "User-Agent",
		"Vary", "Www-Authenticate", "X-Content-Type-Options", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id"} {
		m[k] = strings.ToLower(k)
	}
	return m
}()

func lowerHeader(k string) string {
	if l, ok := commonLower[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

// bufPool recycles body buffers; big ones are dropped so one large body
// does not pin memory.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 {
		bufPool.Put(b)
	}
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
