package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/ui/uitest"
)

// openEditor opens the editor of flow id and waits for the editor of flow id to have loaded.
func openEditor(t *testing.T, ctx context.Context, env *uitest.Env, id string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(env.URL+"/admin/flows/"+id+"/edit")); err != nil {
		t.Fatal(err)
	}
	uitest.WaitJS(t, ctx, "editor of "+id, `document.getElementById('flowd-editor').dataset.ready === 'true' || document.getElementById('flowd-editor').dataset.ready === 'error'`)
	if st := uitest.JS[string](t, ctx, `document.getElementById('flowd-editor').dataset.ready`); st != "true" {
		t.Fatalf("the editor of %s did not start: %s", id, uitest.JS[string](t, ctx, `document.querySelector('[data-testid="status"]').textContent`))
	}
}

// nodeBoxes returns every node's screen rectangle and the canvas's.
const nodeBoxesJS = `(() => {
  const c = document.querySelector('[data-testid="canvas"]').getBoundingClientRect();
  const nodes = [...document.querySelectorAll('.fe-node')].map((g) => {
    const r = g.querySelector('.fe-node-body').getBoundingClientRect();
    return {id: g.dataset.node, l: r.left, t: r.top, r: r.right, b: r.bottom};
  });
  return {canvas: {l: c.left, t: c.top, r: c.right, b: c.bottom}, nodes};
})()`

type box struct {
	ID     string  `json:"id"`
	Left   float64 `json:"l"`
	Top    float64 `json:"t"`
	Right  float64 `json:"r"`
	Bottom float64 `json:"b"`
}

type boxes struct {
	Canvas box   `json:"canvas"`
	Nodes  []box `json:"nodes"`
}

func (b box) inside(o box) bool {
	return b.Left >= o.Left-0.5 && b.Top >= o.Top-0.5 && b.Right <= o.Right+0.5 && b.Bottom <= o.Bottom+0.5
}

func (b box) overlaps(o box) bool {
	return b.Left < o.Right && o.Left < b.Right && b.Top < o.Bottom && o.Top < b.Bottom
}

