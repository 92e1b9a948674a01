package core

import (
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		name, in string
		want     path
		wantErr  string
	}{
		{name: "one key", in: "a", want: path{"a"}},
		{name: "nested", in: "user.profile.id", want: path{"user", "profile", "id"}},
		{name: "odd but allowed characters", in: "headers.X-Request-Id", want: path{"headers", "X-Request-Id"}},
		{name: "empty", in: "", wantErr: "path is empty"},
		{name: "double dot", in: "a..b", wantErr: `path "a..b" has an empty key (two dots, or a dot at an end)`},
		{name: "leading dot", in: ".a", wantErr: `path ".a" has an empty key (two dots, or a dot at an end)`},
		{name: "trailing dot", in: "a.", wantErr: `path "a." has an empty key (two dots, or a dot at an end)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePath(tc.in)
			equal(t, "error", errorText(err), tc.wantErr)
			equal(t, "path", got, tc.want)
		})
	}
}

func TestOverlap(t *testing.T) {
	tests := []struct {
		name, a, b string
		want       string
	}{
		{name: "siblings", a: "user.id", b: "user.name"},
		{name: "common text prefix is not a path prefix", a: "user", b: "username"},
		{name: "same", a: "a.b", b: "a.b", want: `"a.b" is given twice`},
		{name: "inside", a: "a.b.c", b: "a", want: `"a.b.c" lies inside "a"`},
		{name: "outside", a: "a", b: "a.b", want: `"a.b" lies inside "a"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := parsePath(tc.a)
			b, _ := parsePath(tc.b)
			equal(t, "overlap", errorText(overlap(a, b)), tc.want)
		})
	}
}

func TestSetPathDeletePath(t *testing.T) {
	tests := []struct {
		name    string
		msg     map[string]any
		set     string // path to set to "v", or ""
		del     string // path to delete, or ""
		want    map[string]any
		wantErr string
	}{
		{name: "create nested", msg: map[string]any{}, set: "a.b.c",
			want: map[string]any{"a": map[string]any{"b": map[string]any{"c": "v"}}}},
		{name: "nil on the way becomes an object", msg: map[string]any{"a": nil}, set: "a.b",
			want: map[string]any{"a": map[string]any{"b": "v"}}},
		{name: "through a number", msg: map[string]any{"a": 1.5}, set: "a.b",
			want: map[string]any{"a": 1.5}, wantErr: "msg.a is a number, not an object"},
		{name: "through a bool", msg: map[string]any{"a": true}, set: "a.b.c",
			want: map[string]any{"a": true}, wantErr: "msg.a is true/false, not an object"},
		{name: "through a string list", msg: map[string]any{"a": map[string]any{"b": []string{"x"}}}, set: "a.b.c",
			want: map[string]any{"a": map[string]any{"b": []string{"x"}}}, wantErr: "msg.a.b is a list, not an object"},
		{name: "through a header list", msg: map[string]any{"h": map[string][]string{"A": {"x"}}}, set: "h.A.b",
			want: map[string]any{"h": map[string][]string{"A": {"x"}}}, wantErr: "msg.h.A is a list, not an object"},
		{name: "header list map widened", msg: map[string]any{"h": map[string][]string{"A": {"x"}}}, set: "h.B",
			want: map[string]any{"h": map[string]any{"A": []string{"x"}, "B": "v"}}},
		{name: "delete from a header list map", msg: map[string]any{"h": map[string][]string{"A": {"x"}, "B": nil}}, del: "h.A",
			want: map[string]any{"h": map[string][]string{"B": nil}}},
		{name: "delete through a string", msg: map[string]any{"a": "s"}, del: "a.b",
			want: map[string]any{"a": "s"}},
		{name: "delete top level", msg: map[string]any{"a": 1, "b": 2}, del: "a",
			want: map[string]any{"b": 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.set != "" {
				p, _ := parsePath(tc.set)
				// checkSet must agree with setPath and change nothing.
				cerr := checkSet(tc.msg, p)
				equal(t, "checkSet error", errorText(cerr), tc.wantErr)
				err = setPath(tc.msg, p, "v")
			}
			if tc.del != "" {
				p, _ := parsePath(tc.del)
				deletePath(tc.msg, p)
			}
			equal(t, "error", errorText(err), tc.wantErr)
			equal(t, "msg", tc.msg, tc.want)
		})
	}
}

