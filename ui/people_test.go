package ui_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/ui/uitest"
)

// TestPeoplePages: the Clients and Users forms against hostile and wrong
// input: each refusal is a status and a message on the page, nothing is
// stored, no secret or hash is ever on a page but the one that made it.
func TestPeoplePages(t *testing.T) {
	t.Parallel()
	env := uitest.Start(t)
	c := env.Login(t)
	long := strings.Repeat("a", 5000)
	for _, tc := range []struct {
		name   string
		path   string
		form   url.Values
		status int
		msg    string // in the flash
	}{
		{"client: bad id", "/admin/clients", url.Values{"id": {"bad id/../x"}}, 400, "client id"},
		{"client: huge id", "/admin/clients", url.Values{"id": {long}}, 400, "client id"},
		{"client: fragment in redirect", "/admin/clients", url.Values{"id": {"web"}, "grant_types": {"authorization_code"}, "redirect_uris": {"https://app.example/cb#frag"}}, 400, "fragment"},
		{"client: unknown grant", "/admin/clients", url.Values{"id": {"web"}, "grant_types": {"password"}}, 400, "unknown grant type"},
		{"client: bad scope", "/admin/clients", url.Values{"id": {"web"}, "scopes": {"a\"b"}}, 400, "scope"},
		{"client: public with a secret", "/admin/clients", url.Values{"id": {"spa"}, "kind": {"public"}, "secret": {"0123456789abcdefgh"}}, 400, "no secret"},
		{"client: short own secret", "/admin/clients", url.Values{"id": {"svc"}, "secret": {"short"}}, 400, "16 characters"},
		{"client: edit unknown", "/admin/clients/nobody", url.Values{"name": {"x"}}, 404, "nobody"},
		{"client: delete unknown", "/admin/clients/nobody/delete", nil, 404, "nobody"},
		{"client: new secret for unknown", "/admin/clients/nobody/secret", nil, 404, "nobody"},
		{"user: short password", "/admin/users", url.Values{"username": {"bob"}, "password": {"short"}}, 400, "at least 8"},
		{"user: bad name", "/admin/users", url.Values{"username": {"bob smith"}, "password": {"long enough pw"}}, 400, "username"},
		{"user: huge password", "/admin/users", url.Values{"username": {"bob"}, "password": {long}}, 400, "password"},
		{"user: reset unknown", "/admin/users/nobody/password", url.Values{"password": {"long enough pw"}}, 404, "nobody"},
		{"user: reset too short", "/admin/users/nobody/password", url.Values{"password": {"x"}}, 400, "at least 8"},
		{"user: delete unknown", "/admin/users/nobody/delete", nil, 404, "nobody"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := c.Post(t, tc.path, tc.form)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			flash := doc(t, body).Find(tid("flash")).Text()
			if !strings.Contains(flash, tc.msg) {
				t.Errorf("flash %q, want it to mention %q", flash, tc.msg)
			}
		})
	}
	if list, _ := env.FD.Clients().List(t.Context()); len(list) != 0 {
		t.Errorf("refused forms stored clients: %v", list)
	}
	if list, _ := env.FD.Users().List(t.Context()); len(list) != 0 {
		t.Errorf("refused forms stored users: %v", list)
	}

	t.Run("no CSRF token, no change", func(t *testing.T) {
		for _, path := range []string{"/admin/clients", "/admin/users"} {
			res := c.PostForm(t, path, url.Values{"id": {"web"}, "username": {"eve"}, "password": {"long enough pw"}})
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("%s without CSRF: %d", path, res.StatusCode)
			}
		}
	})

	t.Run("a generated secret is shown once, never a hash", func(t *testing.T) {
		res, body := c.Post(t, "/admin/clients", url.Values{"id": {"svc"}, "scopes": {"read write"}})
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("add: %d %s", res.StatusCode, body)
		}
		secret, _ := doc(t, body).Find(tid("client-secret")).Attr("value")
		if _, err := env.FD.Clients().Authenticate(t.Context(), "svc", secret); err != nil || len(secret) < 40 {
			t.Fatalf("shown secret %q does not authenticate: %v", secret, err)
		}
		for _, page := range []string{"/admin/clients", "/admin/clients/svc/edit"} {
			b := c.GetBody(t, page)
			if strings.Contains(b, secret) || strings.Contains(b, "$argon2") || strings.Contains(b, "secret_hash") {
				t.Errorf("%s shows the secret or its hash", page)
			}
		}
		// An own secret works and is not shown back.
		res, body = c.Post(t, "/admin/clients", url.Values{"id": {"own"}, "secret": {"my own secret 0123456789"}})
		if res.StatusCode != http.StatusCreated || strings.Contains(body, "my own secret") || doc(t, body).Find(tid("client-secret")).Length() != 0 {
			t.Errorf("own secret: %d, shown back: %v", res.StatusCode, strings.Contains(body, "my own secret"))
		}
		if _, err := env.FD.Clients().Authenticate(t.Context(), "own", "my own secret 0123456789"); err != nil {
			t.Errorf("own secret: %v", err)
		}
	})

	t.Run("edit keeps kind and secret", func(t *testing.T) {
		res, body := c.Post(t, "/admin/clients/svc", url.Values{"name": {"Service <b>"}, "scopes": {"read"}, "kind": {"public"}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("edit: %d %s", res.StatusCode, body)
		}
		cl, err := env.FD.Clients().Get(t.Context(), "svc")
		if err != nil || cl.Public || cl.SecretHash == "" || cl.Name != "Service <b>" || strings.Join(cl.Scopes, " ") != "read" {
			t.Errorf("after edit %+v %v", cl.View(), err)
		}
		if page := c.GetBody(t, "/admin/clients"); strings.Contains(page, "Service <b>") {
			t.Error("a client name is not escaped on the page")
		}
		// A bad edit shows the form again with the error, changes nothing.
		res, body = c.Post(t, "/admin/clients/svc", url.Values{"scopes": {"bad\"scope"}})
		if res.StatusCode != http.StatusBadRequest || doc(t, body).Find(tid("edit-client-form")).Length() != 1 {
			t.Errorf("bad edit: %d", res.StatusCode)
		}
		if cl2, _ := env.FD.Clients().Get(t.Context(), "svc"); strings.Join(cl2.Scopes, " ") != "read" {
			t.Errorf("a refused edit changed the scopes: %v", cl2.Scopes)
		}
	})

	t.Run("remove", func(t *testing.T) {
		if res, _ := c.Post(t, "/admin/clients/svc/delete", nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("delete: %d", res.StatusCode)
		}
		if _, err := env.FD.Clients().Get(t.Context(), "svc"); !errors.Is(err, oauth.ErrNoClient) {
			t.Errorf("deleted client: %v", err)
		}
	})
}
