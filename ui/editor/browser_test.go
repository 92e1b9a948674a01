package editor_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/flows/examples"
	"github.com/flowd/flowd/ui/uitest"
)

// browser returns a tab of the shared headless chromium (uitest.Browser:
// skipped without one, a failure on CI) at 1400x900. Script errors and
// console errors (CSP violations among them) fail the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	ctx := uitest.Browser(t, 90*time.Second)
	uitest.Viewport(t, ctx, 1400, 900)
	uitest.WatchErrors(t, ctx)
	return ctx
}

// waitJS waits until expr is truthy.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[any](expr, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('[data-testid=status]')||{}).textContent||''`))
		t.Fatalf("waiting for %s (%s): %v; status %q", what, expr, err, status)
	}
}

func q(testid string) string {
	return fmt.Sprintf(`document.querySelector('[data-testid="%s"]')`, testid)
}

// center returns the viewport center of the element with a data-testid.
func center(t *testing.T, ctx context.Context, testid string) (float64, float64) {
	t.Helper()
	v := uitest.JS[[]float64](t, ctx, fmt.Sprintf(`(() => { const e = %s; if (!e.closest('svg')) e.scrollIntoView({block: 'nearest'}); const r = e.getBoundingClientRect(); return [r.left + r.width/2, r.top + r.height/2]; })()`, q(testid)))
	return v[0], v[1]
}

func click(t *testing.T, ctx context.Context, testid string) {
	t.Helper()
	x, y := center(t, ctx, testid)
	uitest.Drag(t, ctx, x, y, x, y, 0)
}

// setField types a value into the selected node's form field (setting the
// value and firing input/change as typing would).
func setField(t *testing.T, ctx context.Context, testid, value string) {
	t.Helper()
	uitest.JS[bool](t, ctx, fmt.Sprintf(`(() => { const e = %s; e.focus(); e.value = %q;
	  e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true})); e.blur(); return true; })()`, q(testid), value))
}

func openEditor(t *testing.T, ctx context.Context, e *env, flow string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/admin/flows/"+flow+"/edit")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "editor ready", `document.getElementById('flowd-editor').dataset.ready === 'true'`)
}

// selectNode clicks a node's title and waits for its form.
func selectNode(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	click(t, ctx, "title-"+id)
	waitJS(t, ctx, "form of "+id, fmt.Sprintf(`!!document.querySelector('[data-testid=node-form][data-node="%s"]')`, id))
}

