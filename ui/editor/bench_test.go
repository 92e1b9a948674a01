package editor_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/ui/uitest"
)

// bigFlow is a manual trigger followed by a chain of n-1 core.log nodes on
// a grid: n nodes, n-1 wires.
func bigFlow(t testing.TB, n int) string {
	nodes := make([]enginetest.Node, n)
	wires := make([]string, 0, n-1)
	for i := range nodes {
		nodes[i] = enginetest.Node{ID: fmt.Sprintf("n%d", i), Type: "core.log", Config: map[string]any{"message": "'step'"},
			X: float64((i % 20) * 220), Y: float64((i / 20) * 110)}
		if i == 0 {
			nodes[i].Type, nodes[i].Config = "core.manual", nil
		} else {
			wires = append(wires, fmt.Sprintf("n%d:out->n%d", i-1, i))
		}
	}
	return string(enginetest.FlowJSON(t, "big", nodes, wires...))
}

// TestBrowser300Nodes loads a 300-node flow and drags one node, then all
// of them, with 50 pointer moves each. It asserts that the drags complete
// and the positions land; the timings are logged, not asserted.
func TestBrowser300Nodes(t *testing.T) {
	e := newEnv(t)
	ctx := browser(t)
	e.importFlow(t, bigFlow(t, 300), false)
	start := time.Now()
	openEditor(t, ctx, e, "big")
	t.Logf("navigate to ready (fetch doc + specs, render, validate 300 nodes, runs): %v; first render + fit %.1f ms; ready at %.0f ms after navigation start",
		time.Since(start), uitest.JS[float64](t, ctx, ed+`.stats.renderMs`), uitest.JS[float64](t, ctx, ed+`.readyAt`))
	uitest.JS[bool](t, ctx, `(() => { document.getElementById('flowd-editor').flowd.canvas.reset(); return true; })()`)

	measure := func(name, testid string) {
		uitest.JS[bool](t, ctx, `(() => { const s = document.getElementById('flowd-editor').flowd.stats; s.moves = 0; s.moveMs = 0; return true; })()`)
		x, y := center(t, ctx, testid)
		t0 := time.Now()
		uitest.Drag(t, ctx, x, y, x+150, y+100, 50)
		wall := time.Since(t0)
		st := uitest.JS[map[string]float64](t, ctx, `document.getElementById('flowd-editor').flowd.stats`)
		t.Logf("%s: 50 pointer moves in %v wall (CDP round trips included); handlers %.0f moves, %.2f ms total, %.3f ms/move",
			name, wall, st["moves"], st["moveMs"], st["moveMs"]/max(st["moves"], 1))
	}
	measure("drag one node", "title-n2")
	if x := uitest.JS[float64](t, ctx, `document.getElementById('flowd-editor').flowd.model.node('n2').x`); x != 2*220+150 {
		t.Errorf("n2.x = %v after the drag", x)
	}
	uitest.JS[bool](t, ctx, `(() => { const ed = document.getElementById('flowd-editor').flowd; ed.canvas.select(ed.model.doc.nodes.map(n => n.id)); return true; })()`)
	measure("drag all 300 nodes", "title-n2")
	if x := uitest.JS[float64](t, ctx, `document.getElementById('flowd-editor').flowd.model.node('n299').x`); x != 19*220+150 {
		t.Errorf("n299.x = %v after dragging all", x)
	}
	t0 := time.Now()
	uitest.JS[bool](t, ctx, `(() => { const ed = document.getElementById('flowd-editor').flowd; ed.model.undo(); return true; })()`)
	t.Logf("undo (full re-render of 300 nodes): %v", time.Since(t0))
	if x := uitest.JS[float64](t, ctx, `document.getElementById('flowd-editor').flowd.model.node('n299').x`); x != 19*220 {
		t.Errorf("n299.x = %v after undo", x)
	}
}
