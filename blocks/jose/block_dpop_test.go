package jose

import (
	"strings"
	"testing"

	"github.com/flowd/flowd/blocks/jose/josetest"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// dpopMsg is an http.in message with the given Authorization and DPoP headers.
func dpopMsg(method, path, auth, proof string, client map[string]any) engine.Msg {
	h := map[string]any{}
	if auth != "" {
		h["authorization"] = auth
	}
	if proof != "" {
		h["dpop"] = proof
	}
	m := engine.Msg{"req": map[string]any{"method": method, "path": path, "headers": h}}
	if client != nil {
		m["client"] = client
	}
	return m
}

func TestBlockValidateDPoP(t *testing.T) {
	e := newBlockEnv(t)
	e.ensure(t, "main", "ES256")
	c := josetest.NewES256(t)
	jkt := c.Thumbprint(t)
	bound, _ := e.sign(t, "sign_bound", withMembers(signConfig("main", "ES256"), "claims", map[string]any{"cnf": `{"jkt": "` + jkt + `"}`}))
	plain, _ := e.sign(t, "sign_plain", signConfig("main", "ES256"))
	const base, path = "https://rs.example", "/api/x"
	policy := func(mode string, extra ...any) map[string]any {
		p := withMembers(validateConfig("main", "ES256"), "token", nil, "dpop", mode, "dpop_url_base", base)
		return withMembers(p, extra...)
	}
	proof := func(tok string, extra map[string]any) string {
		cl := dpopClaims("GET", base+path, e.clk.Now())
		cl["ath"] = josetest.ATH(tok)
		for k, v := range extra {
			cl[k] = v
		}
		return c.DPoPProof(t, cl)
	}
	e.deploy(t, chainFlow(t, "off", "jose.validate", policy("off", "dpop_url_base", nil), "valid", "invalid"))
	e.deploy(t, chainFlow(t, "allow", "jose.validate", policy("allow"), "valid", "invalid"))
	e.deploy(t, chainFlow(t, "require", "jose.validate", policy("require"), "valid", "invalid"))
	e.deploy(t, chainFlow(t, "nonce", "jose.validate", policy("allow", "dpop_nonce", true), "valid", "invalid"))

	for _, tc := range []struct {
		name, flow, auth, proof string
		port, reason, challenge string
	}{
		{"off: a bound token as Bearer", "off", "Bearer " + bound, "", "invalid", "dpop_missing", ""},
		{"off: a plain Bearer token", "off", "Bearer " + plain, "", "valid", "", ""},
		{"allow: bound token with its proof", "allow", "DPoP " + bound, proof(bound, nil), "valid", "", ""},
		{"allow: plain Bearer token", "allow", "Bearer " + plain, "", "valid", "", ""},
		{"allow: bound token as Bearer", "allow", "Bearer " + bound, "", "invalid", "dpop_missing", `DPoP realm="flowd", algs=`},
		{"allow: plain token with the DPoP scheme", "allow", "dpop " + plain, proof(plain, nil), "invalid", "dpop_key_mismatch", `error="invalid_token"`},
		{"allow: no token offers both schemes", "allow", "", "", "invalid", "token_missing", `Bearer realm="flowd", DPoP realm="flowd"`},
		{"allow: a bad token keeps its reason", "allow", "DPoP " + bound + "x", proof(bound, nil), "invalid", "malformed", `DPoP realm="flowd"`},
		{"require: plain Bearer token", "require", "Bearer " + plain, "", "invalid", "dpop_missing", "DPoP "},
		{"nonce: proof without a nonce", "nonce", "DPoP " + bound, proof(bound, nil), "invalid", "use_dpop_nonce", `error="use_dpop_nonce"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, msg := e.run(t, tc.flow, dpopMsg("GET", path, tc.auth, tc.proof, nil))
			if port != tc.port || invalidReason(msg) != tc.reason {
				t.Fatalf("port %q reason %q (%v), want %q %q", port, invalidReason(msg), msg["invalid"], tc.port, tc.reason)
			}
			inv, _ := msg["invalid"].(map[string]any)
			ch, _ := inv["challenge"].(string)
			if tc.challenge != "" && !strings.Contains(ch, tc.challenge) {
				t.Errorf("challenge %q, want it to contain %q", ch, tc.challenge)
			}
			if tc.flow == "off" && ch != "" {
				t.Errorf("dpop off sets a challenge %q", ch)
			}
			if tc.port == "valid" && strings.HasPrefix(tc.auth, "DPoP") {
				if d, _ := msg["dpop"].(map[string]any); d["jkt"] != jkt {
					t.Errorf("msg.dpop %v", msg["dpop"])
				}
			}
			if tc.flow == "nonce" && msg["dpop_nonce"] == nil {
				t.Error("no msg.dpop_nonce to send")
			}
		})
	}

	t.Run("nonce: the issued nonce is accepted", func(t *testing.T) {
		_, msg := e.run(t, "nonce", dpopMsg("GET", path, "DPoP "+bound, proof(bound, nil), nil))
		n := msg["dpop_nonce"].(string)
		port, msg := e.run(t, "nonce", dpopMsg("GET", path, "DPoP "+bound, proof(bound, map[string]any{"nonce": n}), nil))
		if port != "valid" {
			t.Fatalf("port %q %v", port, msg["invalid"])
		}
	})

	t.Run("deploy refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name, field string
			config      map[string]any
		}{
			{"a token expression with dpop", "token", policy("allow", "token", "msg.token")},
			{"HMAC proof algorithm", "dpop_algorithms", policy("allow", "dpop_algorithms", []string{"HS256"})},
			{"no public base URL", "dpop_url_base", policy("allow", "dpop_url_base", nil)},
			{"a base URL with a query", "dpop_url_base", policy("allow", "dpop_url_base", "https://rs.example/?x=1")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ve := enginetest.DeployError(t, e.rt, chainFlow(t, "bad_"+strings.ReplaceAll(tc.name, " ", "_"), "jose.validate", tc.config, "valid", "invalid"))
				if ve.Field != tc.field {
					t.Fatalf("error on field %q (%v), want %q", ve.Field, ve, tc.field)
				}
			})
		}
	})
}

func TestBlockDPoPTokenRequest(t *testing.T) {
	e := newBlockEnv(t)
	c := josetest.NewES256(t)
	const base, path = "https://id.example", "/oauth/token"
	e.deploy(t, chainFlow(t, "tok", "jose.dpop", map[string]any{"url_base": base}, "ok", "invalid"))
	e.deploy(t, chainFlow(t, "tok_nonce", "jose.dpop", map[string]any{"url_base": base, "nonce": true}, "ok", "invalid"))
	proof := func(extra map[string]any) string {
		cl := dpopClaims("POST", base+path, e.clk.Now())
		for k, v := range extra {
			cl[k] = v
		}
		return c.DPoPProof(t, cl)
	}
	forced := map[string]any{"id": "app", "dpop_bound_access_tokens": true}
	for _, tc := range []struct {
		name, flow, proof string
		client            map[string]any
		port, tokenType   string
		errCode           string
	}{
		{"a valid proof", "tok", proof(nil), nil, "ok", "DPoP", ""},
		{"no proof: Bearer", "tok", "", map[string]any{"id": "app"}, "ok", "Bearer", ""},
		{"no proof from a dpop_bound_access_tokens client", "tok", "", forced, "invalid", "", "invalid_dpop_proof"},
		{"a proof for another URL", "tok", c.DPoPProof(t, dpopClaims("POST", base+"/other", e.clk.Now())), nil, "invalid", "", "invalid_dpop_proof"},
		{"nonce required", "tok_nonce", proof(nil), nil, "invalid", "", "use_dpop_nonce"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, msg := e.run(t, tc.flow, dpopMsg("POST", path, "", tc.proof, tc.client))
			if port != tc.port {
				t.Fatalf("port %q (%v), want %q", port, msg["oauth_error"], tc.port)
			}
			if tc.port == "ok" {
				if msg["token_type"] != tc.tokenType || (tc.tokenType == "DPoP") != (msg["dpop"] != nil) {
					t.Fatalf("token_type %v dpop %v", msg["token_type"], msg["dpop"])
				}
				return
			}
			oe, _ := msg["oauth_error"].(map[string]any)
			if oe["error"] != tc.errCode || oe["status"] != 400 {
				t.Fatalf("oauth_error %v, want %s", oe, tc.errCode)
			}
			if tc.flow == "tok_nonce" && msg["dpop_nonce"] == nil {
				t.Error("no msg.dpop_nonce for the DPoP-Nonce header")
			}
		})
	}
}
