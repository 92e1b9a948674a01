package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

// Prefix is where the API is mounted.
const Prefix = "/admin/api"

// TokenChecker authenticates bearer tokens.
type TokenChecker interface {
	Check(ctx context.Context, token string) bool
}

// Handler serves the admin API.
type Handler struct {
	app    *app.App
	tokens TokenChecker
	log    *slog.Logger
	mux    *http.ServeMux
	// poll is how often event streams look for new runs (events.go).
	poll      time.Duration
	done      chan struct{} // closed by Close: ends every event stream
	closeOnce sync.Once
}

// New returns the API handler. Other packages add their routes with Handle.
func New(a *app.App, tokens TokenChecker, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{app: a, tokens: tokens, log: log, mux: http.NewServeMux(), poll: streamPoll, done: make(chan struct{})}
	h.route("GET /flows", h.listFlows)
	h.route("POST /flows", h.createFlow)
	h.route("GET /flows/{id}", h.getFlow)
	h.route("PUT /flows/{id}", h.putFlow)
	h.route("DELETE /flows/{id}", h.deleteFlow)
	h.route("GET /flows/{id}/info", h.flowInfo)
	h.route("GET /flows/{id}/state", h.flowState)
	h.route("POST /flows/{id}/deploy", h.deploy)
	h.route("POST /flows/{id}/undeploy", h.undeploy)
	h.route("POST /flows/{id}/run", h.run)
	h.route("GET /flows/{id}/runs", h.runs)
	h.route("GET /flows/{id}/runs/{run}", h.getRun)
	h.route("GET /flows/{id}/runs/{run}/steps/{i}", h.getStep)
	h.route("GET /flows/{id}/events", h.events)
	h.route("GET /flows/{id}/versions", h.versions)
	h.route("GET /flows/{id}/versions/{n}", h.getVersion)
	h.route("POST /flows/{id}/versions/{n}/restore", h.restore)
	h.route("POST /validate", h.validate)
	h.route("GET /blocks", h.blocks)
	h.route("GET /schema", h.schema)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, "not_found", "no such API endpoint", nil)
	})
	return h
}

// HandlerFunc is an API endpoint: it returns an error for the edge to map.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle adds an authenticated endpoint; pattern is relative to Prefix
// ("GET /keysets").
func (h *Handler) Handle(pattern string, fn HandlerFunc) { h.route(pattern, fn) }

func (h *Handler) route(pattern string, fn HandlerFunc) {
	method, p, _ := strings.Cut(pattern, " ")
	h.mux.HandleFunc(method+" "+Prefix+p, func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			h.fail(w, r, err)
		}
	})
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	tok, ok := bearer(r)
	if !ok || !h.tokens.Check(r.Context(), tok) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="flowd admin"`)
		WriteError(w, http.StatusUnauthorized, "unauthorized", "a valid admin token is required", nil)
		return
	}
	if engine.ActorFrom(r.Context()) == "system" {
		// Not the UI's own calls (those name "admin-ui"): an API token.
		r = r.WithContext(engine.WithActor(r.Context(), "api-token"))
	}
	h.mux.ServeHTTP(w, r)
}

func bearer(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return "", false
	}
	return strings.TrimSpace(v[7:]), true
}

// Error is an error with an HTTP status and code for the edge.
type Error struct {
	Status int
	Code   string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Errorf returns an *Error.
func Errorf(status int, code, format string, args ...any) error {
	return &Error{Status: status, Code: code, Msg: fmt.Sprintf(format, args...)}
}

type errBody struct {
	Error errDetail `json:"error"`
}

type errDetail struct {
	Code     string    `json:"code"`
	Message  string    `json:"message"`
	Node     string    `json:"node,omitempty"`
	Field    string    `json:"field,omitempty"`
	Line     int       `json:"line,omitempty"`
	Column   int       `json:"column,omitempty"`
	Problems []Problem `json:"problems,omitempty"`
	ID       string    `json:"id,omitempty"`
}

// Problem is one validation problem as the API (and the editor's side
// panel) shows it.
type Problem struct {
	Node    string `json:"node,omitempty"`
	Field   string `json:"field,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
}

// Problems lists the validation problems in err: each of an
// engine.ValidationErrors, the one *engine.ValidationError, or for any
// other error its text alone (an embedder's deploy check, say). None for
// nil.
func Problems(err error) []Problem {
	out := []Problem{}
	var list engine.ValidationErrors
	var one *engine.ValidationError
	switch {
	case errors.As(err, &list):
		for _, e := range list {
			out = append(out, Problem{e.Node, e.Field, e.Line, e.Column, e.Msg})
		}
	case errors.As(err, &one):
		out = append(out, Problem{one.Node, one.Field, one.Line, one.Column, one.Msg})
	case err != nil:
		out = append(out, Problem{Message: err.Error()})
	}
	return out
}

// WriteError writes the JSON error body.
func WriteError(w http.ResponseWriter, status int, code, msg string, ve error) {
	WriteJSON(w, status, errBody{Error: detail(code, msg, ve)})
}

