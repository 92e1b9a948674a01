package jose

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/flowd/flowd/engine"
)

// predicateEnv is what a validation predicate sees: the verified claims
// and the token's header (alg, kid, typ, cty).
type predicateEnv struct {
	Claims map[string]any `expr:"claims"`
	Header map[string]any `expr:"header"`
}

// Key sources of a validation policy.
const (
	sourceKeyset = "keyset"
	sourceRemote = "remote"
)

// policyFieldNames are the config fields policyFields declares besides
// the keyset; a block that only sometimes validates (jose.decrypt) refuses
// them when unused.
func policyFieldNames() []string {
	return []string{"source", "jwks_url", "algorithms", "issuer", "audience",
		"audience_optional", "types", "require_exp", "leeway", "max_age", "required_claims", "predicate"}
}

// policyFields are the fields of a validation policy, shared by
// jose.validate and jose.decrypt (nested). keysetField names the field of
// the local keyset source; issuerRequired marks issuer required in the
// spec (jose.decrypt checks it only when nested is on).
func policyFields(keysetField, keysetHelp string, issuerRequired bool) []engine.Field {
	return []engine.Field{
		{Name: "source", Label: "Key source", Kind: engine.KindEnum, Default: sourceKeyset,
			Enum: []string{sourceKeyset, sourceRemote},
			Help: "Where the verification keys come from: keyset (a local keyset, including HMAC " +
				"secrets) or remote (an identity provider's JWKS URL, cached, refetched at most every " +
				"30 s when a token names an unknown kid)."},
		{Name: keysetField, Label: "Keyset", Kind: engine.KindString, Ref: engine.RefKeyset, RequiredIf: "source=" + sourceKeyset, Help: keysetHelp},
		{Name: "jwks_url", Label: "JWKS URL", Kind: engine.KindString,
			Help: "For source remote: the https URL of the issuer's JWK Set, e.g. " +
				"https://idp.example.com/.well-known/jwks.json."},
		{Name: "algorithms", Label: "Allowed algorithms", Kind: engine.KindStrings, Default: []string{"RS256", "ES256"},
			Help: "The algorithms a token may be signed with; anything else is refused with " +
				"alg_not_allowed. \"none\" is never allowed; HS* needs source keyset."},
		{Name: "issuer", Label: "Issuer", Kind: engine.KindString, Required: issuerRequired,
			Help: "The exact iss a token must carry, e.g. https://auth.example.com. Empty: this " +
				"flowd's own issuer (--issuer / FLOWD_ISSUER)."},
		{Name: "audience", Label: "Audience", Kind: engine.KindStrings,
			Help: "The token's aud must contain one of these. Required unless audience_optional is on."},
		{Name: "audience_optional", Label: "Audience optional", Kind: engine.KindBool,
			Help: "Accept tokens whatever their aud when the audience list is empty. Only for " +
				"issuers whose tokens are meant for you alone."},
		{Name: "types", Label: "Token types", Kind: engine.KindStrings,
			Help: "Accepted typ header values, e.g. [\"at+jwt\"] for RFC 9068 access tokens " +
				"(compared case-insensitively, application/ implied). Empty: typ is not checked."},
		{Name: "require_exp", Label: "Require exp", Kind: engine.KindBool, Default: true,
			Help: "Refuse tokens without an expiry (missing_claim)."},
		{Name: "leeway", Label: "Clock leeway", Kind: engine.KindDuration, Default: "30s", Max: "5m",
			Help: "Clock skew allowed on exp, nbf, iat and max_age; at most 5m."},
		{Name: "max_age", Label: "Maximum age", Kind: engine.KindDuration,
			Help: "Refuse tokens whose iat is older than this (token_expired); iat is then required. " +
				"Empty: no limit beyond exp."},
		{Name: "required_claims", Label: "Required claims", Kind: engine.KindStrings,
			Help: "Claims that must be present and not null, e.g. [\"sub\", \"scope\"] (missing_claim)."},
		{Name: "predicate", Label: "Condition", Kind: engine.KindExpr, Result: "bool",
			ExprEnv: predicateEnv{},
			Help: "Optional last check on the verified token, e.g. \"admin\" in claims.roles. It sees " +
				"claims and header (alg, kid, typ). False or an error leaves by \"invalid\" with " +
				"reason claims_rejected."},
	}
}

