package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func deploy(t *testing.T, rt *Runtime, f *Flow, version int) {
	t.Helper()
	if err := rt.Deploy(t.Context(), f, version); err != nil {
		t.Fatalf("deploy %s v%d: %v", f.ID, version, err)
	}
}

func TestNewNeedsRegistry(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Errorf("New without a registry: no error")
	}
}

// TestRunOutcomes covers how runs end: normally, through error ports, and
// at each limit. Each row deploys its own flow.
func TestRunOutcomes(t *testing.T) {
	tests := []struct {
		name      string
		limits    Limits
		nodes     []Node
		wires     []string
		msg       Msg
		status    string
		errorNode string
		is        error  // errors.Is on the returned error (nil: no error)
		errText   string // substring of Trace.Error
		steps     []string
	}{
		{
			name:   "straight line",
			nodes:  []Node{node("t", "test.trigger", nil), node("a", "test.set", map[string]any{"set": map[string]string{"y": "msg.x + 1"}}), node("c", "test.capture", nil)},
			wires:  []string{"t.out>a", "a.out>c"},
			msg:    Msg{"x": 1},
			status: StatusOK, steps: []string{"t:out", "a:out", "c:out"},
		},
		{
			name:   "error port wired",
			nodes:  []Node{node("t", "test.trigger", nil), node("f", "test.fail", nil), node("c", "test.capture", nil)},
			wires:  []string{"t.out>f", "f.error>c"},
			status: StatusOK, steps: []string{"t:out", "f:error!", "c:out"},
		},
		{
			name:   "error port not wired",
			nodes:  []Node{node("t", "test.trigger", nil), node("f", "test.fail", map[string]any{"message": "bad input"}), node("c", "test.capture", nil)},
			wires:  []string{"t.out>f", "f.out>c"},
			status: StatusError, errorNode: "f", is: errTestFail, errText: `node "f": bad input: test block failed`,
			steps: []string{"t:out", "f:!"},
		},
		{
			name:   "panic, error port not wired",
			nodes:  []Node{node("t", "test.trigger", nil), node("p", "test.panic", nil)},
			wires:  []string{"t.out>p"},
			status: StatusError, errorNode: "p", is: ErrBlockPanic, errText: "block panicked",
			steps: []string{"t:out", "p:!"},
		},
		{
			name:   "panic, error port wired",
			nodes:  []Node{node("t", "test.trigger", nil), node("p", "test.panic", nil), node("c", "test.capture", nil)},
			wires:  []string{"t.out>p", "p.error>c"},
			status: StatusOK, steps: []string{"t:out", "p:error!", "c:out"},
		},
		{
			name:   "step limit on a wire loop",
			limits: Limits{MaxSteps: 10},
			nodes:  []Node{node("t", "test.trigger", nil), node("a", "test.pass", nil), node("b", "test.pass", nil)},
			wires:  []string{"t.out>a", "a.out>b", "b.out>a"},
			// The node that would have been the 11th execution is named.
			status: StatusError, errorNode: "a", is: ErrStepLimit, errText: "node execution limit",
			steps: append([]string{"t:out"}, slices.Repeat([]string{"a:out", "b:out"}, 5)...),
		},
		{
			name:   "deadline in a ctx-honouring block",
			limits: Limits{Deadline: 50 * time.Millisecond},
			nodes:  []Node{node("t", "test.trigger", nil), node("s", "test.sleep", map[string]any{"for": "1m"}), node("c", "test.capture", nil)},
			wires:  []string{"t.out>s", "s.out>c", "s.error>c"},
			status: StatusError, errorNode: "s", is: ErrDeadline, errText: "deadline",
			steps: []string{"t:out", "s:!"},
		},
		{
			name:   "deadline between nodes",
			limits: Limits{Deadline: 50 * time.Millisecond},
			nodes:  []Node{node("t", "test.trigger", nil), node("s", "test.sleep", map[string]any{"for": "80ms", "ignore_ctx": true}), node("c", "test.capture", nil)},
			wires:  []string{"t.out>s", "s.out>c"},
			status: StatusError, errorNode: "c", is: ErrDeadline, errText: `before node "c"`,
			steps: []string{"t:out", "s:out"},
		},
		{
			name:   "message grows over the size limit",
			limits: Limits{MaxMessageBytes: 1024},
			nodes:  []Node{node("t", "test.trigger", nil), node("b", "test.big", map[string]any{"size": 2000}), node("c", "test.capture", nil)},
			wires:  []string{"t.out>b", "b.out>c"},
			status: StatusError, errorNode: "b", is: ErrMessageTooBig, errText: "size limit",
			steps: []string{"t:out", "b:!"},
		},
		{
			name:   "message starts over the size limit",
			limits: Limits{MaxMessageBytes: 1024},
			nodes:  []Node{node("t", "test.trigger", nil), node("c", "test.capture", nil)},
			wires:  []string{"t.out>c"},
			msg:    Msg{"body": strings.Repeat("x", 2000)},
			status: StatusError, errorNode: "t", is: ErrMessageTooBig, errText: "size limit",
			steps: []string{},
		},
		{
			name:   "message that contains itself",
			nodes:  []Node{node("t", "test.trigger", nil), node("y", "test.cycle", nil), node("c", "test.capture", nil)},
			wires:  []string{"t.out>y", "y.out>c"},
			status: StatusError, errorNode: "y", is: ErrMessageTooBig, errText: "size limit",
			steps: []string{"t:out", "y:!"},
		},
		{
			name:   "error out of the error port over the size limit",
			limits: Limits{MaxMessageBytes: 60},
			nodes:  []Node{node("t", "test.trigger", nil), node("f", "test.fail", map[string]any{"message": strings.Repeat("m", 80)}), node("c", "test.capture", nil)},
			wires:  []string{"t.out>f", "f.error>c"},
			status: StatusError, errorNode: "f", is: ErrMessageTooBig, errText: "size limit",
			steps: []string{"t:out", "f:!"},
		},
		{
			name:   "branch ends on a sink",
			nodes:  []Node{node("t", "test.trigger", nil), node("r", "test.respond", nil)},
			wires:  []string{"t.out>r"},
			status: StatusOK, steps: []string{"t:out", "r:"},
		},
		{
			name:   "trigger without an out port fires its first output",
			nodes:  []Node{node("m", "test.manual", nil), node("c", "test.capture", nil)},
			wires:  []string{"m.go>c"},
			status: StatusOK, steps: []string{"m:go", "c:out"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness()
			rt := newTestRuntime(t, h, Options{Limits: tt.limits})
			deploy(t, rt, mkFlow("f", tt.nodes, tt.wires...), 1)
			tr, err := rt.Run(t.Context(), "f", "", tt.msg)
			if tr == nil {
				t.Fatalf("no trace (err %v)", err)
			}
			if tt.is == nil && err != nil {
				t.Errorf("err = %v", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			if tr.Status != tt.status || tr.ErrorNode != tt.errorNode {
				t.Errorf("status %q error node %q, want %q %q", tr.Status, tr.ErrorNode, tt.status, tt.errorNode)
			}
			if (tt.errText == "") != (tr.Error == "") || !strings.Contains(tr.Error, tt.errText) {
				t.Errorf("trace error %q, want it to contain %q", tr.Error, tt.errText)
			}
			if err != nil && tr.Error != err.Error() {
				t.Errorf("trace error %q != returned error %q", tr.Error, err)
			}
			if got := stepSummary(tr); !slices.Equal(got, tt.steps) && !(len(got) == 0 && len(tt.steps) == 0) {
				t.Errorf("steps %q, want %q", got, tt.steps)
			}
			if tr.Flow != "f" || tr.Version != 1 || tr.ID == "" || tr.Started.IsZero() || tr.Duration <= 0 {
				t.Errorf("trace header %+v", tr)
			}
			if ring := rt.Traces("f"); len(ring) != 1 || ring[0] != tr {
				t.Errorf("ring holds %d traces", len(ring))
			}
		})
	}
}

func TestRunErrorPortMessage(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{})
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil), node("f", "test.fail", map[string]any{"message": "nope"}), node("c", "test.capture", nil)},
		"t.out>f", "f.error>c"), 1)
	tr, err := rt.Run(t.Context(), "f", "", Msg{"in": 1})
	if err != nil {
		t.Fatal(err)
	}
	got := h.msgs("c")
	want := []Msg{{"in": 1, "error": map[string]any{"message": "nope: test block failed", "node": "f"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("error handler got %v, want %v", got, want)
	}
	if s := tr.Steps[1]; s.Error != "nope: test block failed" || s.Port != ErrorPort {
		t.Errorf("failed step %+v", s)
	}
}

// TestRunFanOut: each wire from a port gets its own copy; mutations of
// nested maps and slices in one branch are not seen in another.
func TestRunFanOut(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{})
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil), node("a", "test.pass", nil),
		node("b", "test.tag", nil), node("c", "test.tag", nil), node("d", "test.tag", nil), node("e", "test.capture", nil)},
		"t.out>a", "a.out>b", "a.out>c", "a.out>d", "b.out>e", "c.out>e"), 1)
	in := Msg{"obj": map[string]any{"who": "nobody"}, "list": []any{"first"}}
	tr, err := rt.Run(t.Context(), "f", "", in)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"b", "c", "d"} {
		got := h.msgs(n)
		want := []Msg{{"obj": map[string]any{"who": n}, "list": []any{n, n}, n: true}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("branch %s saw %v, want %v", n, got, want)
		}
	}
	e := h.msgs("e")
	if len(e) != 2 || e[0]["obj"].(map[string]any)["who"] != "b" || e[1]["obj"].(map[string]any)["who"] != "c" {
		t.Errorf("e saw %v", e)
	}
	// Branches run breadth-first, wires of a port in canonical order.
	if got, want := stepSummary(tr), []string{"t:out", "a:out", "b:out", "c:out", "d:out", "e:out", "e:out"}; !slices.Equal(got, want) {
		t.Errorf("steps %q, want %q", got, want)
	}
	// The trace snapshots were taken when each node finished.
	if w := tr.Steps[1].Msg.(map[string]any)["obj"].(map[string]any)["who"]; w != "nobody" {
		t.Errorf("snapshot of a shows who=%v", w)
	}
}

