package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/blocks/jose/josetest"
	gojose "github.com/go-jose/go-jose/v4"
)

// dpopKey is a DPoP client as RFC 9449 §4 describes one: it holds a key
// pair and makes, for every request, a proof JWT (typ dpop+jwt, alg, the
// public key as jwk in the header; claims jti, htm, htu, iat, and ath
// when it sends an access token) signed with the private key.
type dpopKey struct{ *josetest.Signer }

func newDPoPKey(t *testing.T) *dpopKey { return &dpopKey{josetest.NewES256(t)} }

type proofOpt func(claims map[string]any, hdr *gojose.SignerOptions)

func withIAT(at time.Time) proofOpt {
	return func(c map[string]any, _ *gojose.SignerOptions) { c["iat"] = at.Unix() }
}

func withNonce(n string) proofOpt {
	return func(c map[string]any, _ *gojose.SignerOptions) { c["nonce"] = n }
}

func withPad(n int) proofOpt {
	return func(c map[string]any, _ *gojose.SignerOptions) { c["pad"] = strings.Repeat("p", n) }
}

// proof makes a DPoP proof for method and target URL; accessToken ""
// means none (the token endpoint).
func (k *dpopKey) proof(t *testing.T, method, target, accessToken string, opts ...proofOpt) string {
	t.Helper()
	claims := map[string]any{"jti": josetest.JTI(), "htm": method, "htu": target, "iat": time.Now().Unix()}
	if accessToken != "" {
		claims["ath"] = josetest.ATH(accessToken)
	}
	so := josetest.DPoPOptions()
	for _, o := range opts {
		o(claims, so)
	}
	return k.Sign(t, claims, so)
}

// privateProof puts the private key in the jwk header (a broken client).
func (k *dpopKey) privateProof(t *testing.T, method, target string) string {
	t.Helper()
	so := &gojose.SignerOptions{}
	so.WithType("dpop+jwt")
	so.WithHeader("jwk", gojose.JSONWebKey{Key: k.Key})
	return k.Sign(t, map[string]any{"jti": "private-1", "htm": method, "htu": target, "iat": time.Now().Unix()}, so)
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

// call sends a request with optional form, Authorization and DPoP headers.
func call(t *testing.T, s *server, method, target string, form url.Values, auth, proof string) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("%s %s answered %d with non-JSON %q", method, target, resp.StatusCode, raw)
		}
	}
	return a
}

