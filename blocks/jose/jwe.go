package jose

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"

	gojose "github.com/go-jose/go-jose/v4"
)

// JWE: compact serialization only, one recipient, explicit allow-lists.
//
//	Decrypt: size cap ─► split (5 canonical base64url segments) ─► strict
//	  header (alg/enc allow-lists, zip, crit, p2c/p2s, kid) ─► segment shape
//	  (encrypted key empty exactly for dir and ECDH-ES) ─► exactly one key
//	  (kid + alg + use + kty/size) ─► go-jose ParseEncryptedCompact + Decrypt
//	  ─► plaintext size cap
//
// Every refusal is a *TokenError with ReasonDecryptFailed, whatever the
// cause, so a caller cannot tell a bad padding from a bad tag.

// Default allow-lists of a Decrypter (unexported: a slice would be
// mutable global state).
var (
	defaultJWEKeyAlgorithms      = []string{"RSA-OAEP-256", "ECDH-ES+A256KW", "A256KW", "dir"}
	defaultJWEContentEncryptions = []string{"A256GCM", "A128GCM"}
)

const (
	DefaultJWEMaxTokenSize     = 64 << 10
	DefaultJWEMaxPlaintextSize = 64 << 10
	DefaultPBES2MinCount       = 1000
	DefaultPBES2MaxCount       = 600000
	maxPBES2Count              = 1000000 // go-jose's own ceiling
	minPBES2SaltBytes          = 8       // RFC 7518 §4.8.1.1
	minJWERSABits              = 2048
)

// ErrInvalidJWEOptions wraps every error of NewEncrypter and NewDecrypter.
var ErrInvalidJWEOptions = errors.New("invalid JWE options")

// JWEAllow switches on the algorithms that are off by default: RSA1_5
// (padding oracles), PBES2-* (password based: CPU cost chosen by the
// sender), A*CBC-HS* (CBC with HMAC; GCM is preferred) and zip (DEFLATE:
// compression before encryption leaks length and can be a bomb). Listing
// one of them without its switch is an error.
type JWEAllow struct {
	RSA1_5 bool
	PBES2  bool
	CBC    bool
	Zip    bool
}

// JWEHeader is the part of a JWE header a caller may use.
type JWEHeader struct {
	Alg string `json:"alg"`
	Enc string `json:"enc"`
	Kid string `json:"kid,omitempty"`
	Cty string `json:"cty,omitempty"`
	Typ string `json:"typ,omitempty"`
	Zip string `json:"zip,omitempty"`
}

// Decrypted is a JWE that decrypted and authenticated.
type Decrypted struct {
	Plaintext []byte
	Header    JWEHeader
	KeyID     string // kid of the key that decrypted it ("" if it has none)
}

// DecrypterOptions configures NewDecrypter.
type DecrypterOptions struct {
	// Keys are the private keys (RSA, EC) and secrets (oct: AES key wrap,
	// dir, or a PBES2 password) the decrypter may use. A key's alg (when
	// set) pins it to that algorithm; for dir it may name the enc instead.
	// Keys that fit none of the allowed algorithms are left out; at least
	// one must fit.
	Keys []gojose.JSONWebKey
	// KeyAlgorithms and ContentEncryptions are the allow-lists; empty
	// means RSA-OAEP-256, ECDH-ES+A256KW, A256KW, dir and A256GCM, A128GCM.
	KeyAlgorithms      []string
	ContentEncryptions []string
	Allow              JWEAllow
	// PBES2MinCount and PBES2MaxCount bound p2c (defaults 1000, 600000),
	// checked before any key derivation runs.
	PBES2MinCount, PBES2MaxCount int
	// MaxTokenSize and MaxPlaintextSize cap input and output; default 64 KiB.
	MaxTokenSize, MaxPlaintextSize int
}

