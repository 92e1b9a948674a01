package engine

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// TestSnapshotSharing: a step's snapshot shares the parts of the previous
// one that its message did not change, and only those.
func TestSnapshotSharing(t *testing.T) {
	base := func() Msg {
		return Msg{
			"req":  map[string]any{"headers": map[string]any{"Accept": "*/*", "Authorization": "Basic eDp5"}, "path": "/x"},
			"list": []any{"a", map[string]any{"b": 1}},
			"qa":   map[string][]string{"a": {"1", "2"}},
			"n":    1,
		}
	}
	ptr := func(v any) uintptr { return reflect.ValueOf(v).Pointer() }
	tests := []struct {
		name     string
		mutate   func(Msg)
		shared   []string // top-level members whose snapshot is the previous one's
		topReuse bool
	}{
		{"unchanged", func(Msg) {}, []string{"req", "list", "qa"}, true},
		{"scalar changed", func(m Msg) { m["n"] = 2 }, []string{"req", "list", "qa"}, false},
		{"member added", func(m Msg) { m["new"] = "x" }, []string{"req", "list", "qa"}, false},
		{"member removed", func(m Msg) { delete(m, "n") }, []string{"req", "list", "qa"}, false},
		{"nested change", func(m Msg) { m["req"].(map[string]any)["headers"].(map[string]any)["Accept"] = "text/html" }, []string{"list", "qa"}, false},
		{"list item changed", func(m Msg) { m["list"].([]any)[1].(map[string]any)["b"] = 2 }, []string{"req", "qa"}, false},
		{"list grew", func(m Msg) { m["list"] = append(m["list"].([]any), "c") }, []string{"req", "qa"}, false},
		{"redacted value changed", func(m Msg) {
			m["req"].(map[string]any)["headers"].(map[string]any)["Authorization"] = "Basic other"
		}, []string{"req", "list", "qa"}, true},
		{"typed map changed", func(m Msg) { m["qa"].(map[string][]string)["a"][1] = "3" }, []string{"req", "list"}, false},
		{"int became float", func(m Msg) { m["n"] = 1.0 }, []string{"req", "list", "qa"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			s := &snapper{limit: 1 << 30}
			first, node, _ := s.take(m, nil, nil)
			tt.mutate(m)
			second, _, _ := s.take(m, first, node)
			fresh, _, _ := s.take(m, nil, nil)
			if !reflect.DeepEqual(second, fresh) {
				t.Fatalf("shared snapshot differs from a fresh one:\n got %v\nwant %v", second, fresh)
			}
			f, g := first.(map[string]any), second.(map[string]any)
			if (ptr(f) == ptr(g)) != tt.topReuse {
				t.Errorf("top-level map shared = %v, want %v", ptr(f) == ptr(g), tt.topReuse)
			}
			for _, k := range []string{"req", "list", "qa"} {
				shared := ptr(f[k]) == ptr(g[k])
				want := strings.Contains(strings.Join(tt.shared, ","), k)
				if shared != want {
					t.Errorf("%s shared = %v, want %v", k, shared, want)
				}
			}
		})
	}
}

// TestSnapshotSharingRandom: whatever changes between steps, the shared
// snapshot equals one taken from scratch, and the size estimate equals
// msgSize's.
func TestSnapshotSharingRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	keys := []string{"a", "b", "Token", "kty", "d", "x", "headers", "Authorization", "list", "n"}
	var gen func(depth int) any
	gen = func(depth int) any {
		switch k := r.IntN(12); {
		case k < 2 && depth < 5:
			m := map[string]any{}
			for range r.IntN(6) {
				m[keys[r.IntN(len(keys))]] = gen(depth + 1)
			}
			return m
		case k < 3 && depth < 5:
			l := make([]any, r.IntN(5))
			for i := range l {
				l[i] = gen(depth + 1)
			}
			return l
		case k < 4:
			return map[string]string{"Cookie": "c", "Accept": fmt.Sprint(r.IntN(3))}
		case k < 5:
			return []string{"x", fmt.Sprint(r.IntN(3))}
		case k < 6:
			return r.IntN(3)
		case k < 7:
			return "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl" + fmt.Sprint(r.IntN(2))
		case k < 8:
			return strings.Repeat("y", 500+r.IntN(30))
		case k < 9:
			return nil
		case k < 10:
			return r.IntN(2) == 0
		}
		return fmt.Sprint("s", r.IntN(4))
	}
	var mutate func(v any, depth int) any
	mutate = func(v any, depth int) any {
		switch t := v.(type) {
		case map[string]any:
			for k := range t {
				if r.IntN(3) == 0 {
					t[k] = mutate(t[k], depth+1)
				}
			}
			if r.IntN(4) == 0 {
				t[keys[r.IntN(len(keys))]] = gen(depth + 1)
			}
			return t
		case []any:
			for i := range t {
				if r.IntN(3) == 0 {
					t[i] = mutate(t[i], depth+1)
				}
			}
			return t
		}
		if r.IntN(2) == 0 {
			return gen(depth)
		}
		return v
	}
	for i := range 3000 {
		m := Msg{}
		for range 1 + r.IntN(6) {
			m[keys[r.IntN(len(keys))]] = gen(0)
		}
		s := &snapper{extra: []string{"x"}, limit: 1 << 30}
		prev, node, _ := s.take(m, nil, nil)
		for step := range 4 {
			mutate(m, 0)
			got, gotNode, size := s.take(m, prev, node)
			want, _, _ := (&snapper{extra: []string{"x"}, limit: 1 << 30}).take(m, nil, nil)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("case %d step %d: shared snapshot\n%v\ndiffers from fresh\n%v", i, step, got, want)
			}
			if ms := msgSize(m, 1<<30); size != ms {
				t.Fatalf("case %d step %d: size %d, msgSize %d", i, step, size, ms)
			}
			prev, node = got, gotNode
		}
	}
}

