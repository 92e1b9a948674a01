package jose

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
)

// Validation in one picture (every step can end the token with one Reason):
//
//	size cap ─► split (compact JWS only, canonical base64url) ─► strict header
//	  ─► alg allow-list, kid shape, crit, typ ─► key choice (kid+alg+use+kty/crv,
//	  one refresh) ─► go-jose ParseSignedCompact + Verify ─► strict claims
//	  ─► exp/nbf/iat/max age ─► iss ─► aud ─► required claims ─► predicate
//
// Nothing in the header chooses a key except kid: jku, x5u, jwk and x5c are
// never fetched, trusted or used.

// Limits of a validation policy.
const (
	DefaultMaxTokenSize = 8 << 10
	maxPolicyTokenSize  = 1 << 20
	MaxLeeway           = 5 * time.Minute
	minVerifyRSABits    = 2048
)

var (
	// ErrInvalidPolicy wraps every error NewValidator and NewRemoteJWKS return.
	ErrInvalidPolicy = errors.New("invalid validation policy")
	// ErrKeySourceUnavailable is returned (wrapped, not as a *TokenError)
	// when the key source itself fails: the token was not judged.
	ErrKeySourceUnavailable = errors.New("key source unavailable")
)

// Policy is what a Validator enforces. Start from DefaultPolicy: its zero
// value does not require exp.
type Policy struct {
	// Algorithms is the explicit allow-list of JWS algorithms (case
	// sensitive). Required; "none" in any spelling is refused.
	Algorithms []string
	// Source gives the candidate keys. Required.
	Source KeySource
	// Issuer must equal the iss claim exactly. Required.
	Issuer string
	// Audience: the aud claim (string or array) must contain one of these.
	// Required unless AudienceOptional, in which case aud is not checked.
	Audience         []string
	AudienceOptional bool
	// Types, when set, is the list of accepted typ header values, compared
	// case-insensitively with "application/" implied when the value has no
	// slash (RFC 7515 §4.1.9), so "at+jwt" matches "application/at+jwt".
	// A token without typ is refused when Types is set.
	Types []string
	// RequireExp refuses tokens without exp (DefaultPolicy sets it).
	RequireExp bool
	// Leeway is the clock skew allowed on exp, nbf, iat and MaxAge; at
	// most MaxLeeway.
	Leeway time.Duration
	// MaxAge, when positive, refuses tokens whose iat is older; iat is
	// then required.
	MaxAge time.Duration
	// RequiredClaims must be present and not null.
	RequiredClaims []string
	// MaxTokenSize caps the token before any parsing; 0 means
	// DefaultMaxTokenSize.
	MaxTokenSize int
	// CritSupported lists the crit extensions the caller processes. It must
	// stay empty: go-jose v4.1.8 refuses every crit extension except b64 at
	// verification, and b64 payloads are not JWTs (RFC 7797 §7).
	CritSupported []string
	// Predicate, when set, runs last on the verified claims; false or an
	// error refuses the token with claims_rejected. It must be safe for
	// concurrent use.
	Predicate func(claims map[string]any) (bool, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Cache keeps verified tokens (see cache.go); the zero value is off.
	Cache CacheOptions
}

// DefaultPolicy returns the defaults: exp required, 8 KiB size cap. The
// caller still sets Algorithms, Source, Issuer and Audience.
func DefaultPolicy() Policy {
	return Policy{RequireExp: true, MaxTokenSize: DefaultMaxTokenSize}
}

// TokenHeader is the part of a verified token's header a flow may use.
type TokenHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
	Cty string `json:"cty,omitempty"`
}

// Result is a token that passed every check.
type Result struct {
	Claims map[string]any
	Header TokenHeader
	Key    VerifyKey // the key that verified it, with its lifecycle state
}