func validateSpec() engine.Spec {
	fields := []engine.Field{
		{Name: "token", Label: "Token", Kind: engine.KindExpr, Help: tokenFieldHelp},
	}
	fields = append(fields, policyFields("keyset",
		"For source keyset: the keyset whose keys (next, active, retired; never revoked) verify.", false)...)
	fields = append(fields, engine.Field{Name: "max_token_bytes", Label: "Maximum token size (bytes)",
		Kind: engine.KindInt, Default: DefaultMaxTokenSize, Min: "1", Max: "1048576",
		Help: "Longer tokens are refused before any parsing (token_too_large)."})
	fields = append(fields, engine.Field{Name: "dpop", Label: "DPoP (RFC 9449)", Kind: engine.KindEnum, Default: dpopOff,
		Enum: []string{dpopOff, dpopAllow, dpopRequire},
		Help: "off: Bearer tokens only. allow: Authorization: Bearer or DPoP; a DPoP token must come with a " +
			"proof (DPoP header) over the same key (cnf.jkt), this request (htm, htu) and this token (ath). " +
			"require: DPoP only. Whatever the mode, a DPoP-bound token sent as Bearer is refused (dpop_missing)."})
	fields = append(fields, dpopFields("dpop_")...)
	fields = append(fields, cacheFields()...)
	return engine.Spec{
		Type:     "jose.validate",
		Bounded:  true, // see engine.Spec.Bounded
		Title:    "Validate JWT",
		Category: Category,
		Description: "Checks a signed JWT against an explicit policy: allowed algorithms, the key " +
			"(by kid, from a keyset or a remote JWKS), signature, exp/nbf/iat with leeway, issuer, " +
			"audience, typ, required claims and an optional condition. A valid token leaves by " +
			"\"valid\" with msg.claims, msg.token_header {alg, kid, typ} and msg.key {kid, state}; " +
			"any other by \"invalid\" with msg.invalid {reason, detail}, reason one of token_missing, " +
			"malformed, token_too_large, alg_not_allowed, crit_unsupported, unknown_kid, " +
			"bad_signature, token_expired, not_yet_valid, issued_in_future, wrong_issuer, " +
			"wrong_audience, wrong_type, missing_claim, claims_rejected. A key source that cannot " +
			"be reached is an error, not a verdict.",
		Fields:  fields,
		Outputs: []string{portValid, portInvalid},
	}
}

// tokenPolicy is a built validation policy: the library's Validator plus
// the block-level predicate (which also sees the header).
type tokenPolicy struct {
	v    *Validator
	pred *engine.Expr
}

// check validates token and applies the predicate.
func (p *tokenPolicy) check(ctx context.Context, token string) (*Result, error) {
	res, err := p.v.Validate(ctx, token)
	if err != nil {
		return nil, err
	}
	if err := p.judge(res); err != nil {
		return nil, err
	}
	return res, nil
}

// judge runs the predicate on a verified token.
func (p *tokenPolicy) judge(res *Result) error {
	if p.pred == nil {
		return nil
	}
	out, err := p.pred.Run(predicateEnv{Claims: res.Claims, Header: tokenHeaderMap(res.Header)})
	if ok, _ := out.(bool); err != nil || !ok {
		return tokenErr(ReasonClaimsRejected, "the condition refused the token")
	}
	return nil
}

