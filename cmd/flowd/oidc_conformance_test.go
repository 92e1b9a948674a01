package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
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
		q := p.submitLogin(t, br, pg, "ada", adaPassword, webCB)
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

// revoke posts to the revocation endpoint; user/pass is client_secret_basic.
func (p *provider) revoke(t *testing.T, form url.Values, user, pass string) (int, string) {
	t.Helper()
	status, _, body := p.rawPost(t, "/oauth/revoke", form.Encode(), user, pass)
	return status, body
}

func (p *provider) rawPost(t *testing.T, path, body, user, pass string) (int, http.Header, string) {
	t.Helper()
	return p.post(t, path, formType, body, user, pass)
}

// TestRevocation: RFC 7009 against the prebuilt revoke flow, with the
// attacks on it.
func TestRevocation(t *testing.T) {
	p := startProvider(t)
	const otherSecret = "other-secret-0123456789"
	personTokens := func(t *testing.T) map[string]any {
		t.Helper()
		verifier, challenge := pkcePair()
		q := p.signIn(t, newBrowser(false), authzParams("web", webCB, challenge), "ada", adaPassword)
		status, body := p.exchange(t, "web", rpSecret, q.Get("code"), webCB, verifier)
		if status != 200 || body["refresh_token"] == nil {
			t.Fatalf("exchange: %d %v", status, body)
		}
		return body
	}
	activeAt := func(t *testing.T, at string) bool {
		t.Helper()
		status, _, raw := p.introspect(t, formType, url.Values{"token": {at}}.Encode(), "svc", svcSecret)
		if status != 200 {
			t.Fatalf("introspect: %d %s", status, raw)
		}
		return strings.TrimSpace(raw) != inactiveRaw
	}
	refresh := func(t *testing.T, rt string) (int, map[string]any) {
		t.Helper()
		return p.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web", rpSecret)
	}
	wantOK := func(t *testing.T, form url.Values, user, pass string) {
		t.Helper()
		if status, body := p.revoke(t, form, user, pass); status != 200 || body != "" {
			t.Fatalf("want 200 and no body, got %d %q", status, body)
		}
	}

	t.Run("discovery lists the endpoint", func(t *testing.T) {
		_, raw := p.s.get(t, "/.well-known/openid-configuration", nil)
		if !strings.Contains(raw, `"revocation_endpoint":"`+p.issuer+`/oauth/revoke"`) {
			t.Fatalf("discovery: %s", raw)
		}
	})

	t.Run("refresh token ends the grant", func(t *testing.T) {
		tok := personTokens(t)
		rt, at := tok["refresh_token"].(string), tok["access_token"].(string)
		// Another client's try changes nothing, and answers 200.
		wantOK(t, url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}, "other", otherSecret)
		if !activeAt(t, at) {
			t.Fatal("another client's revocation ended the grant")
		}
		status, body := refresh(t, rt)
		if status != 200 {
			t.Fatalf("refresh after another client's revocation: %d %v", status, body)
		}
		rt = body["refresh_token"].(string)
		// Wrong client authentication: 401, nothing revoked.
		if status, raw := p.revoke(t, url.Values{"token": {rt}}, "web", "wrong-secret-0123456789"); status != 401 || !strings.Contains(raw, "invalid_client") {
			t.Fatalf("wrong secret: %d %s", status, raw)
		}
		if status, raw := p.revoke(t, url.Values{"token": {rt}}, "", ""); status != 401 {
			t.Fatalf("no client authentication: %d %s", status, raw)
		}
		// The owner revokes: the grant ends, for refresh and introspection.
		wantOK(t, url.Values{"token": {rt}}, "web", rpSecret)
		status, body = refresh(t, rt)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		if activeAt(t, at) {
			t.Fatal("the access token is still active after its refresh token was revoked")
		}
		// Replay: 200 again, nothing else.
		wantOK(t, url.Values{"token": {rt}}, "web", rpSecret)
		// The revoke flow's traces do not show the token.
		adminTok, err := os.ReadFile(filepath.Join(p.vars["FLOWD_DATA"], "admin.token"))
		if err != nil {
			t.Fatal(err)
		}
		code, runs := p.s.get(t, "/admin/api/flows/revoke/runs", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(adminTok))})
		if code != 200 || !strings.Contains(runs, "[redacted]") || strings.Contains(runs, rt) {
			t.Fatalf("revoke runs: %d %.300s", code, runs)
		}
	})

	t.Run("a person's access token ends its grant", func(t *testing.T) {
		tok := personTokens(t)
		at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
		wantOK(t, url.Values{"token": {at}}, "other", otherSecret)
		if !activeAt(t, at) {
			t.Fatal("another client revoked the access token")
		}
		wantOK(t, url.Values{"token": {at}, "token_type_hint": {"access_token"}}, "web", rpSecret)
		if activeAt(t, at) {
			t.Fatal("revoked access token still active")
		}
		status, body := refresh(t, rt)
		wantOAuthError(t, status, body, 400, "invalid_grant")
	})

	t.Run("a client credentials token is refused until it expires", func(t *testing.T) {
		status, body := p.token(t, url.Values{"grant_type": {"client_credentials"}}, "svc", svcSecret)
		if status != 200 {
			t.Fatalf("token: %d %v", status, body)
		}
		at := body["access_token"].(string)
		wantOK(t, url.Values{"token": {at}}, "web", rpSecret)
		if !activeAt(t, at) {
			t.Fatal("another client revoked the service token")
		}
		wantOK(t, url.Values{"token": {at}}, "svc", svcSecret)
		if activeAt(t, at) {
			t.Fatal("revoked service token still active")
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		tok := personTokens(t)
		for _, tc := range []struct {
			name   string
			body   string
			status int
			code   string
		}{
			{"an ID token", url.Values{"token": {tok["id_token"].(string)}}.Encode(), 400, "unsupported_token_type"},
			{"no token", url.Values{"token_type_hint": {"access_token"}}.Encode(), 400, "invalid_request"},
			{"repeated token", "token=a&token=b", 400, "invalid_request"},
			{"malformed token", url.Values{"token": {"not-a-token"}}.Encode(), 200, ""},
			{"JWT-shaped garbage", url.Values{"token": {"eyJhbGciOiJub25lIn0.e30."}}.Encode(), 200, ""},
			{"huge token", "token=" + strings.Repeat("A", 64<<10), 413, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, _, raw := p.rawPost(t, "/oauth/revoke", tc.body, "web", rpSecret)
				if status != tc.status || tc.code != "" && !strings.Contains(raw, `"error":"`+tc.code+`"`) {
					t.Fatalf("got %d %s, want %d %s", status, raw, tc.status, tc.code)
				}
			})
		}
		if !activeAt(t, tok["access_token"].(string)) {
			t.Fatal("a bad request ended the grant")
		}
	})
}

