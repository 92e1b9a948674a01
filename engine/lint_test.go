package engine

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestNodeExtrasCodec: disabled and lint_ignore round-trip canonically,
// lint_ignore is sorted on import, and bad entries are errors naming node
// and field; the JSON Schema agrees.
func TestNodeExtrasCodec(t *testing.T) {
	reg := testRegistry(t, newHarness())
	tests := []struct {
		name      string
		node      string
		ok        bool
		wantField string
		ignore    []string
	}{
		{"disabled", `{"id":"t","type":"test.trigger","disabled":true}`, true, "", nil},
		{"lint_ignore", `{"id":"t","type":"test.trigger","lint_ignore":["jose.overlap","flow.unreachable"]}`, true, "", []string{"flow.unreachable", "jose.overlap"}},
		{"empty lint_ignore", `{"id":"t","type":"test.trigger","lint_ignore":[]}`, true, "", nil},
		{"bad check id", `{"id":"t","type":"test.trigger","lint_ignore":["overlap"]}`, false, "lint_ignore", nil},
		{"duplicate check id", `{"id":"t","type":"test.trigger","lint_ignore":["a.b","a.b"]}`, false, "lint_ignore", nil},
		{"disabled not a bool", `{"id":"t","type":"test.trigger","disabled":"yes"}`, false, "disabled", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := doc(tt.node)
			f, err := DecodeFlow([]byte(d))
			if (err == nil) != tt.ok {
				t.Fatalf("decode error %v, want ok=%v", err, tt.ok)
			}
			// JSON Schema's uniqueItems is not in the test validator:
			// duplicates are the engine's to refuse.
			if serr := checkSchema(t, reg, []byte(d)); (serr == nil) != tt.ok && tt.name != "duplicate check id" {
				t.Errorf("schema ok=%v (%v), want %v", serr == nil, serr, tt.ok)
			}
			if !tt.ok {
				if fv := FirstValidation(err); fv == nil || fv.Node != "t" || fv.Field != tt.wantField {
					t.Errorf("error %v, want node t field %s", err, tt.wantField)
				}
				return
			}
			if !slices.Equal(f.Nodes[0].LintIgnore, tt.ignore) {
				t.Errorf("lint_ignore %q, want %q", f.Nodes[0].LintIgnore, tt.ignore)
			}
			out := mustEncode(t, f)
			f2 := mustDecode(t, out)
			if again := mustEncode(t, f2); string(again) != string(out) {
				t.Errorf("not canonical:\n%s\n%s", out, again)
			}
			if f2.Nodes[0].Disabled != f.Nodes[0].Disabled {
				t.Errorf("disabled lost")
			}
		})
	}
}

// TestDisabledNodes: a disabled node is validated but never built; a run
// reaching it ends that branch; a disabled trigger does not start.
func TestDisabledNodes(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{})
	off := func(n Node) Node { n.Disabled = true; return n }
	f := mkFlow("f", []Node{
		node("t", "test.trigger", nil),
		off(node("a", "test.capture", nil)),
		node("b", "test.capture", nil),
		node("c", "test.capture", nil),
		off(node("t2", "test.trigger", nil)),
		off(node("k", "test.kitchen", map[string]any{"name": "explode"})), // its factory would fail
	}, "t.out>a", "a.out>c", "t.out>b", "t2.out>c")
	deploy(t, rt, f, 1)
	tr, err := rt.Run(t.Context(), "f", "t", Msg{"x": 1})
	if err != nil {
		t.Fatal(err)
	}
	var path []string
	for _, s := range tr.Steps {
		path = append(path, s.Node)
	}
	if !slices.Equal(path, []string{"t", "b"}) {
		t.Errorf("path %v, want [t b]", path)
	}
	if len(h.msgs("a")) != 0 || len(h.msgs("c")) != 0 || len(h.msgs("b")) != 1 {
		t.Errorf("captured a=%d b=%d c=%d, want 0 1 0", len(h.msgs("a")), len(h.msgs("b")), len(h.msgs("c")))
	}
	if h.count(h.starts, "t2@1") != 0 || h.count(h.starts, "t@1") != 1 {
		t.Errorf("starts %v: a disabled trigger started", h.starts)
	}
	if _, err := rt.Run(t.Context(), "f", "t2", nil); err == nil {
		t.Error("ran a disabled trigger")
	}
	t.Run("config still validated", func(t *testing.T) {
		bad := mkFlow("g", []Node{node("t", "test.trigger", nil), off(node("k", "test.kitchen", map[string]any{"count": "x"}))})
		if fv := FirstValidation(rt.Validate(t.Context(), bad)); fv == nil || fv.Node != "k" {
			t.Errorf("got %v, want an error on k", fv)
		}
	})
}

