package jose

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
)

// ErrInvalidKey is a key that cannot be used as asked: unparseable, the
// wrong type or curve for its algorithm, a public key where a private one is
// needed, or alg/use members that contradict the request. Keys that are
// merely too small wrap ErrKeyTooShort instead.
var ErrInvalidKey = errors.New("invalid key")

// Key sizes. RSA keys below minRSABits are refused everywhere; go-jose will
// not parse moduli above gojose.MaxRSAModulusBits (4096), so neither do we.
const (
	minRSABits     = 2048
	defaultRSABits = 3072
	maxRSABits     = 4096
	maxOctBytes    = 1024     // an HMAC secret longer than this is a mistake
	maxImportBytes = 64 << 10 // a 4096-bit private RSA JWK is about 3.2 KiB
	kidRandomBytes = 16       // oct kids: 128 random bits
)

// keyAlgSpec is what flowd accepts for one JOSE algorithm.
type keyAlgSpec struct {
	alg    string
	use    Use
	kty    string   // RSA, EC, OKP, oct
	curves []string // EC/OKP: allowed curves, first is the default
	octMin int      // oct: minimum key length in bytes
	octMax int      // oct: maximum key length in bytes
}

// keyAlgSpecs lists every algorithm flowd can make or import keys for.
var keyAlgSpecs = map[string]keyAlgSpec{
	"RS256": {alg: "RS256", use: UseSig, kty: "RSA"},
	"RS384": {alg: "RS384", use: UseSig, kty: "RSA"},
	"RS512": {alg: "RS512", use: UseSig, kty: "RSA"},
	"PS256": {alg: "PS256", use: UseSig, kty: "RSA"},
	"PS384": {alg: "PS384", use: UseSig, kty: "RSA"},
	"PS512": {alg: "PS512", use: UseSig, kty: "RSA"},
	"ES256": {alg: "ES256", use: UseSig, kty: "EC", curves: []string{"P-256"}},
	"ES384": {alg: "ES384", use: UseSig, kty: "EC", curves: []string{"P-384"}},
	"ES512": {alg: "ES512", use: UseSig, kty: "EC", curves: []string{"P-521"}},
	"EdDSA": {alg: "EdDSA", use: UseSig, kty: "OKP", curves: []string{"Ed25519"}},
	// HMAC secrets at least as long as the hash output (RFC 7518 §3.2).
	"HS256": {alg: "HS256", use: UseSig, kty: "oct", octMin: 32, octMax: maxOctBytes},
	"HS384": {alg: "HS384", use: UseSig, kty: "oct", octMin: 48, octMax: maxOctBytes},
	"HS512": {alg: "HS512", use: UseSig, kty: "oct", octMin: 64, octMax: maxOctBytes},

	"RSA-OAEP-256":   {alg: "RSA-OAEP-256", use: UseEnc, kty: "RSA"},
	"ECDH-ES+A256KW": {alg: "ECDH-ES+A256KW", use: UseEnc, kty: "EC", curves: []string{"P-256", "P-384", "P-521"}},
	"A256KW":         {alg: "A256KW", use: UseEnc, kty: "oct", octMin: 32, octMax: 32},
	"dir":            {alg: "dir", use: UseEnc, kty: "oct", octMin: 32, octMax: 32}, // with A256GCM
}

// Algorithms returns the algorithms flowd makes keys for, sorted: the list
// for editor forms and config validation.
func Algorithms() []string {
	algs := make([]string, 0, len(keyAlgSpecs))
	for a := range keyAlgSpecs {
		algs = append(algs, a)
	}
	slices.Sort(algs)
	return algs
}

// AlgorithmUse returns the JWK use of keys for alg: sig or enc.
func AlgorithmUse(alg string) (Use, error) {
	spec, err := lookupKeyAlg(alg)
	if err != nil {
		return "", err
	}
	return spec.use, nil
}

func lookupKeyAlg(alg string) (keyAlgSpec, error) {
	spec, ok := keyAlgSpecs[alg]
	if !ok {
		// alg is caller input, not key material: safe to quote.
		return keyAlgSpec{}, fmt.Errorf("%w: %q", ErrUnsupported, alg)
	}
	return spec, nil
}

