package jose

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
)

// jweKeys are the JWE test keys: private halves for the decrypter, the same
// JWKs (reduced to public by NewEncrypter) for the encrypter.
type jweKeys struct {
	rsa    gojose.JSONWebKey
	ec256  gojose.JSONWebKey
	ec384  gojose.JSONWebKey
	ec521  gojose.JSONWebKey
	aes128 gojose.JSONWebKey
	aes256 gojose.JSONWebKey
	dir128 gojose.JSONWebKey
	dir256 gojose.JSONWebKey
	dir512 gojose.JSONWebKey
	pwd    gojose.JSONWebKey
}

var (
	jweKeysOnce sync.Once
	jweKeysVal  jweKeys
)

func jweTestKeys(t testing.TB) jweKeys {
	t.Helper()
	jweKeysOnce.Do(func() {
		ec := func(c elliptic.Curve, kid string) gojose.JSONWebKey {
			k, err := ecdsa.GenerateKey(c, rand.Reader)
			if err != nil {
				panic(err)
			}
			return gojose.JSONWebKey{Key: k, KeyID: kid}
		}
		secret := func(n int, kid string) gojose.JSONWebKey {
			b := make([]byte, n)
			_, _ = rand.Read(b)
			return gojose.JSONWebKey{Key: b, KeyID: kid}
		}
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		jweKeysVal = jweKeys{
			rsa:   gojose.JSONWebKey{Key: rk, KeyID: "rsa-enc", Use: "enc"},
			ec256: ec(elliptic.P256(), "ec-256"), ec384: ec(elliptic.P384(), "ec-384"), ec521: ec(elliptic.P521(), "ec-521"),
			aes128: secret(16, "aes-128"), aes256: secret(32, "aes-256"),
			dir128: secret(16, "dir-128"), dir256: secret(32, "dir-256"), dir512: secret(64, "dir-512"),
			pwd: gojose.JSONWebKey{Key: []byte("correct horse battery staple"), KeyID: "pwd"},
		}
	})
	return jweKeysVal
}

func mustEncrypter(t testing.TB, key gojose.JSONWebKey, o EncrypterOptions) *Encrypter {
	t.Helper()
	e, err := NewEncrypter(key, o)
	if err != nil {
		t.Fatalf("NewEncrypter: %v", err)
	}
	return e
}

func mustDecrypter(t testing.TB, o DecrypterOptions) *Decrypter {
	t.Helper()
	d, err := NewDecrypter(o)
	if err != nil {
		t.Fatalf("NewDecrypter: %v", err)
	}
	return d
}

func allJWEAllowed() JWEAllow { return JWEAllow{RSA1_5: true, PBES2: true, CBC: true, Zip: true} }

func TestJWERoundTrip(t *testing.T) {
	k := jweTestKeys(t)
	all := allJWEAllowed()
	tests := []struct {
		alg, enc string
		key      gojose.JSONWebKey
		allow    JWEAllow
	}{
		{"RSA-OAEP-256", "A256GCM", k.rsa, JWEAllow{}},
		{"RSA-OAEP-256", "A128GCM", k.rsa, JWEAllow{}},
		{"RSA-OAEP", "A256GCM", k.rsa, JWEAllow{}},
		{"RSA1_5", "A128CBC-HS256", k.rsa, all},
		{"ECDH-ES+A256KW", "A256GCM", k.ec256, JWEAllow{}},
		{"ECDH-ES+A256KW", "A128GCM", k.ec384, JWEAllow{}},
		{"ECDH-ES+A256KW", "A256GCM", k.ec521, JWEAllow{}},
		{"ECDH-ES", "A256GCM", k.ec256, JWEAllow{}},
		{"ECDH-ES+A128KW", "A256CBC-HS512", k.ec256, all},
		{"A256KW", "A256GCM", k.aes256, JWEAllow{}},
		{"A128KW", "A128GCM", k.aes128, JWEAllow{}},
		{"A256GCMKW", "A256GCM", k.aes256, JWEAllow{}},
		{"dir", "A256GCM", k.dir256, JWEAllow{}},
		{"dir", "A128GCM", k.dir128, JWEAllow{}},
		{"dir", "A256CBC-HS512", k.dir512, all},
		{"PBES2-HS256+A128KW", "A128GCM", k.pwd, all},
		{"PBES2-HS512+A256KW", "A256CBC-HS512", k.pwd, all},
	}
	for _, tt := range tests {
		t.Run(tt.alg+"/"+tt.enc, func(t *testing.T) {
			e := mustEncrypter(t, tt.key, EncrypterOptions{KeyAlgorithm: tt.alg, ContentEncryption: tt.enc,
				Allow: tt.allow, PBES2Count: 2000, Type: "secret+jwe"})
			// Other keys of other kinds sit next to the right one.
			keys := []gojose.JSONWebKey{tt.key}
			for _, other := range []gojose.JSONWebKey{k.rsa, k.ec384, k.pwd} {
				if other.KeyID != tt.key.KeyID {
					keys = append(keys, other)
				}
			}
			d := mustDecrypter(t, DecrypterOptions{Keys: keys,
				KeyAlgorithms: []string{tt.alg}, ContentEncryptions: []string{tt.enc}, Allow: tt.allow})
			msg := []byte(`{"hello":"world"}`)
			tok, err := e.Encrypt(msg)
			if err != nil {
				t.Fatal(err)
			}
			out, err := d.Decrypt(tok)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if !bytes.Equal(out.Plaintext, msg) || out.KeyID != tt.key.KeyID {
				t.Fatalf("plaintext %q key %q", out.Plaintext, out.KeyID)
			}
			want := JWEHeader{Alg: tt.alg, Enc: tt.enc, Kid: tt.key.KeyID, Typ: "secret+jwe"}
			if out.Header != want {
				t.Fatalf("header %+v, want %+v", out.Header, want)
			}
		})
	}
}

