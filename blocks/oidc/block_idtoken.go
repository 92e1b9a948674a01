package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
)

// idTokenAlgs are the asymmetric signature algorithms an ID token may use
// (OpenID Connect requires RS256 support; HMAC with the client secret is
// not offered: client secrets are stored hashed).
var idTokenAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func idTokenSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.id_token", Title: "Sign ID token", Category: Category,
		Description: "Signs an OpenID Connect ID token for msg.grant (from oidc.code_exchange or " +
			"oidc.refresh) with the keyset's active key: iss, sub, aud and azp (the client), exp, iat, " +
			"auth_time, acr, amr, nonce (as the authorization request sent it; none after a refresh) and " +
			"at_hash of the access token (OpenID Connect Core §3.1.3.6). The token goes to msg.<target>.",
		Fields: []engine.Field{
			{Name: "keyset", Label: "Keyset", Kind: engine.KindString, Ref: engine.RefKeyset, Default: "main",
				Help: "Keyset whose active key signs; its JWKS must be the one discovery publishes."},
			{Name: "alg", Label: "Algorithm", Kind: engine.KindEnum, Default: "RS256", Enum: idTokenAlgs,
				Help: "Signature algorithm; RS256 is what every relying party supports."},
			{Name: "ttl", Label: "Lifetime", Kind: engine.KindDuration, Default: "1h", Min: "1m", Max: "24h",
				Help: "How long the ID token is valid: exp is iat plus this."},
			{Name: "issuer", Label: "Issuer", Kind: engine.KindString, Help: "iss. Empty: flowd's --issuer."},
			{Name: "access_token", Label: "Access token", Kind: engine.KindExpr, Default: "msg.access_token",
				Help: "Expression for the access token issued with it, for at_hash. nil: no at_hash."},
			{Name: "target", Label: "Message field", Kind: engine.KindString, Default: "id_token",
				Help: "Top-level message field the signed ID token is written to."},
		},
		Outputs: []string{"out"},
	}
}

type idTokenBlock struct {
	p           *provider
	keyset, alg string
	ttl         time.Duration
	issuer      string
	accessToken *engine.Expr
	target      string
}

var _ engine.Block = (*idTokenBlock)(nil)

func newIDTokenFromConfig(s *engine.Setup, p *provider) (engine.Block, error) {
	c := s.Config
	iss, err := p.issuerFor(s, "issuer")
	if err != nil {
		return nil, err
	}
	if c.String("keyset") == "" {
		return nil, s.Errorf("keyset", "required")
	}
	t := c.String("target")
	if t == "" || strings.ContainsAny(t, ". ") {
		return nil, s.Errorf("target", "must be a plain field name")
	}
	return &idTokenBlock{p: p, keyset: c.String("keyset"), alg: c.String("alg"), ttl: c.Duration("ttl"), issuer: iss,
		accessToken: c.Expr("access_token"), target: t}, nil
}

func (b *idTokenBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	g := mapOf(msg["grant"])
	client, sub := stringField(g, "client_id"), stringField(g, "subject")
	if client == "" || sub == "" {
		return "", fmtErr("oidc.id_token", errors.New("needs msg.grant with client_id and subject (oidc.code_exchange or oidc.refresh)"))
	}
	claims := map[string]any{"azp": client}
	if t, ok := int64Of(g["auth_time"]); ok && t > 0 {
		claims["auth_time"] = t
	}
	if n := stringField(g, "nonce"); n != "" {
		claims["nonce"] = n
	}
	if acr := stringField(g, "acr"); acr != "" {
		claims["acr"] = acr
	}
	if amr := oauth.StringList(g["amr"]); len(amr) > 0 {
		claims["amr"] = anyList(amr)
	}
	if b.accessToken != nil {
		v, err := b.accessToken.Eval(x, msg)
		if err != nil {
			return "", fmtErr("oidc.id_token", fmt.Errorf("access_token: %w", err))
		}
		if at, _ := v.(string); at != "" {
			claims["at_hash"] = tokenHash(b.alg, at)
		}
	}
	tok, _, err := b.p.signer.Sign(ctx, jose.SignRequest{Keyset: b.keyset, Alg: b.alg, TTL: b.ttl,
		Issuer: b.issuer, Subject: sub, Audience: []string{client}, Claims: claims})
	if err != nil {
		return "", fmtErr("oidc.id_token", err)
	}
	msg[b.target] = tok
	return "out", nil
}

// tokenHash is at_hash / c_hash: the left half of the hash the signature
// algorithm uses, base64url (OpenID Connect Core §3.1.3.6; EdDSA with
// Ed25519 uses SHA-512).
func tokenHash(alg, token string) string {
	var h hash.Hash
	switch {
	case strings.HasSuffix(alg, "384"):
		h = sha512.New384()
	case strings.HasSuffix(alg, "512"), alg == "EdDSA":
		h = sha512.New()
	default:
		h = sha256.New()
	}
	h.Write([]byte(token))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}
