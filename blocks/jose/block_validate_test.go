package jose

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

func TestBlockSignValidateRoundTrip(t *testing.T) {
	e := newBlockEnv(t)
	for _, alg := range []string{"RS256", "ES256", "EdDSA", "HS256"} {
		t.Run(alg, func(t *testing.T) {
			keyset := "rt-" + strings.ToLower(alg)
			e.ensure(t, keyset, alg)
			tok, kid := e.sign(t, "sign-"+alg, withMembers(signConfig(keyset, alg),
				"typ", "at+jwt", "claims", map[string]string{"roles": "['admin', 'ops']", "scope": "'read'"}))
			active, err := e.ks.ActiveSigner(t.Context(), keyset, alg)
			if err != nil {
				t.Fatal(err)
			}
			if kid != active.Kid {
				t.Errorf("token_kid = %q, want the active kid %q", kid, active.Kid)
			}

			// Once with the token from an expression, once as a bearer token.
			e.deploy(t, chainFlow(t, "val-"+alg, "jose.validate",
				withMembers(validateConfig(keyset, alg), "types", []string{"at+jwt"}), "valid", "invalid"))
			e.deploy(t, chainFlow(t, "bearer-"+alg, "jose.validate",
				withMembers(validateConfig(keyset, alg), "token", nil), "valid", "invalid"))
			for _, run := range []struct {
				flow string
				msg  engine.Msg
			}{
				{"val-" + alg, engine.Msg{"token": tok}},
				{"bearer-" + alg, engine.Msg{"req": map[string]any{"headers": map[string]any{"authorization": "bEaReR  " + tok}}}},
			} {
				port, msg := e.run(t, run.flow, run.msg)
				if port != "valid" {
					t.Fatalf("%s: port %q, invalid %v, error %q", run.flow, port, msg["invalid"], errorText(msg))
				}
				claims := msg["claims"].(map[string]any)
				if claims["sub"] != "user-1" || claims["iss"] != "https://issuer.test" || claims["aud"] != "api" ||
					claims["scope"] != "read" || !slices.Equal(claims["roles"].([]any), []any{"admin", "ops"}) {
					t.Errorf("%s: claims = %v", run.flow, claims)
				}
				hdr := msg["token_header"].(map[string]any)
				if hdr["alg"] != alg || hdr["kid"] != kid || hdr["typ"] != "at+jwt" {
					t.Errorf("%s: token_header = %v", run.flow, hdr)
				}
				key := msg["key"].(map[string]any)
				if key["kid"] != kid || key["state"] != "active" {
					t.Errorf("%s: key = %v", run.flow, key)
				}
				if _, ok := msg["invalid"]; ok {
					t.Errorf("%s: msg.invalid set on a valid token", run.flow)
				}
			}
		})
	}
}

// noneToken re-signs tok's payload with alg "none".
func noneToken(tok string) string {
	parts := strings.Split(tok, ".")
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
}

