package oauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"

	"github.com/flowd/flowd/blocks/jose/josetest"
	"github.com/flowd/flowd/engine"
)

const testIssuer = "https://id.example.com"

// The private_key_jwt clients (RFC 7523 §2.2) of these tests are
// josetest.Signers: kid the key's thumbprint, assertions with that kid.

func assertionClaims(client, aud string, now time.Time) map[string]any {
	return map[string]any{"iss": client, "sub": client, "aud": aud, "jti": josetest.JTI(),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
}

// hmacWithPublicKey signs HS256 with the client's public JWK as the secret
// (the algorithm confusion attack).
func hmacWithPublicKey(t *testing.T, k *josetest.Signer, claims map[string]any) string {
	t.Helper()
	hdr, _ := json.Marshal(map[string]any{"alg": "HS256", "kid": k.Kid})
	payload, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(payload)
	m := hmac.New(sha256.New, k.JWKS(t))
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestPrivateKeyJWT(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	c, _ := newClients(t)
	c.SetClock(func() time.Time { return now })
	ctx := t.Context()
	key, other := josetest.NewES256(t), josetest.NewES256(t)

	// jwks_uri served over TLS, counted.
	var fetches atomic.Int32
	jwksSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(key.JWKS(t))
	}))
	defer jwksSrv.Close()
	c.SetAssertions(AssertionOptions{Issuer: testIssuer, HTTPClient: jwksSrv.Client()})

	if _, secret, err := c.Add(ctx, Client{ID: "jwt", Scopes: []string{"read"}, JWKS: key.JWKS(t)}, ""); err != nil || secret != "" {
		t.Fatalf("add private_key_jwt client: secret %q, %v", secret, err)
	}
	if _, _, err := c.Add(ctx, Client{ID: "jwt-uri", Scopes: []string{"read"}, TokenEndpointAuthMethod: AuthPrivateKeyJWT, JWKSURI: jwksSrv.URL}, ""); err != nil {
		t.Fatal(err)
	}
	_, basicSecret, err := c.Add(ctx, Client{ID: "sec", Scopes: []string{"read"}, TokenEndpointAuthMethod: AuthSecretBasic}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RenewSecret(ctx, "jwt"); !errors.Is(err, ErrBadInput) {
		t.Fatalf("RenewSecret of a private_key_jwt client: %v", err)
	}
	replayed := key.Sign(t, assertionClaims("jwt", testIssuer, now), nil)
	if _, err := c.AuthenticateAssertion(ctx, replayed, ""); err != nil {
		t.Fatalf("first use: %v", err)
	}

	mod := func(client, aud string, f func(map[string]any)) map[string]any {
		cl := assertionClaims(client, aud, now)
		if f != nil {
			f(cl)
		}
		return cl
	}
	for _, tc := range []struct {
		name      string
		assertion string
		clientID  string
		want      string // "" accepted; else in the error
	}{
		{"aud the issuer", key.Sign(t, mod("jwt", testIssuer, nil), nil), "", ""},
		{"aud the token endpoint URL", key.Sign(t, mod("jwt", testIssuer+"/oauth/token", nil), nil), "jwt", ""},
		{"aud a one-element array", key.Sign(t, mod("jwt", "", func(c map[string]any) { c["aud"] = []any{testIssuer} }), nil), "", ""},
		{"keys by jwks_uri", key.Sign(t, mod("jwt-uri", testIssuer, nil), nil), "", ""},
		{"replayed jti", replayed, "", "jti was used before"},
		{"wrong aud", key.Sign(t, mod("jwt", "https://other.example.com", nil), nil), "", "wrong_audience"},
		{"aud injection: a second audience", key.Sign(t, mod("jwt", "", func(c map[string]any) { c["aud"] = []any{testIssuer, "https://other.example.com"} }), nil), "", "single value"},
		{"expired", key.Sign(t, mod("jwt", testIssuer, func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-10*time.Minute).Unix(), now.Add(-5*time.Minute).Unix()
		}), nil), "", "token_expired"},
		{"too long-lived", key.Sign(t, mod("jwt", testIssuer, func(c map[string]any) { c["exp"] = now.Add(time.Hour).Unix() }), nil), "", "longer than"},
		{"too long-lived by iat", key.Sign(t, mod("jwt", testIssuer, func(c map[string]any) {
			c["iat"] = now.Add(-time.Hour).Unix()
		}), nil), "", "longer than"},
		{"no exp", key.Sign(t, mod("jwt", testIssuer, func(c map[string]any) { delete(c, "exp") }), nil), "", "missing_claim"},
		{"no jti", key.Sign(t, mod("jwt", testIssuer, func(c map[string]any) { delete(c, "jti") }), nil), "", "missing_claim"},
		{"iss is not the client", key.Sign(t, mod("jwt", testIssuer, func(c map[string]any) { c["iss"] = "someone" }), nil), "", "wrong_issuer"},
		{"signed by another key", other.Sign(t, mod("jwt", testIssuer, nil), (&gojose.SignerOptions{}).WithHeader("kid", key.Kid)), "", "bad_signature"},
		{"unknown kid", other.Sign(t, mod("jwt", testIssuer, nil), nil), "", "unknown_kid"},
		{"HMAC with the public key", hmacWithPublicKey(t, key, mod("jwt", testIssuer, nil)), "", "alg_not_allowed"},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
			base64.RawURLEncoding.EncodeToString(must(json.Marshal(mod("jwt", testIssuer, nil)))) + ".", "", "alg_not_allowed"},
		{"client_id differs from sub", key.Sign(t, mod("jwt", testIssuer, nil), nil), "sec", "does not match"},
		{"a secret client", key.Sign(t, mod("sec", testIssuer, nil), nil), "", "no client registered for private_key_jwt has this id"},
		{"unknown client: the same answer", key.Sign(t, mod("ghost", testIssuer, nil), nil), "", "no client registered for private_key_jwt has this id"},
		{"oversize", key.Sign(t, mod("jwt", testIssuer, func(c map[string]any) { c["pad"] = strings.Repeat("x", 9000) }), nil), "", "longer than"},
		{"garbage", "not.a.jwt", "", "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := c.AuthenticateAssertion(ctx, tc.assertion, tc.clientID)
			if tc.want == "" {
				if err != nil || !strings.HasPrefix(cl.ID, "jwt") {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ae *AssertionError
			if !errors.As(err, &ae) || !errors.Is(err, ErrInvalidClient) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want an AssertionError saying %q", err, tc.want)
			}
		})
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("jwks_uri fetched %d times, want once (cached)", n)
	}

	t.Run("the block enforces the registered method", func(t *testing.T) {
		good := func() string { return key.Sign(t, mod("jwt", testIssuer, nil), nil) }
		jwtBody := func(a string) map[string]any {
			return map[string]any{"client_assertion_type": AssertionType, "client_assertion": a}
		}
		for _, tc := range []struct {
			name string
			msg  engine.Msg
			port string
			desc string
		}{
			{"private_key_jwt", request(nil, jwtBody(good())), "ok", ""},
			{"client_secret_basic for a private_key_jwt client", request(map[string]any{"authorization": basic("jwt", "any-secret-0123456789")}, nil), "invalid", "client authentication failed"},
			{"client_secret_post for a basic-only client", request(nil, map[string]any{"client_id": "sec", "client_secret": basicSecret}), "invalid", "client_secret_basic"},
			{"basic for the basic client", request(map[string]any{"authorization": basic("sec", basicSecret)}, nil), "ok", ""},
			{"assertion with a Basic header too", request(map[string]any{"authorization": basic("sec", basicSecret)}, jwtBody(good())), "invalid", "not both"},
			{"wrong assertion type", request(nil, map[string]any{"client_assertion_type": "urn:x", "client_assertion": good()}), "invalid", "client_assertion_type"},
			{"assertion type without assertion", request(nil, map[string]any{"client_assertion_type": AssertionType}), "invalid", "required"},
			{"as a public client", request(nil, map[string]any{"client_id": "jwt"}), "invalid", "client authentication failed"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tr := runFlowAssert(t, c, tc.msg)
				step := tr.Steps[1]
				if step.Port != tc.port {
					t.Fatalf("port %q, want %q (%+v)", step.Port, tc.port, step)
				}
				out := step.Msg.(map[string]any)
				if tc.port == "ok" {
					return
				}
				oe := out["oauth_error"].(map[string]any)
				if oe["error"] != "invalid_client" || !strings.Contains(oe["error_description"].(string), tc.desc) {
					t.Fatalf("oauth_error %v, want %q", oe, tc.desc)
				}
			})
		}
	})
}

