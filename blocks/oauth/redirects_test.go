package oauth

import (
	"errors"
	"slices"
	"testing"

	"github.com/flowd/flowd/engine"
)

func TestCheckRedirectURI(t *testing.T) {
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"https://app.example.com/cb", true},
		{"https://app.example.com/cb?tenant=1", true},
		{"http://127.0.0.1:8000/cb", true},
		{"http://[::1]/cb", true},
		{"http://localhost:3000/cb", true},
		{"com.example.app:/oauth2redirect", true},
		{"http://app.example.com/cb", false}, // http off loopback
		{"https://app.example.com/cb#frag", false},
		{"https://app.example.com/cb#", false},
		{"https://user:pw@app.example.com/cb", false},
		{"javascript:alert(1)", false},
		{"data:text/html,hi", false},
		{"file:///etc/passwd", false},
		{"myapp:/cb", false}, // private schemes are reversed domain names
		{"/relative/cb", false},
		{"//app.example.com/cb", false},
		{"https:///cb", false},
		{"https://app.example.com/c b", false},
		{"https://app.example.com\\@evil.example/", false},
		{"", false},
	} {
		if err := CheckRedirectURI(tc.uri); (err == nil) != tc.ok {
			t.Errorf("CheckRedirectURI(%q) = %v, want ok=%v", tc.uri, err, tc.ok)
		}
	}
}

func TestBrowserClientRegistration(t *testing.T) {
	c, _ := newClients(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name   string
		cl     Client
		secret string
		grants []string
		err    error
	}{
		{"confidential web app gets code+refresh", Client{ID: "web", RedirectURIs: []string{"https://a.example/cb", "https://a.example/cb"}}, "", []string{"authorization_code", "refresh_token"}, nil},
		{"public app", Client{ID: "spa", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}}, "", []string{"authorization_code", "refresh_token"}, nil},
		{"service keeps client_credentials only", Client{ID: "svc"}, "", nil, nil},
		{"explicit grants", Client{ID: "mix", RedirectURIs: []string{"https://a.example/cb"}, GrantTypes: []string{"authorization_code", "client_credentials"}}, "", []string{"authorization_code", "client_credentials"}, nil},
		{"public without redirect", Client{ID: "p2", Public: true}, "", nil, ErrBadInput},
		{"public client_credentials", Client{ID: "p3", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}, GrantTypes: []string{"client_credentials"}}, "", nil, ErrBadInput},
		{"public with a secret", Client{ID: "p4", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}}, "some-secret-0123456789", nil, ErrBadInput},
		{"unknown grant", Client{ID: "g1", GrantTypes: []string{"password"}}, "", nil, ErrBadInput},
		{"implicit grant", Client{ID: "g2", GrantTypes: []string{"implicit"}, RedirectURIs: []string{"https://a.example/cb"}}, "", nil, ErrBadInput},
		{"refresh without code", Client{ID: "g3", GrantTypes: []string{"refresh_token"}}, "", nil, ErrBadInput},
		{"code without redirect", Client{ID: "g4", GrantTypes: []string{"authorization_code"}}, "", nil, ErrBadInput},
		{"bad redirect", Client{ID: "r1", RedirectURIs: []string{"http://evil.example/cb"}}, "", nil, ErrBadInput},
		{"bad logout redirect", Client{ID: "r2", RedirectURIs: []string{"https://a.example/cb"}, PostLogoutRedirectURIs: []string{"javascript:x"}}, "", nil, ErrBadInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, _, err := c.Add(ctx, tc.cl, tc.secret)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && !slices.Equal(cl.GrantTypes, tc.grants) {
				t.Fatalf("grants %v, want %v", cl.GrantTypes, tc.grants)
			}
		})
	}
	if cl, _ := c.Get(ctx, "web"); len(cl.RedirectURIs) != 1 {
		t.Fatalf("redirect URIs not deduplicated: %v", cl.RedirectURIs)
	}
}

