package main

import (
	"html"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestPAREndToEnd pushes authorization requests (RFC 9126) to the
// prebuilt par flow and signs a person in with the request_uri, then
// tries every misuse of one.
func TestPAREndToEnd(t *testing.T) {
	p := startProvider(t)
	mustCmd(t, p.vars, "clients", "add", "--id", "paronly", "--secret", "paronly-secret-0123456789", "--scopes", "openid",
		"--redirect-uris", webCB, "--require-par")

	push := func(user, pass string, params url.Values) (int, map[string]any) {
		t.Helper()
		status, _, body := postForm(t, p.s, "/oauth/par", params, user, pass)
		return status, body
	}
	pushed := func(client, secret string, params url.Values) string {
		t.Helper()
		status, body := push(client, secret, params)
		uri, _ := body["request_uri"].(string)
		if status != 201 || !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") || body["expires_in"] != float64(60) {
			t.Fatalf("push: %d %v", status, body)
		}
		return uri
	}
	authorizeWith := func(br *browser, client, uri string) page {
		return br.get(t, p.authorizeURL(url.Values{"client_id": {client}, "request_uri": {uri}}))
	}
	wantPage := func(t *testing.T, pg page, text string) {
		t.Helper()
		if pg.status != 400 || pg.header.Get("Location") != "" || !strings.Contains(html.UnescapeString(pg.body), text) {
			t.Fatalf("want a 400 page saying %q, got %d Location %q\n%s", text, pg.status, pg.header.Get("Location"), pg.body)
		}
	}

	verifier, challenge := pkcePair()
	params := authzParams("web", webCB, challenge)
	uri := pushed("web", rpSecret, params)

	t.Run("sign in with the request_uri", func(t *testing.T) {
		br := newBrowser(false)
		pg := authorizeWith(br, "web", uri)
		q := p.submitLogin(t, br, pg, "ada", adaPassword, webCB)
		if q.Get("state") != params.Get("state") || q.Get("code") == "" {
			t.Fatalf("redirect %v", q)
		}
		status, body := p.exchange(t, "web", rpSecret, q.Get("code"), webCB, verifier)
		if status != 200 || body["id_token"] == nil {
			t.Fatalf("exchange: %d %v", status, body)
		}
	})

	t.Run("request_uri reused", func(t *testing.T) {
		wantPage(t, authorizeWith(newBrowser(false), "web", uri), "already used")
	})

	t.Run("another client's request_uri", func(t *testing.T) {
		_, ch := pkcePair()
		own := pushed("web", rpSecret, authzParams("web", webCB, ch))
		wantPage(t, authorizeWith(newBrowser(false), "other", own), "not for this application")
		// Left for its owner.
		if pg := authorizeWith(newBrowser(false), "web", own); pg.status != 200 {
			t.Fatalf("the owner's use after another client's attempt: %d", pg.status)
		}
	})

	t.Run("made-up request_uri", func(t *testing.T) {
		wantPage(t, authorizeWith(newBrowser(false), "web", "urn:ietf:params:oauth:request_uri:"+strings.Repeat("A", 43)), "unknown")
		wantPage(t, authorizeWith(newBrowser(false), "web", "https://evil.example/request"), "not issued by this server")
	})

	t.Run("push refusals", func(t *testing.T) {
		_, ch := pkcePair()
		for _, tc := range []struct {
			name, user, pass string
			change           func(url.Values)
			status           int
			code             string
		}{
			{"without client authentication", "", "", nil, 401, "invalid_client"},
			{"wrong secret", "web", "not-the-secret-0123456789", nil, 401, "invalid_client"},
			{"request_uri inside", "web", rpSecret, func(v url.Values) { v.Set("request_uri", "urn:ietf:params:oauth:request_uri:x") }, 400, "invalid_request"},
			{"client_id of another client", "web", rpSecret, func(v url.Values) { v.Set("client_id", "other") }, 401, "invalid_client"},
			{"unregistered redirect_uri", "web", rpSecret, func(v url.Values) { v.Set("redirect_uri", "https://evil.example/cb") }, 400, "invalid_request"},
			{"no openid scope", "web", rpSecret, func(v url.Values) { v.Set("scope", "profile") }, 400, "invalid_scope"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				v := authzParams("web", webCB, ch)
				if tc.change != nil {
					tc.change(v)
				}
				status, body := push(tc.user, tc.pass, v)
				if status != tc.status || body["error"] != tc.code || body["request_uri"] != nil {
					t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.code)
				}
			})
		}
	})

	t.Run("a client that must push", func(t *testing.T) {
		pg := newBrowser(false).get(t, p.authorizeURL(authzParams("paronly", webCB, "")))
		q := p.redirectQuery(t, pg, webCB)
		if q.Get("error") != "invalid_request" || !strings.Contains(q.Get("error_description"), "PAR") {
			t.Fatalf("plain request of a PAR-only client: %v", q)
		}
		u := pushed("paronly", "paronly-secret-0123456789", authzParams("paronly", webCB, ""))
		if pg := authorizeWith(newBrowser(false), "paronly", u); pg.status != 200 {
			t.Fatalf("pushed request of a PAR-only client: %d", pg.status)
		}
	})

	t.Run("discovery", func(t *testing.T) {
		a := call(t, p.s, "GET", p.issuer+"/.well-known/openid-configuration", nil, "", "")
		if a.body["pushed_authorization_request_endpoint"] != p.issuer+"/oauth/par" || a.body["require_pushed_authorization_requests"] != false {
			t.Fatalf("discovery: %v", a.body)
		}
	})

	t.Run("request_uri expired", func(t *testing.T) {
		// A person shortens the lifetime in the par flow to its minimum.
		p.redeployNode(t, "par", "par", map[string]any{"ttl": "5s"})
		_, ch := pkcePair()
		status, body := push("web", rpSecret, authzParams("web", webCB, ch))
		if status != 201 || body["expires_in"] != float64(5) {
			t.Fatalf("push: %d %v", status, body)
		}
		time.Sleep(6 * time.Second)
		wantPage(t, authorizeWith(newBrowser(false), "web", body["request_uri"].(string)), "expired")
	})
}