// TestBrowserEditorLayout: at 1440x900 the editor fills the window, Fit
// shows every prebuilt flow with titles of at least 9 screen pixels that
// fit their nodes, the panes collapse and resize, a clicked block lands in
// free space on the visible canvas, and find centers a node.
func TestBrowserEditorLayout(t *testing.T) {
	env := uitest.Start(t)
	ctx := adminBrowser(t, env, 900)

	for _, id := range []string{"authorize", "token", "end-session", "introspect", "userinfo", "protected-api", "jwks", "key-rollover", "openid-configuration", "hello"} {
		t.Run("fit "+id, func(t *testing.T) {
			openEditor(t, ctx, env, id)
			var got boxes
			if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
				t.Fatal(err)
			}
			got = uitest.JS[boxes](t, ctx, nodeBoxesJS)
			if got.Canvas.Top > 100 || got.Canvas.Bottom > 900 || got.Canvas.Right-got.Canvas.Left < 850 {
				t.Errorf("canvas at %+v: want it below a slim header, inside 900 px, at least 850 px wide", got.Canvas)
			}
			if len(got.Nodes) == 0 {
				t.Fatal("no nodes drawn")
			}
			for _, n := range got.Nodes {
				if !n.inside(got.Canvas) {
					t.Errorf("node %s at %+v is not fully on the canvas %+v", n.ID, n, got.Canvas)
				}
			}
			// Every title: its on-screen font size and whether it fits its node.
			fonts := uitest.JS[[]map[string]any](t, ctx, `[...document.querySelectorAll('.fe-node')].map((g) => {
			  const far = document.querySelector('[data-testid="canvas"]').classList.contains('fe-far');
			  const t = g.querySelector(far ? '.fe-node-far' : '.fe-node-title');
			  const k = document.getElementById('flowd-editor').flowd.canvas.view.k;
			  const body = g.querySelector('.fe-node-body').getBoundingClientRect();
			  const r = t.getBoundingClientRect();
			  return {id: g.dataset.node, px: parseFloat(getComputedStyle(t).fontSize) * k, fits: r.left >= body.left && r.right <= body.right + 1};
			})`)
			for _, f := range fonts {
				if px, _ := f["px"].(float64); px < 9 {
					t.Errorf("title of %v is %.1f px on screen, want at least 9", f["id"], px)
				}
				if fits, _ := f["fits"].(bool); !fits {
					t.Errorf("title of %v overflows its node", f["id"])
				}
			}
			if id == "authorize" {
				uitest.Shot(t, ctx, "editor-authorize")
			}
		})
	}

	t.Run("one toolbar row at 1280x720", func(t *testing.T) {
		uitest.Viewport(t, ctx, 1280, 720)
		defer uitest.Viewport(t, ctx, 1440, 900)
		openEditor(t, ctx, env, "authorize")
		if h := uitest.JS[float64](t, ctx, `document.querySelector('.fe-toolbar').getBoundingClientRect().height`); h > 45 {
			t.Errorf("toolbar %v px high: it wraps", h)
		}
	})

	openEditor(t, ctx, env, "protected-api")
	canvasWidth := func() float64 {
		return uitest.JS[float64](t, ctx, `document.querySelector('[data-testid="canvas"]').getBoundingClientRect().width`)
	}
	t.Run("collapse and resize", func(t *testing.T) {
		w0 := canvasWidth()
		uitest.Click(t, ctx, `[data-testid="toggle-palette"]`)
		w1 := canvasWidth()
		if w1 < w0+120 {
			t.Errorf("hiding the palette: canvas %v -> %v px", w0, w1)
		}
		uitest.Click(t, ctx, `[data-testid="toggle-palette"]`)
		if w := canvasWidth(); math.Abs(w-w0) > 1 {
			t.Errorf("showing the palette again: canvas %v px, was %v", w, w0)
		}
		side := func() float64 {
			return uitest.JS[float64](t, ctx, `document.querySelector('[data-testid="side"]').getBoundingClientRect().width`)
		}
		s0 := side()
		x, y := uitest.Center(t, ctx, `[data-testid="side-resize"]`)
		uitest.Drag(t, ctx, x, y, x-150, y, 6)
		if s := side(); math.Abs(s-(s0+150)) > 2 {
			t.Errorf("dragging the splitter 150 px left: side %v -> %v px", s0, s)
		}
		if w := canvasWidth(); math.Abs(w-(w0-150)) > 2 {
			t.Errorf("canvas after the side grew: %v px, want %v", w, w0-150)
		}
		// Kept across a reload.
		openEditor(t, ctx, env, "protected-api")
		if s := side(); math.Abs(s-(s0+150)) > 2 {
			t.Errorf("side after reload %v px, want %v", s, s0+150)
		}
		x, y = uitest.Center(t, ctx, `[data-testid="side-resize"]`)
		uitest.Drag(t, ctx, x, y, x+150, y, 6)
	})

	t.Run("new blocks land in free space", func(t *testing.T) {
		for i := range 4 {
			uitest.Click(t, ctx, `[data-testid="palette-http.respond"]`)
			want := i + 6
			uitest.WaitJS(t, ctx, "node added", fmt.Sprintf(`document.querySelectorAll('.fe-node').length === %d`, want))
		}
		got := uitest.JS[boxes](t, ctx, nodeBoxesJS)
		for i, a := range got.Nodes {
			if !a.inside(got.Canvas) {
				t.Errorf("node %s at %+v is not fully on the canvas %+v", a.ID, a, got.Canvas)
			}
			for _, b := range got.Nodes[i+1:] {
				if a.overlaps(b) {
					t.Errorf("nodes %s and %s overlap", a.ID, b.ID)
				}
			}
		}
		// Dropped at the very edge: moved fully onto the canvas.
		x, y := uitest.Center(t, ctx, `[data-testid="palette-core.log"]`)
		c := got.Canvas
		uitest.Drag(t, ctx, x, y, c.Right-3, c.Bottom-3, 8)
		uitest.WaitJS(t, ctx, "log node", `!!document.querySelector('[data-testid="node-log"]')`)
		got = uitest.JS[boxes](t, ctx, nodeBoxesJS)
		for _, n := range got.Nodes {
			if n.ID == "log" && !n.inside(got.Canvas) {
				t.Errorf("dropped node at %+v is not fully on the canvas %+v", n, got.Canvas)
			}
		}
		uitest.Click(t, ctx, `[data-testid="save"]`) // so leaving the page asks nothing
		uitest.WaitJS(t, ctx, "saved", `document.querySelector('[data-testid="status"]').textContent === 'Draft saved.'`)
	})

	t.Run("find a node", func(t *testing.T) {
		openEditor(t, ctx, env, "authorize")
		uitest.Click(t, ctx, `[data-testid="canvas"]`)
		uitest.Keys(t, ctx, "f", chromedp.KeyModifiers(chromedp.ModifierCtrl))
		uitest.WaitJS(t, ctx, "find box focused", `document.activeElement === document.querySelector('[data-testid="find-node"]')`)
		uitest.Keys(t, ctx, "check password")
		uitest.WaitJS(t, ctx, "one match", `document.querySelector('[data-testid="find-count"]').textContent === '1 found'`)
		uitest.Keys(t, ctx, kb.Enter)
		uitest.WaitJS(t, ctx, "selected", `[...document.getElementById('flowd-editor').flowd.canvas.selected].join() === 'login'`)
		got := uitest.JS[boxes](t, ctx, nodeBoxesJS)
		cx, cy := (got.Canvas.Left+got.Canvas.Right)/2, (got.Canvas.Top+got.Canvas.Bottom)/2
		for _, n := range got.Nodes {
			if n.ID == "login" && (math.Abs((n.Left+n.Right)/2-cx) > 2 || math.Abs((n.Top+n.Bottom)/2-cy) > 2) {
				t.Errorf("found node at %+v, not centered at %v,%v", n, cx, cy)
			}
		}
		// By type: every http.respond.
		uitest.JS[bool](t, ctx, `(() => { const i = document.querySelector('[data-testid="find-node"]'); i.select(); return true; })()`)
		uitest.Keys(t, ctx, "http.respond")
		n := uitest.JS[int](t, ctx, `document.querySelectorAll('.fe-node.fe-match').length`)
		if want := uitest.JS[int](t, ctx, `document.getElementById('flowd-editor').flowd.model.doc.nodes.filter((n) => n.type === 'http.respond').length`); n != want || n < 3 {
			t.Errorf("find http.respond marks %d nodes, want %d", n, want)
		}
	})
}