// flipSignature changes one character in the middle of the signature.
func flipSignature(tok string) string {
	i := strings.LastIndexByte(tok, '.') + 10
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

func TestBlockValidateInvalidReasons(t *testing.T) {
	e := newBlockEnv(t)
	for _, name := range []string{"main", "other"} {
		e.ensure(t, name, "ES256")
	}
	tok, _ := e.sign(t, "sign", signConfig("main", "ES256"))
	foreign, _ := e.sign(t, "sign-other", signConfig("other", "ES256"))
	policy := validateConfig("main", "ES256")

	tests := []struct {
		name    string
		config  map[string]any
		msg     engine.Msg
		advance time.Duration
		reason  Reason
	}{
		{"expired", policy, engine.Msg{"token": tok}, 2 * time.Hour, ReasonExpired},
		{"within leeway", policy, engine.Msg{"token": tok}, time.Hour + 20*time.Second, ""},
		{"not yet valid", policy, engine.Msg{"token": tok}, -10 * time.Minute, ReasonNotYetValid},
		{"wrong audience", withMembers(policy, "audience", []string{"billing"}), engine.Msg{"token": tok}, 0, ReasonWrongAudience},
		{"wrong issuer", withMembers(policy, "issuer", "https://evil.test"), engine.Msg{"token": tok}, 0, ReasonWrongIssuer},
		{"bad signature", policy, engine.Msg{"token": flipSignature(tok)}, 0, ReasonBadSignature},
		{"alg none", policy, engine.Msg{"token": noneToken(tok)}, 0, ReasonAlgNotAllowed},
		{"alg not in the list", withMembers(policy, "algorithms", []string{"RS256"}), engine.Msg{"token": tok}, 0, ReasonAlgNotAllowed},
		{"another keyset's key", policy, engine.Msg{"token": foreign}, 0, ReasonUnknownKid},
		{"wrong type", withMembers(policy, "types", []string{"at+jwt"}), engine.Msg{"token": tok}, 0, ReasonWrongType},
		{"missing claim", withMembers(policy, "required_claims", []string{"email"}), engine.Msg{"token": tok}, 0, ReasonMissingClaim},
		{"too large", withMembers(policy, "max_token_bytes", 64), engine.Msg{"token": tok}, 0, ReasonTooLarge},
		{"max age", withMembers(policy, "max_age", "10m"), engine.Msg{"token": tok}, 30 * time.Minute, ReasonExpired},
		{"not a token", policy, engine.Msg{"token": "not-a-token"}, 0, ReasonMalformed},
		{"JWE where a JWS belongs", policy, engine.Msg{"token": "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"}, 0, ReasonMalformed},
		{"token expression gives a number", withMembers(policy, "token", "42"), engine.Msg{}, 0, ReasonMalformed},
		{"no token", policy, engine.Msg{}, 0, ReasonTokenMissing},
		{"no bearer header", withMembers(policy, "token", nil), engine.Msg{"req": map[string]any{"headers": map[string]any{}}}, 0, ReasonTokenMissing},
		{"basic auth is not a bearer token", withMembers(policy, "token", nil),
			engine.Msg{"req": map[string]any{"headers": map[string]any{"authorization": "Basic " + tok}}}, 0, ReasonTokenMissing},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flow := "v" + string(rune('a'+i))
			e.deploy(t, chainFlow(t, flow, "jose.validate", tt.config, "valid", "invalid"))
			e.clk.Advance(tt.advance)
			defer e.clk.Advance(-tt.advance)
			// A stale msg.claims from an earlier step must not survive.
			tt.msg["claims"] = map[string]any{"sub": "stale"}
			port, msg := e.run(t, flow, tt.msg)
			if tt.reason == "" {
				if port != "valid" {
					t.Fatalf("port %q, invalid %v, error %q", port, msg["invalid"], errorText(msg))
				}
				return
			}
			if port != "invalid" {
				t.Fatalf("port %q, want invalid (error %q)", port, errorText(msg))
			}
			if got := invalidReason(msg); got != string(tt.reason) {
				t.Errorf("reason %q, want %q (detail %v)", got, tt.reason, msg["invalid"])
			}
			detail := msg["invalid"].(map[string]any)["detail"].(string)
			if strings.Contains(detail, "eyJ") {
				t.Errorf("detail carries token material: %q", detail)
			}
			for _, k := range []string{"claims", "token_header"} {
				if _, ok := msg[k]; ok {
					t.Errorf("msg.%s survives on the invalid port", k)
				}
			}
		})
	}
}

func TestBlockValidateKeySourceFailureIsAnError(t *testing.T) {
	e := newBlockEnv(t)
	e.ensure(t, "main", "ES256")
	tok, _ := e.sign(t, "sign", signConfig("main", "ES256"))
	e.deploy(t, chainFlow(t, "v", "jose.validate", validateConfig("no-such-keyset", "ES256"), "valid", "invalid"))
	port, msg := e.run(t, "v", engine.Msg{"token": tok})
	if port != engine.ErrorPort || !strings.Contains(errorText(msg), "keyset not found") {
		t.Errorf("port %q, error %q: want the error port naming the missing keyset", port, errorText(msg))
	}
}

func TestBlockValidatePredicate(t *testing.T) {
	e := newBlockEnv(t)
	e.ensure(t, "main", "ES256")
	admin, _ := e.sign(t, "sign-admin", withMembers(signConfig("main", "ES256"), "claims", map[string]string{"roles": "['admin']"}))
	user, _ := e.sign(t, "sign-user", withMembers(signConfig("main", "ES256"), "claims", map[string]string{"roles": "['user']"}))
	none, _ := e.sign(t, "sign-none", signConfig("main", "ES256"))

	tests := []struct {
		name, predicate string
		token           string
		reason          Reason
	}{
		{"admin has the role", `"admin" in claims.roles`, admin, ""},
		{"user lacks the role", `"admin" in claims.roles`, user, ReasonClaimsRejected},
		{"no roles at all", `"admin" in claims.roles`, none, ReasonClaimsRejected},
		{"header is visible", `header.alg == "ES256" && header.typ == "JWT"`, user, ""},
		{"header refuses", `header.alg == "RS256"`, user, ReasonClaimsRejected},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flow := "p" + string(rune('a'+i))
			e.deploy(t, chainFlow(t, flow, "jose.validate", withMembers(validateConfig("main", "ES256"), "predicate", tt.predicate), "valid", "invalid"))
			port, msg := e.run(t, flow, engine.Msg{"token": tt.token})
			want := "valid"
			if tt.reason != "" {
				want = "invalid"
			}
			if port != want || invalidReason(msg) != string(tt.reason) {
				t.Errorf("port %q reason %q, want %q %q (error %q)", port, invalidReason(msg), want, tt.reason, errorText(msg))
			}
		})
	}
}

