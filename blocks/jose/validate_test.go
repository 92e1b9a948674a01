package jose

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
)

// Test helpers of the validation tests carry a vt prefix: the package's
// other test files belong to other people.

const (
	vtIssuer   = "https://idp.example"
	vtAudience = "api://flowd"
)

// vtNow is the fixed clock of the validation tests.
var vtNow = time.Unix(1_700_000_000, 0)

// vtStaticSource is a KeySource over fixed keys. After a refresh it serves
// afterRefresh when that is set (a rotation seen by the IdP), and it
// counts calls.
type vtStaticSource struct {
	keys         []VerifyKey
	afterRefresh []VerifyKey
	err          error
	calls        atomic.Int32
	refreshes    atomic.Int32
	refreshed    atomic.Bool
}

func (s *vtStaticSource) VerifyKeys(_ context.Context, refresh bool) ([]VerifyKey, error) {
	s.calls.Add(1)
	if refresh {
		s.refreshes.Add(1)
		s.refreshed.Store(true)
	}
	if s.err != nil {
		return nil, s.err
	}
	if s.refreshed.Load() && s.afterRefresh != nil {
		return s.afterRefresh, nil
	}
	return s.keys, nil
}

func vtSource(keys ...*vtKey) *vtStaticSource {
	s := &vtStaticSource{}
	for _, k := range keys {
		s.keys = append(s.keys, k.verify)
	}
	return s
}

// vtKey is a test key: its private half signs, verify is what a source
// hands the validator.
type vtKey struct {
	alg    string
	kid    string
	priv   any // *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey, []byte
	verify VerifyKey
}

var (
	vtKeyCacheMu sync.Mutex
	vtKeyCache   = map[string]*vtKey{}
)

// vtKeyFor returns the cached test key for alg (RSA generation is slow);
// name tells apart several keys of one alg.
func vtKeyFor(t testing.TB, alg, name string) *vtKey {
	t.Helper()
	vtKeyCacheMu.Lock()
	defer vtKeyCacheMu.Unlock()
	id := alg + "/" + name
	if k, ok := vtKeyCache[id]; ok {
		return k
	}
	k := vtNewKey(t, alg, "kid-"+alg+"-"+name)
	vtKeyCache[id] = k
	return k
}

func vtNewKey(t testing.TB, alg, kid string) *vtKey {
	t.Helper()
	var priv, pub any
	var err error
	switch alg[:2] {
	case "RS", "PS":
		var k *rsa.PrivateKey
		k, err = rsa.GenerateKey(rand.Reader, 2048)
		priv, pub = k, &k.PublicKey
	case "ES":
		curve := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		var k *ecdsa.PrivateKey
		k, err = ecdsa.GenerateKey(curve, rand.Reader)
		priv, pub = k, &k.PublicKey
	case "Ed":
		var p ed25519.PublicKey
		var k ed25519.PrivateKey
		p, k, err = ed25519.GenerateKey(rand.Reader)
		priv, pub = k, p
	case "HS":
		secret := make([]byte, jwsAlgTable[alg].minSecret)
		_, err = rand.Read(secret)
		priv, pub = secret, secret
	default:
		t.Fatalf("no test key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &vtKey{alg: alg, kid: kid, priv: priv, verify: VerifyKey{
		JWK:   gojose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"},
		State: StateActive,
	}}
}

func vtB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func vtJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// vtSignRaw signs header and payload exactly as given (any bytes, any
// alg name) with k's private key using the stdlib primitives for k.alg.
func vtSignRaw(t testing.TB, k *vtKey, header, payload string) string {
	t.Helper()
	input := vtB64([]byte(header)) + "." + vtB64([]byte(payload))
	return input + "." + vtB64(vtSignature(t, k.alg, k.priv, []byte(input)))
}

