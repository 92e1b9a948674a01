package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDecodeJSONStrict: admin bodies are read as strictly as flow
// documents, and errors speak JSON, not Go.
func TestDecodeJSONStrict(t *testing.T) {
	type body struct {
		Alg     string         `json:"alg"`
		Scopes  []string       `json:"scopes"`
		Public  bool           `json:"public"`
		Count   int            `json:"count"`
		Input   map[string]any `json:"input"`
		Retired string         `json:"retire_after"`
	}
	tests := []struct {
		name, body string
		want       string // "" for success
		wantAlg    string
	}{
		{"empty body", "", "", ""},
		{"object", `{"alg": "ES256", "scopes": ["a"], "input": {"x": {"y": 1}}}`, "", "ES256"},
		{"two objects", `{} {}`, "request body: trailing data after the JSON object", ""},
		{"trailing garbage", `{"alg":"ES256"}x`, "request body: trailing data after the JSON object", ""},
		{"null", `null`, "request body must be a JSON object, not null", ""},
		{"array", `[{"alg":"ES256"}]`, "request body must be a JSON object, not an array", ""},
		{"string", `"ES256"`, "request body must be a JSON object, not a string", ""},
		{"number", `42`, "request body must be a JSON object, not a number", ""},
		{"unknown field", `{"alg":"ES256","force":true}`,
			`request body: unknown field "force" (known: alg, scopes, public, count, input, retire_after)`, ""},
		{"field in another case", `{"ALG":"ES256"}`,
			`request body: unknown field "ALG" (known: alg, scopes, public, count, input, retire_after)`, ""},
		{"duplicate key", `{"alg":"ES256","alg":"RS256"}`, `request body: duplicate key "alg"`, ""},
		{"nested duplicate key", `{"input":{"a":[{"b":1,"b":2}]}}`, `request body: duplicate key "input.a[0].b"`, ""},
		{"number for string", `{"alg": 5}`, `request body: "alg" must be a string, not a number`, ""},
		{"string for array", `{"scopes": "a b"}`, `request body: "scopes" must be an array of strings, not a string`, ""},
		{"number in array", `{"scopes": ["a", 1]}`, `request body: "scopes" must be a string, not a number`, ""},
		{"string for bool", `{"public": "yes"}`, `request body: "public" must be true or false, not a string`, ""},
		{"fraction for int", `{"count": 1.5}`, `request body: "count" must be a whole number, not the number 1.5`, ""},
		{"array for object", `{"input": []}`, `request body: "input" must be an object, not an array`, ""},
		{"malformed", `{"alg": }`, "request body is not valid JSON at byte 8: invalid character '}' looking for beginning of value", ""},
		{"cut short", `{"alg": "ES`, "request body is not valid JSON: it ends too early", ""},
		{"invalid UTF-8", "{\"alg\": \"ES\xff256\"}", "request body is not valid UTF-8", ""},
		{"too deep", `{"input":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
			"request body is nested deeper than 32 levels", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(t.Context(), "POST", "/x", strings.NewReader(tc.body))
			var got body
			err := DecodeJSON(httptest.NewRecorder(), r, &got)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("error = %v, want none", err)
				}
				if got.Alg != tc.wantAlg {
					t.Errorf("alg = %q, want %q", got.Alg, tc.wantAlg)
				}
				return
			}
			a := Classify(err)
			if !errors.Is(err, ErrBadRequest) || a.Status != http.StatusBadRequest || a.Code != "bad_request" || a.Message != tc.want {
				t.Errorf("error = %v: %d %s %q\nwant    400 bad_request %q", err, a.Status, a.Code, a.Message, tc.want)
			}
			if strings.Contains(a.Message, "Go ") || strings.Contains(a.Message, "struct") || strings.Contains(a.Message, "[]string") {
				t.Errorf("error names Go types: %q", a.Message)
			}
		})
	}
}
