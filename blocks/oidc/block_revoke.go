package oidc

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/flowd/flowd/blocks/oauth"
	"github.com/flowd/flowd/engine"
)

// Token revocation (RFC 7009), in two blocks so that the flow shows where
// the access token's signature is checked:
//
//	POST /oauth/revoke -> oauth.client_auth -> oidc.revoke --done--> 200
//	                                            \access_token: jose.validate -> oidc.revoke_access -> 200
//
// Whatever the token, the answer is 200 unless the request itself is bad
// (RFC 7009 §2.2): an unknown, malformed, expired or another client's
// token changes nothing, and the answer does not say which it was.

// nsRevokedTokens holds access tokens without a grant (client_credentials)
// revoked before their exp, by the SHA-256 of their jti, until that exp.
const nsRevokedTokens = "oidc_revoked_tokens"

// revokedTokenRecord is a revoked access token that has no grant to end.
type revokedTokenRecord struct {
	ClientID string `json:"client_id"`
	Expires  int64  `json:"expires"` // the token's exp
	Purge    int64  `json:"purge"`
}

// Limits on what a revocation request may name.
const (
	// maxRevokeToken: longer is no token flowd issued (access tokens are
	// capped by jose.validate's 8 KiB; refresh tokens are 75 characters).
	maxRevokeToken = 8 << 10
	// maxJTILen: a jti longer than this is not one jose.sign made.
	maxJTILen = 256
)

// errNeedsClaims: oidc.revoke_access placed without jose.validate before it.
var errNeedsClaims = errors.New("needs msg.claims: put jose.validate before it")

// revokedGrant is the reason a grant ended by revocation carries.
const revokedGrant = "revoked"

func revokeSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.revoke", Title: "Revoke refresh token", Category: Category,
		Description: "Token revocation (RFC 7009) for the client in msg.client (oauth.client_auth before it): " +
			"the form's token, when it is a refresh token of this client, ends its grant (every refresh token " +
			"and, wherever oidc.grant_active checks them, every access token of it); the message leaves by " +
			"\"done\". A token that looks like a JWT leaves by \"access_token\" (check it with jose.validate, " +
			"then oidc.revoke_access). An unknown, malformed or another client's token changes nothing and " +
			"leaves by \"done\" too (answer 200 either way: RFC 7009 §2.2). token_type_hint is not needed (the " +
			"two kinds cannot be confused) and any value is accepted. A request without token, or with a " +
			"repeated parameter, leaves by \"invalid\" with msg.oauth_error invalid_request (answer 400).",
		Outputs: []string{"done", "access_token", "invalid"},
	}
}

type revokeBlock struct{ p *provider }

var _ engine.Block = (*revokeBlock)(nil)

func newRevokeFromConfig(_ *engine.Setup, p *provider) (engine.Block, error) {
	return &revokeBlock{p: p}, nil
}

func (b *revokeBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	clientID, _, err := tokenClient(msg, "oidc.revoke")
	if err != nil {
		return "", err
	}
	form, all := formParams(msg)
	if repeated(all) != "" {
		oauth.SetError(msg, 400, "invalid_request", "a parameter is repeated")
		return "invalid", nil
	}
	token := stringField(form, "token")
	switch {
	case token == "":
		oauth.SetError(msg, 400, "invalid_request", "token is required")
		return "invalid", nil
	case len(token) > maxRevokeToken:
		return "done", nil
	}
	keys, err := b.p.keys(ctx)
	if err != nil {
		return "", fmtErr("oidc.revoke", err)
	}
	now := x.Now()
	if gid, _, ok := parseRefreshToken(keys, token); ok {
		// Any generation, the live one or an old one: the token names
		// its grant, and the grant is what ends.
		if err := b.p.endGrant(ctx, gid, clientID, now); err != nil {
			return "", fmtErr("oidc.revoke", err)
		}
		return "done", nil
	}
	if looksLikeSecret(token) {
		// A refresh token of the earlier format: its record names the grant.
		rec, err := getRec[refreshRecord](ctx, b.p.State, nsRefresh, hashKey(token))
		if err != nil {
			return "", fmtErr("oidc.revoke", err)
		}
		if rec != nil && rec.ClientID == clientID {
			if err := b.p.endGrant(ctx, rec.GrantID, clientID, now); err != nil {
				return "", fmtErr("oidc.revoke", err)
			}
		}
		return "done", nil
	}
	if strings.Count(token, ".") == 2 {
		return "access_token", nil
	}
	return "done", nil
}

