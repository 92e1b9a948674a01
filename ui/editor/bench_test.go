package editor_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/flowd/flowd/ui/uitest"
)

// bigFlow is a manual trigger followed by a chain of n-1 core.log nodes on
// a grid: n nodes, n-1 wires.
func bigFlow(n int) string {
	type node struct {
		ID     string            `json:"id"`
		Type   string            `json:"type"`
		Config map[string]string `json:"config,omitempty"`
		X      int               `json:"x"`
		Y      int               `json:"y"`
	}
	type wire struct {
		From string `json:"from"`
		Port string `json:"port"`
		To   string `json:"to"`
	}
	doc := struct {
		Schema string `json:"schema"`
		ID     string `json:"id"`
		Name   string `json:"name"`
		Nodes  []node `json:"nodes"`
		Wires  []wire `json:"wires"`
	}{Schema: "flowd/v1", ID: "big", Name: "300 nodes"}
	for i := range n {
		nd := node{ID: fmt.Sprintf("n%d", i), Type: "core.log", Config: map[string]string{"message": "'step'"}, X: (i % 20) * 220, Y: (i / 20) * 110}
		if i == 0 {
			nd.Type, nd.Config = "core.manual", nil
		}
		doc.Nodes = append(doc.Nodes, nd)
		if i > 0 {
			doc.Wires = append(doc.Wires, wire{fmt.Sprintf("n%d", i-1), "out", nd.ID})
		}
	}
	b, _ := json.Marshal(doc)
	return string(b)
}

// TestBrowser300Nodes loads a 300-node flow and drags one node, then all
// of them, with 50 pointer moves each. It asserts that the drags complete
// and the positions land; the timings are logged, not asserted.
func TestBrowser300Nodes(t *testing.T) {
	e := newEnv(t)
	ctx := browser(t)
	e.importFlow(t, bigFlow(300), false)
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
