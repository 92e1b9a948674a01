package jose

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/blocks/jose/josetest"
	gojose "github.com/go-jose/go-jose/v4"
)

func TestNewValidatorRefusesBadPolicies(t *testing.T) {
	src := &staticKeySource{}
	good := testPolicy(src, "ES256")
	tests := []struct {
		name string
		edit func(*Policy)
	}{
		{"empty allow-list", func(p *Policy) { p.Algorithms = nil }},
		{"none", func(p *Policy) { p.Algorithms = []string{"ES256", "none"} }},
		{"None", func(p *Policy) { p.Algorithms = []string{"None"} }},
		{"NONE", func(p *Policy) { p.Algorithms = []string{"NONE"} }},
		{"unknown alg", func(p *Policy) { p.Algorithms = []string{"ES256K"} }},
		{"wrong case", func(p *Policy) { p.Algorithms = []string{"es256"} }},
		{"JWE alg", func(p *Policy) { p.Algorithms = []string{"RSA-OAEP-256"} }},
		{"no source", func(p *Policy) { p.Source = nil }},
		{"no issuer", func(p *Policy) { p.Issuer = "" }},
		{"no audience", func(p *Policy) { p.Audience = nil }},
		{"empty audience value", func(p *Policy) { p.Audience = []string{""} }},
		{"leeway too large", func(p *Policy) { p.Leeway = MaxLeeway + time.Second }},
		{"negative leeway", func(p *Policy) { p.Leeway = -time.Second }},
		{"negative max age", func(p *Policy) { p.MaxAge = -time.Second }},
		{"negative size", func(p *Policy) { p.MaxTokenSize = -1 }},
		{"huge size", func(p *Policy) { p.MaxTokenSize = 1<<20 + 1 }},
		{"empty type", func(p *Policy) { p.Types = []string{" "} }},
		{"empty required claim", func(p *Policy) { p.RequiredClaims = []string{""} }},
		{"crit registered", func(p *Policy) { p.CritSupported = []string{"exp"} }},
		{"crit alg", func(p *Policy) { p.CritSupported = []string{"alg"} }},
		{"crit b64", func(p *Policy) { p.CritSupported = []string{"b64"} }},
		{"crit extension", func(p *Policy) { p.CritSupported = []string{"http://example.com/ext"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			tt.edit(&p)
			v, err := NewValidator(p)
			if err == nil || v != nil {
				t.Fatalf("NewValidator accepted the policy")
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error does not wrap ErrInvalidPolicy: %v", err)
			}
		})
	}
	t.Run("good", func(t *testing.T) {
		p := good
		p.Leeway = MaxLeeway
		p.Types = []string{"at+jwt"}
		if _, err := NewValidator(p); err != nil {
			t.Fatal(err)
		}
		p.Audience, p.AudienceOptional = nil, true
		if _, err := NewValidator(p); err != nil {
			t.Fatal(err)
		}
	})
}

func TestValidateEveryAlgorithm(t *testing.T) {
	for _, alg := range allJWSAlgs {
		t.Run(alg, func(t *testing.T) {
			k := testKeyFor(t, alg, "a")
			other := testKeyFor(t, alg, "b")
			src := staticSource(other, k)
			v := mustValidator(t, testPolicy(src, alg))
			res, err := v.Validate(t.Context(), signedToken(t, k, nil, nil))
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if res.Header != (TokenHeader{Alg: alg, Kid: k.kid, Typ: "JWT"}) {
				t.Errorf("header = %+v", res.Header)
			}
			if res.Key.JWK.KeyID != k.kid || res.Key.State != StateActive {
				t.Errorf("key = %s state %s", res.Key.JWK.KeyID, res.Key.State)
			}
			if res.Claims["sub"] != "alice" || res.Claims["iss"] != testIssuer {
				t.Errorf("claims = %v", res.Claims)
			}
			if n := src.refreshes.Load(); n != 0 {
				t.Errorf("refreshed %d times for a known kid", n)
			}
			// Signed by the other key under this kid: bad signature.
			forged := signRaw(t, other, mustJSON(t, jwtHeader(k)), mustJSON(t, validClaims()))
			if _, err := v.Validate(t.Context(), forged); tokenReason(t, err) != ReasonBadSignature {
				t.Errorf("forged: %v", err)
			}
		})
	}
}

// go-jose's own signer must interoperate with the validator.
func TestValidateGoJoseSignedToken(t *testing.T) {
	for _, alg := range []string{"RS256", "PS384", "ES256", "ES512", "EdDSA", "HS512"} {
		t.Run(alg, func(t *testing.T) {
			k := testKeyFor(t, alg, "a")
			opts := (&gojose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", k.kid)
			token := josetest.Sign(t, gojose.SigningKey{Algorithm: gojose.SignatureAlgorithm(alg), Key: k.priv}, opts, validClaims())
			p := testPolicy(staticSource(k), alg)
			p.Types = []string{"application/AT+JWT"}
			if _, err := mustValidator(t, p).Validate(t.Context(), token); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestValidateClaims(t *testing.T) {
	k := testKeyFor(t, "ES256", "a")
	now := testNow.Unix()
	const leeway = 30
	type edit = func(map[string]any)
	set := func(name string, v any) edit { return func(c map[string]any) { c[name] = v } }
	del := func(name string) edit { return func(c map[string]any) { delete(c, name) } }
	tests := []struct {
		name   string
		edit   edit
		policy func(*Policy)
		want   Reason
	}{
		{"valid", nil, nil, ""},
		{"exp at the boundary", set("exp", now-leeway), nil, ""},
		{"exp just outside leeway", set("exp", now-leeway-1), nil, ReasonExpired},
		{"exp fractional just outside", set("exp", float64(now-leeway)-0.5), nil, ReasonExpired},
		{"exp missing", del("exp"), nil, ReasonMissingClaim},
		{"exp missing, not required", del("exp"), func(p *Policy) { p.RequireExp = false }, ""},
		{"exp string", set("exp", "1700000600"), nil, ReasonMalformed},
		{"exp null", set("exp", nil), nil, ReasonMalformed},
		{"exp bool", set("exp", true), nil, ReasonMalformed},
		{"exp 1e19", set("exp", 1e19), nil, ""},
		{"exp -1e19", set("exp", -1e19), nil, ReasonExpired},
		{"exp negative", set("exp", -1), nil, ReasonExpired},
		{"exp zero", set("exp", 0), nil, ReasonExpired},
		{"nbf at the boundary", set("nbf", now+leeway), nil, ""},
		{"nbf just outside leeway", set("nbf", now+leeway+1), nil, ReasonNotYetValid},
		{"nbf 1e19", set("nbf", 1e19), nil, ReasonNotYetValid},
		{"nbf -1e19", set("nbf", -1e19), nil, ""},
		{"nbf string", set("nbf", "0"), nil, ReasonMalformed},
		{"iat at the boundary", set("iat", now+leeway), nil, ""},
		{"iat just outside leeway", set("iat", now+leeway+1), nil, ReasonIssuedInFuture},
		{"iat 1e19", set("iat", 1e19), nil, ReasonIssuedInFuture},
		{"iat string", set("iat", "now"), nil, ReasonMalformed},
		{"max age ok", set("iat", now-3600-leeway), func(p *Policy) { p.MaxAge = time.Hour }, ""},
		{"max age exceeded", set("iat", now-3600-leeway-1), func(p *Policy) { p.MaxAge = time.Hour }, ReasonExpired},
		{"max age, iat -1e19", set("iat", -1e19), func(p *Policy) { p.MaxAge = time.Hour }, ReasonExpired},
		{"max age, iat missing", del("iat"), func(p *Policy) { p.MaxAge = time.Hour }, ReasonMissingClaim},
		{"iss trailing slash", set("iss", testIssuer+"/"), nil, ReasonWrongIssuer},
		{"iss case", set("iss", strings.ToUpper(testIssuer)), nil, ReasonWrongIssuer},
		{"iss missing", del("iss"), nil, ReasonMissingClaim},
		{"iss number", set("iss", 7), nil, ReasonMalformed},
		{"aud array", set("aud", []string{"other", testAudience}), nil, ""},
		{"aud wrong", set("aud", "api://other"), nil, ReasonWrongAudience},
		{"aud wrong array", set("aud", []string{"a", "b"}), nil, ReasonWrongAudience},
		{"aud empty array", set("aud", []string{}), nil, ReasonWrongAudience},
		{"aud missing", del("aud"), nil, ReasonMissingClaim},
		{"aud number", set("aud", 1), nil, ReasonMalformed},
		{"aud array with number", set("aud", []any{testAudience, 1}), nil, ReasonMalformed},
		{"aud null", set("aud", nil), nil, ReasonMalformed},
		{"aud optional", del("aud"), func(p *Policy) { p.Audience, p.AudienceOptional = nil, true }, ""},
		{"aud optional, other aud", set("aud", "x"), func(p *Policy) { p.Audience, p.AudienceOptional = nil, true }, ""},
		{"required present", nil, func(p *Policy) { p.RequiredClaims = []string{"sub"} }, ""},
		{"required missing", nil, func(p *Policy) { p.RequiredClaims = []string{"sub", "scope"} }, ReasonMissingClaim},
		{"required null", set("scope", nil), func(p *Policy) { p.RequiredClaims = []string{"scope"} }, ReasonMissingClaim},
		{"predicate true", nil, func(p *Policy) {
			p.Predicate = func(c map[string]any) (bool, error) { return c["sub"] == "alice", nil }
		}, ""},
		{"predicate false", nil, func(p *Policy) {
			p.Predicate = func(c map[string]any) (bool, error) { return c["sub"] == "bob", nil }
		}, ReasonClaimsRejected},
		{"predicate error", nil, func(p *Policy) {
			p.Predicate = func(map[string]any) (bool, error) { return true, errors.New("boom") }
		}, ReasonClaimsRejected},
		{"predicate panic", nil, func(p *Policy) {
			p.Predicate = func(map[string]any) (bool, error) { panic("boom") }
		}, ReasonClaimsRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy(staticSource(k), "ES256")
			p.Leeway = leeway * time.Second
			if tt.policy != nil {
				tt.policy(&p)
			}
			_, err := mustValidator(t, p).Validate(t.Context(), signedToken(t, k, nil, tt.edit))
			if got := tokenReason(t, err); got != tt.want {
				t.Fatalf("reason = %q, want %q (%v)", got, tt.want, err)
			}
		})
	}
}

func TestValidateClaimsJSON(t *testing.T) {
	k := testKeyFor(t, "HS256", "a")
	v := mustValidator(t, testPolicy(staticSource(k), "HS256"))
	hdr := mustJSON(t, jwtHeader(k))
	base := `"iss":"` + testIssuer + `","aud":"` + testAudience + `","exp":1700000600`
	tests := []struct {
		name, payload string
		want          Reason
	}{
		{"ok", "{" + base + "}", ""},
		{"ok with spaces", "{ " + base + " }\n", ""},
		{"duplicate exp", "{" + base + `,"exp":1}`, ReasonMalformed},
		{"duplicate escaped", "{" + base + `,"\u0065xp":1}`, ReasonMalformed},
		{"array", "[" + base + "]", ReasonMalformed},
		{"empty", "", ReasonMalformed},
		{"trailing data", "{" + base + "}x", ReasonMalformed},
		{"two objects", "{" + base + "}{}", ReasonMalformed},
		{"invalid utf-8", "{" + base + `,"x":"` + "\xff" + `"}`, ReasonMalformed},
		{"lone surrogate", "{" + base + `,"x":"\ud800"}`, ReasonMalformed},
		{"surrogate pair", "{" + base + `,"x":"\ud83d\ude00"}`, ""},
		{"exp 1e400", `{"iss":"` + testIssuer + `","aud":"` + testAudience + `","exp":1e400}`, ReasonMalformed},
		{"deep nesting", "{" + base + `,"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "}", ReasonMalformed},
		{"leading zero", "{" + base + `,"x":01}`, ReasonMalformed},
		{"single quotes", "{" + base + `,'x':1}`, ReasonMalformed},
		{"control char", "{" + base + ",\"x\":\"a\tb\"}", ReasonMalformed},
		{"NaN", "{" + base + `,"x":NaN}`, ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Validate(t.Context(), signRaw(t, k, hdr, tt.payload))
			if got := tokenReason(t, err); got != tt.want {
				t.Fatalf("reason = %q, want %q (%v)", got, tt.want, err)
			}
		})
	}
}

func TestValidateTypes(t *testing.T) {
	k := testKeyFor(t, "ES256", "a")
	tests := []struct {
		name   string
		policy []string
		typ    any // nil: no typ header
		want   Reason
	}{
		{"no policy, no typ", nil, nil, ""},
		{"no policy, any typ", nil, "whatever", ""},
		{"exact", []string{"at+jwt"}, "at+jwt", ""},
		{"case", []string{"at+jwt"}, "AT+JWT", ""},
		{"prefix in token", []string{"at+jwt"}, "application/at+jwt", ""},
		{"prefix in policy", []string{"application/at+jwt"}, "at+JWT", ""},
		{"ID token for access token", []string{"at+jwt"}, "JWT", ReasonWrongType},
		{"missing", []string{"at+jwt"}, nil, ReasonWrongType},
		{"other prefix", []string{"at+jwt"}, "text/at+jwt", ReasonWrongType},
		{"one of two", []string{"at+jwt", "jwt"}, "JWT", ""},
		{"not a string", []string{"at+jwt"}, 1, ReasonMalformed},
		{"not a string, no policy", nil, []string{"jwt"}, ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy(staticSource(k), "ES256")
			p.Types = tt.policy
			token := signedToken(t, k, func(h map[string]any) {
				delete(h, "typ")
				if tt.typ != nil {
					h["typ"] = tt.typ
				}
			}, nil)
			_, err := mustValidator(t, p).Validate(t.Context(), token)
			if got := tokenReason(t, err); got != tt.want {
				t.Fatalf("reason = %q, want %q (%v)", got, tt.want, err)
			}
		})
	}
}

func TestValidateKeyChoice(t *testing.T) {
	es := testKeyFor(t, "ES256", "a")
	es2 := testKeyFor(t, "ES256", "b")
	es384 := testKeyFor(t, "ES384", "a")
	rs := testKeyFor(t, "RS256", "a")
	withoutAlg := func(k *testKey) *testKey {
		c := *k
		c.verify.JWK.Algorithm = ""
		return &c
	}
	withUse := func(k *testKey, use string) *testKey {
		c := *k
		c.verify.JWK.Use = use
		return &c
	}
	noKid := func(h map[string]any) { delete(h, "kid") }
	tests := []struct {
		name      string
		src       *staticKeySource
		algs      []string
		signer    *testKey
		alg       string // token alg when it differs from the signer's
		hdr       func(map[string]any)
		want      Reason
		refreshes int32
	}{
		{name: "kid picks among many", src: staticSource(es2, es384, rs, es), signer: es},
		{name: "no kid, one candidate", src: staticSource(es, es384, rs), signer: es, hdr: noKid},
		{name: "no kid, two candidates", src: staticSource(es, es2), signer: es, hdr: noKid, want: ReasonUnknownKid, refreshes: 0},
		{name: "unknown kid refreshes once", src: staticSource(es2), signer: es, want: ReasonUnknownKid, refreshes: 1},
		{name: "kid found after refresh", src: &staticKeySource{keys: []VerifyKey{es2.verify}, afterRefresh: []VerifyKey{es2.verify, es.verify}}, signer: es, refreshes: 1},
		{name: "revoked key", src: &staticKeySource{keys: []VerifyKey{es.verify}, afterRefresh: []VerifyKey{es2.verify}}, signer: es, hdr: func(h map[string]any) { h["kid"] = "gone" }, want: ReasonUnknownKid, refreshes: 1},
		{name: "duplicate kid", src: staticSource(es, func() *testKey { c := *es2; c.verify.JWK.KeyID = es.kid; return &c }()), signer: es, want: ReasonUnknownKid},
		{name: "key without alg, EC", src: staticSource(withoutAlg(es)), signer: es},
		{name: "key without alg, RSA, PS256 allowed", src: staticSource(withoutAlg(rs)), algs: []string{"PS256"}, signer: rs, alg: "PS256"},
		{name: "key with alg RS256, token PS256", src: staticSource(rs), algs: []string{"RS256", "PS256"}, signer: rs, alg: "PS256", want: ReasonAlgNotAllowed},
		{name: "curve mismatch", src: staticSource(withoutAlg(es384)), algs: []string{"ES256", "ES384"}, signer: es384, alg: "ES256", hdr: func(h map[string]any) { h["kid"] = es384.kid }, want: ReasonAlgNotAllowed},
		{name: "use enc skipped", src: staticSource(withUse(es, "enc")), signer: es, want: ReasonUnknownKid, refreshes: 1},
		{name: "use empty ok", src: staticSource(withUse(es, "")), signer: es},
		{name: "alg outside allow-list", src: staticSource(es), algs: []string{"RS256"}, signer: es, want: ReasonAlgNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			algs := tt.algs
			if algs == nil {
				algs = []string{"ES256"}
			}
			signer := tt.signer
			if tt.alg != "" {
				c := *signer
				c.alg = tt.alg
				signer = &c
			}
			v := mustValidator(t, testPolicy(tt.src, algs...))
			_, err := v.Validate(t.Context(), signedToken(t, signer, tt.hdr, nil))
			if got := tokenReason(t, err); got != tt.want {
				t.Fatalf("reason = %q, want %q (%v)", got, tt.want, err)
			}
			if got := tt.src.refreshes.Load(); got != tt.refreshes {
				t.Errorf("refreshes = %d, want %d", got, tt.refreshes)
			}
		})
	}
}

func TestValidateWeakKeysAreNotCandidates(t *testing.T) {
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakRSA := &testKey{alg: "RS256", kid: "weak-rsa", priv: rsa1024, verify: VerifyKey{
		JWK: gojose.JSONWebKey{Key: &rsa1024.PublicKey, KeyID: "weak-rsa", Algorithm: "RS256", Use: "sig"}}}
	tests := []*testKey{weakRSA}
	for _, n := range []int{0, 1, 31} {
		secret := make([]byte, n)
		tests = append(tests, &testKey{alg: "HS256", kid: "weak-hs", priv: secret, verify: VerifyKey{
			JWK: gojose.JSONWebKey{Key: secret, KeyID: "weak-hs", Algorithm: "HS256", Use: "sig"}}})
	}
	for _, k := range tests {
		t.Run(k.kid, func(t *testing.T) {
			v := mustValidator(t, testPolicy(staticSource(k), k.alg))
			_, err := v.Validate(t.Context(), signedToken(t, k, nil, nil))
			if got := tokenReason(t, err); got != ReasonUnknownKid {
				t.Fatalf("reason = %q (%v)", got, err)
			}
		})
	}
}

func TestValidateKeySourceFailureIsNotATokenVerdict(t *testing.T) {
	k := testKeyFor(t, "ES256", "a")
	src := &staticKeySource{err: errors.New("idp down")}
	v := mustValidator(t, testPolicy(src, "ES256"))
	_, err := v.Validate(t.Context(), signedToken(t, k, nil, nil))
	var te *TokenError
	if !errors.Is(err, ErrKeySourceUnavailable) || errors.As(err, &te) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "eyJ") {
		t.Fatal("error carries token material")
	}
}

func TestTokenErrorsCarryNoTokenMaterial(t *testing.T) {
	k := testKeyFor(t, "HS256", "a")
	v := mustValidator(t, testPolicy(staticSource(k), "HS256"))
	secretKid := "kid-that-must-not-leak"
	tokens := []string{
		signedToken(t, k, func(h map[string]any) { h["kid"] = secretKid }, nil),
		signedToken(t, k, func(h map[string]any) { h["alg"] = "none-" + secretKid }, nil),
		signedToken(t, k, nil, func(c map[string]any) { c["iss"] = secretKid }),
		signedToken(t, k, nil, func(c map[string]any) { c["aud"] = secretKid }),
		signedToken(t, k, func(h map[string]any) { h["typ"] = secretKid }, nil),
	}
	for _, tok := range tokens {
		_, err := v.Validate(t.Context(), tok)
		if err == nil {
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, secretKid) || strings.Contains(msg, tok[:20]) || strings.Contains(msg, b64url(k.priv.([]byte))) {
			t.Errorf("error leaks token or key material: %s", msg)
		}
	}
}

func TestValidateConcurrent(t *testing.T) {
	k := testKeyFor(t, "ES256", "a")
	v := mustValidator(t, testPolicy(staticSource(k), "ES256"))
	good := signedToken(t, k, nil, nil)
	bad := signedToken(t, k, nil, func(c map[string]any) { c["iss"] = "x" })
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				tok, want := good, Reason("")
				if i%2 == 1 {
					tok, want = bad, ReasonWrongIssuer
				}
				_, err := v.Validate(context.Background(), tok)
				var te *TokenError
				got := Reason("")
				if errors.As(err, &te) {
					got = te.Reason
				}
				if got != want {
					t.Errorf("reason = %q, want %q", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A validator for access tokens of an external identity provider.
func ExampleNewValidator() {
	jwks, err := NewRemoteJWKS(RemoteJWKSOptions{URL: "https://idp.example/.well-known/jwks.json"})
	if err != nil {
		log.Fatal(err)
	}
	p := DefaultPolicy() // exp required, 8 KiB cap
	p.Algorithms = []string{"RS256", "ES256"}
	p.Source = jwks
	p.Issuer = "https://idp.example"
	p.Audience = []string{"api://orders"}
	p.Types = []string{"at+jwt"} // RFC 9068 access tokens only
	p.Leeway = 30 * time.Second
	v, err := NewValidator(p)
	if err != nil {
		log.Fatal(err) // a policy mistake is a deploy error
	}

	res, err := v.Validate(context.Background(), "eyJ...")
	var refused *TokenError
	switch {
	case errors.As(err, &refused):
		fmt.Println("invalid:", refused.Reason)
	case err != nil:
		fmt.Println("could not check the token:", err) // e.g. the IdP is down
	default:
		fmt.Println("subject:", res.Claims["sub"])
	}
}