func TestPublicClientAuth(t *testing.T) {
	c, _ := newClients(t)
	ctx := t.Context()
	c.Add(ctx, Client{ID: "spa", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}}, "")
	_, secret, _ := c.Add(ctx, Client{ID: "web", RedirectURIs: []string{"https://a.example/cb"}}, "")
	c.Add(ctx, Client{ID: "svc", Scopes: []string{"read"}}, "svc-secret-0123456789")
	for _, tc := range []struct {
		name   string
		config string
		msg    engine.Msg
		port   string
		public bool
		grants []any
	}{
		{"public, allowed", `{"allow_public": true}`, request(nil, map[string]any{"client_id": "spa"}), "ok", true, []any{"authorization_code", "refresh_token"}},
		{"public, not allowed", `{}`, request(nil, map[string]any{"client_id": "spa"}), "invalid", false, nil},
		{"confidential posing as public", `{"allow_public": true}`, request(nil, map[string]any{"client_id": "web"}), "invalid", false, nil},
		{"unknown posing as public", `{"allow_public": true}`, request(nil, map[string]any{"client_id": "nobody"}), "invalid", false, nil},
		{"public with a secret", `{"allow_public": true}`, request(nil, map[string]any{"client_id": "spa", "client_secret": "x"}), "invalid", false, nil},
		{"public with Basic", `{"allow_public": true}`, request(map[string]any{"authorization": basic("spa", "")}, nil), "invalid", false, nil},
		{"confidential still works", `{"allow_public": true}`, request(map[string]any{"authorization": basic("web", secret)}, nil), "ok", false, []any{"authorization_code", "refresh_token"}},
		{"service grants", `{"allow_public": true}`, request(map[string]any{"authorization": basic("svc", "svc-secret-0123456789")}, nil), "ok", false, []any{"client_credentials"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := runFlow(t, c, nil, "oauth.client_auth", tc.config, tc.msg)
			step := tr.Steps[len(tr.Steps)-1]
			if step.Port != tc.port {
				t.Fatalf("port %q, want %q (%v)", step.Port, tc.port, step.Msg)
			}
			if tc.port == "ok" {
				cl := step.Msg.(map[string]any)["client"].(map[string]any)
				if cl["public"] != tc.public || !slices.Equal(cl["grant_types"].([]any), tc.grants) {
					t.Fatalf("msg.client %v", cl)
				}
			}
		})
	}
	// client_credentials refuses public clients and clients without the grant.
	for _, tc := range []struct {
		name   string
		client map[string]any
		code   string
	}{
		{"public", map[string]any{"id": "spa", "public": true, "grant_types": []any{"authorization_code"}}, "unauthorized_client"},
		{"no grant", map[string]any{"id": "web", "public": false, "grant_types": []any{"authorization_code"}}, "unauthorized_client"},
		{"granted", map[string]any{"id": "svc", "scopes": []any{"read"}, "grant_types": []any{"client_credentials"}}, ""},
		{"older msg.client without grant_types", map[string]any{"id": "svc", "scopes": []any{"read"}}, ""},
	} {
		t.Run("client_credentials "+tc.name, func(t *testing.T) {
			msg := request(nil, map[string]any{"grant_type": "client_credentials"})
			msg["client"] = tc.client
			tr := runFlow(t, c, nil, "oauth.client_credentials", `{"default_audience": "api"}`, msg)
			step := tr.Steps[len(tr.Steps)-1]
			m := step.Msg.(map[string]any)
			if tc.code == "" {
				if step.Port != "ok" {
					t.Fatalf("%s %v", step.Port, m)
				}
				return
			}
			if e, _ := m["oauth_error"].(map[string]any); step.Port != "invalid" || e["error"] != tc.code {
				t.Fatalf("%s %v", step.Port, m)
			}
		})
	}
}

