package jose

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// jweNodes are manual -> jose.sign -> jose.encrypt -> jose.decrypt ("b"),
// and their wires.
func jweNodes(sign, encrypt, decrypt map[string]any) ([]enginetest.Node, []string) {
	return []enginetest.Node{
		{ID: "start", Type: "core.manual"},
		{ID: "sign", Type: "jose.sign", Config: sign},
		{ID: "enc", Type: "jose.encrypt", Config: encrypt},
		{ID: "b", Type: "jose.decrypt", Config: decrypt},
	}, []string{"start:out->sign", "sign:out->enc", "enc:out->b"}
}

// jweFlow is jweNodes with a capture node on each port of "b".
func jweFlow(t testing.TB, id string, sign, encrypt, decrypt map[string]any) *engine.Flow {
	t.Helper()
	nodes, wires := jweNodes(sign, encrypt, decrypt)
	for _, p := range []string{"valid", "invalid", engine.ErrorPort} {
		nodes = append(nodes, enginetest.Node{ID: "got_" + p, Type: "test.capture"})
		wires = append(wires, "b:"+p+"->got_"+p)
	}
	return enginetest.Flow(t, id, nodes, wires...)
}

// jweFlowThen is jweNodes with next on the valid port of "b".
func jweFlowThen(t testing.TB, id string, sign, encrypt, decrypt map[string]any, next enginetest.Node) *engine.Flow {
	t.Helper()
	nodes, wires := jweNodes(sign, encrypt, decrypt)
	return enginetest.Flow(t, id, append(nodes, next), append(wires, "b:valid->"+next.ID)...)
}

