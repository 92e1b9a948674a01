// JWE interop in both directions: jwx encrypts, flowd's Decrypter
// decrypts, and the reverse; plus nested sign-then-encrypt JWTs. The
// helpers here carry a jwe prefix: jws_test.go belongs to someone else.

package jwx

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/flowd/flowd/blocks/jose"
)

// jwePBES2Count: jwx refuses p2c above 10000 by default (and encrypts
// with 10000), flowd encrypts with 600000 unless told otherwise; the two
// meet at jwx's ceiling.
const jwePBES2Count = 10000

// jweCase is one algorithm pair with its keys: priv decrypts (flowd: a
// JSONWebKey, jwx: the raw key), pub encrypts.
type jweCase struct {
	alg, enc string
	priv     any // *rsa.PrivateKey, *ecdsa.PrivateKey or []byte
	allow    jose.JWEAllow
}

func (c jweCase) pub() any {
	switch k := c.priv.(type) {
	case *rsa.PrivateKey:
		return &k.PublicKey
	case *ecdsa.PrivateKey:
		return &k.PublicKey
	}
	return c.priv
}

var (
	jweKeysOnce sync.Once
	jweRSA      *rsa.PrivateKey
	jweEC       map[string]*ecdsa.PrivateKey
)

func jweCases(t *testing.T) []jweCase {
	t.Helper()
	jweKeysOnce.Do(func() {
		var err error
		if jweRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		jweEC = map[string]*ecdsa.PrivateKey{}
		for name, c := range map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()} {
			if jweEC[name], err = ecdsa.GenerateKey(c, rand.Reader); err != nil {
				panic(err)
			}
		}
	})
	secret := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	legacy := jose.JWEAllow{RSA1_5: true, PBES2: true, CBC: true, Zip: true}
	return []jweCase{
		// flowd's defaults.
		{"RSA-OAEP-256", "A256GCM", jweRSA, jose.JWEAllow{}},
		{"RSA-OAEP-256", "A128GCM", jweRSA, jose.JWEAllow{}},
		{"ECDH-ES+A256KW", "A256GCM", jweEC["P-256"], jose.JWEAllow{}},
		{"ECDH-ES+A256KW", "A128GCM", jweEC["P-384"], jose.JWEAllow{}},
		{"ECDH-ES+A256KW", "A256GCM", jweEC["P-521"], jose.JWEAllow{}},
		{"A256KW", "A256GCM", secret(32), jose.JWEAllow{}},
		{"A256KW", "A128GCM", secret(32), jose.JWEAllow{}},
		{"dir", "A256GCM", secret(32), jose.JWEAllow{}},
		{"dir", "A128GCM", secret(16), jose.JWEAllow{}},
		// Allowed when listed.
		{"RSA-OAEP", "A256GCM", jweRSA, jose.JWEAllow{}},
		{"ECDH-ES", "A256GCM", jweEC["P-256"], jose.JWEAllow{}},
		{"ECDH-ES+A128KW", "A128GCM", jweEC["P-256"], jose.JWEAllow{}},
		{"A128KW", "A128GCM", secret(16), jose.JWEAllow{}},
		{"A256GCMKW", "A256GCM", secret(32), jose.JWEAllow{}},
		// Off by default; switched on here.
		{"RSA1_5", "A128CBC-HS256", jweRSA, legacy},
		{"A256KW", "A256CBC-HS512", secret(32), legacy},
		{"PBES2-HS256+A128KW", "A128GCM", []byte("correct horse battery staple"), legacy},
		{"PBES2-HS512+A256KW", "A256CBC-HS512", []byte("correct horse battery staple"), legacy},
	}
}

func jweJWXAlgs(t *testing.T, alg, enc string) (jwa.KeyEncryptionAlgorithm, jwa.ContentEncryptionAlgorithm) {
	t.Helper()
	ka, ok := jwa.LookupKeyEncryptionAlgorithm(alg)
	if !ok {
		t.Fatalf("jwx has no %s", alg)
	}
	ca, ok := jwa.LookupContentEncryptionAlgorithm(enc)
	if !ok {
		t.Fatalf("jwx has no %s", enc)
	}
	return ka, ca
}

func jweDecrypter(t *testing.T, c jweCase, kid string) *jose.Decrypter {
	t.Helper()
	d, err := jose.NewDecrypter(jose.DecrypterOptions{
		Keys:          []gojose.JSONWebKey{{Key: c.priv, KeyID: kid}},
		KeyAlgorithms: []string{c.alg}, ContentEncryptions: []string{c.enc}, Allow: c.allow,
	})
	if err != nil {
		t.Fatalf("NewDecrypter: %v", err)
	}
	return d
}

