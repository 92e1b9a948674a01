package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/passhash"
	"github.com/flowd/flowd/store"
)

// TestErrorTable checks every row: a wrapped sentinel gets the row's
// status, code and Retry-After; the code leads back to the same sentinel,
// and through a real answer (Fail, then FromResponse) errors.Is holds on
// the client's side.
func TestErrorTable(t *testing.T) {
	codes := map[string]bool{}
	for _, r := range table {
		t.Run(r.code, func(t *testing.T) {
			if codes[r.code] {
				t.Fatalf("code %q is in the table twice: the way back would be ambiguous", r.code)
			}
			codes[r.code] = true
			err := fmt.Errorf("doing a thing: %w", r.err)
			a := Classify(err)
			if a.Status != r.status || a.Code != r.code || a.Internal || a.RetryAfter != r.retry {
				t.Fatalf("Classify = %+v, want %d %s retry %d", a, r.status, r.code, r.retry)
			}
			if got := Sentinel(r.code); got != r.err {
				t.Fatalf("Sentinel(%q) = %v, want %v", r.code, got, r.err)
			}
			w := httptest.NewRecorder()
			Fail(w, httptest.NewRequest("GET", "/x", nil), discard{}, err)
			if w.Code != r.status {
				t.Fatalf("Fail answered %d, want %d", w.Code, r.status)
			}
			if got := w.Header().Get("Retry-After"); (r.retry > 0) != (got != "") {
				t.Errorf("Retry-After %q with a row default of %d", got, r.retry)
			}
			if r.status == statusClientClosed {
				return // nobody reads it: no body
			}
			back := FromResponse(w.Code, w.Header(), w.Body.Bytes())
			if !errors.Is(back, r.err) {
				t.Errorf("FromResponse(%s) = %v, not %v", w.Body, back, r.err)
			}
		})
	}
	// The sentinels a person can meet at the admin edge, by name: a row
	// missing for one of them would be a 500.
	for _, must := range []error{store.ErrNotFound, store.ErrConflict, store.ErrInvalid, store.ErrUnavailable,
		store.ErrClosed, engine.ErrInvalidFlow, app.ErrIDMismatch, passhash.ErrBusy, oauth.ErrThrottled, context.Canceled} {
		if Classify(must).Internal {
			t.Errorf("%v has no row", must)
		}
	}
}

type discard struct{}

func (discard) Error(string, ...any) {}

// TestClassifyShapes covers the errors that are not plain sentinels.
func TestClassifyShapes(t *testing.T) {
	verr := engine.ValidationErrors{{Node: "rotate", Field: "retire_after", Msg: "too short"}}
	for _, tc := range []struct {
		name    string
		err     error
		status  int
		code    string
		retry   int64
		message string // part of the message
	}{
		{"body over the limit", fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 10}), 413, "too_large", 0, "over 10 bytes"},
		{"an *Error keeps its own", Errorf(http.StatusForbidden, "forbidden", "no"), 403, "forbidden", 0, "no"},
		{"validation", fmt.Errorf("deploy: %w", verr), 422, "invalid_flow", 0, "too short"},
		{"the pool's wait", &oauth.RetryError{Err: passhash.ErrBusy, After: 3 * time.Second}, 503, "busy", 3, "Try again in 3 s"},
		{"a wait added", WithRetryAfter(passhash.ErrBusy, 2500*time.Millisecond), 503, "busy", 3, "Try again in 3 s"},
		{"throttled with its wait", &oauth.RetryError{Err: oauth.ErrThrottled, After: 7 * time.Second}, 429, "throttled", 7, "too many"},
		{"store down", fmt.Errorf("get flow: %w", store.ErrUnavailable), 503, "unavailable", 2, "unavailable"},
		{"a store that did not answer decides", fmt.Errorf("check routes: %w: %w", engine.ErrInvalidFlow, store.ErrUnavailable), 503, "unavailable", 2, "check routes"},
		{"stale revision says what to do", fmt.Errorf("put: %w", store.ErrConflict), 412, "conflict", 0, "reload it"},
		{"a message of its own", Wrapf(store.ErrNotFound, "no run %q", "r1"), 404, "not_found", 0, `no run "r1"`},
		{"a create that found the flow says so", Wrapf(fmt.Errorf("put: %w", store.ErrConflict), "a flow %q exists already", "x"), 412, "conflict", 0, `a flow "x" exists already`},
		{"unknown: a 500 without its text", errors.New("bolt: disk on fire"), 500, "internal", 0, "server log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Classify(tc.err)
			if a.Status != tc.status || a.Code != tc.code || a.RetryAfter != tc.retry || !strings.Contains(a.Message, tc.message) {
				t.Fatalf("%+v, want %d %s retry %d message with %q", a, tc.status, tc.code, tc.retry, tc.message)
			}
			if tc.status == 500 && strings.Contains(a.Message, "fire") {
				t.Fatal("a 500 shows its cause")
			}
		})
	}
}

// TestFromResponseProblems: a validation answer comes back as
// engine.ValidationErrors, every problem with its node, field and place.
func TestFromResponseProblems(t *testing.T) {
	verr := engine.ValidationErrors{
		{Node: "a", Field: "set.x", Line: 1, Column: 4, Msg: "unexpected token"},
		{Node: "b", Field: "type", Msg: "unknown block type"},
	}
	w := httptest.NewRecorder()
	Fail(w, httptest.NewRequest("PUT", "/x", nil), discard{}, fmt.Errorf("save: %w", verr))
	err := FromResponse(w.Code, w.Header(), w.Body.Bytes())
	var got engine.ValidationErrors
	if !errors.Is(err, engine.ErrInvalidFlow) || !errors.As(err, &got) || len(got) != 2 {
		t.Fatalf("%v (%s)", err, w.Body)
	}
	for i := range verr {
		if *got[i] != *verr[i] {
			t.Errorf("problem %d: %+v, want %+v", i, *got[i], *verr[i])
		}
	}
	if err.Error() != verr.Error() {
		t.Errorf("text %q, want the local %q", err, verr)
	}
}

// TestFromResponseHostile: answers that are not the API's (a proxy's
// page, garbage, a huge body) still give an error, by their status.
func TestFromResponseHostile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{"proxy page", 502, "<html>bad gateway</html>", store.ErrUnavailable},
		{"plain 404", 404, "404 page not found", store.ErrNotFound},
		{"unknown code", 412, `{"error":{"code":"something_new","message":"x"}}`, store.ErrConflict},
		{"null error", 500, `{"error":null}`, ErrInternal},
		{"huge body", 400, `{"error":{"code":"bad_request","message":"` + strings.Repeat("a", 2<<20) + `"}}`, ErrBadRequest},
		{"problems not a list", 422, `{"error":{"code":"invalid_flow","problems":{"node":1}}}`, engine.ErrInvalidFlow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := FromResponse(tc.status, http.Header{}, []byte(tc.body))
			if !errors.Is(err, tc.want) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
			if len(err.Error()) > 4096 && tc.name != "huge body" {
				t.Errorf("error text of %d bytes", len(err.Error()))
			}
		})
	}
}