// buildPolicy reads the policy fields and builds the Validator once, at
// deploy. Every mistake is a deploy error naming its field. fallbackKeyset
// is used when keysetField is empty (jose.decrypt: the decryption keyset).
func buildPolicy(s *engine.Setup, d *blockDeps, keysetField, fallbackKeyset string, maxTokenBytes int) (*tokenPolicy, error) {
	c := s.Config
	p := DefaultPolicy()
	p.Now = d.now
	p.MaxTokenSize = maxTokenBytes

	algs := c.Strings("algorithms")
	if len(algs) == 0 {
		return nil, s.Errorf("algorithms", "the allow-list is empty: list the algorithms your issuer signs with, e.g. [\"RS256\"]")
	}
	for _, a := range algs {
		switch {
		case strings.EqualFold(strings.TrimSpace(a), "none"):
			return nil, s.Errorf("algorithms", "%q is never allowed: an unsigned token proves nothing", a)
		case jwsAlgTable[a] == nil:
			return nil, s.Errorf("algorithms", "unknown algorithm %q (known: %s)", a, strings.Join(signAlgorithms(), ", "))
		}
	}
	p.Algorithms = algs

	switch c.String("source") {
	case sourceKeyset:
		if c.String("jwks_url") != "" {
			return nil, s.Errorf("jwks_url", "only for source remote; remove it or switch the source")
		}
		name := c.String(keysetField)
		if name == "" {
			name = fallbackKeyset
		}
		if err := checkKeysetField(s, keysetField, name); err != nil {
			return nil, err
		}
		p.Source = d.ks.Source(name)
	case sourceRemote:
		if c.String(keysetField) != "" {
			return nil, s.Errorf(keysetField, "only for source keyset; remove it or switch the source")
		}
		if i := slices.IndexFunc(algs, func(a string) bool { return strings.HasPrefix(a, "HS") }); i >= 0 {
			return nil, s.Errorf("algorithms", "%s needs a shared secret: a remote JWKS never carries one (use source keyset)", algs[i])
		}
		url := c.String("jwks_url")
		if url == "" {
			return nil, s.Errorf("jwks_url", "required for source remote")
		}
		src, err := NewRemoteJWKS(RemoteJWKSOptions{URL: url, AllowLoopbackHTTP: d.insecure,
			Client: d.client, Logger: s.Logger, Now: d.now})
		if err != nil {
			return nil, s.Errorf("jwks_url", "%v", err)
		}
		p.Source = src
	}

	p.Issuer = c.String("issuer")
	if p.Issuer == "" {
		p.Issuer = d.issuer
	}
	if p.Issuer == "" {
		return nil, s.Errorf("issuer", "required: the exact iss your tokens carry")
	}
	p.Audience = c.Strings("audience")
	p.AudienceOptional = c.Bool("audience_optional")
	if len(p.Audience) == 0 && !p.AudienceOptional {
		return nil, s.Errorf("audience", "required: the audiences this flow accepts (or turn on audience_optional)")
	}
	p.Types = c.Strings("types")
	p.RequireExp = c.Bool("require_exp")
	p.Leeway = c.Duration("leeway")
	p.MaxAge = c.Duration("max_age")
	p.RequiredClaims = c.Strings("required_claims")

	v, err := NewValidator(p)
	if err != nil {
		return nil, s.Errorf(policyErrorField(err, keysetField), "%s", strings.TrimPrefix(err.Error(), ErrInvalidPolicy.Error()+": "))
	}
	return &tokenPolicy{v: v, pred: c.Expr("predicate")}, nil
}

// policyErrorField maps a NewValidator refusal to the config field it is
// about, by the prefix the library gives its messages.
func policyErrorField(err error, keysetField string) string {
	if !errors.Is(err, ErrInvalidPolicy) {
		return ""
	}
	msg := strings.TrimPrefix(err.Error(), ErrInvalidPolicy.Error()+": ")
	for _, m := range []struct{ prefix, field string }{
		{"algorithms", "algorithms"}, {"source", keysetField}, {"issuer", "issuer"},
		{"audience", "audience"}, {"types", "types"}, {"leeway", "leeway"},
		{"max age", "max_age"}, {"max token size", "max_token_bytes"},
		{"required claims", "required_claims"},
	} {
		if strings.HasPrefix(msg, m.prefix+":") {
			return m.field
		}
	}
	return ""
}

