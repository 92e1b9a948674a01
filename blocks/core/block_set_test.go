package core

import (
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

func TestSet(t *testing.T) {
	tests := []struct {
		name     string
		set      map[string]any
		del      []string
		in       engine.Msg
		wantPort string // port of the set node
		wantMsg  any    // msg in the set node's trace step
		wantErr  string // the run's error
	}{
		{
			name:     "nested paths are created",
			set:      map[string]any{"user.id": "msg.id", "user.name": "upper(msg.name)", "ok": "true"},
			in:       engine.Msg{"id": 7, "name": "ann"},
			wantPort: "out",
			wantMsg:  map[string]any{"id": 7, "name": "ann", "ok": true, "user": map[string]any{"id": 7, "name": "ANN"}},
		},
		{
			name:     "existing object keeps its other keys",
			set:      map[string]any{"user.role": `"admin"`},
			in:       engine.Msg{"user": map[string]any{"id": 1}},
			wantPort: "out",
			wantMsg:  map[string]any{"user": map[string]any{"id": 1, "role": "admin"}},
		},
		{
			name:     "every expression sees the incoming message",
			set:      map[string]any{"a": "msg.b", "b": "msg.a"},
			in:       engine.Msg{"a": 1, "b": 2},
			wantPort: "out",
			wantMsg:  map[string]any{"a": 2, "b": 1},
		},
		{
			name:     "nil value is kept, not deleted",
			set:      map[string]any{"gone": "msg.nothing"},
			in:       engine.Msg{},
			wantPort: "out",
			wantMsg:  map[string]any{"gone": nil},
		},
		{
			name:     "delete paths, absent ones ignored",
			set:      map[string]any{"seen": "true"},
			del:      []string{"user.password", "absent.deep", "name.deeper"},
			in:       engine.Msg{"name": "x", "user": map[string]any{"id": 1, "password": "hunter22"}},
			wantPort: "out",
			wantMsg:  map[string]any{"name": "x", "seen": true, "user": map[string]any{"id": 1}},
		},
		{
			name:     "delete only, from a string map",
			del:      []string{"headers.Authorization"},
			in:       engine.Msg{"headers": map[string]string{"Authorization": "Bearer x", "Accept": "*/*"}},
			wantPort: "out",
			wantMsg:  map[string]any{"headers": map[string]any{"Accept": "*/*"}},
		},
		{
			name:     "into a string map",
			set:      map[string]any{"headers.X-Id": `"42"`, "headers.X-Num": "42"},
			in:       engine.Msg{"headers": map[string]string{"Accept": "*/*"}},
			wantPort: "out",
			wantMsg:  map[string]any{"headers": map[string]any{"Accept": "*/*", "X-Id": "42", "X-Num": 42}},
		},
		{
			name:    "path into a string is refused, msg untouched",
			set:     map[string]any{"a": "1", "user.id": "1"},
			in:      engine.Msg{"user": "ann"},
			wantMsg: map[string]any{"user": "ann"},
			wantErr: `node "s": set "user.id": msg.user is a string, not an object`,
		},
		{
			name:    "path into a list is refused",
			set:     map[string]any{"roles.first.x": "1"},
			in:      engine.Msg{"roles": map[string]any{"first": []any{"a"}}},
			wantMsg: map[string]any{"roles": map[string]any{"first": []any{"a"}}},
			wantErr: `set "roles.first.x": msg.roles.first is a list, not an object`,
		},
		{
			name:    "run-time expression error",
			set:     map[string]any{"n": "msg.a + 1"},
			in:      engine.Msg{"a": "x"},
			wantMsg: map[string]any{"a": "x"},
			wantErr: `set "n": line 1, column 7: invalid operation: string + int`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := map[string]any{}
			if tc.set != nil {
				cfg["set"] = tc.set
			}
			if tc.del != nil {
				cfg["delete"] = tc.del
			}
			rt := newRuntime(t, engine.Options{})
			enginetest.Deploy(t, rt, manualFlow(t, "f", enginetest.Node{ID: "s", Type: "core.set", Config: cfg}))
			tr, err := rt.Run(t.Context(), "f", "", tc.in)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tc.wantErr != "" && !strings.Contains(errorText(err), tc.wantErr) {
				t.Fatalf("Run error = %v, want it to contain %q", err, tc.wantErr)
			}
			st := enginetest.Step(t, tr, "s")
			equal(t, "port", st.Port, tc.wantPort)
			equal(t, "msg", st.Msg, tc.wantMsg)
			if tc.wantErr != "" {
				equal(t, "trace status", tr.Status, engine.StatusError)
				equal(t, "trace error node", tr.ErrorNode, "s")
			}
		})
	}
}