// resolveUse checks use against the algorithm; "" means the algorithm's use.
func (s keyAlgSpec) resolveUse(use Use) (Use, error) {
	switch use {
	case "":
		return s.use, nil
	case s.use:
		return use, nil
	default:
		return "", fmt.Errorf("%w: %s keys have use %q, not %q", ErrInvalidKey, s.alg, s.use, use)
	}
}

// KeyOptions tunes key generation.
type KeyOptions struct {
	// RSABits is the modulus size of new RSA keys: 2048, 3072 or 4096.
	// Zero means 3072.
	RSABits int
	// Curve is the curve of new ECDH-ES+A256KW keys: P-256 (default),
	// P-384 or P-521. Signature algorithms fix their own curve.
	Curve string
	// Now stamps Created; nil means time.Now.
	Now func() time.Time
}

func (o KeyOptions) now() time.Time {
	if o.Now != nil {
		return storeTime(o.Now())
	}
	return storeTime(time.Now())
}

// storeTime drops the monotonic reading and location so that times compare
// and serialize the same before and after a trip through the store.
func storeTime(t time.Time) time.Time { return t.UTC().Round(0) }

// NewKey generates a private key for alg with use ("" means the
// algorithm's use). Its JWK carries kid, alg and use. The key's State is
// left empty: a keyset decides it.
func NewKey(alg string, use Use, opts KeyOptions) (Key, error) {
	spec, err := lookupKeyAlg(alg)
	if err != nil {
		return Key{}, err
	}
	if use, err = spec.resolveUse(use); err != nil {
		return Key{}, err
	}
	var material any
	switch spec.kty {
	case "RSA":
		bits := opts.RSABits
		if bits == 0 {
			bits = defaultRSABits
		}
		switch bits {
		case 2048, 3072, 4096:
		default:
			return Key{}, fmt.Errorf("%w: RSA size %d bits (want 2048, 3072 or 4096)", ErrInvalidKey, bits)
		}
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return Key{}, fmt.Errorf("generate %s key: %w", alg, err)
		}
		material = k
	case "EC":
		crv := spec.curves[0]
		if opts.Curve != "" && len(spec.curves) > 1 {
			crv = opts.Curve
		}
		curve, ok := curveForName(crv)
		if !ok || !slices.Contains(spec.curves, crv) {
			return Key{}, fmt.Errorf("%w: curve %q for %s", ErrInvalidKey, crv, alg)
		}
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			return Key{}, fmt.Errorf("generate %s key: %w", alg, err)
		}
		material = k
	case "OKP":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return Key{}, fmt.Errorf("generate %s key: %w", alg, err)
		}
		material = k
	case "oct":
		// Full hash length for HMAC, exactly 32 bytes for AES-256.
		k := make([]byte, spec.octMin)
		if _, err := rand.Read(k); err != nil {
			return Key{}, fmt.Errorf("generate %s key: %w", alg, err)
		}
		material = k
	}
	return newKeyFromMaterial(spec, use, material, opts.now())
}

