package oauth

import (
	"errors"
	"strings"
	"testing"
)

func TestClientUpdateAndRenewSecret(t *testing.T) {
	c, _ := newClients(t)
	ctx := t.Context()
	if _, _, err := c.Add(ctx, Client{ID: "web", Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"},
		RedirectURIs: []string{"https://app.example/cb"}}, "web-secret-0123456789"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Add(ctx, Client{ID: "spa", Public: true, RedirectURIs: []string{"https://spa.example/cb"},
		GrantTypes: []string{"authorization_code"}}, ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cl   Client
		err  error
	}{
		{"new redirect and scopes", Client{ID: "web", Name: "Web app", Scopes: []string{"openid", "profile", "openid"},
			GrantTypes: []string{"authorization_code", "refresh_token"}, RedirectURIs: []string{"https://app.example/cb", "https://app.example/cb2"}}, nil},
		{"unknown client", Client{ID: "nobody"}, ErrNoClient},
		{"hostile id", Client{ID: "../" + strings.Repeat("x", 500)}, ErrNoClient},
		{"bad scope", Client{ID: "web", Scopes: []string{"a b"}}, ErrBadInput},
		{"bad audience", Client{ID: "web", Audiences: []string{"x y"}}, ErrBadInput},
		{"redirect with fragment", Client{ID: "web", GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://app.example/cb#x"}}, ErrBadInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Update(ctx, tc.cl)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if got.SecretHash != "" || got.Name != "Web app" || strings.Join(got.Scopes, " ") != "openid profile" || len(got.RedirectURIs) != 2 {
				t.Errorf("updated %+v", got)
			}
		})
	}
	// The secret survived the edit; a renewed one replaces it.
	if _, err := c.Authenticate(ctx, "web", "web-secret-0123456789"); err != nil {
		t.Fatalf("old secret after edit: %v", err)
	}
	secret, err := c.RenewSecret(ctx, "web")
	if err != nil || len(secret) < 40 {
		t.Fatalf("renew: %q %v", secret, err)
	}
	if _, err := c.Authenticate(ctx, "web", "web-secret-0123456789"); !errors.Is(err, ErrInvalidClient) {
		t.Errorf("old secret after renew: %v", err)
	}
	if _, err := c.Authenticate(ctx, "web", secret); err != nil {
		t.Errorf("new secret: %v", err)
	}
	if _, err := c.RenewSecret(ctx, "spa"); !errors.Is(err, ErrBadInput) {
		t.Errorf("renew a public client: %v", err)
	}
	if _, err := c.RenewSecret(ctx, "nobody"); !errors.Is(err, ErrNoClient) {
		t.Errorf("renew an unknown client: %v", err)
	}
}
