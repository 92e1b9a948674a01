package core

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// authSub is a sub-flow answering "ok" or "denied" by msg.user.
func authSub(t *testing.T, okPort string) *engine.Flow {
	return enginetest.Flow(t, "auth", []enginetest.Node{
		{ID: "in", Type: "core.input"},
		{ID: "route", Type: "core.switch", Config: map[string]any{"rules": []map[string]string{{"name": "known", "expr": `msg.user == "ada"`}}}},
		{ID: "grant", Type: "core.set", Config: map[string]any{"set": map[string]any{"role": `"admin"`}}},
		{ID: "yes", Type: "core.output", Config: map[string]any{"port": okPort}},
		{ID: "no", Type: "core.output", Config: map[string]any{"port": "denied"}},
	}, "in:out->route", "route:known->grant", "grant:out->yes", "route:else->no")
}

func caller(t *testing.T, id, target string, extra ...enginetest.Node) *engine.Flow {
	nodes := append([]enginetest.Node{
		{ID: "go", Type: "core.manual"},
		{ID: "call", Type: "core.call", Config: map[string]any{"flow": target, "outputs": []string{"ok", "denied"}}},
		{ID: "welcome", Type: "core.set", Config: map[string]any{"set": map[string]any{"greeting": `"hi " + msg.role`}}},
		{ID: "refuse", Type: "core.set", Config: map[string]any{"set": map[string]any{"greeting": `"no"`}}},
	}, extra...)
	return enginetest.Flow(t, id, nodes, "go:out->call", "call:ok->welcome", "call:denied->refuse")
}

func finalMsg(tr *engine.Trace) map[string]any {
	m, _ := tr.Steps[len(tr.Steps)-1].Msg.(map[string]any)
	return m
}

// TestCall: a call runs the sub-flow's deployed version with a copy of the
// message and continues with its answer out of the answered port.
func TestCall(t *testing.T) {
	rt := newRuntime(t, engine.Options{})
	enginetest.Deploy(t, rt, authSub(t, "ok"))
	enginetest.Deploy(t, rt, caller(t, "app", "auth"))
	tests := []struct {
		user, port, greeting string
	}{
		{"ada", "ok", "hi admin"},
		{"eve", "denied", "no"},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			tr, err := rt.Run(t.Context(), "app", "", engine.Msg{"user": tt.user})
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "call port", enginetest.Step(t, tr, "call").Port, tt.port)
			equal(t, "greeting", finalMsg(tr)["greeting"], tt.greeting)
		})
	}
	t.Run("the sub-flow leaves its own trace", func(t *testing.T) {
		if len(rt.Traces("auth")) != 2 {
			t.Errorf("sub-flow traces %d, want 2", len(rt.Traces("auth")))
		}
	})
	t.Run("late binding: a redeployed sub-flow answers the next call", func(t *testing.T) {
		if err := rt.Deploy(t.Context(), authSub(t, "granted"), 2); err != nil {
			t.Fatal(err)
		}
		_, err := rt.Run(t.Context(), "app", "", engine.Msg{"user": "ada"})
		if err == nil || !strings.Contains(err.Error(), `answered on port "granted"`) {
			t.Fatalf("err %v", err)
		}
		enginetest.Deploy(t, rt, authSub(t, "ok"))
	})
}