// TestDPoPEndToEnd runs a DPoP client against the prebuilt token,
// protected-api and userinfo flows of a real flowd: issue, use, refresh,
// and every refusal RFC 9449 asks for.
func TestDPoPEndToEnd(t *testing.T) {
	p := startProvider(t)
	mustCmd(t, p.vars, "clients", "add", "--id", "bound", "--secret", "bound-secret-0123456789", "--scopes", "read", "--dpop-bound")
	tokenURL, helloURL, userinfoURL := p.issuer+"/oauth/token", p.issuer+"/api/hello", p.issuer+"/oauth/userinfo"
	key, thief := newDPoPKey(t), newDPoPKey(t)

	// The public client spa signs ada in and exchanges its code with a proof.
	verifier, challenge := pkcePair()
	q := p.signIn(t, newBrowser(false), authzParams("spa", spaCB, challenge), "ada", adaPassword)
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {spaCB},
		"code_verifier": {verifier}, "client_id": {"spa"}}
	tokProof := key.proof(t, "POST", tokenURL, "")
	got := call(t, p.s, "POST", tokenURL, exchange, "", tokProof)
	if got.status != 200 || got.body["token_type"] != "DPoP" {
		t.Fatalf("code exchange with DPoP: %d %v", got.status, got.body)
	}
	at, _ := got.body["access_token"].(string)
	rt, _ := got.body["refresh_token"].(string)
	if cnf, _ := decodeClaims(t, at)["cnf"].(map[string]any); cnf["jkt"] != key.Thumbprint(t) {
		t.Fatalf("access token cnf %v, want jkt %s", cnf, key.Thumbprint(t))
	}
	if rt == "" {
		t.Fatal("no refresh token")
	}

	wantDenied := func(t *testing.T, a answer, reason string) {
		t.Helper()
		www := a.header.Get("WWW-Authenticate")
		if a.status != 401 || a.body["error_description"] != reason || !strings.Contains(www, `error_description="`+reason+`"`) {
			t.Fatalf("got %d %v (WWW-Authenticate %q), want 401 %s", a.status, a.body, www, reason)
		}
	}

	t.Run("use at protected-api and userinfo", func(t *testing.T) {
		a := call(t, p.s, "GET", helloURL, nil, "DPoP "+at, key.proof(t, "GET", helloURL, at))
		if a.status != 200 || a.body["hello"] == nil {
			t.Fatalf("protected-api: %d %v", a.status, a.body)
		}
		a = call(t, p.s, "GET", userinfoURL, nil, "DPoP "+at, key.proof(t, "GET", userinfoURL, at))
		if a.status != 200 || a.body["sub"] == nil {
			t.Fatalf("userinfo: %d %v", a.status, a.body)
		}
		// RFC 9449 §6.2: introspection names the binding.
		status, _, body := postForm(t, p.s, "/oauth/introspect", url.Values{"token": {at}}, "svc", "svc-secret-0123456789")
		cnf, _ := body["cnf"].(map[string]any)
		if status != 200 || body["active"] != true || body["token_type"] != "DPoP" || cnf["jkt"] != key.Thumbprint(t) {
			t.Fatalf("introspection: %d %v", status, body)
		}
	})

	t.Run("resource refusals", func(t *testing.T) {
		used := key.proof(t, "GET", helloURL, at)
		if a := call(t, p.s, "GET", helloURL, nil, "DPoP "+at, used); a.status != 200 {
			t.Fatalf("first use: %d %v", a.status, a.body)
		}
		for _, tc := range []struct {
			name, target, auth, proof, reason, scheme string
		}{
			{"replayed proof", helloURL, "DPoP " + at, used, "dpop_replayed", "DPoP"},
			{"proof by another key", helloURL, "DPoP " + at, thief.proof(t, "GET", helloURL, at), "dpop_key_mismatch", "DPoP"},
			{"Bearer downgrade at protected-api", helloURL, "Bearer " + at, "", "dpop_missing", "DPoP"},
			{"Bearer downgrade at userinfo", userinfoURL, "Bearer " + at, "", "dpop_missing", "DPoP"},
			{"Bearer downgrade with a proof", helloURL, "Bearer " + at, key.proof(t, "GET", helloURL, at), "dpop_missing", "DPoP"},
			{"DPoP scheme without a proof", helloURL, "DPoP " + at, "", "dpop_missing", "DPoP"},
			{"htm mismatch", helloURL, "DPoP " + at, key.proof(t, "POST", helloURL, at), "dpop_invalid", "DPoP"},
			{"htu mismatch", helloURL, "DPoP " + at, key.proof(t, "GET", userinfoURL, at), "dpop_invalid", "DPoP"},
			{"iat outside the window", helloURL, "DPoP " + at, key.proof(t, "GET", helloURL, at, withIAT(time.Now().Add(-10*time.Minute))), "dpop_invalid", "DPoP"},
			{"iat in the future", helloURL, "DPoP " + at, key.proof(t, "GET", helloURL, at, withIAT(time.Now().Add(10*time.Minute))), "dpop_invalid", "DPoP"},
			{"ath of another token", helloURL, "DPoP " + at, key.proof(t, "GET", helloURL, "another token"), "dpop_invalid", "DPoP"},
			{"oversize proof", helloURL, "DPoP " + at, key.proof(t, "GET", helloURL, at, withPad(9000)), "dpop_invalid", "DPoP"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := call(t, p.s, "GET", tc.target, nil, tc.auth, tc.proof)
				wantDenied(t, a, tc.reason)
				if www := a.header.Get("WWW-Authenticate"); !strings.HasPrefix(www, tc.scheme+" ") {
					t.Errorf("WWW-Authenticate %q, want scheme %s", www, tc.scheme)
				}
			})
		}
		a := call(t, p.s, "GET", helloURL, nil, "", "")
		if www := a.header.Get("WWW-Authenticate"); a.status != 401 || !strings.Contains(www, "Bearer") || !strings.Contains(www, "DPoP") {
			t.Fatalf("no token: %d, WWW-Authenticate %q: want both schemes offered", a.status, www)
		}
	})

	t.Run("token endpoint refusals", func(t *testing.T) {
		cc := url.Values{"grant_type": {"client_credentials"}}
		for _, tc := range []struct {
			name, proof, desc string
		}{
			{"replayed proof", tokProof, "dpop_replayed"},
			{"private key in the header", key.privateProof(t, "POST", tokenURL), "private key"},
			{"htm mismatch", key.proof(t, "GET", tokenURL, ""), "htm"},
			{"htu mismatch", key.proof(t, "POST", p.issuer+"/oauth/other", ""), "htu"},
			{"iat outside the window", key.proof(t, "POST", tokenURL, "", withIAT(time.Now().Add(-5*time.Minute))), "too old"},
			{"oversize proof", key.proof(t, "POST", tokenURL, "", withPad(9000)), "longer than"},
			{"ath at the token endpoint", key.proof(t, "POST", tokenURL, "some token"), "ath"},
			{"not a JWT", "not-a-jwt", "compact JWS"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequestWithContext(t.Context(), "POST", tokenURL, strings.NewReader(cc.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("svc", "svc-secret-0123456789")
				req.Header.Set("DPoP", tc.proof)
				resp, err := p.s.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var body map[string]any
				json.NewDecoder(resp.Body).Decode(&body)
				desc, _ := body["error_description"].(string)
				if resp.StatusCode != 400 || body["error"] != "invalid_dpop_proof" || !strings.Contains(desc, tc.desc) || body["access_token"] != nil {
					t.Fatalf("got %d %v, want 400 invalid_dpop_proof saying %q", resp.StatusCode, body, tc.desc)
				}
			})
		}
		t.Run("dpop_bound_access_tokens client without a proof", func(t *testing.T) {
			status, _, body := postForm(t, p.s, "/oauth/token", cc, "bound", "bound-secret-0123456789")
			if status != 400 || body["error"] != "invalid_dpop_proof" {
				t.Fatalf("got %d %v", status, body)
			}
		})
		t.Run("Bearer still issued without a proof", func(t *testing.T) {
			status, _, body := postForm(t, p.s, "/oauth/token", cc, "svc", "svc-secret-0123456789")
			if status != 200 || body["token_type"] != "Bearer" {
				t.Fatalf("got %d %v", status, body)
			}
			bat := body["access_token"].(string)
			if _, has := decodeClaims(t, bat)["cnf"]; has {
				t.Fatal("a Bearer token carries cnf")
			}
			if a := call(t, p.s, "GET", helloURL, nil, "Bearer "+bat, ""); a.status != 200 {
				t.Fatalf("Bearer at protected-api: %d %v", a.status, a.body)
			}
			// A Bearer token sent with the DPoP scheme is not bound to the proof's key.
			wantDenied(t, call(t, p.s, "GET", helloURL, nil, "DPoP "+bat, key.proof(t, "GET", helloURL, bat)), "dpop_key_mismatch")
		})
	})

	t.Run("refresh is bound to the key", func(t *testing.T) {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"spa"}}
		for _, tc := range []struct{ name, proof string }{
			{"no proof", ""},
			{"another key", thief.proof(t, "POST", tokenURL, "")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := call(t, p.s, "POST", tokenURL, form, "", tc.proof)
				if a.status != 400 || a.body["error"] != "invalid_dpop_proof" {
					t.Fatalf("got %d %v", a.status, a.body)
				}
			})
		}
		// The refusals spent nothing: the holder of the key refreshes.
		a := call(t, p.s, "POST", tokenURL, form, "", key.proof(t, "POST", tokenURL, ""))
		if a.status != 200 || a.body["token_type"] != "DPoP" || a.body["refresh_token"] == nil {
			t.Fatalf("refresh with the key: %d %v", a.status, a.body)
		}
		nat := a.body["access_token"].(string)
		if cnf, _ := decodeClaims(t, nat)["cnf"].(map[string]any); cnf["jkt"] != key.Thumbprint(t) {
			t.Fatalf("refreshed token cnf %v", cnf)
		}
		if u := call(t, p.s, "GET", userinfoURL, nil, "DPoP "+nat, key.proof(t, "GET", userinfoURL, nat)); u.status != 200 {
			t.Fatalf("userinfo with the refreshed token: %d %v", u.status, u.body)
		}
	})

	t.Run("discovery", func(t *testing.T) {
		a := call(t, p.s, "GET", p.issuer+"/.well-known/openid-configuration", nil, "", "")
		algs, _ := a.body["dpop_signing_alg_values_supported"].([]any)
		if len(algs) == 0 || algs[0] != "ES256" {
			t.Fatalf("dpop_signing_alg_values_supported = %v", a.body["dpop_signing_alg_values_supported"])
		}
	})

	t.Run("nonce challenge", func(t *testing.T) {
		// A person turns server nonces on in the token flow's DPoP node.
		p.redeployNode(t, "token", "dpop", map[string]any{"nonce": true})

		cc := url.Values{"grant_type": {"client_credentials"}}
		send := func(proof string) answer {
			req, _ := http.NewRequestWithContext(t.Context(), "POST", tokenURL, strings.NewReader(cc.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("svc", "svc-secret-0123456789")
			req.Header.Set("DPoP", proof)
			resp, err := p.s.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			a := answer{status: resp.StatusCode, header: resp.Header}
			json.NewDecoder(resp.Body).Decode(&a.body)
			return a
		}
		a := send(key.proof(t, "POST", tokenURL, ""))
		nonce := a.header.Get("DPoP-Nonce")
		if a.status != 400 || a.body["error"] != "use_dpop_nonce" || nonce == "" {
			t.Fatalf("without a nonce: %d %v, DPoP-Nonce %q", a.status, a.body, nonce)
		}
		if a := send(key.proof(t, "POST", tokenURL, "", withNonce("made-up"))); a.status != 400 || a.body["error"] != "use_dpop_nonce" {
			t.Fatalf("a made-up nonce: %d %v", a.status, a.body)
		}
		a = send(key.proof(t, "POST", tokenURL, "", withNonce(nonce)))
		if a.status != 200 || a.body["token_type"] != "DPoP" || a.header.Get("DPoP-Nonce") == "" {
			t.Fatalf("with the nonce: %d %v", a.status, a.body)
		}
	})
}