func jweHeader(t testing.TB, jwe string) map[string]any {
	t.Helper()
	parts := strings.Split(jwe, ".")
	if len(parts) != 5 {
		t.Fatalf("not a compact JWE: %d segments", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestBlockEncryptDecryptNested(t *testing.T) {
	e := newBlockEnv(t)
	encAlgs := []string{"RSA-OAEP-256", "ECDH-ES+A256KW", "A256KW", "dir"}
	e.ensure(t, "main", append([]string{"ES256"}, encAlgs...)...)
	nested := map[string]any{"keyset": "main", "token": "msg.jwe", "nested": true,
		"algorithms": []string{"ES256"}, "issuer": "https://issuer.test", "audience": []string{"api"}}
	for _, alg := range encAlgs {
		t.Run(alg, func(t *testing.T) {
			flow := "nested-" + strings.ReplaceAll(alg, "+", "-")
			e.deploy(t, jweFlow(t, flow, signConfig("main", "ES256"),
				map[string]any{"keyset": "main", "alg": alg, "nested": true, "payload": "msg.token", "typ": "JWT"}, nested))
			port, msg := e.run(t, flow, engine.Msg{})
			if port != "valid" {
				t.Fatalf("port %q invalid %v error %q", port, msg["invalid"], errorText(msg))
			}
			if c := msg["claims"].(map[string]any); c["sub"] != "user-1" || c["aud"] != "api" {
				t.Errorf("claims = %v", c)
			}
			if k := msg["key"].(map[string]any); k["kid"] != msg["token_kid"] || k["state"] != "active" {
				t.Errorf("key = %v, signed by %v", k, msg["token_kid"])
			}
			h := jweHeader(t, msg["jwe"].(string))
			active, _ := e.ks.ActiveSigner(t.Context(), "main", alg)
			if h["alg"] != alg || h["enc"] != "A256GCM" || h["cty"] != "JWT" || h["typ"] != "JWT" || h["kid"] != active.Kid {
				t.Errorf("JWE header = %v", h)
			}
		})
	}

	t.Run("inner token expired", func(t *testing.T) {
		tok, _ := e.sign(t, "sign-1h", signConfig("main", "ES256"))
		e.deploy(t, enginetest.Flow(t, "nested-expired", []enginetest.Node{
			{ID: "start", Type: "core.manual"},
			{ID: "enc", Type: "jose.encrypt", Config: map[string]any{"keyset": "main", "nested": true, "payload": "msg.token"}},
			{ID: "b", Type: "jose.decrypt", Config: nested},
			{ID: "got_invalid", Type: "test.capture"},
		}, "start:out->enc", "enc:out->b", "b:invalid->got_invalid"))
		e.clk.Advance(2 * time.Hour)
		defer e.clk.Advance(-2 * time.Hour)
		port, msg := e.run(t, "nested-expired", engine.Msg{"token": tok})
		if port != "invalid" || invalidReason(msg) != string(ReasonExpired) {
			t.Errorf("port %q reason %q error %q", port, invalidReason(msg), errorText(msg))
		}
	})

	t.Run("inner token refused by the condition", func(t *testing.T) {
		e.deploy(t, jweFlow(t, "nested-rejected", signConfig("main", "ES256"),
			map[string]any{"keyset": "main", "nested": true, "payload": "msg.token"},
			withMembers(nested, "predicate", `claims.sub == "someone else"`)))
		port, msg := e.run(t, "nested-rejected", engine.Msg{})
		if port != "invalid" || invalidReason(msg) != string(ReasonClaimsRejected) {
			t.Errorf("port %q reason %q error %q", port, invalidReason(msg), errorText(msg))
		}
	})

	t.Run("inner token from another issuer", func(t *testing.T) {
		e.deploy(t, jweFlow(t, "nested-iss", withMembers(signConfig("main", "ES256"), "issuer", "'https://evil.test'"),
			map[string]any{"keyset": "main", "nested": true, "payload": "msg.token"}, nested))
		port, msg := e.run(t, "nested-iss", engine.Msg{})
		if port != "invalid" || invalidReason(msg) != string(ReasonWrongIssuer) {
			t.Errorf("port %q reason %q error %q", port, invalidReason(msg), errorText(msg))
		}
	})

	t.Run("JWE without cty JWT", func(t *testing.T) {
		e.deploy(t, jweFlow(t, "nested-cty", signConfig("main", "ES256"),
			map[string]any{"keyset": "main", "payload": "msg.token"}, nested))
		port, msg := e.run(t, "nested-cty", engine.Msg{})
		if port != "invalid" || invalidReason(msg) != string(ReasonDecryptFailed) {
			t.Errorf("port %q reason %q error %q", port, invalidReason(msg), errorText(msg))
		}
	})
}

func TestBlockEncryptDecryptPayload(t *testing.T) {
	e := newBlockEnv(t)
	ctx := t.Context()
	e.ensure(t, "main", "ECDH-ES+A256KW")
	e.deploy(t, chainFlow(t, "enc", "jose.encrypt", map[string]any{"keyset": "main", "alg": "ECDH-ES+A256KW"}, "out"))
	e.deploy(t, chainFlow(t, "dec", "jose.decrypt", map[string]any{"keyset": "main", "token": "msg.jwe"}, "valid", "invalid"))
	encrypt := func(payload any) string {
		t.Helper()
		port, msg := e.run(t, "enc", engine.Msg{"payload": payload})
		if port != "out" {
			t.Fatalf("encrypt: port %q error %q", port, errorText(msg))
		}
		return msg["jwe"].(string)
	}

	tests := []struct {
		name    string
		payload any
		want    string
	}{
		{"object as JSON", map[string]any{"a": 1}, `{"a":1}`},
		{"text as is", "hello", "hello"},
		{"bytes as they are", []byte{0x01, 0x02}, "\x01\x02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jwe := encrypt(tt.payload)
			port, msg := e.run(t, "dec", engine.Msg{"jwe": jwe})
			if port != "valid" {
				t.Fatalf("decrypt: port %q invalid %v error %q", port, msg["invalid"], errorText(msg))
			}
			d := msg["decrypted"].(map[string]any)
			if d["plaintext"] != tt.want || d["header"].(map[string]any)["alg"] != "ECDH-ES+A256KW" || d["kid"] == "" {
				t.Errorf("decrypted = %v", d)
			}
		})
	}

	t.Run("tampered", func(t *testing.T) {
		jwe := encrypt("hello")
		parts := strings.Split(jwe, ".")
		c := []byte(parts[3])
		c[0] ^= 'A' ^ 'B'
		if c[0] == parts[3][0] {
			c[0] = 'C'
		}
		parts[3] = string(c)
		port, msg := e.run(t, "dec", engine.Msg{"jwe": strings.Join(parts, ".")})
		if port != "invalid" || invalidReason(msg) != string(ReasonDecryptFailed) {
			t.Errorf("port %q reason %q", port, invalidReason(msg))
		}
	})

	t.Run("nil payload", func(t *testing.T) {
		port, msg := e.run(t, "enc", engine.Msg{})
		if port != engine.ErrorPort || !strings.Contains(errorText(msg), "nothing to encrypt") {
			t.Errorf("port %q error %q", port, errorText(msg))
		}
	})

	t.Run("old key still decrypts after rotation", func(t *testing.T) {
		jwe := encrypt("before")
		e.clk.Advance(time.Hour)
		if _, err := e.ks.Rotate(ctx, "main", RotateOptions{RetireAfter: 48 * time.Hour}); err != nil {
			t.Fatal(err)
		}
		after := encrypt("after")
		if jweHeader(t, after)["kid"] == jweHeader(t, jwe)["kid"] {
			t.Error("encrypt did not follow the rotation")
		}
		for _, tok := range []string{jwe, after} {
			if port, msg := e.run(t, "dec", engine.Msg{"jwe": tok}); port != "valid" {
				t.Errorf("port %q invalid %v", port, msg["invalid"])
			}
		}
		// Revoked: gone at once.
		if err := e.ks.Revoke(ctx, "main", jweHeader(t, jwe)["kid"].(string)); err != nil {
			t.Fatal(err)
		}
		if port, msg := e.run(t, "dec", engine.Msg{"jwe": jwe}); port != "invalid" || invalidReason(msg) != string(ReasonDecryptFailed) {
			t.Errorf("revoked key: port %q reason %q", port, invalidReason(msg))
		}
	})

	t.Run("keyset without encryption keys", func(t *testing.T) {
		e.ensure(t, "sigonly", "ES256")
		e.deploy(t, chainFlow(t, "dec-sig", "jose.decrypt", map[string]any{"keyset": "sigonly", "token": "msg.jwe"}, "valid", "invalid"))
		port, msg := e.run(t, "dec-sig", engine.Msg{"jwe": encrypt("x")})
		if port != engine.ErrorPort || !strings.Contains(errorText(msg), "no encryption key") {
			t.Errorf("port %q error %q", port, errorText(msg))
		}
	})
}

func TestBlockDecode(t *testing.T) {
	e := newBlockEnv(t)
	e.ensure(t, "main", "ES256", "A256KW")
	tok, kid := e.sign(t, "sign", signConfig("main", "ES256"))
	e.deploy(t, chainFlow(t, "dec", "jose.decode", nil, "out", "invalid"))
	e.deploy(t, chainFlow(t, "enc", "jose.encrypt", map[string]any{"keyset": "main", "alg": "A256KW"}, "out"))
	_, encMsg := e.run(t, "enc", engine.Msg{"payload": "secret"})
	jwe := encMsg["jwe"].(string)

	tests := []struct {
		name   string
		auth   string
		port   string
		kind   string
		claims bool
		reason Reason
	}{
		{"JWS", "Bearer " + tok, "out", "JWS", true, ""},
		{"JWE", "Bearer " + jwe, "out", "JWE", false, ""},
		{"garbage", "Bearer not.a.token!", "invalid", "", false, ReasonMalformed},
		{"none", "", "invalid", "", false, ReasonTokenMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port, msg := e.run(t, "dec", engine.Msg{"req": map[string]any{"headers": map[string]any{"authorization": tt.auth}}})
			if port != tt.port || invalidReason(msg) != string(tt.reason) {
				t.Fatalf("port %q reason %q, want %q %q", port, invalidReason(msg), tt.port, tt.reason)
			}
			if tt.port != "out" {
				return
			}
			d := msg["decoded"].(map[string]any)
			_, hasClaims := d["claims"]
			if d["verified"] != false || d["kind"] != tt.kind || hasClaims != tt.claims {
				t.Errorf("decoded = %v", d)
			}
			if tt.kind == "JWS" {
				h := d["header"].(map[string]any)
				if h["kid"] != kid || d["claims"].(map[string]any)["sub"] != "user-1" {
					t.Errorf("decoded = %v", d)
				}
			}
		})
	}
}

// TestBlockTracesRedact checks what a run's trace shows of the values these
// blocks write: no token, no JWE, no plaintext, also once a later block
// copies them to fields with harmless names (the plaintext is marked
// secret, tokens are redacted by their shape).
func TestBlockTracesRedact(t *testing.T) {
	e := newBlockEnv(t)
	e.ensure(t, "main", "ES256", "A256KW")
	e.deploy(t, jweFlowThen(t, "all", withMembers(signConfig("main", "ES256"), "target", "minted"),
		map[string]any{"keyset": "main", "alg": "A256KW", "payload": "'top secret plaintext'"},
		map[string]any{"keyset": "main", "token": "msg.jwe"},
		enginetest.Node{ID: "copy", Type: "core.set", Config: map[string]any{"set": map[string]any{
			"copy": "msg.decrypted.plaintext", "pw": "msg.minted", "x": "msg.jwe"}}}))
	tr, err := e.rt.Run(t.Context(), "all", "", engine.Msg{})
	if err != nil {
		t.Fatal(err)
	}
	if p := portOf(tr, "b"); p != "valid" {
		t.Fatalf("port %q: %+v", p, tr)
	}
	raw, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"eyJ", "top secret plaintext"} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("trace shows %q: %s", leak, raw)
		}
	}
	if !strings.Contains(string(raw), fmt.Sprintf("%q", "minted_kid")) {
		t.Errorf("trace lacks the (public) kid field: %s", raw)
	}
	last := tr.Steps[len(tr.Steps)-1]
	if m, _ := last.Msg.(map[string]any); last.Node != "copy" || m["copy"] != engine.Redacted || m["pw"] != engine.Redacted || m["x"] != engine.Redacted {
		t.Errorf("copies in step %s: %v", last.Node, last.Msg)
	}
}