// A value taken from the message is copied, so changing it later does not
// change where it came from.
func TestSetCopiesValues(t *testing.T) {
	rt := newRuntime(t, engine.Options{})
	enginetest.Deploy(t, rt, manualFlow(t, "f",
		enginetest.Node{ID: "copy", Type: "core.set", Config: map[string]any{"set": map[string]any{"copy": "msg.user"}}},
		enginetest.Node{ID: "edit", Type: "core.set", Config: map[string]any{"set": map[string]any{"copy.id": "2"}}}))
	tr, err := rt.Run(t.Context(), "f", "", engine.Msg{"user": map[string]any{"id": 1}})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "ports", enginetest.Ports(tr), []string{"in:out", "copy:out", "edit:out"})
	equal(t, "msg", enginetest.Step(t, tr, "edit").Msg, map[string]any{
		"user": map[string]any{"id": 1},
		"copy": map[string]any{"id": 2},
	})
}

func TestSetDeployErrors(t *testing.T) {
	// want is the refusal at node "s".
	want := func(field string, line, col int, msg string) engine.ValidationError {
		return engine.ValidationError{Node: "s", Field: field, Line: line, Column: col, Msg: msg}
	}
	tests := []struct {
		name string
		cfg  map[string]any
		want engine.ValidationError
	}{
		{name: "syntax error has line and column",
			cfg:  map[string]any{"set": map[string]any{"user.id": "msg.id +"}},
			want: want("set.user.id", 1, 8, "unexpected token EOF")},
		{name: "error on a later line",
			cfg:  map[string]any{"set": map[string]any{"n": "1 +\n  (2 * )"}},
			want: want("set.n", 2, 8, "unexpected token Bracket(\")\")")},
		{name: "unknown name",
			cfg:  map[string]any{"set": map[string]any{"n": "mesage.id"}},
			want: want("set.n", 1, 1, "unknown name mesage")},
		{name: "empty key in a path",
			cfg:  map[string]any{"set": map[string]any{"user..id": "1"}},
			want: want("set.user..id", 0, 0, `path "user..id" has an empty key`)},
		{name: "a path inside another",
			cfg:  map[string]any{"set": map[string]any{"user": "{}", "user.id": "1"}},
			want: want("set", 0, 0, `"user.id" lies inside "user"`)},
		{name: "set and delete the same field",
			cfg:  map[string]any{"set": map[string]any{"user.id": "1"}, "delete": []string{"user"}},
			want: want("delete", 0, 0, `"user.id" lies inside "user"; a field is either set or removed`)},
		{name: "delete twice",
			cfg:  map[string]any{"delete": []string{"a", "a"}},
			want: want("delete", 0, 0, `"a" is given twice`)},
		{name: "nothing to do",
			cfg:  map[string]any{},
			want: want("set", 0, 0, "required")},
		{name: "unknown field",
			cfg:  map[string]any{"set": map[string]any{"a": "1"}, "sett": map[string]any{}},
			want: want("sett", 0, 0, "unknown field")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			refused(t, manualFlow(t, "f", enginetest.Node{ID: "s", Type: "core.set", Config: tc.cfg}), tc.want)
		})
	}
}
