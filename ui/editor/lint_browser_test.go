package editor_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/ui/uitest"
)

// draft is the stored draft of a flow, decoded.
func draft(t *testing.T, e *env, id string) *engine.Flow {
	t.Helper()
	doc, _, err := e.fd.App().Export(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	f, err := engine.DecodeFlow(doc)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func key(t *testing.T, ctx context.Context, k string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.KeyEvent(k)); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserLintWarnings: a flow with a node no trigger reaches shows a
// warning marker on that node (not the error one), the warning with its
// check id and message at the top of the node's panel, deploys anyway,
// and "Silence here" removes the marker and saves lint_ignore.
func TestBrowserLintWarnings(t *testing.T) {
	e := newEnv(t)
	ctx := browser(t)
	e.importFlow(t, orphanFlow, false)
	uitest.Viewport(t, ctx, 1440, 900) // the README's screenshot size
	openEditor(t, ctx, e, "w")
	waitJS(t, ctx, "warning marker", q("node-orphan")+`.classList.contains('fe-warned')`)
	if uitest.JS[bool](t, ctx, q("node-orphan")+`.classList.contains('fe-invalid')`) {
		t.Error("a warning shows the error marker")
	}
	if uitest.JS[bool](t, ctx, q("node-log")+`.classList.contains('fe-warned')`) {
		t.Error("a reached node is marked")
	}
	if d := uitest.JS[string](t, ctx, `getComputedStyle(`+q("warning-orphan")+`).display`); d == "none" {
		t.Error("the warning marker is not drawn")
	}
	selectNode(t, ctx, "orphan")
	waitJS(t, ctx, "warning in the panel", `!!`+q("node-warning-flow.unreachable")+` && !`+q("node-warnings")+`.hidden`)
	text := uitest.JS[string](t, ctx, q("node-warning-flow.unreachable")+`.textContent`)
	if !strings.Contains(text, "flow.unreachable") || !strings.Contains(text, "no trigger reaches this node") {
		t.Errorf("panel warning = %q", text)
	}
	// Warnings above the fields, below the (empty) problems.
	if !uitest.JS[bool](t, ctx, `!!(`+q("node-warnings")+`.compareDocumentPosition(`+q("field-message")+`) & Node.DOCUMENT_POSITION_FOLLOWING)`) {
		t.Error("warnings are not at the top of the panel")
	}
	uitest.Shot(t, ctx, "editor-warnings")

	click(t, ctx, "deploy")
	waitJS(t, ctx, "deployed despite the warning", q("status")+`.textContent.includes('Deployed version 1')`)

	click(t, ctx, "silence-flow.unreachable")
	waitJS(t, ctx, "marker gone", `!`+q("node-orphan")+`.classList.contains('fe-warned')`)
	waitJS(t, ctx, "panel list empty", q("node-warnings")+`.hidden`)
	waitJS(t, ctx, "silenced list", `!`+q("node-silenced")+`.hidden && `+q("node-silenced")+`.textContent.includes('flow.unreachable')`)
	click(t, ctx, "save")
	waitJS(t, ctx, "saved", q("status")+`.textContent.includes('Draft saved')`)
	n := draft(t, e, "w").Node("orphan")
	if n == nil || strings.Join(n.LintIgnore, ",") != "flow.unreachable" {
		t.Fatalf("saved node: %+v", n)
	}
	// The server agrees after a fresh validation, and "Warn again" brings it back.
	waitJS(t, ctx, "still quiet after validation", `!`+q("node-orphan")+`.classList.contains('fe-warned')`)
	click(t, ctx, "unsilence-flow.unreachable")
	waitJS(t, ctx, "marker back", q("node-orphan")+`.classList.contains('fe-warned')`)
	waitJS(t, ctx, "warning back in the panel", `!!`+q("node-warning-flow.unreachable"))
}

// TestBrowserDisabledNodes: D disables the selected node (greyed, with a
// "disabled" tag), the panel's checkbox follows and toggles it back, and
// the saved document says "disabled": true.
func TestBrowserDisabledNodes(t *testing.T) {
	e := newEnv(t)
	ctx := browser(t)
	e.importFlow(t, manualFlow, true)
	uitest.Viewport(t, ctx, 1440, 900)
	openEditor(t, ctx, e, "m")
	selectNode(t, ctx, "log")
	key(t, ctx, "d")
	waitJS(t, ctx, "greyed", q("node-log")+`.classList.contains('fe-disabled') && !!`+q("disabled-log"))
	if !uitest.JS[bool](t, ctx, q("node-disabled")+`.checked`) {
		t.Error("the panel's checkbox does not show the node disabled")
	}
	if got := uitest.JS[string](t, ctx, q("pending")+`.textContent`); got != "1" {
		t.Errorf("pending = %s, want 1 (disabling changes what runs)", got)
	}
	if op := uitest.JS[string](t, ctx, `getComputedStyle(`+q("node-log")+`.querySelector('.fe-node-body')).fill`); op == "rgb(255, 255, 255)" {
		t.Error("a disabled node's body is not greyed")
	}
	click(t, ctx, "node-disabled")
	waitJS(t, ctx, "enabled by the checkbox", `!`+q("node-log")+`.classList.contains('fe-disabled')`)
	click(t, ctx, "node-disabled")
	waitJS(t, ctx, "disabled by the checkbox", q("node-log")+`.classList.contains('fe-disabled')`)
	uitest.Shot(t, ctx, "editor-disabled")
	click(t, ctx, "deploy")
	waitJS(t, ctx, "deployed", q("status")+`.textContent.includes('Deployed version 2')`)
	if n := draft(t, e, "m").Node("log"); n == nil || !n.Disabled {
		t.Fatalf("saved node: %+v", n)
	}
	// D on a disabled selection enables it again.
	click(t, ctx, "title-log")
	key(t, ctx, "d")
	waitJS(t, ctx, "enabled by D", `!`+q("node-log")+`.classList.contains('fe-disabled')`)
}

// callFlow calls a sub-flow whose answers leave by "ok" and "denied".
const callFlow = `{"schema":"flowd/v1","id":"caller","name":"Caller","nodes":[
 {"id":"go","type":"core.manual","x":0,"y":0},
 {"id":"call","type":"core.call","config":{"flow":"auth","outputs":["ok","denied"]},"x":220,"y":0},
 {"id":"yes","type":"core.log","config":{"message":"'ok'"},"x":520,"y":0},
 {"id":"no","type":"core.log","config":{"message":"'denied'"},"x":520,"y":200}],
 "wires":[{"from":"go","port":"out","to":"call"},{"from":"call","port":"ok","to":"yes"}]}`

// TestBrowserCallPorts: core.call's output ports come from its outputs
// field: they are drawn, can be wired by dragging, and a port added in
// the side panel appears at once.
func TestBrowserCallPorts(t *testing.T) {
	e := newEnv(t)
	ctx := browser(t)
	e.importFlow(t, callFlow, false)
	openEditor(t, ctx, e, "caller")
	waitJS(t, ctx, "ports", `!!`+q("out-call-ok")+` && !!`+q("out-call-denied")+` && !!`+q("out-call-error"))
	if !uitest.JS[bool](t, ctx, `!!`+q("wire-call-ok-yes")) {
		t.Error("the stored wire from ok is not drawn")
	}
	x0, y0 := center(t, ctx, "out-call-denied")
	x1, y1 := center(t, ctx, "in-no")
	uitest.Drag(t, ctx, x0, y0, x1, y1, 8)
	waitJS(t, ctx, "wire from denied", `!!`+q("wire-call-denied-no"))

	selectNode(t, ctx, "call")
	setField(t, ctx, "input-outputs", "ok\ndenied\nmaybe")
	waitJS(t, ctx, "new port", `!!`+q("out-call-maybe"))
	click(t, ctx, "save")
	waitJS(t, ctx, "saved", q("status")+`.textContent.includes('Draft saved')`)
	f := draft(t, e, "caller")
	var wired []string
	for _, w := range f.Wires {
		if w.From == "call" {
			wired = append(wired, fmt.Sprintf("%s->%s", w.Port, w.To))
		}
	}
	slices.Sort(wired)
	if strings.Join(wired, ",") != "denied->no,ok->yes" {
		t.Errorf("wires from call = %v", wired)
	}
}
