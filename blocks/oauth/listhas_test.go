package oauth

import (
	"slices"
	"testing"
)

// TestListHas: listHas answers what slices.Contains(StringList(v), s)
// answers, on the shapes a message list takes.
func TestListHas(t *testing.T) {
	lists := map[string]any{
		"strings":     []string{"read", "write"},
		"decoded":     []any{"read", 1.0, nil, "write"},
		"not strings": []any{1.0, true, map[string]any{"read": "read"}},
		"empty":       []any{},
		"nil":         nil,
		"text":        "read write",
		"typed map":   map[string]string{"read": "read"},
	}
	for name, v := range lists {
		t.Run(name, func(t *testing.T) {
			for _, s := range []string{"read", "write", "", "admin", "1"} {
				if got, want := listHas(v, s), slices.Contains(StringList(v), s); got != want {
					t.Errorf("listHas(%v, %q) = %v, want %v", v, s, got, want)
				}
			}
		})
	}
}
