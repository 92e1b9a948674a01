package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2/clientcredentials"
)

// waitKeys waits until the key-rollover flow's start-up run has created
// keyset main (the JWKS answers 200).
func waitKeys(t *testing.T, s *server) {
	t.Helper()
	// The first start generates keyset main (RSA-3072 + P-256); on a busy
	// 2-core CI machine that can outlast the test client's 10 s timeout,
	// so a request that times out is asked again, until a little before
	// the test binary's -timeout.
	wait, stop := beforeDeadline(t)
	defer stop()
	for {
		code := 0
		req, _ := http.NewRequestWithContext(t.Context(), "GET", s.base+"/.well-known/jwks.json", nil)
		resp, err := s.client.Do(req)
		if err == nil {
			code = resp.StatusCode
			resp.Body.Close()
			if code == 200 {
				return
			}
		}
		select {
		case <-wait.Done():
			t.Fatalf("keyset main never appeared (JWKS answers %d, %v)", code, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func postForm(t *testing.T, s *server, path string, form url.Values, user, pass string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", s.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("%s answered %d with non-JSON %q", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, body
}

// TestTokenServiceStory is the README's story: a fresh data folder, `flowd
// serve`, one `flowd clients add`, a token from /oauth/token, /api/hello
// with it (200) and with a tampered copy (401 naming the reason).
func TestTokenServiceStory(t *testing.T) {
	data := filepath.Join(t.TempDir(), "flowd-data")
	s := startServer(t, data)
	waitKeys(t, s)
	vars := map[string]string{"FLOWD_DATA": data}
	code, out, errs := flowdCmd(t, vars, "clients", "add", "--id", "demo", "--secret", "demo-secret-0123456789", "--scopes", "read write")
	if code != 0 || !strings.Contains(out, `added client "demo"`) {
		t.Fatalf("clients add: %d %s %s", code, out, errs)
	}
	if code, out, _ := flowdCmd(t, vars, "clients", "list"); code != 0 || !strings.Contains(out, "demo") || strings.Contains(out, "argon2") {
		t.Fatalf("clients list: %d %s", code, out)
	}
	// A generated secret is printed once.
	code, out, _ = flowdCmd(t, vars, "clients", "add", "--id", "gen", "--scopes", "read")
	if code != 0 || !regexp.MustCompile(`client secret \(shown once, store it now\): \S{40,}`).MatchString(out) {
		t.Fatalf("generated secret: %d %s", code, out)
	}

	status, hdr, tok := postForm(t, s, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, "demo", "demo-secret-0123456789")
	if status != 200 || tok["token_type"] != "Bearer" || tok["scope"] != "read" || tok["expires_in"] != float64(3600) || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("token: %d %v %v", status, hdr, tok)
	}
	at := tok["access_token"].(string)
	code, body := s.get(t, "/api/hello", map[string]string{"Authorization": "Bearer " + at})
	if code != 200 || !strings.Contains(body, `"hello":"demo"`) {
		t.Fatalf("/api/hello: %d %s", code, body)
	}
	// Tamper with the signature without changing its last character, so
	// the token stays well-formed and the signature check is what fails.
	sigStart := strings.LastIndex(at, ".") + 1
	tampered := at[:sigStart] + flip(at[sigStart:sigStart+8]) + at[sigStart+8:]
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+s.addr+"/api/hello", nil)
	req.Header.Set("Authorization", "Bearer "+tampered)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="flowd", error="invalid_token", error_description="bad_signature"` {
		t.Fatalf("tampered: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	for _, tc := range []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		errCode    string
	}{
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}}, "demo", "wrong-secret-0123456789", 401, "invalid_client"},
		{"unknown client", url.Values{"grant_type": {"client_credentials"}}, "nobody", "demo-secret-0123456789", 401, "invalid_client"},
		{"no credentials", url.Values{"grant_type": {"client_credentials"}}, "", "", 401, "invalid_client"},
		{"scope not allowed", url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}, "demo", "demo-secret-0123456789", 400, "invalid_scope"},
		{"unsupported grant", url.Values{"grant_type": {"password"}}, "demo", "demo-secret-0123456789", 400, "unsupported_grant_type"},
		{"resource not allowed", url.Values{"grant_type": {"client_credentials"}, "resource": {"https://elsewhere.example"}}, "demo", "demo-secret-0123456789", 400, "invalid_target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := postForm(t, s, "/oauth/token", tc.form, tc.user, tc.pass)
			if status != tc.status || body["error"] != tc.errCode {
				t.Fatalf("%d %v, want %d %s", status, body, tc.status, tc.errCode)
			}
			if _, ok := body["access_token"]; ok {
				t.Fatal("error answer carries a token")
			}
		})
	}

	// Introspection (RFC 7662).
	status, _, in := postForm(t, s, "/oauth/introspect", url.Values{"token": {at}}, "demo", "demo-secret-0123456789")
	if status != 200 || in["active"] != true || in["client_id"] != "demo" || in["scope"] != "read" {
		t.Fatalf("introspect: %d %v", status, in)
	}
	status, _, in = postForm(t, s, "/oauth/introspect", url.Values{"token": {tampered}}, "demo", "demo-secret-0123456789")
	if status != 200 || in["active"] != false || len(in) != 1 {
		t.Fatalf("introspect tampered: %d %v", status, in)
	}
	if status, _, _ := postForm(t, s, "/oauth/introspect", url.Values{"token": {at}}, "demo", "nope-nope-nope-nope"); status != 401 {
		t.Fatalf("introspect without client auth: %d", status)
	}
}

func flip(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
	}
	return string(b)
}

// TestStandardClients: golang.org/x/oauth2/clientcredentials gets a token
// and github.com/coreos/go-oidc discovers flowd and verifies the token
// through the published JWKS.
func TestStandardClients(t *testing.T) {
	data := filepath.Join(t.TempDir(), "flowd-data")
	s := startServer(t, data)
	waitKeys(t, s)
	if code, out, errs := flowdCmd(t, map[string]string{"FLOWD_DATA": data}, "clients", "add", "--id", "svc",
		"--secret", "svc-secret-0123456789", "--scopes", "read", "--audiences", "https://billing.example"); code != 0 {
		t.Fatalf("clients add: %s %s", out, errs)
	}
	issuer := "http://" + s.addr
	ctx := oidc.InsecureIssuerURLContext(t.Context(), issuer)
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var meta struct {
		TokenEndpoint string `json:"token_endpoint"`
		JWKSURI       string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil || meta.TokenEndpoint != issuer+"/oauth/token" || meta.JWKSURI != issuer+"/.well-known/jwks.json" {
		t.Fatalf("metadata %+v %v", meta, err)
	}
	for _, tc := range []struct {
		name     string
		params   url.Values
		audience string
	}{
		{"default audience", nil, "flowd-api"},
		{"RFC 8707 resource", url.Values{"resource": {"https://billing.example"}}, "https://billing.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := clientcredentials.Config{ClientID: "svc", ClientSecret: "svc-secret-0123456789",
				TokenURL: provider.Endpoint().TokenURL, Scopes: []string{"read"}, EndpointParams: tc.params}
			tok, err := cc.Token(context.Background())
			if err != nil {
				t.Fatalf("client credentials: %v", err)
			}
			verifier := provider.Verifier(&oidc.Config{ClientID: tc.audience, SupportedSigningAlgs: []string{"RS256"}})
			idt, err := verifier.Verify(context.Background(), tok.AccessToken)
			if err != nil {
				t.Fatalf("go-oidc verify: %v", err)
			}
			var claims struct {
				ClientID string `json:"client_id"`
				Scope    string `json:"scope"`
			}
			if err := idt.Claims(&claims); err != nil || idt.Subject != "svc" || idt.Issuer != issuer || claims.ClientID != "svc" || claims.Scope != "read" {
				t.Fatalf("claims %+v %+v %v", idt, claims, err)
			}
			// A verifier for another audience refuses it.
			other := provider.Verifier(&oidc.Config{ClientID: "someone-else"})
			if _, err := other.Verify(context.Background(), tok.AccessToken); err == nil {
				t.Fatal("token accepted for the wrong audience")
			}
		})
	}
}