func vtSignature(t testing.TB, alg string, priv any, input []byte) []byte {
	t.Helper()
	hashes := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}
	h := hashes[alg[len(alg)-3:]]
	digest := func() []byte {
		hh := h.New()
		hh.Write(input)
		return hh.Sum(nil)
	}
	var sig []byte
	var err error
	switch key := priv.(type) {
	case *rsa.PrivateKey:
		if strings.HasPrefix(alg, "PS") {
			sig, err = rsa.SignPSS(rand.Reader, key, h, digest(), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, key, h, digest())
		}
	case *ecdsa.PrivateKey:
		r, s, e := ecdsa.Sign(rand.Reader, key, digest())
		if e != nil {
			t.Fatal(e)
		}
		size := (key.Curve.Params().BitSize + 7) / 8
		sig = make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
	case ed25519.PrivateKey:
		sig = ed25519.Sign(key, input)
	case []byte:
		newHash := map[crypto.Hash]func() hash.Hash{crypto.SHA256: sha256.New, crypto.SHA384: sha512.New384, crypto.SHA512: sha512.New}[h]
		mac := hmac.New(newHash, key)
		mac.Write(input)
		sig = mac.Sum(nil)
	default:
		t.Fatalf("cannot sign with %T", priv)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// vtClaims are valid claims for vtPolicy at vtNow.
func vtClaims() map[string]any {
	return map[string]any{
		"iss": vtIssuer, "aud": vtAudience, "sub": "alice",
		"iat": vtNow.Unix() - 10, "exp": vtNow.Unix() + 600,
	}
}

func vtHeader(k *vtKey) map[string]any {
	return map[string]any{"alg": k.alg, "kid": k.kid, "typ": "JWT"}
}

// vtToken signs claims with k under the standard header, after edit.
func vtToken(t testing.TB, k *vtKey, editHeader func(map[string]any), editClaims func(map[string]any)) string {
	t.Helper()
	h, c := vtHeader(k), vtClaims()
	if editHeader != nil {
		editHeader(h)
	}
	if editClaims != nil {
		editClaims(c)
	}
	return vtSignRaw(t, k, vtJSON(t, h), vtJSON(t, c))
}

func vtPolicy(src KeySource, algs ...string) Policy {
	p := DefaultPolicy()
	p.Algorithms = algs
	p.Source = src
	p.Issuer = vtIssuer
	p.Audience = []string{vtAudience}
	p.Now = func() time.Time { return vtNow }
	return p
}

func vtValidator(t testing.TB, p Policy) *Validator {
	t.Helper()
	v, err := NewValidator(p)
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	return v
}

// vtReason returns the reason of a *TokenError, failing on other errors.
func vtReason(t testing.TB, err error) Reason {
	t.Helper()
	if err == nil {
		return ""
	}
	var te *TokenError
	if !errors.As(err, &te) {
		t.Fatalf("error is not a *TokenError: %v", err)
	}
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("TokenError does not unwrap to ErrInvalidToken")
	}
	return te.Reason
}

var vtAllAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512"}

func TestNewValidatorRefusesBadPolicies(t *testing.T) {
	src := &vtStaticSource{}
	good := vtPolicy(src, "ES256")
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
	for _, alg := range vtAllAlgs {
		t.Run(alg, func(t *testing.T) {
			k := vtKeyFor(t, alg, "a")
			other := vtKeyFor(t, alg, "b")
			src := vtSource(other, k)
			v := vtValidator(t, vtPolicy(src, alg))
			res, err := v.Validate(t.Context(), vtToken(t, k, nil, nil))
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if res.Header != (TokenHeader{Alg: alg, Kid: k.kid, Typ: "JWT"}) {
				t.Errorf("header = %+v", res.Header)
			}
			if res.Key.JWK.KeyID != k.kid || res.Key.State != StateActive {
				t.Errorf("key = %s state %s", res.Key.JWK.KeyID, res.Key.State)
			}
			if res.Claims["sub"] != "alice" || res.Claims["iss"] != vtIssuer {
				t.Errorf("claims = %v", res.Claims)
			}
			if n := src.refreshes.Load(); n != 0 {
				t.Errorf("refreshed %d times for a known kid", n)
			}
			// Signed by the other key under this kid: bad signature.
			forged := vtSignRaw(t, other, vtJSON(t, vtHeader(k)), vtJSON(t, vtClaims()))
			if _, err := v.Validate(t.Context(), forged); vtReason(t, err) != ReasonBadSignature {
				t.Errorf("forged: %v", err)
			}
		})
	}
}