// Validator checks tokens against a Policy compiled at construction. It is
// immutable and safe for concurrent use.
type Validator struct {
	algs             map[string]*jwsAlgInfo
	source           KeySource
	issuer           string
	audience         []string
	types            []acceptedType
	requireExp       bool
	leeway           float64 // seconds
	maxAge           float64 // seconds; 0 = off
	required         []string
	maxSize          int
	predicate        func(map[string]any) (bool, error)
	now              func() time.Time
	audienceOptional bool
	cache            *tokenCache // nil: off
}

type acceptedType struct {
	full  string // lower case, always with a slash: "application/at+jwt"
	short string // full without "application/", "" when it has another prefix
}

// NewValidator checks the policy (this is deploy time: every mistake is an
// error here, never a surprise per token) and precomputes what Validate
// needs.
func NewValidator(p Policy) (*Validator, error) {
	bad := func(format string, args ...any) (*Validator, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrInvalidPolicy}, args...)...)
	}
	if len(p.Algorithms) == 0 {
		return bad("algorithms: the allow-list is empty")
	}
	v := &Validator{
		algs:             make(map[string]*jwsAlgInfo, len(p.Algorithms)),
		source:           p.Source,
		issuer:           p.Issuer,
		audienceOptional: p.AudienceOptional,
		requireExp:       p.RequireExp,
		leeway:           p.Leeway.Seconds(),
		maxAge:           p.MaxAge.Seconds(),
		maxSize:          p.MaxTokenSize,
		predicate:        p.Predicate,
		now:              p.Now,
	}
	for _, a := range p.Algorithms {
		if strings.EqualFold(a, "none") {
			return bad("algorithms: %q is never allowed", a)
		}
		info, ok := jwsAlgTable[a]
		if !ok {
			return bad("algorithms: unknown algorithm %q", a)
		}
		v.algs[a] = info
	}
	if p.Source == nil {
		return bad("source: no key source")
	}
	if p.Issuer == "" {
		return bad("issuer: required")
	}
	for _, aud := range p.Audience {
		if aud == "" {
			return bad("audience: empty value")
		}
	}
	if len(p.Audience) == 0 && !p.AudienceOptional {
		return bad("audience: required unless AudienceOptional is set")
	}
	v.audience = append([]string(nil), p.Audience...)
	for _, t := range p.Types {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" {
			return bad("types: empty value")
		}
		at := acceptedType{full: t}
		if !strings.Contains(t, "/") {
			at.full = "application/" + t
		}
		if s, ok := strings.CutPrefix(at.full, "application/"); ok && !strings.Contains(s, "/") {
			at.short = s
		}
		v.types = append(v.types, at)
	}
	if p.Leeway < 0 || p.Leeway > MaxLeeway {
		return bad("leeway: must be between 0 and %s", MaxLeeway)
	}
	if p.MaxAge < 0 {
		return bad("max age: negative")
	}
	switch {
	case p.MaxTokenSize == 0:
		v.maxSize = DefaultMaxTokenSize
	case p.MaxTokenSize < 0 || p.MaxTokenSize > maxPolicyTokenSize:
		return bad("max token size: must be between 1 and %d bytes", maxPolicyTokenSize)
	}
	for _, c := range p.RequiredClaims {
		if c == "" {
			return bad("required claims: empty name")
		}
	}
	v.required = append([]string(nil), p.RequiredClaims...)
	for _, c := range p.CritSupported {
		switch {
		case registeredHeaders[c]:
			return bad("crit: %q is a registered header and cannot be critical", c)
		case c == "b64":
			return bad("crit: b64 payloads are not JWTs (RFC 7797 section 7)")
		default:
			return bad("crit: %q cannot be supported: go-jose refuses unknown crit extensions", c)
		}
	}
	if v.now == nil {
		v.now = time.Now
	}
	if err := checkCacheOptions(p.Cache); err != nil {
		return bad("%v", err)
	}
	v.cache = newTokenCache(p.Cache)
	return v, nil
}