// ImportKey reads an existing private JWK (the secret, for oct keys) for alg
// and use. alg "" takes the JWK's own alg member; use "" means the
// algorithm's use. It refuses keys that are too small (RSA < 2048 bits, oct
// shorter than the hash) with ErrKeyTooShort, and public-only keys, keys of
// the wrong type or curve for alg (a P-384 key for ES256), keys whose alg or
// use member contradicts the request, and keys whose private and public
// parts do not match, with ErrInvalidKey.
//
// flowd assigns the kid: the RFC 7638 thumbprint for asymmetric keys, 128
// random bits for oct keys. A kid in the JWK is ignored, and so are x5c and
// the other certificate members. opts.Now stamps Created (nil: time.Now);
// the other options are for generated keys only.
func ImportKey(jwk []byte, alg string, use Use, opts KeyOptions) (Key, error) {
	if len(jwk) > maxImportBytes {
		return Key{}, fmt.Errorf("%w: JWK larger than %d bytes", ErrInvalidKey, maxImportBytes)
	}
	var parsed gojose.JSONWebKey
	if err := parsed.UnmarshalJSON(jwk); err != nil {
		// go-jose and encoding/json errors name members and offsets, never
		// values, so the cause is safe to keep.
		return Key{}, fmt.Errorf("%w: parse JWK: %w", ErrInvalidKey, err)
	}
	if alg == "" {
		alg = parsed.Algorithm
	}
	if alg == "" {
		return Key{}, fmt.Errorf("%w: no alg given and the JWK has none", ErrInvalidKey)
	}
	spec, err := lookupKeyAlg(alg)
	if err != nil {
		return Key{}, err
	}
	if parsed.Algorithm != "" && parsed.Algorithm != alg {
		return Key{}, fmt.Errorf("%w: JWK alg %q does not match %s", ErrInvalidKey, parsed.Algorithm, alg)
	}
	if use, err = spec.resolveUse(use); err != nil {
		return Key{}, err
	}
	if parsed.Use != "" && Use(parsed.Use) != use {
		return Key{}, fmt.Errorf("%w: JWK use %q does not match %q", ErrInvalidKey, parsed.Use, use)
	}
	if parsed.IsPublic() {
		return Key{}, fmt.Errorf("%w: the JWK is a public key; a keyset needs the private key", ErrInvalidKey)
	}
	if rk, ok := parsed.Key.(*rsa.PrivateKey); ok {
		// Fill in CRT values a JWK may omit; signing is slow without them.
		rk.Precompute()
	}
	if b, ok := parsed.Key.([]byte); ok {
		parsed.Key = bytes.Clone(b)
	}
	k, err := newKeyFromMaterial(spec, use, parsed.Key, opts.now())
	if err != nil {
		return Key{}, err
	}
	if err := checkPairwise(k); err != nil {
		return Key{}, err
	}
	return k, nil
}

// newKeyFromMaterial checks material against spec and wraps it as a Key with
// its kid, alg and use set on the JWK.
func newKeyFromMaterial(spec keyAlgSpec, use Use, material any, created time.Time) (Key, error) {
	kty, crv, size, err := checkMaterial(spec, material)
	if err != nil {
		return Key{}, err
	}
	jwk := gojose.JSONWebKey{Key: material, Algorithm: spec.alg, Use: string(use)}
	kid, err := makeKid(&jwk)
	if err != nil {
		return Key{}, err
	}
	jwk.KeyID = kid
	return Key{
		Kid:     kid,
		Kty:     kty,
		Crv:     crv,
		Size:    size,
		Alg:     spec.alg,
		Use:     use,
		Created: created,
		JWK:     jwk,
	}, nil
}

// checkMaterial checks that material is a private key (or secret) of the
// right type, curve and size for spec, and describes it.
func checkMaterial(spec keyAlgSpec, material any) (kty, crv string, size int, err error) {
	switch k := material.(type) {
	case *rsa.PrivateKey:
		if spec.kty != "RSA" {
			break
		}
		if k == nil || k.N == nil || k.D == nil || len(k.Primes) != 2 {
			return "", "", 0, fmt.Errorf("%w: incomplete RSA private key", ErrInvalidKey)
		}
		bits := k.N.BitLen()
		if bits < minRSABits {
			return "", "", 0, fmt.Errorf("%w: RSA key of %d bits for %s (minimum %d)", ErrKeyTooShort, bits, spec.alg, minRSABits)
		}
		if bits > maxRSABits {
			return "", "", 0, fmt.Errorf("%w: RSA key of %d bits (maximum %d)", ErrInvalidKey, bits, maxRSABits)
		}
		return "RSA", "", bits, nil
	case *ecdsa.PrivateKey:
		if spec.kty != "EC" {
			break
		}
		if k == nil || k.Curve == nil || k.D == nil || k.X == nil || k.Y == nil {
			return "", "", 0, fmt.Errorf("%w: incomplete EC private key", ErrInvalidKey)
		}
		name := k.Curve.Params().Name
		if !slices.Contains(spec.curves, name) {
			return "", "", 0, fmt.Errorf("%w: curve %s cannot be used for %s (want %v)", ErrInvalidKey, name, spec.alg, spec.curves)
		}
		return "EC", name, 0, nil
	case ed25519.PrivateKey:
		if spec.kty != "OKP" {
			break
		}
		if len(k) != ed25519.PrivateKeySize {
			return "", "", 0, fmt.Errorf("%w: Ed25519 private key of %d bytes", ErrInvalidKey, len(k))
		}
		return "OKP", "Ed25519", 0, nil
	case []byte:
		if spec.kty != "oct" {
			break
		}
		if len(k) < spec.octMin {
			return "", "", 0, fmt.Errorf("%w: %d-byte secret for %s (minimum %d)", ErrKeyTooShort, len(k), spec.alg, spec.octMin)
		}
		if len(k) > spec.octMax {
			return "", "", 0, fmt.Errorf("%w: %d-byte secret for %s (maximum %d)", ErrInvalidKey, len(k), spec.alg, spec.octMax)
		}
		return "oct", "", len(k) * 8, nil
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return "", "", 0, fmt.Errorf("%w: public key where a private key is needed", ErrInvalidKey)
	}
	return "", "", 0, fmt.Errorf("%w: key type %s cannot be used for %s", ErrInvalidKey, materialKty(material), spec.alg)
}