// Decrypter decrypts compact JWEs. It is immutable and safe for concurrent
// use.
type Decrypter struct {
	keys      []gojose.JSONWebKey
	keyAlgs   map[string]*jweKeyAlgInfo
	encs      map[string]*jweEncInfo
	allowZip  bool
	p2cMin    int
	p2cMax    int
	maxToken  int
	maxOutput int
}

// NewDecrypter checks the options and keys.
func NewDecrypter(o DecrypterOptions) (*Decrypter, error) {
	d := &Decrypter{
		allowZip:  o.Allow.Zip,
		p2cMin:    o.PBES2MinCount,
		p2cMax:    o.PBES2MaxCount,
		maxToken:  o.MaxTokenSize,
		maxOutput: o.MaxPlaintextSize,
	}
	var err error
	if d.keyAlgs, d.encs, err = jweAllowLists(o.KeyAlgorithms, o.ContentEncryptions, o.Allow); err != nil {
		return nil, err
	}
	if d.p2cMin == 0 {
		d.p2cMin = DefaultPBES2MinCount
	}
	if d.p2cMax == 0 {
		d.p2cMax = DefaultPBES2MaxCount
	}
	if d.p2cMin < 1 || d.p2cMin > d.p2cMax || d.p2cMax > maxPBES2Count {
		return nil, fmt.Errorf("%w: PBES2 counts must satisfy 1 <= min <= max <= %d", ErrInvalidJWEOptions, maxPBES2Count)
	}
	if d.maxToken == 0 {
		d.maxToken = DefaultJWEMaxTokenSize
	}
	if d.maxOutput == 0 {
		d.maxOutput = DefaultJWEMaxPlaintextSize
	}
	if d.maxToken < 0 || d.maxOutput < 0 {
		return nil, fmt.Errorf("%w: negative size limit", ErrInvalidJWEOptions)
	}
	for i, k := range o.Keys {
		usable, err := usableDecryptionKey(k, d.keyAlgs, d.encs)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %w", ErrInvalidJWEOptions, i, err)
		}
		if usable {
			d.keys = append(d.keys, k)
		}
	}
	if len(d.keys) == 0 {
		return nil, fmt.Errorf("%w: no key fits the allowed algorithms", ErrInvalidJWEOptions)
	}
	return d, nil
}

// usableDecryptionKey reports whether k fits at least one allowed alg/enc
// pair (by kind, size, use and alg member). A key that fits none is left
// out, so a keyset may hold keys for algorithms this decrypter does not
// allow; a public key or a badly shaped kid is a mistake.
func usableDecryptionKey(k gojose.JSONWebKey, keyAlgs map[string]*jweKeyAlgInfo, encs map[string]*jweEncInfo) (bool, error) {
	if k.KeyID != "" && !kidShapeOK(k.KeyID) {
		return false, errors.New("kid is badly shaped")
	}
	switch k.Key.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
		return false, errors.New("a decryption key must be private")
	}
	for _, alg := range keyAlgs {
		for _, enc := range encs {
			if alg.fits(k, enc) {
				return true, nil
			}
		}
	}
	return false, nil
}

// Decrypt decrypts and authenticates a compact JWE. Errors are
// *TokenError{Reason: ReasonDecryptFailed}.
func (d *Decrypter) Decrypt(token string) (*Decrypted, error) {
	fail := func(detail string) (*Decrypted, error) {
		return nil, tokenErr(ReasonDecryptFailed, detail)
	}
	if len(token) > d.maxToken {
		return fail("token exceeds the size limit")
	}
	segs, ok := splitCompact(token)
	if !ok || len(segs) != 5 {
		return fail("not a compact JWE")
	}
	hdr, terr := decodeHeader(segs[0])
	if terr != nil {
		return fail(terr.Detail)
	}
	h, alg, enc, detail := d.checkHeader(hdr)
	if detail != "" {
		return fail(detail)
	}
	switch {
	case alg.direct && segs[1] != "":
		return fail("encrypted key must be empty for this alg")
	case !alg.direct && segs[1] == "":
		return fail("encrypted key missing")
	case segs[2] == "" || segs[4] == "":
		return fail("iv or tag missing")
	}
	key, ok := d.pickKey(h.Kid, alg, enc)
	if !ok {
		return fail("no single key fits the token")
	}
	plaintext, err := jweDecrypt(token, alg.parse, enc.parse, key.Key)
	if err != nil {
		return fail("decryption failed")
	}
	if len(plaintext) > d.maxOutput {
		return fail("plaintext exceeds the size limit")
	}
	return &Decrypted{Plaintext: plaintext, Header: h, KeyID: key.KeyID}, nil
}

