// JWS interop in both directions and RFC 7638 thumbprints. JWE interop
// lives in its own file.

package jwx

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/store/memstore"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

var signAlgs = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512",
}

const (
	issuer   = "https://flowd.example"
	audience = "interop-api"
)

func newKeysets(t *testing.T) *jose.Keysets {
	t.Helper()
	m := jose.NewKeysets(memstore.MustNew(t, memstore.Options{}))
	m.RSABits = 2048 // generation time; the size does not matter to interop
	return m
}

// publishedSet is keyset name's JWKS as flowd publishes it, parsed by jwx.
func publishedSet(t *testing.T, m *jose.Keysets, name string) jwk.Set {
	t.Helper()
	body, _, err := m.JWKS(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwk.Parse(body)
	if err != nil {
		t.Fatalf("jwx cannot parse flowd's JWKS: %v", err)
	}
	return set
}

func jwxAlg(t *testing.T, alg string) jwa.SignatureAlgorithm {
	t.Helper()
	a, ok := jwa.LookupSignatureAlgorithm(alg)
	if !ok {
		t.Fatalf("jwx does not know %s", alg)
	}
	return a
}

func isHMAC(alg string) bool { return strings.HasPrefix(alg, "HS") }

// octKeySet wraps flowd's active HMAC secret as a jwx key set, the way a
// relying party sharing the secret would hold it.
func octKeySet(t *testing.T, m *jose.Keysets, name, alg string) jwk.Set {
	t.Helper()
	k, err := m.ActiveSigner(t.Context(), name, alg)
	if err != nil {
		t.Fatal(err)
	}
	secret, ok := k.JWK.Key.([]byte)
	if !ok {
		t.Fatalf("%s key is not a secret", alg)
	}
	key, err := jwk.Import(secret)
	if err != nil {
		t.Fatal(err)
	}
	must(t, key.Set(jwk.KeyIDKey, k.Kid))
	must(t, key.Set(jwk.AlgorithmKey, jwxAlg(t, alg)))
	set := jwk.NewSet()
	must(t, set.AddKey(key))
	return set
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// TestFlowdTokensVerifyInJWX: tokens flowd signs verify in jwx with the
// published JWKS (asymmetric algs) or the shared secret (HS*), and jwx's
// claim validation accepts them.
func TestFlowdTokensVerifyInJWX(t *testing.T) {
	ctx := t.Context()
	m := newKeysets(t)
	if err := m.Create(ctx, "idp", signAlgs...); err != nil {
		t.Fatal(err)
	}
	published := publishedSet(t, m, "idp")
	signer := jose.NewSigner(m)
	for _, alg := range signAlgs {
		t.Run(alg, func(t *testing.T) {
			token, kid, err := signer.Sign(ctx, jose.SignRequest{
				Keyset: "idp", Alg: alg, Typ: "at+jwt", TTL: 5 * time.Minute,
				Issuer: issuer, Subject: "alice", Audience: []string{audience},
				Claims: map[string]any{"scope": "openid"},
			})
			if err != nil {
				t.Fatalf("flowd Sign: %v", err)
			}
			set := published
			if isHMAC(alg) {
				set = octKeySet(t, m, "idp", alg)
			}
			tok, err := jwt.Parse([]byte(token), jwt.WithKeySet(set), jwt.WithValidate(true),
				jwt.WithIssuer(issuer), jwt.WithAudience(audience))
			if err != nil {
				t.Fatalf("jwx rejects flowd's %s token: %v", alg, err)
			}
			if sub, _ := tok.Subject(); sub != "alice" {
				t.Errorf("sub = %q", sub)
			}
			var scope string
			if err := tok.Get("scope", &scope); err != nil || scope != "openid" {
				t.Errorf("scope = %q, %v", scope, err)
			}
			if jti, ok := tok.JwtID(); !ok || len(jti) != 22 {
				t.Errorf("jti = %q", jti)
			}
			msg, err := jws.Parse([]byte(token))
			if err != nil {
				t.Fatal(err)
			}
			h := msg.Signatures()[0].ProtectedHeaders()
			typ, _ := h.Type()
			hkid, _ := h.KeyID()
			halg, _ := h.Algorithm()
			if typ != "at+jwt" || hkid != kid || halg.String() != alg {
				t.Errorf("header typ/kid/alg = %s/%s/%s, want at+jwt/%s/%s", typ, hkid, halg, kid, alg)
			}

			// A token with a flipped signature byte must not verify.
			parts := strings.Split(token, ".")
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			sig[len(sig)/2] ^= 0x01
			tampered := parts[0] + "." + parts[1] + "." + b64(sig)
			if _, err := jwt.Parse([]byte(tampered), jwt.WithKeySet(set)); err == nil {
				t.Errorf("jwx accepted a tampered flowd token")
			}
		})
	}
}

// TestJWKSThumbprintsMatchKids: jwx's RFC 7638 SHA-256 thumbprint of every
// key flowd publishes is its kid, and no published key has private parts.
func TestJWKSThumbprintsMatchKids(t *testing.T) {
	ctx := t.Context()
	m := newKeysets(t)
	algs := append(slices.Clone(signAlgs), "RSA-OAEP-256", "ECDH-ES+A256KW", "A256KW", "dir")
	if err := m.Create(ctx, "tp", algs...); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Rotate(ctx, "tp", jose.RotateOptions{}); err != nil { // publish next, active and retired
		t.Fatal(err)
	}
	set := publishedSet(t, m, "tp")
	info, err := m.Get(ctx, "tp")
	if err != nil {
		t.Fatal(err)
	}
	wantKids := map[string]bool{}
	for _, k := range info.Keys {
		if k.Kty != "oct" && !k.Revoked {
			wantKids[k.Kid] = true
		}
	}
	if set.Len() != len(wantKids) {
		t.Errorf("jwx sees %d keys, want %d", set.Len(), len(wantKids))
	}
	for i := range set.Len() {
		key, _ := set.Key(i)
		kid, _ := key.KeyID()
		t.Run(kid, func(t *testing.T) {
			if !wantKids[kid] {
				t.Errorf("unexpected kid %s", kid)
			}
			tp, err := key.Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if got := b64(tp); got != kid {
				t.Errorf("jwx thumbprint %s != flowd kid %s", got, kid)
			}
			if err := key.Validate(); err != nil {
				t.Errorf("jwx Validate: %v", err)
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
				if key.Has(private) {
					t.Errorf("published key has private member %s", private)
				}
			}
			if _, ok := key.Algorithm(); !ok {
				t.Errorf("published key has no alg")
			}
			if _, ok := key.KeyUsage(); !ok {
				t.Errorf("published key has no use")
			}
		})
	}
}

// rawKeyFor makes a private key for alg with the standard library, as a
// third party would before handing it to jwx.
func rawKeyFor(t *testing.T, alg string) any {
	t.Helper()
	var (
		k   any
		err error
	)
	switch alg[:2] {
	case "RS", "PS":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES":
		curve := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		k, err = ecdsa.GenerateKey(curve, rand.Reader)
	case "Ed":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case "HS":
		b := make([]byte, map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}[alg])
		_, err = rand.Read(b)
		k = b
	default:
		t.Fatalf("no raw key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jwxSign signs a JWT with jwx.
func jwxSign(t *testing.T, key jwk.Key, alg string, now time.Time) string {
	t.Helper()
	tok, err := jwt.NewBuilder().
		Issuer(issuer).Subject("bob").Audience([]string{audience}).
		IssuedAt(now).NotBefore(now).Expiration(now.Add(5*time.Minute)).
		Claim("role", "admin").
		Build()
	if err != nil {
		t.Fatal(err)
	}
	hdrs := jws.NewHeaders()
	must(t, hdrs.Set(jws.TypeKey, "at+jwt"))
	signed, err := jwt.Sign(tok, jwt.WithKey(jwxAlg(t, alg), key, jws.WithProtectedHeaders(hdrs)))
	if err != nil {
		t.Fatalf("jwx Sign: %v", err)
	}
	return string(signed)
}

// TestJWXTokensVerifyInFlowd: tokens jwx signs verify with flowd's
// VerifyKeys through flowd's Validator, for keys flowd generated (handed
// to jwx) and for keys jwx serialized (imported into flowd).
func TestJWXTokensVerifyInFlowd(t *testing.T) {
	ctx := t.Context()
	m := newKeysets(t)
	if err := m.Create(ctx, "own", signAlgs...); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(ctx, "imported"); err != nil {
		t.Fatal(err)
	}
	for _, alg := range signAlgs {
		t.Run(alg, func(t *testing.T) {
			t.Run("flowd key signed by jwx", func(t *testing.T) {
				k, err := m.ActiveSigner(ctx, "own", alg)
				if err != nil {
					t.Fatal(err)
				}
				key, err := jwk.Import(k.JWK.Key)
				if err != nil {
					t.Fatalf("jwx cannot import flowd's %s key: %v", alg, err)
				}
				must(t, key.Set(jwk.KeyIDKey, k.Kid))
				token := jwxSign(t, key, alg, time.Now())
				checkInFlowd(t, m, "own", alg, token, k.Kid)
			})
			t.Run("jwx key imported into flowd", func(t *testing.T) {
				key, err := jwk.Import(rawKeyFor(t, alg))
				if err != nil {
					t.Fatal(err)
				}
				must(t, key.Set(jwk.AlgorithmKey, jwxAlg(t, alg)))
				must(t, key.Set(jwk.KeyUsageKey, jwk.ForSignature))
				must(t, key.Set(jwk.KeyIDKey, "jwx-chosen-kid"))
				serialized, err := json.Marshal(key)
				if err != nil {
					t.Fatal(err)
				}
				info, err := m.Import(ctx, "imported", serialized, alg, "", jose.StateActive)
				if err != nil {
					t.Fatalf("flowd cannot import jwx's %s key: %v", alg, err)
				}
				if !isHMAC(alg) {
					tp, err := key.Thumbprint(crypto.SHA256)
					if err != nil {
						t.Fatal(err)
					}
					if info.Kid != b64(tp) {
						t.Errorf("flowd kid %s != jwx thumbprint %s", info.Kid, b64(tp))
					}
				}
				// flowd assigns the kid; the issuer uses it from now on.
				must(t, key.Set(jwk.KeyIDKey, info.Kid))
				token := jwxSign(t, key, alg, time.Now())
				checkInFlowd(t, m, "imported", alg, token, info.Kid)
			})
		})
	}
}

// checkInFlowd validates token with flowd's Validator over the keyset.
func checkInFlowd(t *testing.T, m *jose.Keysets, keyset, alg, token, wantKid string) {
	t.Helper()
	p := jose.DefaultPolicy()
	p.Algorithms = []string{alg}
	p.Source = m.Source(keyset)
	p.Issuer = issuer
	p.Audience = []string{audience}
	p.Types = []string{"at+jwt"}
	p.RequiredClaims = []string{"sub", "role"}
	v, err := jose.NewValidator(p)
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	res, err := v.Validate(t.Context(), token)
	if err != nil {
		t.Fatalf("flowd rejects jwx's %s token: %v", alg, err)
	}
	if res.Header.Kid != wantKid || res.Header.Alg != alg || res.Key.State != jose.StateActive {
		t.Errorf("verified by %s/%s (%s), want %s/%s (active)", res.Header.Kid, res.Header.Alg, res.Key.State, wantKid, alg)
	}
	if res.Claims["sub"] != "bob" || res.Claims["role"] != "admin" {
		t.Errorf("claims = %v", res.Claims)
	}
	// Same token, other alg allowed only: refused.
	other := "ES384"
	if alg == other {
		other = "ES256"
	}
	p.Algorithms = []string{other}
	v2, err := jose.NewValidator(p)
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	var terr *jose.TokenError
	if _, err := v2.Validate(t.Context(), token); !errors.As(err, &terr) || terr.Reason != jose.ReasonAlgNotAllowed {
		t.Errorf("token accepted or wrong reason with only %s allowed: %v", other, err)
	}
}