// endGrant revokes a grant for its own client; another client's grant, an
// unknown one or one already ended is left as it is (and not written).
func (p *provider) endGrant(ctx context.Context, gid, clientID string, now time.Time) error {
	if !looksLikeID(gid) {
		return nil
	}
	g, err := getRec[grantRecord](ctx, p.State, nsGrants, gid)
	if err != nil || g == nil || g.ClientID != clientID || g.Revoked != "" {
		return err
	}
	return updateRec(ctx, p.State, nsGrants, gid, func(cur *grantRecord) (*grantRecord, error) {
		if cur == nil || cur.ClientID != clientID || cur.Revoked != "" {
			return cur, nil
		}
		cur.Revoked = revokedGrant
		return cur, nil
	})
}

func revokeAccessSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.revoke_access", Title: "Revoke access token", Category: Category,
		Description: "Revokes an access token already validated by jose.validate (msg.claims, msg.token_header) " +
			"for the client in msg.client. Only the client the token was issued to (its client_id claim) " +
			"may revoke it; for another client nothing changes. A token issued to a person (gid claim) " +
			"ends its grant, as revoking its refresh token does. Any other (client_credentials) is recorded " +
			"as revoked by its jti until its exp: oidc.grant_active (the introspection flow) then refuses it " +
			"with reason token_revoked. Either way the message leaves by \"done\" (answer 200). A token that " +
			"is not an access token (typ other than at+jwt, such as an ID token) leaves by \"unsupported\" " +
			"with msg.oauth_error unsupported_token_type (RFC 7009 §2.2.1, answer 400).",
		Outputs: []string{"done", "unsupported"},
	}
}

type revokeAccessBlock struct{ p *provider }

var _ engine.Block = (*revokeAccessBlock)(nil)

func newRevokeAccessFromConfig(_ *engine.Setup, p *provider) (engine.Block, error) {
	return &revokeAccessBlock{p: p}, nil
}

func (b *revokeAccessBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	clientID, _, err := tokenClient(msg, "oidc.revoke_access")
	if err != nil {
		return "", err
	}
	claims, ok := msg["claims"].(map[string]any)
	if !ok {
		return "", fmtErr("oidc.revoke_access", errNeedsClaims)
	}
	typ := strings.ToLower(stringField(mapOf(msg["token_header"]), "typ"))
	if typ != "at+jwt" && typ != "application/at+jwt" {
		oauth.SetError(msg, 400, "unsupported_token_type", "only access tokens and refresh tokens can be revoked")
		return "unsupported", nil
	}
	if stringField(claims, "client_id") != clientID {
		return "done", nil
	}
	now := x.Now()
	if raw, named := claims["gid"]; named {
		gid, _ := raw.(string)
		if err := b.p.endGrant(ctx, gid, clientID, now); err != nil {
			return "", fmtErr("oidc.revoke_access", err)
		}
		return "done", nil
	}
	jti := stringField(claims, "jti")
	exp, hasExp := int64Of(claims["exp"])
	if jti == "" || len(jti) > maxJTILen || !hasExp || exp <= now.Unix() {
		// Nothing to name it by, or it has expired already.
		return "done", nil
	}
	err = updateRec(ctx, b.p.State, nsRevokedTokens, hashKey(jti), func(cur *revokedTokenRecord) (*revokedTokenRecord, error) {
		if cur != nil {
			return cur, nil
		}
		return &revokedTokenRecord{ClientID: clientID, Expires: exp, Purge: exp}, nil
	})
	if err != nil {
		return "", fmtErr("oidc.revoke_access", err)
	}
	return "done", nil
}

// tokenRevoked reports whether an access token without a grant was
// revoked (oidc.revoke_access) and has not expired yet.
func tokenRevoked(ctx context.Context, kv KV, claims map[string]any, now time.Time) (bool, error) {
	jti := stringField(claims, "jti")
	if jti == "" || len(jti) > maxJTILen {
		return false, nil
	}
	rec, err := getRec[revokedTokenRecord](ctx, kv, nsRevokedTokens, hashKey(jti))
	if err != nil || rec == nil {
		return false, err
	}
	return now.Unix() < rec.Expires, nil
}