// DecryptNested decrypts a nested JWT (sign-then-encrypt, RFC 7519 §5.2):
// the JWE must say cty JWT, and its plaintext must pass v. go-jose's jwt
// package refuses RSA and ECDH-ES here, so the layers are taken apart by
// hand. A failure of the outer layer is decrypt_failed; the inner token
// keeps its own reason.
func (d *Decrypter) DecryptNested(ctx context.Context, token string, v *Validator) (*Result, error) {
	out, err := d.Decrypt(token)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(out.Header.Cty, "JWT") && !strings.EqualFold(out.Header.Cty, "application/jwt") {
		return nil, tokenErr(ReasonDecryptFailed, "cty is not JWT")
	}
	return v.Validate(ctx, string(out.Plaintext))
}

func (d *Decrypter) checkHeader(hdr map[string]any) (h JWEHeader, alg *jweKeyAlgInfo, enc *jweEncInfo, detail string) {
	var ok bool
	if h.Alg, ok = hdr["alg"].(string); !ok {
		return h, nil, nil, "alg missing or not a string"
	}
	if h.Enc, ok = hdr["enc"].(string); !ok {
		return h, nil, nil, "enc missing or not a string"
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"kid", &h.Kid}, {"cty", &h.Cty}, {"typ", &h.Typ}, {"zip", &h.Zip}} {
		if terr := headerString(hdr, f.name, f.dst); terr != nil {
			return h, nil, nil, terr.Detail
		}
	}
	if _, ok := hdr["kid"]; ok && !kidShapeOK(h.Kid) {
		return h, nil, nil, "kid is empty, too long or not printable"
	}
	if alg = d.keyAlgs[h.Alg]; alg == nil {
		return h, nil, nil, "alg is not in the allow-list"
	}
	if enc = d.encs[h.Enc]; enc == nil {
		return h, nil, nil, "enc is not in the allow-list"
	}
	if _, ok := hdr["crit"]; ok {
		return h, nil, nil, "crit is not supported"
	}
	if _, ok := hdr["zip"]; ok && (!d.allowZip || h.Zip != string(gojose.DEFLATE)) {
		return h, nil, nil, "compression is not allowed"
	}
	switch alg.kind {
	case jweKindPBES2:
		c, ok := hdr["p2c"].(float64)
		if !ok || c != math.Trunc(c) || c < float64(d.p2cMin) || c > float64(d.p2cMax) {
			return h, nil, nil, "p2c missing or out of bounds"
		}
		s, _ := hdr["p2s"].(string)
		salt, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(salt) < minPBES2SaltBytes {
			return h, nil, nil, "p2s missing or too short"
		}
	case jweKindECDH:
		if _, ok := hdr["epk"].(map[string]any); !ok {
			return h, nil, nil, "epk missing or not an object"
		}
	}
	return h, alg, enc, ""
}

// pickKey finds the one key for the token: the kid must match when the
// token has one; otherwise exactly one key may fit.
func (d *Decrypter) pickKey(kid string, alg *jweKeyAlgInfo, enc *jweEncInfo) (gojose.JSONWebKey, bool) {
	var found gojose.JSONWebKey
	n := 0
	for _, k := range d.keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if alg.fits(k, enc) {
			found = k
			n++
		}
	}
	return found, n == 1
}

