package jose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/flowd/flowd/engine"
)

// encryptAlgorithms are the key management algorithms a keyset makes keys
// for, i.e. what jose.encrypt can encrypt to.
func encryptAlgorithms() []string {
	var out []string
	for _, a := range Algorithms() {
		if u, _ := AlgorithmUse(a); u == UseEnc {
			out = append(out, a)
		}
	}
	return out
}

func encryptSpec() engine.Spec {
	return engine.Spec{
		Type:     "jose.encrypt",
		Title:    "Encrypt (JWE)",
		Category: Category,
		Description: "Encrypts a payload to the keyset's active encryption key of one algorithm " +
			"and puts the compact JWE at msg.<target> (default msg.jwe). With nested on, the " +
			"payload must be a signed JWT (e.g. msg.token from jose.sign) and the JWE says cty " +
			"JWT: sign-then-encrypt, RFC 7519 §5.2.",
		Fields: []engine.Field{
			{Name: "keyset", Label: "Keyset", Kind: engine.KindString, Ref: engine.RefKeyset, Required: true,
				Help: "Name of the keyset whose active encryption key receives the JWE."},
			{Name: "alg", Label: "Key algorithm", Kind: engine.KindEnum, Default: "RSA-OAEP-256",
				Enum: encryptAlgorithms(),
				Help: "Key management algorithm; the keyset needs an active key for it."},
			{Name: "enc", Label: "Content encryption", Kind: engine.KindEnum, Default: "A256GCM",
				Enum: []string{"A256GCM", "A128GCM"},
				Help: "Content encryption algorithm. dir keys are 256-bit, so dir needs A256GCM."},
			{Name: "payload", Label: "Payload", Kind: engine.KindExpr, Default: "msg.payload",
				Help: "Expression for what to encrypt: text and bytes as they are, anything else " +
					"as JSON. With nested on: the compact JWS to wrap, e.g. msg.token."},
			{Name: "nested", Label: "Nested JWT", Kind: engine.KindBool,
				Help: "Wrap a signed JWT (cty JWT) instead of an arbitrary payload."},
			{Name: "typ", Label: "Type (typ header)", Kind: engine.KindString,
				Help: "Optional typ header of the JWE, e.g. JWT."},
			{Name: "target", Label: "Message field", Kind: engine.KindString, Default: "jwe",
				Help: "Field the compact JWE is written to."},
		},
		Outputs:   []string{portOut},
		Sensitive: []string{"jwe"},
	}
}

// encCache is the Encrypter for one active key.
type encCache struct {
	kid string
	e   *Encrypter
}

type encryptBlock struct {
	ks      *Keysets
	keyset  string
	opts    EncrypterOptions
	nested  bool
	payload *engine.Expr
	target  string
	cache   atomic.Pointer[encCache]
}

var _ engine.Block = (*encryptBlock)(nil)

func newEncryptFromConfig(s *engine.Setup, d *blockDeps) (engine.Block, error) {
	c := s.Config
	name := c.String("keyset")
	if err := checkKeysetField(s, "keyset", name); err != nil {
		return nil, err
	}
	opts := EncrypterOptions{KeyAlgorithm: c.String("alg"), ContentEncryption: c.String("enc"), Type: c.String("typ")}
	if opts.KeyAlgorithm == "dir" && opts.ContentEncryption != "A256GCM" {
		return nil, s.Errorf("enc", "dir keys of a keyset are 256-bit: use A256GCM")
	}
	if opts.Type != "" {
		if err := checkSignTyp(opts.Type); err != nil {
			return nil, s.Errorf("typ", "%v", err)
		}
	}
	if c.Expr("payload") == nil {
		return nil, s.Errorf("payload", "required: what to encrypt")
	}
	target := c.String("target")
	if err := checkTarget(s, "target", target); err != nil {
		return nil, err
	}
	return newEncrypt(d.ks, name, opts, c.Bool("nested"), c.Expr("payload"), target), nil
}

func newEncrypt(ks *Keysets, keyset string, opts EncrypterOptions, nested bool, payload *engine.Expr, target string) *encryptBlock {
	return &encryptBlock{ks: ks, keyset: keyset, opts: opts, nested: nested, payload: payload, target: target}
}

// encrypter returns the Encrypter for the keyset's active key, building it
// once per key (a rotation changes the kid).
func (b *encryptBlock) encrypter(ctx context.Context) (*Encrypter, error) {
	key, err := b.ks.ActiveSigner(ctx, b.keyset, b.opts.KeyAlgorithm)
	if err != nil {
		return nil, err
	}
	if c := b.cache.Load(); c != nil && c.kid == key.Kid {
		return c.e, nil
	}
	e, err := NewEncrypter(key.JWK, b.opts)
	if err != nil {
		return nil, err
	}
	b.cache.Store(&encCache{kid: key.Kid, e: e})
	return e, nil
}

