package editor

import (
	"encoding/json"
	"testing"

	"github.com/flowd/flowd/engine"
)

func TestHumanDuration(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"48h0m0s", "48h"},
		{"1h30m0s", "1h30m"},
		{"1m0s", "1m"},
		{"90s", "1m30s"},
		{"1h0m30s", "1h0m30s"},
		{"500ms", "500ms"},
		{"48h", "48h"},
		{"", ""},
		{"two days", "two days"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := humanDuration(tc.in); got != tc.want {
				t.Errorf("humanDuration(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestStringLiteral(t *testing.T) {
	for _, tc := range []struct {
		name, expr, text string
		ok               bool
	}{
		{"plain", `"no-store"`, "no-store", true},
		{"escaped quotes", `"Bearer error=\"invalid_token\""`, `Bearer error="invalid_token"`, true},
		{"spaces around", ` "x" `, "x", true},
		{"expression", `msg.etag`, "", false},
		{"concatenation", `"a" + "b"`, "", false},
		{"single quotes", `'x'`, "", false},
		{"unterminated", `"x`, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, ok := stringLiteral(tc.expr)
			if text != tc.text || ok != tc.ok {
				t.Errorf("stringLiteral(%q) = %q, %v; want %q, %v", tc.expr, text, ok, tc.text, tc.ok)
			}
		})
	}
}

// TestBuildFormRefsAndRequiredIf: a Ref field gets the existing names
// (nil when unknown, for a text box); RequiredIf follows the other field,
// its default included; durations read as people write them.
func TestBuildFormRefsAndRequiredIf(t *testing.T) {
	spec := engine.Spec{Type: "test.v", Fields: []engine.Field{
		{Name: "source", Kind: engine.KindEnum, Enum: []string{"keyset", "remote"}, Default: "keyset"},
		{Name: "keyset", Kind: engine.KindString, Ref: engine.RefKeyset, RequiredIf: "source=keyset"},
		{Name: "ttl", Kind: engine.KindDuration, Default: "48h0m0s"},
	}}
	cfg := func(m map[string]any) map[string]json.RawMessage {
		out := map[string]json.RawMessage{}
		for k, v := range m {
			out[k], _ = json.Marshal(v)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		config   map[string]any
		choices  map[engine.Ref][]string
		required bool
		picks    []string
		ttl      string
	}{
		{"default source: required", map[string]any{"keyset": "main"}, map[engine.Ref][]string{engine.RefKeyset: {"main", "partner"}}, true, []string{"main", "partner"}, ""},
		{"remote source: not required", map[string]any{"source": "remote", "ttl": "1h30m0s"}, map[engine.Ref][]string{engine.RefKeyset: {}}, false, []string{}, "1h30m"},
		{"list unknown: no picker", map[string]any{"source": "keyset"}, nil, true, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fv := BuildForm(engine.Node{ID: "n", Type: "test.v", Config: cfg(tc.config)}, spec, true, nil, tc.choices)
			ks, ttl := fv.Fields[1], fv.Fields[2]
			if ks.Ref != "keyset" || ks.RequiredNow != tc.required || (ks.Choices == nil) != (tc.picks == nil) || len(ks.Choices) != len(tc.picks) {
				t.Errorf("keyset field %+v", ks)
			}
			for i := range tc.picks {
				if ks.Choices[i] != tc.picks[i] {
					t.Errorf("choices %v, want %v", ks.Choices, tc.picks)
				}
			}
			if ttl.Default != "48h" || ttl.Value != tc.ttl {
				t.Errorf("ttl default %q value %q, want 48h and %q", ttl.Default, ttl.Value, tc.ttl)
			}
		})
	}
}