func checkCacheOptions(o CacheOptions) error {
	if o.Entries < 0 || o.Entries > MaxCacheEntries {
		return fmt.Errorf("cache: entries must be between 0 and %d", MaxCacheEntries)
	}
	if o.Bytes < 0 || o.Bytes > MaxCacheBytes {
		return fmt.Errorf("cache: bytes must be between 0 and %d", MaxCacheBytes)
	}
	return nil
}

// withCache returns a copy of v with its own verified-token cache (o.Entries
// 0: none). Call it at deploy, before the Validator is shared.
func (v *Validator) withCache(o CacheOptions) (*Validator, error) {
	if err := checkCacheOptions(o); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	c := *v
	c.cache = newTokenCache(o)
	return &c, nil
}

// Validate checks token and returns its claims, or an error: a *TokenError
// with exactly one Reason when the token is refused, or an error wrapping
// ErrKeySourceUnavailable (or the context's error) when it could not be
// judged.
//
// With a cache (Policy.Cache), a token seen before is answered without
// verifying its signature again, after every other check (see cache.go).
func (v *Validator) Validate(ctx context.Context, token string) (*Result, error) {
	if v.cache == nil || len(token) > v.maxSize {
		res, _, _, _, err := v.validate(ctx, token)
		return res, err
	}
	sum := sha256.Sum256([]byte(token))
	if res, ok := v.cached(ctx, &sum); ok {
		return res, nil
	}
	res, payloadLen, keys, material, err := v.validate(ctx, token)
	if err != nil {
		return nil, err
	}
	v.remember(&sum, payloadLen, res, keys, material)
	return res, nil
}

// validate is the full validation; it also returns what the cache needs:
// the payload's length and the key list and key material that verified it.
func (v *Validator) validate(ctx context.Context, token string) (res *Result, payloadLen int, keys []VerifyKey, material any, err error) {
	hdr, key, keys, material, payload, err := v.verifyFull(ctx, token)
	if err != nil {
		return nil, 0, nil, nil, err
	}
	claims, terr := v.checkClaims(payload)
	if terr != nil {
		return nil, 0, nil, nil, terr
	}
	return &Result{Claims: claims, Header: hdr, Key: key}, len(payload), keys, material, nil
}

// verify runs every check up to and including the signature and returns
// the verified payload.
func (v *Validator) verify(ctx context.Context, token string) (TokenHeader, VerifyKey, []byte, error) {
	th, key, _, _, payload, err := v.verifyFull(ctx, token)
	return th, key, payload, err
}

// verifyFull is verify that also returns the key list and the key material
// the token was verified with (for the cache).
func (v *Validator) verifyFull(ctx context.Context, token string) (th TokenHeader, key VerifyKey, keys []VerifyKey, material any, payload []byte, err error) {
	fail := func(err error) (TokenHeader, VerifyKey, []VerifyKey, any, []byte, error) {
		return th, VerifyKey{}, nil, nil, nil, err
	}
	if len(token) > v.maxSize {
		return fail(tokenErr(ReasonTooLarge, "token exceeds the size limit"))
	}
	segs, ok := splitCompact(token)
	if !ok {
		return fail(tokenErr(ReasonMalformed, "not a compact JWS"))
	}
	if len(segs) != 3 {
		return fail(tokenErr(ReasonMalformed, "a JWE is not a signed token"))
	}
	hdr, terr := decodeHeader(segs[0])
	if terr != nil {
		return fail(terr)
	}
	th, alg, terr := v.checkHeader(hdr)
	if terr != nil {
		return fail(terr)
	}
	key, keys, material, err = v.chooseKey(ctx, th.Kid, alg)
	if err != nil {
		return fail(err)
	}
	payload, reason := jwsVerify(token, alg.parse, material)
	if reason != "" {
		detail := "signature does not verify"
		if reason == ReasonMalformed {
			detail = "token could not be parsed"
		}
		return fail(tokenErr(reason, detail))
	}
	return th, key, keys, material, payload, nil
}

