package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/flowd/flowd/audit"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/ui/uitest"
)

// TestBrowserAudit: the audit page lists start-up and admin events newest
// first, filters by type from the form, links a key event to its keyset
// and pages with "Older events".
func TestBrowserAudit(t *testing.T) {
	env := uitest.Start(t)
	// Admin changes with different actors: a rotation through the API, a
	// client added from the CLI, a failed and a good sign-in.
	if res, body := env.API(t, "POST", "/keysets/main/rotate", []byte(`{"retire_after": "48h", "force": true}`)); res.StatusCode != 200 {
		t.Fatalf("rotate: %d %s", res.StatusCode, body)
	}
	if _, _, err := env.FD.Clients().Add(engine.WithActor(t.Context(), "cli"), oauth.Client{ID: "billing-service", Scopes: []string{"read"}}, ""); err != nil {
		t.Fatal(err)
	}
	if res := env.NewClient().PostForm(t, "/admin/login", url.Values{"password": {"not the password"}}); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("failed sign-in: %d", res.StatusCode)
	}
	ctx := adminBrowser(t, env, 900)
	if err := chromedp.Do(ctx, chromedp.Navigate(env.URL+"/admin/audit"), chromedp.WaitVisible(css(tid("audit-events")))); err != nil {
		t.Fatal(err)
	}
	first := uitest.JS[string](t, ctx, `document.querySelector('`+tid("audit-row")+`').dataset.type`)
	if first != "admin.sign_in" {
		t.Errorf("newest event %q, want the browser's admin.sign_in", first)
	}
	over := uitest.JS[int](t, ctx, `document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth`)
	if over > 0 {
		t.Errorf("the audit page scrolls sideways by %d px", over)
	}
	uitest.Shot(t, ctx, "audit")

	// Filter by type through the form.
	err := chromedp.Do(ctx,
		chromedp.SetValue(css(tid("audit-type")), "key.retired"),
		uitest.ClickJS(tid("audit-apply")),
		chromedp.WaitVisible(css(tid("audit-clear"))),
	)
	if err != nil {
		t.Fatal(err)
	}
	types := uitest.JS[[]string](t, ctx, `[...document.querySelectorAll('`+tid("audit-row")+`')].map((r) => r.dataset.type)`)
	if len(types) == 0 || strings.Join(types, ",") != strings.TrimSuffix(strings.Repeat("key.retired,", len(types)), ",") {
		t.Errorf("filtered rows %v, want only key.retired", types)
	}
	href := uitest.JS[string](t, ctx, `document.querySelector('`+tid("audit-subject-link")+`').getAttribute('href')`)
	if href != "/admin/keysets#keyset-main" {
		t.Errorf("key event links to %q", href)
	}

	// Pages of two, newest first, through "Older events".
	if err := chromedp.Do(ctx, chromedp.Navigate(env.URL+"/admin/audit?limit=2"), chromedp.WaitVisible(css(tid("audit-events")))); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for page := 0; page < 50; page++ {
		ids := uitest.JS[[]string](t, ctx, `[...document.querySelectorAll('`+tid("audit-row")+`')].map((r) => r.dataset.id)`)
		seen = append(seen, ids...)
		if count(t, ctx, tid("audit-older")) == 0 {
			break
		}
		if err := chromedp.Do(ctx, uitest.ClickJS(tid("audit-older")), chromedp.WaitVisible(css(tid("audit-newest")))); err != nil {
			t.Fatal(err)
		}
		uitest.WaitJS(t, ctx, "the next page", `document.querySelector('`+tid("audit-row")+`') && document.querySelector('`+tid("audit-row")+`').dataset.id !== `+jsString(ids[0]))
	}
	all, _, err := env.FD.Audit().List(context.Background(), audit.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(all) {
		t.Errorf("paged through %d events, the log has %d", len(seen), len(all))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] >= seen[i-1] {
			t.Errorf("event %d (%s) is not older than the one before (%s)", i, seen[i], seen[i-1])
		}
	}
}