func TestRunChoosesTrigger(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{})
	two := mkFlow("two", []Node{node("t1", "test.trigger", nil), node("t2", "test.trigger", nil), node("c", "test.capture", nil)}, "t1.out>c", "t2.out>c")
	deploy(t, rt, two, 1)
	none := mkFlow("none", []Node{node("c", "test.capture", nil)})
	deploy(t, rt, none, 1)
	tests := []struct {
		name, flow, node string
		wantTrigger      string
		is               error
		msg              string
	}{
		{name: "named trigger", flow: "two", node: "t2", wantTrigger: "t2"},
		{name: "ambiguous", flow: "two", is: ErrNoTrigger, msg: "found 2 triggers"},
		{name: "no trigger", flow: "none", is: ErrNoTrigger, msg: "found 0 triggers"},
		{name: "not a trigger", flow: "two", node: "c", msg: `node "c" is not a trigger`},
		{name: "missing node", flow: "two", node: "zz", msg: `node "zz" is not a trigger`},
		{name: "not deployed", flow: "nope", is: ErrNotDeployed, msg: "not deployed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := rt.Run(t.Context(), tt.flow, tt.node, nil)
			if tt.msg == "" {
				if err != nil || tr.Trigger != tt.wantTrigger {
					t.Errorf("got %v %v", tr, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.msg) || (tt.is != nil && !errors.Is(err, tt.is)) || tr != nil {
				t.Errorf("got %v, %v; want error %q (%v)", tr, err, tt.msg, tt.is)
			}
		})
	}
}

