package editor_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/ui/uitest"
)

// TestBrowserRealUI runs the editor inside the real admin UI: its login,
// layout, CSP and CSRF checks (browser() fails on any CSP violation).
func TestBrowserRealUI(t *testing.T) {
	env := uitest.Start(t) // first: its server closes after the browser
	ctx := browser(t)
	uitest.LoginBrowser(t, ctx, env)
	if err := chromedp.Do(ctx, chromedp.Navigate(env.URL+"/admin/flows/key-rollover/edit")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "editor ready", `document.getElementById('flowd-editor').dataset.ready === 'true'`)
	selectNode(t, ctx, "daily")
	setField(t, ctx, "input-spec", "*/5 * * * *")
	waitJS(t, ctx, "one change pending", q("pending")+`.textContent === '1'`)
	click(t, ctx, "deploy")
	waitJS(t, ctx, "deployed", q("status")+`.textContent.includes('Deployed version')`)

	// The protected-API example: two calls, both runs with their ports in
	// the debug panel, live badges on the nodes.
	if err := chromedp.Do(ctx, chromedp.Navigate(env.URL+"/admin/flows/protected-api/edit")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "editor ready", `document.getElementById('flowd-editor').dataset.ready === 'true'`)
	token, _, err := jose.NewSigner(env.FD.Keysets()).Sign(t.Context(), jose.SignRequest{Keyset: "main", Alg: "ES256",
		Typ: "at+jwt", Issuer: env.URL, Subject: "alice", Audience: []string{"flowd-api"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for auth, want := range map[string]int{"Bearer " + token: http.StatusOK, "": http.StatusUnauthorized} {
		if got := uitest.GetStatus(t, env.URL+"/api/hello", auth); got != want {
			t.Errorf("GET /api/hello with %q: status %d, want %d", auth[:min(len(auth), 6)], got, want)
		}
	}
	waitJS(t, ctx, "both runs", `!!document.querySelector('.fe-step[data-node="auth"][data-port="valid"]') && !!document.querySelector('.fe-step[data-node="auth"][data-port="invalid"]')`)
	waitJS(t, ctx, "badges", q("badge-ok")+`.textContent === 'out' && `+q("badge-denied")+`.textContent === 'out'`)
	selectNode(t, ctx, "denied")
	uitest.JS[bool](t, ctx, `(() => { const d = document.querySelector('.fe-run details'); d.open = true; return true; })()`)
	uitest.FullShot(t, ctx, "editor")
}