// TestBrowserBuildEndpoint is scenario A: build http.in -> jose.validate ->
// http.respond (valid) / http.respond 401 (invalid) by hand, deploy, call
// it with a valid and a tampered token, and see both runs in the debug panel.
func TestBrowserBuildEndpoint(t *testing.T) {
	e := newEnv(t)
	ctx := browser(t)
	if err := e.fd.Keysets().Create(t.Context(), "main", "ES256"); err != nil {
		t.Fatal(err)
	}
	e.importFlow(t, `{"schema":"flowd/v1","id":"api","name":"Protected API","nodes":[],"wires":[]}`, false)
	openEditor(t, ctx, e, "api")

	rect := uitest.JS[[]float64](t, ctx, `(() => { const r = `+q("canvas")+`.getBoundingClientRect(); return [r.left, r.top]; })()`)
	place := []struct {
		typ, id string
		x, y    float64
	}{
		{"http.in", "in", 140, 120},
		{"jose.validate", "validate", 390, 120},
		{"http.respond", "respond", 640, 80},
		{"http.respond", "respond_2", 640, 300},
	}
	for _, p := range place {
		px, py := center(t, ctx, "palette-"+p.typ)
		uitest.Drag(t, ctx, px, py, rect[0]+p.x, rect[1]+p.y, 8)
		waitJS(t, ctx, "node "+p.id, fmt.Sprintf(`!!%s`, q("node-"+p.id)))
	}
	// Configure each node in the side panel.
	selectNode(t, ctx, "in")
	setField(t, ctx, "input-path", "/api/hello")
	selectNode(t, ctx, "validate")
	setField(t, ctx, "input-keyset", "main")
	setField(t, ctx, "input-algorithms", "ES256")
	setField(t, ctx, "input-audience", "api")
	selectNode(t, ctx, "respond")
	setField(t, ctx, "input-body", `{"sub": msg.claims.sub}`)
	selectNode(t, ctx, "respond_2")
	setField(t, ctx, "input-status", "401")
	setField(t, ctx, "input-body", `{"error": msg.invalid.reason}`)

	// A wire into a trigger is refused while dragging.
	x0, y0 := center(t, ctx, "out-validate-valid")
	x1, y1 := center(t, ctx, "title-in")
	uitest.Drag(t, ctx, x0, y0, x1, y1, 6)
	waitJS(t, ctx, "refused wire", q("status")+`.textContent.includes('Wire refused')`)

	wires := [][3]string{{"in", "out", "validate"}, {"validate", "valid", "respond"}, {"validate", "invalid", "respond_2"}}
	for _, w := range wires {
		x0, y0 := center(t, ctx, "out-"+w[0]+"-"+w[1])
		x1, y1 := center(t, ctx, "in-"+w[2])
		uitest.Drag(t, ctx, x0, y0, x1, y1, 10)
		waitJS(t, ctx, "wire", fmt.Sprintf(`!!%s`, q("wire-"+w[0]+"-"+w[1]+"-"+w[2])))
	}
	// The same wire again is refused.
	x0, y0 = center(t, ctx, "out-in-out")
	x1, y1 = center(t, ctx, "in-validate")
	uitest.Drag(t, ctx, x0, y0, x1, y1, 4)
	waitJS(t, ctx, "duplicate refused", q("status")+`.textContent.includes('already wired')`)

	waitJS(t, ctx, "valid document", `document.getElementById('flowd-editor').dataset.valid === 'true'`)
	if got := uitest.JS[string](t, ctx, q("pending")+`.textContent`); got != "7" {
		t.Errorf("pending changes = %s, want 7 (4 nodes + 3 wires)", got)
	}
	click(t, ctx, "deploy")
	waitJS(t, ctx, "deployed", q("status")+`.textContent.includes('Deployed version 1')`)
	waitJS(t, ctx, "nothing pending", q("pending")+`.textContent === '0'`)

	token, _, err := jose.NewSigner(e.fd.Keysets()).Sign(t.Context(), jose.SignRequest{
		Keyset: "main", Alg: "ES256", Issuer: testIssuer, Subject: "alice", Audience: []string{"api"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tampered := token[:len(token)-4] + map[bool]string{true: "AAAA", false: "BBBB"}[!strings.HasSuffix(token, "AAAA")]
	for _, tc := range []struct {
		name, token string
		status      int
		body        string
	}{
		{"valid", token, 200, `"sub":"alice"`},
		{"tampered", tampered, 401, `bad_signature`},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+"/api/hello", nil)
		req.Header.Set("Authorization", "Bearer "+tc.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 512)
		n, _ := resp.Body.Read(b)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b[:n]), tc.body) {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, b[:n])
		}
	}
	waitJS(t, ctx, "two runs in the debug panel", `document.querySelectorAll('[data-testid^="run-"]').length === 2`)
	waitJS(t, ctx, "valid step", `!!document.querySelector('.fe-step[data-node="validate"][data-port="valid"]')`)
	waitJS(t, ctx, "invalid step", `!!document.querySelector('.fe-step[data-node="validate"][data-port="invalid"]')`)
	waitJS(t, ctx, "live badges", q("badge-respond")+`.textContent === 'out' && `+q("badge-validate")+`.textContent === 'invalid'`)

	// The try-it form calls the endpoint from the page.
	uitest.JS[bool](t, ctx, q("try")+`.open = true`)
	if got := uitest.JS[string](t, ctx, q("try-path")+`.value`); got != "/api/hello" {
		t.Errorf("try-it path prefilled with %q", got)
	}
	setField(t, ctx, "try-headers", "Authorization: Bearer "+token)
	click(t, ctx, "try-send")
	waitJS(t, ctx, "try-it answer", q("try-result")+`.dataset.status === '200' && `+q("try-result")+`.textContent.includes('alice')`)
	waitJS(t, ctx, "third run", `document.querySelectorAll('[data-testid^="run-"]').length === 3`)

	if e.csrfFailures != 0 {
		t.Errorf("%d requests without the CSRF token", e.csrfFailures)
	}
}