// TestRunCoreManualPreferred: with several triggers, "" picks core.manual.
func TestRunCoreManualPreferred(t *testing.T) {
	h := newHarness()
	reg := testRegistry(t, h)
	reg.MustRegister(Spec{Type: "core.manual", Trigger: true, Outputs: []string{"out"}},
		func(s *Setup) (Block, error) { return &testTrigger{h: h, node: s.NodeID}, nil })
	rt := newTestRuntime(t, h, Options{Registry: reg})
	deploy(t, rt, mkFlow("f", []Node{node("cron", "test.trigger", nil), node("manual", "core.manual", nil), node("c", "test.capture", nil)},
		"cron.out>c", "manual.out>c"), 1)
	tr, err := rt.Run(t.Context(), "f", "", nil)
	if err != nil || tr.Trigger != "manual" {
		t.Errorf("got %v, %v", tr, err)
	}
}

// TestFireNilMessage: a trigger may fire with a nil message.
func TestFireNilMessage(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{})
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil), node("f", "test.fail", nil), node("c", "test.capture", nil)},
		"t.out>f", "f.error>c"), 1)
	tc := h.trigger("t")
	if tc == nil || tc.FlowID != "f" || tc.NodeID != "t" || tc.Version() != 1 || tc.Logger == nil {
		t.Fatalf("trigger context %+v", tc)
	}
	tr, err := tc.Fire(t.Context(), nil)
	if err != nil || tr.Status != StatusOK {
		t.Fatalf("Fire(nil): %v %v", tr, err)
	}
	if got := h.msgs("c"); len(got) != 1 || got[0]["error"] == nil {
		t.Errorf("captured %v", got)
	}
}

func TestRunCancelled(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{})
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil), node("h", "test.hold", nil), node("c", "test.capture", nil)},
		"t.out>h", "h.out>c"), 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var tr *Trace
	go func() {
		var err error
		tr, err = rt.Run(ctx, "f", "", nil)
		done <- err
	}()
	<-h.entered
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrDeadline) || tr.Status != StatusError || tr.ErrorNode != "h" {
		t.Errorf("cancelled run: %v, %+v", err, tr)
	}
}