// TestBuildReportsEveryFactoryError: two nodes whose factories fail are
// both named, not only the first.
func TestBuildReportsEveryFactoryError(t *testing.T) {
	rt := newTestRuntime(t, newHarness(), Options{})
	f := mkFlow("f", []Node{node("t", "test.trigger", nil),
		node("k1", "test.kitchen", map[string]any{"name": "explode"}), node("k2", "test.kitchen", map[string]any{"name": "explode"})},
		"t.out>k1", "t.out>k2")
	var list ValidationErrors
	if err := rt.Validate(t.Context(), f); !errors.As(err, &list) {
		t.Fatalf("error %v", err)
	}
	var nodes []string
	for _, e := range list {
		nodes = append(nodes, e.Node)
	}
	if !slices.Equal(nodes, []string{"k1", "k2"}) {
		t.Errorf("errors on %v, want [k1 k2]", nodes)
	}
}

func TestRegisterCheck(t *testing.T) {
	run := func(context.Context, *LintSet) []Warning { return nil }
	tests := []struct {
		name string
		c    Check
		want string
	}{
		{"ok", Check{ID: "x.y", Run: run}, ""},
		{"duplicate", Check{ID: "x.y", Run: run}, "already registered"},
		{"builtin id", Check{ID: "flow.unreachable", Run: run}, "already registered"},
		{"not namespaced", Check{ID: "xy", Run: run}, "namespaced"},
		{"no run", Check{ID: "x.z"}, "nil Run"},
	}
	reg := NewRegistry()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := reg.RegisterCheck(tt.c)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestLintSafeAndFocused: a panicking check costs its own findings only;
// focus keeps the warnings of the flows asked about.
func TestLintSafeAndFocused(t *testing.T) {
	reg := testRegistry(t, newHarness())
	if err := reg.RegisterCheck(Check{ID: "test.boom", Run: func(context.Context, *LintSet) []Warning { panic("boom") }}); err != nil {
		t.Fatal(err)
	}
	lonely := func(id string) *Flow {
		return mkFlow(id, []Node{node("t", "test.trigger", nil), node("a", "test.capture", nil)})
	}
	ws := reg.Lint(t.Context(), []*Flow{lonely("f"), lonely("g")}, "g")
	var got []string
	for _, w := range ws {
		got = append(got, w.Check+" "+w.Flow+"/"+w.Node)
	}
	want := []string{"flow.unreachable g/a", "test.boom /"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
}

// FuzzLint: linting any document that decodes never panics and reports
// only findings with a check id and a message.
func FuzzLint(f *testing.F) {
	for _, file := range goldenFlows(f) {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	reg := testRegistry(f, newHarness())
	f.Fuzz(func(t *testing.T, data []byte) {
		fl, err := DecodeFlow(data)
		if err != nil {
			return
		}
		for _, w := range reg.Lint(context.Background(), []*Flow{fl}) {
			if w.Check == "" || w.Message == "" {
				t.Fatalf("finding without id or message: %+v", w)
			}
		}
	})
}