// runFlowAssert runs oauth.client_auth (allow_public) keeping the
// registry's assertion options (runFlow's Register would replace them).
func runFlowAssert(t *testing.T, c *Clients, msg engine.Msg) *engine.Trace {
	t.Helper()
	saved := c.assert
	tr := runFlow(t, c, nil, "oauth.client_auth", `{"allow_public": true}`, msg)
	c.assert = saved
	return tr
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestAuthMethodRegistration(t *testing.T) {
	c, _ := newClients(t)
	key := josetest.NewES256(t)
	wantRefused(t, c, []badRegistration{
		{"private_key_jwt with a secret", Client{ID: "a", JWKS: key.JWKS(t)}, "a-secret-0123456789", "no secret"},
		{"private_key_jwt without keys", Client{ID: "b", TokenEndpointAuthMethod: AuthPrivateKeyJWT}, "", "needs the client's public keys"},
		{"both jwks and jwks_uri", Client{ID: "c", JWKS: key.JWKS(t), JWKSURI: "https://x.example/jwks"}, "", "not both"},
		{"public with keys", Client{ID: "d", Public: true, JWKS: key.JWKS(t), RedirectURIs: []string{"https://app.example/cb"}}, "", "public client"},
		{"private key in jwks", Client{ID: "e", JWKS: must(json.Marshal(gojose.JSONWebKeySet{Keys: []gojose.JSONWebKey{{Key: key.Key, KeyID: key.Kid}}}))}, "", "jwks"},
		{"plain http jwks_uri", Client{ID: "f", JWKSURI: "http://keys.example.com/jwks"}, "", "https"},
		{"unknown method", Client{ID: "g", TokenEndpointAuthMethod: "tls_client_auth"}, "", "not one of"},
		{"none for a confidential client", Client{ID: "h", TokenEndpointAuthMethod: AuthNone}, "", "public clients"},
	})
}