// clickNode clicks a node's body on the canvas and waits for its form.
func clickNode(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	uitest.Click(t, ctx, `[data-testid="node-`+id+`"] .fe-node-body`)
	uitest.WaitJS(t, ctx, "form of "+id, `document.querySelector('[data-testid=node-form][data-node="`+id+`"]')`)
}

// TestBrowserSidePanel: the keyset of jose.validate is a picker of the
// stored keysets with the current one selected, marked required while the
// key source is a keyset; a new header value is typed as text and stored
// as a string literal; the node's problems are listed at the top.
func TestBrowserSidePanel(t *testing.T) {
	env := uitest.Start(t)
	if err := env.FD.Keysets().Create(t.Context(), "partner", "ES256"); err != nil {
		t.Fatal(err)
	}
	ctx := adminBrowser(t, env, 900)
	openEditor(t, ctx, env, "protected-api")
	model := `document.getElementById('flowd-editor').flowd.model`

	t.Run("pick a keyset", func(t *testing.T) {
		clickNode(t, ctx, "auth")
		pick := `document.querySelector('[data-testid="pick-keyset"]')`
		if got := uitest.JS[string](t, ctx, pick+`.value`); got != "main" {
			t.Errorf("preselected %q, want main", got)
		}
		opts := uitest.JS[[]string](t, ctx, `[...`+pick+`.options].map((o) => o.textContent.trim())`)
		if !slices.Contains(opts, "main") || !slices.Contains(opts, "partner") {
			t.Errorf("picker offers %v", opts)
		}
		if req := uitest.JS[string](t, ctx, `document.querySelector('[data-testid="field-keyset"]').dataset.required`); req != "true" {
			t.Errorf("keyset required mark %q with source keyset", req)
		}
		uitest.JS[bool](t, ctx, pick+`.focus() || true`)
		for range 3 {
			uitest.Keys(t, ctx, kb.ArrowDown)
			if uitest.JS[string](t, ctx, pick+`.value`) == "partner" {
				break
			}
		}
		uitest.WaitJS(t, ctx, "keyset partner in the document", model+`.node('auth').config.keyset === 'partner'`)
		// Key source: a JWKS URL. The keyset is no longer required.
		uitest.JS[bool](t, ctx, `document.querySelector('[data-testid="input-source"]').focus() || true`)
		for range 3 {
			uitest.Keys(t, ctx, kb.ArrowDown)
			if uitest.JS[string](t, ctx, `document.querySelector('[data-testid="input-source"]').value`) == "remote" {
				break
			}
		}
		uitest.WaitJS(t, ctx, "source changed", model+`.node('auth').config.source === 'remote'`)
		if req := uitest.JS[string](t, ctx, `document.querySelector('[data-testid="field-keyset"]').dataset.required`); req != "false" {
			t.Errorf("keyset required mark %q with source remote", req)
		}
		// A JWKS URL source without its URL: the problem is listed at the top.
		uitest.WaitJS(t, ctx, "problems at the top", `!document.querySelector('[data-testid="node-problems"]').hidden`)
		top := uitest.JS[string](t, ctx, `document.querySelector('[data-testid="node-problems"]').textContent`)
		if !strings.Contains(top, "problem") {
			t.Errorf("problems at the top: %q", top)
		}
		uitest.JS[bool](t, ctx, `(document.querySelector('[data-testid="panel"]').scrollTop = 0, true)`)
		uitest.Shot(t, ctx, "editor-side-panel")
	})

	t.Run("header typed as text", func(t *testing.T) {
		clickNode(t, ctx, "denied")
		if mode := uitest.JS[string](t, ctx, `document.querySelector('[data-testid="pairs-headers"] [data-pair]').dataset.mode`); mode != "expr" {
			t.Errorf("an expression header shows as %q", mode)
		}
		clickNode(t, ctx, "ok")
		uitest.Click(t, ctx, `[data-testid="add-headers"]`)
		uitest.WaitJS(t, ctx, "new row focused", `document.activeElement && document.activeElement.matches('[data-pair-name]')`)
		uitest.Keys(t, ctx, "Cache-Control")
		uitest.Keys(t, ctx, kb.Tab) // to the text/expression toggle
		uitest.Keys(t, ctx, kb.Tab)
		uitest.Keys(t, ctx, "no-store")
		uitest.Keys(t, ctx, kb.Tab)
		uitest.WaitJS(t, ctx, "header stored", model+`.node('ok').config && `+model+`.node('ok').config.headers && `+model+`.node('ok').config.headers['Cache-Control'] === '"no-store"'`)
		// Switched to an expression, the same value shows quoted.
		uitest.Click(t, ctx, `[data-testid="pairs-headers"] [data-toggle-mode]`)
		if v := uitest.JS[string](t, ctx, `document.querySelector('[data-testid="pairs-headers"] [data-pair-expr]').value`); v != `"no-store"` {
			t.Errorf("as an expression: %q", v)
		}
	})
}