func (b *encryptBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	v, err := b.payload.Eval(x, msg)
	if err != nil {
		return "", fmt.Errorf("payload: %w", err)
	}
	e, err := b.encrypter(ctx)
	if err != nil {
		return "", fmt.Errorf("encrypt to keyset %q: %w", b.keyset, err)
	}
	var out string
	if b.nested {
		jws, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("payload: nested needs a compact JWS text, got %T", v)
		}
		out, err = e.EncryptNested(jws)
	} else {
		var pt []byte
		switch t := v.(type) {
		case nil:
			return "", fmt.Errorf("payload: nothing to encrypt (nil)")
		case string:
			pt = []byte(t)
		case []byte:
			pt = t
		default:
			if pt, err = json.Marshal(v); err != nil {
				return "", fmt.Errorf("payload: cannot encode as JSON: %w", err)
			}
		}
		out, err = e.Encrypt(pt)
	}
	if err != nil {
		return "", fmt.Errorf("encrypt to keyset %q: %w", b.keyset, err)
	}
	msg[b.target] = out
	return portOut, nil
}

func decryptSpec() engine.Spec {
	fields := []engine.Field{
		{Name: "keyset", Label: "Keyset", Kind: engine.KindString, Ref: engine.RefKeyset, Required: true,
			Help: "Name of the keyset whose encryption keys (next, active, retired; never revoked) decrypt."},
		{Name: "token", Label: "Token", Kind: engine.KindExpr, Help: tokenFieldHelp},
		{Name: "key_algorithms", Label: "Allowed key algorithms", Kind: engine.KindStrings,
			Default: []string{"RSA-OAEP-256", "ECDH-ES+A256KW", "A256KW", "dir"},
			Help:    "JWE alg values accepted. RSA1_5, PBES2 and CBC are not offered."},
		{Name: "content_encryptions", Label: "Allowed content encryptions", Kind: engine.KindStrings,
			Default: []string{"A256GCM", "A128GCM"}, Help: "JWE enc values accepted."},
		{Name: "max_token_bytes", Label: "Maximum token size (bytes)", Kind: engine.KindInt,
			Default: DefaultJWEMaxTokenSize, Min: "1", Max: "1048576",
			Help: "Longer tokens are refused before any parsing; the plaintext is capped at 64 KiB."},
		{Name: "nested", Label: "Nested JWT", Kind: engine.KindBool,
			Help: "The JWE wraps a signed JWT (cty JWT): decrypt, then validate the inner token " +
				"with the policy below, like jose.validate."},
		{Name: "verify_keyset", Label: "Verification keyset", Kind: engine.KindString,
			Help: "Nested, source keyset: the keyset whose signing keys verify the inner token. " +
				"Empty: the decryption keyset."},
	}
	for _, f := range policyFields("verify_keyset", "", false) {
		if f.Name == "verify_keyset" {
			continue // declared above, with its fallback explained
		}
		f.Help = "Nested only. " + f.Help
		fields = append(fields, f)
	}
	return engine.Spec{
		Type:     "jose.decrypt",
		Title:    "Decrypt (JWE)",
		Category: Category,
		Description: "Decrypts a compact JWE with the keyset's encryption keys, under explicit " +
			"algorithm allow-lists. Without nested it leaves by \"valid\" with msg.decrypted " +
			"{plaintext (text), header {alg, enc, kid, cty, typ}, kid}. With nested it also " +
			"validates the inner signed JWT like jose.validate and leaves by \"valid\" with " +
			"msg.claims, msg.token_header and msg.key. Every failure leaves by \"invalid\" with " +
			"msg.invalid {reason, detail}: decrypt_failed for the JWE (whatever the cause), or the " +
			"inner token's own reason.",
		Fields:    fields,
		Outputs:   []string{portValid, portInvalid},
		Sensitive: []string{"plaintext"},
	}
}

// decCache is the Decrypter for one version of the keyset.
type decCache struct {
	version uint64
	d       *Decrypter
}

type decryptBlock struct {
	ks      *Keysets
	keyset  string
	token   *engine.Expr
	opts    DecrypterOptions // without Keys: they come from the keyset
	policy  *tokenPolicy     // nil unless nested
	seen    *verdicts        // nil: not counted
	cache   atomic.Pointer[decCache]
	keyAlgs []string
}

var _ engine.Block = (*decryptBlock)(nil)

