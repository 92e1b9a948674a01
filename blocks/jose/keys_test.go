package jose

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
)

// rfc7638Kid is the thumbprint RFC 7638 §3.1 gives for its example key.
const rfc7638Kid = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

// privateMembers are the JWK members that hold private material.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth", "priv"}

func keyFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "keys", name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

// jwkJSON marshals a raw key (with optional alg/use/kid) as a JWK.
func jwkJSON(t testing.TB, key any, alg, use string) []byte {
	t.Helper()
	b, err := gojose.JSONWebKey{Key: key, Algorithm: alg, Use: use}.MarshalJSON()
	if err != nil {
		t.Fatalf("marshal JWK: %v", err)
	}
	return b
}

// rfc7638 computes the RFC 7638 SHA-256 thumbprint from a public JWK's
// JSON members, independently of go-jose's Thumbprint.
func rfc7638(t testing.TB, pubJSON []byte) string {
	t.Helper()
	m := jsonMembers(t, pubJSON)
	var canon string
	switch m["kty"] {
	case "RSA":
		canon = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, m["e"], m["n"])
	case "EC":
		canon = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, m["crv"], m["x"], m["y"])
	case "OKP":
		canon = fmt.Sprintf(`{"crv":%q,"kty":"OKP","x":%q}`, m["crv"], m["x"])
	default:
		t.Fatalf("no thumbprint for kty %v", m["kty"])
	}
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestThumbprintRFC7638(t *testing.T) {
	pub := keyFixture(t, "rfc7638-rsa-public.json")
	if got := rfc7638(t, pub); got != rfc7638Kid {
		t.Fatalf("test's own RFC 7638 = %s, want %s", got, rfc7638Kid)
	}
	var jwk gojose.JSONWebKey
	if err := jwk.UnmarshalJSON(pub); err != nil {
		t.Fatal(err)
	}
	got, err := jwkThumbprint(&jwk)
	if err != nil || got != rfc7638Kid {
		t.Errorf("jwkThumbprint = %s, %v; want %s", got, err, rfc7638Kid)
	}
	k, err := ImportKey(keyFixture(t, "rfc7517-a2-rsa.json"), "RS256", "", KeyOptions{})
	if err != nil {
		t.Fatalf("ImportKey: %v", err)
	}
	if k.Kid != rfc7638Kid || k.JWK.KeyID != rfc7638Kid {
		t.Errorf("imported RFC 7517 A.2 key kid = %s, want %s (the JWK's own kid is replaced)", k.Kid, rfc7638Kid)
	}
}