// TestCallFailures: a sub-flow that fails, is missing, calls too deep, or
// answers twice fails the call node (its error port, else the caller's
// run and the caller's catch); the sub-flow's own catch is not run.
func TestCallFailures(t *testing.T) {
	rt := newRuntime(t, engine.Options{})
	broken := enginetest.Flow(t, "broken", []enginetest.Node{{ID: "in", Type: "core.input"}, {ID: "boom", Type: "core.fail", Config: map[string]any{"message": `"sub failed"`}},
		{ID: "catch", Type: "core.catch"}, {ID: "c", Type: "core.set", Config: map[string]any{"set": map[string]any{"x": "1"}}}}, "in:out->boom", "catch:out->c")
	enginetest.Deploy(t, rt, broken)
	withCatch := caller(t, "app", "broken", enginetest.Node{ID: "catch", Type: "core.catch"}, enginetest.Node{ID: "caught", Type: "core.set", Config: map[string]any{"set": map[string]any{"x": "1"}}})
	withCatch.Wires = append(withCatch.Wires, engine.Wire{From: "catch", Port: "out", To: "caught"})
	enginetest.Deploy(t, rt, withCatch)

	t.Run("sub-flow fails, caller's catch sees it", func(t *testing.T) {
		tr, err := rt.Run(t.Context(), "app", "", nil)
		if err == nil || tr.ErrorNode != "call" || !strings.Contains(err.Error(), "sub failed") {
			t.Fatalf("err %v at %q", err, tr.ErrorNode)
		}
		equal(t, "caller catch runs", len(catchRuns(rt, "app", "catch")), 1)
		equal(t, "sub-flow catch runs", len(catchRuns(rt, "broken", "catch")), 0)
	})
	t.Run("error port of the call", func(t *testing.T) {
		f := caller(t, "handled", "broken", enginetest.Node{ID: "fix", Type: "core.set", Config: map[string]any{"set": map[string]any{"fixed": "true"}}})
		f.Wires = append(f.Wires, engine.Wire{From: "call", Port: "error", To: "fix"})
		enginetest.Deploy(t, rt, f)
		tr, err := rt.Run(t.Context(), "handled", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "ports", enginetest.Ports(tr), []string{"go:out", "call:error", "fix:out"})
	})
	// pingPong is a sub-flow that calls target and answers "ok" with its
	// answer.
	pingPong := func(id, target string) *engine.Flow {
		return enginetest.Flow(t, id, []enginetest.Node{{ID: "in", Type: "core.input"},
			{ID: "call", Type: "core.call", Config: map[string]any{"flow": target, "outputs": []string{"ok"}}},
			{ID: "out", Type: "core.output", Config: map[string]any{"port": "ok"}}}, "in:out->call", "call:ok->out")
	}
	// Each case deploys flows in order, then runs one: the run fails with
	// want.
	for _, tt := range []struct {
		name  string
		flows []*engine.Flow
		run   string
		want  error
	}{
		{"missing sub-flow", []*engine.Flow{caller(t, "lost", "nowhere")}, "lost", engine.ErrNotDeployed},
		{"calls nested too deep", []*engine.Flow{pingPong("ping", "pong"), pingPong("pong", "ping")}, "ping", engine.ErrCallDepth},
		{"answers twice", []*engine.Flow{enginetest.Flow(t, "twice", []enginetest.Node{{ID: "in", Type: "core.input"},
			{ID: "a", Type: "core.output", Config: map[string]any{"port": "ok"}}, {ID: "b", Type: "core.output", Config: map[string]any{"port": "ok"}}},
			"in:out->a", "in:out->b"), caller(t, "app2", "twice")}, "app2", engine.ErrTwoReturns},
		{"never answers", []*engine.Flow{enginetest.Chain(t, "mute", enginetest.Node{ID: "in", Type: "core.input"},
			enginetest.Node{ID: "a", Type: "core.set", Config: map[string]any{"set": map[string]any{"x": "1"}}}), caller(t, "app3", "mute")},
			"app3", engine.ErrNoReturn},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, f := range tt.flows {
				enginetest.Deploy(t, rt, f)
			}
			if _, err := rt.Run(t.Context(), tt.run, "", nil); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("a flow cannot call itself", func(t *testing.T) {
		refused(t, caller(t, "self", "self"), engine.ValidationError{Node: "call", Field: "flow"})
	})
}

// TestCallLimits: the sub-flow's steps count against the caller's budget.
func TestCallLimits(t *testing.T) {
	rt := newRuntime(t, engine.Options{Limits: engine.Limits{MaxSteps: 6}})
	sub := enginetest.Flow(t, "sub", []enginetest.Node{{ID: "in", Type: "core.input"},
		{ID: "a", Type: "core.set", Config: map[string]any{"set": map[string]any{"a": "1"}}},
		{ID: "b", Type: "core.set", Config: map[string]any{"set": map[string]any{"b": "1"}}},
		{ID: "out", Type: "core.output", Config: map[string]any{"port": "ok"}}}, "in:out->a", "a:out->b", "b:out->out")
	enginetest.Deploy(t, rt, sub)
	chain := func(id string, after int) *engine.Flow {
		nodes := []enginetest.Node{{ID: "go", Type: "core.manual"}, {ID: "call", Type: "core.call", Config: map[string]any{"flow": "sub", "outputs": []string{"ok"}}}}
		wires := []string{"go:out->call"}
		prev, port := "call", "ok"
		for i := range after {
			id := string(rune('p' + i))
			nodes = append(nodes, enginetest.Node{ID: id, Type: "core.set", Config: map[string]any{"set": map[string]any{id: "1"}}})
			wires = append(wires, prev+":"+port+"->"+id)
			prev, port = id, "out"
		}
		return enginetest.Flow(t, id, nodes, wires...)
	}
	// call (1) + sub-flow a, b, out (3) + after: at most 6 steps.
	enginetest.Deploy(t, rt, chain("fits", 2))
	enginetest.Deploy(t, rt, chain("over", 3))
	if _, err := rt.Run(t.Context(), "fits", "", nil); err != nil {
		t.Fatalf("1+3+2 steps: %v", err)
	}
	tr, err := rt.Run(t.Context(), "over", "", nil)
	if !errors.Is(err, engine.ErrStepLimit) || tr.ErrorNode != "r" {
		t.Fatalf("1+3+3 steps: %v at %q", err, tr.ErrorNode)
	}
	t.Run("inside the sub-flow", func(t *testing.T) {
		rt := newRuntime(t, engine.Options{Limits: engine.Limits{MaxSteps: 3}})
		enginetest.Deploy(t, rt, sub)
		enginetest.Deploy(t, rt, chain("tight", 0))
		_, err := rt.Run(t.Context(), "tight", "", nil)
		if !errors.Is(err, engine.ErrStepLimit) || !strings.Contains(err.Error(), `sub-flow "sub"`) {
			t.Fatalf("err %v", err)
		}
	})
}

// TestCallInputs: inputs are members of the sub-flow's copy only; the
// answer comes back without them, and a bad input fails the call.
func TestCallInputs(t *testing.T) {
	rt := newRuntime(t, engine.Options{})
	// echo answers on "public" or "private" by msg.allow_public and
	// records what it saw.
	enginetest.Deploy(t, rt, enginetest.Flow(t, "echo", []enginetest.Node{
		{ID: "in", Type: "core.input"},
		{ID: "seen", Type: "core.set", Config: map[string]any{"set": map[string]any{"seen": `msg.allow_public ?? "absent"`}}},
		{ID: "route", Type: "core.switch", Config: map[string]any{"rules": []map[string]string{{"name": "public", "expr": `msg.allow_public == true`}}}},
		{ID: "pub", Type: "core.output", Config: map[string]any{"port": "public"}},
		{ID: "priv", Type: "core.output", Config: map[string]any{"port": "private"}},
	}, "in:out->seen", "seen:out->route", "route:public->pub", "route:else->priv"))
	callWith := func(id string, inputs map[string]any) *engine.Flow {
		conf := map[string]any{"flow": "echo", "outputs": []string{"public", "private"}}
		if inputs != nil {
			conf["inputs"] = inputs
		}
		return enginetest.Flow(t, id, []enginetest.Node{{ID: "go", Type: "core.manual"}, {ID: "call", Type: "core.call", Config: conf}}, "go:out->call")
	}
	enginetest.Deploy(t, rt, callWith("plain", nil))
	enginetest.Deploy(t, rt, callWith("public", map[string]any{"allow_public": "true"}))
	enginetest.Deploy(t, rt, callWith("computed", map[string]any{"allow_public": `msg.kind == "spa"`}))
	enginetest.Deploy(t, rt, callWith("broken", map[string]any{"allow_public": `msg.kind.x.y`}))
	tests := []struct {
		flow string
		in   engine.Msg
		port string
		seen any
		err  string
	}{
		{flow: "plain", port: "private", seen: "absent"},
		{flow: "public", port: "public", seen: true},
		{flow: "computed", in: engine.Msg{"kind": "spa"}, port: "public", seen: true},
		{flow: "computed", in: engine.Msg{"kind": "web"}, port: "private", seen: false},
		{flow: "public", in: engine.Msg{"allow_public": "caller's own"}, port: "public", seen: true},
		{flow: "broken", in: engine.Msg{"kind": "spa"}, err: "inputs.allow_public"},
	}
	for _, tt := range tests {
		t.Run(tt.flow+" "+fmt.Sprint(tt.in), func(t *testing.T) {
			tr, err := rt.Run(t.Context(), tt.flow, "", tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || tr.ErrorNode != "call" {
					t.Fatalf("err %v at %q, want %q at call", err, tr.ErrorNode, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "port", enginetest.Step(t, tr, "call").Port, tt.port)
			msg := finalMsg(tr)
			equal(t, "seen", msg["seen"], tt.seen)
			got, has := msg["allow_public"]
			want, had := tt.in["allow_public"]
			if has != had || got != want {
				t.Errorf("after the call allow_public = %v (present %v), want the caller's %v (present %v)", got, has, want, had)
			}
		})
	}
	t.Run("bad input name", func(t *testing.T) {
		f := callWith("badname", map[string]any{"a.b": "1"})
		refused(t, f, engine.ValidationError{Node: "call", Field: "inputs.a.b"})
	})
}