func TestBlockDeployRefusals(t *testing.T) {
	e := newBlockEnv(t)
	policy := validateConfig("main", "ES256")
	decrypt := map[string]any{"keyset": "main", "token": "msg.jwe"}
	tests := []struct {
		name     string
		typ      string
		config   map[string]any
		field    string
		contains string
		position bool // an expression error with line and column
	}{
		{"rotate retire_after under ttl + jwks cache", "jose.rotate", map[string]any{"keyset": "main", "retire_after": "1h"},
			"retire_after", "1h0m0s + 15m0s = 1h15m0s", false},
		{"rotate retire_after under custom sums", "jose.rotate",
			map[string]any{"keyset": "main", "retire_after": "5h", "max_token_ttl": "4h", "jwks_max_age": "2h"},
			"retire_after", "4h0m0s + 2h0m0s = 6h0m0s", false},
		{"rotate unknown alg for a new keyset", "jose.rotate", map[string]any{"keyset": "main", "algs": []string{"RS1"}},
			"algs", "unsupported algorithm", false},
		{"rotate bad keyset name", "jose.rotate", map[string]any{"keyset": "../etc"}, "keyset", "use letters", false},
		{"validate empty algorithms", "jose.validate", withMembers(policy, "algorithms", []string{}), "algorithms", "empty", false},
		{"validate alg none", "jose.validate", withMembers(policy, "algorithms", []string{"ES256", "none"}), "algorithms", "never allowed", false},
		{"validate alg None", "jose.validate", withMembers(policy, "algorithms", []string{"None"}), "algorithms", "never allowed", false},
		{"validate unknown alg", "jose.validate", withMembers(policy, "algorithms", []string{"ES257"}), "algorithms", "unknown algorithm", false},
		{"validate leeway 10m", "jose.validate", withMembers(policy, "leeway", "10m"), "leeway", "at most 5m", false},
		{"validate no issuer", "jose.validate", withMembers(policy, "issuer", nil), "issuer", "required", false},
		{"validate no audience", "jose.validate", withMembers(policy, "audience", nil), "audience", "audience_optional", false},
		{"validate empty type", "jose.validate", withMembers(policy, "types", []string{""}), "types", "empty", false},
		{"validate bad predicate", "jose.validate", withMembers(policy, "predicate", "claims.sub ==\n  (\"a\""), "predicate", "", true},
		{"validate predicate not bool", "jose.validate", withMembers(policy, "predicate", "len(claims)"), "predicate", "", false},
		{"validate predicate sees no msg", "jose.validate", withMembers(policy, "predicate", "msg.x == 1"), "predicate", "", true},
		{"validate HMAC from a remote JWKS", "jose.validate",
			withMembers(policy, "keyset", nil, "source", "remote", "jwks_url", "https://idp.test/jwks", "algorithms", []string{"HS256"}),
			"algorithms", "shared secret", false},
		{"validate remote over http", "jose.validate",
			withMembers(policy, "keyset", nil, "source", "remote", "jwks_url", "http://idp.test/jwks"), "jwks_url", "loopback", false},
		{"validate remote without URL", "jose.validate", withMembers(policy, "keyset", nil, "source", "remote"), "jwks_url", "required", false},
		{"validate keyset with a URL", "jose.validate", withMembers(policy, "jwks_url", "https://idp.test/jwks"), "jwks_url", "only for source remote", false},
		{"validate no keyset", "jose.validate", withMembers(policy, "keyset", nil), "keyset", "required", false},
		{"validate token size over 1 MiB", "jose.validate", withMembers(policy, "max_token_bytes", 2<<20), "max_token_bytes", "at most", false},
		{"sign ttl over 24h", "jose.sign", map[string]any{"keyset": "main", "ttl": "48h"}, "ttl", "at most 24h", false},
		{"sign bad typ", "jose.sign", map[string]any{"keyset": "main", "typ": "at jwt"}, "typ", "printable", false},
		{"sign dotted target", "jose.sign", map[string]any{"keyset": "main", "target": "a.b"}, "target", "plain field name", false},
		{"sign encryption alg", "jose.sign", map[string]any{"keyset": "main", "alg": "A256KW"}, "alg", "must be one of", false},
		{"sign bad claim expression", "jose.sign", map[string]any{"keyset": "main", "claims": map[string]string{"x": "1 +"}}, "claims.x", "", true},
		{"jwks max_age fractions", "jose.jwks", map[string]any{"keyset": "main", "max_age": "1500ms"}, "max_age", "whole seconds", false},
		{"generate_key use mismatch", "jose.generate_key", map[string]any{"keyset": "main", "alg": "ES256", "use": "enc"}, "use", "use \"sig\"", false},
		{"encrypt dir with A128GCM", "jose.encrypt", map[string]any{"keyset": "main", "alg": "dir", "enc": "A128GCM"}, "enc", "A256GCM", false},
		{"decrypt policy field without nested", "jose.decrypt", withMembers(decrypt, "issuer", "https://issuer.test"), "issuer", "nested", false},
		{"decrypt nested without issuer", "jose.decrypt", withMembers(decrypt, "nested", true, "audience", []string{"api"}), "issuer", "required", false},
		{"decrypt legacy RSA1_5", "jose.decrypt", withMembers(decrypt, "key_algorithms", []string{"RSA1_5"}), "key_algorithms", "RSA1_5", false},
		{"decrypt CBC", "jose.decrypt", withMembers(decrypt, "content_encryptions", []string{"A128CBC-HS256"}), "content_encryptions", "CBC", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := chainFlow(t, fmt.Sprintf("d%d", i), tt.typ, tt.config)
			ve := enginetest.DeployError(t, e.rt, f)
			if ve.Node != "b" || ve.Field != tt.field || !strings.Contains(ve.Msg, tt.contains) {
				t.Errorf("got node %q field %q msg %q; want node b field %q containing %q", ve.Node, ve.Field, ve.Msg, tt.field, tt.contains)
			}
			if tt.position && (ve.Line == 0 || ve.Column == 0) {
				t.Errorf("expression error without a position: %+v", ve)
			}
		})
	}
}

