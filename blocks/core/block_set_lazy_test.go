package core

import (
	"reflect"
	"testing"

	"github.com/flowd/flowd/engine"
)

// reqLazy stands for http.in's msg.req: built on use, counted; Lookup
// answers the one-key path "method" without building.
type reqLazy struct {
	builds int
	built  map[string]any
}

func (l *reqLazy) Value() any {
	if l.built == nil {
		l.builds++
		l.built = map[string]any{"method": "POST", "token": "t0k3n", "headers": map[string]any{"accept": "*/*"}}
	}
	return l.built
}

func (l *reqLazy) Lookup(path []string) (any, bool) {
	if l.built == nil && len(path) == 1 && path[0] == "method" {
		return "POST", true
	}
	return nil, false
}

// TestSetLazy: core.set (LazyMessage) leaves a Lazy value it does not
// need unbuilt, and builds it in place before a set or delete path goes
// into it, exactly as the engine would have for a block without
// LazyMessage.
func TestSetLazy(t *testing.T) {
	tests := []struct {
		name   string
		set    map[string]string
		del    []string
		builds int
		req    any // msg.req after the block: nil for the Lazy itself
		want   map[string]any
	}{
		{name: "top-level writes and a map literal read through Lookup",
			set:  map[string]string{"payload": `{"m": msg.req.method, "n": 1}`, "ok": "true"},
			want: map[string]any{"payload": map[string]any{"m": "POST", "n": 1}, "ok": true}},
		{name: "a path into it builds it first",
			set: map[string]string{"req.extra": `"x"`}, builds: 1,
			req: map[string]any{"method": "POST", "token": "t0k3n", "extra": "x", "headers": map[string]any{"accept": "*/*"}}},
		{name: "a delete into it builds it first",
			set: map[string]string{"seen": "true"}, del: []string{"req.token"}, builds: 1,
			req:  map[string]any{"method": "POST", "headers": map[string]any{"accept": "*/*"}},
			want: map[string]any{"seen": true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var assign []assignment
			for p, src := range tc.set {
				e, err := engine.CompileExpr(src)
				if err != nil {
					t.Fatal(err)
				}
				pp, err := parsePath(p)
				if err != nil {
					t.Fatal(err)
				}
				assign = append(assign, assignment{path: pp, expr: e})
			}
			var del []path
			for _, d := range tc.del {
				pp, _ := parsePath(d)
				del = append(del, pp)
			}
			l := &reqLazy{}
			msg := engine.Msg{"req": l}
			if _, err := newSet(assign, del).Process(t.Context(), &engine.Exec{}, msg); err != nil {
				t.Fatal(err)
			}
			if l.builds != tc.builds {
				t.Errorf("built %d times, want %d", l.builds, tc.builds)
			}
			gotReq := msg["req"]
			if tc.req == nil {
				if gotReq != engine.Lazy(l) {
					t.Errorf("msg.req = %v, want the Lazy unbuilt", gotReq)
				}
			} else if !reflect.DeepEqual(gotReq, tc.req) {
				t.Errorf("msg.req = %v, want %v", gotReq, tc.req)
			}
			delete(msg, "req")
			if len(tc.want) > 0 && !reflect.DeepEqual(map[string]any(msg), tc.want) {
				t.Errorf("msg = %v, want %v", msg, tc.want)
			}
		})
	}
}

// TestSetNewMap: a map literal's value is kept without copying the map,
// but a member taken from the message is copied, so the message's own
// object and the new one never share.
func TestSetNewMap(t *testing.T) {
	e, err := engine.CompileExpr(`{"u": msg.user, "n": 1, "s": msg.user.name}`)
	if err != nil {
		t.Fatal(err)
	}
	if !e.NewMap() {
		t.Fatal("a map literal of the fast shape is not NewMap")
	}
	if other, _ := engine.CompileExpr(`msg.user`); other.NewMap() {
		t.Fatal("a member path is NewMap")
	}
	user := map[string]any{"name": "ann", "roles": []any{"a"}}
	msg := engine.Msg{"user": user}
	if _, err := newSet([]assignment{{path: path{"payload"}, expr: e}}, nil).Process(t.Context(), &engine.Exec{}, msg); err != nil {
		t.Fatal(err)
	}
	got := msg["payload"].(map[string]any)
	if !reflect.DeepEqual(got, map[string]any{"u": user, "n": 1, "s": "ann"}) {
		t.Fatalf("payload %v", got)
	}
	got["u"].(map[string]any)["name"] = "changed"
	got["u"].(map[string]any)["roles"].([]any)[0] = "changed"
	if user["name"] != "ann" || user["roles"].([]any)[0] != "a" {
		t.Errorf("msg.user changed through msg.payload.u: %v", user)
	}
}