func TestJWEDefaultsRefuseLegacyAlgorithms(t *testing.T) {
	k := jweTestKeys(t)
	for _, tt := range []struct {
		name string
		o    DecrypterOptions
	}{
		{"RSA1_5", DecrypterOptions{KeyAlgorithms: []string{"RSA1_5"}}},
		{"PBES2", DecrypterOptions{KeyAlgorithms: []string{"PBES2-HS256+A128KW"}}},
		{"CBC", DecrypterOptions{ContentEncryptions: []string{"A128CBC-HS256"}}},
		{"unknown alg", DecrypterOptions{KeyAlgorithms: []string{"RSA-OAEP-384"}}},
		{"unknown enc", DecrypterOptions{ContentEncryptions: []string{"A512GCM"}}},
		{"PBES2 min above max", DecrypterOptions{PBES2MinCount: 10, PBES2MaxCount: 5}},
		{"PBES2 max above go-jose", DecrypterOptions{PBES2MaxCount: 2000000}},
		{"negative size", DecrypterOptions{MaxTokenSize: -1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Keys = []gojose.JSONWebKey{k.rsa}
			if _, err := NewDecrypter(tt.o); !errors.Is(err, ErrInvalidJWEOptions) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	for _, tt := range []struct {
		name string
		key  gojose.JSONWebKey
		o    EncrypterOptions
	}{
		{"RSA1_5", k.rsa, EncrypterOptions{KeyAlgorithm: "RSA1_5"}},
		{"PBES2", k.pwd, EncrypterOptions{KeyAlgorithm: "PBES2-HS256+A128KW"}},
		{"CBC", k.aes256, EncrypterOptions{KeyAlgorithm: "A256KW", ContentEncryption: "A256CBC-HS512"}},
		{"zip", k.aes256, EncrypterOptions{KeyAlgorithm: "A256KW", Compress: true}},
		{"no alg", k.aes256, EncrypterOptions{}},
		{"key too small for A256KW", k.aes128, EncrypterOptions{KeyAlgorithm: "A256KW"}},
		{"EC key for RSA", k.ec256, EncrypterOptions{KeyAlgorithm: "RSA-OAEP-256"}},
		{"dir key of the wrong size", k.dir128, EncrypterOptions{KeyAlgorithm: "dir", ContentEncryption: "A256GCM"}},
		{"PBES2 count too low", k.pwd, EncrypterOptions{KeyAlgorithm: "PBES2-HS256+A128KW", Allow: JWEAllow{PBES2: true}, PBES2Count: 10}},
		{"sig key", gojose.JSONWebKey{Key: k.rsa.Key, Use: "sig"}, EncrypterOptions{KeyAlgorithm: "RSA-OAEP-256"}},
	} {
		t.Run("encrypter "+tt.name, func(t *testing.T) {
			if _, err := NewEncrypter(tt.key, tt.o); !errors.Is(err, ErrInvalidJWEOptions) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	t.Run("decrypter keys", func(t *testing.T) {
		pub := gojose.JSONWebKey{Key: &k.rsa.Key.(*rsa.PrivateKey).PublicKey}
		for _, key := range []gojose.JSONWebKey{pub, {Key: []byte{}}, {Key: k.rsa.Key, Use: "sig"}, {Key: k.aes256.Key, Algorithm: "HS256"}} {
			if _, err := NewDecrypter(DecrypterOptions{Keys: []gojose.JSONWebKey{key}}); !errors.Is(err, ErrInvalidJWEOptions) {
				t.Errorf("key %T accepted: %v", key.Key, err)
			}
		}
		if _, err := NewDecrypter(DecrypterOptions{}); !errors.Is(err, ErrInvalidJWEOptions) {
			t.Error("no keys accepted")
		}
	})
}

// craftJWE assembles a compact JWE from a raw header and raw segments.
func craftJWE(header string, ek, iv, ct, tag []byte) string {
	b := base64.RawURLEncoding.EncodeToString
	return b([]byte(header)) + "." + b(ek) + "." + b(iv) + "." + b(ct) + "." + b(tag)
}

// jweSegments splits a compact JWE into its header JSON and raw segments.
func jweSegments(t testing.TB, tok string) (string, [4][]byte) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 5 {
		t.Fatalf("%d parts", len(parts))
	}
	var raw [5][]byte
	for i, p := range parts {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			t.Fatal(err)
		}
		raw[i] = b
	}
	return string(raw[0]), [4][]byte{raw[1], raw[2], raw[3], raw[4]}
}

func flipLastBit(b []byte) []byte {
	c := bytes.Clone(b)
	if len(c) > 0 {
		c[len(c)-1] ^= 1
	}
	return c
}

func TestJWEDecryptRefusals(t *testing.T) {
	k := jweTestKeys(t)
	kw := mustEncrypter(t, k.aes256, EncrypterOptions{KeyAlgorithm: "A256KW"})
	good, err := kw.Encrypt([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	hdr, seg := jweSegments(t, good)
	dirTok, _ := mustEncrypter(t, k.dir256, EncrypterOptions{KeyAlgorithm: "dir"}).Encrypt([]byte("secret"))
	dirHdr, dirSeg := jweSegments(t, dirTok)
	cbcTok, _ := mustEncrypter(t, k.aes256, EncrypterOptions{KeyAlgorithm: "A256KW", ContentEncryption: "A128CBC-HS256",
		Allow: JWEAllow{CBC: true}}).Encrypt([]byte("secret"))
	cbcHdr, cbcSeg := jweSegments(t, cbcTok)
	zipTok, _ := mustEncrypter(t, k.aes256, EncrypterOptions{KeyAlgorithm: "A256KW", Allow: JWEAllow{Zip: true}, Compress: true}).
		Encrypt(make([]byte, 10<<20))
	bomb100k, _ := mustEncrypter(t, k.aes256, EncrypterOptions{KeyAlgorithm: "A256KW", Allow: JWEAllow{Zip: true}, Compress: true}).
		Encrypt(make([]byte, 100<<10))
	big, _ := kw.Encrypt(make([]byte, 70<<10))
	withHeader := func(edit func(map[string]any)) string {
		var h map[string]any
		_ = json.Unmarshal([]byte(hdr), &h)
		edit(h)
		b, _ := json.Marshal(h)
		return craftJWE(string(b), seg[0], seg[1], seg[2], seg[3])
	}
	pbesHeader := func(p2c any, p2s string) string {
		h, _ := json.Marshal(map[string]any{"alg": "PBES2-HS512+A256KW", "enc": "A256GCM", "p2c": p2c, "p2s": p2s})
		return craftJWE(string(h), make([]byte, 40), make([]byte, 12), []byte("x"), make([]byte, 16))
	}
	salt := base64.RawURLEncoding.EncodeToString(make([]byte, 16))

	base := DecrypterOptions{Keys: []gojose.JSONWebKey{k.aes256, k.dir256, k.pwd},
		KeyAlgorithms: []string{"A256KW", "dir", "PBES2-HS512+A256KW"}, ContentEncryptions: []string{"A256GCM", "A128CBC-HS256"},
		Allow: JWEAllow{PBES2: true, CBC: true}}
	zipOK := base
	zipOK.Allow.Zip = true
	roomy := base
	roomy.MaxTokenSize = 256 << 10
	tests := []struct {
		name  string
		opts  *DecrypterOptions
		token string
	}{
		{"tampered tag", nil, craftJWE(hdr, seg[0], seg[1], seg[2], flipLastBit(seg[3]))},
		{"tampered ciphertext", nil, craftJWE(hdr, seg[0], seg[1], flipLastBit(seg[2]), seg[3])},
		{"tampered iv", nil, craftJWE(hdr, seg[0], flipLastBit(seg[1]), seg[2], seg[3])},
		{"tampered encrypted key", nil, craftJWE(hdr, flipLastBit(seg[0]), seg[1], seg[2], seg[3])},
		{"tampered header", nil, withHeader(func(h map[string]any) { h["x"] = 1 })},
		{"empty encrypted key", nil, craftJWE(hdr, nil, seg[1], seg[2], seg[3])},
		{"empty iv", nil, craftJWE(hdr, seg[0], nil, seg[2], seg[3])},
		{"empty tag", nil, craftJWE(hdr, seg[0], seg[1], seg[2], nil)},
		{"dir with an encrypted key", nil, craftJWE(dirHdr, []byte("not empty"), dirSeg[1], dirSeg[2], dirSeg[3])},
		{"empty CBC ciphertext", nil, craftJWE(cbcHdr, cbcSeg[0], cbcSeg[1], nil, cbcSeg[3])},
		{"CBC ciphertext not a block", nil, craftJWE(cbcHdr, cbcSeg[0], cbcSeg[1], cbcSeg[2][:5], cbcSeg[3])},
		{"alg not allowed", nil, withHeader(func(h map[string]any) { h["alg"] = "A128KW" })},
		{"alg none", nil, withHeader(func(h map[string]any) { h["alg"] = "none" })},
		{"enc not allowed", nil, withHeader(func(h map[string]any) { h["enc"] = "A192GCM" })},
		{"alg not a string", nil, withHeader(func(h map[string]any) { h["alg"] = 1 })},
		{"crit", nil, withHeader(func(h map[string]any) { h["crit"] = []string{"exp"}; h["exp"] = 1 })},
		{"zip when not allowed", nil, zipTok},
		{"zip bomb when allowed", &zipOK, zipTok},
		{"zip output above the cap", &zipOK, bomb100k},
		{"zip unknown", &zipOK, withHeader(func(h map[string]any) { h["zip"] = "GZIP" })},
		{"unknown kid", nil, withHeader(func(h map[string]any) { h["kid"] = "other" })},
		{"kid not a string", nil, withHeader(func(h map[string]any) { h["kid"] = []int{1} })},
		{"kid too long", nil, withHeader(func(h map[string]any) { h["kid"] = strings.Repeat("a", 300) })},
		{"PBES2 huge p2c", nil, pbesHeader(1e12, salt)},
		{"PBES2 p2c above max", nil, pbesHeader(600001, salt)},
		{"PBES2 p2c below min", nil, pbesHeader(999, salt)},
		{"PBES2 p2c fractional", nil, pbesHeader(5000.5, salt)},
		{"PBES2 p2c string", nil, pbesHeader("5000", salt)},
		{"PBES2 p2c missing", nil, pbesHeader(nil, salt)},
		{"PBES2 short salt", nil, pbesHeader(5000, "AAAA")},
		{"duplicate header member", nil, craftJWE(`{"alg":"A256KW","enc":"A256GCM","alg":"dir"}`, seg[0], seg[1], seg[2], seg[3])},
		{"JWS given", nil, signedToken(t, testKeyFor(t, "HS256", "a"), nil, nil)},
		{"JSON serialization", nil, `{"protected":"eyJ9","ciphertext":"AA"}`},
		{"six segments", nil, good + ".AA"},
		{"padding", nil, good + "="},
		{"too large", nil, good + strings.Repeat("A", DefaultJWEMaxTokenSize)},
		{"plaintext above the cap", &roomy, big},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			if tt.opts != nil {
				o = *tt.opts
			}
			start := time.Now()
			_, err := mustDecrypter(t, o).Decrypt(tt.token)
			if got := tokenReason(t, err); got != ReasonDecryptFailed {
				t.Fatalf("reason = %q (%v)", got, err)
			}
			t.Logf("refused in %s: %v", time.Since(start), err)
		})
	}
	t.Run("ambiguous key without kid", func(t *testing.T) {
		noKid := withHeader(func(h map[string]any) { delete(h, "kid") })
		other := gojose.JSONWebKey{Key: bytes.Repeat([]byte{1}, 32), KeyID: "other"}
		d := mustDecrypter(t, DecrypterOptions{Keys: []gojose.JSONWebKey{k.aes256, other}, KeyAlgorithms: []string{"A256KW"}})
		if _, err := d.Decrypt(noKid); tokenReason(t, err) != ReasonDecryptFailed {
			t.Fatalf("err = %v", err)
		}
		// One fitting key and no kid: fine (the header was changed, so
		// re-encrypt instead of reusing the tampered token).
		anon := mustEncrypter(t, gojose.JSONWebKey{Key: k.aes256.Key}, EncrypterOptions{KeyAlgorithm: "A256KW"})
		tok, _ := anon.Encrypt([]byte("x"))
		d = mustDecrypter(t, DecrypterOptions{Keys: []gojose.JSONWebKey{k.aes256, k.rsa}})
		if _, err := d.Decrypt(tok); err != nil {
			t.Fatalf("single fitting key: %v", err)
		}
	})
	t.Run("key pinned to another alg", func(t *testing.T) {
		pinned := k.aes256
		pinned.Algorithm = "A256GCMKW"
		d := mustDecrypter(t, DecrypterOptions{Keys: []gojose.JSONWebKey{pinned}, KeyAlgorithms: []string{"A256KW", "A256GCMKW"}})
		if _, err := d.Decrypt(good); tokenReason(t, err) != ReasonDecryptFailed {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("zip allowed and small", func(t *testing.T) {
		tok, _ := mustEncrypter(t, k.aes256, EncrypterOptions{KeyAlgorithm: "A256KW", Allow: JWEAllow{Zip: true}, Compress: true}).
			Encrypt([]byte(strings.Repeat("hello ", 100)))
		out, err := mustDecrypter(t, zipOK).Decrypt(tok)
		if err != nil || out.Header.Zip != "DEF" || len(out.Plaintext) != 600 {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestJWENested(t *testing.T) {
	k := jweTestKeys(t)
	sig := testKeyFor(t, "ES256", "a")
	v := mustValidator(t, testPolicy(staticSource(sig), "ES256"))
	e := mustEncrypter(t, k.rsa, EncrypterOptions{KeyAlgorithm: "RSA-OAEP-256"})
	d := mustDecrypter(t, DecrypterOptions{Keys: []gojose.JSONWebKey{k.rsa}})

	tok, err := e.EncryptNested(signedToken(t, sig, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.DecryptNested(t.Context(), tok, v)
	if err != nil {
		t.Fatalf("DecryptNested: %v", err)
	}
	if res.Claims["sub"] != "alice" || res.Key.JWK.KeyID != sig.kid {
		t.Fatalf("result %+v", res)
	}

	expired, _ := e.EncryptNested(signedToken(t, sig, nil, func(c map[string]any) { c["exp"] = 1 }))
	forged, _ := e.EncryptNested(signRaw(t, testKeyFor(t, "ES256", "b"), mustJSON(t, jwtHeader(sig)), mustJSON(t, validClaims())))
	notNested, _ := e.Encrypt([]byte(signedToken(t, sig, nil, nil)))
	hdr, seg := jweSegments(t, tok)
	tamperedOuter := craftJWE(hdr, seg[0], seg[1], seg[2], flipLastBit(seg[3]))
	for _, tt := range []struct {
		name  string
		token string
		want  Reason
	}{
		{"inner expired", expired, ReasonExpired},
		{"inner forged", forged, ReasonBadSignature},
		{"no cty", notNested, ReasonDecryptFailed},
		{"outer tampered", tamperedOuter, ReasonDecryptFailed},
		{"bare JWS", signedToken(t, sig, nil, nil), ReasonDecryptFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.DecryptNested(t.Context(), tt.token, v)
			if got := tokenReason(t, err); got != tt.want {
				t.Fatalf("reason = %q, want %q (%v)", got, tt.want, err)
			}
		})
	}
	if _, err := e.EncryptNested("not.a.jws!"); err == nil {
		t.Fatal("EncryptNested took a non-JWS")
	}
}

// go-jose's PBES2 encrypter keeps its first salt; flowd's Encrypter must
// not share one go-jose encrypter between calls.
func TestJWEEncrypterFreshSaltAndConcurrency(t *testing.T) {
	k := jweTestKeys(t)
	allow := JWEAllow{PBES2: true}
	e := mustEncrypter(t, k.pwd, EncrypterOptions{KeyAlgorithm: "PBES2-HS256+A128KW", Allow: allow, PBES2Count: 1000})
	d := mustDecrypter(t, DecrypterOptions{Keys: []gojose.JSONWebKey{k.pwd}, KeyAlgorithms: []string{"PBES2-HS256+A128KW"}, Allow: allow})
	salts := make(chan string, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			tok, err := e.Encrypt([]byte("x"))
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := d.Decrypt(tok); err != nil {
				t.Error(err)
			}
			h, _ := jweSegments(t, tok)
			var m map[string]any
			_ = json.Unmarshal([]byte(h), &m)
			salts <- m["p2s"].(string)
		})
	}
	wg.Wait()
	close(salts)
	seen := map[string]bool{}
	for s := range salts {
		if seen[s] {
			t.Fatal("a PBES2 salt was reused")
		}
		seen[s] = true
	}
}
