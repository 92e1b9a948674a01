package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowd/flowd/ui/uitest"
)

// TestBrowserClientsAndUsers: a person adds a user, resets their password,
// adds a confidential client with a redirect URI (its secret shown once),
// and signs in through that client with the new password; the code the
// app receives is exchanged for tokens with that secret.
func TestBrowserClientsAndUsers(t *testing.T) {
	env := uitest.Start(t)
	var mu sync.Mutex
	var callback url.Values
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" { // the browser also asks for /favicon.ico
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		callback = r.URL.Query()
		mu.Unlock()
		w.Write([]byte("<!doctype html><title>app</title><p id=done>signed in</p>"))
	}))
	t.Cleanup(app.Close)
	redirect := app.URL + "/cb"

	ctx := adminBrowser(t, env, 900)

	t.Run("add a user and reset the password", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.Navigate(env.URL+"/admin/users"),
			chromedp.WaitVisible(css(tid("users-empty"))),
			chromedp.SendKeys(css(tid("user-username")), "grace"),
			chromedp.SendKeys(css(tid("user-password")), "first password 1"),
			chromedp.SendKeys(css(tid("user-name")), "Grace Hopper"),
			chromedp.SendKeys(css(tid("user-email")), "grace@example.com"),
			uitest.ClickJS(tid("user-add")),
		)
		if err != nil {
			t.Fatal(err)
		}
		waitFlash(t, ctx, "Added grace.")
		// The page that showed the flash may still be settling: a node
		// looked up just before it is replaced is gone ("Could not find
		// node") or sits in a closed <details> ("not focusable"). Open the
		// reset form (idempotent, unlike a click on its summary) and look
		// the field up again.
		openReset := `(document.querySelector('[data-user="grace"] [data-testid="user-reset"]') || {}).open = true`
		for try := 1; ; try++ {
			uitest.JS[any](t, ctx, openReset)
			err = chromedp.Do(ctx,
				chromedp.WaitVisible(css(`[data-user="grace"] `+tid("user-new-password"))),
				chromedp.SendKeys(css(`[data-user="grace"] `+tid("user-new-password")), "second password 2"),
				acceptConfirms(), // the reset signs grace out everywhere: it asks first
				uitest.ClickJS(`[data-user="grace"] [data-testid="user-reset-submit"]`),
			)
			if err == nil || try == 5 || !(strings.Contains(err.Error(), "Could not find node") || strings.Contains(err.Error(), "not focusable")) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		waitFlash(t, ctx, "Set a new password for grace (no open sessions to end).")
		if _, err := env.FD.Users().Authenticate(t.Context(), "grace", "first password 1"); err == nil {
			t.Error("the old password still signs in")
		}
		if _, err := env.FD.Users().Authenticate(t.Context(), "grace", "second password 2"); err != nil {
			t.Errorf("the new password: %v", err)
		}
		uitest.Shot(t, ctx, "users")
	})

	var secret string
	t.Run("add a client with a redirect URI", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.Navigate(env.URL+"/admin/clients"),
			chromedp.WaitVisible(css(tid("clients-empty"))),
			chromedp.SendKeys(css(tid("client-id")), "webapp"),
			chromedp.SendKeys(css(tid("client-name")), "Web app"),
			chromedp.SendKeys(css(tid("client-redirects")), redirect),
			uitest.ClickJS(tid("client-add")),
		)
		if err != nil {
			t.Fatal(err)
		}
		secret, err = uitest.WaitText(ctx, `[data-testid="client-secret-once"] h2`)
		if err != nil || secret != "Secret of webapp" {
			t.Fatalf("secret heading %q %v", secret, err)
		}
		secret = uitest.JS[string](t, ctx, `document.querySelector('[data-testid="client-secret"]').value`)
		if len(secret) < 40 {
			t.Fatalf("secret %q", secret)
		}
		uitest.Shot(t, ctx, "clients")
		// Shown once: a reload of the list no longer has it.
		if err := chromedp.Do(ctx, chromedp.Navigate(env.URL+"/admin/clients"), chromedp.WaitVisible(css(tid("clients")))); err != nil {
			t.Fatal(err)
		}
		if n := count(t, ctx, tid("client-secret")); n != 0 {
			t.Errorf("the secret is shown again (%d)", n)
		}
		cl, err := env.FD.Clients().Get(t.Context(), "webapp")
		if err != nil || cl.Public || strings.Join(cl.RedirectURIs, " ") != redirect ||
			strings.Join(cl.GrantTypes, " ") != "authorization_code refresh_token" || strings.Join(cl.Scopes, " ") != "openid profile email" {
			t.Fatalf("stored client %+v %v", cl, err)
		}
	})

	t.Run("sign in through the client", func(t *testing.T) {
		q := url.Values{"client_id": {"webapp"}, "redirect_uri": {redirect}, "response_type": {"code"},
			"scope": {"openid profile"}, "state": {"st-123"}, "nonce": {"n-1"}}
		err := chromedp.Do(ctx,
			chromedp.Navigate(env.URL+"/oauth/authorize?"+q.Encode()),
			chromedp.WaitVisible(css(tid("username"))),
			chromedp.SendKeys(css(tid("username")), "grace"),
			chromedp.SendKeys(css(tid("password")), "second password 2"),
			uitest.ClickJS(tid("sign-in")),
			// A client made in the UI is third-party: the person allows it once.
			chromedp.WaitVisible(css(tid("consent-form"))),
			uitest.ClickJS(tid("allow")),
		)
		if err != nil {
			t.Fatal(err)
		}
		uitest.WaitJS(t, ctx, "back at the app", `document.getElementById('done')`)
		mu.Lock()
		got := callback
		mu.Unlock()
		if got.Get("state") != "st-123" || got.Get("code") == "" {
			t.Fatalf("callback %v", got)
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {got.Get("code")}, "redirect_uri": {redirect}}
		req, _ := http.NewRequestWithContext(t.Context(), "POST", env.URL+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("webapp", secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var tok map[string]any
		if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != 200 || tok["id_token"] == nil || tok["access_token"] == nil {
			t.Fatalf("token answer %d %v %v", res.StatusCode, tok, err)
		}
	})

	t.Run("edit the client", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.Navigate(env.URL+"/admin/clients"),
			chromedp.WaitVisible(css(`[data-client="webapp"]`)),
		)
		if err != nil {
			t.Fatal(err)
		}
		uitest.Click(t, ctx, `[data-client="webapp"] [data-testid="client-edit"]`)
		// The edit page is filled by script, looking each field up when it
		// is used: typing into a node resolved just before the page settled
		// failed under load with "Could not find node with given id".
		if err := chromedp.Do(ctx, chromedp.WaitVisible(css(tid("edit-client-form")))); err != nil {
			t.Fatal(err)
		}
		uitest.JS[any](t, ctx, fmt.Sprintf(`(() => { const f = document.querySelector(%q); f.value = %q; f.dispatchEvent(new Event('input', {bubbles: true})); return null; })()`,
			tid("client-logout-redirects"), app.URL+"/bye"))
		err = chromedp.Do(ctx, uitest.ClickJS(tid("grant-refresh_token")), uitest.ClickJS(tid("client-save")))
		if err != nil {
			t.Fatal(err)
		}
		waitFlash(t, ctx, "Saved webapp.")
		cl, err := env.FD.Clients().Get(t.Context(), "webapp")
		if err != nil || strings.Join(cl.PostLogoutRedirectURIs, " ") != app.URL+"/bye" || strings.Join(cl.GrantTypes, " ") != "authorization_code" {
			t.Fatalf("edited client %+v %v", cl, err)
		}
		if _, err := env.FD.Clients().Authenticate(t.Context(), "webapp", secret); err != nil {
			t.Errorf("the secret after an edit: %v", err)
		}
	})
}

// waitFlash waits for the page's flash message to read want.
func waitFlash(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	uitest.WaitJS(t, ctx, "flash "+want, `((document.querySelector('[data-testid="flash"]') || {}).textContent || '').trim() === `+jsString(want))
}