// registeredHeaders are the JWS and JWE header parameters of RFC 7515,
// 7516 and 7518: none of them may be named in crit.
var registeredHeaders = map[string]bool{
	"alg": true, "jku": true, "jwk": true, "kid": true, "x5u": true, "x5c": true,
	"x5t": true, "x5t#S256": true, "typ": true, "cty": true, "crit": true,
	"enc": true, "zip": true, "epk": true, "apu": true, "apv": true, "iv": true,
	"tag": true, "p2s": true, "p2c": true,
}

// checkHeader applies the header rules; the order of the checks decides
// which single reason a token with several problems gets.
func (v *Validator) checkHeader(h map[string]any) (TokenHeader, *jwsAlgInfo, *TokenError) {
	var th TokenHeader
	a, ok := h["alg"]
	if !ok {
		return th, nil, tokenErr(ReasonMalformed, "header has no alg")
	}
	if th.Alg, ok = a.(string); !ok {
		return th, nil, tokenErr(ReasonMalformed, "alg is not a string")
	}
	if terr := headerString(h, "kid", &th.Kid); terr != nil {
		return th, nil, terr
	}
	if _, ok := h["kid"]; ok && !kidShapeOK(th.Kid) {
		return th, nil, tokenErr(ReasonMalformed, "kid is empty, too long or not printable")
	}
	if terr := headerString(h, "typ", &th.Typ); terr != nil {
		return th, nil, terr
	}
	if terr := headerString(h, "cty", &th.Cty); terr != nil {
		return th, nil, terr
	}
	alg := v.algs[th.Alg]
	if alg == nil {
		return th, nil, tokenErr(ReasonAlgNotAllowed, "alg is not in the allow-list")
	}
	if c, ok := h["crit"]; ok {
		if terr := checkCrit(h, c); terr != nil {
			return th, nil, terr
		}
	}
	if _, ok := h["b64"]; ok {
		return th, nil, tokenErr(ReasonCritUnsupported, "b64 payload encoding is not supported")
	}
	if len(v.types) > 0 {
		if _, ok := h["typ"]; !ok {
			return th, nil, tokenErr(ReasonWrongType, "typ missing")
		}
		if !v.typeAccepted(th.Typ) {
			return th, nil, tokenErr(ReasonWrongType, "typ not accepted")
		}
	}
	return th, alg, nil
}

func headerString(h map[string]any, name string, dst *string) *TokenError {
	raw, ok := h[name]
	if !ok {
		return nil
	}
	s, ok := raw.(string)
	if !ok {
		return tokenErr(ReasonMalformed, name+" is not a string")
	}
	*dst = s
	return nil
}

// checkCrit enforces RFC 7515 §4.1.11. No extension is supported (see
// Policy.CritSupported), so a well-formed crit still ends the token; the
// checks before that only pick the most precise detail.
func checkCrit(h map[string]any, c any) *TokenError {
	list, ok := c.([]any)
	if !ok {
		return tokenErr(ReasonMalformed, "crit is not an array")
	}
	if len(list) == 0 {
		return tokenErr(ReasonCritUnsupported, "crit is empty")
	}
	seen := make(map[string]bool, len(list))
	for _, e := range list {
		name, ok := e.(string)
		switch {
		case !ok:
			return tokenErr(ReasonMalformed, "crit holds a non-string")
		case seen[name]:
			return tokenErr(ReasonCritUnsupported, "crit names a parameter twice")
		case registeredHeaders[name]:
			return tokenErr(ReasonCritUnsupported, "crit names a registered header")
		}
		if _, ok := h[name]; !ok {
			return tokenErr(ReasonCritUnsupported, "crit names an absent parameter")
		}
		seen[name] = true
	}
	return tokenErr(ReasonCritUnsupported, "crit names an unsupported extension")
}

func (v *Validator) typeAccepted(typ string) bool {
	slash := strings.Contains(typ, "/")
	for _, t := range v.types {
		if strings.EqualFold(typ, t.full) || (!slash && t.short != "" && strings.EqualFold(typ, t.short)) {
			return true
		}
	}
	return false
}