// TestRedeployAtomic: a run in flight on v1 completes on v1 while v2 is
// deployed; new runs go to v2; v1's blocks close once its run is done.
func TestRedeployAtomic(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{})
	v1 := mkFlow("f", []Node{node("t", "test.trigger", nil), node("h", "test.hold", nil), node("c", "test.capture", nil)}, "t.out>h", "h.out>c")
	deploy(t, rt, v1, 1)
	v1Trigger := h.trigger("t")

	type result struct {
		tr  *Trace
		err error
	}
	res := make(chan result, 1)
	go func() {
		tr, err := rt.Run(t.Context(), "f", "", Msg{"run": "first"})
		res <- result{tr, err}
	}()
	if got := <-h.entered; got != "h@1" {
		t.Fatalf("entered %s", got)
	}

	v2 := mkFlow("f", []Node{node("t", "test.trigger", nil), node("p", "test.pass", nil), node("c", "test.capture", nil)}, "t.out>p", "p.out>c")
	deploy(t, rt, v2, 2)
	if v, ok := rt.Deployed("f"); !ok || v != 2 {
		t.Errorf("Deployed = %d, %v", v, ok)
	}
	if h.count(h.starts, "t@2") != 1 || h.count(h.stops, "t@1") != 1 || h.count(h.stops, "t@2") != 0 {
		t.Errorf("starts %v stops %v", h.starts, h.stops)
	}
	tr2, err := rt.Run(t.Context(), "f", "", Msg{"run": "second"})
	if err != nil || tr2.Version != 2 || !slices.Equal(stepSummary(tr2), []string{"t:out", "p:out", "c:out"}) {
		t.Errorf("run on v2: %v %v", tr2, err)
	}
	// v1's stopped trigger cannot start new runs.
	fireCtx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, err := v1Trigger.Fire(fireCtx, nil); !errors.Is(err, ErrNotDeployed) {
		t.Errorf("Fire on replaced version: %v", err)
	}
	if h.count(h.closes, "h@1") != 0 {
		t.Errorf("v1 blocks closed while its run is in flight")
	}

	close(h.release)
	r := <-res
	if r.err != nil || r.tr.Version != 1 || r.tr.Status != StatusOK || !slices.Equal(stepSummary(r.tr), []string{"t:out", "h:out", "c:out"}) {
		t.Errorf("run on v1: %+v %v", r.tr, r.err)
	}
	waitFor(t, "v1 blocks closed", func() bool { return h.count(h.closes, "h@1") == 1 })
	// Both traces are in the flow's ring, newest first.
	ring := rt.Traces("f")
	if len(ring) != 2 || ring[0] != r.tr || ring[1] != tr2 {
		t.Errorf("ring %v", ring)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFailedDeployKeepsOldVersion: a bad config or a trigger whose Start
// fails leaves the running version alone.
func TestFailedDeployKeepsOldVersion(t *testing.T) {
	tests := []struct {
		name      string
		v2        *Flow
		node      string
		field     string
		msg       string
		startedV2 []string // triggers of v2 that started and must be stopped again
	}{
		{
			name: "bad config",
			v2:   mkFlow("f", []Node{node("t", "test.trigger", nil), node("k", "test.kitchen", map[string]any{"name": "n", "count": "x"})}, "t.out>k"),
			node: "k", field: "count", msg: "whole number",
		},
		{
			name: "factory error",
			v2:   mkFlow("f", []Node{node("t", "test.trigger", nil), node("k", "test.kitchen", map[string]any{"name": "explode"})}, "t.out>k"),
			node: "k", field: "name", msg: "refused",
		},
		{
			name: "second trigger fails to start",
			v2: mkFlow("f", []Node{node("t", "test.trigger", nil), node("u", "test.trigger", map[string]any{"fail_start": true}), node("c", "test.capture", nil)},
				"t.out>c", "u.out>c"),
			node: "u", msg: "port already taken", startedV2: []string{"t@2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness()
			rt := newTestRuntime(t, h, Options{})
			deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil), node("c", "test.capture", nil)}, "t.out>c"), 1)
			err := rt.Deploy(t.Context(), tt.v2, 2)
			if !errors.Is(err, ErrInvalidFlow) {
				t.Errorf("errors.Is(%v, ErrInvalidFlow) = false", err)
			}
			ve := FirstValidation(err)
			if ve == nil || ve.Node != tt.node || ve.Field != tt.field || !strings.Contains(ve.Msg, tt.msg) {
				t.Errorf("got %v, want node %q field %q msg %q", err, tt.node, tt.field, tt.msg)
			}
			if v, ok := rt.Deployed("f"); !ok || v != 1 {
				t.Errorf("Deployed = %d %v", v, ok)
			}
			if h.count(h.stops, "t@1") != 0 {
				t.Errorf("v1 trigger stopped")
			}
			for _, s := range tt.startedV2 {
				if h.count(h.starts, s) != 1 || h.count(h.stops, s) != 1 {
					t.Errorf("%s: %d starts, %d stops; want 1, 1", s, h.count(h.starts, s), h.count(h.stops, s))
				}
			}
			tr, err := rt.Run(t.Context(), "f", "", nil)
			if err != nil || tr.Version != 1 {
				t.Errorf("run after failed deploy: %v %v", tr, err)
			}
		})
	}
}

