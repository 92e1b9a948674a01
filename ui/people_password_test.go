package ui_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/flowd/flowd/audit"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/blocks/oidc"
	"github.com/flowd/flowd/ui/uitest"
)

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="(tx|csrf)" value="([^"]*)"`)

// TestPeoplePasswordResetSignsOut: a password an admin sets on the Users
// page signs the person out everywhere (the old password may be known to
// someone else): the form asks first and says so, the answer says what
// ended, the person's browser must sign in again, and the audit log has a
// user.password_set by admin-ui with the count (none of it on the old
// code, which redirected with "Set a new password for ada." and ended
// nothing).
func TestPeoplePasswordResetSignsOut(t *testing.T) {
	t.Parallel()
	env := uitest.Start(t)
	const redirect = "https://app.test/cb"
	if _, _, err := env.FD.Clients().Add(t.Context(), oauth.Client{ID: "webapp", Scopes: []string{"openid"},
		RedirectURIs: []string{redirect}, GrantTypes: []string{"authorization_code"}, FirstParty: true}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := env.FD.Users().Add(t.Context(), oidc.User{Username: "ada"}, "ada's first password"); err != nil {
		t.Fatal(err)
	}
	authorize := "/oauth/authorize?" + url.Values{"client_id": {"webapp"}, "redirect_uri": {redirect},
		"response_type": {"code"}, "scope": {"openid"}, "state": {"s1"}, "nonce": {"n1"}}.Encode()
	// signedIn reports whether the browser is sent straight back to the
	// app (a live session) rather than shown the sign-in form.
	person := env.NewClient()
	signedIn := func() bool {
		t.Helper()
		res, body := person.Get(t, authorize)
		switch {
		case res.StatusCode == http.StatusFound && strings.HasPrefix(res.Header.Get("Location"), redirect):
			return true
		case res.StatusCode == http.StatusOK && strings.Contains(body, `name="password"`):
			return false
		}
		t.Fatalf("authorize: %d %s", res.StatusCode, body)
		return false
	}
	if signedIn() {
		t.Fatal("signed in before signing in")
	}
	_, page := person.Get(t, authorize)
	form := url.Values{"username": {"ada"}, "password": {"ada's first password"}}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if res, body := person.PostFormBody(t, "/oauth/authorize", form); res.StatusCode != http.StatusFound {
		t.Fatalf("sign-in: %d %s", res.StatusCode, body)
	}
	if !signedIn() {
		t.Fatal("not signed in after signing in")
	}

	admin := env.Login(t)
	confirm, _ := doc(t, admin.GetBody(t, "/admin/users")).Find(`[data-user="ada"] ` + tid("user-reset-form")).Attr("data-confirm")
	if !strings.Contains(confirm, "signed out everywhere") {
		t.Errorf("the reset form asks %q; want it to say ada is signed out everywhere", confirm)
	}
	for _, tc := range []struct{ name, password, flash string }{
		{"an open session", "ada's second password",
			"Set a new password for ada and signed them out everywhere: 1 session ended, its grants revoked (offline_access grants stay)."},
		{"nothing open", "ada's third password", "Set a new password for ada (no open sessions to end)."},
	} {
		res, body := admin.Post(t, "/admin/users/ada/password", url.Values{"password": {tc.password}})
		if flash := strings.TrimSpace(doc(t, body).Find(tid("flash")).Text()); res.StatusCode != http.StatusOK || flash != tc.flash {
			t.Fatalf("%s: %d flash %q, want %q", tc.name, res.StatusCode, flash, tc.flash)
		}
		if signedIn() {
			t.Fatalf("%s: the browser is still signed in", tc.name)
		}
	}
	evs, _, err := env.FD.Audit().List(t.Context(), audit.Query{Type: audit.UserPasswordSet})
	var got []string
	for _, e := range evs {
		got = append(got, e.Subject+" | "+e.Actor+" | "+e.Why)
	}
	if err != nil || strings.Join(got, "\n") != "ada | admin-ui | password_set: 0 sessions ended\nada | admin-ui | password_set: 1 session ended" {
		t.Errorf("audit events %q %v", got, err)
	}
}
