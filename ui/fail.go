package ui

import (
	"net/http"
	"strconv"

	"github.com/flowd/flowd/ui/api"
)

// Pages answer errors with the admin API's error table (ui/api/errors.go),
// so a stale revision, a missing flow or a store that cannot be reached has
// the same status on a page as in the API and the editor.

// pageError maps err to the status a page answers with and a flash that
// says what went wrong, setting Retry-After when the table has one. For an
// error the table does not know it answers the 500 itself (serverError)
// and returns ok false.
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, err error) (status int, fl *Flash, ok bool) {
	a := api.Classify(err)
	if a.Internal {
		s.serverError(w, r, err)
		return 0, nil, false
	}
	if a.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(a.RetryAfter, 10))
	}
	return a.Status, &Flash{Kind: "error", Text: pageText(a)}, true
}

// pageText is the flash text of an error answer: the table's message with
// a capital and a full stop.
func pageText(a api.Answer) string {
	t := a.Message
	if t == "" {
		return http.StatusText(a.Status) + "."
	}
	if c := t[0]; c >= 'a' && c <= 'z' {
		t = string(c-'a'+'A') + t[1:]
	}
	if last := t[len(t)-1]; last != '.' && last != '?' && last != '!' {
		t += "."
	}
	return t
}