// jweDecrypt is the only place go-jose sees a JWE to decrypt; recent
// go-jose advisories were panics here, so a panic is a failed decryption.
func jweDecrypt(token string, algs []gojose.KeyAlgorithm, encs []gojose.ContentEncryption, key any) (plaintext []byte, err error) {
	defer func() {
		if recover() != nil {
			plaintext, err = nil, errors.New("go-jose panicked")
		}
	}()
	obj, err := gojose.ParseEncryptedCompact(token, algs, encs)
	if err != nil {
		return nil, err
	}
	return obj.Decrypt(key)
}

// EncrypterOptions configures NewEncrypter.
type EncrypterOptions struct {
	// KeyAlgorithm defaults to the key's alg member.
	KeyAlgorithm string
	// ContentEncryption defaults to A256GCM.
	ContentEncryption string
	Allow             JWEAllow
	// Compress sets zip DEF; it needs Allow.Zip.
	Compress bool
	// PBES2Count is p2c for PBES2 (default DefaultPBES2MaxCount, within
	// [DefaultPBES2MinCount, 1000000]).
	PBES2Count int
	// Type, when set, is the typ header.
	Type string
}

// Encrypter makes compact JWEs for one recipient. Safe for concurrent use:
// each call builds its own go-jose encrypter, because go-jose's PBES2
// encrypter keeps the first salt it draws and would reuse it (and race on
// it) if shared.
type Encrypter struct {
	rcpt     gojose.Recipient
	enc      gojose.ContentEncryption
	compress bool
	typ      string
}

// NewEncrypter builds an encrypter to the recipient key: an RSA or EC
// public key (a private key is reduced to its public part) or a secret.
func NewEncrypter(key gojose.JSONWebKey, o EncrypterOptions) (*Encrypter, error) {
	bad := func(msg string) (*Encrypter, error) {
		return nil, fmt.Errorf("%w: %s", ErrInvalidJWEOptions, msg)
	}
	algName := o.KeyAlgorithm
	if algName == "" {
		algName = key.Algorithm
	}
	encName := o.ContentEncryption
	if encName == "" {
		encName = string(gojose.A256GCM)
	}
	keyAlgs, encs, err := jweAllowLists([]string{algName}, []string{encName}, o.Allow)
	if err != nil {
		return nil, err
	}
	alg, enc := keyAlgs[algName], encs[encName]
	if !alg.keyAlgOK(key.Algorithm, enc) || (key.Use != "" && key.Use != string(UseEnc)) {
		return bad("the key's alg or use does not fit the key algorithm")
	}
	if o.Compress && !o.Allow.Zip {
		return bad("compression needs Allow.Zip")
	}
	if key.KeyID != "" && !kidShapeOK(key.KeyID) {
		return bad("kid is badly shaped")
	}
	recipientKey := key.Key
	switch k := key.Key.(type) {
	case *rsa.PrivateKey:
		recipientKey = &k.PublicKey
	case *ecdsa.PrivateKey:
		recipientKey = &k.PublicKey
	}
	if !alg.materialFits(recipientKey, enc) {
		return bad("the key does not fit the key algorithm")
	}
	e := &Encrypter{
		rcpt:     gojose.Recipient{Algorithm: alg.parse[0], Key: recipientKey, KeyID: key.KeyID},
		enc:      enc.parse[0],
		compress: o.Compress,
		typ:      o.Type,
	}
	if alg.kind == jweKindPBES2 {
		e.rcpt.PBES2Count = o.PBES2Count
		if e.rcpt.PBES2Count == 0 {
			e.rcpt.PBES2Count = DefaultPBES2MaxCount
		}
		if e.rcpt.PBES2Count < DefaultPBES2MinCount || e.rcpt.PBES2Count > maxPBES2Count {
			return bad("PBES2 count out of bounds")
		}
	}
	// Fail at construction, not on first use, if go-jose refuses the key.
	if _, err := e.encrypter(""); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJWEOptions, err)
	}
	return e, nil
}