// detail is the error object; ve's validation problems fill problems,
// node, field, line and column.
func detail(code, msg string, ve error) errDetail {
	d := errDetail{Code: code, Message: msg}
	if ve == nil {
		return d
	}
	d.Problems = Problems(ve)
	if first := engine.FirstValidation(ve); first != nil {
		d.Node, d.Field, d.Line, d.Column = first.Node, first.Field, first.Line, first.Column
	}
	return d
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// fail answers err through the error table (errors.go).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) { Fail(w, r, h.log, err) }

func errorID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ReadBody reads a request body up to limit bytes.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	return io.ReadAll(r.Body)
}

// DecodeJSON decodes a small JSON request body into the struct v as
// strictly as flow documents are read: the body must be one JSON object
// (not null, not followed by more data), in valid UTF-8, without
// duplicate keys or unknown fields (names match exactly, not ignoring
// case). Errors say what is wrong in the API's own words: the field and
// the JSON type it wants. An empty body leaves v as it is.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := ReadBody(w, r, 1<<20)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := decodeStrict(body, v); err != nil {
		return BadRequest("%v", err)
	}
	return nil
}

func etag(rev int64) string { return `"` + strconv.FormatInt(rev, 10) + `"` }

// ifMatch turns If-None-Match: * and If-Match into a store revision
// condition for the flow id (RFC 9110 section 13.1.1). No If-Match, or
// "*", is any revision. Otherwise the header is a list of entity tags
// compared strongly: a tag this API gave out ("3") is that revision; a
// well-formed tag that is no current revision (a weak tag, "stale-etag")
// matches nothing, so the answer is 412 as for a stale revision. A header
// that is not a list of entity tags is a 400.
func (h *Handler) ifMatch(r *http.Request, id string) (int64, error) {
	if strings.TrimSpace(r.Header.Get("If-None-Match")) == "*" {
		return store.MustCreate, nil
	}
	vals := r.Header.Values("If-Match")
	if len(vals) == 0 {
		return store.AnyRev, nil
	}
	tags, any, err := ParseETags(strings.Join(vals, ","))
	if err != nil {
		return 0, BadRequest("If-Match: %v", err)
	}
	if any {
		return store.AnyRev, nil
	}
	var revs []int64
	for _, t := range tags {
		if n, ok := revisionTag(t); ok {
			revs = append(revs, n)
		}
	}
	switch len(revs) {
	case 0:
		return 0, fmt.Errorf("If-Match %s names no revision of flow %q: %w", truncate(strings.Join(vals, ","), 80), id, store.ErrConflict)
	case 1:
		return revs[0], nil
	}
	// Several: the one that is current, if any (the store still checks it).
	info, err := h.app.Info(r.Context(), id)
	if err != nil {
		return 0, err
	}
	if slices.Contains(revs, info.Rev) {
		return info.Rev, nil
	}
	return 0, fmt.Errorf("If-Match names no current revision of flow %q: %w", id, store.ErrConflict)
}

// revisionTag reads a strong entity tag this API gave out: a revision.
func revisionTag(tag string) (int64, bool) {
	if strings.HasPrefix(tag, "W/") {
		return 0, false // weak tags never match strongly
	}
	n, err := strconv.ParseInt(strings.Trim(tag, `"`), 10, 64)
	if err != nil || n < 1 || strconv.FormatInt(n, 10) != strings.Trim(tag, `"`) {
		return 0, false
	}
	return n, true
}

// ParseETags parses an If-Match or If-None-Match value: "*", or a comma
// list of entity tags (`"x"` or `W/"x"`, etagc characters inside the
// quotes; RFC 9110 sections 8.8.3 and 5.6.1). It returns the tags with
// their quotes and W/ prefix.
func ParseETags(v string) (tags []string, any bool, err error) {
	v = strings.Trim(v, " \t")
	if v == "*" {
		return nil, true, nil
	}
	for i := 0; i < len(v); {
		switch v[i] {
		case ' ', '\t', ',': // empty list elements are ignored
			i++
			continue
		}
		start := i
		if strings.HasPrefix(v[i:], "W/") {
			i += 2
		}
		if i >= len(v) || v[i] != '"' {
			return nil, false, fmt.Errorf("%q is not an entity tag (a quoted string like \"3\")", truncate(v[start:], 40))
		}
		end := strings.IndexByte(v[i+1:], '"')
		if end < 0 {
			return nil, false, fmt.Errorf("%q: the entity tag has no closing quote", truncate(v[start:], 40))
		}
		for _, c := range []byte(v[i+1 : i+1+end]) {
			if c != 0x21 && (c < 0x23 || c == 0x7f) { // etagc = %x21 / %x23-7E / obs-text
				return nil, false, fmt.Errorf("%q is not an entity tag: a character it may not hold", truncate(v[start:], 40))
			}
		}
		i += end + 2
		tags = append(tags, v[start:i])
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if i < len(v) && v[i] != ',' {
			return nil, false, fmt.Errorf("%q: entity tags must be separated by commas", truncate(v[start:], 40))
		}
	}
	if len(tags) == 0 {
		return nil, false, errors.New("no entity tag")
	}
	return tags, false, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