func TestUndeploy(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{})
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil), node("h", "test.hold", nil)}, "t.out>h"), 3)
	if err := rt.Undeploy(t.Context(), "f"); err != nil {
		t.Fatal(err)
	}
	if h.count(h.stops, "t@3") != 1 {
		t.Errorf("trigger not stopped: %v", h.stops)
	}
	waitFor(t, "blocks closed", func() bool { return h.count(h.closes, "h@3") == 1 })
	if _, ok := rt.Deployed("f"); ok {
		t.Errorf("still deployed")
	}
	if _, _, ok := rt.DeployedFlow("f"); ok {
		t.Errorf("DeployedFlow still there")
	}
	if _, err := rt.Run(t.Context(), "f", "", nil); !errors.Is(err, ErrNotDeployed) {
		t.Errorf("Run after Undeploy: %v", err)
	}
	if err := rt.Undeploy(t.Context(), "f"); !errors.Is(err, ErrNotDeployed) {
		t.Errorf("second Undeploy: %v", err)
	}
}

// TestDeployKeepsOwnCopy: changing the Flow after Deploy changes nothing.
func TestDeployKeepsOwnCopy(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{})
	f := mkFlow("f", []Node{node("t", "test.trigger", nil), node("s", "test.set", map[string]any{"set": map[string]string{"a": "1"}})}, "t.out>s")
	deploy(t, rt, f, 1)
	f.Nodes[1].ID = "changed"
	f.Nodes[1].Config["set"][2] = 'X'
	f.Wires[0].To = "changed"
	got, v, ok := rt.DeployedFlow("f")
	if !ok || v != 1 || got.Nodes[1].ID != "s" || string(got.Nodes[1].Config["set"]) != `{"a":"1"}` || got.Wires[0].To != "s" {
		t.Errorf("deployed flow changed with the caller's: %+v", got)
	}
	got.Nodes[1].ID = "mine"
	if again, _, _ := rt.DeployedFlow("f"); again.Nodes[1].ID != "s" {
		t.Errorf("DeployedFlow returns the runtime's own copy")
	}
	tr, err := rt.Run(t.Context(), "f", "", nil)
	if err != nil || tr.Steps[1].Node != "s" {
		t.Errorf("run: %v %v", tr, err)
	}
}

func TestClose(t *testing.T) {
	h := newHarness()
	rt, err := New(Options{Registry: testRegistry(t, h)})
	if err != nil {
		t.Fatal(err)
	}
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil), node("h", "test.hold", nil)}, "t.out>h"), 1)
	// A run in flight on a replaced version counts too.
	deploy(t, rt, mkFlow("g", []Node{node("t", "test.trigger", nil), node("h", "test.hold", nil)}, "t.out>h"), 1)
	runs := make(chan *Trace, 2)
	for _, id := range []string{"f", "g"} {
		go func() {
			tr, _ := rt.Run(context.Background(), id, "", nil)
			runs <- tr
		}()
		<-h.entered
	}
	deploy(t, rt, mkFlow("g", []Node{node("t", "test.trigger", nil), node("p", "test.pass", nil)}, "t.out>p"), 2)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	err = rt.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with runs in flight: %v", err)
	}
	if h.count(h.stops, "t@1") != 2 || h.count(h.stops, "t@2") != 1 {
		t.Errorf("triggers not stopped: %v", h.stops)
	}
	if h.count(h.closes, "h@1") != 0 {
		t.Errorf("blocks closed under a run")
	}
	if err := rt.Deploy(t.Context(), mkFlow("x", nil), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Deploy after Close: %v", err)
	}
	if _, err := rt.Run(t.Context(), "f", "", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
	close(h.release)
	// A second Close waits for what the first could not.
	if err := rt.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if h.count(h.closes, "h@1") != 2 {
		t.Errorf("blocks closed %v, want h@1 twice", h.closes)
	}
	for range 2 {
		if tr := <-runs; tr == nil || tr.Status != StatusOK || tr.Version != 1 {
			t.Errorf("run in flight: %+v", tr)
		}
	}
	if err := rt.Close(t.Context()); err != nil {
		t.Errorf("third Close: %v", err)
	}
}

func TestTraceRing(t *testing.T) {
	h := newHarness()
	var sunk []*Trace
	var mu sync.Mutex
	sink := traceSinkFunc(func(tr *Trace) {
		mu.Lock()
		sunk = append(sunk, tr)
		mu.Unlock()
	})
	rt := newTestRuntime(t, h, Options{TraceRing: 3, Traces: sink})
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil), node("s", "test.set", map[string]any{"set": map[string]string{"y": "10 / msg.n > 3 ? 1 : msg.missing.x"}})}, "t.out>s"), 1)
	var all []*Trace
	for i := 1; i <= 5; i++ {
		tr, _ := rt.Run(t.Context(), "f", "", Msg{"n": i})
		all = append(all, tr)
	}
	ring := rt.Traces("f")
	if len(ring) != 3 || ring[0] != all[4] || ring[1] != all[3] || ring[2] != all[2] {
		t.Errorf("ring = %v, want the last 3 newest first", ring)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sunk, all) {
		t.Errorf("sink got %d traces, want all %d in order", len(sunk), len(all))
	}
	var statuses []string
	for _, tr := range sunk {
		statuses = append(statuses, tr.Status)
	}
	if want := []string{"ok", "ok", "ok", "error", "error"}; !slices.Equal(statuses, want) {
		t.Errorf("statuses %v, want %v", statuses, want)
	}
	if rt.Traces("nope") != nil {
		t.Errorf("traces of an unknown flow")
	}
	rt.Forget("f")
	if rt.Traces("f") != nil {
		t.Errorf("Forget kept traces")
	}
}