// chooseKey finds exactly one key for kid and alg, asking the source to
// refresh once when there is none. A key only fits when its kty/crv is the
// one alg needs, its use is sig or empty, its alg member (when present)
// equals alg, and it is strong enough. A key without an alg member fits an
// asymmetric alg its kty/crv allows (the policy allow-list bounds which);
// an HMAC alg needs an oct key that names that exact alg, so a public key
// can never become an HMAC secret.
func (v *Validator) chooseKey(ctx context.Context, kid string, alg *jwsAlgInfo) (VerifyKey, []VerifyKey, any, error) {
	keys, err := v.source.VerifyKeys(ctx, false)
	if err != nil {
		return VerifyKey{}, nil, nil, fmt.Errorf("%w: %w", ErrKeySourceUnavailable, err)
	}
	now := v.now()
	key, material, outcome := pickVerifyKey(keys, kid, alg, now)
	if outcome == pickNone {
		if keys, err = v.source.VerifyKeys(ctx, true); err != nil {
			return VerifyKey{}, nil, nil, fmt.Errorf("%w: %w", ErrKeySourceUnavailable, err)
		}
		key, material, outcome = pickVerifyKey(keys, kid, alg, now)
	}
	switch outcome {
	case pickOne:
		return key, keys, material, nil
	case pickSeveral:
		return VerifyKey{}, nil, nil, tokenErr(ReasonUnknownKid, "several keys fit the token")
	case pickAlgMismatch:
		return VerifyKey{}, nil, nil, tokenErr(ReasonAlgNotAllowed, "alg does not fit the key named by kid")
	}
	return VerifyKey{}, nil, nil, tokenErr(ReasonUnknownKid, "no usable key for the token")
}

type pickOutcome int

const (
	pickNone pickOutcome = iota
	pickOne
	pickSeveral
	pickAlgMismatch // kid names a signing key, but of another kind than alg
)

// pickVerifyKey is the key choice, shared with the tests that run the
// RFC 7520 and Wycheproof vectors.
//
// A retired key past its RetireAt no longer verifies, even before the next
// rotation deletes it from the keyset: its deadline is the promise.
func pickVerifyKey(keys []VerifyKey, kid string, alg *jwsAlgInfo, now time.Time) (VerifyKey, any, pickOutcome) {
	var (
		found    VerifyKey
		material any
		n        int
		mismatch bool
	)
	for i := range keys {
		k := &keys[i]
		if kid != "" && k.JWK.KeyID != kid {
			continue
		}
		if !k.RetireAt.IsZero() && now.After(k.RetireAt) {
			continue
		}
		if k.JWK.Use != "" && k.JWK.Use != string(UseSig) {
			continue
		}
		m, fit := alg.fit(k)
		switch fit {
		case fitOK:
			n++
			found, material = *k, m
		case fitMismatch:
			mismatch = true
		}
	}
	switch {
	case n == 1:
		return found, material, pickOne
	case n > 1:
		return VerifyKey{}, nil, pickSeveral
	case kid != "" && mismatch:
		return VerifyKey{}, nil, pickAlgMismatch
	}
	return VerifyKey{}, nil, pickNone
}

// jwsVerify is the only place go-jose sees a token to verify. A panic in
// go-jose is a malformed token, not a crash.
func jwsVerify(token string, algs []gojose.SignatureAlgorithm, key any) (payload []byte, r Reason) {
	defer func() {
		if recover() != nil {
			payload, r = nil, ReasonMalformed
		}
	}()
	obj, err := gojose.ParseSignedCompact(token, algs)
	if err != nil {
		return nil, ReasonMalformed
	}
	payload, err = obj.Verify(key)
	switch {
	case errors.Is(err, gojose.ErrUnsupportedCriticalHeader):
		return nil, ReasonCritUnsupported
	case err != nil:
		return nil, ReasonBadSignature
	}
	return payload, ""
}

