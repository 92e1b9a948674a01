package ui_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/flowd/flowd/ui/uitest"
)

// Browser tests: a real flowd behind httptest, driven by headless
// chromium. They wait on page state (WaitVisible, Poll), never sleep.

type css = chromedp.CSS

const browserTimeout = 30 * time.Second // a safety limit; each test takes 2-8 s

// adminBrowser is a browser window 1440 wide and height high that fails
// the test on a console error or CSP violation, signed in to env's admin
// pages.
func adminBrowser(t *testing.T, env *uitest.Env, height int64) context.Context {
	t.Helper()
	ctx := uitest.Browser(t, 2*browserTimeout)
	uitest.Viewport(t, ctx, 1440, height)
	uitest.WatchErrors(t, ctx)
	uitest.LoginBrowser(t, ctx, env)
	return ctx
}

func count(t *testing.T, ctx context.Context, selector string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(selector)+`).length`))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// acceptConfirms makes window.confirm answer yes on the current page
// (delete, revoke and rotate ask first).
func acceptConfirms() chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`))
}

func TestBrowserTemplateDeploySchedules(t *testing.T) {
	env := uitest.Start(t)
	ctx := uitest.Browser(t, browserTimeout)
	// A browser in Tokyo: the schedules page adds its zone to each UTC time.
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Tokyo"}); err != nil {
		t.Fatal(err)
	}
	uitest.LoginBrowser(t, ctx, env)
	err := chromedp.Do(ctx,
		chromedp.Navigate(env.URL+"/admin/templates"),
		chromedp.Click(css(`[data-template="key-rollover"] `+tid("use-template"))),
		chromedp.WaitVisible(css(`[data-template="key-rollover"] `+tid("template-warning"))),
		acceptConfirms(), // key-rollover already rotates keyset main: the form asks first
		uitest.ClickJS(`[data-template="key-rollover"] `+tid("template-create")),
		chromedp.WaitReady(css(tid("editor"))), // the editor's page (ui/editor)
	)
	if err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.HasSuffix(loc, "/admin/flows/key-rollover-2/edit") {
		t.Fatalf("after use template: %q %v", loc, err)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(env.URL+"/admin/flows"),
		chromedp.Click(css(`[data-flow="key-rollover-2"] `+tid("flow-deploy"))),
		chromedp.WaitVisible(css(tid("flash"))),
		chromedp.Navigate(env.URL+"/admin/schedules"),
		chromedp.WaitVisible(css(`[data-flow="key-rollover-2"][data-node="daily"] `+tid("next-run"))),
	)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, ctx, `[data-flow="key-rollover-2"] [data-testid="next-run"]`); n != 5 {
		t.Errorf("next runs of key-rollover-2: %d", n)
	}
	// localtime.js filled in the browser's zone next to each UTC time.
	local, err := chromedp.Run(ctx, chromedp.Text(css(`[data-flow="key-rollover-2"] `+tid("local-time"))))
	if err != nil || !strings.HasPrefix(local, "·") || !strings.Contains(local, "GMT+9") || !strings.Contains(local, "12:00") {
		t.Errorf("local time %q %v", local, err)
	}
	// The preview follows the spec as it is typed.
	err = chromedp.Do(ctx,
		chromedp.SendKeys(css(tid("preview-spec")), "*/10 * * * *"),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('[data-testid="preview-run"]').length === 5`,
			chromedp.WithPollingTimeout(5*time.Second)),
	)
	if err != nil {
		t.Fatalf("preview: %v", err)
	}
}

func TestBrowserExportImport(t *testing.T) {
	env := uitest.Start(t)
	ctx := uitest.Browser(t, browserTimeout)
	uitest.LoginBrowser(t, ctx, env)
	// The export link's download, fetched as the browser would.
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`fetch(document.querySelector('[data-flow="key-rollover"] [data-testid="flow-export"]').href).then(r => r.text())`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	_, want := env.API(t, "GET", "/flows/key-rollover", nil)
	if got != string(want) {
		t.Fatalf("downloaded export differs from the API export:\n%s\n---\n%s", got, want)
	}
	copyDoc := uploadImport(t, ctx, env, got, "key-rollover-copy")
	if strings.Replace(copyDoc, `"id": "key-rollover-copy"`, `"id": "key-rollover"`, 1) != got {
		t.Errorf("imported copy differs:\n%s", copyDoc)
	}
}