func jweEncrypter(t *testing.T, c jweCase, kid string, compress bool) *jose.Encrypter {
	t.Helper()
	e, err := jose.NewEncrypter(gojose.JSONWebKey{Key: c.pub(), KeyID: kid}, jose.EncrypterOptions{
		KeyAlgorithm: c.alg, ContentEncryption: c.enc, Allow: c.allow, Compress: compress, PBES2Count: jwePBES2Count,
	})
	if err != nil {
		t.Fatalf("NewEncrypter: %v", err)
	}
	return e
}

// jwxEncrypt encrypts with jwx to a compact JWE, with the given extra
// protected headers.
func jwxEncrypt(t *testing.T, c jweCase, payload []byte, hdr map[string]any, compress bool) string {
	t.Helper()
	ka, ca := jweJWXAlgs(t, c.alg, c.enc)
	h := jwe.NewHeaders()
	for k, v := range hdr {
		if err := h.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	opts := []jwe.EncryptOption{jwe.WithKey(ka, c.pub()), jwe.WithContentEncryption(ca), jwe.WithProtectedHeaders(h), jwe.WithCompact()}
	if compress {
		opts = append(opts, jwe.WithCompress(jwa.Deflate()))
	}
	out, err := jwe.Encrypt(payload, opts...)
	if err != nil {
		t.Fatalf("jwx Encrypt: %v", err)
	}
	return string(out)
}

func TestJWXEncryptsFlowdDecrypts(t *testing.T) {
	for _, c := range jweCases(t) {
		t.Run(c.alg+"/"+c.enc, func(t *testing.T) {
			msg := []byte(`{"card":"4111 1111 1111 1111"}`)
			compress := c.allow.Zip
			tok := jwxEncrypt(t, c, msg, map[string]any{"kid": "k1"}, compress)
			out, err := jweDecrypter(t, c, "k1").Decrypt(tok)
			if err != nil {
				t.Fatalf("flowd refuses jwx's JWE: %v", err)
			}
			if !bytes.Equal(out.Plaintext, msg) || out.Header.Alg != c.alg || out.Header.Enc != c.enc || out.KeyID != "k1" {
				t.Fatalf("got %q, header %+v, key %q", out.Plaintext, out.Header, out.KeyID)
			}
			if compress && out.Header.Zip != "DEF" {
				t.Errorf("zip = %q", out.Header.Zip)
			}
		})
	}
}

func TestFlowdEncryptsJWXDecrypts(t *testing.T) {
	for _, c := range jweCases(t) {
		t.Run(c.alg+"/"+c.enc, func(t *testing.T) {
			msg := []byte(`{"card":"4111 1111 1111 1111"}`)
			tok, err := jweEncrypter(t, c, "k1", c.allow.Zip).Encrypt(msg)
			if err != nil {
				t.Fatal(err)
			}
			ka, _ := jweJWXAlgs(t, c.alg, c.enc)
			out, err := jwe.Decrypt([]byte(tok), jwe.WithKey(ka, c.priv))
			if err != nil {
				t.Fatalf("jwx refuses flowd's JWE: %v", err)
			}
			if !bytes.Equal(out, msg) {
				t.Fatalf("jwx got %q", out)
			}
			msgHdr, err := jwe.Parse([]byte(tok))
			if err != nil {
				t.Fatal(err)
			}
			if kid, _ := msgHdr.ProtectedHeaders().KeyID(); kid != "k1" {
				t.Errorf("kid = %q", kid)
			}
		})
	}
}

// A PBES2 JWE with flowd's default count (600000) is refused by jwx's
// default ceiling (10000): pinned here so the mismatch stays visible.
func TestFlowdDefaultPBES2CountExceedsJWXCeiling(t *testing.T) {
	c := jweCase{alg: "PBES2-HS256+A128KW", enc: "A128GCM", priv: []byte("correct horse battery staple"), allow: jose.JWEAllow{PBES2: true}}
	e, err := jose.NewEncrypter(gojose.JSONWebKey{Key: c.priv}, jose.EncrypterOptions{KeyAlgorithm: c.alg, ContentEncryption: c.enc, Allow: c.allow})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.Encrypt([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwe.Decrypt([]byte(tok), jwe.WithKey(jwa.PBES2_HS256_A128KW(), c.priv)); err == nil {
		t.Fatal("jwx now takes p2c 600000: flowd's default and jwx's ceiling agree, drop jwePBES2Count")
	}
}

// Nested JWTs (sign then encrypt, cty JWT) in both directions, with an
// RSA recipient: the case go-jose's jwt package refuses.
func TestNestedJWTInterop(t *testing.T) {
	sigKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc := jweCases(t)[0] // RSA-OAEP-256 / A256GCM
	now := time.Now()
	v := jweValidator(t, sigKey)

	t.Run("jwx to flowd", func(t *testing.T) {
		tok, err := jwt.NewBuilder().Issuer(issuer).Subject("carol").Audience([]string{audience}).
			IssuedAt(now).Expiration(now.Add(5 * time.Minute)).Build()
		if err != nil {
			t.Fatal(err)
		}
		h := jws.NewHeaders()
		must(t, h.Set(jws.KeyIDKey, "sig-1"))
		signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), sigKey, jws.WithProtectedHeaders(h)))
		if err != nil {
			t.Fatal(err)
		}
		nested := jwxEncrypt(t, enc, signed, map[string]any{"cty": "JWT", "kid": "enc-1"}, false)
		res, err := jweDecrypter(t, enc, "enc-1").DecryptNested(t.Context(), nested, v)
		if err != nil {
			t.Fatalf("DecryptNested: %v", err)
		}
		if res.Claims["sub"] != "carol" || res.Header.Kid != "sig-1" {
			t.Fatalf("result %+v", res)
		}
		// Without cty JWT flowd does not treat the plaintext as a JWT.
		plain := jwxEncrypt(t, enc, signed, map[string]any{"kid": "enc-1"}, false)
		var te *jose.TokenError
		if _, err := jweDecrypter(t, enc, "enc-1").DecryptNested(t.Context(), plain, v); !errors.As(err, &te) || te.Reason != jose.ReasonDecryptFailed {
			t.Fatalf("no cty: %v", err)
		}
	})

	t.Run("flowd to jwx", func(t *testing.T) {
		claims := `{"iss":"` + issuer + `","sub":"dave","aud":"` + audience + `","exp":` + strconv.FormatInt(now.Add(5*time.Minute).Unix(), 10) + `}`
		signer, err := gojose.NewSigner(gojose.SigningKey{Algorithm: gojose.ES256, Key: sigKey},
			(&gojose.SignerOptions{}).WithType("JWT").WithHeader("kid", "sig-1"))
		if err != nil {
			t.Fatal(err)
		}
		obj, err := signer.Sign([]byte(claims))
		if err != nil {
			t.Fatal(err)
		}
		inner, err := obj.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		nested, err := jweEncrypter(t, enc, "enc-1", false).EncryptNested(inner)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := jwe.Parse([]byte(nested))
		if err != nil {
			t.Fatal(err)
		}
		if cty, _ := msg.ProtectedHeaders().ContentType(); cty != "JWT" {
			t.Fatalf("cty = %q", cty)
		}
		ka, _ := jweJWXAlgs(t, enc.alg, enc.enc)
		plaintext, err := jwe.Decrypt([]byte(nested), jwe.WithKey(ka, enc.priv))
		if err != nil {
			t.Fatalf("jwx decrypt: %v", err)
		}
		tok, err := jwt.Parse(plaintext, jwt.WithKey(jwa.ES256(), &sigKey.PublicKey), jwt.WithIssuer(issuer), jwt.WithAudience(audience))
		if err != nil {
			t.Fatalf("jwx verify: %v", err)
		}
		if sub, _ := tok.Subject(); sub != "dave" {
			t.Fatalf("sub = %q", sub)
		}
		// And flowd reads its own nested token back.
		if _, err := jweDecrypter(t, enc, "enc-1").DecryptNested(context.Background(), nested, v); err != nil {
			t.Fatalf("flowd round trip: %v", err)
		}
	})
}

// jweKeySource is a fixed KeySource for the nested tests.
type jweKeySource []jose.VerifyKey

func (s jweKeySource) VerifyKeys(context.Context, bool) ([]jose.VerifyKey, error) { return s, nil }

func jweValidator(t *testing.T, sigKey *ecdsa.PrivateKey) *jose.Validator {
	t.Helper()
	p := jose.DefaultPolicy()
	p.Algorithms = []string{"ES256"}
	p.Source = jweKeySource{{JWK: gojose.JSONWebKey{Key: &sigKey.PublicKey, KeyID: "sig-1", Algorithm: "ES256", Use: "sig"}}}
	p.Issuer = issuer
	p.Audience = []string{audience}
	v, err := jose.NewValidator(p)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