func TestRedactSecrets(t *testing.T) {
	jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	tests := []struct {
		in, want string
	}{
		{"plain text of some length", "plain text of some length"},
		{jwt, Redacted},
		{"token=" + jwt + "&x=1", "token=" + Redacted + "&x=1"},
		{"see " + jwt + ".", "see " + Redacted + "."},
		{"two " + jwt + " and " + jwt, "two " + Redacted + " and " + Redacted},
		{"unsecured eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "unsecured " + Redacted},
		{"JWE " + jwt + ".aXY.dGFn", "JWE " + Redacted},
		{"not a token: eyJ alone and more", "not a token: eyJ alone and more"},
		{"word-eyJabc.def.ghi-and-more-text", "word-eyJabc.def.ghi-and-more-text"},
		{"Bearer 0123456789abcdef", Redacted},
		{"bAsIc dXNlcjpwYXNzd29yZA==", Redacted},
		{"x -----BEGIN EC PRIVATE KEY----- y", Redacted},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, _, _ := (&snapper{budget: snapBudget}).snap(tt.in, nil, nil, 0)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSensitiveKeys(t *testing.T) {
	s := &snapper{extra: []string{"otp"}}
	for k := range sensitiveKeys {
		for _, v := range []string{k, strings.ToUpper(k), strings.ToUpper(k[:1]) + k[1:]} {
			if !s.isSensitive(v) {
				t.Errorf("%q not sensitive", v)
			}
		}
	}
	for _, k := range []string{"OTP", "Coo\u212Aie", "X-Api-Key"} {
		if !s.isSensitive(k) {
			t.Errorf("%q not sensitive", k)
		}
	}
	for _, k := range []string{"", "a", "key", "keys", "tokens", "keyset", "method", "Accept", "cod", "ÿ", "passwords-and-more-than-24-bytes"} {
		if s.isSensitive(k) {
			t.Errorf("%q sensitive", k)
		}
	}
}

func TestCopyValue(t *testing.T) {
	in := Msg{"m": map[string]any{"l": []any{1, map[string]any{"x": "y"}}}, "s": []string{"a"}, "ms": map[string]string{"k": "v"},
		"b": []byte("x"), "h": map[string][]string{"a": {"b"}}, "lm": []map[string]any{{"a": 1}}, "n": 1}
	out := CopyValue(in).(Msg)
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("copy differs")
	}
	out["m"].(map[string]any)["l"].([]any)[1].(map[string]any)["x"] = "z"
	out["s"].([]string)[0] = "z"
	out["ms"].(map[string]string)["k"] = "z"
	out["b"].([]byte)[0] = 'z'
	out["h"].(map[string][]string)["a"][0] = "z"
	out["lm"].([]map[string]any)[0]["a"] = 2
	if in["m"].(map[string]any)["l"].([]any)[1].(map[string]any)["x"] != "y" || in["s"].([]string)[0] != "a" ||
		in["ms"].(map[string]string)["k"] != "v" || in["b"].([]byte)[0] != 'x' || in["h"].(map[string][]string)["a"][0] != "b" ||
		in["lm"].([]map[string]any)[0]["a"] != 1 {
		t.Errorf("copy shares state with the original: %v", in)
	}
}