func newDecryptFromConfig(s *engine.Setup, d *blockDeps) (engine.Block, error) {
	c := s.Config
	name := c.String("keyset")
	if err := checkKeysetField(s, "keyset", name); err != nil {
		return nil, err
	}
	opts := DecrypterOptions{
		KeyAlgorithms:      c.Strings("key_algorithms"),
		ContentEncryptions: c.Strings("content_encryptions"),
		MaxTokenSize:       int(c.Int("max_token_bytes")),
	}
	if len(opts.KeyAlgorithms) == 0 {
		return nil, s.Errorf("key_algorithms", "the allow-list is empty")
	}
	if len(opts.ContentEncryptions) == 0 {
		return nil, s.Errorf("content_encryptions", "the allow-list is empty")
	}
	if _, _, err := jweAllowLists(opts.KeyAlgorithms, nil, JWEAllow{}); err != nil {
		return nil, s.Errorf("key_algorithms", "%v", err)
	}
	if _, _, err := jweAllowLists(nil, opts.ContentEncryptions, JWEAllow{}); err != nil {
		return nil, s.Errorf("content_encryptions", "%v", err)
	}
	var policy *tokenPolicy
	if c.Bool("nested") {
		p, err := buildPolicy(s, d, "verify_keyset", name, opts.MaxTokenSize)
		if err != nil {
			return nil, err
		}
		policy = p
	} else {
		for _, f := range append(policyFieldNames(), "verify_keyset") {
			if c.Has(f) {
				return nil, s.Errorf(f, "only used with nested on; remove it or turn nested on")
			}
		}
	}
	b := newDecrypt(d.ks, name, c.Expr("token"), opts, policy)
	b.seen = newVerdicts(s)
	return b, nil
}

func newDecrypt(ks *Keysets, keyset string, token *engine.Expr, opts DecrypterOptions, policy *tokenPolicy) *decryptBlock {
	return &decryptBlock{ks: ks, keyset: keyset, token: token, opts: opts, policy: policy,
		keyAlgs: slices.Clone(opts.KeyAlgorithms)}
}

// decrypter returns a Decrypter over the keyset's current decryption keys,
// rebuilt when the keyset changes. Keys of algorithms outside the
// allow-list are left out rather than failing every request.
func (b *decryptBlock) decrypter(ctx context.Context) (*Decrypter, error) {
	v, err := b.ks.view(ctx, b.keyset)
	if err != nil {
		return nil, err
	}
	if c := b.cache.Load(); c != nil && c.version == v.version {
		return c.d, nil
	}
	opts := b.opts
	for _, k := range v.decrypt {
		if slices.Contains(b.keyAlgs, k.Alg) {
			opts.Keys = append(opts.Keys, k.JWK)
		}
	}
	if len(opts.Keys) == 0 {
		return nil, fmt.Errorf("%w: keyset %q has no encryption key for %v", ErrNoActiveKey, b.keyset, b.keyAlgs)
	}
	d, err := NewDecrypter(opts)
	if err != nil {
		return nil, err
	}
	b.cache.Store(&decCache{version: v.version, d: d})
	return d, nil
}

func (b *decryptBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	token, te, err := readToken(x, msg, b.token)
	if err != nil {
		return "", err
	}
	if te != nil {
		b.seen.refused(te.Reason)
		return markInvalid(msg, te), nil
	}
	d, err := b.decrypter(ctx)
	if err != nil {
		return "", fmt.Errorf("decrypt with keyset %q: %w", b.keyset, err)
	}
	if b.policy != nil {
		res, err := d.DecryptNested(ctx, token, b.policy.v)
		if err == nil {
			err = b.policy.judge(res)
		}
		if err != nil {
			if te, ok := errors.AsType[*TokenError](err); ok {
				b.seen.refused(te.Reason)
			}
			return verdict(msg, fmtSourceErr(err))
		}
		b.seen.accepted(x, &res.Key)
		return markValid(msg, res), nil
	}
	out, err := d.Decrypt(token)
	if err != nil {
		if te, ok := errors.AsType[*TokenError](err); ok {
			b.seen.refused(te.Reason)
		}
		return verdict(msg, err)
	}
	b.seen.accepted(x, &VerifyKey{})
	delete(msg, "invalid")
	plaintext := string(out.Plaintext)
	// The payload was encrypted because it is confidential: traces and
	// logs show it as [redacted] wherever a later block copies it.
	x.MarkSecret(plaintext)
	msg["decrypted"] = map[string]any{
		"plaintext": plaintext,
		"header":    jweHeaderMap(out.Header),
		"kid":       out.KeyID,
	}
	return portValid, nil
}

func jweHeaderMap(h JWEHeader) map[string]any {
	m := map[string]any{"alg": h.Alg, "enc": h.Enc}
	for k, v := range map[string]string{"kid": h.Kid, "cty": h.Cty, "typ": h.Typ, "zip": h.Zip} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}