func (e *Encrypter) encrypter(cty string) (gojose.Encrypter, error) {
	opts := &gojose.EncrypterOptions{}
	if e.compress {
		opts.Compression = gojose.DEFLATE
	}
	if e.typ != "" {
		opts = opts.WithType(gojose.ContentType(e.typ))
	}
	if cty != "" {
		opts = opts.WithContentType(gojose.ContentType(cty))
	}
	return gojose.NewEncrypter(e.enc, e.rcpt, opts)
}

// Encrypt returns the compact JWE of plaintext.
func (e *Encrypter) Encrypt(plaintext []byte) (string, error) {
	return e.seal("", plaintext)
}

// EncryptNested wraps a signed compact JWT in a JWE with cty JWT (sign
// then encrypt, RFC 7519 §5.2).
func (e *Encrypter) EncryptNested(jws string) (string, error) {
	if segs, ok := splitCompact(jws); !ok || len(segs) != 3 {
		return "", errors.New("jwe: the nested token is not a compact JWS")
	}
	return e.seal("JWT", []byte(jws))
}

func (e *Encrypter) seal(cty string, plaintext []byte) (tok string, err error) {
	defer func() {
		if recover() != nil {
			tok, err = "", errors.New("jwe: encrypt: go-jose panicked")
		}
	}()
	enc, err := e.encrypter(cty)
	if err != nil {
		return "", fmt.Errorf("jwe: encrypt: %w", err)
	}
	obj, err := enc.Encrypt(plaintext)
	if err != nil {
		return "", fmt.Errorf("jwe: encrypt: %w", err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("jwe: serialize: %w", err)
	}
	return s, nil
}

// jweAllowLists resolves allow-lists (defaults when empty) and applies the
// JWEAllow switches.
func jweAllowLists(keyAlgs, encs []string, allow JWEAllow) (map[string]*jweKeyAlgInfo, map[string]*jweEncInfo, error) {
	if len(keyAlgs) == 0 {
		keyAlgs = defaultJWEKeyAlgorithms
	}
	if len(encs) == 0 {
		encs = defaultJWEContentEncryptions
	}
	ka := make(map[string]*jweKeyAlgInfo, len(keyAlgs))
	for _, a := range keyAlgs {
		info := jweKeyAlgTable[a]
		switch {
		case info == nil:
			return nil, nil, fmt.Errorf("%w: unknown key algorithm %q", ErrInvalidJWEOptions, a)
		case info.kind == jweKindRSA15 && !allow.RSA1_5:
			return nil, nil, fmt.Errorf("%w: %s needs Allow.RSA1_5", ErrInvalidJWEOptions, a)
		case info.kind == jweKindPBES2 && !allow.PBES2:
			return nil, nil, fmt.Errorf("%w: %s needs Allow.PBES2", ErrInvalidJWEOptions, a)
		}
		ka[a] = info
	}
	ea := make(map[string]*jweEncInfo, len(encs))
	for _, e := range encs {
		info := jweEncTable[e]
		switch {
		case info == nil:
			return nil, nil, fmt.Errorf("%w: unknown content encryption %q", ErrInvalidJWEOptions, e)
		case info.cbc && !allow.CBC:
			return nil, nil, fmt.Errorf("%w: %s needs Allow.CBC", ErrInvalidJWEOptions, e)
		}
		ea[e] = info
	}
	return ka, ea, nil
}

type jweKind uint8

const (
	jweKindRSA15 jweKind = iota + 1
	jweKindRSAOAEP
	jweKindECDH
	jweKindAESKW // AES key wrap and AES-GCM key wrap
	jweKindDir
	jweKindPBES2
)

type jweKeyAlgInfo struct {
	name    string
	kind    jweKind
	keySize int  // AES (GCM) key wrap: bytes of the wrapping key
	direct  bool // no encrypted key segment: dir, ECDH-ES
	parse   []gojose.KeyAlgorithm
}

type jweEncInfo struct {
	keySize int // CEK bytes; what a dir key must have
	cbc     bool
	parse   []gojose.ContentEncryption
}

// fits reports whether decryption key k can unwrap (or is) the CEK for
// this alg and enc.
func (a *jweKeyAlgInfo) fits(k gojose.JSONWebKey, enc *jweEncInfo) bool {
	if k.Use != "" && k.Use != string(UseEnc) {
		return false
	}
	return a.keyAlgOK(k.Algorithm, enc) && a.materialFits(k.Key, enc)
}

// keyAlgOK: a key's alg member, when set, pins it to one algorithm; a dir
// key may name its enc instead (as RFC 7520 §5.6 does).
func (a *jweKeyAlgInfo) keyAlgOK(keyAlg string, enc *jweEncInfo) bool {
	return keyAlg == "" || keyAlg == a.name || (a.kind == jweKindDir && keyAlg == string(enc.parse[0]))
}

// materialFits checks the kind and size of a key (private for decryption,
// public for encryption).
func (a *jweKeyAlgInfo) materialFits(key any, enc *jweEncInfo) bool {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return a.rsaFits(&k.PublicKey)
	case *rsa.PublicKey:
		return a.rsaFits(k)
	case *ecdsa.PrivateKey, *ecdsa.PublicKey:
		return a.kind == jweKindECDH
	case []byte:
		switch a.kind {
		case jweKindAESKW:
			return len(k) == a.keySize
		case jweKindDir:
			return len(k) == enc.keySize
		case jweKindPBES2:
			return len(k) > 0
		}
	}
	return false
}

