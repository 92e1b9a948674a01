package jose

import (
	"context"
	"fmt"
	"time"

	"github.com/flowd/flowd/engine"
)

// signAlgorithms are the algorithms jose.sign offers: the signature ones.
func signAlgorithms() []string {
	var out []string
	for _, a := range Algorithms() {
		if u, _ := AlgorithmUse(a); u == UseSig {
			out = append(out, a)
		}
	}
	return out
}

func signSpec() engine.Spec {
	return engine.Spec{
		Type:     "jose.sign",
		Title:    "Sign JWT",
		Category: Category,
		Description: "Mints a JWT signed by the keyset's active key of one algorithm and puts the " +
			"compact token at msg.<target> (default msg.token) and the kid that signed it at " +
			"msg.<target>_kid. The token gets iat, nbf and exp (iat + ttl) and a random jti; iss, " +
			"sub and aud come from the fields below, other claims from the claims map. A claim " +
			"in the map that contradicts a field (another iss, an exp other than iat + ttl) is " +
			"an error, so data from a request cannot override what the flow configured.",
		Fields: []engine.Field{
			{Name: "keyset", Label: "Keyset", Kind: engine.KindString, Ref: engine.RefKeyset, Required: true,
				Help: "Name of the keyset whose active key signs."},
			{Name: "alg", Label: "Algorithm", Kind: engine.KindEnum, Default: "RS256", Enum: signAlgorithms(),
				Help: "Signature algorithm; the keyset must have an active key for it."},
			{Name: "typ", Label: "Type (typ header)", Kind: engine.KindString,
				Help: "The typ header, e.g. at+jwt for RFC 9068 access tokens. Empty: JWT."},
			{Name: "issuer", Label: "Issuer (iss)", Kind: engine.KindExpr, // empty: flowd's --issuer
				Help: "Expression for iss, e.g. \"'https://auth.example.com'\" (text needs quotes) " +
					"or env.ISSUER. Empty: no iss unless the claims map sets one."},
			{Name: "subject", Label: "Subject (sub)", Kind: engine.KindExpr,
				Help: "Expression for sub, e.g. msg.user.id. nil or empty: no sub."},
			{Name: "audience", Label: "Audience (aud)", Kind: engine.KindExpr,
				Help: "Expression for aud: a text or a list of texts, e.g. \"'api'\" or " +
					"\"['api', 'billing']\". nil or empty: no aud."},
			{Name: "ttl", Label: "Lifetime", Kind: engine.KindDuration, Default: defaultMaxTokenTTL.String(),
				Min: "1s", Max: "24h",
				Help: "exp = iat + ttl. Keep it within the max_token_ttl of the keyset's jose.rotate."},
			{Name: "claims", Label: "Claims", Kind: engine.KindExprMap,
				Help: "Other claims: name -> expression, e.g. {\"scope\": \"msg.body.scope\", " +
					"\"roles\": \"['admin']\"}. Values are encoded as JSON; a value that is nil leaves its claim out."},
			{Name: "target", Label: "Message field", Kind: engine.KindString, Default: "token",
				Help: "Field the token is written to; the signing kid goes to <field>_kid."},
		},
		Outputs: []string{portOut},
		// Every value comes from Expr.Eval.
		LazyMessage: true,
	}
}

type signBlock struct {
	signer    *Signer
	keyset    string
	alg       string
	typ       string
	issuer    *engine.Expr
	subject   *engine.Expr
	audience  *engine.Expr
	ttl       time.Duration
	claims    []engine.NamedExpr
	target    string
	kidTarget string
	// defaultIssuer is flowd's issuer, used when the issuer field is empty.
	defaultIssuer string
}

var _ engine.Block = (*signBlock)(nil)

func newSignFromConfig(s *engine.Setup, d *blockDeps) (engine.Block, error) {
	c := s.Config
	name := c.String("keyset")
	if err := checkKeysetField(s, "keyset", name); err != nil {
		return nil, err
	}
	typ := c.String("typ")
	if err := checkSignTyp(typ); err != nil {
		return nil, s.Errorf("typ", "%v", err)
	}
	target := c.String("target")
	if err := checkTarget(s, "target", target); err != nil {
		return nil, err
	}
	return newSign(d.signer, signBlock{
		keyset: name, alg: c.String("alg"), typ: typ,
		issuer: c.Expr("issuer"), subject: c.Expr("subject"), audience: c.Expr("audience"),
		ttl: c.Duration("ttl"), claims: c.Exprs("claims"), target: target, defaultIssuer: d.issuer,
	}), nil
}

// newSign builds the block from its parsed config (signer and kidTarget
// are filled in here).
func newSign(signer *Signer, conf signBlock) *signBlock {
	b := conf
	b.signer = signer
	b.kidTarget = b.target + "_kid"
	return &b
}

func (b *signBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	req := SignRequest{Keyset: b.keyset, Alg: b.alg, Typ: b.typ, TTL: b.ttl, ownClaims: true}
	var err error
	if req.Issuer, err = evalText(x, msg, b.issuer, "issuer"); err != nil {
		return "", err
	}
	if req.Issuer == "" && b.issuer == nil {
		req.Issuer = b.defaultIssuer
	}
	if req.Subject, err = evalText(x, msg, b.subject, "subject"); err != nil {
		return "", err
	}
	if b.audience != nil {
		v, err := b.audience.Eval(x, msg)
		if err != nil {
			return "", fmt.Errorf("audience: %w", err)
		}
		if req.Audience, err = audienceList(v); err != nil {
			return "", fmt.Errorf("audience: %w", err)
		}
	}
	if len(b.claims) > 0 {
		// Room for the registered claims Sign adds to it (ownClaims).
		req.Claims = make(map[string]any, len(b.claims)+7)
		for _, e := range b.claims {
			v, err := e.Expr.Eval(x, msg)
			if err != nil {
				return "", fmt.Errorf("claim %q: %w", e.Name, err)
			}
			if v == nil {
				// Left out rather than null: a claim such as cnf is
				// there only when it applies (msg.dpop != nil ? ... : nil).
				continue
			}
			req.Claims[e.Name] = v
		}
	}
	token, kid, err := b.signer.Sign(ctx, req)
	if err != nil {
		return "", fmt.Errorf("sign with keyset %q: %w", b.keyset, err)
	}
	msg[b.target] = token
	msg[b.kidTarget] = kid
	// Two strings under two keys: the engine need not walk the message.
	x.Grew(len(b.target) + 4 + len(token) + 2 + len(b.kidTarget) + 4 + len(kid) + 2)
	return portOut, nil
}

// evalText evaluates an optional text expression: nil expr, nil and ""
// give "".
func evalText(x *engine.Exec, msg engine.Msg, e *engine.Expr, field string) (string, error) {
	if e == nil {
		return "", nil
	}
	v, err := e.Eval(x, msg)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	switch t := v.(type) {
	case nil:
		return "", nil
	case string:
		return t, nil
	}
	return "", fmt.Errorf("%s: the expression gave %T, want text", field, v)
}

// audienceList reads an aud value: nil, a text, or a list of texts.
func audienceList(v any) ([]string, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case string:
		if t == "" {
			return nil, nil
		}
		return []string{t}, nil
	case []string:
		return t, nil
	case []any:
		out := make([]string, 0, len(t))
		for i, e := range t {
			s, ok := e.(string)
			if !ok || s == "" {
				return nil, fmt.Errorf("item %d is not a non-empty text", i)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("the expression gave %T, want a text or a list of texts", v)
}