func TestAllowsRedirectURI(t *testing.T) {
	cl := Client{RedirectURIs: []string{
		"http://127.0.0.1/callback",           // native app, no port registered
		"http://127.0.0.1:8400/with-port?a=1", // registered with a port and a query
		"http://[::1]/cb",
		"http://localhost:3000/cb",
		"https://app.example.com/cb",
		"com.example.app:/oauth2redirect",
	}}
	for _, tc := range []struct {
		name string
		uri  string
		ok   bool
	}{
		// Exact matches, as before.
		{"exact loopback", "http://127.0.0.1/callback", true},
		{"exact https", "https://app.example.com/cb", true},
		{"exact private scheme", "com.example.app:/oauth2redirect", true},
		{"exact localhost", "http://localhost:3000/cb", true},
		// RFC 8252 §7.3: any port on a loopback IP literal.
		{"ephemeral port", "http://127.0.0.1:51004/callback", true},
		{"lowest port", "http://127.0.0.1:1/callback", true},
		{"highest port", "http://127.0.0.1:65535/callback", true},
		{"ipv6 ephemeral port", "http://[::1]:61000/cb", true},
		{"registered port replaced", "http://127.0.0.1:9999/with-port?a=1", true},
		{"registered port dropped", "http://127.0.0.1/with-port?a=1", true},
		// Hosts that only look like loopback.
		{"loopback as a subdomain", "http://127.0.0.1.evil.example/callback", false},
		{"loopback as a subdomain with port", "http://127.0.0.1.evil.example:8000/callback", false},
		{"loopback as user info", "http://127.0.0.1@evil.example/callback", false},
		{"loopback with port as user info", "http://127.0.0.1:80@evil.example/callback", false},
		{"user info before loopback", "http://evil@127.0.0.1:5000/callback", false},
		{"backslash in the authority", "http://127.0.0.1:5000\\@evil.example/callback", false},
		{"other loopback address", "http://127.0.0.2:5000/callback", false},
		{"longer address", "http://127.0.0.10:5000/callback", false},
		{"unspecified address", "http://0.0.0.0:5000/callback", false},
		{"v4-mapped v6", "http://[::ffff:127.0.0.1]:5000/callback", false},
		{"long form of ::1", "http://[0:0:0:0:0:0:0:1]:5000/cb", false},
		{"v6 zone", "http://[::1%25eth0]:5000/cb", false},
		{"decimal address", "http://2130706433:5000/callback", false},
		{"localhost for 127.0.0.1", "http://localhost:5000/callback", false},
		{"localhost on another port", "http://localhost:3001/cb", false},
		{"127.0.0.1 for localhost", "http://127.0.0.1:3000/cb", false},
		{"v6 for v4 registration", "http://[::1]:5000/callback", false},
		{"v4 for v6 registration", "http://127.0.0.1:5000/cb", false},
		// Scheme.
		{"https for http", "https://127.0.0.1:5000/callback", false},
		{"upper-case scheme", "HTTP://127.0.0.1:5000/callback", false},
		{"https host with a port", "https://app.example.com:8443/cb", false},
		// Path and query must be the registered ones, byte for byte.
		{"different path", "http://127.0.0.1:5000/other", false},
		{"trailing slash", "http://127.0.0.1:5000/callback/", false},
		{"path traversal", "http://127.0.0.1:5000/callback/../evil", false},
		{"dot segment", "http://127.0.0.1:5000/./callback", false},
		{"encoded path", "http://127.0.0.1:5000/%63allback", false},
		{"encoded slash", "http://127.0.0.1:5000%2fcallback", false},
		{"path case", "http://127.0.0.1:5000/Callback", false},
		{"extra query", "http://127.0.0.1:5000/callback?next=https://evil.example", false},
		{"empty query", "http://127.0.0.1:5000/callback?", false},
		{"query dropped", "http://127.0.0.1:9999/with-port", false},
		{"query changed", "http://127.0.0.1:9999/with-port?a=2", false},
		{"fragment", "http://127.0.0.1:5000/callback#x", false},
		{"empty fragment", "http://127.0.0.1:5000/callback#", false},
		// Ports that are not a port.
		{"port 0", "http://127.0.0.1:0/callback", false},
		{"port too large", "http://127.0.0.1:65536/callback", false},
		{"port far too large", "http://127.0.0.1:4294967377/callback", false},
		{"leading zero", "http://127.0.0.1:08080/callback", false},
		{"signed port", "http://127.0.0.1:+80/callback", false},
		{"empty port", "http://127.0.0.1:/callback", false},
		{"named port", "http://127.0.0.1:http/callback", false},
		{"two ports", "http://127.0.0.1:80:81/callback", false},
		{"space", "http://127.0.0.1:5000 /callback", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cl.AllowsRedirectURI(tc.uri); got != tc.ok {
				t.Fatalf("AllowsRedirectURI(%q) = %v, want %v", tc.uri, got, tc.ok)
			}
		})
	}
	// Registered URIs outside the loopback rule give no port freedom.
	odd := Client{RedirectURIs: []string{"http://127.0.0.1:/cb", "http://localhost/cb"}}
	for _, uri := range []string{"http://127.0.0.1:5000/cb", "http://localhost:5000/cb"} {
		if odd.AllowsRedirectURI(uri) {
			t.Errorf("AllowsRedirectURI(%q) with %v = true", uri, odd.RedirectURIs)
		}
	}
}