// consentForm reads the hidden fields of the consent form.
func consentForm(t *testing.T, pg page) url.Values {
	t.Helper()
	return hiddenFields(t, pg, "consent-form", "the consent form")
}

// TestConsent: a third-party application gets a code only after the
// person allowed it; the consent is remembered, can be forced, refused,
// and withdrawn by an admin, which ends what it granted.
func TestConsent(t *testing.T) {
	p := startProvider(t)
	const tpCB, tpSecret = "http://127.0.0.1:9/tp-cb", "tp-secret-0123456789"
	mustCmd(t, p.vars, "clients", "add", "--id", "tp", "--name", "Third Party", "--secret", tpSecret,
		"--scopes", "openid profile email", "--redirect-uris", tpCB)
	adminTok, err := os.ReadFile(filepath.Join(p.vars["FLOWD_DATA"], "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, p.issuer+"/admin/api"+path, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(adminTok)))
		resp, err := p.s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	verifier, challenge := pkcePair()
	params := func(kv ...string) url.Values {
		v := authzParams("tp", tpCB, challenge)
		v.Set("scope", "openid email offline_access")
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	br := newBrowser(false)
	pg := br.get(t, p.authorizeURL(params()))
	pg = br.do(t, "POST", p.issuer+"/oauth/authorize", withLogin(loginForm(t, pg), "ada", adaPassword))
	// Signed in, but no code yet: the question.
	form := consentForm(t, pg)
	for _, want := range []string{"Third Party", `data-scope="email"`, `data-scope="offline_access"`, "email_verified"} {
		if !strings.Contains(pg.body, want) {
			t.Fatalf("consent page without %q:\n%s", want, pg.body)
		}
	}
	if pg.header.Get("Content-Security-Policy") == "" || pg.header.Get("Location") != "" {
		t.Fatalf("consent page headers %v", pg.header)
	}
	allow := url.Values{"tx": {form.Get("tx")}, "csrf": {form.Get("csrf")}, "decision": {"allow"}}

	t.Run("bypass attempts", func(t *testing.T) {
		// A forged POST from another browser (no consent cookie, no session).
		if pg := newBrowser(false).do(t, "POST", p.issuer+"/oauth/consent", allow); pg.status != 400 || pg.header.Get("Location") != "" {
			t.Fatalf("forged consent: %d %s", pg.status, pg.header.Get("Location"))
		}
		// bob, signed in elsewhere, posting ada's form fields.
		bob := newBrowser(false)
		p.signIn(t, bob, authzParams("web", webCB, challenge), "bob", "bobs password 123")
		if pg := bob.do(t, "POST", p.issuer+"/oauth/consent", allow); pg.status != 400 {
			t.Fatalf("another person's answer: %d", pg.status)
		}
		// prompt=none never asks.
		q := p.redirectQuery(t, bob.get(t, p.authorizeURL(params("prompt", "none"))), tpCB)
		if q.Get("error") != "consent_required" || q.Get("code") != "" {
			t.Fatalf("prompt=none without consent: %v", q)
		}
	})

	// Allow: a code, tokens with a refresh token (offline_access consented).
	q := p.redirectQuery(t, br.do(t, "POST", p.issuer+"/oauth/consent", allow), tpCB)
	status, tok := p.exchange(t, "tp", tpSecret, q.Get("code"), tpCB, verifier)
	if status != 200 || tok["refresh_token"] == nil || tok["scope"] != "openid email offline_access" {
		t.Fatalf("exchange: %d %v", status, tok)
	}
	// Replayed answer: refused.
	if pg := br.do(t, "POST", p.issuer+"/oauth/consent", allow); pg.status != 400 {
		t.Fatalf("replayed consent: %d", pg.status)
	}
	// Remembered: the next request gets a code at once, even prompt=none.
	if q := p.redirectQuery(t, br.get(t, p.authorizeURL(params("prompt", "none"))), tpCB); q.Get("code") == "" {
		t.Fatalf("remembered consent: %v", q)
	}
	// prompt=consent asks again; a scope not consented to asks too; Deny
	// answers access_denied.
	consentForm(t, br.get(t, p.authorizeURL(params("prompt", "consent"))))
	pg = br.get(t, p.authorizeURL(params("scope", "openid profile")))
	form = consentForm(t, pg)
	q = p.redirectQuery(t, br.do(t, "POST", p.issuer+"/oauth/consent",
		url.Values{"tx": {form.Get("tx")}, "csrf": {form.Get("csrf")}, "decision": {"deny"}}), tpCB)
	if q.Get("error") != "access_denied" || q.Get("code") != "" {
		t.Fatalf("deny: %v", q)
	}

	// The admin sees and withdraws the consent: its grants end.
	if status, raw := admin("GET", "/users/ada/consents"); status != 200 || !strings.Contains(raw, `"client_id": "tp"`) {
		t.Fatalf("consents: %d %s", status, raw)
	}
	if out := mustCmd(t, p.vars, "users", "consents", "ada"); !strings.Contains(out, "tp") || !strings.Contains(out, "offline_access") {
		t.Fatalf("users consents: %s", out)
	}
	if status, _ := admin("DELETE", "/users/ada/consents/web"); status != 404 {
		t.Fatalf("withdrawing a consent that does not exist: %d", status)
	}
	if status, raw := admin("DELETE", "/users/ada/consents/tp"); status != 200 || !strings.Contains(raw, `"grants_ended": 1`) {
		t.Fatalf("withdraw: %d %s", status, raw)
	}
	status, body := p.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}}, "tp", tpSecret)
	wantOAuthError(t, status, body, 400, "invalid_grant")
	sc, _, raw := p.introspect(t, formType, url.Values{"token": {tok["access_token"].(string)}}.Encode(), "svc", svcSecret)
	if sc != 200 || strings.TrimSpace(raw) != inactiveRaw {
		t.Fatalf("introspection after withdrawal: %d %s", sc, raw)
	}
	consentForm(t, br.get(t, p.authorizeURL(params()))) // asked again
	if code, _, errs := flowdCmd(t, p.vars, "users", "withdraw-consent", "ada", "tp"); code == 0 || !strings.Contains(errs, "no such consent") {
		t.Fatalf("withdrawing twice: %d %s", code, errs)
	}

	// The traces show neither the consent form's secrets nor the tokens.
	if status, runs := admin("GET", "/flows/authorize/runs"); status != 200 || strings.Contains(runs, allow.Get("csrf")) ||
		strings.Contains(runs, form.Get("csrf")) {
		t.Fatalf("authorize runs: %d, or they show a consent CSRF token", status)
	}
	if status, runs := admin("GET", "/flows/token/runs"); status != 200 || strings.Contains(runs, tok["refresh_token"].(string)) {
		t.Fatalf("token runs: %d, or they show a refresh token", status)
	}
	// Marked first-party: no question (but offline_access still asks).
	mustCmd(t, p.vars, "clients", "first-party", "tp", "yes")
	if q := p.redirectQuery(t, br.get(t, p.authorizeURL(params("scope", "openid profile"))), tpCB); q.Get("code") == "" {
		t.Fatalf("first-party: %v", q)
	}
	consentForm(t, br.get(t, p.authorizeURL(params())))
}
