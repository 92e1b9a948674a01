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
	"strconv"
	"strings"

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
}

// New returns the API handler. Other packages add their routes with Handle.
func New(a *app.App, tokens TokenChecker, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{app: a, tokens: tokens, log: log, mux: http.NewServeMux()}
	h.route("GET /flows", h.listFlows)
	h.route("POST /flows", h.createFlow)
	h.route("GET /flows/{id}", h.getFlow)
	h.route("PUT /flows/{id}", h.putFlow)
	h.route("DELETE /flows/{id}", h.deleteFlow)
	h.route("GET /flows/{id}/info", h.flowInfo)
	h.route("POST /flows/{id}/deploy", h.deploy)
	h.route("POST /flows/{id}/undeploy", h.undeploy)
	h.route("POST /flows/{id}/run", h.run)
	h.route("GET /flows/{id}/runs", h.runs)
	h.route("GET /flows/{id}/runs/{run}", h.getRun)
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
	Problems []problem `json:"problems,omitempty"`
	ID       string    `json:"id,omitempty"`
}

type problem struct {
	Node    string `json:"node,omitempty"`
	Field   string `json:"field,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
}

// WriteError writes the JSON error body.
func WriteError(w http.ResponseWriter, status int, code, msg string, ve error) {
	d := errDetail{Code: code, Message: msg}
	var list engine.ValidationErrors
	if errors.As(ve, &list) {
		for _, e := range list {
			d.Problems = append(d.Problems, problem{e.Node, e.Field, e.Line, e.Column, e.Msg})
		}
	}
	if first := engine.FirstValidation(ve); first != nil {
		d.Node, d.Field, d.Line, d.Column = first.Node, first.Field, first.Line, first.Column
	}
	WriteJSON(w, status, errBody{Error: d})
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

// fail maps an error to a status code.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *Error
	var mbe *http.MaxBytesError
	if secs, busy := IsBusy(err); busy {
		writeBusy(w, secs)
		return
	}
	switch {
	case errors.As(err, &ae):
		WriteError(w, ae.Status, ae.Code, ae.Msg, nil)
	case errors.As(err, &mbe):
		WriteError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body is over %d bytes", mbe.Limit), nil)
	case errors.Is(err, engine.ErrInvalidFlow):
		WriteError(w, http.StatusUnprocessableEntity, "invalid_flow", err.Error(), err)
	case errors.Is(err, app.ErrIDMismatch):
		WriteError(w, http.StatusBadRequest, "id_mismatch", err.Error(), nil)
	case errors.Is(err, store.ErrNotFound):
		WriteError(w, http.StatusNotFound, "not_found", err.Error(), nil)
	case errors.Is(err, store.ErrConflict):
		WriteError(w, http.StatusPreconditionFailed, "conflict",
			"the flow changed since you loaded it: reload it, merge your changes and save again", nil)
	case errors.Is(err, engine.ErrNotDeployed), errors.Is(err, engine.ErrNoTrigger):
		WriteError(w, http.StatusConflict, "not_deployed", err.Error(), nil)
	case errors.Is(err, store.ErrInvalid):
		WriteError(w, http.StatusBadRequest, "bad_request", err.Error(), nil)
	case errors.Is(err, context.Canceled):
		WriteError(w, 499, "cancelled", "request cancelled", nil)
	default:
		id := errorID()
		h.log.Error("admin API error", "id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		WriteJSON(w, http.StatusInternalServerError, errBody{Error: errDetail{Code: "internal",
			Message: "internal error; the server log has details under this id", ID: id}})
	}
}

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
		return Errorf(http.StatusBadRequest, "bad_request", "%v", err)
	}
	return nil
}

func etag(rev int64) string { return `"` + strconv.FormatInt(rev, 10) + `"` }

// ifMatch turns If-Match / If-None-Match into a store revision condition.
func ifMatch(r *http.Request) (int64, error) {
	if r.Header.Get("If-None-Match") == "*" {
		return store.MustCreate, nil
	}
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return store.AnyRev, nil
	}
	v = strings.TrimPrefix(v, "W/")
	n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
	if err != nil || n < 1 {
		return 0, Errorf(http.StatusBadRequest, "bad_request", "If-Match must be an ETag this API returned, like \"3\"")
	}
	return n, nil
}