// checkClaims parses the verified payload and applies the claim rules.
func (v *Validator) checkClaims(payload []byte) (map[string]any, *TokenError) {
	claims, err := parseStrictObject(payload, maxClaimsDepth)
	if err != nil {
		return nil, tokenErr(ReasonMalformed, "claims: "+err.Error())
	}
	if terr := v.checkClaimMap(claims, v.now()); terr != nil {
		return nil, terr
	}
	return claims, nil
}

// checkClaimMap applies the claim rules at time t (a cache hit runs it
// again on every use).
func (v *Validator) checkClaimMap(claims map[string]any, t time.Time) *TokenError {
	exp, hasExp, ok1 := numericClaim(claims, "exp")
	nbf, hasNbf, ok2 := numericClaim(claims, "nbf")
	iat, hasIat, ok3 := numericClaim(claims, "iat")
	if !ok1 || !ok2 || !ok3 {
		return tokenErr(ReasonMalformed, "exp, nbf and iat must be numbers")
	}
	// Times stay float64 seconds: 1e19 or -1e19 compare correctly and never
	// overflow a time.Time.
	now := unixSeconds(t)
	switch {
	case !hasExp && v.requireExp:
		return tokenErr(ReasonMissingClaim, "exp missing")
	case hasExp && now > exp+v.leeway:
		return tokenErr(ReasonExpired, "token expired")
	case hasNbf && nbf > now+v.leeway:
		return tokenErr(ReasonNotYetValid, "token not yet valid")
	case hasIat && iat > now+v.leeway:
		return tokenErr(ReasonIssuedInFuture, "token issued in the future")
	case v.maxAge > 0 && !hasIat:
		return tokenErr(ReasonMissingClaim, "iat missing (max age is set)")
	case v.maxAge > 0 && now > iat+v.maxAge+v.leeway:
		return tokenErr(ReasonExpired, "token older than the max age")
	}
	switch iss, ok := claims["iss"]; {
	case !ok:
		return tokenErr(ReasonMissingClaim, "iss missing")
	case !isString(iss):
		return tokenErr(ReasonMalformed, "iss is not a string")
	case iss.(string) != v.issuer:
		return tokenErr(ReasonWrongIssuer, "iss does not match")
	}
	if terr := v.checkAudience(claims); terr != nil {
		return terr
	}
	for _, name := range v.required {
		if c, ok := claims[name]; !ok || c == nil {
			return tokenErr(ReasonMissingClaim, "required claim missing: "+name)
		}
	}
	if v.predicate != nil {
		if ok, err := v.runPredicate(claims); err != nil || !ok {
			return tokenErr(ReasonClaimsRejected, "claims predicate refused the token")
		}
	}
	return nil
}

func isString(v any) bool { _, ok := v.(string); return ok }

// numericClaim reads a NumericDate claim: absent is fine, any other type
// than a JSON number is not.
func numericClaim(claims map[string]any, name string) (val float64, present, ok bool) {
	raw, present := claims[name]
	if !present {
		return 0, false, true
	}
	val, ok = raw.(float64)
	return val, true, ok
}

func (v *Validator) checkAudience(claims map[string]any) *TokenError {
	raw, present := claims["aud"]
	var auds []any
	switch a := raw.(type) {
	case nil:
		if present {
			return tokenErr(ReasonMalformed, "aud is null")
		}
	case string:
		auds = []any{a}
	case []any:
		for _, e := range a {
			if !isString(e) {
				return tokenErr(ReasonMalformed, "aud holds a non-string")
			}
		}
		auds = a
	default:
		return tokenErr(ReasonMalformed, "aud is neither a string nor an array")
	}
	if len(v.audience) == 0 {
		return nil // AudienceOptional
	}
	if !present {
		return tokenErr(ReasonMissingClaim, "aud missing")
	}
	for _, a := range auds {
		for _, want := range v.audience {
			if a.(string) == want {
				return nil
			}
		}
	}
	return tokenErr(ReasonWrongAudience, "aud does not match")
}