// TestBrowserTwoTabs is scenario B: the second tab's save is refused with
// a clear message and its changes stay in the tab.
func TestBrowserTwoTabs(t *testing.T) {
	e := newEnv(t)
	tab1 := browser(t)
	e.importFlow(t, manualFlow, false)
	openEditor(t, tab1, e, "m")
	tab2, cancel := chromedp.NewContext(tab1)
	defer cancel()
	uitest.WatchErrors(t, tab2)
	openEditor(t, tab2, e, "m")

	selectNode(t, tab1, "log")
	setField(t, tab1, "node-name", "from tab one")
	click(t, tab1, "save")
	waitJS(t, tab1, "saved", q("status")+`.textContent === 'Draft saved.'`)

	click(t, tab2, "palette-core.log")
	waitJS(t, tab2, "node added", `!!`+q("node-log_2"))
	click(t, tab2, "deploy")
	waitJS(t, tab2, "conflict banner", `!`+q("conflict")+`.hidden`)
	msg := uitest.JS[string](t, tab2, q("conflict-message")+`.textContent`)
	if !strings.Contains(msg, "changed in another tab") || !strings.Contains(msg, "kept in this tab") {
		t.Errorf("conflict message %q", msg)
	}
	if n := uitest.JS[int](t, tab2, `document.getElementById('flowd-editor').flowd.model.doc.nodes.length`); n != 3 {
		t.Errorf("tab two lost its node: %d nodes", n)
	}
	doc, _, _ := e.fd.App().Export(t.Context(), "m")
	if !strings.Contains(string(doc), "from tab one") || strings.Contains(string(doc), "log_2") {
		t.Errorf("stored draft: %s", doc)
	}

	// Reloading as the message says shows tab one's change, and offers to
	// put tab two's changes back on top of it.
	href := uitest.JS[string](t, tab2, q("conflict-reload")+`.href`)
	if err := chromedp.Do(tab2, chromedp.Navigate(href)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tab2, "reloaded", `document.getElementById('flowd-editor') && document.getElementById('flowd-editor').dataset.ready === 'true' && !`+q("restore")+`.hidden`)
	if got := uitest.JS[string](t, tab2, q("title-log")+`.textContent`); got != "from tab one" {
		t.Errorf("reloaded tab shows %q", got)
	}
	click(t, tab2, "restore-apply")
	waitJS(t, tab2, "restored", `!!`+q("node-log_2"))
	click(t, tab2, "save")
	waitJS(t, tab2, "saved", q("status")+`.textContent === 'Draft saved.'`)
	doc, _, _ = e.fd.App().Export(t.Context(), "m")
	if !strings.Contains(string(doc), "log_2") {
		t.Errorf("restored changes not saved: %s", doc)
	}
}

// TestBrowserCronSpec is scenario C: set a key-rollover flow's schedule to
// every minute in the side panel and deploy.
func TestBrowserCronSpec(t *testing.T) {
	e := newEnv(t)
	ctx := browser(t)
	doc, err := examples.FS.ReadFile("key-rollover.json")
	if err != nil {
		t.Fatal(err)
	}
	e.importFlow(t, string(doc), true)
	openEditor(t, ctx, e, "key-rollover")
	selectNode(t, ctx, "daily")
	if v := uitest.JS[string](t, ctx, q("input-spec")+`.value`); v != "0 3 * * *" {
		t.Fatalf("spec shown %q", v)
	}
	setField(t, ctx, "input-spec", "* * * * *")
	waitJS(t, ctx, "undeployed marker", q("node-daily")+`.classList.contains('fe-undeployed')`)
	if got := uitest.JS[string](t, ctx, q("pending")+`.textContent`); got != "1" {
		t.Errorf("pending = %s, want 1", got)
	}
	click(t, ctx, "deploy")
	waitJS(t, ctx, "deployed", q("status")+`.textContent.includes('Deployed version 2')`)
	info, err := e.fd.App().Info(t.Context(), "key-rollover")
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.fd.App().Version(t.Context(), "key-rollover", info.Deployed)
	if err != nil || !strings.Contains(string(v.Doc), `"spec": "* * * * *"`) {
		t.Fatalf("deployed v%d: %s %v", info.Deployed, v.Doc, err)
	}
}
