package main

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/blocks/jose/josetest"
)

// TestPrivateKeyJWTEndToEnd registers a private_key_jwt client with the
// CLI (--jwks-file) and authenticates it at the token and introspection
// endpoints of the prebuilt flows with RFC 7523 assertions.
func TestPrivateKeyJWTEndToEnd(t *testing.T) {
	p := startProvider(t)
	key := josetest.NewES256(t)
	key.Kid = "k1"
	jwks := key.JWKS(t)
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustCmd(t, p.vars, "clients", "add", "--id", "kjwt", "--scopes", "read", "--auth-method", "private_key_jwt", "--jwks-file", file)
	if !strings.Contains(out, "private_key_jwt") || strings.Contains(out, "client secret") {
		t.Fatalf("clients add said %q", out)
	}
	assertion := func(aud string, life time.Duration) string {
		now := time.Now()
		return key.Sign(t, map[string]any{"iss": "kjwt", "sub": "kjwt", "aud": aud, "jti": josetest.JTI(),
			"iat": now.Unix(), "exp": now.Add(life).Unix()}, nil)
	}
	form := func(a string, extra url.Values) url.Values {
		v := url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
		for k, vs := range extra {
			v[k] = vs
		}
		return v
	}
	cc := url.Values{"grant_type": {"client_credentials"}}
	used := assertion(p.issuer+"/oauth/token", time.Minute)
	status, _, body := postForm(t, p.s, "/oauth/token", form(used, cc), "", "")
	if status != 200 || body["access_token"] == nil {
		t.Fatalf("token with private_key_jwt: %d %v", status, body)
	}
	at := body["access_token"].(string)

	status, _, body = postForm(t, p.s, "/oauth/introspect", form(assertion(p.issuer, time.Minute), url.Values{"token": {at}}), "", "")
	if status != 200 || body["active"] != true || body["client_id"] != "kjwt" {
		t.Fatalf("introspection with private_key_jwt: %d %v", status, body)
	}

	for _, tc := range []struct {
		name string
		form url.Values
		user string
		desc string
	}{
		{"replayed jti", form(used, cc), "", "jti was used before"},
		{"wrong aud", form(assertion("https://elsewhere.example", time.Minute), cc), "", "wrong_audience"},
		{"expired", form(assertion(p.issuer, -time.Minute), cc), "", "token_expired"},
		{"too long-lived", form(assertion(p.issuer, time.Hour), cc), "", "longer than"},
		{"client_secret_basic for a private_key_jwt client", cc, "kjwt", "client authentication failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pass := ""
			if tc.user != "" {
				pass = "guessed-secret-0123456789"
			}
			status, _, body := postForm(t, p.s, "/oauth/token", tc.form, tc.user, pass)
			desc, _ := body["error_description"].(string)
			if status != 401 || body["error"] != "invalid_client" || !strings.Contains(desc, tc.desc) {
				t.Fatalf("got %d %v, want 401 invalid_client saying %q", status, body, tc.desc)
			}
		})
	}

	a := call(t, p.s, "GET", p.issuer+"/.well-known/openid-configuration", nil, "", "")
	methods, _ := a.body["token_endpoint_auth_methods_supported"].([]any)
	if !slices.Contains(methods, any("private_key_jwt")) || a.body["token_endpoint_auth_signing_alg_values_supported"] == nil {
		t.Fatalf("discovery: %v", a.body)
	}
}
