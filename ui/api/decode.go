package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxBodyDepth bounds the nesting of admin request bodies.
const maxBodyDepth = 32

// decodeStrict decodes one JSON object into the struct pointer v; see
// DecodeJSON. Its errors are meant for the API's clients as they are.
func decodeStrict(data []byte, v any) error {
	if !utf8.Valid(data) {
		return errors.New("request body is not valid UTF-8")
	}
	keys, err := checkObject(data)
	if err != nil {
		return err
	}
	if t := reflect.TypeOf(v).Elem(); t.Kind() == reflect.Struct {
		known := fieldNames(t)
		for _, k := range keys {
			if !slices.Contains(known, k) {
				return fmt.Errorf("request body: unknown field %q (known: %s)", k, strings.Join(known, ", "))
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("request body: %q must be %s, not %s", te.Field, typeWords(te.Type), valueWords(te.Value))
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return fmt.Errorf("request body: unknown field %s", f)
		}
		// Syntax and nesting were checked above; what is left is a value
		// the field's type refuses in another way.
		return errors.New("request body: a value does not fit its field")
	}
	return nil
}

// checkObject walks the tokens of a body: it must be exactly one JSON
// object without duplicate keys, nested at most maxBodyDepth deep. It
// returns the object's top-level keys.
func checkObject(data []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxErr(err)
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("request body must be a JSON object, not %s", tokenWords(tok))
	}
	type frame struct {
		obj  bool
		keys map[string]bool
		key  bool   // in an object: the next token is a key
		cur  string // in an object: the member being read
		idx  int    // in an array: the element being read
		path string // "" at the top, else "a.b[2]."
	}
	stack := []frame{{obj: true, keys: map[string]bool{}, key: true}}
	var top []string
	for len(stack) > 0 {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxErr(err)
		}
		f := &stack[len(stack)-1]
		if s, ok := tok.(string); ok && f.obj && f.key {
			if f.keys[s] {
				return nil, fmt.Errorf("request body: duplicate key %q", f.path+s)
			}
			f.keys[s] = true
			f.key, f.cur = false, s
			if len(stack) == 1 {
				top = append(top, s)
			}
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= maxBodyDepth {
				return nil, fmt.Errorf("request body is nested deeper than %d levels", maxBodyDepth)
			}
			path := f.path + f.cur + "."
			if !f.obj {
				path = strings.TrimSuffix(f.path, ".") + "[" + strconv.Itoa(f.idx) + "]."
			}
			stack = append(stack, frame{obj: tok == json.Delim('{'), keys: map[string]bool{}, key: true, path: path})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// One value ended in the enclosing container.
		if len(stack) > 0 {
			if p := &stack[len(stack)-1]; p.obj {
				p.key = true
			} else {
				p.idx++
			}
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("request body: trailing data after the JSON object")
	}
	return top, nil
}

func syntaxErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("request body is not valid JSON: it ends too early")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("request body is not valid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	}
	return fmt.Errorf("request body is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// fieldNames lists the JSON member names of a struct type.
func fieldNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// typeWords names what a Go type accepts in JSON words.
func typeWords(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if e := typeWords(t.Elem()); strings.HasPrefix(e, "a ") {
			return "an array of " + strings.TrimPrefix(e, "a ") + "s"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return typeWords(t.Elem())
	}
	return "another JSON type"
}

// valueWords names the JSON value encoding/json reported ("string",
// "number 1.5", "bool", "array", "object").
func valueWords(v string) string {
	switch kind, _, _ := strings.Cut(v, " "); kind {
	case "string":
		return "a string"
	case "number":
		if n, ok := strings.CutPrefix(v, "number "); ok {
			return "the number " + n
		}
		return "a number"
	case "bool":
		return "true or false"
	case "array":
		return "an array"
	case "object":
		return "an object"
	}
	return v
}

func tokenWords(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return "a number"
	case json.Delim:
		return "an array"
	}
	return "another value"
}