var errPredicatePanic = errors.New("claims predicate panicked")

func (v *Validator) runPredicate(claims map[string]any) (ok bool, err error) {
	defer func() {
		if recover() != nil {
			ok, err = false, errPredicatePanic
		}
	}()
	return v.predicate(claims)
}

// jwsAlgInfo is what the validator knows about one JWS algorithm.
type jwsAlgInfo struct {
	name      string
	family    jwsFamily
	curve     elliptic.Curve // ES*
	minSecret int            // HS*: RFC 7518 §3.2, at least the hash size
	parse     []gojose.SignatureAlgorithm
}

type jwsFamily uint8

const (
	familyRSA jwsFamily = iota + 1
	familyEC
	familyEd25519
	familyHMAC
)

type keyFit uint8

const (
	fitOK keyFit = iota
	fitMismatch
	fitWeak
)

// fit reports whether key k can verify alg, and the verification key to
// hand to go-jose.
func (a *jwsAlgInfo) fit(k *VerifyKey) (any, keyFit) {
	if k.JWK.Algorithm != "" && k.JWK.Algorithm != a.name {
		return nil, fitMismatch
	}
	switch a.family {
	case familyHMAC:
		secret, ok := k.JWK.Key.([]byte)
		if !ok || k.JWK.Algorithm != a.name {
			return nil, fitMismatch
		}
		if len(secret) < a.minSecret {
			return nil, fitWeak
		}
		return secret, fitOK
	case familyRSA:
		var pub *rsa.PublicKey
		switch key := k.JWK.Key.(type) {
		case *rsa.PublicKey:
			pub = key
		case *rsa.PrivateKey:
			pub = &key.PublicKey
		default:
			return nil, fitMismatch
		}
		if pub == nil || pub.N == nil || pub.N.BitLen() < minVerifyRSABits || pub.E < 3 || pub.E%2 == 0 {
			return nil, fitWeak
		}
		return pub, fitOK
	case familyEC:
		var pub *ecdsa.PublicKey
		switch key := k.JWK.Key.(type) {
		case *ecdsa.PublicKey:
			pub = key
		case *ecdsa.PrivateKey:
			pub = &key.PublicKey
		default:
			return nil, fitMismatch
		}
		if pub == nil || pub.Curve != a.curve {
			return nil, fitMismatch
		}
		return pub, fitOK
	case familyEd25519:
		switch key := k.JWK.Key.(type) {
		case ed25519.PublicKey:
			if len(key) != ed25519.PublicKeySize {
				return nil, fitWeak
			}
			return key, fitOK
		case ed25519.PrivateKey:
			if len(key) != ed25519.PrivateKeySize {
				return nil, fitWeak
			}
			return key.Public(), fitOK
		}
	}
	return nil, fitMismatch
}

// jwsAlgTable is every JWS algorithm a policy may allow. It is never
// modified after initialization.
var jwsAlgTable = func() map[string]*jwsAlgInfo {
	t := map[string]*jwsAlgInfo{}
	add := func(name string, f jwsFamily, curve elliptic.Curve, minSecret int) {
		t[name] = &jwsAlgInfo{name: name, family: f, curve: curve, minSecret: minSecret,
			parse: []gojose.SignatureAlgorithm{gojose.SignatureAlgorithm(name)}}
	}
	for _, n := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"} {
		add(n, familyRSA, nil, 0)
	}
	add("ES256", familyEC, elliptic.P256(), 0)
	add("ES384", familyEC, elliptic.P384(), 0)
	add("ES512", familyEC, elliptic.P521(), 0)
	add("EdDSA", familyEd25519, nil, 0)
	add("HS256", familyHMAC, nil, 32)
	add("HS384", familyHMAC, nil, 48)
	add("HS512", familyHMAC, nil, 64)
	return t
}()