func (a *jweKeyAlgInfo) rsaFits(k *rsa.PublicKey) bool {
	return (a.kind == jweKindRSA15 || a.kind == jweKindRSAOAEP) && k != nil && k.N != nil &&
		k.N.BitLen() >= minJWERSABits
}

var jweKeyAlgTable = func() map[string]*jweKeyAlgInfo {
	t := map[string]*jweKeyAlgInfo{}
	add := func(name string, kind jweKind, keySize int, direct bool) {
		t[name] = &jweKeyAlgInfo{name: name, kind: kind, keySize: keySize, direct: direct,
			parse: []gojose.KeyAlgorithm{gojose.KeyAlgorithm(name)}}
	}
	add("RSA1_5", jweKindRSA15, 0, false)
	add("RSA-OAEP", jweKindRSAOAEP, 0, false)
	add("RSA-OAEP-256", jweKindRSAOAEP, 0, false)
	add("ECDH-ES", jweKindECDH, 0, true)
	add("ECDH-ES+A128KW", jweKindECDH, 0, false)
	add("ECDH-ES+A192KW", jweKindECDH, 0, false)
	add("ECDH-ES+A256KW", jweKindECDH, 0, false)
	add("A128KW", jweKindAESKW, 16, false)
	add("A192KW", jweKindAESKW, 24, false)
	add("A256KW", jweKindAESKW, 32, false)
	add("A128GCMKW", jweKindAESKW, 16, false)
	add("A192GCMKW", jweKindAESKW, 24, false)
	add("A256GCMKW", jweKindAESKW, 32, false)
	add("dir", jweKindDir, 0, true)
	add("PBES2-HS256+A128KW", jweKindPBES2, 0, false)
	add("PBES2-HS384+A192KW", jweKindPBES2, 0, false)
	add("PBES2-HS512+A256KW", jweKindPBES2, 0, false)
	return t
}()

var jweEncTable = func() map[string]*jweEncInfo {
	t := map[string]*jweEncInfo{}
	add := func(name string, keySize int, cbc bool) {
		t[name] = &jweEncInfo{keySize: keySize, cbc: cbc,
			parse: []gojose.ContentEncryption{gojose.ContentEncryption(name)}}
	}
	add("A128GCM", 16, false)
	add("A192GCM", 24, false)
	add("A256GCM", 32, false)
	add("A128CBC-HS256", 32, true)
	add("A192CBC-HS384", 48, true)
	add("A256CBC-HS512", 64, true)
	return t
}()
