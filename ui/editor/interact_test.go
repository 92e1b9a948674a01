package editor_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/flowd/flowd/ui/uitest"
)

const ed = `document.getElementById('flowd-editor').flowd`

// TestBrowserInteractions covers rubber-band selection, delete, undo/redo
// from the keyboard, the help dialog, wheel zoom, fit, and validation
// errors shown next to a field with line and column.
func TestBrowserInteractions(t *testing.T) {
	e := newEnv(t)
	ctx := browser(t)
	e.importFlow(t, manualFlow, false)
	openEditor(t, ctx, e, "m")

	// Shift+drag on the background selects both nodes.
	r := uitest.JS[[]float64](t, ctx, `(() => { const r = `+q("canvas")+`.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })()`)
	shift := func(p *input.DispatchMouseEventParams) { uitest.Held(p); p.Modifiers = 8 }
	if err := chromedp.Do(ctx,
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, r[0]+4, r[1]+4),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, r[0]+4, r[1]+4, shift),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, (r[0]+r[2])/2, (r[1]+r[3])/2, shift),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, r[2]-4, r[3]-4, shift),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, r[2]-4, r[3]-4, shift),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "band selects 2", ed+`.canvas.selected.size === 2`)
	waitJS(t, ctx, "panel says 2", q("panel")+`.textContent.includes('2 nodes selected')`)

	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Delete)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "deleted", ed+`.model.doc.nodes.length === 0 && `+ed+`.model.doc.wires.length === 0`)
	if err := chromedp.Do(ctx, chromedp.KeyEvent("z", chromedp.KeyModifiers(chromedp.ModifierCtrl))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "undone", ed+`.model.doc.nodes.length === 2 && !!`+q("wire-go-out-log"))
	if err := chromedp.Do(ctx, chromedp.KeyEvent("z", chromedp.KeyModifiers(chromedp.ModifierCtrl, chromedp.ModifierShift))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "redone", ed+`.model.doc.nodes.length === 0`)
	click(t, ctx, "undo")
	waitJS(t, ctx, "undo button", ed+`.model.doc.nodes.length === 2`)

	// Wheel zoom around the pointer, then fit.
	before := uitest.JS[float64](t, ctx, ed+`.canvas.view.k`)
	if err := chromedp.Do(ctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseWheel, (r[0]+r[2])/2, (r[1]+r[3])/2,
		func(p *input.DispatchMouseEventParams) { p.DeltaX, p.DeltaY = 0.01, 200 })); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "zoomed out", ed+`.canvas.view.k < `+jsNum(before))
	click(t, ctx, "reset-zoom")
	waitJS(t, ctx, "reset", q("zoom")+`.textContent === '100%'`)

	// '?' opens the shortcuts dialog.
	if err := chromedp.Do(ctx, chromedp.KeyEvent("?")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "help open", q("help-dialog")+`.open`)
	click(t, ctx, "help-close")
	waitJS(t, ctx, "help closed", `!`+q("help-dialog")+`.open`)

	// Click a wire to select it, Delete removes only the wire.
	mid := uitest.JS[[]float64](t, ctx, `(() => { const p = `+q("wire-go-out-log")+`; const pt = p.getPointAtLength(p.getTotalLength() / 2).matrixTransform(p.getScreenCTM()); return [pt.x, pt.y]; })()`)
	uitest.Drag(t, ctx, mid[0], mid[1], mid[0], mid[1], 0)
	waitJS(t, ctx, "wire selected", ed+`.canvas.selectedWires.size === 1`)
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Delete)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "wire deleted", ed+`.model.doc.wires.length === 0 && `+ed+`.model.doc.nodes.length === 2`)

	// The palette filter.
	setField(t, ctx, "palette-filter", "jwt valid")
	waitJS(t, ctx, "filtered", `[...document.querySelectorAll('[data-testid="palette"] [data-type]')].filter(b => !b.hidden).map(b => b.dataset.type).join() === 'jose.validate'`)

	// A broken expression: the node is marked invalid and the field shows
	// the error with line and column.
	selectNode(t, ctx, "log")
	setField(t, ctx, "input-message", "'a' +")
	waitJS(t, ctx, "invalid marker", q("node-log")+`.classList.contains('fe-invalid')`)
	waitJS(t, ctx, "field error", q("errors-message")+`.textContent.includes('line 1, column')`)
	setField(t, ctx, "input-message", "'a' + 'b'")
	waitJS(t, ctx, "valid again", `!`+q("node-log")+`.classList.contains('fe-invalid')`)
}

func jsNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// TestBrowserPinch: two touch points spreading apart zoom the canvas in.
func TestBrowserPinch(t *testing.T) {
	e := newEnv(t)
	ctx := browser(t)
	e.importFlow(t, manualFlow, false)
	openEditor(t, ctx, e, "m")
	uitest.JS[bool](t, ctx, ed+`.canvas.reset() || true`)
	r := uitest.JS[[]float64](t, ctx, `(() => { const r = `+q("canvas")+`.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })()`)
	// A spot of empty canvas below the nodes.
	cx, cy := (r[0]+r[2])/2, r[3]-120
	id1, id2 := 1.0, 2.0
	pt := func(id *float64, x, y float64) *input.TouchPoint { return &input.TouchPoint{X: x, Y: y, ID: id} }
	touch := func(typ input.DispatchTouchEventType, pts ...*input.TouchPoint) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			if pts == nil {
				pts = []*input.TouchPoint{}
			}
			_, err := chromedp.Call(ctx, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: typ, TouchPoints: pts})
			return err
		})
	}
	acts := []chromedp.Action[chromedp.Void]{
		touch(input.DispatchTouchEventTypeTouchStart, pt(&id1, cx-20, cy)),
		touch(input.DispatchTouchEventTypeTouchStart, pt(&id1, cx-20, cy), pt(&id2, cx+20, cy)),
	}
	for i := 1; i <= 10; i++ {
		d := 20 + float64(i)*8
		acts = append(acts, touch(input.DispatchTouchEventTypeTouchMove, pt(&id1, cx-d, cy), pt(&id2, cx+d, cy)))
	}
	acts = append(acts, touch(input.DispatchTouchEventTypeTouchEnd))
	if err := chromedp.Do(ctx, acts...); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "pinched in", ed+`.canvas.view.k > 2`)
	if n := uitest.JS[int](t, ctx, ed+`.model.undoStack.length`); n != 0 {
		t.Errorf("a pinch changed the document: %d undo steps", n)
	}
}
