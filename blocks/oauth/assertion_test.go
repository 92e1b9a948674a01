package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
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

	"github.com/flowd/flowd/engine"
)

const testIssuer = "https://id.example.com"

// assertionKey is a private_key_jwt client's key pair (RFC 7523 §2.2).
type assertionKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

func newAssertionKey(t *testing.T) *assertionKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tp, _ := (&gojose.JSONWebKey{Key: &k.PublicKey}).Thumbprint(crypto.SHA256)
	return &assertionKey{priv: k, kid: base64.RawURLEncoding.EncodeToString(tp)}
}

// jwks is the public JWK Set the client registers.
func (k *assertionKey) jwks(t *testing.T) []byte {
	t.Helper()
	b, err := json.Marshal(gojose.JSONWebKeySet{Keys: []gojose.JSONWebKey{{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign makes an assertion with the claims given; kid "" uses the key's.
func (k *assertionKey) sign(t *testing.T, claims map[string]any, kid string) string {
	t.Helper()
	if kid == "" {
		kid = k.kid
	}
	s, err := gojose.NewSigner(gojose.SigningKey{Algorithm: gojose.ES256, Key: k.priv}, (&gojose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := obj.CompactSerialize()
	return out
}

func assertionClaims(client, aud string, now time.Time) map[string]any {
	jti := make([]byte, 12)
	rand.Read(jti)
	return map[string]any{"iss": client, "sub": client, "aud": aud, "jti": base64.RawURLEncoding.EncodeToString(jti),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
}

// hmacWithPublicKey signs HS256 with the client's public JWK as the secret
// (the algorithm confusion attack).
func hmacWithPublicKey(t *testing.T, k *assertionKey, claims map[string]any) string {
	t.Helper()
	hdr, _ := json.Marshal(map[string]any{"alg": "HS256", "kid": k.kid})
	payload, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(payload)
	m := hmac.New(sha256.New, k.jwks(t))
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestPrivateKeyJWT(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	c, _ := newClients(t)
	c.SetClock(func() time.Time { return now })
	ctx := t.Context()
	key, other := newAssertionKey(t), newAssertionKey(t)

	// jwks_uri served over TLS, counted.
	var fetches atomic.Int32
	jwksSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(key.jwks(t))
	}))
	defer jwksSrv.Close()
	c.SetAssertions(AssertionOptions{Issuer: testIssuer, HTTPClient: jwksSrv.Client()})

	if _, secret, err := c.Add(ctx, Client{ID: "jwt", Scopes: []string{"read"}, JWKS: key.jwks(t)}, ""); err != nil || secret != "" {
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
	replayed := key.sign(t, assertionClaims("jwt", testIssuer, now), "")
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
		{"aud the issuer", key.sign(t, mod("jwt", testIssuer, nil), ""), "", ""},
		{"aud the token endpoint URL", key.sign(t, mod("jwt", testIssuer+"/oauth/token", nil), ""), "jwt", ""},
		{"aud a one-element array", key.sign(t, mod("jwt", "", func(c map[string]any) { c["aud"] = []any{testIssuer} }), ""), "", ""},
		{"keys by jwks_uri", key.sign(t, mod("jwt-uri", testIssuer, nil), ""), "", ""},
		{"replayed jti", replayed, "", "jti was used before"},
		{"wrong aud", key.sign(t, mod("jwt", "https://other.example.com", nil), ""), "", "wrong_audience"},
		{"aud injection: a second audience", key.sign(t, mod("jwt", "", func(c map[string]any) { c["aud"] = []any{testIssuer, "https://other.example.com"} }), ""), "", "single value"},
		{"expired", key.sign(t, mod("jwt", testIssuer, func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-10*time.Minute).Unix(), now.Add(-5*time.Minute).Unix()
		}), ""), "", "token_expired"},
		{"too long-lived", key.sign(t, mod("jwt", testIssuer, func(c map[string]any) { c["exp"] = now.Add(time.Hour).Unix() }), ""), "", "longer than"},
		{"too long-lived by iat", key.sign(t, mod("jwt", testIssuer, func(c map[string]any) {
			c["iat"] = now.Add(-time.Hour).Unix()
		}), ""), "", "longer than"},
		{"no exp", key.sign(t, mod("jwt", testIssuer, func(c map[string]any) { delete(c, "exp") }), ""), "", "missing_claim"},
		{"no jti", key.sign(t, mod("jwt", testIssuer, func(c map[string]any) { delete(c, "jti") }), ""), "", "missing_claim"},
		{"iss is not the client", key.sign(t, mod("jwt", testIssuer, func(c map[string]any) { c["iss"] = "someone" }), ""), "", "wrong_issuer"},
		{"signed by another key", other.sign(t, mod("jwt", testIssuer, nil), key.kid), "", "bad_signature"},
		{"unknown kid", other.sign(t, mod("jwt", testIssuer, nil), ""), "", "unknown_kid"},
		{"HMAC with the public key", hmacWithPublicKey(t, key, mod("jwt", testIssuer, nil)), "", "alg_not_allowed"},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
			base64.RawURLEncoding.EncodeToString(must(json.Marshal(mod("jwt", testIssuer, nil)))) + ".", "", "alg_not_allowed"},
		{"client_id differs from sub", key.sign(t, mod("jwt", testIssuer, nil), ""), "sec", "does not match"},
		{"a secret client", key.sign(t, mod("sec", testIssuer, nil), ""), "", "no client registered for private_key_jwt has this id"},
		{"unknown client: the same answer", key.sign(t, mod("ghost", testIssuer, nil), ""), "", "no client registered for private_key_jwt has this id"},
		{"oversize", key.sign(t, mod("jwt", testIssuer, func(c map[string]any) { c["pad"] = strings.Repeat("x", 9000) }), ""), "", "longer than"},
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
		good := func() string { return key.sign(t, mod("jwt", testIssuer, nil), "") }
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
	key := newAssertionKey(t)
	wantRefused(t, c, []badRegistration{
		{"private_key_jwt with a secret", Client{ID: "a", JWKS: key.jwks(t)}, "a-secret-0123456789", "no secret"},
		{"private_key_jwt without keys", Client{ID: "b", TokenEndpointAuthMethod: AuthPrivateKeyJWT}, "", "needs the client's public keys"},
		{"both jwks and jwks_uri", Client{ID: "c", JWKS: key.jwks(t), JWKSURI: "https://x.example/jwks"}, "", "not both"},
		{"public with keys", Client{ID: "d", Public: true, JWKS: key.jwks(t), RedirectURIs: []string{"https://app.example/cb"}}, "", "public client"},
		{"private key in jwks", Client{ID: "e", JWKS: must(json.Marshal(gojose.JSONWebKeySet{Keys: []gojose.JSONWebKey{{Key: key.priv, KeyID: key.kid}}}))}, "", "jwks"},
		{"plain http jwks_uri", Client{ID: "f", JWKSURI: "http://keys.example.com/jwks"}, "", "https"},
		{"unknown method", Client{ID: "g", TokenEndpointAuthMethod: "tls_client_auth"}, "", "not one of"},
		{"none for a confidential client", Client{ID: "h", TokenEndpointAuthMethod: AuthNone}, "", "public clients"},
	})
}
