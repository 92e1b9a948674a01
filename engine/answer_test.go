package engine

import (
	"context"
	"strings"
	"testing"
)

// TestAnswerReachesTheCaller: the status a block reports with
// Exec.Answered shows in its run's trace, the first report stands, and a
// sub-flow's answer is also its caller's, also when the sub-flow fails
// after answering; the answer survives the trace encoding.
func TestAnswerReachesTheCaller(t *testing.T) {
	reg := secretRegistry(t)
	reg.MustRegister(Spec{Type: "test.answer", Title: "Answer", Category: "test", Outputs: []string{"out"},
		Fields: []Field{{Name: "status", Kind: KindInt, Default: 200}}},
		func(s *Setup) (Block, error) {
			st := int(s.Config.Int("status"))
			return BlockFunc(func(_ context.Context, x *Exec, _ Msg) (string, error) {
				x.Answered(st)
				return "out", nil
			}), nil
		})
	rt := newTestRuntime(t, nil, Options{Registry: reg})
	answer := func(id string, st int) Node { return node(id, "test.answer", map[string]any{"status": st}) }
	deploy(t, rt, mkFlow("sub", []Node{node("in", "test.entry", nil), answer("a401", 401), answer("a200", 200), node("ret", "test.ret", nil)},
		"in.out>a401", "a401.out>a200", "a200.out>ret"), 1)
	deploy(t, rt, mkFlow("app", []Node{node("go", "test.trigger", nil), node("call", "test.call", nil), node("c", "test.capture", nil)},
		"go.out>call", "call.ok>c"), 1)
	deploy(t, rt, mkFlow("none", []Node{node("go", "test.trigger", nil), node("c", "test.capture", nil)}, "go.out>c"), 1)

	tr, err := rt.Run(t.Context(), "app", "go", nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Answer != 401 {
		t.Errorf("caller's answer %d, want the sub-flow's first, 401", tr.Answer)
	}
	subs := rt.Traces("sub")
	if len(subs) != 1 || subs[0].Answer != 401 {
		t.Fatalf("sub-flow traces %v", subs)
	}
	data, err := EncodeTrace(tr)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeTrace(data)
	if err != nil || back.Answer != 401 {
		t.Errorf("decoded answer %v %v from %s", back, err, data)
	}

	// Answered, then failed: the request was answered all the same.
	deploy(t, rt, mkFlow("sub", []Node{node("in", "test.entry", nil), answer("a503", 503), node("f", "test.fail", nil)},
		"in.out>a503", "a503.out>f"), 2)
	tr, err = rt.Run(t.Context(), "app", "go", nil)
	if err == nil || tr.Answer != 503 || tr.Status != StatusError {
		t.Errorf("after a failing sub-flow: answer %d status %q err %v, want 503, error", tr.Answer, tr.Status, err)
	}

	tr, err = rt.Run(t.Context(), "none", "go", nil)
	if err != nil || tr.Answer != 0 {
		t.Errorf("a run that answered nothing: %d %v", tr.Answer, err)
	}
	if data, _ := EncodeTrace(tr); strings.Contains(string(data), `"answer"`) {
		t.Errorf("an unanswered run's encoding has an answer: %s", data)
	}
}