func TestNewKey(t *testing.T) {
	created := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	now := func() time.Time { return created }
	tests := []struct {
		alg     string
		opts    KeyOptions
		wantKty string
		wantCrv string
		size    int // RSA modulus bits / oct bits; 0 for EC and OKP
		use     Use
	}{
		{"RS256", KeyOptions{}, "RSA", "", 3072, UseSig},
		{"RS384", KeyOptions{RSABits: 2048}, "RSA", "", 2048, UseSig},
		{"RS512", KeyOptions{RSABits: 4096}, "RSA", "", 4096, UseSig},
		{"PS256", KeyOptions{RSABits: 2048}, "RSA", "", 2048, UseSig},
		{"PS384", KeyOptions{RSABits: 2048}, "RSA", "", 2048, UseSig},
		{"PS512", KeyOptions{RSABits: 2048}, "RSA", "", 2048, UseSig},
		{"ES256", KeyOptions{}, "EC", "P-256", 0, UseSig},
		{"ES384", KeyOptions{}, "EC", "P-384", 0, UseSig},
		{"ES512", KeyOptions{}, "EC", "P-521", 0, UseSig},
		{"EdDSA", KeyOptions{}, "OKP", "Ed25519", 0, UseSig},
		{"HS256", KeyOptions{}, "oct", "", 256, UseSig},
		{"HS384", KeyOptions{}, "oct", "", 384, UseSig},
		{"HS512", KeyOptions{}, "oct", "", 512, UseSig},
		{"RSA-OAEP-256", KeyOptions{RSABits: 2048}, "RSA", "", 2048, UseEnc},
		{"ECDH-ES+A256KW", KeyOptions{}, "EC", "P-256", 0, UseEnc},
		{"ECDH-ES+A256KW", KeyOptions{Curve: "P-384"}, "EC", "P-384", 0, UseEnc},
		{"ECDH-ES+A256KW", KeyOptions{Curve: "P-521"}, "EC", "P-521", 0, UseEnc},
		{"A256KW", KeyOptions{}, "oct", "", 256, UseEnc},
		{"dir", KeyOptions{}, "oct", "", 256, UseEnc},
	}
	for _, tt := range tests {
		name := tt.alg
		if tt.opts.Curve != "" {
			name += "/" + tt.opts.Curve
		}
		if tt.opts.RSABits != 0 {
			name += fmt.Sprintf("/%d", tt.opts.RSABits)
		}
		t.Run(name, func(t *testing.T) {
			tt.opts.Now = now
			k, err := NewKey(tt.alg, "", tt.opts)
			if err != nil {
				t.Fatalf("NewKey: %v", err)
			}
			if k.Alg != tt.alg || k.Use != tt.use || k.Kty != tt.wantKty || k.Crv != tt.wantCrv || k.Size != tt.size {
				t.Errorf("key = %v, want alg %s use %s kty %s crv %q size %d", k, tt.alg, tt.use, tt.wantKty, tt.wantCrv, tt.size)
			}
			if k.State != "" || !k.Created.Equal(created) {
				t.Errorf("state %q created %v, want no state and %v", k.State, k.Created, created)
			}
			if k.JWK.KeyID != k.Kid || k.JWK.Algorithm != tt.alg || k.JWK.Use != string(tt.use) {
				t.Errorf("JWK kid/alg/use = %s/%s/%s", k.JWK.KeyID, k.JWK.Algorithm, k.JWK.Use)
			}
			if k.JWK.IsPublic() || !k.JWK.Valid() && k.Kty != "oct" {
				t.Errorf("JWK is not a valid private key")
			}
			if err := validateKey(Key{}); err == nil {
				t.Errorf("validateKey accepted an empty key")
			}
			k.State = StateNext
			if err := validateKey(k); err != nil {
				t.Errorf("validateKey: %v", err)
			}
			if k.Kty == "oct" {
				if !regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`).MatchString(k.Kid) {
					t.Errorf("oct kid %q is not 128 random bits in base64url", k.Kid)
				}
				if got := len(k.JWK.Key.([]byte)) * 8; got != tt.size {
					t.Errorf("oct key has %d bits, want %d", got, tt.size)
				}
				return
			}
			pub, ok := k.publicJWK()
			if !ok {
				t.Fatalf("no public JWK")
			}
			pubJSON, err := pub.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if want := rfc7638(t, pubJSON); k.Kid != want {
				t.Errorf("kid = %s, want RFC 7638 thumbprint %s", k.Kid, want)
			}
			if err := checkPairwise(k); err != nil {
				t.Errorf("checkPairwise: %v", err)
			}
		})
	}
	t.Run("oct kids are random", func(t *testing.T) {
		a, _ := NewKey("HS256", "", KeyOptions{})
		b, _ := NewKey("HS256", "", KeyOptions{})
		if a.Kid == b.Kid || string(a.JWK.Key.([]byte)) == string(b.JWK.Key.([]byte)) {
			t.Errorf("two HS256 keys share a kid or secret")
		}
	})
}

func TestNewKeyErrors(t *testing.T) {
	tests := []struct {
		name string
		alg  string
		use  Use
		opts KeyOptions
		want error
	}{
		{"unknown alg", "none", "", KeyOptions{}, ErrUnsupported},
		{"empty alg", "", "", KeyOptions{}, ErrUnsupported},
		{"HS1 is not an alg", "HS1", "", KeyOptions{}, ErrUnsupported},
		{"sig alg with enc use", "ES256", UseEnc, KeyOptions{}, ErrInvalidKey},
		{"enc alg with sig use", "A256KW", UseSig, KeyOptions{}, ErrInvalidKey},
		{"RSA 1024", "RS256", "", KeyOptions{RSABits: 1024}, ErrInvalidKey},
		{"RSA 8192", "RS256", "", KeyOptions{RSABits: 8192}, ErrInvalidKey},
		{"ECDH on P-192", "ECDH-ES+A256KW", "", KeyOptions{Curve: "P-192"}, ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewKey(tt.alg, tt.use, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("curve option is ignored for signature algs", func(t *testing.T) {
		k, err := NewKey("ES256", "", KeyOptions{Curve: "P-521"})
		if err != nil || k.Crv != "P-256" {
			t.Errorf("ES256 with Curve P-521 = %v, %v; want a P-256 key", k, err)
		}
	})
}

func TestImportKey(t *testing.T) {
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256b, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	secret := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}

	// An EC key whose d belongs to another key: go-jose accepts it (x, y
	// are on the curve), only a pairwise check catches it.
	mismatched := jsonMembers(t, jwkJSON(t, p256, "", ""))
	mismatched["d"] = jsonMembers(t, jwkJSON(t, p256b, "", ""))["d"]
	mismatchedJSON, _ := json.Marshal(mismatched)

	rfcEC := keyFixture(t, "rfc7517-a2-ec.json")
	rfcECNoUse := jsonMembers(t, rfcEC)
	delete(rfcECNoUse, "use")
	rfcECNoUseJSON, _ := json.Marshal(rfcECNoUse)

	tests := []struct {
		name    string
		jwk     []byte
		alg     string
		use     Use
		want    error // nil: accepted
		wantKty string
		wantCrv string
		size    int
	}{
		{"RFC 7517 RSA for RS256", keyFixture(t, "rfc7517-a2-rsa.json"), "RS256", "", nil, "RSA", "", 2048},
		{"RFC 7517 RSA takes the JWK's alg", keyFixture(t, "rfc7517-a2-rsa.json"), "", "", nil, "RSA", "", 2048},
		{"RFC 7517 RSA against its own alg", keyFixture(t, "rfc7517-a2-rsa.json"), "PS256", "", ErrInvalidKey, "", "", 0},
		{"RSA 2048 for PS512", jwkJSON(t, rsa2048, "", ""), "PS512", "", nil, "RSA", "", 2048},
		{"RSA 2048 for RSA-OAEP-256", jwkJSON(t, rsa2048, "", "enc"), "RSA-OAEP-256", "", nil, "RSA", "", 2048},
		{"RSA 1024 is too short", jwkJSON(t, rsa1024, "", ""), "RS256", "", ErrKeyTooShort, "", "", 0},
		{"RSA public key", jwkJSON(t, &rsa2048.PublicKey, "", ""), "RS256", "", ErrInvalidKey, "", "", 0},
		{"RFC 7638 public key", keyFixture(t, "rfc7638-rsa-public.json"), "RS256", "", ErrInvalidKey, "", "", 0},
		{"RSA for HS256", jwkJSON(t, rsa2048, "", ""), "HS256", "", ErrInvalidKey, "", "", 0},
		{"RSA for ES256", jwkJSON(t, rsa2048, "", ""), "ES256", "", ErrInvalidKey, "", "", 0},
		{"P-256 for ES256", jwkJSON(t, p256, "", ""), "ES256", "", nil, "EC", "P-256", 0},
		{"P-256 for ES256 with use sig", jwkJSON(t, p256, "ES256", "sig"), "ES256", UseSig, nil, "EC", "P-256", 0},
		{"P-384 for ES256", jwkJSON(t, p384, "", ""), "ES256", "", ErrInvalidKey, "", "", 0},
		{"P-256 for ES384", jwkJSON(t, p256, "", ""), "ES384", "", ErrInvalidKey, "", "", 0},
		{"P-521 for ES512", jwkJSON(t, p521, "", ""), "ES512", "", nil, "EC", "P-521", 0},
		{"P-384 for ECDH-ES+A256KW", jwkJSON(t, p384, "", ""), "ECDH-ES+A256KW", "", nil, "EC", "P-384", 0},
		{"EC public key", jwkJSON(t, &p256.PublicKey, "", ""), "ES256", "", ErrInvalidKey, "", "", 0},
		{"EC d from another key", mismatchedJSON, "ES256", "", ErrInvalidKey, "", "", 0},
		{"RFC 7517 EC has use enc", rfcEC, "ES256", "", ErrInvalidKey, "", "", 0},
		{"RFC 7517 EC without use", rfcECNoUseJSON, "ES256", "", nil, "EC", "P-256", 0},
		{"RFC 7517 EC for ECDH", rfcEC, "ECDH-ES+A256KW", UseEnc, nil, "EC", "P-256", 0},
		{"Ed25519 for EdDSA", jwkJSON(t, ed, "", ""), "EdDSA", "", nil, "OKP", "Ed25519", 0},
		{"Ed25519 for ES256", jwkJSON(t, ed, "", ""), "ES256", "", ErrInvalidKey, "", "", 0},
		{"Ed25519 public key", jwkJSON(t, ed.Public(), "", ""), "EdDSA", "", ErrInvalidKey, "", "", 0},
		{"HS256 32 bytes", jwkJSON(t, secret(32), "", ""), "HS256", "", nil, "oct", "", 256},
		{"HS256 31 bytes", jwkJSON(t, secret(31), "", ""), "HS256", "", ErrKeyTooShort, "", "", 0},
		{"HS384 47 bytes", jwkJSON(t, secret(47), "", ""), "HS384", "", ErrKeyTooShort, "", "", 0},
		{"HS384 48 bytes", jwkJSON(t, secret(48), "", ""), "HS384", "", nil, "oct", "", 384},
		{"HS512 63 bytes", jwkJSON(t, secret(63), "", ""), "HS512", "", ErrKeyTooShort, "", "", 0},
		{"HS512 100 bytes", jwkJSON(t, secret(100), "", ""), "HS512", "", nil, "oct", "", 800},
		{"HS256 2 KiB", jwkJSON(t, secret(2048), "", ""), "HS256", "", ErrInvalidKey, "", "", 0},
		{"A256KW 16 bytes", jwkJSON(t, secret(16), "", ""), "A256KW", "", ErrKeyTooShort, "", "", 0},
		{"A256KW 33 bytes", jwkJSON(t, secret(33), "", ""), "A256KW", "", ErrInvalidKey, "", "", 0},
		{"dir 32 bytes", jwkJSON(t, secret(32), "", ""), "dir", "", nil, "oct", "", 256},
		{"oct for RS256", jwkJSON(t, secret(64), "", ""), "RS256", "", ErrInvalidKey, "", "", 0},
		{"JWK alg contradicts", jwkJSON(t, secret(64), "HS512", ""), "HS256", "", ErrInvalidKey, "", "", 0},
		{"JWK use contradicts", jwkJSON(t, secret(64), "", "enc"), "HS256", "", ErrInvalidKey, "", "", 0},
		{"use contradicts alg", jwkJSON(t, secret(64), "", ""), "HS256", UseEnc, ErrInvalidKey, "", "", 0},
		{"no alg anywhere", jwkJSON(t, secret(64), "", ""), "", "", ErrInvalidKey, "", "", 0},
		{"alg none", jwkJSON(t, secret(64), "", ""), "none", "", ErrUnsupported, "", "", 0},
		{"not JSON", []byte("{not json"), "HS256", "", ErrInvalidKey, "", "", 0},
		{"empty", nil, "HS256", "", ErrInvalidKey, "", "", 0},
		{"unknown kty", []byte(`{"kty":"XYZ","k":"AAAA"}`), "HS256", "", ErrInvalidKey, "", "", 0},
		{"too large", []byte(`{"kty":"oct","k":"` + strings.Repeat("A", 70000) + `"}`), "HS256", "", ErrInvalidKey, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			k, err := ImportKey(tt.jwk, tt.alg, tt.use, KeyOptions{Now: func() time.Time { return created }})
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				assertNoSecretsIn(t, err.Error(), tt.jwk)
				return
			}
			if err != nil {
				t.Fatalf("ImportKey: %v", err)
			}
			if k.Kty != tt.wantKty || k.Crv != tt.wantCrv || k.Size != tt.size {
				t.Errorf("key = %v, want kty %s crv %q size %d", k, tt.wantKty, tt.wantCrv, tt.size)
			}
			if !k.Created.Equal(created) {
				t.Errorf("Created = %v, want the given clock's %v", k.Created, created)
			}
			if k.JWK.KeyID != k.Kid || k.JWK.Algorithm != k.Alg || k.JWK.Use != string(k.Use) || k.Use == "" {
				t.Errorf("JWK kid/alg/use = %q/%q/%q", k.JWK.KeyID, k.JWK.Algorithm, k.JWK.Use)
			}
			if k.Kty != "oct" {
				pub, _ := k.publicJWK()
				pubJSON, _ := pub.MarshalJSON()
				if want := rfc7638(t, pubJSON); k.Kid != want {
					t.Errorf("kid = %s, want thumbprint %s", k.Kid, want)
				}
			}
			k.State, k.Activated = StateActive, time.Now()
			if err := validateKey(k); err != nil {
				t.Errorf("validateKey: %v", err)
			}
		})
	}
}

// assertNoSecretsIn fails if s contains any private member value of jwk.
func assertNoSecretsIn(t *testing.T, s string, jwk []byte) {
	t.Helper()
	var m map[string]any
	if json.Unmarshal(jwk, &m) != nil {
		return
	}
	for _, name := range privateMembers {
		if v, ok := m[name].(string); ok && len(v) >= 8 && strings.Contains(s, v[:8]) {
			t.Errorf("%q leaks private member %s", s, name)
		}
	}
}

// TestKeyRedaction: no fmt verb, JSON encoding or public view of a Key,
// Keyset or VerifyKey shows private material.
func TestKeyRedaction(t *testing.T) {
	rsaKey, err := NewKey("RS256", "", KeyOptions{RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := NewKey("ES256", "", KeyOptions{})
	edKey, _ := NewKey("EdDSA", "", KeyOptions{})
	hsKey, _ := NewKey("HS256", "", KeyOptions{})
	ecKey.State, ecKey.Activated = StateActive, time.Now()

	for _, k := range []Key{rsaKey, ecKey, edKey, hsKey} {
		t.Run(k.Alg, func(t *testing.T) {
			full := jsonMembers(t, jwkJSON(t, k.JWK.Key, "", ""))
			var secrets []string
			for _, name := range privateMembers {
				if v, ok := full[name].(string); ok {
					secrets = append(secrets, v)
				}
			}
			if len(secrets) == 0 {
				t.Fatal("test bug: no private members found")
			}
			var raw []string // decimal/hex forms of the private numbers
			switch pk := k.JWK.Key.(type) {
			case *rsa.PrivateKey:
				raw = append(raw, pk.D.String(), pk.Primes[0].String(), pk.D.Text(16))
			case *ecdsa.PrivateKey:
				raw = append(raw, pk.D.String(), pk.D.Text(16))
			case ed25519.PrivateKey:
				raw = append(raw, fmt.Sprintf("%x", []byte(pk.Seed())), fmt.Sprint([]byte(pk.Seed())))
			case []byte:
				raw = append(raw, fmt.Sprintf("%x", pk), fmt.Sprint(pk), string(pk))
			}
			vk := VerifyKey{JWK: k.JWK, State: StateActive}
			ks := Keyset{Name: "x", Keys: []Key{k}}
			var outputs []string
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
				outputs = append(outputs,
					fmt.Sprintf(verb, k), fmt.Sprintf(verb, &k), fmt.Sprintf(verb, ks),
					fmt.Sprintf(verb, []Key{k}), fmt.Sprintf(verb, vk), fmt.Sprintf(verb, []VerifyKey{vk}))
			}
			for _, v := range []any{k, &k, ks, vk, k.PublicInfo()} {
				b, err := json.Marshal(v)
				if err != nil {
					t.Fatalf("json.Marshal(%T): %v", v, err)
				}
				outputs = append(outputs, string(b))
			}
			for _, out := range outputs {
				for _, s := range secrets {
					if strings.Contains(out, s) {
						t.Errorf("output leaks a private member: %.80s...", out)
					}
				}
				for _, s := range raw {
					if len(s) >= 16 && strings.Contains(out, s[:16]) || len(s) < 16 && s != "" && strings.Contains(out, s) {
						t.Errorf("output leaks raw private material: %.80s...", out)
					}
				}
			}
			b, _ := json.Marshal(k)
			m := jsonMembers(t, b)
			if m["kid"] != k.Kid || m["alg"] != k.Alg || m["use"] != string(k.Use) || m["kty"] != k.Kty {
				t.Errorf("Key JSON %s lacks its public description", b)
			}
			if _, ok := m["jwk"]; ok {
				t.Errorf("Key JSON has a jwk member: %s", b)
			}
		})
	}
	t.Run("store codec keeps private keys", func(t *testing.T) {
		ks := Keyset{Name: "x", Keys: []Key{ecKey}, Updated: time.Now()}
		data, err := encodeKeyset(ks)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeKeyset("x", data)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !back.Keys[0].JWK.Key.(*ecdsa.PrivateKey).Equal(ecKey.JWK.Key) {
			t.Errorf("private key did not survive the store codec")
		}
	})
	t.Run("errors do not carry key material", func(t *testing.T) {
		ks := Keyset{Name: "x", Keys: []Key{ecKey, ecKey}}
		err := validateKeyset(ks)
		if err == nil {
			t.Fatal("duplicate accepted")
		}
		full := jsonMembers(t, jwkJSON(t, ecKey.JWK.Key, "", ""))
		if strings.Contains(err.Error(), full["d"].(string)) || strings.Contains(err.Error(), ecKey.JWK.Key.(*ecdsa.PrivateKey).D.String()) {
			t.Errorf("error leaks d: %v", err)
		}
	})
}

func TestAlgorithms(t *testing.T) {
	algs := Algorithms()
	want := []string{"A256KW", "ECDH-ES+A256KW", "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512",
		"PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "RSA-OAEP-256", "dir"}
	if !slices.Equal(algs, want) {
		t.Errorf("Algorithms = %v, want %v", algs, want)
	}
	for _, tt := range []struct {
		alg  string
		want Use
	}{{"ES256", UseSig}, {"HS512", UseSig}, {"dir", UseEnc}, {"RSA-OAEP-256", UseEnc}} {
		if got, err := AlgorithmUse(tt.alg); got != tt.want || err != nil {
			t.Errorf("AlgorithmUse(%s) = %s, %v; want %s", tt.alg, got, err, tt.want)
		}
	}
	if _, err := AlgorithmUse("none"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("AlgorithmUse(none) = %v, want ErrUnsupported", err)
	}
}