type traceSinkFunc func(*Trace)

func (f traceSinkFunc) SaveTrace(t *Trace) { f(t) }

// TestTraceSinkPanic: a panicking sink costs the trace, not the caller.
func TestTraceSinkPanic(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{Traces: traceSinkFunc(func(*Trace) { panic("disk full") })})
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil)}), 1)
	if tr, err := rt.Run(t.Context(), "f", "", nil); err != nil || tr.Status != StatusOK {
		t.Errorf("run: %v %v", tr, err)
	}
}

// TestTraceRedaction: tokens, credentials and private key material never
// reach a trace; huge strings and collections are cut.
func TestTraceRedaction(t *testing.T) {
	jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
	huge := strings.Repeat("é", 5000) // 10000 bytes
	in := Msg{
		"note":    "see " + jwt,
		"raw_jwt": jwt,
		"headers": map[string]string{"Authorization": "Bearer abc.def", "Accept": "application/json"},
		"multi":   map[string][]string{"authorization": {"Basic dXNlcjpwYXNz"}, "X-Trace": {"1"}},
		"signing": map[string]any{"kty": "EC", "crv": "P-256", "x": "pub-x", "y": "pub-y", "d": "private-d"},
		"jwk":     map[string]any{"kty": "oct", "k": "c2VjcmV0"},
		"rsa":     map[string]any{"kty": "RSA", "n": "pub-n", "e": "AQAB", "p": "pp", "q": "qq", "dp": "x", "dq": "y", "qi": "z"},
		"nested":  map[string]any{"deeper": []any{map[string]any{"Password": "hunter2", "client_secret": "s3"}}},
		"bearer":  "Bearer 0123456789abcdef",
		"pem":     "-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----",
		"huge":    huge,
		"many":    slices.Repeat([]any{1}, 200),
		"bytes":   []byte("secret bytes"),
		"when":    time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		"struct":  struct{ Secret string }{"x"},
		"d":       "not a jwk member here",
	}
	h := newHarness()
	rt := newTestRuntime(t, h, Options{})
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil), node("s", "test.secretive", nil), node("p", "test.pass", nil)},
		"t.out>s", "s.out>p"), 1)
	tr, err := rt.Run(t.Context(), "f", "", in)
	if err != nil {
		t.Fatal(err)
	}
	snap := tr.Steps[1].Msg.(map[string]any)
	get := func(path ...string) any {
		var v any = snap
		for _, p := range path {
			switch m := v.(type) {
			case map[string]any:
				v = m[p]
			case []any:
				var i int
				fmt.Sscan(p, &i)
				v = m[i]
			}
		}
		return v
	}
	tests := []struct {
		path []string
		want any
	}{
		{[]string{"note"}, "see " + Redacted}, // a JWT inside text
		{[]string{"raw_jwt"}, Redacted},
		{[]string{"headers", "Authorization"}, Redacted},
		{[]string{"headers", "Accept"}, "application/json"},
		{[]string{"multi", "authorization"}, Redacted},
		{[]string{"multi", "X-Trace"}, []any{"1"}},
		{[]string{"signing", "d"}, Redacted},
		{[]string{"signing", "x"}, "pub-x"},
		{[]string{"signing", "kty"}, "EC"},
		{[]string{"jwk"}, Redacted}, // a member named jwk goes whole
		{[]string{"rsa", "p"}, Redacted},
		{[]string{"rsa", "qi"}, Redacted},
		{[]string{"rsa", "n"}, "pub-n"},
		{[]string{"nested", "deeper", "0", "Password"}, Redacted},
		{[]string{"nested", "deeper", "0", "client_secret"}, Redacted},
		{[]string{"bearer"}, Redacted},
		{[]string{"pem"}, Redacted},
		{[]string{"bytes"}, "[12 bytes]"},
		{[]string{"when"}, "2024-01-02T03:04:05Z"},
		{[]string{"struct"}, "[value]"},
		{[]string{"d"}, "not a jwk member here"},
		{[]string{"otp"}, Redacted}, // the block's Spec.Sensitive
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.path, "."), func(t *testing.T) {
			if got := get(tt.path...); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	t.Run("huge string", func(t *testing.T) {
		s, _ := snap["huge"].(string)
		if len(s) > snapMaxString+32 || !strings.HasSuffix(s, "…[10000 bytes]") || !strings.HasPrefix(s, "éé") {
			t.Errorf("huge string snapshot is %d bytes: %.40q...", len(s), s)
		}
		if !utf8Valid(s) {
			t.Errorf("truncation split a character")
		}
	})
	t.Run("many items", func(t *testing.T) {
		l, _ := snap["many"].([]any)
		if len(l) != snapMaxItems+1 || l[snapMaxItems] != "[136 more items]" {
			t.Errorf("list snapshot has %d items, last %v", len(l), l[len(l)-1])
		}
	})
	t.Run("block-declared key redacted in later steps", func(t *testing.T) {
		if got := tr.Steps[2].Msg.(map[string]any)["otp"]; got != Redacted {
			t.Errorf("otp after the block = %v", got)
		}
	})
	t.Run("trigger step redacted too", func(t *testing.T) {
		if tr.Steps[0].Msg.(map[string]any)["raw_jwt"] != Redacted {
			t.Errorf("trigger snapshot not redacted")
		}
	})
	t.Run("message itself untouched", func(t *testing.T) {
		if in["raw_jwt"] != jwt || in["signing"].(map[string]any)["d"] != "private-d" {
			t.Errorf("redaction changed the message")
		}
	})
	t.Run("Redact", func(t *testing.T) {
		r := Redact(map[string]any{"access_token": "x", "ok": 1}).(map[string]any)
		if r["access_token"] != Redacted || r["ok"] != 1 {
			t.Errorf("Redact = %v", r)
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\x00") == s }

// TestTraceSnapshotBounded: however big the message, a step's snapshot
// stays around the budget.
func TestTraceSnapshotBounded(t *testing.T) {
	wide := map[string]any{}
	for i := range 5000 {
		wide[fmt.Sprintf("key%04d", i)] = strings.Repeat("v", 400)
	}
	deep := any("bottom")
	for range 50 {
		deep = map[string]any{"down": deep}
	}
	headers := map[string]string{}
	for i := range 5000 {
		headers[fmt.Sprintf("h%d", i)] = strings.Repeat("v", 400)
	}
	tests := []struct {
		name string
		msg  Msg
	}{
		{"wide", Msg{"wide": wide}},
		{"deep", Msg{"deep": deep}},
		{"many wide maps", Msg{"a": wide, "b": wide, "c": wide, "d": wide}},
		{"header map", Msg{"headers": headers}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The snapshot's size is its JSON, as a stored trace holds it.
			b, err := json.Marshal(Redact(tt.msg))
			if err != nil {
				t.Fatal(err)
			}
			if n := len(b); n > 2*snapBudget {
				t.Errorf("snapshot is ~%d bytes, budget %d", n, snapBudget)
			}
		})
	}
}

// varStoreMock is a hand-written VarStore with function fields.
type varStoreMock struct {
	LoadVarsFunc func(ctx context.Context, flow string) (map[string]any, error)
	SaveVarFunc  func(ctx context.Context, flow, key string, value any) error
}

func (m *varStoreMock) LoadVars(ctx context.Context, flow string) (map[string]any, error) {
	return m.LoadVarsFunc(ctx, flow)
}

func (m *varStoreMock) SaveVar(ctx context.Context, flow, key string, value any) error {
	return m.SaveVarFunc(ctx, flow, key, value)
}

var _ VarStore = (*varStoreMock)(nil)

func TestVars(t *testing.T) {
	var mu sync.Mutex
	var saved []string
	var loads atomic.Int32
	failSave := false
	store := &varStoreMock{
		LoadVarsFunc: func(_ context.Context, flow string) (map[string]any, error) {
			loads.Add(1)
			if flow == "broken" {
				return nil, errors.New("disk on fire")
			}
			return map[string]any{"count": 41, "greeting": "hi"}, nil
		},
		SaveVarFunc: func(_ context.Context, flow, key string, value any) error {
			mu.Lock()
			defer mu.Unlock()
			if failSave {
				return errors.New("read-only")
			}
			saved = append(saved, fmt.Sprintf("%s/%s=%v", flow, key, value))
			return nil
		},
	}
	h := newHarness()
	rt := newTestRuntime(t, h, Options{Vars: store})
	f := mkFlow("f", []Node{
		node("t", "test.trigger", nil),
		node("before", "test.set", map[string]any{"set": map[string]string{"seen": "flow.count", "hello": "flow.greeting"}}),
		node("inc", "test.var", map[string]any{"key": "count", "value": "flow.count + 1"}),
		node("after", "test.set", map[string]any{"set": map[string]string{"now": "flow.count"}}),
		node("c", "test.capture", nil),
	}, "t.out>before", "before.out>inc", "inc.out>after", "after.out>c")
	deploy(t, rt, f, 1)
	for range 2 {
		if _, err := rt.Run(t.Context(), "f", "", nil); err != nil {
			t.Fatal(err)
		}
	}
	want := []Msg{{"seen": 41, "hello": "hi", "now": 42}, {"seen": 42, "hello": "hi", "now": 43}}
	if got := h.msgs("c"); !reflect.DeepEqual(got, want) {
		t.Errorf("runs saw %v, want %v", got, want)
	}
	mu.Lock()
	if want := []string{"f/count=42", "f/count=43"}; !slices.Equal(saved, want) {
		t.Errorf("saved %v, want %v", saved, want)
	}
	failSave = true
	mu.Unlock()
	// Variables outlive a redeploy and are loaded once.
	deploy(t, rt, f, 2)
	if loads.Load() != 1 {
		t.Errorf("LoadVars called %d times", loads.Load())
	}
	tr, err := rt.Run(t.Context(), "f", "", nil)
	if err == nil || !strings.Contains(err.Error(), "read-only") || tr.ErrorNode != "inc" {
		t.Errorf("failed save: %v", err)
	}
	// A failed save changes nothing in memory.
	mu.Lock()
	failSave = false
	mu.Unlock()
	if _, err := rt.Run(t.Context(), "f", "", nil); err != nil {
		t.Fatal(err)
	}
	if got := h.msgs("c"); got[len(got)-1]["seen"] != 43 {
		t.Errorf("after a failed save: %v", got[len(got)-1])
	}
	// A flow whose variables cannot load does not deploy.
	broken := mkFlow("broken", []Node{node("t", "test.trigger", nil)})
	if err := rt.Deploy(t.Context(), broken, 1); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("deploy with failing LoadVars: %v", err)
	}
	if _, ok := rt.Deployed("broken"); ok {
		t.Errorf("broken flow deployed")
	}
	if h.count(h.starts, "t@1") != 1 { // only flow f's trigger ever started at v1
		t.Errorf("starts %v", h.starts)
	}
}

func TestVarsDirect(t *testing.T) {
	x := &Exec{}
	v := x.Vars()
	if err := v.Set(t.Context(), "a", 1); err != nil {
		t.Fatal(err)
	}
	if got, ok := x.Vars().Get("a"); !ok || got != 1 {
		t.Errorf("Get(a) = %v %v", got, ok)
	}
	if err := v.Set(t.Context(), "a", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.Get("a"); ok {
		t.Errorf("nil did not delete")
	}
}

// TestConcurrentRuns: many runs of one flow at once, with a redeploy in the
// middle; run with -race.
func TestConcurrentRuns(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{})
	mk := func(v int) *Flow {
		return mkFlow("f", []Node{node("t", "test.trigger", nil),
			node("s", "test.set", map[string]any{"set": map[string]string{"v": fmt.Sprint(v), "id": "uuid()"}}),
			node("a", "test.pass", nil), node("b", "test.pass", nil),
			node("k", "test.var", map[string]any{"key": "last", "value": "msg.n"})},
			"t.out>s", "s.out>a", "s.out>b", "a.out>k")
	}
	deploy(t, rt, mk(1), 1)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				tr, err := rt.Run(t.Context(), "f", "", Msg{"n": g*100 + i, "nested": map[string]any{"a": []any{1}}})
				if err != nil || tr.Status != StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	for v := 2; v <= 5; v++ {
		deploy(t, rt, mk(v), v)
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d runs failed", failed.Load())
	}
}

func TestRunIDs(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	prev := ""
	for i := range 100 {
		id := newRunID(now.Add(time.Duration(i) * time.Millisecond))
		if len(id) != 24 || seen[id] || id <= prev {
			t.Fatalf("run id %q (prev %q)", id, prev)
		}
		seen[id] = true
		prev = id
	}
}

// TestFakeClock: Options.Now sets the run's clock; durations stay real.
func TestFakeClock(t *testing.T) {
	fixed := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	h := newHarness()
	rt := newTestRuntime(t, h, Options{Now: func() time.Time { return fixed }})
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil), node("s", "test.set", map[string]any{"set": map[string]string{"t": "unix(now)"}}), node("c", "test.capture", nil)},
		"t.out>s", "s.out>c"), 1)
	tr, err := rt.Run(t.Context(), "f", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Started.Equal(fixed) || tr.Duration <= 0 || tr.Duration > int64(time.Minute) {
		t.Errorf("started %v duration %v", tr.Started, time.Duration(tr.Duration))
	}
	if got := h.msgs("c")[0]["t"]; got != fixed.Unix() {
		t.Errorf("unix(now) = %v", got)
	}
}

// TestFailedBuildClosesBuiltBlocks: when a factory fails, the blocks built
// before it are closed (and the failure is an error, not a panic).
func TestFailedBuildClosesBuiltBlocks(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{})
	f := mkFlow("f", []Node{node("t", "test.trigger", nil), node("h", "test.hold", nil), node("k", "test.kitchen", map[string]any{"name": "explode"})},
		"t.out>h", "h.out>k")
	for i, try := range []func() error{
		func() error { return rt.Validate(t.Context(), f) },
		func() error { return rt.Deploy(t.Context(), f, 7) },
	} {
		if err := try(); FirstValidation(err) == nil || FirstValidation(err).Node != "k" {
			t.Errorf("try %d: %v", i, err)
		}
	}
	if h.count(h.closes, "h@0") != 1 || h.count(h.closes, "h@7") != 1 {
		t.Errorf("closes %v, want h@0 and h@7 once each", h.closes)
	}
}
