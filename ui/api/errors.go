package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/audit"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/blocks/schedule"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/passhash"
	"github.com/flowd/flowd/store"
)

// The one error table of the admin edge. The JSON API (Fail), the editor
// (through Fail) and the HTML pages (through Classify) answer an error
// with the status of its row, and the CLI's API client maps the row's code
// back to the sentinel (FromResponse), so errors.Is holds on either side
// of the wire. A new sentinel that can reach a person needs one row here.
//
// Rows are matched in order with errors.Is; codes are unique, so the way
// back is unambiguous. Retry rows answer Retry-After: the seconds the error
// carries (RetryAfterSeconds, as oauth.RetryError and WithRetryAfter do),
// else the row's default.
var table = []row{
	// A change made, but its follow-up not finished (a password set, not
	// every session ended): whatever stopped the follow-up, the caller
	// must hear that the change stands and what to do again.
	{oidc.ErrSignOutIncomplete, http.StatusInternalServerError, "sign_out_incomplete", 0},

	// Nothing was changed; come back shortly. First: whatever else an
	// error says, a store that did not answer decides the outcome. The
	// store's default is about one leader election of a cluster store (as
	// http.in answers).
	{passhash.ErrBusy, http.StatusServiceUnavailable, "busy", 1},
	{store.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", 2},
	{store.ErrClosed, http.StatusServiceUnavailable, "closed", 2},
	{engine.ErrClosed, http.StatusServiceUnavailable, "shutting_down", 2},

	// Then conflicts: a stale revision wrapped with a not-found cause is
	// still a stale revision.
	{store.ErrConflict, http.StatusPreconditionFailed, "conflict", 0},
	{engine.ErrInvalidFlow, http.StatusUnprocessableEntity, "invalid_flow", 0},
	{app.ErrIDMismatch, http.StatusBadRequest, "id_mismatch", 0},
	{store.ErrInvalid, http.StatusBadRequest, "invalid_record", 0},
	{engine.ErrNotDeployed, http.StatusConflict, "not_deployed", 0},
	{engine.ErrNoTrigger, http.StatusConflict, "no_trigger", 0},

	{oauth.ErrClientExists, http.StatusConflict, "client_exists", 0},
	{oauth.ErrNoClient, http.StatusNotFound, "no_client", 0},
	{oauth.ErrBadInput, http.StatusBadRequest, "bad_client", 0},
	{oauth.ErrThrottled, http.StatusTooManyRequests, "throttled", 1},
	{oidc.ErrUserExists, http.StatusConflict, "user_exists", 0},
	{oidc.ErrNoUser, http.StatusNotFound, "no_user", 0},
	{oidc.ErrBadUser, http.StatusBadRequest, "bad_user", 0},
	{oidc.ErrNoConsent, http.StatusNotFound, "no_consent", 0},

	{jose.ErrNoKeyset, http.StatusNotFound, "no_keyset", 0},
	{jose.ErrKeyNotFound, http.StatusNotFound, "no_key", 0},
	{jose.ErrKeysetExists, http.StatusConflict, "keyset_exists", 0},
	{jose.ErrUnsupported, http.StatusBadRequest, "unsupported_alg", 0},
	{jose.ErrNoActiveKey, http.StatusBadRequest, "no_active_key", 0},
	{jose.ErrInvalidKeyset, http.StatusBadRequest, "bad_keyset", 0},
	{jose.ErrOverlapTooShort, http.StatusBadRequest, "overlap_too_short", 0},

	{schedule.ErrNotFound, http.StatusNotFound, "no_schedule", 0},
	{schedule.ErrBadSpec, http.StatusBadRequest, "bad_spec", 0},
	{schedule.ErrBadTimezone, http.StatusBadRequest, "bad_timezone", 0},
	{audit.ErrBadQuery, http.StatusBadRequest, "bad_query", 0},

	// The store's not-found after the specific ones: a registry that says
	// "no client" wraps a store miss.
	{store.ErrNotFound, http.StatusNotFound, "not_found", 0},

	{errTooLarge, http.StatusRequestEntityTooLarge, "too_large", 0},
	{ErrBadRequest, http.StatusBadRequest, "bad_request", 0},
	{context.Canceled, statusClientClosed, "cancelled", 0},
}

type row struct {
	err    error
	status int
	code   string
	retry  int64 // default Retry-After in seconds; 0: none
}

// statusClientClosed is nginx's 499: the client went away; nobody reads it.
const statusClientClosed = 499

// ErrBadRequest is a request the API refuses as malformed (a header, a
// query parameter, a JSON body): code "bad_request", 400.
var ErrBadRequest = errors.New("bad request")

// BadRequest returns an error wrapping ErrBadRequest whose text is the
// formatted message alone.
func BadRequest(format string, args ...any) error {
	return Wrapf(ErrBadRequest, format, args...)
}

// Wrapf returns an error that is sentinel for errors.Is (and so gets its
// row of the table) but whose text is the formatted message alone: the
// words a handler knows better than the sentinel's.
func Wrapf(sentinel error, format string, args ...any) error {
	return &wrapped{fmt.Sprintf(format, args...), sentinel}
}

type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }

// errTooLarge stands for *http.MaxBytesError (a type, not a sentinel) in
// the table, and is what FromResponse gives back for a 413.
var errTooLarge = errors.New("request body too large")

// ErrTooLarge is what a 413 maps back to; *http.MaxBytesError maps to it.
var ErrTooLarge = errTooLarge

// ErrInternal is what a 500 maps back to: the cause stayed on the server.
var ErrInternal = errors.New("internal server error")

// Answer is how the edge answers one error.
type Answer struct {
	Status int
	Code   string
	// Message is safe to show: the error's text, or for a 500 a fixed text.
	Message string
	// RetryAfter is the Retry-After value in seconds; 0: none.
	RetryAfter int64
	// Internal: no row matched; the cause must be logged, not shown.
	Internal bool
}

// Classify looks err up in the table. An *Error keeps its own status and
// code; an error no row matches is a 500 (Internal).
func Classify(err error) Answer {
	var ae *Error
	if errors.As(err, &ae) {
		return Answer{Status: ae.Status, Code: ae.Code, Message: ae.Msg}
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		err = fmt.Errorf("%w: %w", errTooLarge, err)
	}
	for _, r := range table {
		if !errors.Is(err, r.err) {
			continue
		}
		a := Answer{Status: r.status, Code: r.code, Message: err.Error()}
		if r.retry > 0 {
			a.RetryAfter = r.retry
			var ra retryAfterer
			if errors.As(err, &ra) {
				a.RetryAfter = max(1, ra.RetryAfterSeconds())
			}
		}
		if _, own := errors.AsType[*wrapped](err); own {
			return a // a handler's own words (Wrapf)
		}
		switch r.err {
		case store.ErrConflict:
			a.Message = ConflictMessage
		case passhash.ErrBusy:
			a.Message = BusyMessage(a.RetryAfter)
		case errTooLarge:
			if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
				a.Message = fmt.Sprintf("request body is over %d bytes", mbe.Limit)
			}
		}
		return a
	}
	return Answer{Status: http.StatusInternalServerError, Code: "internal",
		Message: "internal error; the server log has details under this id", Internal: true}
}

// Status is the HTTP status and the stable code of err.
func Status(err error) (int, string) {
	a := Classify(err)
	return a.Status, a.Code
}

// ConflictMessage is what a stale revision says, on every surface.
const ConflictMessage = "the flow changed since you loaded it (in another tab or by someone else): reload it, merge your changes and save again"

// Sentinel returns the error a code stands for, nil for a code the table
// does not know.
func Sentinel(code string) error {
	for _, r := range table {
		if r.code == code {
			return r.err
		}
	}
	if code == "internal" {
		return ErrInternal
	}
	return nil
}