func TestBlockSignErrors(t *testing.T) {
	e := newBlockEnv(t)
	e.ensure(t, "main", "ES256")
	tests := []struct {
		name     string
		config   map[string]any
		contains string
	}{
		{"no key for the alg", signConfig("main", "RS256"), "no active RS256 key"},
		{"unknown keyset", signConfig("nope", "ES256"), "keyset not found"},
		{"claim contradicts issuer", withMembers(signConfig("main", "ES256"), "claims", map[string]string{"iss": "msg.iss"}), "iss in claims differs"},
		{"audience of the wrong type", withMembers(signConfig("main", "ES256"), "audience", "42"), "want a text or a list"},
		{"issuer of the wrong type", withMembers(signConfig("main", "ES256"), "issuer", "[1]"), "want text"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flow := "s" + string(rune('a'+i))
			e.deploy(t, chainFlow(t, flow, "jose.sign", tt.config, "out"))
			port, msg := e.run(t, flow, engine.Msg{"iss": "https://evil.test"})
			if port != engine.ErrorPort || !strings.Contains(errorText(msg), tt.contains) {
				t.Errorf("port %q error %q, want error containing %q", port, errorText(msg), tt.contains)
			}
			if _, ok := msg["token"]; ok {
				t.Error("a token was written despite the error")
			}
		})
	}
}

