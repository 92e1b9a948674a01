package main

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestConformanceGaps: the points the OpenID Foundation's test plans found,
// against the prebuilt flows.
func TestConformanceGaps(t *testing.T) {
	p := startProvider(t)
	verifier, challenge := pkcePair()

	t.Run("authorization request by POST", func(t *testing.T) {
		br := newBrowser(false)
		params := authzParams("web", webCB, challenge)
		params.Set("scope", "openid profile admin") // admin: unknown, ignored
		pg := br.do(t, "POST", p.issuer+"/oauth/authorize", params)
		form := loginForm(t, pg)
		pg = br.do(t, "POST", p.issuer+"/oauth/authorize", withLogin(form, "ada", adaPassword))
		q := p.redirectQuery(t, pg, webCB)
		if q.Get("state") != params.Get("state") || q.Get("code") == "" {
			t.Fatalf("authorization response %v", q)
		}
		status, body := p.exchange(t, "web", rpSecret, q.Get("code"), webCB, verifier)
		if status != 200 || body["scope"] != "openid profile" {
			t.Fatalf("exchange: %d %v", status, body)
		}
		// Signed in now: a POST with prompt=none answers a code at once.
		params = authzParams("web", webCB, challenge)
		params.Set("prompt", "none")
		q = p.redirectQuery(t, br.do(t, "POST", p.issuer+"/oauth/authorize", params), webCB)
		if q.Get("code") == "" {
			t.Fatalf("prompt=none by POST: %v", q)
		}
	})

	t.Run("id_token_hint for another person with prompt=none", func(t *testing.T) {
		// bob signs in in one browser and keeps his ID token; ada is
		// signed in in another. A hint for bob in ada's browser is not
		// answered with a code for ada.
		bobBrowser := newBrowser(false)
		v2, c2 := pkcePair()
		q := p.signIn(t, bobBrowser, authzParams("web", webCB, c2), "bob", "bobs password 123")
		status, body := p.exchange(t, "web", rpSecret, q.Get("code"), webCB, v2)
		if status != 200 {
			t.Fatalf("exchange: %d %v", status, body)
		}
		bobID, _ := body["id_token"].(string)
		ada := newBrowser(false)
		p.signIn(t, ada, authzParams("web", webCB, challenge), "ada", adaPassword)
		params := authzParams("web", webCB, challenge)
		params.Set("prompt", "none")
		params.Set("id_token_hint", bobID)
		q = p.redirectQuery(t, ada.get(t, p.authorizeURL(params)), webCB)
		if q.Get("error") != "login_required" || q.Get("code") != "" || q.Get("state") != params.Get("state") {
			t.Fatalf("want login_required, got %v", q)
		}
		// bob's own browser: the hint fits, a code.
		q = p.redirectQuery(t, bobBrowser.get(t, p.authorizeURL(params)), webCB)
		if q.Get("code") == "" {
			t.Fatalf("hint for the signed-in person: %v", q)
		}
	})

	t.Run("discovery", func(t *testing.T) {
		for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
			status, raw := p.s.get(t, path, nil)
			var meta map[string]any
			if status != 200 || json.Unmarshal([]byte(raw), &meta) != nil {
				t.Fatalf("%s: %d %s", path, status, raw)
			}
			scopes, _ := meta["scopes_supported"].([]any)
			if meta["issuer"] != p.issuer || meta["request_uri_parameter_supported"] != false ||
				meta["request_parameter_supported"] != false || !slices.Contains(scopes, any("openid")) ||
				!slices.Contains(scopes, any("offline_access")) {
				t.Fatalf("%s: %s", path, raw)
			}
		}
	})

	t.Run("unsupported grant names the grants served", func(t *testing.T) {
		for _, tc := range []struct {
			name, grant, code string
		}{
			{"unknown grant", "password", "unsupported_grant_type"},
			{"device grant", "urn:ietf:params:oauth:grant-type:device_code", "unsupported_grant_type"},
			{"no grant_type", "", "invalid_request"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				form := url.Values{}
				if tc.grant != "" {
					form.Set("grant_type", tc.grant)
				}
				status, body := p.token(t, form, "web", rpSecret)
				wantOAuthError(t, status, body, 400, tc.code)
				desc, _ := body["error_description"].(string)
				for _, g := range []string{"authorization_code", "refresh_token", "client_credentials"} {
					if !strings.Contains(desc, g) {
						t.Errorf("description %q does not name %s", desc, g)
					}
				}
			})
		}
		// client_credentials still works.
		status, body := p.token(t, url.Values{"grant_type": {"client_credentials"}}, "svc", "svc-secret-0123456789")
		if status != 200 || body["access_token"] == nil {
			t.Fatalf("client_credentials: %d %v", status, body)
		}
	})
}