func TestScrub(t *testing.T) {
	const jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	const jwe = "eyJhbGciOiJSU0EtT0FFUCJ9.ZW5j.aXY.Y2lwaGVy.dGFn"
	tests := []struct {
		name, text string
		msg        map[string]any
		want       string
	}{
		{name: "plain text kept", text: "hello ann", msg: map[string]any{"user": "ann"}, want: "hello ann"},
		{name: "sensitive key value", text: "pw=hunter22!", msg: map[string]any{"password": "hunter22"}, want: "pw=[redacted]!"},
		{name: "nested sensitive subtree", text: "k=abcd-efgh",
			msg:  map[string]any{"cfg": map[string]any{"keys": []any{map[string]any{"kty": "EC", "d": "abcd-efgh"}}}},
			want: "k=[redacted]"},
		{name: "numeric code", text: "otp 123456", msg: map[string]any{"code": 123456}, want: "otp [redacted]"},
		{name: "short secret left alone", text: "ab cd", msg: map[string]any{"secret": "ab"}, want: "ab cd"},
		{name: "jwt anywhere", text: "got " + jwt + ".", msg: map[string]any{}, want: "got [redacted]."},
		{name: "jwe anywhere", text: "[" + jwe + "]", msg: map[string]any{}, want: "[[redacted]]"},
		{name: "bearer", text: "Authorization: bearer abc.DEF~1/+=", msg: map[string]any{}, want: "Authorization: [redacted]"},
		{name: "dpop", text: "sent DPoP 2YotnFZFEjr1zCsicMWpAA now", msg: map[string]any{}, want: "sent [redacted] now"},
		{name: "jwe with an empty key segment", text: "enc=eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXY.Y3Q.dGFn;",
			msg: map[string]any{}, want: "enc=[redacted];"},
		{name: "dotted text kept", text: "version 1.2.3 of eyJunk.example.com", msg: map[string]any{}, want: "version 1.2.3 of eyJunk.example.com"},
		{name: "pem", text: "key -----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY----- end",
			msg: map[string]any{}, want: "key [redacted] end"},
		{name: "cut pem", text: "key -----BEGIN EC PRIVATE KEY-----\nMIIB", msg: map[string]any{}, want: "key [redacted]"},
		{name: "typed containers under a sensitive key", text: "a=abcd-1111 b=abcd-2222 c=abcd-3333",
			msg: map[string]any{"jwk": map[string]any{"m": map[string]string{"x": "abcd-1111"}, "l": []string{"abcd-2222"},
				"h": map[string][]string{"y": {"abcd-3333"}}}},
			want: "a=[redacted] b=[redacted] c=[redacted]"},
		{name: "longest secret first", text: "s=secret-long",
			msg:  map[string]any{"token": "secret", "password": "secret-long"},
			want: "s=[redacted]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := scrub(nil, tc.text, tc.msg, redactFor(tc.msg))
			equal(t, "scrubbed", got, tc.want)
			if strings.Contains(got, "eyJhbGci") {
				t.Errorf("token left in %q", got)
			}
		})
	}
}

// TestScrubMarked: the log and fail blocks hide what a block of the run
// marked secret, whatever field it was copied to.
func TestScrubMarked(t *testing.T) {
	x := &engine.Exec{}
	x.MarkSecret("hunter2hunter2")
	msg := engine.Msg{"pw": "hunter2hunter2", "copy": map[string]any{"of": "x hunter2hunter2"}}
	red := x.Redact(msg).(map[string]any)
	if red["pw"] != engine.Redacted || red["copy"].(map[string]any)["of"] != "x "+engine.Redacted {
		t.Errorf("redacted message %v", red)
	}
	if got := scrub(x, "login with hunter2hunter2 ok", msg, red); got != "login with [redacted] ok" {
		t.Errorf("scrubbed %q", got)
	}
}
