package ui_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/ui/uitest"
)

// TestBrowserSignOutEverywhere: a person signed in at the provider is sent
// straight back to the app by a second authorization request; after
// "sign out everywhere" on the Users page the same browser must sign in
// again, and the page says what was ended. A password the admin sets
// signs the person out the same way; removing the user does too.
func TestBrowserSignOutEverywhere(t *testing.T) {
	env := uitest.Start(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("<!doctype html><title>app</title><p id=done>signed in</p>"))
	}))
	t.Cleanup(app.Close)
	redirect := app.URL + "/cb"
	if _, _, err := env.FD.Clients().Add(t.Context(), oauth.Client{ID: "webapp", Scopes: []string{"openid"},
		RedirectURIs: []string{redirect}, GrantTypes: []string{"authorization_code"}, FirstParty: true}, ""); err != nil { // no consent screen
		t.Fatal(err)
	}
	if _, err := env.FD.Users().Add(t.Context(), oidc.User{Username: "ada"}, "ada's long password"); err != nil {
		t.Fatal(err)
	}
	ctx := adminBrowser(t, env, 900)

	authorize := env.URL + "/oauth/authorize?" + url.Values{"client_id": {"webapp"}, "redirect_uri": {redirect},
		"response_type": {"code"}, "scope": {"openid"}, "state": {"s1"}, "nonce": {"n1"}}.Encode()
	// Asked to sign in (present) or sent straight back to the app.
	signInForm := `!!document.querySelector('[data-testid="username"]')`
	backAtApp := `!!document.getElementById('done')`
	password := "ada's long password"
	signIn := func(what string) {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.Navigate(authorize),
			chromedp.WaitVisible(css(tid("username"))),
			chromedp.SendKeys(css(tid("username")), "ada"),
			chromedp.SendKeys(css(tid("password")), password),
			uitest.ClickJS(tid("sign-in")),
		); err != nil {
			t.Fatal(err)
		}
		uitest.WaitJS(t, ctx, what, backAtApp)
	}
	// adaButton presses one of ada's buttons on the users page (confirming)
	// and waits for the page to say flash.
	adaButton := func(button, flash string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(env.URL+"/admin/users"), chromedp.WaitVisible(css(`[data-user="ada"]`)), acceptConfirms()); err != nil {
			t.Fatal(err)
		}
		uitest.Click(t, ctx, `[data-user="ada"] `+tid(button))
		waitFlash(t, ctx, flash)
	}
	signIn("back at the app")
	if err := chromedp.Do(ctx, chromedp.Navigate(authorize)); err != nil {
		t.Fatal(err)
	}
	uitest.WaitJS(t, ctx, "signed in already: straight back", backAtApp)

	adaButton("user-signout", "Signed ada out everywhere: 1 session ended, its grants revoked (offline_access grants stay).")

	if err := chromedp.Do(ctx, chromedp.Navigate(authorize)); err != nil {
		t.Fatal(err)
	}
	uitest.WaitJS(t, ctx, "asked to sign in again", signInForm)

	// Again: nothing left to end.
	adaButton("user-signout", "ada had no open sessions; nothing to sign out.")

	// A new password signs ada out everywhere: the reset asks first
	// (accepted), and the page says what it ended.
	signIn("signed in again")
	password = "ada's new long password"
	if err := chromedp.Do(ctx, chromedp.Navigate(env.URL+"/admin/users"), chromedp.WaitVisible(css(`[data-user="ada"]`)), acceptConfirms()); err != nil {
		t.Fatal(err)
	}
	uitest.JS[any](t, ctx, `document.querySelector('[data-user="ada"] [data-testid="user-reset"]').open = true`)
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(css(`[data-user="ada"] `+tid("user-new-password"))),
		chromedp.SendKeys(css(`[data-user="ada"] `+tid("user-new-password")), password),
		uitest.ClickJS(`[data-user="ada"] [data-testid="user-reset-submit"]`),
	); err != nil {
		t.Fatal(err)
	}
	waitFlash(t, ctx, "Set a new password for ada and signed them out everywhere: 1 session ended, its grants revoked (offline_access grants stay).")
	if err := chromedp.Do(ctx, chromedp.Navigate(authorize)); err != nil {
		t.Fatal(err)
	}
	uitest.WaitJS(t, ctx, "asked to sign in after the reset", signInForm)

	// Removing the user signs them out everywhere first: the page says the
	// session the browser holds again was ended.
	signIn("signed in with the new password")
	adaButton("user-delete", "Removed ada and signed them out everywhere: 1 session ended, its grants revoked.")
	if n := uitest.JS[int](t, ctx, `document.querySelectorAll('[data-user="ada"]').length`); n != 0 {
		t.Errorf("ada still listed (%d rows)", n)
	}
}
