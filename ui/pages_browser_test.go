package ui_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/flowd/flowd/ui/uitest"
)

// TestBrowserAdminPages visits every admin page at 1440x900 and 1280x720:
// none scrolls sideways, every page has its heading and favicon, and the
// 1440x900 screenshots are regenerated into docs/screenshots.
func TestBrowserAdminPages(t *testing.T) {
	env := uitest.Start(t)
	ctx := uitest.Browser(t, 2*browserTimeout)
	uitest.Viewport(t, ctx, 1440, 900)
	uitest.WatchErrors(t, ctx)
	// The login page first: no navigation bar.
	if err := chromedp.Do(ctx, chromedp.Navigate(env.URL+"/admin/login"), chromedp.WaitVisible(css(tid("login-card")))); err != nil {
		t.Fatal(err)
	}
	if n := count(t, ctx, tid("nav")); n != 0 {
		t.Errorf("the login page has a navigation bar")
	}
	uitest.Shot(t, ctx, "login")
	uitest.LoginBrowser(t, ctx, env)
	pages := []struct{ name, path, ready string }{
		{"dashboard", "/admin/dashboard", tid("dashboard")},
		{"audit", "/admin/audit", tid("audit-events")},
		{"flows", "/admin/flows", tid("flows")},
		{"flow-history", "/admin/flows/key-rollover/versions", "main h1"},
		{"keysets", "/admin/keysets", `[data-keyset="main"]`},
		{"schedules", "/admin/schedules", "main h1"},
		{"clients", "/admin/clients", tid("add-client")},
		{"users", "/admin/users", tid("add-user")},
		{"templates", "/admin/templates", tid("templates")},
		{"debugger", "/admin/debugger", tid("debugger-token")},
	}
	for _, size := range [][2]int64{{1280, 720}, {1440, 900}} {
		uitest.Viewport(t, ctx, size[0], size[1])
		for _, p := range pages {
			if err := chromedp.Do(ctx, chromedp.Navigate(env.URL+p.path), chromedp.WaitVisible(css(p.ready))); err != nil {
				t.Fatalf("%s: %v", p.name, err)
			}
			over := uitest.JS[int](t, ctx, `document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth`)
			if over > 0 {
				t.Errorf("%s at %dx%d scrolls sideways by %d px", p.name, size[0], size[1], over)
			}
			if n := count(t, ctx, `link[rel="icon"][href="/admin/static/favicon.svg"]`); n != 1 {
				t.Errorf("%s: favicon links %d", p.name, n)
			}
			// The favicon is served.
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`fetch('/admin/static/favicon.svg').then((r) => r.ok && r.headers.get('Content-Type').startsWith('image/svg+xml'))`, chromedp.EvalAwaitPromise))
			if err != nil || !ok {
				t.Errorf("favicon not served as SVG (%v)", err)
			}
			if size[0] == 1440 && p.name != "clients" && p.name != "users" && p.name != "templates" && p.name != "dashboard" && p.name != "audit" {
				uitest.Shot(t, ctx, p.name) // clients, users, templates, dashboard, audit: their own tests shoot them with data
			}
		}
	}
}