// Fail answers err as the JSON error body with its row's status; a
// Retry-After when the row has one. An error no row knows is logged with
// an id that the answer carries; its text never leaves the server.
func Fail(w http.ResponseWriter, r *http.Request, log interface {
	Error(msg string, args ...any)
}, err error) {
	a := Classify(err)
	if a.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(a.RetryAfter, 10))
	}
	if a.Internal {
		id := errorID()
		log.Error("admin error", "id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		WriteJSON(w, a.Status, errBody{Error: errDetail{Code: a.Code, Message: a.Message, ID: id}})
		return
	}
	if a.Status == statusClientClosed {
		w.WriteHeader(a.Status)
		return
	}
	var ve error
	if a.Code == "invalid_flow" {
		ve = err
	}
	WriteError(w, a.Status, a.Code, a.Message, ve)
}

// RemoteError is an error answer of the API read back by a client (the
// CLI): errors.Is finds the sentinel its code stands for, and for
// "invalid_flow" errors.As finds engine.ValidationErrors with each
// problem's node, field, line and column, as a local call returns them.
type RemoteError struct {
	Status     int
	Code       string
	Message    string
	ID         string // a 500's error id, in the server log
	RetryAfter int64
	err        error // the sentinel, or engine.ValidationErrors
}

func (e *RemoteError) Error() string {
	if ve, ok := e.err.(engine.ValidationErrors); ok {
		return ve.Error() // the words a local validation gives
	}
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.ID != "" {
		return fmt.Sprintf("server: %s (%s, error id %s)", msg, e.Code, e.ID)
	}
	return fmt.Sprintf("server: %s (%s)", msg, e.Code)
}

func (e *RemoteError) Unwrap() error { return e.err }

// maxErrorBody bounds what FromResponse reads of an error answer.
const maxErrorBody = 1 << 20

// FromResponse turns an error answer (status >= 300) back into an error:
// the JSON body's code gives the sentinel (Sentinel), its problems the
// validation errors. An answer without a code the table knows (a proxy's
// 502, a plain-text 404) gets the sentinel of its status when one fits.
func FromResponse(status int, header http.Header, body []byte) error {
	var b errBody
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	_ = json.Unmarshal(body, &b) // not JSON: the status decides
	d := b.Error
	e := &RemoteError{Status: status, Code: d.Code, Message: d.Message, ID: d.ID}
	if v := header.Get("Retry-After"); v != "" {
		e.RetryAfter, _ = strconv.ParseInt(v, 10, 64)
	}
	if d.Code == "invalid_flow" {
		var ve engine.ValidationErrors
		for _, p := range d.Problems {
			ve = append(ve, &engine.ValidationError{Node: p.Node, Field: p.Field, Line: p.Line, Column: p.Column, Msg: p.Message})
		}
		if len(ve) == 0 {
			ve = engine.ValidationErrors{{Node: d.Node, Field: d.Field, Line: d.Line, Column: d.Column, Msg: d.Message}}
		}
		e.err = ve
		return e
	}
	if e.err = Sentinel(d.Code); e.err == nil {
		e.err = byStatus[status]
		if e.Code == "" {
			e.Code = "http_" + strconv.Itoa(status)
		}
	}
	return e
}

// byStatus is the way back for answers without a known code.
var byStatus = map[int]error{
	http.StatusBadRequest:            ErrBadRequest,
	http.StatusNotFound:              store.ErrNotFound,
	http.StatusPreconditionFailed:    store.ErrConflict,
	http.StatusRequestEntityTooLarge: ErrTooLarge,
	http.StatusInternalServerError:   ErrInternal,
	http.StatusBadGateway:            store.ErrUnavailable,
	http.StatusServiceUnavailable:    store.ErrUnavailable,
	http.StatusGatewayTimeout:        store.ErrUnavailable,
}