// BenchmarkValidateBlock compares a run manual -> jose.validate through
// the engine with Validator.Validate on the same policy and token.
func BenchmarkValidateBlock(b *testing.B) {
	e := newBlockEnv(b)
	for _, alg := range []string{"ES256", "RS256", "EdDSA", "HS256"} {
		keyset := "bench-" + strings.ToLower(alg)
		e.ensure(b, keyset, alg)
		tok, _ := e.sign(b, "sign-"+alg, signConfig(keyset, alg))
		flow := "val-" + alg
		e.deploy(b, enginetest.Flow(b, flow, []enginetest.Node{
			{ID: "start", Type: "core.manual"},
			{ID: "b", Type: "jose.validate", Config: validateConfig(keyset, alg)},
		}, "start:out->b"))
		p := DefaultPolicy()
		p.Algorithms, p.Source, p.Issuer, p.Audience = []string{alg}, e.ks.Source(keyset), "https://issuer.test", []string{"api"}
		p.Leeway, p.Now = 30*time.Second, e.clk.Now
		v, err := NewValidator(p)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(alg+"/engine", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tr, err := e.rt.Run(b.Context(), flow, "", engine.Msg{"token": tok})
				if err != nil || portOf(tr, "b") != "valid" {
					b.Fatalf("run: %v, port %q", err, portOf(tr, "b"))
				}
			}
		})
		b.Run(alg+"/direct", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Validate(b.Context(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestBlockValidateRemoteJWKS validates against an identity provider's
// JWKS over (loopback) HTTP, as a flow of a relying party would.
func TestBlockValidateRemoteJWKS(t *testing.T) {
	e := newBlockEnv(t)
	e.ensure(t, "idp", "ES256", "RS256")
	var fetches atomic.Int32
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		body, etag, err := e.ks.JWKS(r.Context(), "idp")
		if err != nil {
			http.Error(w, "no keyset", 500)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Cache-Control", "max-age=300")
		w.Write(body)
	}))
	defer idp.Close()
	es, _ := e.sign(t, "sign-es", signConfig("idp", "ES256"))
	rs, _ := e.sign(t, "sign-rs", signConfig("idp", "RS256"))
	other := newBlockEnv(t) // another issuer's key: same kid shape, unknown here
	if err := other.ks.Ensure(t.Context(), "x", "ES256"); err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.sign(t, "sign", signConfig("x", "ES256"))

	cfg := withMembers(validateConfig("", "ES256", "RS256"), "keyset", nil, "source", "remote", "jwks_url", idp.URL+"/jwks")
	e.deploy(t, chainFlow(t, "remote", "jose.validate", cfg, "valid", "invalid"))
	for _, tt := range []struct {
		name, token string
		reason      Reason
	}{
		{"ES256", es, ""},
		{"RS256", rs, ""},
		{"unknown issuer key", foreign, ReasonUnknownKid},
	} {
		port, msg := e.run(t, "remote", engine.Msg{"token": tt.token})
		if invalidReason(msg) != string(tt.reason) || (tt.reason == "" && port != "valid") {
			t.Errorf("%s: port %q reason %q error %q", tt.name, port, invalidReason(msg), errorText(msg))
		}
		if tt.reason == "" {
			if _, hasState := msg["key"].(map[string]any)["state"]; hasState {
				t.Errorf("%s: a remote key has a lifecycle state: %v", tt.name, msg["key"])
			}
		}
	}
	// One fetch for the set; the unknown kid asked for a refresh within the
	// 30 s cooldown, so it got the cached set. After the cooldown it refetches.
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d JWKS fetches, want 1", n)
	}
	e.clk.Advance(31 * time.Second)
	if _, msg := e.run(t, "remote", engine.Msg{"token": foreign}); invalidReason(msg) != string(ReasonUnknownKid) {
		t.Errorf("foreign token after the cooldown: %v", msg["invalid"])
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("%d JWKS fetches, want 2", n)
	}
}

// TestBlockConcurrentRunsDuringRotation runs sign, validate, encrypt and
// decrypt from many goroutines while the keyset rotates (run with -race).
func TestBlockConcurrentRunsDuringRotation(t *testing.T) {
	e := newBlockEnv(t)
	e.ensure(t, "main", "ES256", "A256KW")
	e.deploy(t, jweFlowThen(t, "all", signConfig("main", "ES256"),
		map[string]any{"keyset": "main", "alg": "A256KW", "nested": true, "payload": "msg.token"},
		map[string]any{"keyset": "main", "token": "msg.jwe", "nested": true,
			"algorithms": []string{"ES256"}, "issuer": "https://issuer.test", "audience": []string{"api"}},
		enginetest.Node{ID: "v", Type: "jose.validate", Config: validateConfig("main", "ES256")}))
	errs := make(chan string, 100)
	runWhile(4, func(int, int) bool {
		tr, err := e.rt.Run(t.Context(), "all", "", engine.Msg{})
		if err != nil || portOf(tr, "b") != "valid" || portOf(tr, "v") != "valid" {
			select {
			case errs <- fmt.Sprintf("run: %v, decrypt %q, validate %q", err, portOf(tr, "b"), portOf(tr, "v")):
			default:
			}
		}
		return true
	}, func() {
		for range 5 {
			time.Sleep(20 * time.Millisecond)
			if _, err := e.ks.Rotate(t.Context(), "main", RotateOptions{RetireAfter: time.Hour}); err != nil {
				t.Error(err)
			}
		}
	})
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}