// materialKty names the JWK kty of material for error messages.
func materialKty(material any) string {
	switch material.(type) {
	case *rsa.PrivateKey, *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PrivateKey, *ecdsa.PublicKey:
		return "EC"
	case ed25519.PrivateKey, ed25519.PublicKey:
		return "OKP"
	case []byte:
		return "oct"
	case nil:
		return ""
	default:
		return fmt.Sprintf("%T", material)
	}
}

func curveForName(name string) (elliptic.Curve, bool) {
	switch name {
	case "P-256":
		return elliptic.P256(), true
	case "P-384":
		return elliptic.P384(), true
	case "P-521":
		return elliptic.P521(), true
	}
	return nil, false
}

// makeKid is the RFC 7638 SHA-256 thumbprint for asymmetric keys. oct keys
// get 128 random bits instead: a published hash of a secret is an oracle
// for guessing it.
func makeKid(jwk *gojose.JSONWebKey) (string, error) {
	if _, ok := jwk.Key.([]byte); ok {
		var b [kidRandomBytes]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("random kid: %w", err)
		}
		return base64.RawURLEncoding.EncodeToString(b[:]), nil
	}
	return jwkThumbprint(jwk)
}

// thumbprint is the base64url RFC 7638 SHA-256 thumbprint of an asymmetric
// key (public or private).
func jwkThumbprint(jwk *gojose.JSONWebKey) (string, error) {
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("%w: thumbprint: %w", ErrInvalidKey, err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// checkPairwise proves that an asymmetric key's private part matches its
// public part (go-jose checks this for RSA and Ed25519 but not for EC) by a
// round trip through go-jose.
func checkPairwise(k Key) error {
	if k.Kty == "oct" {
		return nil
	}
	pub := k.JWK.Public()
	msg := []byte("flowd pairwise key check")
	switch k.Use {
	case UseSig:
		alg := gojose.SignatureAlgorithm(k.Alg)
		s, err := gojose.NewSigner(gojose.SigningKey{Algorithm: alg, Key: k.JWK.Key}, nil)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
		jws, err := s.Sign(msg)
		if err != nil {
			return fmt.Errorf("%w: test signature: %w", ErrInvalidKey, err)
		}
		compact, err := jws.CompactSerialize()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
		parsed, err := gojose.ParseSignedCompact(compact, []gojose.SignatureAlgorithm{alg})
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
		if _, err := parsed.Verify(pub.Key); err != nil {
			return fmt.Errorf("%w: private and public parts do not match", ErrInvalidKey)
		}
	case UseEnc:
		alg := gojose.KeyAlgorithm(k.Alg)
		e, err := gojose.NewEncrypter(gojose.A256GCM, gojose.Recipient{Algorithm: alg, Key: pub.Key}, nil)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
		jwe, err := e.Encrypt(msg)
		if err != nil {
			return fmt.Errorf("%w: test encryption: %w", ErrInvalidKey, err)
		}
		compact, err := jwe.CompactSerialize()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
		parsed, err := gojose.ParseEncryptedCompact(compact, []gojose.KeyAlgorithm{alg}, []gojose.ContentEncryption{gojose.A256GCM})
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
		if out, err := parsed.Decrypt(k.JWK.Key); err != nil || !bytes.Equal(out, msg) {
			return fmt.Errorf("%w: private and public parts do not match", ErrInvalidKey)
		}
	}
	return nil
}

// publicJWK is the JWK a key may be shown as: the public part of an
// asymmetric key with kid, alg and use; ok is false for oct keys, which
// have no public part.
func (k Key) publicJWK() (jwk gojose.JSONWebKey, ok bool) {
	if k.Kty == "oct" {
		return gojose.JSONWebKey{}, false
	}
	if _, isSecret := k.JWK.Key.([]byte); isSecret {
		return gojose.JSONWebKey{}, false
	}
	pub := k.JWK.Public()
	if pub.Key == nil || !pub.IsPublic() {
		return gojose.JSONWebKey{}, false
	}
	return gojose.JSONWebKey{Key: pub.Key, KeyID: k.Kid, Algorithm: k.Alg, Use: string(k.Use)}, true
}

// KeyInfo is the public description of a key: what the admin API, the UI,
// exports and logs may show. It never holds key material.
type KeyInfo struct {
	Kid       string    `json:"kid"`
	Kty       string    `json:"kty"`
	Crv       string    `json:"crv,omitempty"`
	Size      int       `json:"size,omitempty"`
	Alg       string    `json:"alg"`
	Use       Use       `json:"use"`
	State     State     `json:"state"`
	Created   time.Time `json:"created"`
	Activated time.Time `json:"activated,omitzero"`
	RetireAt  time.Time `json:"retire_at,omitzero"`
	Revoked   bool      `json:"revoked,omitempty"`
}

// PublicInfo describes k without key material.
func (k Key) PublicInfo() KeyInfo {
	return KeyInfo{
		Kid:       k.Kid,
		Kty:       k.Kty,
		Crv:       k.Crv,
		Size:      k.Size,
		Alg:       k.Alg,
		Use:       k.Use,
		State:     k.State,
		Created:   k.Created,
		Activated: k.Activated,
		RetireAt:  k.RetireAt,
		Revoked:   k.Revoked,
	}
}

// MarshalJSON writes the public description only. The keyset store has its
// own codec (storedKey) that keeps the private JWK; any other path that
// serializes a Key (an API response, a log, an export) cannot leak it.
func (k Key) MarshalJSON() ([]byte, error) { return json.Marshal(k.PublicInfo()) }

// String describes k without key material.
func (k Key) String() string {
	s := fmt.Sprintf("key{kid=%s alg=%s use=%s kty=%s", k.Kid, k.Alg, k.Use, k.Kty)
	if k.Crv != "" {
		s += " crv=" + k.Crv
	}
	if k.Size != 0 {
		s += fmt.Sprintf(" size=%d", k.Size)
	}
	if k.State != "" {
		s += " state=" + string(k.State)
	}
	if k.Revoked {
		s += " revoked"
	}
	return s + "}"
}

// GoString keeps %#v from printing the private key.
func (k Key) GoString() string { return k.String() }

// Format makes every fmt verb (%v, %+v, %#v, %d, %x, ...) print String:
// without it, %d or %x of a Key would walk into the private key's fields.
func (k Key) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, k.String()) }