func TestBrowserRotateKeyset(t *testing.T) {
	env := uitest.Start(t)
	ctx := uitest.Browser(t, browserTimeout)
	uitest.LoginBrowser(t, ctx, env)
	ks := `[data-keyset="main"] `
	err := chromedp.Do(ctx,
		chromedp.Navigate(env.URL+"/admin/keysets"),
		chromedp.WaitVisible(css(ks+tid("keyset-timeline"))),
	)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]int{}
	for _, st := range []string{"next", "active", "retired"} {
		before[st] = count(t, ctx, ks+`[data-testid="key-row"][data-state="`+st+`"]`)
	}
	if before["next"] != 2 || before["active"] != 2 || before["retired"] != 0 {
		t.Fatalf("before rotation: %v", before)
	}
	err = chromedp.Do(ctx,
		acceptConfirms(),
		chromedp.Click(css(ks+tid("rotate-now"))),
		chromedp.WaitVisible(css(tid("flash"))),
		chromedp.WaitVisible(css(ks+`[data-testid="seg-retired"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	for st, want := range map[string]int{"next": 2, "active": 2, "retired": 2} {
		if n := count(t, ctx, ks+`[data-testid="key-row"][data-state="`+st+`"]`); n != want {
			t.Errorf("%s keys: %d, want %d", st, n, want)
		}
		if n := count(t, ctx, ks+`[data-testid="keyset-timeline"] [data-testid="seg-`+st+`"]`); n < want {
			t.Errorf("%s segments: %d, want at least %d", st, n, want)
		}
	}
	if n := count(t, ctx, ks+tid("now-line")); n != 1 {
		t.Errorf("now-line: %d", n)
	}
	png, err := chromedp.Run(ctx, chromedp.Screenshot(css(`[data-keyset="main"]`)))
	if err != nil {
		t.Fatal(err)
	}
	uitest.Screenshot(t, "keyset-timeline", png)
}

func TestBrowserTokenDebugger(t *testing.T) {
	env := uitest.Start(t)
	ctx := uitest.Browser(t, browserTimeout)
	uitest.LoginBrowser(t, ctx, env)
	now := time.Now().Unix()
	expired := signToken(t, env, map[string]any{"exp": now - 3600, "iat": now - 7200, "nbf": now - 7200, "sub": "ada"})
	good := signToken(t, env, map[string]any{"exp": now + 600, "iat": now, "sub": "ada"})
	tampered := good[:len(good)-4] + "AAAA"
	if tampered == good {
		tampered = good[:len(good)-4] + "BBBB"
	}
	for _, tt := range []struct{ name, token, reason string }{
		{"expired", expired, "token_expired"},
		{"tampered", tampered, "bad_signature"},
	} {
		err := chromedp.Do(ctx,
			chromedp.Navigate(env.URL+"/admin/debugger"),
			chromedp.WaitVisible(css(tid("debugger-token"))),
			chromedp.SetValue(css(tid("debugger-token")), tt.token),
			chromedp.SetValue(css(tid("debugger-audience")), "flowd-api"),
			uitest.ClickJS(tid("debugger-submit")), // it replaces the page
		)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		reason, err := uitest.WaitText(ctx, tid("reason"))
		if err != nil || reason != tt.reason {
			t.Errorf("%s: reason %q, want %q (%v)", tt.name, reason, tt.reason, err)
		}
		// The token and the settings are still in the form after the submit.
		uitest.WaitJS(t, ctx, tt.name+": the token back in the form", `document.querySelector('[data-testid="debugger-token"]').value === `+jsString(tt.token))
		if aud := uitest.JS[string](t, ctx, `document.querySelector('[data-testid="debugger-audience"]').value`); aud != "flowd-api" {
			t.Errorf("%s: audience after submit %q", tt.name, aud)
		}
		state, _ := uitest.WaitText(ctx, tid("signing-key-state"))
		if state != "active" {
			t.Errorf("%s: key state %q", tt.name, state)
		}
		if tt.name == "expired" {
			if n := count(t, ctx, tid("token-timeline")+" "+tid("mark-exp")); n != 1 {
				t.Errorf("exp mark: %d", n)
			}
			uitest.FullShot(t, ctx, "token-debugger")
		}
	}
}

// uploadImport imports doc through the flows page's import form (a file
// upload) as flow id as, waits for its row and returns the copy as the API
// exports it.
func uploadImport(t *testing.T, ctx context.Context, env *uitest.Env, doc, as string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), as+".flow.json")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	err := chromedp.Do(ctx,
		chromedp.Click(css(tid("import")+" summary")),
		chromedp.SetUploadFiles(css(tid("import-file")), []string{file}),
		chromedp.SendKeys(css(tid("import-as")), as),
		uitest.ClickJS(tid("import-submit")),
	)
	if err != nil {
		t.Fatal(err)
	}
	uitest.WaitJS(t, ctx, "imported "+as, `document.querySelector('[data-flow="`+as+`"]')`)
	_, copyDoc := env.API(t, "GET", "/flows/"+as, nil)
	return string(copyDoc)
}