// go-jose's own signer must interoperate with the validator.
func TestValidateGoJoseSignedToken(t *testing.T) {
	for _, alg := range []string{"RS256", "PS384", "ES256", "ES512", "EdDSA", "HS512"} {
		t.Run(alg, func(t *testing.T) {
			k := vtKeyFor(t, alg, "a")
			opts := (&gojose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", k.kid)
			s, err := gojose.NewSigner(gojose.SigningKey{Algorithm: gojose.SignatureAlgorithm(alg), Key: k.priv}, opts)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := s.Sign([]byte(vtJSON(t, vtClaims())))
			if err != nil {
				t.Fatal(err)
			}
			token, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			p := vtPolicy(vtSource(k), alg)
			p.Types = []string{"application/AT+JWT"}
			if _, err := vtValidator(t, p).Validate(t.Context(), token); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestValidateClaims(t *testing.T) {
	k := vtKeyFor(t, "ES256", "a")
	now := vtNow.Unix()
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
		{"iss trailing slash", set("iss", vtIssuer+"/"), nil, ReasonWrongIssuer},
		{"iss case", set("iss", strings.ToUpper(vtIssuer)), nil, ReasonWrongIssuer},
		{"iss missing", del("iss"), nil, ReasonMissingClaim},
		{"iss number", set("iss", 7), nil, ReasonMalformed},
		{"aud array", set("aud", []string{"other", vtAudience}), nil, ""},
		{"aud wrong", set("aud", "api://other"), nil, ReasonWrongAudience},
		{"aud wrong array", set("aud", []string{"a", "b"}), nil, ReasonWrongAudience},
		{"aud empty array", set("aud", []string{}), nil, ReasonWrongAudience},
		{"aud missing", del("aud"), nil, ReasonMissingClaim},
		{"aud number", set("aud", 1), nil, ReasonMalformed},
		{"aud array with number", set("aud", []any{vtAudience, 1}), nil, ReasonMalformed},
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
			p := vtPolicy(vtSource(k), "ES256")
			p.Leeway = leeway * time.Second
			if tt.policy != nil {
				tt.policy(&p)
			}
			_, err := vtValidator(t, p).Validate(t.Context(), vtToken(t, k, nil, tt.edit))
			if got := vtReason(t, err); got != tt.want {
				t.Fatalf("reason = %q, want %q (%v)", got, tt.want, err)
			}
		})
	}
}

func TestValidateClaimsJSON(t *testing.T) {
	k := vtKeyFor(t, "HS256", "a")
	v := vtValidator(t, vtPolicy(vtSource(k), "HS256"))
	hdr := vtJSON(t, vtHeader(k))
	base := `"iss":"` + vtIssuer + `","aud":"` + vtAudience + `","exp":1700000600`
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
		{"exp 1e400", `{"iss":"` + vtIssuer + `","aud":"` + vtAudience + `","exp":1e400}`, ReasonMalformed},
		{"deep nesting", "{" + base + `,"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "}", ReasonMalformed},
		{"leading zero", "{" + base + `,"x":01}`, ReasonMalformed},
		{"single quotes", "{" + base + `,'x':1}`, ReasonMalformed},
		{"control char", "{" + base + ",\"x\":\"a\tb\"}", ReasonMalformed},
		{"NaN", "{" + base + `,"x":NaN}`, ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Validate(t.Context(), vtSignRaw(t, k, hdr, tt.payload))
			if got := vtReason(t, err); got != tt.want {
				t.Fatalf("reason = %q, want %q (%v)", got, tt.want, err)
			}
		})
	}
}

func TestValidateTypes(t *testing.T) {
	k := vtKeyFor(t, "ES256", "a")
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
			p := vtPolicy(vtSource(k), "ES256")
			p.Types = tt.policy
			token := vtToken(t, k, func(h map[string]any) {
				delete(h, "typ")
				if tt.typ != nil {
					h["typ"] = tt.typ
				}
			}, nil)
			_, err := vtValidator(t, p).Validate(t.Context(), token)
			if got := vtReason(t, err); got != tt.want {
				t.Fatalf("reason = %q, want %q (%v)", got, tt.want, err)
			}
		})
	}
}

func TestValidateKeyChoice(t *testing.T) {
	es := vtKeyFor(t, "ES256", "a")
	es2 := vtKeyFor(t, "ES256", "b")
	es384 := vtKeyFor(t, "ES384", "a")
	rs := vtKeyFor(t, "RS256", "a")
	withoutAlg := func(k *vtKey) *vtKey {
		c := *k
		c.verify.JWK.Algorithm = ""
		return &c
	}
	withUse := func(k *vtKey, use string) *vtKey {
		c := *k
		c.verify.JWK.Use = use
		return &c
	}
	noKid := func(h map[string]any) { delete(h, "kid") }
	tests := []struct {
		name      string
		src       *vtStaticSource
		algs      []string
		signer    *vtKey
		alg       string // token alg when it differs from the signer's
		hdr       func(map[string]any)
		want      Reason
		refreshes int32
	}{
		{name: "kid picks among many", src: vtSource(es2, es384, rs, es), signer: es},
		{name: "no kid, one candidate", src: vtSource(es, es384, rs), signer: es, hdr: noKid},
		{name: "no kid, two candidates", src: vtSource(es, es2), signer: es, hdr: noKid, want: ReasonUnknownKid, refreshes: 0},
		{name: "unknown kid refreshes once", src: vtSource(es2), signer: es, want: ReasonUnknownKid, refreshes: 1},
		{name: "kid found after refresh", src: &vtStaticSource{keys: []VerifyKey{es2.verify}, afterRefresh: []VerifyKey{es2.verify, es.verify}}, signer: es, refreshes: 1},
		{name: "revoked key", src: &vtStaticSource{keys: []VerifyKey{es.verify}, afterRefresh: []VerifyKey{es2.verify}}, signer: es, hdr: func(h map[string]any) { h["kid"] = "gone" }, want: ReasonUnknownKid, refreshes: 1},
		{name: "duplicate kid", src: vtSource(es, func() *vtKey { c := *es2; c.verify.JWK.KeyID = es.kid; return &c }()), signer: es, want: ReasonUnknownKid},
		{name: "key without alg, EC", src: vtSource(withoutAlg(es)), signer: es},
		{name: "key without alg, RSA, PS256 allowed", src: vtSource(withoutAlg(rs)), algs: []string{"PS256"}, signer: rs, alg: "PS256"},
		{name: "key with alg RS256, token PS256", src: vtSource(rs), algs: []string{"RS256", "PS256"}, signer: rs, alg: "PS256", want: ReasonAlgNotAllowed},
		{name: "curve mismatch", src: vtSource(withoutAlg(es384)), algs: []string{"ES256", "ES384"}, signer: es384, alg: "ES256", hdr: func(h map[string]any) { h["kid"] = es384.kid }, want: ReasonAlgNotAllowed},
		{name: "use enc skipped", src: vtSource(withUse(es, "enc")), signer: es, want: ReasonUnknownKid, refreshes: 1},
		{name: "use empty ok", src: vtSource(withUse(es, "")), signer: es},
		{name: "alg outside allow-list", src: vtSource(es), algs: []string{"RS256"}, signer: es, want: ReasonAlgNotAllowed},
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
			v := vtValidator(t, vtPolicy(tt.src, algs...))
			_, err := v.Validate(t.Context(), vtToken(t, signer, tt.hdr, nil))
			if got := vtReason(t, err); got != tt.want {
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
	weakRSA := &vtKey{alg: "RS256", kid: "weak-rsa", priv: rsa1024, verify: VerifyKey{
		JWK: gojose.JSONWebKey{Key: &rsa1024.PublicKey, KeyID: "weak-rsa", Algorithm: "RS256", Use: "sig"}}}
	tests := []*vtKey{weakRSA}
	for _, n := range []int{0, 1, 31} {
		secret := make([]byte, n)
		tests = append(tests, &vtKey{alg: "HS256", kid: "weak-hs", priv: secret, verify: VerifyKey{
			JWK: gojose.JSONWebKey{Key: secret, KeyID: "weak-hs", Algorithm: "HS256", Use: "sig"}}})
	}
	for _, k := range tests {
		t.Run(k.kid, func(t *testing.T) {
			v := vtValidator(t, vtPolicy(vtSource(k), k.alg))
			_, err := v.Validate(t.Context(), vtToken(t, k, nil, nil))
			if got := vtReason(t, err); got != ReasonUnknownKid {
				t.Fatalf("reason = %q (%v)", got, err)
			}
		})
	}
}

func TestValidateKeySourceFailureIsNotATokenVerdict(t *testing.T) {
	k := vtKeyFor(t, "ES256", "a")
	src := &vtStaticSource{err: errors.New("idp down")}
	v := vtValidator(t, vtPolicy(src, "ES256"))
	_, err := v.Validate(t.Context(), vtToken(t, k, nil, nil))
	var te *TokenError
	if !errors.Is(err, ErrKeySourceUnavailable) || errors.As(err, &te) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "eyJ") {
		t.Fatal("error carries token material")
	}
}

func TestTokenErrorsCarryNoTokenMaterial(t *testing.T) {
	k := vtKeyFor(t, "HS256", "a")
	v := vtValidator(t, vtPolicy(vtSource(k), "HS256"))
	secretKid := "kid-that-must-not-leak"
	tokens := []string{
		vtToken(t, k, func(h map[string]any) { h["kid"] = secretKid }, nil),
		vtToken(t, k, func(h map[string]any) { h["alg"] = "none-" + secretKid }, nil),
		vtToken(t, k, nil, func(c map[string]any) { c["iss"] = secretKid }),
		vtToken(t, k, nil, func(c map[string]any) { c["aud"] = secretKid }),
		vtToken(t, k, func(h map[string]any) { h["typ"] = secretKid }, nil),
	}
	for _, tok := range tokens {
		_, err := v.Validate(t.Context(), tok)
		if err == nil {
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, secretKid) || strings.Contains(msg, tok[:20]) || strings.Contains(msg, vtB64(k.priv.([]byte))) {
			t.Errorf("error leaks token or key material: %s", msg)
		}
	}
}

func TestValidateConcurrent(t *testing.T) {
	k := vtKeyFor(t, "ES256", "a")
	v := vtValidator(t, vtPolicy(vtSource(k), "ES256"))
	good := vtToken(t, k, nil, nil)
	bad := vtToken(t, k, nil, func(c map[string]any) { c["iss"] = "x" })
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
