package oidc

import (
	"context"
	"errors"

	"github.com/flowd/flowd/engine"
)

// Reasons oidc.grant_active gives besides grantStatus's.
const (
	grantMalformed = "grant_malformed"
	grantMismatch  = "grant_mismatch"
	userUnknown    = "user_unknown"
	tokenRevokedR  = "token_revoked"
)

// grantDetails are the msg.invalid details of grant_active's reasons.
var grantDetails = map[string]string{
	grantMalformed: "the access token's gid claim is not a grant id",
	grantUnknown:   "the grant of this access token does not exist",
	grantRevoked:   "the grant of this access token was revoked",
	grantExpired:   "the grant of this access token has expired",
	grantMismatch:  "the access token's client or subject is not its grant's",
	userUnknown:    "the user of this access token no longer exists",
	tokenRevokedR:  "this access token was revoked",
}

func grantActiveSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.grant_active", Title: "Grant still active", Category: Category,
		Bounded: true, // removes claims, adds a fixed msg.invalid
		Description: "Checks that an access token already validated by jose.validate (msg.claims) " +
			"was not issued under an authorization that has ended since: put it after jose.validate " +
			"wherever a revoked token must stop working at once rather than at its exp (introspection, " +
			"an API). A token issued to a person names its grant (the gid claim); it is active while " +
			"that grant exists, is not revoked (code replay, refresh token reuse, revocation, logout) and has not expired, " +
			"was issued to the token's client_id and sub, and the person still exists. A token " +
			"without gid (client_credentials) has no grant: it leaves by \"active\" unless it was revoked " +
			"(oidc.revoke_access: reason token_revoked). " +
			"Otherwise the message leaves by \"inactive\" without msg.claims and with msg.invalid " +
			"{reason, detail} like jose.validate's (reason grant_malformed, grant_unknown, " +
			"grant_revoked, grant_expired, grant_mismatch, user_unknown or token_revoked). A state store that cannot " +
			"be read is an error (msg.claims removed too), never a verdict.",
		Outputs: []string{"active", "inactive"},
	}
}

type grantActiveBlock struct{ p *provider }

var _ engine.Block = (*grantActiveBlock)(nil)

func newGrantActiveFromConfig(_ *engine.Setup, p *provider) (engine.Block, error) {
	return &grantActiveBlock{p: p}, nil
}

func (b *grantActiveBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	claims, ok := msg["claims"].(map[string]any)
	if !ok {
		delete(msg, "claims")
		return "", fmtErr("oidc.grant_active", errors.New("needs msg.claims: put jose.validate before it"))
	}
	reason, err := b.check(ctx, claims, x)
	if err != nil || reason != "" {
		// Neither branch may carry the claims on: wired to the wrong
		// answer, they would still describe a token that is not active.
		delete(msg, "claims")
		delete(msg, "token_header")
	}
	if err != nil {
		return "", fmtErr("oidc.grant_active", err)
	}
	if reason != "" {
		msg["invalid"] = map[string]any{"reason": reason, "detail": grantDetails[reason]}
		return "inactive", nil
	}
	return "active", nil
}

// check says why the token's grant is not active, "" when it is or when
// the token has none.
func (b *grantActiveBlock) check(ctx context.Context, claims map[string]any, x *engine.Exec) (string, error) {
	raw, named := claims["gid"]
	if !named {
		revoked, err := tokenRevoked(ctx, b.p.State, claims, x.Now())
		if err != nil || !revoked {
			return "", err
		}
		return tokenRevokedR, nil
	}
	// Present but not a grant id (null, a number, a list, junk): the
	// token claims a grant it cannot have; never read as "no grant".
	gid, _ := raw.(string)
	if !looksLikeID(gid) {
		return grantMalformed, nil
	}
	g, why, err := grantStatus(ctx, b.p.State, gid, x.Now())
	if err != nil || why != "" {
		return why, err
	}
	if g.ClientID != stringField(claims, "client_id") || g.Sub != stringField(claims, "sub") {
		return grantMismatch, nil
	}
	_, err = b.p.Users.BySub(ctx, g.Sub)
	if errors.Is(err, ErrNoUser) {
		return userUnknown, nil
	}
	return "", err
}