// aliceToken is an access token for the prebuilt protected API, signed
// with keyset main.
func aliceToken(t *testing.T, env *uitest.Env) string {
	t.Helper()
	tok, _, err := jose.NewSigner(env.FD.Keysets()).Sign(t.Context(), jose.SignRequest{Keyset: "main", Alg: "ES256",
		Typ: "at+jwt", Issuer: env.URL, Subject: "alice", Audience: []string{"flowd-api"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestBrowserRuns: each run names its trigger and the HTTP status it
// answered; traces are JSON trees with redacted values marked; "Run again
// with this input" replays a recorded request.
func TestBrowserRuns(t *testing.T) {
	env := uitest.Start(t)
	tok := aliceToken(t, env)
	uitest.GetStatus(t, env.URL+"/api/hello?lang=en", "Bearer "+tok)
	uitest.GetStatus(t, env.URL+"/api/hello?lang=en", "")
	ctx := adminBrowser(t, env, 900)
	openEditor(t, ctx, env, "protected-api")
	uitest.WaitJS(t, ctx, "two runs", `document.querySelectorAll('.fe-run').length === 2`)
	runs := `[...document.querySelectorAll('.fe-run')]`
	got := uitest.JS[[]string](t, ctx, runs+`.map((r) => r.querySelector('[data-testid="outcome"]').textContent + ' ' + r.querySelector('[data-testid="trigger-name"]').textContent)`)
	if want := []string{"401 GET /api/hello", "200 GET /api/hello"}; !slices.Equal(got, want) {
		t.Errorf("runs read %q, want %q", got, want)
	}
	// The 200 run: open it; its token is marked redacted in the tree.
	uitest.Click(t, ctx, `.fe-run:nth-child(2) summary`)
	uitest.WaitJS(t, ctx, "redacted marked", `document.querySelector('.fe-run:nth-child(2) [data-testid="redacted"]')`)
	if n := uitest.JS[int](t, ctx, `document.querySelectorAll('.fe-run:nth-child(2) .fe-step-msg details').length`); n == 0 {
		t.Error("the trace is not a JSON tree")
	}
	uitest.Shot(t, ctx, "editor-runs")
	// Run the 401 request again: sent at once, a third run, also a 401.
	uitest.Click(t, ctx, `.fe-run:nth-child(1) summary`)
	uitest.Click(t, ctx, `.fe-run:nth-child(1) [data-testid="again"]`)
	uitest.WaitJS(t, ctx, "third run", `document.querySelectorAll('.fe-run').length === 3`)
	if s := uitest.JS[string](t, ctx, `document.querySelector('[data-testid="try-result"]').dataset.status`); s != "401" {
		t.Errorf("replayed request answered %q", s)
	}
	if p := uitest.JS[string](t, ctx, `document.querySelector('[data-testid="try-path"]').value`); p != "/api/hello?lang=en" {
		t.Errorf("replayed path %q", p)
	}
	// The 200 run had an Authorization header, redacted: the form asks for it.
	uitest.Click(t, ctx, `.fe-run:nth-child(3) summary`)
	uitest.Click(t, ctx, `.fe-run:nth-child(3) [data-testid="again"]`)
	uitest.WaitJS(t, ctx, "asks for the token", `document.querySelector('[data-testid="try-result"]').textContent.includes('redacted')`)
	uitest.JS[bool](t, ctx, `(() => { const h = document.querySelector('[data-testid="try-headers"]'); h.focus(); h.setSelectionRange(h.value.length, h.value.length); return true; })()`)
	uitest.Keys(t, ctx, "Bearer "+tok)
	uitest.Click(t, ctx, `[data-testid="try-send"]`)
	uitest.WaitJS(t, ctx, "200 again", `document.querySelector('[data-testid="try-result"]').dataset.status === '200'`)
	uitest.WaitJS(t, ctx, "fourth run", `document.querySelectorAll('.fe-run').length === 4`)
}

// TestBrowserProtectedEndpointStarter: from the "protected endpoint"
// starter, a person creates a flow with their own id, name and route,
// deploys it in the editor, and the route answers 401 without a token
// and 200 with one.
func TestBrowserProtectedEndpointStarter(t *testing.T) {
	env := uitest.Start(t)
	ctx := adminBrowser(t, env, 900)
	card := `[data-template="protected-endpoint"] `
	if err := chromedp.Do(ctx, chromedp.Navigate(env.URL+"/admin/templates"), chromedp.WaitVisible(card+`[data-testid="use-template"]`)); err != nil {
		t.Fatal(err)
	}
	uitest.Shot(t, ctx, "templates")
	uitest.Click(t, ctx, card+`[data-testid="use-template"]`)
	set := func(testid, value string) {
		t.Helper()
		uitest.Click(t, ctx, card+`[data-testid="`+testid+`"]`)
		uitest.JS[bool](t, ctx, `document.activeElement.select() || true`)
		uitest.Keys(t, ctx, value)
	}
	set("template-id", "orders-api")
	set("template-name", "Orders API")
	set("template-path-0", "/api/orders")
	if err := chromedp.Do(ctx, uitest.ClickJS(card+`[data-testid="template-create"]`)); err != nil {
		t.Fatal(err)
	}
	uitest.WaitJS(t, ctx, "the editor of orders-api", `location.pathname === '/admin/flows/orders-api/edit' && document.getElementById('flowd-editor') && document.getElementById('flowd-editor').dataset.ready === 'true'`)
	if name := uitest.JS[string](t, ctx, `document.querySelector('[data-testid="flow-name"]').textContent`); name != "Orders API" {
		t.Errorf("flow name %q", name)
	}
	uitest.Click(t, ctx, `[data-testid="deploy"]`)
	uitest.WaitJS(t, ctx, "deployed", `document.querySelector('[data-testid="status"]').textContent.startsWith('Deployed version')`)
	if st := uitest.GetStatus(t, env.URL+"/api/orders", ""); st != http.StatusUnauthorized {
		t.Errorf("without a token: %d", st)
	}
	if st := uitest.GetStatus(t, env.URL+"/api/orders", "Bearer "+aliceToken(t, env)); st != http.StatusOK {
		t.Errorf("with a token: %d", st)
	}
}

// TestBrowserCopyPaste: three nodes copied in one flow's editor (shift
// clicks, Ctrl+C) are pasted into another flow's (Ctrl+V) with the wires
// between them, under ids free there, as one undo step; Ctrl+D duplicates.
func TestBrowserCopyPaste(t *testing.T) {
	env := uitest.Start(t)
	ctx := adminBrowser(t, env, 900)
	model := `document.getElementById('flowd-editor').flowd.model`
	openEditor(t, ctx, env, "protected-api")
	clickNode(t, ctx, "auth")
	uitest.ClickWith(t, ctx, `[data-testid="node-hello"] .fe-node-body`, chromedp.ModifierShift)
	uitest.ClickWith(t, ctx, `[data-testid="node-ok"] .fe-node-body`, chromedp.ModifierShift)
	uitest.WaitJS(t, ctx, "three selected", `document.getElementById('flowd-editor').flowd.canvas.selected.size === 3`)
	uitest.Keys(t, ctx, "c", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	uitest.WaitJS(t, ctx, "copied", `localStorage.getItem('flowd-editor:clipboard')`)
	var clip struct {
		Schema string           `json:"schema"`
		Nodes  []map[string]any `json:"nodes"`
		Wires  []map[string]any `json:"wires"`
	}
	if err := json.Unmarshal([]byte(uitest.JS[string](t, ctx, `localStorage.getItem('flowd-editor:clipboard')`)), &clip); err != nil {
		t.Fatal(err)
	}
	if clip.Schema != "flowd/v1" || len(clip.Nodes) != 3 || len(clip.Wires) != 2 { // auth -valid-> hello -out-> ok
		t.Fatalf("clipboard: %+v", clip)
	}

	openEditor(t, ctx, env, "hello")
	before := uitest.JS[int](t, ctx, model+`.doc.nodes.length`)
	uitest.Click(t, ctx, `[data-testid="canvas"]`)
	uitest.Keys(t, ctx, "v", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	uitest.WaitJS(t, ctx, "pasted", model+`.doc.nodes.length === `+strconv.Itoa(before+3))
	// Pasted again: the same nodes under new ids (auth_2, ...), rewired.
	uitest.Keys(t, ctx, "v", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	uitest.WaitJS(t, ctx, "pasted twice", model+`.doc.nodes.length === `+strconv.Itoa(before+6))
	pasted := uitest.JS[[]string](t, ctx, `[...document.getElementById('flowd-editor').flowd.canvas.selected].sort()`)
	if want := []string{"auth_2", "hello_2", "ok_2"}; !slices.Equal(pasted, want) {
		t.Errorf("second paste ids %v, want %v", pasted, want)
	}
	wires := uitest.JS[[]string](t, ctx, model+`.doc.wires.map((w) => w.from + '/' + w.port + '/' + w.to)`)
	for _, w := range []string{"auth/valid/hello", "hello/out/ok"} {
		parts := strings.Split(w, "/")
		found := false
		for _, got := range wires {
			g := strings.Split(got, "/")
			if g[1] == parts[1] && slices.Contains(pasted, g[0]) && slices.Contains(pasted, g[2]) &&
				strings.HasPrefix(g[0], parts[0]) && strings.HasPrefix(g[2], parts[2]) {
				found = true
			}
		}
		if !found {
			t.Errorf("wire %s not pasted among %v: %v", w, pasted, wires)
		}
	}
	if cfg := uitest.JS[string](t, ctx, `JSON.stringify(`+model+`.doc.nodes.find((n) => n.type === 'jose.validate').config.audience)`); cfg != `["flowd-api"]` {
		t.Errorf("pasted config audience %s", cfg)
	}
	got := uitest.JS[boxes](t, ctx, nodeBoxesJS)
	for _, n := range got.Nodes {
		if slices.Contains(pasted, n.ID) && !n.inside(got.Canvas) {
			t.Errorf("pasted node %s at %+v is off the canvas %+v", n.ID, n, got.Canvas)
		}
	}
	// One undo step takes a paste out.
	uitest.Keys(t, ctx, "z", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	uitest.WaitJS(t, ctx, "paste undone", model+`.doc.nodes.length === `+strconv.Itoa(before+3))
	// Duplicate: Ctrl+D copies the selection with its inner wires.
	clickNode(t, ctx, "in")
	uitest.Keys(t, ctx, "d", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	uitest.WaitJS(t, ctx, "duplicated", model+`.doc.nodes.length === `+strconv.Itoa(before+4))
	uitest.Click(t, ctx, `[data-testid="save"]`)
	uitest.WaitJS(t, ctx, "saved", `document.querySelector('[data-testid="status"]').textContent === 'Draft saved.'`)
}

// TestBrowserNotes: a comment note typed on the canvas (N, keyboard) and
// dragged into place is saved in the flow document; the exported file
// imported as a copy exports byte for byte the same (but for the id), and
// the copy's editor shows the note.
func TestBrowserNotes(t *testing.T) {
	env := uitest.Start(t)
	ctx := adminBrowser(t, env, 900)
	openEditor(t, ctx, env, "hello")
	model := `document.getElementById('flowd-editor').flowd.model`
	uitest.Click(t, ctx, `[data-testid="canvas"]`)
	uitest.Keys(t, ctx, "n")
	uitest.WaitJS(t, ctx, "note text focused", `document.activeElement === document.querySelector('[data-testid="note-text"]')`)
	uitest.Keys(t, ctx, "Greets by name.")
	uitest.Keys(t, ctx, kb.Enter)
	uitest.Keys(t, ctx, "Try /hello?name=ada — 令牌")
	if got := uitest.JS[string](t, ctx, model+`.note("note").text`); got != "Greets by name.\nTry /hello?name=ada — 令牌" {
		t.Fatalf("note text %q", got)
	}
	x0 := uitest.JS[float64](t, ctx, model+`.note('note').x`)
	x, y := uitest.Center(t, ctx, `[data-testid="note-note"] .fe-note-body`)
	uitest.Drag(t, ctx, x, y, x+60, y+40, 5)
	k := uitest.JS[float64](t, ctx, `document.getElementById('flowd-editor').flowd.canvas.view.k`)
	if moved := uitest.JS[float64](t, ctx, model+`.note('note').x`) - x0; math.Abs(moved-60/k) > 2 {
		t.Errorf("note moved %v world px, want %v", moved, 60/k)
	}
	uitest.Keys(t, ctx, "s", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	uitest.WaitJS(t, ctx, "saved", `document.querySelector('[data-testid="status"]').textContent === 'Draft saved.'`)
	uitest.Shot(t, ctx, "editor-note")

	if err := chromedp.Do(ctx, chromedp.Navigate(env.URL+"/admin/flows"), chromedp.WaitVisible(css(tid("flows")))); err != nil {
		t.Fatal(err)
	}
	exported, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`fetch(document.querySelector('[data-flow="hello"] [data-testid="flow-export"]').href).then(r => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(exported, `"notes": [`) || !strings.Contains(exported, `"text": "Greets by name.\nTry /hello?name=ada — 令牌"`) {
		t.Fatalf("export without the note:\n%s", exported)
	}
	copyDoc := uploadImport(t, ctx, env, exported, "hello-copy")
	if got := strings.Replace(copyDoc, `"id": "hello-copy"`, `"id": "hello"`, 1); got != exported {
		t.Errorf("import(export) differs:\n%s\n---\n%s", got, exported)
	}
	openEditor(t, ctx, env, "hello-copy")
	if text := uitest.JS[string](t, ctx, `document.querySelector('[data-testid="note-note"]').textContent`); !strings.Contains(text, "Greets by name.") {
		t.Errorf("the copy's note shows %q", text)
	}
}

// TestBrowserPasteHostile: clipboard text that is not a selection of
// nodes pastes nothing or only its well-formed nodes, with ids the engine
// accepts, and the flow still saves.
func TestBrowserPasteHostile(t *testing.T) {
	env := uitest.Start(t)
	ctx := adminBrowser(t, env, 900)
	openEditor(t, ctx, env, "hello")
	model := `document.getElementById('flowd-editor').flowd.model`
	before := uitest.JS[int](t, ctx, model+`.doc.nodes.length`)
	for _, tc := range []struct {
		name, clip string
		added      int
	}{
		{"not JSON", `hello there`, 0},
		{"no nodes", `{"schema": "flowd/v1", "nodes": []}`, 0},
		{"nodes not objects", `{"nodes": [1, "x", null]}`, 0},
		{"bad ids, odd positions, stray wires", `{"nodes": [{"id": "a b", "type": "core.log", "x": "far", "y": 1e400}, ` +
			`{"id": "../x", "type": "core.log", "config": [1]}, {"id": "ok", "type": "core.log"}, {"type": "core.log"}], ` +
			`"wires": [{"from": "ok", "port": "out", "to": "nowhere"}, {"from": "a b", "port": 7, "to": "ok"}]}`, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Both clipboards hold the text: localStorage, and the system
			// one (copied from a text box with the keyboard), which another
			// test's copy may have filled.
			uitest.JS[bool](t, ctx, `(() => { localStorage.setItem('flowd-editor:clipboard', `+jsString(tc.clip)+`);
			  const ta = document.createElement('textarea'); ta.id = 'clip-src'; ta.value = `+jsString(tc.clip)+`;
			  document.body.append(ta); ta.focus(); ta.select(); return true; })()`)
			uitest.Keys(t, ctx, "c", chromedp.KeyModifiers(chromedp.ModifierCtrl))
			uitest.JS[bool](t, ctx, `(document.getElementById('clip-src').remove(), true)`)
			uitest.Click(t, ctx, `[data-testid="canvas"]`)
			uitest.Keys(t, ctx, "v", chromedp.KeyModifiers(chromedp.ModifierCtrl))
			if tc.added == 0 {
				uitest.WaitJS(t, ctx, "nothing to paste", `document.querySelector('[data-testid="status"]').textContent.startsWith('Nothing to paste')`)
			} else {
				uitest.WaitJS(t, ctx, "pasted", model+`.doc.nodes.length === `+strconv.Itoa(before+tc.added))
				before += tc.added
			}
			if n := uitest.JS[int](t, ctx, model+`.doc.nodes.length`); n != before {
				t.Errorf("%d nodes, want %d", n, before)
			}
		})
	}
	ids := uitest.JS[[]string](t, ctx, model+`.doc.nodes.map((n) => n.id)`)
	for _, id := range ids {
		if strings.ContainsAny(id, " /") {
			t.Errorf("pasted id %q", id)
		}
	}
	if n := uitest.JS[int](t, ctx, model+`.doc.wires.length`); n != 2 {
		t.Errorf("%d wires: stray pasted wires were kept", n)
	}
	uitest.Click(t, ctx, `[data-testid="save"]`)
	uitest.WaitJS(t, ctx, "saved", `document.querySelector('[data-testid="status"]').textContent === 'Draft saved.'`)
}
