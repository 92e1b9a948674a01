package httpblock

import (
	"reflect"
	"strings"
	"testing"
)

func TestDecodeJSON(t *testing.T) {
	nest := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	tests := []struct {
		name string
		in   string
		want any
		err  error
	}{
		{"object", `{"a": 1, "b": "x"}`, map[string]any{"a": 1.0, "b": "x"}, nil},
		{"same key at other levels is fine", `{"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]}`,
			map[string]any{"a": map[string]any{"a": 1.0}, "b": []any{map[string]any{"a": 2.0}, map[string]any{"a": 3.0}}}, nil},
		{"brackets and quotes inside strings", `{"k": "{[\"}]", "v": "\\"}`, map[string]any{"k": `{["}]`, "v": `\`}, nil},
		{"32 levels", nest(32), nil, nil},
		{"33 levels", nest(33), nil, errDeepJSON},
		{"duplicate key", `{"role": "user", "role": "admin"}`, nil, errDupKey},
		{"duplicate key, one escaped", `{"role": "user", "\u0072ole": "admin"}`, nil, errDupKey},
		{"duplicate key after invalid UTF-8 turns to U+FFFD", "{\"\xff\": 1, \"\xfe\": 2}", nil, errDupKey},
		{"duplicate key in a nested object", `[{"x": 1, "y": {"z": 1, "z": 2}}]`, nil, errDupKey},
		{"truncated", `{"a": `, nil, errBadJSON},
		{"trailing data", `{} {}`, nil, errBadJSON},
		{"unterminated string", `{"a`, nil, errBadJSON},
		{"stray closer", `]`, nil, errBadJSON},
		{"malformed and duplicate: malformed wins", `{"a":1,"a":}`, nil, errBadJSON},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeJSON([]byte(tc.in))
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}