// String describes a verification key without its material (for an oct
// key the material is the HMAC secret).
func (v VerifyKey) String() string {
	return fmt.Sprintf("verifykey{kid=%s alg=%s use=%s kty=%s state=%s}",
		v.JWK.KeyID, v.JWK.Algorithm, v.JWK.Use, materialKty(v.JWK.Key), v.State)
}

// GoString keeps %#v from printing an HMAC secret.
func (v VerifyKey) GoString() string { return v.String() }

// Format makes every fmt verb print String.
func (v VerifyKey) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, v.String()) }

// MarshalJSON writes the public JWK of an asymmetric key, and only kid,
// kty, alg and use for an oct key: the HMAC secret is never serialized.
func (v VerifyKey) MarshalJSON() ([]byte, error) {
	type out struct {
		JWK   any   `json:"jwk"`
		State State `json:"state,omitempty"`
	}
	if _, secret := v.JWK.Key.([]byte); secret || v.JWK.Key == nil {
		return json.Marshal(out{JWK: map[string]string{
			"kty": materialKty(v.JWK.Key), "kid": v.JWK.KeyID, "alg": v.JWK.Algorithm, "use": v.JWK.Use,
		}, State: v.State})
	}
	pub := v.JWK.Public()
	if !pub.IsPublic() {
		return nil, fmt.Errorf("%w: unknown key type %T", ErrInvalidKey, v.JWK.Key)
	}
	return json.Marshal(out{JWK: pub, State: v.State})
}