type validateBlock struct {
	token  *engine.Expr // nil: the bearer token
	policy *tokenPolicy
	dpop   resourceDPoP
	seen   *verdicts // nil: not counted
}

var _ engine.Block = (*validateBlock)(nil)

func newValidateFromConfig(s *engine.Setup, d *blockDeps) (engine.Block, error) {
	p, err := buildPolicy(s, d, "keyset", "", int(s.Config.Int("max_token_bytes")))
	if err != nil {
		return nil, err
	}
	if err := p.enableCache(s); err != nil {
		return nil, err
	}
	b := newValidate(s.Config.Expr("token"), p)
	b.dpop.mode = s.Config.String("dpop")
	if b.dpop.mode == "" {
		b.dpop.mode = dpopOff
	}
	if b.dpop.mode != dpopOff {
		if b.token != nil {
			return nil, s.Errorf("token", "DPoP reads the token from the Authorization header: leave the token field empty or turn dpop off")
		}
		if b.dpop.v, b.dpop.base, err = dpopConfig(s, d, "dpop_"); err != nil {
			return nil, err
		}
	}
	b.seen = newVerdicts(s)
	return b, nil
}

func newValidate(token *engine.Expr, p *tokenPolicy) *validateBlock {
	return &validateBlock{token: token, policy: p, dpop: resourceDPoP{mode: dpopOff}}
}

func (b *validateBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	port, err := b.judge(ctx, x, msg)
	if port == portInvalid {
		b.seen.refusedMsg(msg)
	}
	return port, err
}

// judge is Process without counting refusals (valid tokens are counted,
// with their key's use, by accept).
func (b *validateBlock) judge(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	if b.dpop.mode != dpopOff {
		return b.processDPoP(ctx, x, msg)
	}
	token, te, err := readToken(x, msg, b.token)
	if err != nil {
		return "", err
	}
	if te != nil {
		return markInvalid(msg, te), nil
	}
	res, err := b.policy.check(ctx, token)
	if err != nil {
		return verdict(msg, fmtSourceErr(err))
	}
	if b.token == nil && jktOf(res.Claims) != "" {
		// A DPoP-bound token presented as a bearer token (RFC 9449 §7.2).
		return markInvalid(msg, tokenErr(ReasonDPoPMissing, "this token is DPoP-bound: this endpoint does not accept DPoP")), nil
	}
	return b.accept(x, msg, res), nil
}

// processDPoP validates an access token sent as Bearer or DPoP, and its
// proof. A refusal also carries msg.invalid.challenge, the
// WWW-Authenticate value to answer with.
func (b *validateBlock) processDPoP(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	delete(msg, "dpop")
	scheme, token := authToken(msg)
	invalid := func(te *TokenError) (string, error) {
		port := markInvalid(msg, te)
		msg["invalid"].(map[string]any)["challenge"] = b.dpop.challenge(scheme, te)
		return port, nil
	}
	if token == "" {
		return invalid(tokenErr(ReasonTokenMissing, "no Authorization: Bearer or DPoP token in the request"))
	}
	res, err := b.policy.check(ctx, token)
	if err != nil {
		var te *TokenError
		if errors.As(err, &te) {
			return invalid(te)
		}
		return "", fmtSourceErr(err)
	}
	te, err := b.dpop.check(ctx, msg, scheme, token, res.Claims)
	if err != nil {
		return "", fmt.Errorf("validate: %w", err)
	}
	if te != nil {
		return invalid(te)
	}
	return b.accept(x, msg, res), nil
}

// fmtSourceErr gives a key source failure context; token errors pass.
func fmtSourceErr(err error) error {
	if errors.Is(err, ErrKeySourceUnavailable) {
		return fmt.Errorf("validate: %w", err)
	}
	return err
}

// accept counts a valid token and its key's use, then marks it valid.
func (b *validateBlock) accept(x *engine.Exec, msg engine.Msg, res *Result) string {
	b.seen.accepted(x, &res.Key)
	return markValid(msg, res)
}
