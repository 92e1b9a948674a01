package httpblock

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
)

// errBadJSON and friends describe why a body was refused; their texts go
// to clients as error_description, so they name no internals.
var (
	errBadJSON  = errors.New("body is not valid JSON")
	errDeepJSON = fmt.Errorf("body is nested deeper than %d levels", maxJSONDepth)
	errDupKey   = errors.New("body has a duplicate object key")
	errBadForm  = errors.New("body is not a valid form")
	errBadQuery = errors.New("query string is malformed")
	errReadBody = errors.New("body could not be read")
)

// decodeJSON parses one JSON value the way expressions want it: objects as
// map[string]any, arrays as []any, numbers as float64. It refuses nesting
// deeper than maxJSONDepth and duplicate object keys: two parsers that
// disagree on which duplicate wins are a classic way past a check.
//
// A byte scan checks the shape first (cheap, and a deep document is refused
// before any decoding); json.Unmarshal then validates and decodes. This is
// about three times faster than building the value from json.Decoder
// tokens, which matters for a hostile 1 MiB body.
func decodeJSON(data []byte) (any, error) {
	shapeErr := checkShape(data)
	if shapeErr == errDeepJSON {
		return nil, shapeErr
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, errBadJSON
	}
	if shapeErr != nil {
		return nil, shapeErr
	}
	return v, nil
}

// checkShape scans JSON text for nesting depth and duplicate object keys.
// It does not validate: json.Unmarshal does, so on malformed input its
// answer does not matter.
func checkShape(data []byte) error {
	type frame struct {
		keys      map[string]struct{} // object keys seen; nil for arrays
		obj       bool
		expectKey bool
	}
	var buf [maxJSONDepth]frame
	stack := buf[:0]
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '"':
			j, plain := i+1, true
			for ; j < len(data) && data[j] != '"'; j++ {
				switch {
				case data[j] == '\\':
					plain = false
					j++
				case data[j] >= 0x80:
					plain = false // decoding may change it (invalid UTF-8 -> U+FFFD)
				}
			}
			if j >= len(data) {
				return errBadJSON
			}
			if n := len(stack); n > 0 && stack[n-1].expectKey {
				top := &stack[n-1]
				var key string
				if plain {
					key = string(data[i+1 : j])
				} else if json.Unmarshal(data[i:j+1], &key) != nil {
					return errBadJSON
				}
				if top.keys == nil {
					top.keys = make(map[string]struct{})
				}
				if _, dup := top.keys[key]; dup {
					return errDupKey
				}
				top.keys[key] = struct{}{}
				top.expectKey = false
			}
			i = j
		case '{', '[':
			if len(stack) == maxJSONDepth {
				return errDeepJSON
			}
			stack = append(stack, frame{obj: c == '{', expectKey: c == '{'})
		case '}', ']':
			if len(stack) == 0 {
				return errBadJSON
			}
			stack = stack[:len(stack)-1]
		case ',':
			if n := len(stack); n > 0 && stack[n-1].obj {
				stack[n-1].expectKey = true
			}
		}
	}
	return nil
}

// firstValues maps each name to its first value, as url.Values.Get and
// http.Request.FormValue do, so a flow reads parameters the way a Go
// handler would. The full lists stay available next to it. Values are
// strings in a map[string]any, so that a missing name reads as nil in an
// expression (msg.req.query.q ?? "default") rather than "".
func firstValues(v url.Values) map[string]any {
	out := make(map[string]any, len(v))
	for k, vs := range v {
		if len(vs) > 0 {
			out[k] = vs[0]
		}
	}
	return out
}

// parseForm parses an application/x-www-form-urlencoded body strictly: a
// bad escape or a ';' separator is an error, not a silently dropped pair.
func parseForm(body []byte) (url.Values, error) {
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errBadForm
	}
	return v, nil
}
