package oidc

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// testAuthorizeBlock is oidc.authorize for testIssuer with the standard
// scopes given, by default openid, profile, email and offline_access.
func testAuthorizeBlock(f *fixture, standard ...string) *authorizeBlock {
	if len(standard) == 0 {
		standard = []string{"openid", "profile", "email", "offline_access"}
	}
	return &authorizeBlock{p: f.p, standard: standard, issuer: testIssuer}
}

// testSessionBlock is oidc.session as its factory makes it, checking
// id_token_hint against keyset main at the fixture's clock.
func testSessionBlock(t *testing.T, f *fixture) *sessionBlock {
	t.Helper()
	return &sessionBlock{p: f.p, issuer: testIssuer, hint: testHintChecker(t, f)}
}

// postAuthorizeMsg is an authorization request sent as a form POST.
func postAuthorizeMsg(params url.Values, query url.Values, cookie string) engine.Msg {
	msg := formMsg(params, cookie, "")
	reqOf(msg)["query"] = firstValues(query)
	reqOf(msg)["query_all"] = map[string][]string(query)
	return msg
}

// TestAuthorizeByPost: OpenID Connect Core §3.1.2.1, the authorization
// endpoint takes POST with form-encoded parameters; the POST's query is
// not read.
func TestAuthorizeByPost(t *testing.T) {
	f := newFixture(t, testIssuer)
	b := testAuthorizeBlock(f)
	for _, tc := range []struct {
		name       string
		form       url.Values
		query      url.Values
		port, code string
		scope      string
	}{
		{"form parameters", authorizeParams("web", webCB), nil, "ok", "", "openid email"},
		{"parameters only in the query of a POST", url.Values{}, authorizeParams("web", webCB), "invalid", "invalid_request", ""},
		{"query does not override the form", authorizeParams("web", webCB), url.Values{"redirect_uri": {"https://evil.example/cb"}, "scope": {"openid profile"}}, "ok", "", "openid email"},
		{"repeated form parameter", func() url.Values { v := authorizeParams("web", webCB); v.Add("state", "b"); return v }(), nil, "redirect_error", "invalid_request", ""},
		{"form unknown client", authorizeParams("nobody", webCB), nil, "invalid", "invalid_client", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := postAuthorizeMsg(tc.form, tc.query, "")
			port, err := b.Process(t.Context(), f.clk.exec(), msg)
			wantPort(t, port, err, msg, tc.port)
			if port == "ok" {
				if a := mapOf(msg["authz"]); a["redirect_uri"] != webCB || a["scope"] != tc.scope {
					t.Fatalf("authz %v", a)
				}
				return
			}
			if got := errorCode(msg); got != tc.code {
				t.Fatalf("error %q, want %q", got, tc.code)
			}
		})
	}
}

// TestUnknownScopesIgnored: scope values the server does not know, or the
// client may not have, are dropped (OpenID Connect Core §3.1.2.1); openid
// is still required.
func TestUnknownScopesIgnored(t *testing.T) {
	f := newFixture(t, testIssuer)
	b := testAuthorizeBlock(f)
	for _, tc := range []struct {
		name, client, scope string
		port, want          string
	}{
		{"unknown values dropped", "web", "openid admin profile x:y", "ok", "openid profile"},
		{"client scope kept", "web", "openid billing", "ok", "openid billing"},
		{"another client's scope dropped", "other", "openid billing", "ok", "openid"},
		{"duplicates once", "web", "openid openid email", "ok", "openid email"},
		{"only unknown values, no openid", "web", "admin root", "redirect_error", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params := authorizeParams(tc.client, webCB)
			if tc.client == "other" {
				params.Set("redirect_uri", "https://other.example.com/cb")
			}
			params.Set("scope", tc.scope)
			msg := queryMsg(params, "")
			port, err := b.Process(t.Context(), f.clk.exec(), msg)
			wantPort(t, port, err, msg, tc.port)
			if got := stringField(mapOf(msg["authz"]), "scope"); port == "ok" && got != tc.want {
				t.Fatalf("scope %q, want %q", got, tc.want)
			}
			if port == "redirect_error" && redirectQuery(t, msg).Get("error") != "invalid_scope" {
				t.Fatalf("redirect %s", msg["redirect"])
			}
		})
	}
}

// TestIDTokenHintAtAuthorize: a hint for someone else than the signed-in
// person is never answered for that person.
func TestIDTokenHintAtAuthorize(t *testing.T) {
	f := newFixture(t, testIssuer)
	ctx := t.Context()
	bob, err := f.users.Add(ctx, User{Username: "bob"}, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	hint := func(client, sub string) string {
		idb := &idTokenBlock{p: f.p, keyset: "main", alg: "RS256", ttl: time.Hour, issuer: testIssuer, target: "id_token"}
		m := engine.Msg{"grant": map[string]any{"client_id": client, "subject": sub}}
		if _, err := idb.Process(ctx, f.clk.exec(), m); err != nil {
			t.Fatal(err)
		}
		return stringField(m, "id_token")
	}
	adaHint, bobHint, otherClientHint := hint("web", f.ada.Sub), hint("web", bob.Sub), hint("other", f.ada.Sub)
	f.clk.Advance(2 * time.Hour)
	expiredAda := adaHint                                         // an expired hint is still a hint
	_, cookies := signIn(t, f, authorizeParams("web", webCB), "") // ada is signed in
	sb := testSessionBlock(t, f)
	for _, tc := range []struct {
		name, hint, prompt string
		post               bool
		port, code         string
	}{
		{"no hint, prompt=none", "", "none", false, "active", ""},
		{"hint for the signed-in person", expiredAda, "none", false, "active", ""},
		{"hint for another person, prompt=none", bobHint, "none", false, "redirect_error", "login_required"},
		{"hint for another person, by POST", bobHint, "none", true, "redirect_error", "login_required"},
		{"hint for another person, no prompt", bobHint, "", false, "login", ""},
		{"hint issued to another client", otherClientHint, "none", false, "redirect_error", "invalid_request"},
		{"forged hint", adaHint[:len(adaHint)-4] + "AAAA", "none", false, "redirect_error", "invalid_request"},
		{"not a token", "not-a-token", "", false, "redirect_error", "invalid_request"},
		{"huge hint", strings.Repeat("A", 20000), "none", false, "redirect_error", "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params := authorizeParams("web", webCB)
			if tc.prompt != "" {
				params.Set("prompt", tc.prompt)
			}
			if tc.hint != "" {
				params.Set("id_token_hint", tc.hint)
			}
			msg := queryMsg(params, cookies)
			if tc.post {
				msg = postAuthorizeMsg(params, nil, cookies)
			}
			if port, err := testAuthorizeBlock(f).Process(ctx, f.clk.exec(), msg); port != "ok" || err != nil {
				t.Fatalf("authorize %s %v", port, err)
			}
			port, err := sb.Process(ctx, f.clk.exec(), msg)
			wantPort(t, port, err, msg, tc.port)
			switch port {
			case "active":
				if stringField(mapOf(msg["session"]), "sub") != f.ada.Sub {
					t.Fatalf("session %v", msg["session"])
				}
			case "redirect_error":
				q := redirectQuery(t, msg)
				if q.Get("error") != tc.code || q.Get("code") != "" || q.Get("state") != "xyz" {
					t.Fatalf("redirect %s", msg["redirect"])
				}
			}
			if port != "active" && msg["session"] != nil {
				t.Fatalf("a session was handed on: %v", msg["session"])
			}
		})
	}
}
