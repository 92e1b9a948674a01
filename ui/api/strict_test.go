package api_test

import (
	"encoding/json"
	"testing"
)

// TestRotateRefusesLaxBodies: a rotate body that is not exactly one JSON
// object is refused before anything rotates (`{} {}` used to rotate).
func TestRotateRefusesLaxBodies(t *testing.T) {
	h, ks, _ := newKeysetAPI(t)
	for _, tc := range []struct{ name, body, msg string }{
		{"two objects", `{} {}`, "request body: trailing data after the JSON object"},
		{"null", `null`, "request body must be a JSON object, not null"},
		{"array", `[]`, "request body must be a JSON object, not an array"},
		{"duplicate alg", `{"alg":"ES256","alg":"RS256"}`, `request body: duplicate key "alg"`},
		{"wrong type", `{"retire_after": 48}`, `request body: "retire_after" must be a string, not a number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := ks.Get(t.Context(), "main")
			if err != nil {
				t.Fatal(err)
			}
			w := ksDo(t, h, "POST", "/admin/api/keysets/main/rotate", tc.body)
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != 400 ||
				e.Error.Code != "bad_request" || e.Error.Message != tc.msg {
				t.Errorf("answer %d %s, want 400 bad_request %q", w.Code, w.Body, tc.msg)
			}
			after, err := ks.Get(t.Context(), "main")
			if err != nil {
				t.Fatal(err)
			}
			if len(after.Keys) != len(before.Keys) {
				t.Errorf("keyset went from %d to %d keys: the refused body rotated", len(before.Keys), len(after.Keys))
			}
		})
	}
}
